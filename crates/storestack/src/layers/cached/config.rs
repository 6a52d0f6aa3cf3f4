use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::invalidation::Invalidator;
use crate::clock::{self, Clock, SharedClock};

/// Configuration of a [`Cached`](super::Cached) store.
///
/// ```
/// use std::time::Duration;
/// use storestack::CacheConfig;
///
/// let config = CacheConfig::default()
///     .max_entries(100_000)
///     .max_bytes(Some(256 << 20))
///     .ttl(Duration::from_secs(30))
///     .serve_stale(Some(Duration::from_secs(300)));
/// assert_eq!(config.ttl, Duration::from_secs(30));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct CacheConfig {
    /// Most entries held; `None` for no bound on the count. Default 10 000.
    pub max_entries: Option<u64>,
    /// Most bytes held (keys + values + a fixed per-entry overhead); `None`
    /// for no bound. Default 64 MiB.
    pub max_bytes: Option<u64>,
    /// How long a cached record is served without asking the inner store.
    /// Never longer than the record's own expiry. Default 30 s.
    pub ttl: Duration,
    /// Cache "no such key" answers for this long; `None` (the default)
    /// caches only records.
    pub negative_ttl: Option<Duration>,
    /// When the inner store fails with a transient error, serve the last
    /// cached record if it was read or written at most this long ago (and
    /// has not expired). `None` (the default) surfaces the error.
    pub serve_stale: Option<Duration>,
    /// Number of generation slots (rounded up to a power of two) guarding
    /// against stale fills; each write invalidates the keys sharing its
    /// slot. Default 16 384 (128 KiB).
    pub generation_slots: usize,
    /// Cross-instance invalidation; `None` (the default) for a cache that
    /// only sees its own writes.
    pub invalidator: Option<Arc<dyn Invalidator>>,
    /// The secret of the keyed hash that names keys in invalidation
    /// messages; every instance on one channel must use the same. Default:
    /// a fixed public value (see the module docs on why that is acceptable,
    /// and set one derived from an application secret when it is not).
    pub invalidation_secret: [u8; 16],
    /// The `store` label of the cache metrics. Default: the inner store's
    /// name.
    pub metrics_label: Option<String>,
    /// The clock deciding expiry and staleness. Default: the system clock.
    pub clock: SharedClock,
}

/// The default invalidation secret: public, so instances agree without
/// configuration.
pub const DEFAULT_INVALIDATION_SECRET: [u8; 16] = *b"storestack/cache";

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_entries: Some(10_000),
            max_bytes: Some(64 << 20),
            ttl: Duration::from_secs(30),
            negative_ttl: None,
            serve_stale: None,
            generation_slots: 16_384,
            invalidator: None,
            invalidation_secret: DEFAULT_INVALIDATION_SECRET,
            metrics_label: None,
            clock: clock::system(),
        }
    }
}

impl fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheConfig")
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .field("ttl", &self.ttl)
            .field("negative_ttl", &self.negative_ttl)
            .field("serve_stale", &self.serve_stale)
            .field("generation_slots", &self.generation_slots)
            .field("invalidator", &self.invalidator)
            .field(
                "invalidation_secret",
                &if self.invalidation_secret == DEFAULT_INVALIDATION_SECRET {
                    "default"
                } else {
                    "<set>"
                },
            )
            .field("metrics_label", &self.metrics_label)
            .field("clock", &self.clock)
            .finish()
    }
}

impl CacheConfig {
    /// Bounds the number of entries.
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = Some(n);
        self
    }

    /// Removes the bound on the number of entries.
    pub fn unbounded_entries(mut self) -> Self {
        self.max_entries = None;
        self
    }

    /// Bounds the bytes held; `None` removes the bound.
    pub fn max_bytes(mut self, bytes: Option<u64>) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Sets how long a record is served from the cache.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Caches misses for `ttl`; `None` turns negative caching off.
    pub fn negative_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// Serves stale records up to `max_staleness` old when the inner store
    /// fails transiently; `None` turns it off.
    pub fn serve_stale(mut self, max_staleness: Option<Duration>) -> Self {
        self.serve_stale = max_staleness;
        self
    }

    /// Sets the number of generation slots.
    pub fn generation_slots(mut self, n: usize) -> Self {
        self.generation_slots = n;
        self
    }

    /// Listens to and publishes on `invalidator`.
    pub fn invalidator(mut self, invalidator: impl Invalidator) -> Self {
        self.invalidator = Some(Arc::new(invalidator));
        self
    }

    /// Listens to and publishes on a shared `invalidator`.
    pub fn shared_invalidator(mut self, invalidator: Arc<dyn Invalidator>) -> Self {
        self.invalidator = Some(invalidator);
        self
    }

    /// Sets the secret of the keyed hash in invalidation messages.
    pub fn invalidation_secret(mut self, secret: [u8; 16]) -> Self {
        self.invalidation_secret = secret;
        self
    }

    /// Sets the `store` label of the cache metrics.
    pub fn metrics_label(mut self, label: impl Into<String>) -> Self {
        self.metrics_label = Some(label.into());
        self
    }

    /// Sets the clock (a [`MockClock`](crate::clock::MockClock) in tests).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }
}
