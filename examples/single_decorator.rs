//! One decorator around your own store: a `Store` implementation written
//! here (a stand-in for a legacy session backend), guarded only by a
//! `CircuitBreaker`. Run with
//! `cargo run -p storestack-examples --example single_decorator`.
//!
//! It shows the breaker opening after consecutive failures, failing fast
//! without touching the backend, letting a bounded trial through after the
//! open period, and closing again once the backend is back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use storestack::{
    async_trait, BreakerConfig, Condition, ErrorKind, Op, Record, Result, ScanCursor, ScanPage,
    Store, StoreError, StoreExt, Versioned,
};

/// Your own backend: a map behind a lock, plus a switch that simulates an
/// outage and a counter of the calls that reached it.
#[derive(Default)]
struct LegacyStore {
    map: Mutex<HashMap<String, Record>>,
    down: AtomicBool,
    calls: AtomicU64,
}

impl LegacyStore {
    fn enter(&self, op: Op) -> Result<()> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.down.load(Ordering::Relaxed) {
            return Err(StoreError::unavailable(op)
                .with_store("legacy")
                .with_message("connection refused"));
        }
        Ok(())
    }

    fn live(&self, key: &str) -> Option<Record> {
        let now = SystemTime::now();
        self.map
            .lock()
            .get(key)
            .filter(|r| !r.is_expired_at(now))
            .cloned()
    }
}

#[async_trait]
impl Store for LegacyStore {
    fn name(&self) -> &str {
        "legacy"
    }
    async fn get(&self, key: &str) -> Result<Option<Record>> {
        self.enter(Op::Get)?;
        Ok(self.live(key))
    }
    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.enter(Op::Set)?;
        self.map.lock().insert(key.to_owned(), record);
        Ok(())
    }
    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.enter(Op::Create)?;
        if self.live(key).is_some() {
            return Ok(false);
        }
        self.map.lock().insert(key.to_owned(), record);
        Ok(true)
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.enter(Op::Delete)?;
        let was = self.live(key).is_some();
        self.map.lock().remove(key);
        Ok(was)
    }
    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        self.enter(Op::Touch)?;
        let Some(mut r) = self.live(key) else {
            return Ok(false);
        };
        r.expires_at = expires_at;
        self.map.lock().insert(key.to_owned(), r);
        Ok(true)
    }
    async fn scan(&self, prefix: &str, _: ScanCursor, _: usize) -> Result<ScanPage> {
        self.enter(Op::Scan)?;
        let now = SystemTime::now();
        let keys = (self.map.lock().iter())
            .filter(|(k, r)| k.starts_with(prefix) && !r.is_expired_at(now))
            .map(|(k, _)| k.clone())
            .collect();
        Ok(ScanPage { keys, next: None })
    }
    async fn len(&self) -> Result<u64> {
        self.enter(Op::Len)?;
        let now = SystemTime::now();
        Ok(self
            .map
            .lock()
            .values()
            .filter(|r| !r.is_expired_at(now))
            .count() as u64)
    }
    async fn clear(&self) -> Result<()> {
        self.enter(Op::Clear)?;
        self.map.lock().clear();
        Ok(())
    }
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.enter(Op::GetVersioned)?;
        // The version is the stored bytes: nothing else to keep.
        Ok(self.live(key).map(Versioned::stored))
    }
    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        self.enter(Op::SetIf)?;
        // Checked and written under one lock: atomic.
        let mut map = self.map.lock();
        let now = SystemTime::now();
        let holds = match (map.get(key).filter(|r| !r.is_expired_at(now)), &condition) {
            (None, _) => false,
            (Some(_), Condition::Exists) => true,
            (Some(r), Condition::Matches(v)) => v.matches(&r.value),
        };
        if holds {
            map.insert(key.to_owned(), record);
        }
        Ok(holds)
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let legacy = Arc::new(LegacyStore::default());
    let store = legacy.clone().circuit_breaker(
        BreakerConfig::default()
            .consecutive_failures(3)
            .open_for(Duration::from_millis(200), Duration::from_secs(5))
            .half_open(1, 1)
            .on_state_change(|c| println!("  breaker: {} -> {}", c.from, c.to)),
    );
    let breaker = store.handle();

    store.set("sess:1", Record::never_expiring("hello")).await?;
    println!(
        "healthy: get = {:?}",
        store.get("sess:1").await?.map(|r| r.value)
    );

    println!("backend goes down");
    legacy.down.store(true, Ordering::Relaxed);
    for _ in 0..3 {
        let err = store.get("sess:1").await.unwrap_err();
        println!("  {err}");
    }
    let before = legacy.calls.load(Ordering::Relaxed);
    let t = Instant::now();
    let err = store.get("sess:1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert_eq!(
        legacy.calls.load(Ordering::Relaxed),
        before,
        "open breaker must not call the backend"
    );
    println!(
        "  failed fast in {:?} without calling the backend: {err}",
        t.elapsed()
    );

    legacy.down.store(false, Ordering::Relaxed);
    println!("backend is back; waiting out the open period");
    tokio::time::sleep(Duration::from_millis(250)).await;
    println!(
        "trial call: get = {:?}",
        store.get("sess:1").await?.map(|r| r.value)
    );
    println!("state: {}", breaker.state());
    assert_eq!(breaker.state().as_str(), "closed");
    Ok(())
}
