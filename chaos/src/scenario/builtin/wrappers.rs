//! Two small stores the built-in scenarios wrap around others:
//! [`TrialGauge`] measures the trial calls a half-open breaker lets
//! through, and [`DropsWrites`] is deliberately wrong (it acknowledges
//! writes it never makes), for the canary that proves the checker fails a
//! broken stack.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use async_trait::async_trait;
use storestack::{
    BreakerHandle, BreakerState, Condition, Record, Result, ScanCursor, ScanPage, Store, Versioned,
};

/// Counts, below a circuit breaker, the calls that arrive while the
/// breaker is half-open (its trial calls) and the most of them in flight at
/// once.
#[derive(Debug)]
pub(crate) struct TrialGauge<S> {
    inner: S,
    stats: Arc<TrialStats>,
}

/// What a [`TrialGauge`] measured; shared with the scenario's probe.
#[derive(Debug, Default)]
pub(crate) struct TrialStats {
    /// The breaker above, set once it is built.
    pub(crate) breaker: OnceLock<BreakerHandle>,
    in_flight: AtomicU64,
    /// Trial calls in total.
    pub(crate) trials: AtomicU64,
    /// The most trial calls in flight at once.
    pub(crate) max_in_flight: AtomicU64,
}

/// Decrements the in-flight count when a trial call ends or is dropped.
struct Trial<'a>(&'a TrialStats);

impl Drop for Trial<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<S: Store> TrialGauge<S> {
    pub(crate) fn new(inner: S) -> (Self, Arc<TrialStats>) {
        let stats = Arc::new(TrialStats::default());
        let gauge = TrialGauge {
            inner,
            stats: stats.clone(),
        };
        (gauge, stats)
    }

    fn enter(&self) -> Option<Trial<'_>> {
        let stats = &self.stats;
        let half_open = stats
            .breaker
            .get()
            .is_some_and(|b| b.state() == BreakerState::HalfOpen);
        if !half_open {
            return None;
        }
        stats.trials.fetch_add(1, Ordering::SeqCst);
        let now = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        stats.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Some(Trial(stats))
    }
}

#[async_trait]
impl<S: Store> Store for TrialGauge<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn get(&self, key: &str) -> Result<Option<Record>> {
        let _trial = self.enter();
        self.inner.get(key).await
    }

    async fn set(&self, key: &str, record: Record) -> Result<()> {
        let _trial = self.enter();
        self.inner.set(key, record).await
    }

    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        let _trial = self.enter();
        self.inner.create(key, record).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let _trial = self.enter();
        self.inner.delete(key).await
    }

    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        let _trial = self.enter();
        self.inner.touch(key, expires_at).await
    }

    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        let _trial = self.enter();
        self.inner.scan(prefix, cursor, limit).await
    }

    async fn len(&self) -> Result<u64> {
        self.inner.len().await
    }

    async fn clear(&self) -> Result<()> {
        self.inner.clear().await
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        let _trial = self.enter();
        self.inner.get_versioned(key).await
    }

    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        let _trial = self.enter();
        self.inner.set_if(key, record, condition).await
    }
}

/// A store that acknowledges one `set` in `every` without making it: a
/// deliberately broken stack.
#[derive(Debug)]
pub(crate) struct DropsWrites<S> {
    inner: S,
    every: u64,
    sets: AtomicU64,
    name: String,
}

impl<S: Store> DropsWrites<S> {
    pub(crate) fn new(inner: S, every: u64) -> Self {
        let name = format!("drops-writes({})", inner.name());
        DropsWrites {
            inner,
            every: every.max(1),
            sets: AtomicU64::new(0),
            name,
        }
    }
}

#[async_trait]
impl<S: Store> Store for DropsWrites<S> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &str) -> Result<Option<Record>> {
        self.inner.get(key).await
    }

    async fn set(&self, key: &str, record: Record) -> Result<()> {
        if self.sets.fetch_add(1, Ordering::Relaxed) % self.every == self.every - 1 {
            return Ok(()); // acknowledged, never written: the bug
        }
        self.inner.set(key, record).await
    }

    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.inner.create(key, record).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.inner.delete(key).await
    }

    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        self.inner.touch(key, expires_at).await
    }

    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        self.inner.scan(prefix, cursor, limit).await
    }

    async fn len(&self) -> Result<u64> {
        self.inner.len().await
    }

    async fn clear(&self) -> Result<()> {
        self.inner.clear().await
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.inner.get_versioned(key).await
    }

    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        self.inner.set_if(key, record, condition).await
    }
}
