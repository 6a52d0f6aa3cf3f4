//! Cross-instance cache invalidation over Redis pub/sub
//! ([`RedisInvalidator`]): two caches ("two processes") over one Redis stop
//! serving each other's overwritten and deleted values within the publish
//! latency; the subscription survives `kill -9` and restart of a
//! `redis-server` the test starts itself (and a frozen one), saying
//! `MaybeLost` in between; a lazily connected invalidator subscribes once
//! its server appears; and pub/sub works through Sentinel and across the
//! nodes of a Redis Cluster.
//!
//! Run with `--nocapture` to see the measured latencies.

use std::time::{Duration, Instant};

use storestack::bytes::Bytes;
use storestack::{CacheConfig, Cached, Invalidator, Notice, Record, Store, StoreExt, Subscriber};
use storestack_redis::{RedisConfig, RedisInvalidator, RedisStore};
use storestack_testkit::server_missing;
use storestack_tests::redis::{
    assert_transient, connect_or_skip, free_port, redis_url, shared_cluster, shared_sentinel,
    sweep_stale_test_keys, unique_prefix, RedisServer, Sentinel,
};

/// The longest another instance may keep serving an old value.
const LATENCY_BOUND: Duration = Duration::from_secs(1);

fn value(v: &'static str) -> Record {
    Record::expiring_after(v, Duration::from_secs(3600))
}

/// One "process": a cache over its own store connection, with its own
/// invalidator, both on `config`.
async fn instance(config: &RedisConfig) -> Option<Cached<RedisStore>> {
    let store = connect_or_skip(config.clone(), "redis for the invalidation test").await?;
    let invalidator = RedisInvalidator::connect(config.clone())
        .await
        .expect("invalidator connects where the store did");
    assert!(invalidator.is_subscribed());
    Some(
        store.cached(
            CacheConfig::default()
                .ttl(Duration::from_secs(60))
                .invalidator(invalidator),
        ),
    )
}

async fn value_of(store: &impl Store, key: &str) -> Option<Bytes> {
    store.get(key).await.expect("get").map(|r| r.value)
}

/// Polls `a` until it returns `want` for `key`; how long that took.
async fn until_served(a: &Cached<RedisStore>, key: &str, want: Option<&str>) -> Duration {
    let since = Instant::now();
    let want = want.map(|w| Bytes::copy_from_slice(w.as_bytes()));
    loop {
        if value_of(a, key).await == want {
            return since.elapsed();
        }
        assert!(
            since.elapsed() <= LATENCY_BOUND,
            "the other instance still serves the old value after {LATENCY_BOUND:?}"
        );
        tokio::task::yield_now().await;
    }
}

#[derive(Default)]
struct Latencies(Vec<Duration>);

impl Latencies {
    fn summary(&mut self) -> String {
        self.0.sort();
        let at = |q: f64| self.0[((self.0.len() - 1) as f64 * q).round() as usize];
        format!(
            "n={} p50={:?} p99={:?} max={:?}",
            self.0.len(),
            at(0.5),
            at(0.99),
            at(1.0)
        )
    }
}

/// `rounds` times: `a` caches a key; a write that publishes nothing proves
/// `a` serves it from its cache; `b` overwrites (or deletes) it; `a` must
/// stop serving the old value within the bound. Returns the latencies
/// measured from `b`'s call returning and from it starting.
async fn coherence_rounds(
    a: &Cached<RedisStore>,
    b: &Cached<RedisStore>,
    rounds: usize,
    delete: bool,
) -> (Latencies, Latencies) {
    let raw = a.get_ref();
    let (mut after_ack, mut from_start) = (Latencies::default(), Latencies::default());
    for i in 0..rounds {
        let key = format!("{}{i}", if delete { "d" } else { "o" });
        raw.set(&key, value("old")).await.expect("seed");
        assert_eq!(value_of(a, &key).await.as_deref(), Some(&b"old"[..]));
        // Behind every cache's back: `a` keeps serving what it cached.
        raw.set(&key, value("unseen")).await.expect("raw write");
        assert_eq!(
            value_of(a, &key).await.as_deref(),
            Some(&b"old"[..]),
            "a does not cache: this test would prove nothing"
        );

        let started = Instant::now();
        let want = if delete {
            assert!(b.delete(&key).await.expect("delete"));
            None
        } else {
            b.set(&key, value("new")).await.expect("overwrite");
            Some("new")
        };
        let acked = started.elapsed();
        let latency = until_served(a, &key, want).await;
        after_ack.0.push(latency);
        from_start.0.push(acked + latency);
    }
    (after_ack, from_start)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_caches_stop_serving_each_others_overwritten_and_deleted_values() {
    sweep_stale_test_keys().await;
    let config = RedisConfig::new(redis_url()).key_prefix(format!("{}:", unique_prefix("inv")));
    let Some(a) = instance(&config).await else {
        return;
    };
    let b = instance(&config).await.expect("second instance");

    for delete in [false, true] {
        let (mut after_ack, mut from_start) = coherence_rounds(&a, &b, 200, delete).await;
        let what = if delete { "delete" } else { "overwrite" };
        eprintln!(
            "{what}: stale window after the writer's call returned: {}; from its start: {}",
            after_ack.summary(),
            from_start.summary()
        );
    }
    a.get_ref().clear().await.expect("clean up");
}

/// A notice within `bound`, or `None` if none came.
async fn recv_within(sub: &mut Box<dyn Subscriber>, bound: Duration) -> Option<Notice> {
    tokio::time::timeout(bound, sub.recv()).await.ok().flatten()
}

fn msg(s: &'static str) -> Notice {
    Notice::Message(Bytes::from_static(s.as_bytes()))
}

fn outage_config(port: u16) -> RedisConfig {
    RedisConfig::new(format!("redis://127.0.0.1:{port}"))
        .key_prefix("inv:")
        .command_timeout(Duration::from_millis(250))
        .connect_timeout(Duration::from_millis(250))
        .reconnect_delay(Duration::from_millis(20), Duration::from_millis(200))
        .unresponsive_timeout(Some(Duration::from_millis(600)))
}

/// Publishes `m` (retrying while the publisher reconnects) and waits for
/// it on `sub`, skipping `MaybeLost`s and the messages in `late` (whose
/// publish timed out: their outcome is unknown); how many `MaybeLost`s it
/// skipped.
async fn publish_and_receive(
    inv: &RedisInvalidator,
    sub: &mut Box<dyn Subscriber>,
    m: &'static str,
    late: &[&'static str],
) -> usize {
    let deadline = Instant::now() + Duration::from_secs(3);
    while let Err(e) = inv.publish(Bytes::from_static(m.as_bytes())).await {
        assert!(Instant::now() < deadline, "publish does not recover: {e:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut skipped = 0;
    loop {
        match recv_within(sub, Duration::from_secs(2)).await {
            Some(Notice::MaybeLost) => skipped += 1,
            Some(n) if late.iter().any(|l| n == msg(l)) => {}
            Some(n) => {
                assert_eq!(n, msg(m));
                return skipped;
            }
            None => panic!("{m:?} was not delivered"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_survives_kill_9_and_says_maybe_lost() {
    let port = free_port();
    let Some(mut server) = RedisServer::start_or_skip(port, &[]) else {
        return;
    };
    let inv = RedisInvalidator::connect(outage_config(port))
        .await
        .expect("connect");
    assert_eq!(inv.channel(), "inv:invalidate");
    let mut sub = inv.subscribe().expect("subscribe");
    // The first subscription is not news: no MaybeLost before the message.
    assert_eq!(publish_and_receive(&inv, &mut sub, "before", &[]).await, 0);

    server.kill9();
    let killed = Instant::now();
    assert_eq!(
        recv_within(&mut sub, Duration::from_secs(2)).await,
        Some(Notice::MaybeLost),
        "the lost connection is reported"
    );
    let noticed = killed.elapsed();
    assert!(!inv.is_subscribed());

    // Publishing fails with a transient error, every time: within the
    // command timeout at worst (a call racing with the kill may wait for a
    // reply that never comes), at once after that.
    let mut took = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let result = inv.publish(Bytes::from_static(b"lost")).await;
        took.push(started.elapsed());
        assert_transient("publish while redis is down", &result);
    }
    let first = took[0];
    let rest = took[1..].iter().max().copied().unwrap_or_default();
    assert!(
        first < Duration::from_millis(300),
        "first publish took {first:?}"
    );
    assert!(
        rest < Duration::from_millis(50),
        "a later publish took {rest:?}"
    );

    server.restart();
    let restarted = Instant::now();
    assert_eq!(
        recv_within(&mut sub, Duration::from_secs(3)).await,
        Some(Notice::MaybeLost),
        "the new subscription is reported"
    );
    let resubscribed = restarted.elapsed();
    assert!(inv.is_subscribed());
    // Messages flow again (and nothing published while down shows up).
    publish_and_receive(&inv, &mut sub, "after", &[]).await;
    eprintln!(
        "kill -9: loss reported after {noticed:?}; publish while down failed after {first:?} \
         (the first), within {rest:?} (the 19 others); resubscribed {resubscribed:?} after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_is_noticed_by_the_heartbeat() {
    let port = free_port();
    let Some(mut server) = RedisServer::start_or_skip(port, &[]) else {
        return;
    };
    let inv = RedisInvalidator::connect(outage_config(port))
        .await
        .expect("connect");
    let mut sub = inv.subscribe().expect("subscribe");
    assert_eq!(publish_and_receive(&inv, &mut sub, "before", &[]).await, 0);

    // SIGSTOP: the sockets stay open, nothing answers, no error arrives.
    server.pause();
    let paused = Instant::now();
    let publish = inv.publish(Bytes::from_static(b"frozen")).await;
    let publish_took = paused.elapsed();
    assert_transient("publish to a frozen server", &publish);
    assert!(
        publish_took < Duration::from_millis(400),
        "{publish_took:?}"
    );
    assert_eq!(
        recv_within(&mut sub, Duration::from_secs(3)).await,
        Some(Notice::MaybeLost),
        "the silent loss is reported"
    );
    let noticed = paused.elapsed();

    server.resume();
    let resumed = Instant::now();
    // The publish that timed out may still be delivered after SIGCONT (on
    // the old connection, still subscribed on the server).
    loop {
        match recv_within(&mut sub, Duration::from_secs(5)).await {
            Some(Notice::MaybeLost) => break,
            Some(n) if n == msg("frozen") => {}
            other => panic!("expected the restored subscription, got {other:?}"),
        }
    }
    let back = resumed.elapsed();
    publish_and_receive(&inv, &mut sub, "after", &["frozen"]).await;
    eprintln!(
        "SIGSTOP: publish failed after {publish_took:?}; loss reported after {noticed:?}; \
         resubscribed {back:?} after SIGCONT"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_pub_sub_reaches_caches_on_other_nodes() {
    let cluster = match shared_cluster().await {
        Ok(cluster) => cluster,
        Err(e) => {
            server_missing("a redis cluster of redis-server processes", &e);
            return;
        }
    };
    let config =
        RedisConfig::cluster(cluster.urls()).key_prefix(format!("{}:", unique_prefix("cinv")));
    let a = instance(&config).await.expect("cluster instance a");
    let b = instance(&config).await.expect("cluster instance b");
    for delete in [false, true] {
        let (mut after_ack, _) = coherence_rounds(&a, &b, 50, delete).await;
        eprintln!(
            "cluster {}: stale window after the writer's call returned: {}",
            if delete { "delete" } else { "overwrite" },
            after_ack.summary()
        );
    }
    a.get_ref().clear().await.expect("clean up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_managed_primary_carries_the_channel() {
    let pair = match shared_sentinel().await {
        Ok(pair) => pair,
        Err(e) => {
            server_missing("a redis primary and sentinel of redis-server processes", &e);
            return;
        }
    };
    let config = RedisConfig::sentinel(
        [format!("redis://127.0.0.1:{}", pair.sentinel.port)],
        Sentinel::SERVICE,
    )
    .key_prefix(format!("{}:", unique_prefix("sinv")));
    let a = instance(&config).await.expect("sentinel instance a");
    let b = instance(&config).await.expect("sentinel instance b");
    for delete in [false, true] {
        let (mut after_ack, _) = coherence_rounds(&a, &b, 20, delete).await;
        eprintln!(
            "sentinel {}: stale window after the writer's call returned: {}",
            if delete { "delete" } else { "overwrite" },
            after_ack.summary()
        );
    }
    a.get_ref().clear().await.expect("clean up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_invalidator_subscribes_once_the_server_appears() {
    let port = free_port();
    let config = outage_config(port).lazy_connect(true);
    let inv = RedisInvalidator::connect(config)
        .await
        .expect("a lazy connect does not need the server");
    assert!(!inv.is_subscribed());
    let mut sub = inv.subscribe().expect("subscribe");
    let started = Instant::now();
    let result = inv.publish(Bytes::from_static(b"nobody")).await;
    assert_transient("publish before the server exists", &result);
    assert!(started.elapsed() < Duration::from_millis(50));

    let Some(_server) = RedisServer::start_or_skip(port, &[]) else {
        return;
    };
    // Caches may have filled before anyone listened: the first
    // subscription is reported.
    assert_eq!(
        recv_within(&mut sub, Duration::from_secs(5)).await,
        Some(Notice::MaybeLost)
    );
    assert!(inv.is_subscribed());
    publish_and_receive(&inv, &mut sub, "hello", &[]).await;
}
