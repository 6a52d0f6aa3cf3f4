use std::time::{Duration, SystemTime};

use super::*;
use crate::history::{ErrorClass, ValueId};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn id(seq: u64) -> ValueId {
    ValueId { worker: 0, seq }
}

/// An operation on key `key` from `start` to `end` ms.
fn op(op: WorkOp, key: u32, start: u64, end: u64, outcome: Outcome) -> OpRecord {
    OpRecord {
        worker: 0,
        seq: start,
        op,
        key,
        start: ms(start),
        end: ms(end),
        write: op.writes_value().then_some(id(start)),
        expires_at: None,
        outcome,
    }
}

fn set(key: u32, start: u64, end: u64) -> OpRecord {
    op(WorkOp::Set, key, start, end, Outcome::Written)
}

fn get(key: u32, start: u64, end: u64, written_at: Option<u64>) -> OpRecord {
    let value = written_at.map_or(ReadValue::Absent, |at| ReadValue::Value(id(at)));
    op(WorkOp::Get, key, start, end, Outcome::Read(value))
}

fn history(ops: Vec<OpRecord>, final_reads: Vec<OpRecord>) -> History {
    let mut h = History::new(1, SystemTime::UNIX_EPOCH, "t:");
    h.ops = ops;
    h.final_reads = final_reads;
    h
}

#[test]
fn a_correct_history_is_clean() {
    let h = history(
        vec![
            get(1, 0, 1, None),
            set(1, 2, 3),
            get(1, 4, 5, Some(2)),
            op(WorkOp::Delete, 1, 6, 7, Outcome::Applied(true)),
            get(1, 8, 9, None),
            set(2, 10, 11),
        ],
        vec![get(1, 20, 21, None), get(2, 20, 21, Some(10))],
    );
    let c = WriteModel::new().check(&h);
    assert!(c.is_clean(), "{c:?}");
    assert_eq!(
        (c.keys_checked, c.keys_excluded, c.keys_unverified),
        (2, 0, 0)
    );
}

#[test]
fn stale_reads_lost_writes_and_resurrections_are_counted() {
    let h = history(
        vec![
            set(1, 0, 1),
            set(1, 2, 3),
            get(1, 4, 5, Some(0)), // stale: the write at 2 ended before
            set(2, 0, 1),
            op(WorkOp::Delete, 2, 2, 3, Outcome::Applied(true)),
            get(2, 4, 5, Some(0)), // deleted, came back
            set(3, 0, 1),
        ],
        vec![get(3, 10, 11, None)], // the write at 0 is gone
    );
    let c = WriteModel::new().check(&h);
    assert_eq!((c.lost, c.stale, c.resurrected, c.unknown), (1, 1, 1, 0));
    assert_eq!(c.examples.len(), 3);
    let stale = c.examples.iter().find(|e| e.starts_with("stale")).unwrap();
    // Times in seconds, values by id, keys by index.
    assert!(
        stale.contains("key #1 read at 0.004s..0.005s returned w0#0"),
        "{stale}"
    );
    assert!(stale.contains("\"w0#2\"@0.002s"), "{stale}");
}

#[test]
fn operations_whose_times_tie_are_concurrent() {
    // The second write ends exactly when the read starts: not ordered.
    let h = history(
        vec![set(1, 0, 1), set(1, 2, 4), get(1, 4, 5, Some(0))],
        vec![],
    );
    assert!(WriteModel::new().check(&h).is_clean());
    let h = history(
        vec![set(1, 0, 1), set(1, 2, 3), get(1, 4, 5, Some(0))],
        vec![],
    );
    assert_eq!(WriteModel::new().check(&h).stale, 1);
}

#[test]
fn the_tolerance_excuses_only_recent_writes() {
    let h = history(
        vec![set(1, 0, 1), set(1, 10, 20), get(1, 30, 31, Some(0))],
        vec![],
    );
    assert_eq!(WriteModel::new().check(&h).stale, 1);
    // The newer write ended 10 ms before the read began.
    assert_eq!(WriteModel::new().stale_tolerance(ms(9)).check(&h).stale, 1);
    assert!(WriteModel::new()
        .stale_tolerance(ms(11))
        .check(&h)
        .is_clean());
}

#[test]
fn failed_and_hung_writes_are_indeterminate() {
    let h = history(
        vec![
            set(1, 0, 1),
            op(WorkOp::Set, 1, 2, 3, Outcome::Failed(ErrorClass::Timeout)),
            op(WorkOp::Set, 1, 4, 5, Outcome::Hung),
            get(1, 6, 7, Some(0)),
            get(1, 8, 9, Some(4)),
            get(1, 10, 11, Some(2)),
        ],
        vec![get(1, 20, 21, Some(2))],
    );
    // A read may see an unacknowledged write or not, in any order.
    assert!(WriteModel::new().check(&h).is_clean());
}

#[test]
fn failed_final_reads_leave_keys_unverified() {
    let failed = op(
        WorkOp::Get,
        1,
        10,
        11,
        Outcome::Failed(ErrorClass::Unavailable),
    );
    let h = history(vec![set(1, 0, 1)], vec![failed]);
    let c = WriteModel::new().check(&h);
    assert_eq!((c.lost, c.keys_unverified), (0, 1));
}

#[test]
fn expiring_keys_and_foreign_reads_are_left_out() {
    let mut expiring = set(1, 0, 1);
    expiring.expires_at = Some(SystemTime::UNIX_EPOCH + ms(500));
    let mut lasting = set(2, 0, 1);
    lasting.expires_at = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(3600));
    let garbage = op(
        WorkOp::Get,
        2,
        5,
        6,
        Outcome::Read(ReadValue::Unrecognized { len: 3 }),
    );
    let h = history(
        vec![expiring, lasting, garbage],
        vec![get(1, 10, 11, None), get(2, 10, 11, Some(0))],
    );
    let c = WriteModel::new().check(&h);
    assert!(c.is_clean(), "{c:?}");
    assert_eq!((c.keys_checked, c.keys_excluded), (1, 1));
}

#[test]
fn a_value_from_the_future_is_unknown() {
    let h = history(vec![get(1, 0, 1, Some(5)), set(1, 5, 6)], vec![]);
    assert_eq!(WriteModel::new().check(&h).unknown, 1);
}
