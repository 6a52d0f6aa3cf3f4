//! Fallback(Redis, MongoDB) through real outages, checked by the history
//! checker of `storestack_testkit::model`.
//!
//! * `redis_killed_and_restarted_with_its_data`: a `redis-server` of the
//!   test's own (append-only file, fsync always) is killed (`kill -9`)
//!   while a concurrent session-like workload runs, and restarted with its
//!   data. No acknowledged write is lost, no read is stale, no deleted key
//!   comes back, no caller sees an error; once Redis is back the journal
//!   drains by itself (the fallback's background repair) and both stores
//!   hold the same records.
//! * `redis_restarted_empty`: the same with a server that comes back
//!   EMPTY: every key keeps every guarantee, those last written before
//!   the kill included (reads go through to MongoDB until the fallback,
//!   having found Redis's identity key gone, has resynced Redis from
//!   MongoDB); afterwards both stores hold the same records.
//! * `both_down_fail_clearly_within_the_deadline`: no process is killed;
//!   fault proxies in front of the shared Redis and MongoDB first hold
//!   every byte (a silent partition), then refuse connections. Every
//!   operation fails with a transient error naming both sides within the
//!   deadlines of the calls the fallback makes (a read: the primary and the
//!   key's journal entry at once, then the secondary); afterwards the stack recovers and nothing acknowledged
//!   is lost.
//!
//! MongoDB is the server at `STORESTACK_MONGODB_URL` (a fresh collection
//! per test). A missing server or `redis-server` binary skips loudly, or
//! fails under `CI=true`. Run with `--nocapture` for the measured figures.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use storestack::{
    BreakerConfig, Expiry, Fallback, FallbackConfig, FallbackHandle, Op, Record, ScanCursor,
    SharedStore, Store, StoreExt,
};
use storestack_chaos::proxy::FaultProxy;
use storestack_mongodb::{MongoConfig, MongoStore};
use storestack_redis::{RedisConfig, RedisStore};
use storestack_testkit::model::{History, Report};
use storestack_tests::mongo;
use storestack_tests::redis::{free_port, redis_url, unique_prefix, RedisServer};

/// The deadline of a call to Redis.
const REDIS_DEADLINE: Duration = Duration::from_millis(100);
/// The deadline of a call to MongoDB (secantusd-rs on a busy 2-core
/// machine stalls for hundreds of milliseconds now and then).
const MONGO_DEADLINE: Duration = Duration::from_millis(1000);
/// Scheduling slack on a loaded machine.
const SLACK: Duration = Duration::from_millis(400);
/// How long the journal may take to drain by itself once Redis is back.
const DRAIN_BOUND: Duration = Duration::from_secs(10);
/// Concurrent clients of the workload.
const CLIENTS: usize = 4;
/// Keys of a workload.
const KEYS: usize = 12;
/// The prefix of the fallback's journal entries (its default reserved
/// prefix, then `j:`; leases and markers may stay until they expire).
const JOURNAL: &str = "__fallback:j:";

/// The stack under test and direct access to each side.
struct Stack {
    store: SharedStore,
    fallback: FallbackHandle,
    redis: RedisStore,
    mongo: MongoStore,
}

fn breaker() -> BreakerConfig {
    BreakerConfig::default()
        .consecutive_failures(5)
        .open_for(Duration::from_millis(100), Duration::from_secs(1))
}

fn redis_config(url: &str, prefix: &str) -> RedisConfig {
    RedisConfig::new(url)
        .key_prefix(prefix)
        .connect_timeout(Duration::from_millis(250))
        .command_timeout(Duration::from_millis(500))
        .reconnect_delay(Duration::from_millis(20), Duration::from_millis(200))
        .unresponsive_timeout(Some(Duration::from_millis(500)))
}

fn mongo_config(url: String, collection: &str) -> MongoConfig {
    MongoConfig::new(url)
        .database(mongo::DATABASE)
        .collection(collection)
        .server_selection_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500))
        .operation_timeout(MONGO_DEADLINE)
}

/// `Fallback(CircuitBreaker(Timeout(redis)), CircuitBreaker(Timeout(mongo)))`,
/// as the README stacks it.
fn stack(redis: RedisStore, mongo: MongoStore) -> Stack {
    let config = FallbackConfig::default()
        .poll_interval(Duration::from_millis(100))
        // Above the longest write: one deadline on each side.
        .settle(REDIS_DEADLINE + MONGO_DEADLINE + Duration::from_millis(200));
    let fallback = Fallback::with_config(
        redis
            .clone()
            .timeout(REDIS_DEADLINE)
            .circuit_breaker(breaker()),
        mongo
            .clone()
            .timeout(MONGO_DEADLINE)
            .circuit_breaker(breaker()),
        config,
    );
    Stack {
        fallback: fallback.handle(),
        store: fallback.shared(),
        redis,
        mongo,
    }
}

/// A MongoDB store on a fresh collection of the server under test, or
/// `None` (skipped) when it is unreachable.
async fn mongo_store(tag: &str) -> Option<MongoStore> {
    let collection = mongo::unique_collection(tag);
    mongo::connect_or_skip(mongo_config(mongo::url(), &collection)).await
}

/// A session-like workload: `CLIENTS` tasks doing get / set / create /
/// delete / touch on `keys` (unique values, long lifetimes), recorded in
/// `history`, until `stop` is set.
fn workload(
    store: &SharedStore,
    history: &History,
    keys: &[String],
    seed: u64,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..CLIENTS)
        .map(|id| {
            let (store, history, stop) = (store.clone(), history.clone(), stop.clone());
            let keys = keys.to_vec();
            let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(31).wrapping_add(id as u64));
            tokio::spawn(async move {
                let ttl = Expiry::after(Duration::from_secs(3600));
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = &keys[rng.gen_range(0..keys.len())];
                    // Unique across workloads too: the seed names the run.
                    let value = format!("{key}:{seed}:{id}:{seq}");
                    seq += 1;
                    let _ = match rng.gen_range(0..100) {
                        0..=49 => history.get(&*store, key).await.map(drop),
                        50..=69 => history.set(&*store, key, &value, ttl).await,
                        70..=79 => history.create(&*store, key, &value, ttl).await.map(drop),
                        80..=89 => history.delete(&*store, key).await.map(drop),
                        _ => {
                            let at = SystemTime::now() + Duration::from_secs(7200);
                            history.touch(&*store, key, Some(at)).await.map(drop)
                        }
                    };
                    tokio::time::sleep(Duration::from_millis(rng.gen_range(1..6))).await;
                }
            })
        })
        .collect()
}

async fn stop_workload(stop: &AtomicBool, clients: Vec<tokio::task::JoinHandle<()>>) {
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client task");
    }
}

fn keys(tag: &str) -> Vec<String> {
    (0..KEYS).map(|i| format!("{tag}{i}")).collect()
}

/// Waits, without asking for a repair, until the background repair has
/// emptied the journal; returns how long it took.
async fn journal_drains(stack: &Stack) -> Duration {
    let since = Instant::now();
    loop {
        let status = stack.fallback.status();
        if status.journaled_keys == 0 {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < DRAIN_BOUND,
            "the journal did not drain within {DRAIN_BOUND:?}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Journal entries, read on one side directly.
async fn journal_entries(side: &dyn Store) -> usize {
    let mut n = 0;
    let mut cursor = ScanCursor::start();
    loop {
        let page = side.scan(JOURNAL, cursor, 1000).await.expect("scan a side");
        n += page.keys.len();
        match page.next {
            Some(next) => cursor = next,
            None => return n,
        }
    }
}

/// The final reads of `keys`: through the fallback, then on each side
/// directly (each side must hold an allowed value); and the two sides must
/// hold the same record.
async fn final_reads(stack: &Stack, history: &History, keys: &[String], agree: bool) {
    for key in keys {
        history
            .final_get(&*stack.store, key)
            .await
            .expect("final read through the fallback");
        if !agree {
            continue;
        }
        history
            .final_get(&stack.redis, key)
            .await
            .expect("final read on redis");
        history
            .final_get(&stack.mongo, key)
            .await
            .expect("final read on mongodb");
        let on_redis = stack.redis.get(key).await.expect("read redis");
        let on_mongo = stack.mongo.get(key).await.expect("read mongodb");
        let ms = |r: &Option<Record>| {
            r.as_ref().map(|r| {
                let at = r.expires_at.map(|t| {
                    t.duration_since(SystemTime::UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_millis()
                });
                (r.value.clone(), at)
            })
        };
        assert_eq!(ms(&on_redis), ms(&on_mongo), "the sides differ on a key");
    }
}

fn print(what: &str, report: &Report, stack: &Stack) {
    let s = stack.fallback.status();
    eprintln!(
        "{what}: {} ops ({} reads, {} acknowledged writes), {} errors; \
         {} failover reads, {} degraded writes, {} keys repaired",
        report.ops,
        report.reads,
        report.writes_acknowledged,
        report.errors_total(),
        s.failover_reads,
        s.degraded_writes,
        s.repaired
    );
}

/// What a restart of the killed Redis brings back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Restart {
    WithData,
    Empty,
}

/// Kills the test's Redis mid-workload, restarts it, and checks the
/// history.
async fn outage(restart: Restart) {
    // An append-only file synced on every write: a kill -9 loses nothing
    // acknowledged. Without it the server comes back empty.
    let extra: &[&str] = match restart {
        Restart::WithData => &["--appendonly", "yes", "--appendfsync", "always"],
        Restart::Empty => &[],
    };
    let Some(mut server) = RedisServer::start_or_skip(free_port(), extra) else {
        return;
    };
    let Some(mongo) = mongo_store("fallback_real").await else {
        return;
    };
    let url = format!("redis://127.0.0.1:{}", server.port);
    let redis = RedisStore::connect(redis_config(&url, "fb:"))
        .await
        .expect("connect to the test's redis");
    let stack = stack(redis, mongo);

    // `before`: keys the workload writes from the start (with an empty
    // restart, those last written before the kill are lost to readers);
    // `since`: keys first written after the kill.
    let (before, since) = (History::new(), History::new());
    let stop_before = Arc::new(AtomicBool::new(false));
    let clients = workload(&stack.store, &before, &keys("b"), 1, &stop_before);
    tokio::time::sleep(Duration::from_millis(700)).await;

    server.kill9();
    let stop_since = Arc::new(AtomicBool::new(false));
    let late_clients = workload(&stack.store, &since, &keys("s"), 2, &stop_since);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    server.restart();
    let restarted = Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop_workload(&stop_before, clients).await;
    stop_workload(&stop_since, late_clients).await;

    let drained = journal_drains(&stack).await;
    if let Restart::Empty = restart {
        // The loss is detected and Redis made whole again, by itself.
        let resynced = Instant::now();
        while stack.fallback.status().resyncs_completed == 0
            || stack.fallback.status().resync.is_some()
        {
            assert!(
                resynced.elapsed() < DRAIN_BOUND,
                "no resync completed: {:?}",
                stack.fallback.status()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!(
            "Empty: resync done {:?} after the restart",
            restarted.elapsed()
        );
    }
    eprintln!(
        "{restart:?}: journal drained {:?} after the restart ({drained:?} after the workload)",
        restarted.elapsed()
    );
    assert_eq!(
        journal_entries(&stack.redis).await,
        0,
        "journal left on redis"
    );
    assert_eq!(
        journal_entries(&stack.mongo).await,
        0,
        "journal left on mongodb"
    );

    let status = stack.fallback.status();
    assert!(
        status.failover_reads > 0 && status.degraded_writes > 0,
        "the outage was not observed: {status:?}"
    );
    assert!(status.repaired > 0, "nothing was repaired: {status:?}");

    final_reads(&stack, &since, &keys("s"), true).await;
    let report = since.check();
    print(
        &format!("{restart:?}, keys written since the kill"),
        &report,
        &stack,
    );
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.errors_total(), 0, "{report}");
    assert!(report.writes_acknowledged > 0 && report.reads > 0);

    // With its data or empty: nothing lost, stale or resurrected.
    final_reads(&stack, &before, &keys("b"), true).await;
    let report = before.check();
    assert!(report.is_clean(), "{report}");
    print(
        &format!("{restart:?}, keys written from the start"),
        &report,
        &stack,
    );
    assert_eq!(report.errors_total(), 0, "{report}");
    let _ = stack.store.clear().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_with_its_data() {
    outage(Restart::WithData).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty() {
    outage(Restart::Empty).await;
}

/// The host and port of a URL, as a socket address.
fn socket_of(url: &str) -> std::net::SocketAddr {
    let parsed = url::Url::parse(url).expect("a server URL");
    let host = parsed
        .host_str()
        .expect("a host")
        .replace("localhost", "127.0.0.1");
    let port = parsed.port().expect("a port in the URL");
    format!("{host}:{port}")
        .parse()
        .expect("a loopback address")
}

/// `url` pointing at `addr` instead.
fn through(url: &str, addr: std::net::SocketAddr) -> String {
    let mut parsed = url::Url::parse(url).expect("a server URL");
    parsed.set_ip_host(addr.ip()).expect("set the host");
    parsed.set_port(Some(addr.port())).expect("set the port");
    parsed.to_string()
}

/// Runs every key operation once, concurrently, on keys outside the
/// workload's; returns each one's outcome and duration.
async fn every_op(store: &SharedStore) -> Vec<(Op, storestack::Result<()>, Duration)> {
    let tasks: Vec<_> = [Op::Get, Op::Set, Op::Create, Op::Delete, Op::Touch]
        .into_iter()
        .map(|op| {
            let store = store.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let rec = Record::expiring_after("probe", Duration::from_secs(600));
                let key = "probe";
                let result = match op {
                    Op::Get => store.get(key).await.map(drop),
                    Op::Set => store.set(key, rec).await,
                    Op::Create => store.create(key, rec).await.map(drop),
                    Op::Delete => store.delete(key).await.map(drop),
                    _ => store.touch(key, None).await.map(drop),
                };
                (op, result, started.elapsed())
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("probe task"));
    }
    out
}

/// Both sides unreachable: every call fails with a transient error naming
/// both sides, within the deadlines of the calls the fallback makes.
async fn assert_both_fail(stack: &Stack, what: &str) -> Duration {
    // A read asks the primary and (concurrently) the key's journal entry
    // on the secondary, then the secondary for the value: two secondary
    // deadlines in a row at worst.
    let bound = REDIS_DEADLINE.max(MONGO_DEADLINE) + MONGO_DEADLINE + SLACK;
    let mut worst = Duration::ZERO;
    for round in 0..3 {
        for (op, result, took) in every_op(&stack.store).await {
            let err = match result {
                Err(e) => e,
                Ok(()) => panic!("{what}: {op} succeeded with both sides down (round {round})"),
            };
            assert!(err.is_transient(), "{what}: {op} failed with {err:?}");
            assert!(
                took <= bound,
                "{what}: {op} took {took:?} (bound {bound:?}): {err}"
            );
            let text = err.to_string();
            // Open breakers answer CircuitOpen for both; still both named.
            assert!(
                text.contains("redis") && text.contains("mongodb"),
                "{what}: the error does not name both sides: {text}"
            );
            worst = worst.max(took);
        }
    }
    worst
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_down_fail_clearly_within_the_deadline() {
    let collection = mongo::unique_collection("fallback_real_both");
    let mongo_url = mongo::url();
    let Some(_) = mongo::connect_or_skip(mongo_config(mongo_url.clone(), &collection)).await else {
        return;
    };
    let prefix = format!("{}:", unique_prefix("fallback_real"));
    let Some(_) = storestack_tests::redis::connect_or_skip(
        redis_config(&redis_url(), &prefix),
        &format!("redis at {}", redis_url()),
    )
    .await
    else {
        return;
    };
    let redis_proxy = FaultProxy::start(socket_of(&redis_url()))
        .await
        .expect("start the redis proxy");
    let mongo_proxy = FaultProxy::start(socket_of(&mongo_url))
        .await
        .expect("start the mongodb proxy");
    let redis = RedisStore::connect(redis_config(
        &through(&redis_url(), redis_proxy.addr()),
        &prefix,
    ))
    .await
    .expect("connect to redis through the proxy");
    let mongo = MongoStore::connect(mongo_config(
        through(&mongo_url, mongo_proxy.addr()),
        &collection,
    ))
    .await
    .expect("connect to mongodb through the proxy");
    let stack = stack(redis, mongo);
    let proxies = [&redis_proxy.handle(), &mongo_proxy.handle()];

    let history = History::new();
    let stop = Arc::new(AtomicBool::new(false));
    let clients = workload(&stack.store, &history, &keys("k"), 3, &stop);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_workload(&stop, clients).await;

    // A silent partition: connections open, nothing answers.
    for p in proxies {
        p.blackhole(true);
    }
    let silent = assert_both_fail(&stack, "both blackholed").await;
    // Both refuse connections (and cut the open ones: held bytes are
    // dropped, so no timed-out write lands later).
    for p in proxies {
        p.down().await.expect("proxy down");
    }
    let refused = assert_both_fail(&stack, "both refusing").await;
    eprintln!(
        "both down: worst failing call {silent:?} blackholed, {refused:?} refusing \
         (deadlines {REDIS_DEADLINE:?} + {MONGO_DEADLINE:?})"
    );
    assert!(stack.fallback.status().both_failed > 0);

    for p in proxies {
        p.clear().await.expect("proxy clean");
    }
    let back = Instant::now();
    loop {
        if every_op(&stack.store)
            .await
            .iter()
            .all(|(_, r, _)| r.is_ok())
        {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "no recovery within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "both down: every operation works {:?} after the fault lifted",
        back.elapsed()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let clients = workload(&stack.store, &history, &keys("k"), 4, &stop);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_workload(&stop, clients).await;
    journal_drains(&stack).await;
    final_reads(&stack, &history, &keys("k"), true).await;
    let report = history.check();
    print("both down, workload before and after", &report, &stack);
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.errors_total(), 0, "{report}");
    let _ = stack.store.clear().await;
}
