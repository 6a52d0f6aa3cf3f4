//! Races between reads and writes, and invalidation across instances.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::*;

/// Lets spawned listeners run (current-thread runtime).
async fn delivered() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

async fn wait_for_reads(inner: &Scripted, n: usize) {
    while inner.calls(Op::Get) < n {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_read_that_raced_a_write_is_never_served_after_it() {
    let (inner, clock, cached) = setup(CacheConfig::default());
    let cached = Arc::new(cached);
    inner
        .data()
        .set("k", rec(&clock, "v0", 3600))
        .await
        .unwrap();
    let gate = inner.close_gate();
    // A miss reads v0 from the inner store and is held before it fills.
    let reader = tokio::spawn({
        let c = cached.clone();
        async move { value(&*c, "k").await }
    });
    wait_for_reads(&inner, 1).await;
    // Meanwhile a write of v1 completes.
    cached.set("k", rec(&clock, "v1", 3600)).await.unwrap();
    gate.add_permits(1);
    assert_eq!(
        reader.await.unwrap().as_deref(),
        Some("v0"),
        "began before the write"
    );
    inner.open_gate();
    for _ in 0..3 {
        assert_eq!(value(&*cached, "k").await.as_deref(), Some("v1"));
    }
}

#[tokio::test]
async fn a_read_that_raced_a_failed_write_is_never_served_after_it() {
    let (inner, clock, cached) = setup(CacheConfig::default());
    let cached = Arc::new(cached);
    inner
        .data()
        .set("k", rec(&clock, "v0", 3600))
        .await
        .unwrap();
    let gate = inner.close_gate();
    let reader = tokio::spawn({
        let c = cached.clone();
        async move { value(&*c, "k").await }
    });
    wait_for_reads(&inner, 1).await;
    inner.fail_after_write(); // v1 lands, but the caller sees a timeout
    assert!(cached.set("k", rec(&clock, "v1", 3600)).await.is_err());
    inner.heal();
    gate.add_permits(1);
    assert_eq!(reader.await.unwrap().as_deref(), Some("v0"));
    inner.open_gate();
    assert_eq!(value(&*cached, "k").await.as_deref(), Some("v1"));
}

/// A writer counts up; readers check that no read returns a value older
/// than the last one acknowledged before the read began. The writer runs
/// until every reader has done its reads, however the two are scheduled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_never_go_back_in_time_under_concurrency() {
    const READERS: usize = 4;
    const READS: usize = 1500;
    // Two slots, so writes of other keys also bump the slots of these; a
    // short ttl that readers let pass now and then, so they also miss and
    // fill while the writer writes.
    let config = CacheConfig::default().generation_slots(2).ttl(secs(1));
    let (inner, clock, cached) = setup(config);
    inner.get_yields(2);
    let cached = Arc::new(cached);
    let acked = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicU64::new(0));
    let value_of = |i: u64| Record::expiring_at(i.to_string(), clock.now() + secs(36_000));
    cached.set("k", value_of(0)).await.unwrap();
    let mut readers = Vec::new();
    for r in 0..READERS {
        let (c, acked, finished) = (cached.clone(), acked.clone(), finished.clone());
        let clock = clock.clone();
        readers.push(tokio::spawn(async move {
            // Counts this reader as finished even if it panics, so the
            // writer stops.
            let _done = Finished(finished);
            for n in 0..READS {
                if n % 3 == r % 3 {
                    clock.advance(secs(1));
                }
                let floor = acked.load(Ordering::SeqCst);
                let got: u64 = value(&*c, "k").await.unwrap().parse().unwrap();
                assert!(
                    got >= floor,
                    "reader {r} read {got} after {floor} was acknowledged"
                );
            }
        }));
    }
    let done = Arc::new(AtomicBool::new(false));
    let noise = tokio::spawn({
        let (c, done, clock) = (cached.clone(), done.clone(), clock.clone());
        async move {
            let mut i = 0u64;
            while !done.load(Ordering::SeqCst) {
                let r = Record::expiring_at("x", clock.now() + secs(3600));
                c.set(&format!("other{}", i % 7), r).await.unwrap();
                i += 1;
                tokio::task::yield_now().await;
            }
        }
    });
    let mut i = 0;
    while finished.load(Ordering::SeqCst) < READERS as u64 && i < 1_000_000 {
        i += 1;
        cached.set("k", value_of(i)).await.unwrap();
        acked.store(i, Ordering::SeqCst);
        tokio::task::yield_now().await;
    }
    done.store(true, Ordering::SeqCst);
    for r in readers {
        r.await.unwrap();
    }
    noise.await.unwrap();
    assert!(i > 1, "the writer ran ({i} writes)");
    assert_eq!(value(&*cached, "k").await.unwrap(), i.to_string());
}

struct Finished(Arc<AtomicU64>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn pair(config: CacheConfig) -> (MemoryStore, Cached<MemoryStore>, Cached<MemoryStore>) {
    let shared = MemoryStore::new();
    let a = shared.clone().cached(config.clone());
    let b = shared.clone().cached(config);
    (shared, a, b)
}

#[tokio::test]
async fn instances_stop_serving_each_others_overwritten_and_deleted_values() {
    let inv = LocalInvalidator::new();
    let (shared, a, b) = pair(CacheConfig::default().invalidator(inv.clone()));
    let long = || Duration::from_secs(3600);
    a.set("k", Record::expiring_after("v1", long()))
        .await
        .unwrap();
    delivered().await;
    assert_eq!(value(&b, "k").await.as_deref(), Some("v1"));
    // b really caches: a write behind both caches' backs is not seen.
    shared
        .set("k", Record::expiring_after("behind", long()))
        .await
        .unwrap();
    delivered().await;
    assert_eq!(value(&b, "k").await.as_deref(), Some("v1"));

    a.set("k", Record::expiring_after("v2", long()))
        .await
        .unwrap();
    delivered().await;
    assert_eq!(
        value(&b, "k").await.as_deref(),
        Some("v2"),
        "overwrite seen"
    );

    assert!(a.delete("k").await.unwrap());
    delivered().await;
    assert_eq!(value(&b, "k").await, None, "delete seen");

    b.set("j", Record::expiring_after("w", long()))
        .await
        .unwrap();
    delivered().await;
    assert_eq!(value(&a, "j").await.as_deref(), Some("w"));
    shared
        .set("j", Record::expiring_after("behind", long()))
        .await
        .unwrap();
    b.clear().await.unwrap();
    delivered().await;
    assert_eq!(value(&a, "j").await, None, "clear seen");
}

#[tokio::test]
async fn own_messages_do_not_invalidate_own_fills() {
    let inv = LocalInvalidator::new();
    let inner = Scripted::new();
    let a = inner
        .clone()
        .cached(CacheConfig::default().invalidator(inv));
    a.set("k", Record::never_expiring("v")).await.unwrap();
    delivered().await;
    assert_eq!(value(&a, "k").await.as_deref(), Some("v"));
    assert_eq!(inner.calls(Op::Get), 0);
}

#[tokio::test]
async fn lost_messages_make_the_cache_forget_everything() {
    let inv = LocalInvalidator::with_capacity(1);
    let (shared, _a, b) = pair(CacheConfig::default().invalidator(inv.clone()));
    shared.set("k", Record::never_expiring("v1")).await.unwrap();
    assert_eq!(value(&b, "k").await.as_deref(), Some("v1"));
    shared.set("k", Record::never_expiring("v2")).await.unwrap();
    // Messages about other keys overflow b's buffer before it reads them.
    for origin in 0..3 {
        let m = Message::Key { origin, hash: 42 }.encode();
        inv.publish(m).await.unwrap();
    }
    delivered().await;
    assert_eq!(value(&b, "k").await.as_deref(), Some("v2"));
}

/// An invalidator whose channel the test can close.
#[derive(Debug, Default)]
struct Closable(Mutex<Option<mpsc::Sender<Notice>>>);

#[async_trait]
impl Invalidator for Closable {
    async fn publish(&self, _: bytes::Bytes) -> Result<()> {
        Ok(())
    }
    fn subscribe(&self) -> Result<Box<dyn Subscriber>> {
        let (tx, rx) = mpsc::channel(8);
        *self.0.lock() = Some(tx);
        Ok(Box::new(rx))
    }
}

#[tokio::test]
async fn a_closed_channel_turns_caching_off() {
    let inv = Arc::new(Closable::default());
    let config = CacheConfig::default().shared_invalidator(inv.clone());
    let (shared, _a, b) = pair(config);
    shared.set("k", Record::never_expiring("v1")).await.unwrap();
    assert_eq!(value(&b, "k").await.as_deref(), Some("v1"));
    inv.0.lock().take(); // b's subscription ends (a's was replaced earlier)
    delivered().await;
    shared.set("k", Record::never_expiring("v2")).await.unwrap();
    assert_eq!(value(&b, "k").await.as_deref(), Some("v2"));
    shared.set("k", Record::never_expiring("v3")).await.unwrap();
    assert_eq!(
        value(&b, "k").await.as_deref(),
        Some("v3"),
        "no longer caching"
    );
}

#[test]
fn built_outside_a_runtime_listens_once_inside_one() {
    let inv = LocalInvalidator::new();
    let (shared, a, b) = pair(CacheConfig::default().invalidator(inv));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        shared.set("k", Record::never_expiring("v1")).await.unwrap();
        assert_eq!(value(&b, "k").await.as_deref(), Some("v1"));
        a.set("k", Record::never_expiring("v2")).await.unwrap();
        delivered().await;
        assert_eq!(value(&b, "k").await.as_deref(), Some("v2"));
    });
}

/// A channel whose publishes fail while `refusing` is set (the instance's
/// connection to it is down; subscriptions are unaffected).
#[derive(Debug)]
struct Refusing {
    channel: LocalInvalidator,
    refusing: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl Invalidator for Refusing {
    async fn publish(&self, message: bytes::Bytes) -> Result<()> {
        if self.refusing.load(Ordering::SeqCst) {
            return Err(crate::StoreError::unavailable(Op::Set).with_store("refusing"));
        }
        self.channel.publish(message).await
    }

    fn subscribe(&self) -> Result<Box<dyn Subscriber>> {
        self.channel.subscribe()
    }
}

/// Found by the chaos suite (scenario `redis-invalidation-cut`): a write
/// whose invalidation could not be published left the other instances
/// serving the overwritten value until their ttl.
#[tokio::test(start_paused = true)]
async fn a_failed_publish_is_made_good_once_the_channel_is_back() {
    let channel = LocalInvalidator::new();
    let refusing = Arc::new(AtomicBool::new(false));
    let shared = MemoryStore::new();
    let a = shared
        .clone()
        .cached(CacheConfig::default().invalidator(Refusing {
            channel: channel.clone(),
            refusing: refusing.clone(),
        }));
    let b = shared
        .clone()
        .cached(CacheConfig::default().invalidator(channel));
    let long = || Duration::from_secs(3600);
    a.set("k", Record::expiring_after("v1", long()))
        .await
        .unwrap();
    delivered().await;
    assert_eq!(value(&b, "k").await.as_deref(), Some("v1")); // b caches v1

    refusing.store(true, Ordering::SeqCst);
    a.set("k", Record::expiring_after("v2", long()))
        .await
        .unwrap();
    assert!(a.delete("j").await.is_ok());
    delivered().await;
    // While a cannot publish, b cannot know: the documented window.
    assert_eq!(value(&b, "k").await.as_deref(), Some("v1"));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(value(&b, "k").await.as_deref(), Some("v1"));

    // The channel is back; a writes nothing more, its listener pays.
    refusing.store(false, Ordering::SeqCst);
    tokio::time::sleep(super::super::core::DEBT_RETRY * 2).await;
    delivered().await;
    assert_eq!(value(&b, "k").await.as_deref(), Some("v2"));
}

/// Paused and never advanced: the listener's retry never fires, so only
/// the next publish can have paid.
#[tokio::test(start_paused = true)]
async fn the_next_publish_pays_the_debt_first() {
    let channel = LocalInvalidator::new();
    let refusing = Arc::new(AtomicBool::new(true));
    let shared = MemoryStore::new();
    let a = shared
        .clone()
        .cached(CacheConfig::default().invalidator(Refusing {
            channel: channel.clone(),
            refusing: refusing.clone(),
        }));
    let b = shared
        .clone()
        .cached(CacheConfig::default().invalidator(channel));
    shared.set("k", Record::never_expiring("v1")).await.unwrap();
    assert_eq!(value(&b, "k").await.as_deref(), Some("v1"));
    a.set("k", Record::never_expiring("v2")).await.unwrap(); // not published
    refusing.store(false, Ordering::SeqCst);
    // A write of another key: its message alone would not tell b about k.
    a.set("other", Record::never_expiring("x")).await.unwrap();
    delivered().await;
    assert_eq!(value(&b, "k").await.as_deref(), Some("v2"));
}
