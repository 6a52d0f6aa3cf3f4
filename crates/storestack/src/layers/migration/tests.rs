//! Rules of the Migration decorator, one test each, over two
//! [`Scripted`] stores named "old" and "new". Races are driven step by
//! step with [pauses](Scripted::pause) (no sleeps).

use std::time::Duration;

use super::*;
use crate::clock::MockClock;
use crate::error::{ErrorKind, Op};
use crate::layers::testing::Scripted;

mod metrics_recorder;
mod races;
mod writes;

fn stores() -> (MockClock, Scripted, Scripted) {
    let clock = MockClock::new();
    let old = Scripted::on_clock(&clock).named("old");
    let new = Scripted::on_clock(&clock).named("new");
    (clock, old, new)
}

fn migration(
    clock: &MockClock,
    old: &Scripted,
    new: &Scripted,
    phase: Phase,
) -> Migration<Scripted, Scripted> {
    Migration::new(old.clone(), new.clone())
        .with_handle(MigrationHandle::new(phase))
        .clock(clock.clone())
}

fn rec(v: &'static str) -> Record {
    Record::never_expiring(v)
}

async fn value(s: &Scripted, key: &str) -> Option<bytes::Bytes> {
    s.data().get(key).await.unwrap().map(|r| r.value)
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

async fn read(m: &Migration<Scripted, Scripted>, key: &str) -> bytes::Bytes {
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
        new.data().len().await.unwrap(),
        0,
        "0 % writes nothing to new"
    );

    let m100 = migration(&clock, &old, &new, Phase::write_both(100));
    for i in 0..200 {
        m100.set(&format!("b{i}"), rec("v")).await.unwrap();
    }
    assert_eq!(
        new.data().len().await.unwrap(),
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
            new.data().delete(&key).await.unwrap();
            p.set(&key, rec("v")).await.unwrap();
            let in_new = new.data().get(&key).await.unwrap().is_some();
            assert_eq!(in_new, bucket(&key) < 40, "{key} round {round}");
        }
        assert!(old.data().get(&key).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn copy_on_read_keeps_the_remaining_expiry() {
    let (clock, old, new) = stores();
    let m = migration(&clock, &old, &new, Phase::ReadNew);
    let at = clock.now() + Duration::from_secs(90);
    old.data()
        .set("sess", Record::expiring_at("data", at))
        .await
        .unwrap();
    old.data().set("forever", rec("f")).await.unwrap();
    clock.advance(Duration::from_secs(30));

    let got = m.get("sess").await.unwrap().unwrap();
    assert_eq!(got.expires_at, Some(at));
    let copy = new.data().get("sess").await.unwrap().unwrap();
    assert_eq!(copy.expires_at, Some(at), "copied with its absolute expiry");
    assert_eq!(copy.value, "data");
    let forever = m.get("forever").await.unwrap().unwrap();
    assert_eq!(forever.expires_at, None);
    assert_eq!(
        new.data().get("forever").await.unwrap().unwrap().expires_at,
        None
    );

    clock.advance(Duration::from_secs(61));
    assert_eq!(m.get("sess").await.unwrap(), None, "expires on time in new");
    assert_eq!(new.data().get("sess").await.unwrap(), None);
}

#[tokio::test]
async fn phase_switch_and_back_routes_reads() {
    let (clock, old, new) = stores();
    let m = migration(&clock, &old, &new, Phase::OldOnly);
    let h = m.handle().clone();
    let mut changes = h.subscribe();
    old.data().set("k", rec("in-old")).await.unwrap();
    new.data().set("k", rec("in-new")).await.unwrap();

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
    new.data().set("other", rec("x")).await.unwrap();
    fresh.set("other", rec("y")).await.unwrap();
    assert_eq!(new.calls(Op::Delete), 6);
}

#[tokio::test]
async fn new_only_uses_old_only_to_clear_deletes() {
    let (clock, old, new) = stores();
    let m = migration(&clock, &old, &new, Phase::ReadNew);
    m.handle().set(Phase::NewOnly).unwrap();
    old.data().set("k", rec("old")).await.unwrap();
    assert_eq!(m.get("k").await.unwrap(), None, "no fallback");
    m.set("k2", rec("v")).await.unwrap();
    assert!(m.touch("k2", None).await.unwrap());
    assert!(m.create("k3", rec("v")).await.unwrap());
    let untouched = old.calls(Op::Set) + old.calls(Op::Get) + old.calls(Op::Create);
    assert_eq!(untouched + old.calls(Op::Touch) + old.calls(Op::Delete), 0);
    // A delete clears old too, so a straggler in ReadNew cannot copy the
    // key back; old being down does not fail it.
    new.data().set("k", rec("new")).await.unwrap();
    assert!(m.delete("k").await.unwrap());
    assert_eq!(value(&old, "k").await, None);
    old.down();
    assert!(m.delete("k2").await.unwrap());
}

#[tokio::test]
async fn read_new_serves_from_old_while_new_is_down() {
    let (clock, old, new) = stores();
    let m = migration(&clock, &old, &new, Phase::ReadNew);
    m.set("k", rec("v")).await.unwrap();
    new.down();
    assert_eq!(read(&m, "k").await, "v");
    assert_eq!(m.get("missing").await.unwrap(), None);
    old.down();
    let err = m.get("k").await.unwrap_err();
    assert_eq!(err.store(), "new", "the error of new is reported");
    // NewOnly has no fallback.
    old.heal();
    m.handle().set(Phase::NewOnly).unwrap();
    assert!(m.get("k").await.is_err());
}
