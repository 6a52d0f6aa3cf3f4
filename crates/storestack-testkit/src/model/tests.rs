//! Hand-made histories the checker must accept or flag.

use super::*;

fn set(h: &History, key: &str, v: &str) -> Pending {
    h.begin(key, Call::Set(v.to_owned()))
}

fn read(h: &History, key: &str) -> Pending {
    h.begin(key, Call::Get)
}

fn got(v: &str) -> Outcome {
    Outcome::Read(Some(v.to_owned()))
}

const ABSENT: Outcome = Outcome::Read(None);

/// Runs `set` to completion.
fn write(h: &History, key: &str, v: &str) {
    set(h, key, v).finish(Outcome::Written);
}

fn delete(h: &History, key: &str) {
    h.begin(key, Call::Delete).finish(Outcome::Flag(true));
}

#[test]
fn sequential_reads_of_the_latest_write_are_clean() {
    let h = History::new();
    read(&h, "k").finish(ABSENT);
    write(&h, "k", "k:1");
    read(&h, "k").finish(got("k:1"));
    write(&h, "k", "k:2");
    read(&h, "k").finish(got("k:2"));
    h.begin_final_read("k").finish(got("k:2"));
    let r = h.check();
    assert!(r.is_clean(), "{r}");
    assert_eq!((r.ops, r.reads, r.writes_acknowledged), (6, 4, 2));
}

#[test]
fn reading_an_overwritten_value_is_stale() {
    let h = History::new();
    write(&h, "k", "k:1");
    write(&h, "k", "k:2");
    read(&h, "k").finish(got("k:1"));
    let r = h.check();
    assert_eq!(r.stale_reads, 1, "{r}");
    assert_eq!(r.examples[0].kind, ViolationKind::StaleRead);
    assert!(r.examples[0].expected.contains("k:2"), "{r}");
}

#[test]
fn reading_absent_after_an_acknowledged_write_is_stale() {
    let h = History::new();
    write(&h, "k", "k:1");
    read(&h, "k").finish(ABSENT);
    assert_eq!(h.check().stale_reads, 1);
}

#[test]
fn a_read_concurrent_with_a_write_may_return_old_or_new() {
    for value in ["k:1", "k:2"] {
        let h = History::new();
        write(&h, "k", "k:1");
        let r = read(&h, "k");
        let w = set(&h, "k", "k:2");
        r.finish(got(value));
        w.finish(Outcome::Written);
        let report = h.check();
        assert!(report.is_clean(), "{value}: {report}");
    }
}

#[test]
fn a_write_that_overlapped_another_does_not_supersede_it() {
    // w1 and w2 overlap; both acknowledged: reads may flip between them
    // (they are not ordered), but not back to k:0.
    let h = History::new();
    write(&h, "k", "k:0");
    let w1 = set(&h, "k", "k:1");
    let w2 = set(&h, "k", "k:2");
    w1.finish(Outcome::Written);
    w2.finish(Outcome::Written);
    read(&h, "k").finish(got("k:2"));
    read(&h, "k").finish(got("k:1"));
    assert!(h.check().is_clean());
    read(&h, "k").finish(got("k:0"));
    assert_eq!(h.check().stale_reads, 1);
}

#[test]
fn a_value_superseded_while_the_read_ran_is_still_stale_if_superseded_before() {
    // k:2 ended before the read began: k:1 is stale even though a third
    // write overlaps the read.
    let h = History::new();
    write(&h, "k", "k:1");
    write(&h, "k", "k:2");
    let r = read(&h, "k");
    let w3 = set(&h, "k", "k:3");
    r.finish(got("k:1"));
    w3.finish(Outcome::Written);
    assert_eq!(h.check().stale_reads, 1);
}

#[test]
fn reading_a_value_before_its_write_began_is_unknown() {
    let h = History::new();
    let r = read(&h, "k");
    r.finish(got("k:1"));
    write(&h, "k", "k:1");
    read(&h, "k").finish(got("never-written"));
    let report = h.check();
    assert_eq!(report.unknown_values, 2, "{report}");
    assert!(!report.is_clean());
}

#[test]
fn a_deleted_value_coming_back_is_a_resurrection() {
    let h = History::new();
    write(&h, "k", "k:1");
    delete(&h, "k");
    read(&h, "k").finish(ABSENT);
    assert!(h.check().is_clean());
    read(&h, "k").finish(got("k:1"));
    let r = h.check();
    assert_eq!((r.resurrected, r.stale_reads), (1, 0), "{r}");
    // A final read of it too.
    h.begin_final_read("k").finish(got("k:1"));
    assert_eq!(h.check().resurrected, 2);
}

#[test]
fn a_delete_answering_false_is_still_a_write_of_absence() {
    let h = History::new();
    write(&h, "k", "k:1");
    h.begin("k", Call::Delete).finish(Outcome::Flag(false));
    read(&h, "k").finish(got("k:1"));
    assert_eq!(h.check().resurrected, 1);
}

#[test]
fn a_failed_write_may_or_may_not_have_happened_forever() {
    for value in [Some("k:1"), Some("k:2")] {
        let h = History::new();
        write(&h, "k", "k:1");
        set(&h, "k", "k:2").finish(Outcome::Failed(ErrorKind::Unavailable));
        read(&h, "k").finish(Outcome::Read(value.map(str::to_owned)));
        h.begin_final_read("k")
            .finish(Outcome::Read(value.map(str::to_owned)));
        let r = h.check();
        assert!(r.is_clean(), "{value:?}: {r}");
        assert_eq!(r.writes_indeterminate, 1);
        assert_eq!(r.errors.get("unavailable"), Some(&1));
        assert_eq!(r.errors_by_op.get("set"), Some(&1));
    }
    // ...but it does not supersede anything: k:0 is still stale after k:1.
    let h = History::new();
    write(&h, "k", "k:0");
    write(&h, "k", "k:1");
    set(&h, "k", "k:2").finish(Outcome::Failed(ErrorKind::Timeout));
    read(&h, "k").finish(got("k:0"));
    assert_eq!(h.check().stale_reads, 1);
}

#[test]
fn an_abandoned_operation_is_indeterminate() {
    let h = History::new();
    write(&h, "k", "k:1");
    drop(set(&h, "k", "k:2"));
    read(&h, "k").finish(got("k:2"));
    let r = h.check();
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.writes_indeterminate, 1);
}

#[test]
fn a_create_that_found_the_key_wrote_nothing() {
    let h = History::new();
    h.begin("k", Call::Create("k:1".into()))
        .finish(Outcome::Flag(true));
    h.begin("k", Call::Create("k:2".into()))
        .finish(Outcome::Flag(false));
    read(&h, "k").finish(got("k:1"));
    assert!(h.check().is_clean());
    read(&h, "k").finish(got("k:2"));
    assert_eq!(h.check().unknown_values, 1);
}

#[test]
fn a_final_read_missing_the_last_write_counts_a_lost_write() {
    let h = History::new();
    write(&h, "k", "k:1");
    write(&h, "k", "k:2");
    h.begin_final_read("k").finish(got("k:1"));
    let r = h.check();
    assert_eq!((r.lost_writes, r.stale_reads), (1, 0), "{r}");
    assert_eq!(r.examples[0].kind, ViolationKind::LostWrite);

    let h = History::new();
    write(&h, "k", "k:1");
    h.begin_final_read("k").finish(ABSENT);
    assert_eq!(h.check().lost_writes, 1);
}

#[test]
fn a_final_read_of_either_concurrent_last_write_is_fine() {
    for value in ["k:1", "k:2"] {
        let h = History::new();
        let w1 = set(&h, "k", "k:1");
        let w2 = set(&h, "k", "k:2");
        w2.finish(Outcome::Written);
        w1.finish(Outcome::Written);
        h.begin_final_read("k").finish(got(value));
        assert!(h.check().is_clean());
    }
}

#[test]
fn keys_are_checked_independently_and_duplicates_are_reported() {
    let h = History::new();
    write(&h, "a", "v");
    write(&h, "b", "v");
    read(&h, "a").finish(got("v"));
    read(&h, "b").finish(got("v"));
    assert!(h.check().is_clean());
    write(&h, "a", "v");
    let r = h.check();
    assert_eq!(r.duplicate_values, 1);
    assert!(!r.is_clean());
}

#[test]
fn touch_is_counted_but_changes_no_value() {
    let h = History::new();
    write(&h, "k", "k:1");
    h.begin("k", Call::Touch).finish(Outcome::Flag(true));
    h.begin("k", Call::Touch)
        .finish(Outcome::Failed(ErrorKind::CircuitOpen));
    read(&h, "k").finish(got("k:1"));
    let r = h.check();
    assert!(r.is_clean());
    assert_eq!(r.errors_by_op.get("touch"), Some(&1));
    assert_eq!(r.errors_total(), 1);
}

#[test]
fn events_display_without_surprises() {
    let h = History::new();
    write(&h, "k", "k:1");
    let e = &h.events()[0];
    assert_eq!(e.to_string(), "[1..2] set \"k\" \"k:1\" -> Written");
    assert!(e.started_at <= e.ended_at);
}

#[tokio::test]
async fn recording_helpers_drive_a_real_store() {
    let store = storestack::MemoryStore::new();
    let h = History::new();
    h.set(&store, "k", "k:1", Expiry::Never).await.unwrap();
    assert!(!h.create(&store, "k", "k:2", Expiry::Never).await.unwrap());
    assert!(h.touch(&store, "k", None).await.unwrap());
    assert!(h.delete(&store, "k").await.unwrap());
    assert!(h.create(&store, "k", "k:3", Expiry::Never).await.unwrap());
    assert!(h.get(&store, "").await.is_err());
    h.final_get(&store, "k").await.unwrap();
    let r = h.check();
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.writes_acknowledged, 3);
    assert_eq!(r.errors.get("invalid_input"), Some(&1));
}
