//! Unit tests of Cached against a scripted inner store.

mod coherence;

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::clock::{Clock, MockClock};
use crate::error::{ErrorKind, Op};
use crate::layers::testing::Scripted;
use crate::{MemoryConfig, MemoryStore, StoreExt};

fn memory(clock: &MockClock) -> MemoryStore {
    MemoryStore::with_config(
        MemoryConfig::default()
            .clock(clock.clone())
            .sweep_interval(None),
    )
}

/// A cache over a scripted MemoryStore, both reading one mock clock.
fn setup(config: CacheConfig) -> (Scripted, MockClock, Cached<Scripted>) {
    let clock = MockClock::new();
    let inner = Scripted::with_data(memory(&clock));
    let cached = inner.clone().cached(config.clock(clock.clone()));
    (inner, clock, cached)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn rec(clock: &MockClock, v: &'static str, ttl: u64) -> Record {
    Record::expiring_at(v, clock.now() + secs(ttl))
}

async fn value(store: &impl Store, key: &str) -> Option<String> {
    let r = store.get(key).await.unwrap()?;
    Some(String::from_utf8(r.value.to_vec()).unwrap())
}

#[tokio::test]
async fn hits_skip_the_inner_store_until_ttl() {
    let (inner, clock, cached) = setup(CacheConfig::default().ttl(secs(30)));
    inner.data().set("k", rec(&clock, "v", 3600)).await.unwrap();
    assert_eq!(value(&cached, "k").await.as_deref(), Some("v"));
    assert_eq!(value(&cached, "k").await.as_deref(), Some("v"));
    assert_eq!(inner.calls(Op::Get), 1, "second get is a hit");
    clock.advance(secs(31));
    assert_eq!(value(&cached, "k").await.as_deref(), Some("v"));
    assert_eq!(
        inner.calls(Op::Get),
        2,
        "past the ttl the inner store is asked"
    );
}

#[tokio::test]
async fn never_serves_a_record_past_its_expiry() {
    let (inner, clock, cached) = setup(CacheConfig::default().ttl(secs(3600)));
    cached.set("k", rec(&clock, "v", 10)).await.unwrap();
    assert_eq!(value(&cached, "k").await.as_deref(), Some("v"));
    assert_eq!(inner.calls(Op::Get), 0, "write-through filled the cache");
    clock.advance(secs(10));
    assert_eq!(value(&cached, "k").await, None);
    assert_eq!(inner.calls(Op::Get), 1);
    // An already expired record is never cached by a write.
    cached
        .set("e", Record::expiring_at("x", clock.now()))
        .await
        .unwrap();
    assert_eq!(value(&cached, "e").await, None);
}

#[tokio::test]
async fn failed_write_leaves_the_key_uncached() {
    let (inner, clock, cached) = setup(CacheConfig::default());
    cached.set("k", rec(&clock, "v1", 3600)).await.unwrap();
    inner.fail(Op::Set, ErrorKind::Unavailable);
    let err = cached.set("k", rec(&clock, "v2", 3600)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    inner.heal();
    // The cached v1 was dropped: the next get asks the inner store.
    assert_eq!(value(&cached, "k").await.as_deref(), Some("v1"));
    assert_eq!(inner.calls(Op::Get), 1);
}

#[tokio::test]
async fn write_with_unknown_outcome_is_not_served_from_cache() {
    let (inner, clock, cached) = setup(CacheConfig::default());
    cached.set("k", rec(&clock, "v1", 3600)).await.unwrap();
    assert_eq!(value(&cached, "k").await.as_deref(), Some("v1"));
    inner.fail_after_write(); // reaches the store, then times out
    let err = cached.set("k", rec(&clock, "v2", 3600)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    inner.heal();
    assert_eq!(value(&cached, "k").await.as_deref(), Some("v2"));
}

#[tokio::test]
async fn create_delete_touch_keep_the_cache_right() {
    let (inner, clock, cached) = setup(CacheConfig::default());
    assert!(cached.create("k", rec(&clock, "mine", 3600)).await.unwrap());
    assert!(!cached
        .create("k", rec(&clock, "theirs", 3600))
        .await
        .unwrap());
    assert_eq!(value(&cached, "k").await.as_deref(), Some("mine"));
    // The failed create ended the entry (it could have written): one read.
    assert_eq!(inner.calls(Op::Get), 1);

    let later = clock.now() + secs(7200);
    assert!(cached.touch("k", Some(later)).await.unwrap());
    let r = cached.get("k").await.unwrap().unwrap();
    assert_eq!(
        (r.value.as_ref(), r.expires_at),
        (&b"mine"[..], Some(later))
    );
    assert_eq!(inner.calls(Op::Get), 1, "a touch updates the cached expiry");
    assert!(cached.create("n", rec(&clock, "new", 3600)).await.unwrap());
    assert_eq!(value(&cached, "n").await.as_deref(), Some("new"));
    assert_eq!(inner.calls(Op::Get), 1, "a successful create fills");

    assert!(cached.delete("k").await.unwrap());
    assert_eq!(value(&cached, "k").await, None);
    assert!(!cached.touch("k", None).await.unwrap());
    assert_eq!(value(&cached, "k").await, None);
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_share_one_inner_read() {
    let (inner, clock, cached) = setup(CacheConfig::default());
    inner.data().set("k", rec(&clock, "v", 3600)).await.unwrap();
    inner.get_delay(Duration::from_millis(50));
    let cached = Arc::new(cached);
    for key in ["k", "missing"] {
        let before = inner.calls(Op::Get);
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let c = cached.clone();
                tokio::spawn(async move { c.get(key).await.unwrap().map(|r| r.value) })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().is_some(), key == "k");
        }
        assert_eq!(
            inner.calls(Op::Get) - before,
            1,
            "50 gets of {key:?}, one read"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn followers_share_a_failure_and_survive_a_cancelled_leader() {
    let (inner, clock, cached) = setup(CacheConfig::default());
    inner.data().set("k", rec(&clock, "v", 3600)).await.unwrap();
    inner.get_delay(Duration::from_millis(50));
    inner.fail(Op::Get, ErrorKind::Unavailable);
    let (a, b) = tokio::join!(cached.get("k"), cached.get("k"));
    assert_eq!(a.unwrap_err().kind(), ErrorKind::Unavailable);
    assert_eq!(b.unwrap_err().kind(), ErrorKind::Unavailable);
    assert_eq!(inner.calls(Op::Get), 1);
    inner.heal();
    // The leader gives up after 10 ms; its follower reads on its own.
    let leader = tokio::time::timeout(Duration::from_millis(10), cached.get("k"));
    let follower = async {
        tokio::time::sleep(Duration::from_millis(1)).await;
        cached.get("k").await
    };
    let (l, f) = tokio::join!(leader, follower);
    assert!(l.is_err(), "leader timed out");
    assert_eq!(f.unwrap().unwrap().value, "v");
}

#[tokio::test]
async fn serves_stale_on_transient_errors_within_bounds() {
    let config = CacheConfig::default()
        .ttl(secs(30))
        .serve_stale(Some(secs(300)));
    let (inner, clock, cached) = setup(config);
    cached.set("k", rec(&clock, "v", 200)).await.unwrap();
    cached.set("j", rec(&clock, "w", 3600)).await.unwrap();
    clock.advance(secs(60));
    inner.fail(Op::Get, ErrorKind::Unavailable);
    assert_eq!(
        value(&cached, "k").await.as_deref(),
        Some("v"),
        "stale within bound"
    );
    clock.advance(secs(150)); // k expired at 200 s
    assert_eq!(
        cached.get("k").await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    assert_eq!(value(&cached, "j").await.as_deref(), Some("w"));
    clock.advance(secs(100)); // j was stored 310 s ago
    assert!(cached.get("j").await.is_err(), "past max staleness");
    inner.heal();
    inner.fail(Op::Get, ErrorKind::Corrupt);
    cached.set("c", rec(&clock, "x", 3600)).await.unwrap();
    clock.advance(secs(31));
    assert_eq!(
        cached.get("c").await.unwrap_err().kind(),
        ErrorKind::Corrupt,
        "only transient errors"
    );
}

#[tokio::test]
async fn stale_serving_is_off_by_default() {
    let (inner, clock, cached) = setup(CacheConfig::default().ttl(secs(30)));
    cached.set("k", rec(&clock, "v", 3600)).await.unwrap();
    clock.advance(secs(31));
    inner.fail(Op::Get, ErrorKind::Timeout);
    assert_eq!(
        cached.get("k").await.unwrap_err().kind(),
        ErrorKind::Timeout
    );
}

#[tokio::test]
async fn negative_caching_is_opt_in() {
    let (inner, _clock, cached) = setup(CacheConfig::default());
    assert_eq!(value(&cached, "none").await, None);
    assert_eq!(value(&cached, "none").await, None);
    assert_eq!(inner.calls(Op::Get), 2);

    let (inner, clock, cached) = setup(CacheConfig::default().negative_ttl(Some(secs(5))));
    assert_eq!(value(&cached, "none").await, None);
    assert_eq!(value(&cached, "none").await, None);
    assert_eq!(inner.calls(Op::Get), 1);
    // A create through the cache is seen at once.
    assert!(cached
        .create("none", rec(&clock, "now", 3600))
        .await
        .unwrap());
    assert_eq!(value(&cached, "none").await.as_deref(), Some("now"));
    clock.advance(secs(6));
    assert_eq!(value(&cached, "gone").await, None);
    clock.advance(secs(6));
    assert_eq!(value(&cached, "gone").await, None);
    assert_eq!(inner.calls(Op::Get), 3, "negative entries expire");
}

#[tokio::test]
async fn bounded_by_entries_and_bytes() {
    let (_, clock, cached) = setup(CacheConfig::default().max_entries(10).max_bytes(None));
    for i in 0..200 {
        cached
            .set(&format!("k{i}"), rec(&clock, "v", 3600))
            .await
            .unwrap();
    }
    cached.core.cache.run_pending_tasks();
    assert!(cached.entry_count() <= 10, "{}", cached.entry_count());

    // 64 KiB over 1000 entries: 1 KiB values fit about 55 at a time.
    let config = CacheConfig::default()
        .max_entries(1000)
        .max_bytes(Some(64 << 10));
    let (_, clock, cached) = setup(config);
    let big = Record::expiring_at(vec![7u8; 1024], clock.now() + secs(3600));
    for i in 0..500 {
        cached.set(&format!("k{i}"), big.clone()).await.unwrap();
    }
    cached.core.cache.run_pending_tasks();
    let n = cached.entry_count();
    assert!(
        n > 0 && n * (1024 + 128) <= 64 << 10,
        "{n} entries of 1 KiB"
    );
}

#[tokio::test]
async fn clear_forgets_everything_and_scan_len_pass_through() {
    let (inner, clock, cached) = setup(CacheConfig::default());
    for k in ["a", "b"] {
        cached.set(k, rec(&clock, "v", 3600)).await.unwrap();
    }
    assert_eq!(cached.len().await.unwrap(), 2);
    assert_eq!(
        cached
            .scan("", ScanCursor::start(), 10)
            .await
            .unwrap()
            .keys
            .len(),
        2
    );
    cached.clear().await.unwrap();
    assert_eq!(value(&cached, "a").await, None);
    assert_eq!(inner.calls(Op::Get), 1);
    assert_eq!(cached.name(), "cached(scripted)");
}

/// An invalidator whose publish always fails.
#[cfg(feature = "metrics")]
#[derive(Debug)]
struct Broken;

#[cfg(feature = "metrics")]
#[async_trait]
impl Invalidator for Broken {
    async fn publish(&self, _: bytes::Bytes) -> Result<()> {
        Err(crate::StoreError::unavailable(Op::Set).with_store("pubsub"))
    }
    fn subscribe(&self) -> Result<Box<dyn Subscriber>> {
        let (tx, rx) = tokio::sync::mpsc::channel::<Notice>(1);
        std::mem::forget(tx); // stays open
        Ok(Box::new(rx))
    }
}

#[cfg(feature = "metrics")]
#[tokio::test]
async fn a_cache_problem_never_fails_an_operation() {
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (_, clock, cached) = ::metrics::with_local_recorder(&recorder, || {
        setup(
            CacheConfig::default()
                .invalidator(Broken)
                .metrics_label("sessions"),
        )
    });
    cached.set("k", rec(&clock, "v", 3600)).await.unwrap();
    assert!(cached.delete("k").await.unwrap());
    cached.clear().await.unwrap();
    let failures: u64 = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(k, ..)| k.key().name() == crate::observe::CACHE_PUBLISH_FAILURES_TOTAL)
        .map(|(.., v)| match v {
            metrics_util::debugging::DebugValue::Counter(n) => n,
            _ => 0,
        })
        .sum();
    assert_eq!(failures, 3);
}

#[cfg(feature = "metrics")]
#[tokio::test]
async fn hits_and_misses_are_counted() {
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (_, clock, cached) =
        ::metrics::with_local_recorder(&recorder, || setup(CacheConfig::default()));
    cached.set("k", rec(&clock, "v", 3600)).await.unwrap();
    value(&cached, "k").await;
    value(&cached, "k").await;
    value(&cached, "other").await;
    let snapshot = snapshotter.snapshot().into_vec();
    let get = |name: &str| -> u64 {
        snapshot
            .iter()
            .filter(|(k, ..)| {
                k.key().name() == name
                    && k.key()
                        .labels()
                        .any(|l| l.key() == "store" && l.value() == "scripted")
            })
            .map(|(.., v)| match v {
                metrics_util::debugging::DebugValue::Counter(n) => *n,
                _ => 0,
            })
            .sum()
    };
    assert_eq!(get(crate::observe::CACHE_HITS_TOTAL), 2);
    assert_eq!(get(crate::observe::CACHE_MISSES_TOTAL), 1);
}

#[tokio::test]
async fn conditional_writes_are_decided_by_the_inner_store() {
    let (inner, clock, cached) = setup(CacheConfig::default().ttl(secs(3600)));
    cached.set("k", rec(&clock, "v1", 3600)).await.unwrap();
    // Read through the cache: the version is the inner store's, never a
    // cache hit.
    let v1 = cached.get_versioned("k").await.unwrap().unwrap().version;
    assert_eq!(inner.calls(Op::GetVersioned), 1);
    // Another instance writes behind this cache's back.
    inner
        .data()
        .set("k", rec(&clock, "v2", 3600))
        .await
        .unwrap();
    assert_eq!(
        value(&cached, "k").await.as_deref(),
        Some("v1"),
        "stale hit"
    );
    let mine = rec(&clock, "mine", 3600);
    assert!(!cached
        .set_if("k", mine, Condition::Matches(v1))
        .await
        .unwrap());
    // The conflict dropped the stale entry.
    let gets = inner.calls(Op::Get);
    assert_eq!(value(&cached, "k").await.as_deref(), Some("v2"));
    assert_eq!(inner.calls(Op::Get), gets + 1);
    // A win caches the record written.
    let v2 = cached.get_versioned("k").await.unwrap().unwrap().version;
    let won = rec(&clock, "v3", 3600);
    assert!(cached
        .set_if("k", won, Condition::Matches(v2))
        .await
        .unwrap());
    assert_eq!(value(&cached, "k").await.as_deref(), Some("v3"));
    assert_eq!(inner.calls(Op::Get), gets + 1, "served from the cache");
}
