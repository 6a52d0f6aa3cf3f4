//! Graceful degradation: when the session store is down, a request goes on
//! with a temporary session instead of failing.
//!
//! [`Degraded`] wraps the whole session stack (outermost). Inside a
//! request's [`scoped`] block, a transient store error (`Unavailable`,
//! `Timeout`, `CircuitOpen`: an outage that even a fallback could not
//! hide) no longer fails the request:
//!
//! | operation | store up | store down (transient error) |
//! |---|---|---|
//! | load (`get`) | the stored session; any temporary copy is dropped | the request's temporary session if it has one, else an empty session **under the same ID**, so the cookie and the real session survive the outage |
//! | save (`set`) | written; any temporary copy is dropped | kept as a temporary session |
//! | save in a request whose load was degraded | never written to the store: it holds temporary data, and the store may have come back meanwhile with the real session | kept as a temporary session |
//! | new session (`create`) | created (insert only if absent) | created as a temporary session |
//! | extend (`touch`) | done | done on the temporary session, if any |
//! | delete | deleted, temporary copy too | temporary copy deleted; the stored session stays until its expiry (logged) |
//!
//! Temporary sessions live in a bounded in-process [`MemoryStore`]
//! (count, bytes, size of one session and lifetime bounded by
//! [`DegradeConfig`]; over a bound the soonest to expire go first) and are
//! **never written to the store**: when the store returns, the stored
//! session is served again and its temporary copy dropped. What a user
//! loses to an outage is the changes made during it (and a session begun
//! during it), not the session, and not the site.
//!
//! Bad data and bad requests are never "degraded": `Corrupt` is still no
//! session (the adapters' rule), `InvalidInput` and `TooLarge` still fail.
//! Each degraded operation is logged with its reason and a keyed hash of
//! the session ID (at most one warning a second, the rest at debug), and
//! each degraded request counted in [`DEGRADED_REQUESTS_TOTAL`].
//!
//! # Examples
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use storestack::{FaultConfig, MemoryStore, Record, Store, StoreExt};
//! use storestack_session_core::degrade::{scoped, DegradeLayer};
//!
//! let backend = MemoryStore::new().fault_injection(FaultConfig::default());
//! let faults = backend.handle();
//! let store = backend.layer(DegradeLayer::default());
//! store.set("sess-1", Record::never_expiring(&b"\x81\xa1a\x01"[..])).await?;
//!
//! faults.set_down(true);
//! assert!(store.get("sess-1").await.is_err(), "outside a request scope: an error");
//! let (found, degraded) = scoped(async { store.get("sess-1").await }).await;
//! assert_eq!(found?.unwrap().value, &b"\x80"[..], "an empty temporary session");
//! assert!(degraded.is_some());
//!
//! faults.set_down(false);
//! assert_eq!(store.get("sess-1").await?.unwrap().value, &b"\x81\xa1a\x01"[..]);
//! # Ok::<_, storestack::StoreError>(())
//! # }).unwrap();
//! ```

mod scope;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use storestack::clock::{self, SharedClock};
use storestack::redact::KeyHash;
use storestack::{
    Condition, Layer, MemoryConfig, MemoryStore, Op, Record, Result, ScanCursor, ScanPage, Store,
    StoreError, Versioned,
};

pub use scope::{current, is_scoped, scoped, Degradation, DEGRADED_REQUESTS_TOTAL, HEADER};

use crate::codec::{chain, EMPTY_SESSION};

/// Bounds of the temporary sessions of a [`Degraded`] store.
#[derive(Clone)]
#[non_exhaustive]
pub struct DegradeConfig {
    /// Most temporary sessions held. Default 10 000.
    pub max_sessions: u64,
    /// Most bytes of temporary sessions held (IDs, values and overhead).
    /// Default 16 MiB.
    pub max_bytes: u64,
    /// Largest temporary session kept, in bytes; a larger change is
    /// dropped (logged) and the request still served. Default 16 KiB.
    pub max_session_bytes: usize,
    /// Longest life of a temporary session (a shorter session expiry
    /// wins). Default 30 minutes.
    pub ttl: Duration,
    /// The clock of the temporary sessions' expiry. Default: the system
    /// clock.
    pub clock: SharedClock,
}

impl Default for DegradeConfig {
    fn default() -> Self {
        DegradeConfig {
            max_sessions: 10_000,
            max_bytes: 16 * 1024 * 1024,
            max_session_bytes: 16 * 1024,
            ttl: Duration::from_secs(30 * 60),
            clock: clock::system(),
        }
    }
}

impl fmt::Debug for DegradeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DegradeConfig")
            .field("max_sessions", &self.max_sessions)
            .field("max_bytes", &self.max_bytes)
            .field("max_session_bytes", &self.max_session_bytes)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl DegradeConfig {
    /// Sets the most temporary sessions held.
    pub fn max_sessions(mut self, n: u64) -> Self {
        self.max_sessions = n;
        self
    }

    /// Sets the most bytes of temporary sessions held.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Sets the largest temporary session kept.
    pub fn max_session_bytes(mut self, bytes: usize) -> Self {
        self.max_session_bytes = bytes;
        self
    }

    /// Sets the longest life of a temporary session.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the clock (a `MockClock` in tests).
    pub fn clock(mut self, clock: impl clock::Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }
}

/// Builds [`Degraded`] stores: `stack.layer(DegradeLayer::default())`.
#[derive(Debug, Clone, Default)]
pub struct DegradeLayer {
    config: DegradeConfig,
}

impl DegradeLayer {
    /// A layer with these bounds.
    pub fn new(config: DegradeConfig) -> Self {
        DegradeLayer { config }
    }
}

impl<S: Store> Layer<S> for DegradeLayer {
    type Store = Degraded<S>;

    fn layer(&self, inner: S) -> Degraded<S> {
        Degraded::new(inner, self.config.clone())
    }
}

/// A session store that serves temporary sessions while its inner store
/// is down. See the [module docs](self).
#[derive(Clone)]
pub struct Degraded<S> {
    inner: S,
    temp: MemoryStore,
    config: DegradeConfig,
    name: String,
    warned_at: Arc<AtomicU64>,
}

impl<S: Store> fmt::Debug for Degraded<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Degraded")
            .field("store", &self.inner.name())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S: Store> Degraded<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, config: DegradeConfig) -> Self {
        let temp = MemoryStore::with_config(
            MemoryConfig::default()
                .max_entries(config.max_sessions)
                .max_bytes(Some(config.max_bytes))
                .max_value_len(config.max_session_bytes)
                .shards(16)
                .clock(Arc::clone(&config.clock)),
        );
        Degraded {
            name: format!("degraded({})", inner.name()),
            inner,
            temp,
            config,
            warned_at: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The store underneath.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Temporary sessions held now (expired ones not yet reclaimed
    /// included).
    pub fn temporary_sessions(&self) -> u64 {
        self.temp.stats().entries
    }

    /// Whether `err` is an outage this request may ride out; if so, the
    /// request is marked degraded and the reason logged.
    fn degrades(&self, op: Op, key: &str, err: &StoreError) -> bool {
        if !err.is_transient() || !scope::is_scoped() {
            return false;
        }
        scope::mark(err.kind());
        let now = self.now_secs();
        let last = self.warned_at.load(Ordering::Relaxed);
        let warn = now > last
            && self
                .warned_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        let session = KeyHash::of(key);
        let error = chain(err);
        if warn {
            tracing::warn!(%session, op = op.as_str(), %error, "session store down: serving a temporary session");
        } else {
            tracing::debug!(%session, op = op.as_str(), %error, "session store down: serving a temporary session");
        }
        true
    }

    fn now_secs(&self) -> u64 {
        let now = self.config.clock.now();
        now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }

    /// `at`, capped at the temporary sessions' ttl from now.
    fn cap(&self, at: Option<SystemTime>) -> SystemTime {
        let cap = self.config.clock.now() + self.config.ttl;
        at.map_or(cap, |at| at.min(cap))
    }

    /// `record` with its expiry capped at the temporary sessions' ttl.
    fn capped(&self, mut record: Record) -> Record {
        record.expires_at = Some(self.cap(record.expires_at));
        record
    }

    /// Keeps `record` as the temporary session `key`; a session over the
    /// bounds is dropped (logged): the request is still served.
    async fn keep(&self, key: &str, record: Record, create: bool) -> bool {
        let record = self.capped(record);
        let kept = if create {
            self.temp.create(key, record).await
        } else {
            self.temp.set(key, record).await.map(|()| true)
        };
        kept.unwrap_or_else(|err| {
            tracing::warn!(session = %KeyHash::of(key), error = %err, "temporary session not kept");
            true
        })
    }

    /// Drops the temporary copy of `key`: the store answered, and it is
    /// the truth again.
    async fn forget(&self, key: &str) -> bool {
        self.temp.delete(key).await.unwrap_or(false)
    }
}

#[async_trait]
impl<S: Store> Store for Degraded<S> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &str) -> Result<Option<Record>> {
        match self.inner.get(key).await {
            Ok(found) => {
                self.forget(key).await;
                Ok(found)
            }
            Err(err) if self.degrades(Op::Get, key, &err) => {
                let temporary = self.temp.get(key).await.ok().flatten();
                let empty = || self.capped(Record::never_expiring(EMPTY_SESSION));
                Ok(Some(temporary.unwrap_or_else(empty)))
            }
            Err(err) => Err(err),
        }
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        match self.inner.get_versioned(key).await {
            Ok(found) => {
                self.forget(key).await;
                Ok(found)
            }
            Err(err) if self.degrades(Op::GetVersioned, key, &err) => {
                // A temporary session's version is its bytes; it never
                // matches a stored one, so a conditional save stays here.
                let temporary = self.temp.get(key).await.ok().flatten();
                let empty = || self.capped(Record::never_expiring(EMPTY_SESSION));
                Ok(Some(Versioned::stored(temporary.unwrap_or_else(empty))))
            }
            Err(err) => Err(err),
        }
    }

    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        if scope::current().is_some() {
            // As `set`: a degraded request's data never goes over the
            // stored session.
            self.keep(key, record, false).await;
            return Ok(true);
        }
        match self.inner.set_if(key, record.clone(), condition).await {
            Ok(written) => {
                if written {
                    self.forget(key).await;
                }
                Ok(written)
            }
            Err(err) if self.degrades(Op::SetIf, key, &err) => {
                self.keep(key, record, false).await;
                Ok(true)
            }
            Err(err) => Err(err),
        }
    }

    async fn set(&self, key: &str, record: Record) -> Result<()> {
        if scope::current().is_some() {
            // This request may hold temporary data (its load was
            // degraded): never let it over the stored session.
            self.keep(key, record, false).await;
            return Ok(());
        }
        match self.inner.set(key, record.clone()).await {
            Ok(()) => {
                self.forget(key).await;
                Ok(())
            }
            Err(err) if self.degrades(Op::Set, key, &err) => {
                self.keep(key, record, false).await;
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        if scope::current().is_some() {
            return Ok(self.keep(key, record, true).await);
        }
        match self.inner.create(key, record.clone()).await {
            Err(err) if self.degrades(Op::Create, key, &err) => {
                Ok(self.keep(key, record, true).await)
            }
            other => other,
        }
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let temporary = self.forget(key).await;
        match self.inner.delete(key).await {
            Ok(deleted) => Ok(deleted || temporary),
            Err(err) if self.degrades(Op::Delete, key, &err) => {
                tracing::warn!(
                    session = %KeyHash::of(key),
                    "session store down: the stored session is not deleted and lives until its expiry"
                );
                Ok(temporary)
            }
            Err(err) => Err(err),
        }
    }

    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        match self.inner.touch(key, expires_at).await {
            Err(err) if self.degrades(Op::Touch, key, &err) => {
                let at = Some(self.cap(expires_at));
                Ok(self.temp.touch(key, at).await.unwrap_or(false))
            }
            other => other,
        }
    }

    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        self.inner.scan(prefix, cursor, limit).await
    }

    async fn len(&self) -> Result<u64> {
        self.inner.len().await
    }

    async fn clear(&self) -> Result<()> {
        self.temp.clear().await?;
        self.inner.clear().await
    }
}

#[cfg(test)]
mod tests;
