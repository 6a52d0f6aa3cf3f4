use std::collections::{BTreeMap, HashSet};

use storestack::layers::fault::OutageMode;
use storestack::{FaultConfig, MemoryStore, StoreExt};

use super::*;
use crate::history::ReadValue;

fn small() -> WorkloadConfig {
    WorkloadConfig::default()
        .keys(50)
        .concurrency(4)
        .rate(None)
        .stop(Stop::Ops(400))
}

/// One operation without timing or result: sequence, op, key, value.
type Issued = (u64, WorkOp, u32, Option<ValueId>);

/// What each worker did, leaving out timing and results.
fn sequences(history: &History) -> BTreeMap<u32, Vec<Issued>> {
    let mut by_worker: BTreeMap<u32, Vec<_>> = BTreeMap::new();
    for op in &history.ops {
        by_worker
            .entry(op.worker)
            .or_default()
            .push((op.seq, op.op, op.key, op.write));
    }
    for ops in by_worker.values_mut() {
        ops.sort();
    }
    by_worker
}

#[test]
fn plan_is_a_function_of_seed_and_worker() {
    let w = Workload::new(WorkloadConfig::default());
    assert_eq!(w.plan(42, 0, 500), w.plan(42, 0, 500));
    assert_ne!(w.plan(42, 0, 500), w.plan(43, 0, 500));
    assert_ne!(w.plan(42, 0, 500), w.plan(42, 1, 500));
}

#[test]
fn plan_follows_the_mix_and_bounds() {
    let config = WorkloadConfig::default()
        .keys(100)
        .value_size(10..=20)
        .ttl(Duration::from_secs(5)..=Duration::from_secs(6), 0);
    let plan = Workload::new(config).plan(1, 0, 10_000);
    let mut counts: BTreeMap<WorkOp, usize> = BTreeMap::new();
    for op in &plan {
        *counts.entry(op.op).or_default() += 1;
        assert!(op.key < 100);
        if op.op.writes_value() {
            assert!((10..=20).contains(&op.value_size), "{op:?}");
        }
        if matches!(op.op, WorkOp::Set | WorkOp::Create | WorkOp::Touch) {
            let ttl = op.ttl.expect("never_expire_percent is 0");
            assert!(ttl >= Duration::from_secs(5) && ttl <= Duration::from_secs(6));
        }
    }
    // 70 % gets, 15 % sets, 5 % each of the rest, within a few percent.
    let share = |op| counts[&op] as f64 / plan.len() as f64;
    assert!((share(WorkOp::Get) - 0.70).abs() < 0.03, "{counts:?}");
    assert!((share(WorkOp::Set) - 0.15).abs() < 0.02, "{counts:?}");
    assert!((share(WorkOp::Delete) - 0.05).abs() < 0.02, "{counts:?}");
    // The hot 20 % of keys take about 80 % of the operations.
    let hot = plan.iter().filter(|op| op.key < 20).count() as f64 / plan.len() as f64;
    assert!((hot - 0.8).abs() < 0.03, "{hot}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_same_operations() {
    let workload = Workload::new(small());
    let a = workload.run(MemoryStore::new().shared(), 9).await;
    let b = workload.run(MemoryStore::new().shared(), 9).await;
    let c = workload.run(MemoryStore::new().shared(), 10).await;
    assert_eq!(a.ops.len(), 400);
    assert_eq!(sequences(&a), sequences(&b));
    assert_ne!(sequences(&a), sequences(&c));
    // And they are the plan.
    for (worker, ops) in sequences(&a) {
        let plan = workload.plan(9, worker, ops.len());
        let planned: Vec<_> = plan.iter().map(|p| (p.seq, p.op, p.key)).collect();
        let ran: Vec<_> = ops.iter().map(|(s, o, k, _)| (*s, *o, *k)).collect();
        assert_eq!(planned, ran);
    }
}

#[tokio::test]
async fn every_write_is_unique_and_reads_identify_it() {
    let history = Workload::new(small().concurrency(1))
        .run(MemoryStore::new().shared(), 3)
        .await;
    let writes: Vec<ValueId> = history.ops.iter().filter_map(|op| op.write).collect();
    assert!(writes.len() > 40, "{}", writes.len());
    assert_eq!(writes.iter().collect::<HashSet<_>>().len(), writes.len());
    // With one worker on a healthy store, every read returns the last
    // value written to its key (or nothing).
    let mut last: BTreeMap<u32, Option<ValueId>> = BTreeMap::new();
    let mut reads_with_values = 0;
    for op in &history.ops {
        match (op.op, op.outcome) {
            (WorkOp::Set, Outcome::Written) | (WorkOp::Create, Outcome::Applied(true)) => {
                last.insert(op.key, op.write);
            }
            (WorkOp::Delete, Outcome::Applied(_)) => {
                last.insert(op.key, None);
            }
            (WorkOp::Get, Outcome::Read(read)) => {
                let expected = last.get(&op.key).copied().flatten();
                match read {
                    ReadValue::Absent => assert_eq!(expected, None, "{op:?}"),
                    ReadValue::Value(id) => {
                        reads_with_values += 1;
                        assert_eq!(Some(id), expected, "{op:?}");
                    }
                    other => panic!("unexpected read {other:?}"),
                }
            }
            (_, outcome) => assert!(outcome.is_ok(), "{op:?}"),
        }
    }
    assert!(reads_with_values > 10);
}

#[tokio::test(start_paused = true)]
async fn hung_operations_are_abandoned_at_the_deadline() {
    let store = MemoryStore::new().fault_injection(
        FaultConfig::default()
            .seed(1)
            .down(true)
            .outage_mode(OutageMode::Hang),
    );
    let deadline = Duration::from_millis(300);
    let history = Workload::new(small().hang_deadline(deadline).stop(Stop::Ops(8)))
        .run(store.shared(), 1)
        .await;
    assert_eq!(history.ops.len(), 8);
    for op in &history.ops {
        assert_eq!(op.outcome, Outcome::Hung);
        assert_eq!(op.latency(), deadline);
    }
}

#[tokio::test]
async fn errors_are_recorded_by_kind() {
    let store = MemoryStore::new().fault_injection(FaultConfig::default().seed(1).down(true));
    let history = Workload::new(small().stop(Stop::Ops(20)))
        .run(store.shared(), 1)
        .await;
    assert!(history
        .ops
        .iter()
        .all(|op| op.outcome == Outcome::Failed(crate::history::ErrorClass::Unavailable)));
}

#[tokio::test]
async fn final_reads_cover_every_written_key_through_every_process() {
    let store = MemoryStore::new();
    let other = MemoryStore::new(); // a "process" that sees nothing
    let workload = Workload::new(small().stop(Stop::Ops(200)));
    let start = RunStart::now(&workload.config().clock);
    let processes = [store.clone().shared(), other.shared()];
    let mut history = workload
        .run_from(
            &processes[..1],
            3,
            start,
            None,
            &Arc::new(Progress::default()),
        )
        .await;
    read_back(&mut history, &processes, start, ReadBack::default()).await;
    let written: HashSet<u32> = history
        .ops
        .iter()
        .filter(|op| op.op != WorkOp::Get)
        .map(|op| op.key)
        .collect();
    assert_eq!(history.final_reads.len(), written.len() * 2);
    for read in &history.final_reads {
        assert!(written.contains(&read.key));
        assert!(read.outcome.is_ok());
        assert!(read.start >= history.elapsed);
    }
    // Through the empty process every key reads absent: the model says
    // those writes are lost.
    let c = crate::checker::ConsistencyModel::check(&crate::checker::WriteModel::new(), &history);
    assert!(c.lost > 0, "{c:?}");
}

#[tokio::test(start_paused = true)]
async fn failed_final_reads_are_retried_then_recorded() {
    let store = MemoryStore::new().fault_injection(FaultConfig::default().seed(2));
    let faults = store.handle();
    let workload = Workload::new(small().stop(Stop::Ops(50)));
    let start = RunStart::now(&workload.config().clock);
    let processes = [store.shared()];
    let mut history = workload
        .run_from(&processes, 3, start, None, &Arc::new(Progress::default()))
        .await;
    faults.set_down(true);
    let patience = Duration::from_secs(1);
    read_back(
        &mut history,
        &processes,
        start,
        ReadBack::default().patience(patience),
    )
    .await;
    assert!(!history.final_reads.is_empty());
    assert!(history.final_reads.iter().all(|r| !r.outcome.is_ok()));
    // Retried until the patience ran out.
    assert!(history.final_reads.iter().all(|r| r.start >= patience));
}

#[tokio::test(start_paused = true)]
async fn rate_and_duration_bound_the_run() {
    let config = small()
        .rate(Some(200))
        .stop(Stop::After(Duration::from_secs(2)));
    let progress = Arc::new(Progress::default());
    let start = RunStart::now(&config.clock);
    let history = Workload::new(config)
        .run_from(&[MemoryStore::new().shared()], 5, start, None, &progress)
        .await;
    // 200 ops/s for 2 s (first ticks at t = 0).
    assert!(
        (395..=405).contains(&history.ops.len()),
        "{}",
        history.ops.len()
    );
    assert_eq!(progress.ops(), history.ops.len() as u64);
    assert!(history
        .ops
        .iter()
        .all(|op| op.start < Duration::from_secs(2)));
    assert!(history.ops.windows(2).all(|w| w[0].start <= w[1].start));
}
