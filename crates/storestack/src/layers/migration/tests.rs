//! Rules of the Migration decorator, one test each. Races are driven step
//! by step with gates (no sleeps).

use std::time::Duration;

use super::testing::TestStore;
use super::*;
use crate::clock::MockClock;
use crate::error::{ErrorKind, Op};

mod metrics_recorder;
mod races;

fn stores() -> (MockClock, TestStore, TestStore) {
    let clock = MockClock::new();
    let old = TestStore::new("old", &clock);
    let new = TestStore::new("new", &clock);
    (clock, old, new)
}

fn migration(
    clock: &MockClock,
    old: &TestStore,
    new: &TestStore,
    phase: Phase,
) -> Migration<TestStore, TestStore> {
    Migration::new(old.clone(), new.clone())
        .with_handle(MigrationHandle::new(phase))
        .clock(clock.clone())
}

fn rec(v: &'static str) -> Record {
    Record::never_expiring(v)
}

async fn value(s: &TestStore, key: &str) -> Option<bytes::Bytes> {
    s.raw().get(key).await.unwrap().map(|r| r.value)
}

#[test]
fn bucket_is_stable_across_processes_and_versions() {
    // Pinned (checked against an independent SipHash-1-3 implementation):
    // changing the hash would split keys between stores across a rolling
    // deploy.
    assert_eq!(key_hash_hex("sess:abc"), "b8ae6112906c1276");
    let pinned = [("sess:abc", 86), ("", 33), ("ünïcødé", 12), ("k42", 98)];
    for (key, b) in pinned {
        assert_eq!(bucket(key), b, "{key:?}");
    }
    let n = 20_000;
    let below_30 = (0..n).filter(|i| bucket(&format!("sess:{i}")) < 30).count();
    let share = below_30 as f64 / n as f64;
    assert!((0.28..0.32).contains(&share), "share below 30: {share}");
}

async fn read(m: &Migration<TestStore, TestStore>, key: &str) -> bytes::Bytes {
    m.get(key).await.unwrap().unwrap().value
}

fn key_hash_hex(key: &str) -> String {
    format!("{:016x}", phase::key_hash(key))
}

#[tokio::test]
async fn write_percent_extremes_and_same_key_same_store() {
    let (clock, old, new) = stores();
    let m0 = migration(&clock, &old, &new, Phase::write_both(0));
    for i in 0..200 {
        m0.set(&format!("a{i}"), rec("v")).await.unwrap();
    }
    assert_eq!(
        new.raw().len().await.unwrap(),
        0,
        "0 % writes nothing to new"
    );

    let m100 = migration(&clock, &old, &new, Phase::write_both(100));
    for i in 0..200 {
        m100.set(&format!("b{i}"), rec("v")).await.unwrap();
    }
    assert_eq!(
        new.raw().len().await.unwrap(),
        200,
        "100 % writes every key"
    );

    // Two independent migrations (two processes) agree on every key, on
    // every write.
    let p1 = migration(&clock, &old, &new, Phase::write_both(40));
    let p2 = migration(&clock, &old, &new, Phase::write_both(40));
    for i in 0..300 {
        let key = format!("c{i}");
        for (round, p) in [&p1, &p2, &p1].into_iter().enumerate() {
            new.raw().delete(&key).await.unwrap();
            p.set(&key, rec("v")).await.unwrap();
            let in_new = new.raw().get(&key).await.unwrap().is_some();
            assert_eq!(in_new, bucket(&key) < 40, "{key} round {round}");
        }
        assert!(old.raw().get(&key).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn copy_on_read_keeps_the_remaining_expiry() {
    let (clock, old, new) = stores();
    let m = migration(&clock, &old, &new, Phase::ReadNew);
    let at = clock.now() + Duration::from_secs(90);
    old.raw()
        .set("sess", Record::expiring_at("data", at))
        .await
        .unwrap();
    old.raw().set("forever", rec("f")).await.unwrap();
    clock.advance(Duration::from_secs(30));

    let got = m.get("sess").await.unwrap().unwrap();
    assert_eq!(got.expires_at, Some(at));
    let copy = new.raw().get("sess").await.unwrap().unwrap();
    assert_eq!(copy.expires_at, Some(at), "copied with its absolute expiry");
    assert_eq!(copy.value, "data");
    let forever = m.get("forever").await.unwrap().unwrap();
    assert_eq!(forever.expires_at, None);
    assert_eq!(
        new.raw().get("forever").await.unwrap().unwrap().expires_at,
        None
    );

    clock.advance(Duration::from_secs(61));
    assert_eq!(m.get("sess").await.unwrap(), None, "expires on time in new");
    assert_eq!(new.raw().get("sess").await.unwrap(), None);
}

#[tokio::test]
async fn phase_switch_and_back_routes_reads() {
    let (clock, old, new) = stores();
    let m = migration(&clock, &old, &new, Phase::OldOnly);
    let h = m.handle().clone();
    let mut changes = h.subscribe();
    old.raw().set("k", rec("in-old")).await.unwrap();
    new.raw().set("k", rec("in-new")).await.unwrap();

    assert_eq!(read(&m, "k").await, "in-old");
    h.set(Phase::ReadNew).unwrap();
    assert!(changes.has_changed().unwrap());
    assert_eq!(changes.borrow_and_update().phase, Phase::ReadNew);
    assert_eq!(read(&m, "k").await, "in-new");
    h.set(Phase::write_both(30)).unwrap();
    assert_eq!(read(&m, "k").await, "in-old");
    h.set(Phase::ReadNew).unwrap();
    h.set(Phase::NewOnly).unwrap();
    assert_eq!(read(&m, "k").await, "in-new");
    assert_eq!(m.len().await.unwrap(), 1);

    assert_eq!(h.set(Phase::ReadNew), Err(PhaseError::LeavingNewOnly));
    assert_eq!(h.phase(), Phase::NewOnly);
    assert_eq!(h.force(Phase::ReadNew), Phase::NewOnly);
    assert_eq!(h.phase(), Phase::ReadNew);
}

#[test]
fn handle_refuses_lossy_switches_and_parses_phases() {
    let h = MigrationHandle::new(Phase::write_both(250));
    assert_eq!(h.phase(), Phase::write_both(100));
    assert_eq!(h.set(Phase::NewOnly), Err(PhaseError::NewOnlyTooEarly));
    for p in [
        Phase::OldOnly,
        Phase::write_both(0),
        Phase::write_both(7),
        Phase::ReadNew,
        Phase::NewOnly,
    ] {
        assert_eq!(p.to_string().parse::<Phase>(), Ok(p));
    }
    for bad in [
        "",
        "write-both",
        "write-both:101",
        "write-both:-1",
        "read_new",
    ] {
        assert!(bad.parse::<Phase>().is_err(), "{bad:?}");
    }
}

#[tokio::test]
async fn switching_back_never_leaves_a_stale_copy() {
    let (clock, old, new) = stores();
    let m = migration(&clock, &old, &new, Phase::write_both(100));
    m.set("k", rec("v1")).await.unwrap();
    assert_eq!(value(&new, "k").await.as_deref(), Some(&b"v1"[..]));

    // Down to 0 %: the key is no longer written to new, so its copy goes.
    m.handle().set(Phase::write_both(0)).unwrap();
    assert_eq!(m.handle().state().high_water, 100);
    m.set("k", rec("v2")).await.unwrap();
    assert_eq!(value(&new, "k").await, None);
    m.handle().set(Phase::ReadNew).unwrap();
    assert_eq!(m.get("k").await.unwrap().unwrap().value, "v2");

    // All the way back to OldOnly: writes and touches still invalidate.
    m.handle().set(Phase::OldOnly).unwrap();
    m.set("k", rec("v3")).await.unwrap();
    assert_eq!(value(&new, "k").await, None);
    m.handle().set(Phase::ReadNew).unwrap();
    assert_eq!(m.get("k").await.unwrap().unwrap().value, "v3");
    m.handle().set(Phase::OldOnly).unwrap();
    let later = clock.now() + Duration::from_secs(5);
    assert!(m.touch("k", Some(later)).await.unwrap());
    assert_eq!(value(&new, "k").await, None);

    // A handle that never went past 0 % leaves new alone.
    let fresh = migration(&clock, &old, &new, Phase::OldOnly);
    new.raw().set("other", rec("x")).await.unwrap();
    fresh.set("other", rec("y")).await.unwrap();
    assert_eq!(new.calls(Op::Delete), 6);
}

#[tokio::test]
async fn write_both_create_is_insert_if_absent_across_both() {
    let (clock, old, new) = stores();
    let m = migration(&clock, &old, &new, Phase::write_both(100));
    // Live only in old: not created anew in new.
    old.raw().set("only-old", rec("o")).await.unwrap();
    assert!(!m.create("only-old", rec("x")).await.unwrap());
    assert_eq!(value(&new, "only-old").await, None);
    // Absent everywhere: created in both.
    assert!(m.create("fresh", rec("f")).await.unwrap());
    assert_eq!(value(&new, "fresh").await.as_deref(), Some(&b"f"[..]));
    assert_eq!(value(&old, "fresh").await.as_deref(), Some(&b"f"[..]));
    // New holds a leftover of a failed repair, old nothing: old decides,
    // and new gets the created record.
    new.raw().set("leftover", rec("stale")).await.unwrap();
    assert!(m.create("leftover", rec("c")).await.unwrap());
    assert_eq!(value(&new, "leftover").await.as_deref(), Some(&b"c"[..]));
    assert!(!m.create("fresh", rec("again")).await.unwrap());
}

#[tokio::test]
async fn read_new_create_sees_both_stores() {
    let (clock, old, new) = stores();
    let m = migration(&clock, &old, &new, Phase::ReadNew);
    old.raw().set("in-old", rec("o")).await.unwrap();
    assert!(!m.create("in-old", rec("x")).await.unwrap());
    new.raw().set("in-new", rec("n")).await.unwrap();
    assert!(!m.create("in-new", rec("x")).await.unwrap());
    assert_eq!(
        value(&old, "in-new").await,
        None,
        "our create in old undone"
    );
    assert!(m.create("fresh", rec("f")).await.unwrap());
    assert!(value(&old, "fresh").await.is_some() && value(&new, "fresh").await.is_some());
}

#[tokio::test]
async fn deletes_reach_both_stores_in_every_write_both_phase() {
    let (clock, old, new) = stores();
    for phase in [Phase::write_both(0), Phase::write_both(60), Phase::ReadNew] {
        let m = migration(&clock, &old, &new, phase);
        for s in [&old, &new] {
            s.raw().set("k", rec("v")).await.unwrap();
        }
        assert!(m.delete("k").await.unwrap(), "{phase}");
        assert_eq!(value(&old, "k").await, None, "{phase}");
        assert_eq!(value(&new, "k").await, None, "{phase}");
    }
}

#[tokio::test]
async fn a_failed_write_to_both_never_leaves_new_ahead_of_old() {
    let (clock, old, new) = stores();
    for phase in [Phase::write_both(100), Phase::ReadNew] {
        let m = migration(&clock, &old, &new, phase);
        m.set("k", rec("v1")).await.unwrap();
        // Old down: new was written first, then the write is taken back.
        old.set_down(true);
        let err = m.set("k", rec("v2")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        old.set_down(false);
        assert_eq!(
            value(&old, "k").await.as_deref(),
            Some(&b"v1"[..]),
            "{phase}"
        );
        assert_eq!(
            value(&new, "k").await,
            None,
            "{phase}: new must not keep v2"
        );
        assert_eq!(read(&m, "k").await, "v1", "{phase}");
        // Old applies the write but its answer is lost: new is cleared,
        // and both phases agree on what old now holds.
        old.set_timeout_after_apply(true);
        assert!(m.set("k", rec("v3")).await.is_err());
        old.set_timeout_after_apply(false);
        assert_eq!(value(&new, "k").await, None, "{phase}");
        assert_eq!(read(&m, "k").await, "v3", "{phase}");
        // New down: nothing changes anywhere.
        new.set_down(true);
        assert!(m.set("k", rec("v4")).await.is_err());
        assert!(m.touch("k", None).await.is_err());
        new.set_down(false);
        assert_eq!(
            value(&old, "k").await.as_deref(),
            Some(&b"v3"[..]),
            "{phase}"
        );
        // New applies but loses its answer: the key is removed from new.
        new.raw().set("k", rec("v3")).await.unwrap();
        new.set_timeout_after_apply(true);
        assert!(m.set("k", rec("v5")).await.is_err());
        new.set_timeout_after_apply(false);
        assert_eq!(value(&new, "k").await, None, "{phase}");
        assert_eq!(
            value(&old, "k").await.as_deref(),
            Some(&b"v3"[..]),
            "{phase}"
        );
        m.delete("k").await.unwrap();
    }
}

#[tokio::test]
async fn touch_in_write_both_keeps_both_expiries_equal() {
    let (clock, old, new) = stores();
    let m = migration(&clock, &old, &new, Phase::write_both(100));
    m.set("k", Record::expiring_after("v", Duration::from_secs(60)))
        .await
        .unwrap();
    let at = clock.now() + Duration::from_secs(600);
    assert!(m.touch("k", Some(at)).await.unwrap());
    for s in [&old, &new] {
        assert_eq!(
            s.raw().get("k").await.unwrap().unwrap().expires_at,
            Some(at)
        );
    }
    assert!(!m.touch("missing", Some(at)).await.unwrap());
}

#[tokio::test]
async fn new_only_leaves_old_alone() {
    let (clock, old, new) = stores();
    let m = migration(&clock, &old, &new, Phase::ReadNew);
    m.handle().set(Phase::NewOnly).unwrap();
    old.raw().set("k", rec("old")).await.unwrap();
    assert_eq!(m.get("k").await.unwrap(), None, "no fallback");
    m.set("k2", rec("v")).await.unwrap();
    m.delete("k").await.unwrap();
    assert_eq!(
        old.calls(Op::Set) + old.calls(Op::Delete) + old.calls(Op::Get),
        0
    );
    assert_eq!(value(&old, "k").await.as_deref(), Some(&b"old"[..]));
}

#[tokio::test]
async fn a_copy_whose_create_outcome_is_unknown_is_removed() {
    let (clock, old, new) = stores();
    let m = std::sync::Arc::new(migration(&clock, &old, &new, Phase::ReadNew));
    old.raw().set("k", rec("v")).await.unwrap();
    let create = new.gate(Op::Create, 0);
    let task = {
        let m = m.clone();
        tokio::spawn(async move { m.get("k").await })
    };
    create.reached().await;
    // The create was applied; its answer is lost (and so are the next
    // answers of new, though new applies them).
    new.set_timeout_after_apply(true);
    create.release();
    let got = task.await.unwrap().unwrap().unwrap();
    new.set_timeout_after_apply(false);
    assert_eq!(got.value, "v", "the read is served from old");
    assert_eq!(
        value(&new, "k").await,
        None,
        "the unchecked copy was removed"
    );
}

#[tokio::test]
async fn read_new_serves_from_old_while_new_is_down() {
    let (clock, old, new) = stores();
    let m = migration(&clock, &old, &new, Phase::ReadNew);
    m.set("k", rec("v")).await.unwrap();
    new.set_down(true);
    assert_eq!(read(&m, "k").await, "v");
    assert_eq!(m.get("missing").await.unwrap(), None);
    old.set_down(true);
    let err = m.get("k").await.unwrap_err();
    assert_eq!(err.store(), "new", "the error of new is reported");
    // NewOnly has no fallback.
    old.set_down(false);
    m.handle().set(Phase::NewOnly).unwrap();
    assert!(m.get("k").await.is_err());
}
