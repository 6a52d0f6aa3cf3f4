use std::time::SystemTime;

use super::*;
use crate::history::{FaultWindow, OpRecord, ValueId, WorkOp};
use crate::invariants::{Check, Expect, Invariants};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn op(start: u64, latency: u64, outcome: Outcome) -> OpRecord {
    OpRecord {
        worker: 0,
        seq: start,
        op: WorkOp::Get,
        key: 1,
        start: ms(start),
        end: ms(start + latency),
        write: None,
        expires_at: None,
        outcome,
    }
}

/// 100 ok ops before (1..=100 ms latency), 10 during: 4 unavailable, 2
/// timeouts, 1 hang, 3 ok; 50 ok after, 2 ms each, one of them corrupt.
fn hand_made() -> History {
    let mut ops = Vec::new();
    for i in 0..100 {
        ops.push(op(i * 10, i + 1, Outcome::Read(ReadValue::Absent)));
    }
    let unavailable = Outcome::Failed(ErrorClass::Unavailable);
    for (i, outcome) in [
        unavailable,
        unavailable,
        unavailable,
        unavailable,
        Outcome::Failed(ErrorClass::Timeout),
        Outcome::Failed(ErrorClass::Timeout),
        Outcome::Hung,
        Outcome::Written,
        Outcome::Applied(true),
        Outcome::Applied(false),
    ]
    .into_iter()
    .enumerate()
    {
        let latency = if outcome == Outcome::Hung { 500 } else { 5 };
        ops.push(op(2_000 + i as u64 * 10, latency, outcome));
    }
    for i in 0..50 {
        let outcome = if i == 0 {
            Outcome::Read(ReadValue::Unrecognized { len: 3 })
        } else {
            Outcome::Read(ReadValue::Value(ValueId { worker: 0, seq: 1 }))
        };
        ops.push(op(4_000 + i * 10, 2, outcome));
    }
    History {
        seed: 1,
        started_at: SystemTime::UNIX_EPOCH,
        elapsed: ms(4_600),
        hang_deadline: ms(500),
        key_prefix: "t:".into(),
        window: Some(FaultWindow::new(ms(1_995), ms(3_000))),
        ops,
        final_reads: Vec::new(),
    }
}

#[test]
fn counts_errors_hangs_and_latency_per_phase() {
    let v = StatsChecker::stats_only().check(&hand_made());
    assert_eq!(v.total.ops, 160);
    assert_eq!(v.total.ok, 153);
    assert_eq!(v.total.hangs, 1);
    assert_eq!(v.total.errors[&ErrorClass::Unavailable], 4);
    assert_eq!(v.total.errors[&ErrorClass::Timeout], 2);
    assert_eq!(v.unrecognized_reads, 1);
    assert_eq!(v.misplaced_reads, 0);
    assert_eq!(v.consistency, None);

    let before = v.phase(Phase::Before);
    assert_eq!((before.ops, before.ok, before.error_count()), (100, 100, 0));
    // Latencies 1..=100 ms: p50 = 50 ms, p99 = 99 ms, max = 100 ms (within
    // the histogram's 3 significant digits).
    let close = |d: Duration, want: u64| d.abs_diff(ms(want)) <= Duration::from_micros(100);
    assert!(close(before.latency.p50, 50), "{:?}", before.latency);
    assert!(close(before.latency.p99, 99), "{:?}", before.latency);
    assert!(close(before.latency.max, 100), "{:?}", before.latency);

    let during = v.phase(Phase::During);
    assert_eq!(during.ops, 10);
    assert_eq!(during.error_count(), 6);
    assert_eq!(during.hangs, 1);
    // The hang is not a latency sample.
    assert_eq!(during.latency.count, 9);
    assert!(close(during.latency.max, 5));
    assert!((during.availability() - 30.0).abs() < 1e-9);

    let after = v.phase(Phase::After);
    assert_eq!((after.ops, after.error_count(), after.hangs), (50, 0, 0));
    assert!(close(after.latency.p99, 2));
}

#[test]
fn model_fills_consistency() {
    let checker = StatsChecker::new().with_model(|h: &History| {
        Consistency::new(h.ops.len() as u64, 2, 3).with_examples(vec!["k1: w0#1".into()])
    });
    let v = checker.check(&hand_made());
    let c = v.consistency.expect("model ran");
    assert_eq!((c.lost, c.stale, c.resurrected), (160, 2, 3));
}

#[test]
fn invariants_against_the_hand_made_history() {
    let v = StatsChecker::stats_only().check(&hand_made());
    let eval = Invariants::strict()
        .and(Expect::ErrorsIn(Phase::During))
        .and(Expect::MaxP99 {
            phase: Phase::After,
            limit: ms(3),
        })
        .and(Expect::MaxP99 {
            phase: Phase::Before,
            limit: ms(10),
        })
        .and(Expect::MinAvailability(99.0))
        .evaluate(&v);
    let result = |e: &Expect| eval.0.iter().find(|(x, _)| x == e).unwrap().1.clone();
    assert!(matches!(result(&Expect::NoLostWrites), Check::Unchecked(_)));
    assert_eq!(result(&Expect::NoErrorsIn(Phase::Before)), Check::Pass);
    assert_eq!(result(&Expect::NoErrorsIn(Phase::After)), Check::Pass);
    assert_eq!(result(&Expect::ErrorsIn(Phase::During)), Check::Pass);
    assert_eq!(
        result(&Expect::NoHangs),
        Check::Fail("1 hung operations".into())
    );
    assert_eq!(
        result(&Expect::NoCorruptReads),
        Check::Fail("1 corrupt reads".into())
    );
    assert!(matches!(
        result(&Expect::MaxP99 {
            phase: Phase::Before,
            limit: ms(10)
        }),
        Check::Fail(_)
    ));
    assert!(matches!(
        result(&Expect::MinAvailability(99.0)),
        Check::Fail(_)
    ));
    assert!(!eval.passed());
    assert_eq!(eval.failures().count(), 4);
    assert_eq!(eval.unchecked().count(), 3);
}

#[test]
fn a_fault_that_never_showed_fails_errors_during() {
    let mut h = hand_made();
    h.window = Some(FaultWindow::new(ms(3_500), ms(3_600)));
    let v = StatsChecker::new().check(&h);
    assert!(matches!(
        Expect::ErrorsIn(Phase::During).check(&v),
        Check::Fail(_)
    ));
}

#[test]
fn timeline_buckets_errors_and_latency() {
    let t = Timeline::of(&hand_made(), 46);
    assert_eq!(t.width, ms(100));
    assert_eq!(t.buckets.len(), 47);
    let total: u64 = t.buckets.iter().map(|b| b.ops).sum();
    assert_eq!(total, 160);
    // 2.0–2.1 s holds the ten ops during the fault: 6 errors + 1 hang.
    let b = t.buckets[20];
    assert_eq!(b.start, ms(2_000));
    assert_eq!((b.ops, b.errors, b.hangs), (10, 6, 1));
    assert!((b.error_rate() - 70.0).abs() < 1e-9);
    assert_eq!(t.buckets[30].ops, 0);
    assert_eq!(t.buckets[30].error_rate(), 0.0);
    assert!(t.buckets[40].p50 > Duration::ZERO);
}
