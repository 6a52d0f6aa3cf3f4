//! Outages of a `redis-server` that the test starts itself: killed with
//! SIGKILL mid-run, frozen with SIGSTOP, absent at start. Every call must
//! fail promptly with a transient error (no offline queue: connect-redis
//! #373 / #400), and the same store instance must recover by itself.
//!
//! Run with `--nocapture` to see the measured figures.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use storestack::{ErrorKind, Record, ScanCursor, Store};
use storestack_redis::{RedisConfig, RedisStore};
use storestack_tests::redis::{assert_transient, free_port, RedisServer};

const COMMAND_TIMEOUT: Duration = Duration::from_millis(250);
/// Scheduling slack on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(150);
/// The longest a call may take during an outage.
const BOUND: Duration = Duration::from_millis(400);
/// The longest the store may take to work again once the server is back.
const RECOVERY_BOUND: Duration = Duration::from_secs(2);

fn config(port: u16) -> RedisConfig {
    RedisConfig::new(format!("redis://127.0.0.1:{port}"))
        .key_prefix("outage:")
        .command_timeout(COMMAND_TIMEOUT)
        .connect_timeout(Duration::from_millis(250))
        .reconnect_delay(Duration::from_millis(20), Duration::from_millis(200))
        .unresponsive_timeout(Some(Duration::from_millis(600)))
}

fn later() -> Record {
    Record::expiring_at("v", SystemTime::now() + Duration::from_secs(60))
}

/// Runs one of every operation; returns each one's name, duration and
/// outcome.
async fn every_op(store: &RedisStore) -> Vec<(&'static str, Duration, storestack::Result<()>)> {
    let mut out = Vec::new();
    macro_rules! run {
        ($name:literal, $call:expr) => {{
            let started = Instant::now();
            let result = $call.await.map(drop);
            out.push(($name, started.elapsed(), result));
        }};
    }
    run!("get", store.get("k"));
    run!("set", store.set("k", later()));
    run!("create", store.create("c", later()));
    run!("delete", store.delete("c"));
    run!("touch", store.touch("k", None));
    run!("scan", store.scan("", ScanCursor::start(), 10));
    run!("len", store.len());
    run!("clear", store.clear());
    out
}

#[derive(Debug)]
struct Sample {
    started: Instant,
    elapsed: Duration,
    kind: Option<ErrorKind>,
}

/// Tasks that run operations back to back until stopped, timing each.
fn workload(
    store: &RedisStore,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Sample>>> {
    (0..4)
        .map(|t| {
            let store = store.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("w{t}:{}", i % 50);
                    let started = Instant::now();
                    let result = match i % 4 {
                        0 => store.set(&key, later()).await,
                        1 => store.get(&key).await.map(drop),
                        2 => store.create(&key, later()).await.map(drop),
                        _ => store.touch(&key, None).await.map(drop),
                    };
                    samples.push(Sample {
                        started,
                        elapsed: started.elapsed(),
                        kind: result.err().map(|e| e.kind()),
                    });
                    i += 1;
                    // Keep the loop from spinning at full speed on errors.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                samples
            })
        })
        .collect()
}

/// Waits until `get` works again; returns how long it took.
async fn recovery_time(store: &RedisStore, since: Instant) -> Duration {
    loop {
        if store.get("probe").await.is_ok() {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < RECOVERY_BOUND * 2,
            "no recovery within {:?}",
            RECOVERY_BOUND * 2
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_fails_fast_and_the_same_store_recovers() {
    let port = free_port();
    let Some(mut server) = RedisServer::start_or_skip(port, &[]) else {
        return;
    };
    let store = RedisStore::connect(config(port)).await.expect("connect");
    for (op, _, result) in every_op(&store).await {
        result.unwrap_or_else(|e| panic!("{op} before the outage: {e:?}"));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let tasks = workload(&store, &stop);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // An operation can fail as soon as the signal is sent, before
    // `kill9` has reaped the process and returned: "before" ends here.
    let killing = Instant::now();
    server.kill9();
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_millis(600)).await;

    // Every operation, one by one, while the server is gone.
    let mut worst_single = Duration::ZERO;
    for (op, elapsed, result) in every_op(&store).await {
        assert_transient(op, &result);
        assert!(elapsed <= BOUND, "{op} took {elapsed:?} during the outage");
        worst_single = worst_single.max(elapsed);
    }

    let restarting = Instant::now();
    server.restart();
    let back = Instant::now();
    let recovered_after = recovery_time(&store, back).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.expect("workload task"));
    }

    // Before the kill: all fine. During: only transient errors, each
    // within the bound (ops in flight at the kill included). After
    // recovery: all fine again, same store instance.
    let before: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.started + s.elapsed < killing)
        .collect();
    let during: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.started + s.elapsed >= killing && s.started + s.elapsed < restarting)
        .collect();
    let after: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.started >= back + recovered_after)
        .collect();
    assert!(
        before.len() > 20 && during.len() > 20 && after.len() > 20,
        "too few samples: {} / {} / {}",
        before.len(),
        during.len(),
        after.len()
    );
    assert!(
        before.iter().all(|s| s.kind.is_none()),
        "errors before the kill"
    );
    let during_ok = during.iter().filter(|s| s.kind.is_none()).count();
    // A call that completed within a moment of the kill may have been
    // answered before the server died.
    let late_ok = during
        .iter()
        .filter(|s| s.kind.is_none() && s.started > killed + Duration::from_millis(5))
        .count();
    assert_eq!(late_ok, 0, "calls succeeded with the server dead");
    for s in &during {
        if let Some(kind) = s.kind {
            assert!(kind.is_transient(), "{kind:?} during the outage");
        }
    }
    let worst = during.iter().map(|s| s.elapsed).max().unwrap_or_default();
    let over_10ms = during
        .iter()
        .filter(|s| s.elapsed > Duration::from_millis(10))
        .count();
    assert!(
        worst <= BOUND,
        "worst call during the outage took {worst:?}"
    );
    let errors_after = after.iter().filter(|s| s.kind.is_some()).count();
    assert_eq!(errors_after, 0, "errors after recovery");
    eprintln!(
        "kill -9: {} calls during the outage ({during_ok} answered before the kill took effect), \
         worst {worst:?}, {over_10ms} over 10 ms (single ops: worst {worst_single:?}, \
         bound {BOUND:?}); \
         recovered {recovered_after:?} after restart (bound {RECOVERY_BOUND:?}); \
         {} calls after, all ok",
        during.len(),
        after.len()
    );
    assert!(
        recovered_after <= RECOVERY_BOUND,
        "recovery took {recovered_after:?}"
    );

    // The restarted server lost the script cache: `get` and `touch(None)`
    // fall back to EVAL and work.
    store
        .set("after", Record::never_expiring("v"))
        .await
        .unwrap();
    assert_eq!(store.get("after").await.unwrap().unwrap().value, "v");
    assert!(store.touch("after", None).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_server_times_out_within_the_command_timeout() {
    let port = free_port();
    let Some(mut server) = RedisServer::start_or_skip(port, &[]) else {
        return;
    };
    let store = RedisStore::connect(config(port)).await.expect("connect");
    store.set("k", later()).await.unwrap();

    server.pause();
    let paused = Instant::now();
    let mut worst = Duration::ZERO;
    let mut kinds = Vec::new();
    // Long enough for the unresponsive check to drop the connection.
    while paused.elapsed() < Duration::from_millis(1200) {
        for (op, elapsed, result) in every_op(&store).await {
            assert_transient(op, &result);
            assert!(
                elapsed <= COMMAND_TIMEOUT + SLACK,
                "{op} took {elapsed:?} against a frozen server"
            );
            worst = worst.max(elapsed);
            kinds.push(result.unwrap_err().kind());
        }
    }
    assert!(kinds.contains(&ErrorKind::Timeout), "{kinds:?}");
    server.resume();
    let back = Instant::now();
    let recovered_after = recovery_time(&store, back).await;
    eprintln!(
        "SIGSTOP: {} calls, worst {worst:?} (command timeout {COMMAND_TIMEOUT:?}), \
         kinds seen: timeout {} / unavailable {}; recovered {recovered_after:?} after SIGCONT",
        kinds.len(),
        kinds.iter().filter(|k| **k == ErrorKind::Timeout).count(),
        kinds
            .iter()
            .filter(|k| **k == ErrorKind::Unavailable)
            .count(),
    );
    assert!(recovered_after <= RECOVERY_BOUND);
    for (op, _, result) in every_op(&store).await {
        result.unwrap_or_else(|e| panic!("{op} after resume: {e:?}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_store_starts_while_redis_is_down() {
    let port = free_port();
    let started = Instant::now();
    let store = RedisStore::connect(config(port).lazy_connect(true))
        .await
        .expect("lazy connect never fails on an unreachable server");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    for (op, elapsed, result) in every_op(&store).await {
        assert_transient(op, &result);
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Unavailable, "{op}");
        assert!(elapsed <= BOUND, "{op} took {elapsed:?}");
    }
    let Some(_server) = RedisServer::start_or_skip(port, &[]) else {
        return;
    };
    let recovered_after = recovery_time(&store, Instant::now()).await;
    assert!(recovered_after <= RECOVERY_BOUND, "{recovered_after:?}");
    store.set("k", later()).await.unwrap();
    assert!(store.get("k").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_are_used_and_never_shown() {
    let port = free_port();
    let Some(_server) = RedisServer::start_or_skip(port, &["--requirepass", "s3cret-pw"]) else {
        return;
    };
    let url = format!("redis://:s3cret-pw@127.0.0.1:{port}");
    let store = RedisStore::connect(config(port).key_prefix("auth:").password("s3cret-pw"))
        .await
        .expect("connect with the password field");
    store.set("k", later()).await.unwrap();
    let mut from_url = config(port);
    from_url.urls = vec![url];
    let store2 = RedisStore::connect(from_url)
        .await
        .expect("connect with the url");
    assert!(store2.get("k").await.unwrap().is_none(), "other prefix");
    for shown in [format!("{store:?}"), format!("{store2:?}")] {
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    let err = RedisStore::connect(config(port).password("wrong-pw"))
        .await
        .unwrap_err();
    // A wrong password is not an outage (redis_permanent.rs has the rest).
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("wrong-pw") && !shown.contains("s3cret"),
        "{shown}"
    );
}
