//! MongoStore through a real outage: the test starts its own
//! `secantusd-rs`, kills it (SIGKILL) while a workload runs, checks that
//! every operation fails promptly with a transient error, restarts the
//! server on the same port and data directory, and checks that the same
//! store instance recovers by itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use storestack::{Op, Record, Result, ScanCursor, Store};
use storestack_mongodb::{MongoConfig, MongoStore};
use storestack_tests::mongo::{self, Secantus};

const SERVER_SELECTION: Duration = Duration::from_millis(500);
const OPERATION: Duration = Duration::from_millis(1500);
/// What a failing call may take beyond its operation timeout (scheduling).
const SLACK: Duration = Duration::from_millis(300);
/// How long after the restart the store must work again.
const RECOVERY_BOUND: Duration = Duration::from_secs(5);

async fn run(store: &MongoStore, op: Op, i: usize) -> Result<()> {
    let key = format!("k{}", i % 50);
    let rec = || Record::expiring_after(vec![7u8; 256], Duration::from_secs(600));
    match op {
        Op::Get => store.get(&key).await.map(drop),
        Op::Set => store.set(&key, rec()).await,
        Op::Create => store.create(&format!("c{i}"), rec()).await.map(drop),
        Op::Delete => store.delete(&format!("c{}", i / 2)).await.map(drop),
        Op::Touch => store.touch(&key, None).await.map(drop),
        Op::Scan => store.scan("k", ScanCursor::start(), 10).await.map(drop),
        Op::Len => store.len().await.map(drop),
        _ => store.clear().await,
    }
}

/// Runs every operation once, concurrently; returns each one's outcome and
/// latency.
async fn every_op_once(store: &Arc<MongoStore>, round: usize) -> Vec<(Op, Result<()>, Duration)> {
    let tasks: Vec<_> = Op::ALL
        .into_iter()
        .map(|op| {
            let store = store.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                let r = run(&store, op, round).await;
                (op, r, t.elapsed())
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// A server of our own and a store on it, or `None` if the binary is
/// missing.
async fn own_server() -> Option<(Secantus, Arc<MongoStore>)> {
    let server = Secantus::start_or_skip()?;
    let config = MongoConfig::new(server.url())
        .database(mongo::DATABASE)
        .collection("outage")
        .server_selection_timeout(SERVER_SELECTION)
        .connect_timeout(SERVER_SELECTION)
        .operation_timeout(OPERATION);
    let store = Arc::new(MongoStore::connect(config).await.expect("connect"));
    Some((server, store))
}

/// Waits until every operation succeeds again; returns how long it took.
async fn wait_for_recovery(store: &Arc<MongoStore>) -> Duration {
    let since = Instant::now();
    loop {
        let results = every_op_once(store, 7).await;
        if results.iter().all(|(_, r, _)| r.is_ok()) {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < RECOVERY_BOUND,
            "the store did not recover within {RECOVERY_BOUND:?}: {:?}",
            results.iter().find_map(|(_, r, _)| r.as_ref().err())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fails_fast_and_the_same_store_recovers() {
    let Some((mut server, store)) = own_server().await else {
        return;
    };
    for i in 0..50 {
        run(&store, Op::Set, i)
            .await
            .expect("set before the outage");
    }

    // A workload that keeps running across the kill and the restart.
    let stop = Arc::new(AtomicBool::new(false));
    let workload = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut ok, mut failed, mut worst_failure) = (0u32, 0u32, Duration::ZERO);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let op = [Op::Get, Op::Set, Op::Touch, Op::Get][i % 4];
                let t = Instant::now();
                match run(&store, op, i).await {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        assert!(e.is_transient(), "{op} failed with {e:?}");
                        failed += 1;
                        worst_failure = worst_failure.max(t.elapsed());
                    }
                }
                i += 1;
            }
            (ok, failed, worst_failure)
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    server.kill();
    let killed = Instant::now();
    let mut worst = Duration::ZERO;
    for round in 0..2 {
        for (op, result, took) in every_op_once(&store, round).await {
            let err = result.expect_err("an operation succeeded with the server dead");
            assert!(err.is_transient(), "{op} failed with {err:?}");
            assert!(took <= OPERATION + SLACK, "{op} took {took:?}: {err}");
            worst = worst.max(took);
        }
    }
    eprintln!(
        "outage: worst failing call {worst:?} (server selection timeout {SERVER_SELECTION:?}, \
         operation timeout {OPERATION:?}); {:?} since the kill",
        killed.elapsed()
    );

    server
        .restart()
        .expect("restart secantusd-rs on the same port");
    let recovered = wait_for_recovery(&store).await;
    eprintln!("outage: every operation works again {recovered:?} after the restart");

    stop.store(true, Ordering::Relaxed);
    let (ok, failed, worst_failure) = workload.await.unwrap();
    eprintln!("outage workload: {ok} ok, {failed} transient failures, worst {worst_failure:?}");
    assert!(failed > 0, "the workload never saw the outage");
    assert!(worst_failure <= OPERATION + SLACK, "{worst_failure:?}");
    assert!(ok > 0);
    // The store works as before, on the data the server kept.
    store
        .set("after", Record::never_expiring("v"))
        .await
        .unwrap();
    assert_eq!(
        store.get("after").await.unwrap().unwrap().value,
        "v",
        "read after recovery"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_times_out_within_the_deadline() {
    let Some((server, store)) = own_server().await else {
        return;
    };
    run(&store, Op::Set, 0)
        .await
        .expect("set before the freeze");
    // Connections stay open but nothing answers: only deadlines help.
    server.pause();
    let mut worst = Duration::ZERO;
    for (op, result, took) in every_op_once(&store, 0).await {
        let Err(err) = result else {
            panic!("{op} succeeded {took:?} after the freeze");
        };
        assert!(err.is_transient(), "{op} failed with {err:?}");
        assert!(took <= OPERATION + SLACK, "{op} took {took:?}: {err}");
        worst = worst.max(took);
    }
    eprintln!("frozen server: worst failing call {worst:?} (operation timeout {OPERATION:?})");
    server.resume();
    let recovered = wait_for_recovery(&store).await;
    eprintln!("frozen server: every operation works again {recovered:?} after SIGCONT");
}
