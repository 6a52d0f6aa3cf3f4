//! Writes to both stores: create across both, deletes everywhere,
//! touches, failures.

use super::*;

#[tokio::test]
async fn write_both_create_is_insert_if_absent_across_both() {
    let (clock, old, new) = stores();
    let m = migration(&clock, &old, &new, Phase::write_both(100));
    // Live only in old: not created anew in new.
    old.data().set("only-old", rec("o")).await.unwrap();
    assert!(!m.create("only-old", rec("x")).await.unwrap());
    assert_eq!(value(&new, "only-old").await, None);
    // Absent everywhere: created in both.
    assert!(m.create("fresh", rec("f")).await.unwrap());
    assert_eq!(value(&new, "fresh").await.as_deref(), Some(&b"f"[..]));
    assert_eq!(value(&old, "fresh").await.as_deref(), Some(&b"f"[..]));
    // New holds a leftover of a failed repair, old nothing: old decides,
    // and new gets the created record.
    new.data().set("leftover", rec("stale")).await.unwrap();
    assert!(m.create("leftover", rec("c")).await.unwrap());
    assert_eq!(value(&new, "leftover").await.as_deref(), Some(&b"c"[..]));
    assert!(!m.create("fresh", rec("again")).await.unwrap());
}

#[tokio::test]
async fn read_new_create_sees_both_stores() {
    let (clock, old, new) = stores();
    let m = migration(&clock, &old, &new, Phase::ReadNew);
    old.data().set("in-old", rec("o")).await.unwrap();
    assert!(!m.create("in-old", rec("x")).await.unwrap());
    new.data().set("in-new", rec("n")).await.unwrap();
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
            s.data().set("k", rec("v")).await.unwrap();
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
        old.down();
        let err = m.set("k", rec("v2")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        old.heal();
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
        old.fail_after_write();
        assert!(m.set("k", rec("v3")).await.is_err());
        old.heal();
        assert_eq!(value(&new, "k").await, None, "{phase}");
        assert_eq!(read(&m, "k").await, "v3", "{phase}");
        // New down: nothing changes anywhere.
        new.down();
        assert!(m.set("k", rec("v4")).await.is_err());
        assert!(m.touch("k", None).await.is_err());
        new.heal();
        assert_eq!(
            value(&old, "k").await.as_deref(),
            Some(&b"v3"[..]),
            "{phase}"
        );
        // New applies but loses its answer: the key is removed from new.
        new.data().set("k", rec("v3")).await.unwrap();
        new.fail_after_write();
        assert!(m.set("k", rec("v5")).await.is_err());
        new.heal();
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
            s.data().get("k").await.unwrap().unwrap().expires_at,
            Some(at)
        );
    }
    assert!(!m.touch("missing", Some(at)).await.unwrap());
}

#[tokio::test]
async fn a_copy_whose_create_outcome_is_unknown_is_removed() {
    let (clock, old, new) = stores();
    let m = std::sync::Arc::new(migration(&clock, &old, &new, Phase::ReadNew));
    old.data().set("k", rec("v")).await.unwrap();
    let create = new.pause(Op::Create, 0);
    let task = {
        let m = m.clone();
        tokio::spawn(async move { m.get("k").await })
    };
    create.reached().await;
    // The create was applied; its answer is lost (and so are those of
    // new's next writes, though new applies them; no read of new follows).
    new.fail_after_write();
    create.release();
    let got = task.await.unwrap().unwrap().unwrap();
    new.heal();
    assert_eq!(got.value, "v", "the read is served from old");
    assert_eq!(
        value(&new, "k").await,
        None,
        "the unchecked copy was removed"
    );
}
