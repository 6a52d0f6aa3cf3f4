//! Copy on read against concurrent deletes, touches and writes, driven
//! step by step: the copier is paused right after it read old.

use std::sync::Arc;

use super::*;

type M = Arc<Migration<Scripted, Scripted>>;

fn spawn_get(m: &M, key: &'static str) -> tokio::task::JoinHandle<crate::Result<Option<Record>>> {
    let m = m.clone();
    tokio::spawn(async move { m.get(key).await })
}

#[tokio::test]
async fn delete_from_another_process_between_read_and_copy_is_not_resurrected() {
    let (clock, old, new) = stores();
    old.data().set("k", rec("v")).await.unwrap();
    let copier: M = Arc::new(migration(&clock, &old, &new, Phase::ReadNew));
    let other = migration(&clock, &old, &new, Phase::ReadNew); // its own locks
    let gate = old.pause(Op::Get, 0);
    let read = spawn_get(&copier, "k");
    gate.reached().await; // the copier holds old's record, has not copied
    assert!(other.delete("k").await.unwrap());
    gate.release();
    assert_eq!(read.await.unwrap().unwrap(), None);
    assert_eq!(value(&new, "k").await, None, "copy removed");
    assert_eq!(value(&old, "k").await, None);
    assert_eq!(other.get("k").await.unwrap(), None);
}

#[tokio::test]
async fn delete_between_copy_and_check_is_not_resurrected() {
    let (clock, old, new) = stores();
    old.data().set("k", rec("v")).await.unwrap();
    let copier: M = Arc::new(migration(&clock, &old, &new, Phase::ReadNew));
    let other = migration(&clock, &old, &new, Phase::ReadNew);
    let gate = new.pause(Op::Create, 0);
    let read = spawn_get(&copier, "k");
    gate.reached().await; // the copy is in new, not yet checked
    assert!(other.delete("k").await.unwrap());
    gate.release();
    assert_eq!(read.await.unwrap().unwrap(), None);
    assert_eq!(value(&new, "k").await, None);
}

#[tokio::test]
async fn delete_in_the_same_process_waits_for_the_copy() {
    let (clock, old, new) = stores();
    old.data().set("k", rec("v")).await.unwrap();
    let m: M = Arc::new(migration(&clock, &old, &new, Phase::ReadNew));
    let gate = old.pause(Op::Get, 0);
    let read = spawn_get(&m, "k");
    gate.reached().await;
    let del = {
        let m = m.clone();
        tokio::spawn(async move { m.delete("k").await })
    };
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert!(
        !del.is_finished(),
        "the delete must wait for the key's lock"
    );
    assert_eq!(old.calls(Op::Delete), 0);
    gate.release();
    // The read is ordered before the delete: it sees the record ...
    assert_eq!(read.await.unwrap().unwrap().unwrap().value, "v");
    // ... and the delete then removes it from both stores.
    assert!(del.await.unwrap().unwrap());
    assert_eq!(value(&new, "k").await, None);
    assert_eq!(value(&old, "k").await, None);
}

#[tokio::test]
async fn touch_from_another_process_is_not_undone_by_the_copy() {
    let (clock, old, new) = stores();
    let e1 = clock.now() + Duration::from_secs(60);
    let e2 = clock.now() + Duration::from_secs(3600);
    old.data()
        .set("k", Record::expiring_at("v", e1))
        .await
        .unwrap();
    let copier: M = Arc::new(migration(&clock, &old, &new, Phase::ReadNew));
    let other = migration(&clock, &old, &new, Phase::ReadNew);
    let gate = old.pause(Op::Get, 0);
    let read = spawn_get(&copier, "k");
    gate.reached().await; // the copier holds the record with e1
    assert!(other.touch("k", Some(e2)).await.unwrap());
    gate.release();
    assert_eq!(read.await.unwrap().unwrap().unwrap().expires_at, Some(e2));
    let copy = new.data().get("k").await.unwrap().unwrap();
    assert_eq!(
        copy.expires_at,
        Some(e2),
        "the copy carries the touched expiry"
    );
}

#[tokio::test]
async fn write_from_another_process_wins_over_the_copy() {
    let (clock, old, new) = stores();
    old.data().set("k", rec("v1")).await.unwrap();
    let copier: M = Arc::new(migration(&clock, &old, &new, Phase::ReadNew));
    let other = migration(&clock, &old, &new, Phase::ReadNew);
    let gate = old.pause(Op::Get, 0);
    let read = spawn_get(&copier, "k");
    gate.reached().await;
    other.set("k", rec("v2")).await.unwrap();
    gate.release();
    assert_eq!(read.await.unwrap().unwrap().unwrap().value, "v2");
    assert_eq!(value(&new, "k").await.as_deref(), Some(&b"v2"[..]));
}

#[tokio::test]
async fn write_both_delete_is_repeated_after_old_for_a_copier_in_between() {
    // A copier (another process in ReadNew) reads old; a WriteBoth delete
    // deletes from new (nothing there yet); the copier copies and checks
    // old, which still has the record; only then does the delete reach
    // old. The delete on new after old is what removes the copy.
    let (clock, old, new) = stores();
    old.data().set("k", rec("v")).await.unwrap();
    let copier: M = Arc::new(migration(&clock, &old, &new, Phase::ReadNew));
    let deleter = Arc::new(migration(&clock, &old, &new, Phase::write_both(100)));
    let copier_read = old.pause(Op::Get, 0);
    let read = spawn_get(&copier, "k");
    copier_read.reached().await;
    // Pause the deleter after its first delete on new.
    let first_new_delete = new.pause(Op::Delete, 0);
    let del = {
        let d = deleter.clone();
        tokio::spawn(async move { d.delete("k").await })
    };
    first_new_delete.reached().await;
    // The copier copies now, and pauses at its check of old.
    let copier_check = old.pause(Op::Get, 0);
    copier_read.release();
    copier_check.reached().await;
    assert!(value(&new, "k").await.is_some(), "the copy is in new");
    first_new_delete.release();
    assert!(del.await.unwrap().unwrap());
    copier_check.release();
    // The copier's check read old before the delete did: its answer is
    // ordered before the delete, and its copy would survive but for the
    // second delete on new.
    assert_eq!(read.await.unwrap().unwrap().unwrap().value, "v");
    assert_eq!(value(&new, "k").await, None, "no resurrection");
    assert_eq!(value(&old, "k").await, None);
}
