//! A deadline on every operation.
//!
//! [`Timeout`] races each operation of the inner store against a deadline
//! (one for every operation, or one per operation: [`TimeoutConfig`]). When
//! the deadline passes first, the inner future is **dropped**, which cancels
//! whatever it was waiting on, and the call fails with
//! [`ErrorKind::Timeout`](crate::ErrorKind::Timeout), naming the operation
//! and the inner store. A timed-out write may still have been applied: a
//! timeout means "outcome unknown", which is why Retry makes `create` safe
//! to repeat.
//!
//! Deadlines run on tokio's clock, so the store must be used inside a tokio
//! runtime with the time driver enabled, and tests can drive it with
//! `tokio::time::pause()`.
//!
//! # Default
//!
//! [`TimeoutConfig::default`]: 1 s for `get`, `set`, `create`, `delete`,
//! `touch`; 30 s for `scan`, `len` and `clear`. `StoreExt::timeout` takes
//! a `Duration` (the same deadline everywhere) or a `TimeoutConfig`.
//!
//! # Ordering
//!
//! Directly around the backend, **inside** Retry (each attempt gets its own
//! deadline and a hung attempt is retried; outside, one deadline covers all
//! attempts and their backoff, and a hang is never retried: the Retry docs
//! show both orders) and inside CircuitBreaker (the breaker counts
//! timeouts as failures only if it sees them).
//!
//! # Examples
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use storestack::layers::timeout::TimeoutConfig;
//! use storestack::{MemoryStore, Op, Record, Store, StoreExt};
//!
//! let store = MemoryStore::new().timeout(
//!     TimeoutConfig::new(Duration::from_millis(50)).op(Op::Scan, Duration::from_secs(1)),
//! );
//! store.set("sess", Record::never_expiring("v")).await?;
//! assert_eq!(store.get("sess").await?.unwrap().value, "v");
//! assert_eq!(store.name(), "timeout(memory)");
//! # Ok::<_, storestack::StoreError>(())
//! # }).unwrap();
//! ```
//!
//! A backend that never answers is cut off at the deadline:
//!
//! ```
//! # #[cfg(feature = "fault")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(async {
//! use std::time::Duration;
//! use storestack::layers::fault::FaultConfig;
//! use storestack::{ErrorKind, MemoryStore, Op, Store, StoreExt};
//!
//! let hanging = MemoryStore::new().fault_injection(FaultConfig::default().seed(7).hang_rate(1.0));
//! let store = hanging.timeout(Duration::from_millis(50));
//! let started = tokio::time::Instant::now();
//! let err = store.get("sess").await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Timeout);
//! assert_eq!(err.op(), Op::Get);
//! assert_eq!(started.elapsed(), Duration::from_millis(50));
//! # });
//! ```

mod config;
mod layer;

use std::future::Future;
use std::task::Poll;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

pub use config::TimeoutConfig;
pub use layer::TimeoutLayer;

use crate::error::{Op, Result, StoreError};
use crate::store::{Condition, Record, ScanCursor, ScanPage, Store, Versioned};

/// A store whose operations fail with `Timeout` past a deadline. See the
/// [module docs](self).
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    config: TimeoutConfig,
    name: String,
}

impl<S: Store> Timeout<S> {
    /// Wraps `inner` with these deadlines (a `Duration` for the same
    /// deadline on every operation).
    pub fn new(inner: S, config: impl Into<TimeoutConfig>) -> Self {
        let name = format!("timeout({})", inner.name());
        Timeout {
            inner,
            config: config.into(),
            name,
        }
    }

    async fn run<T, F>(&self, op: Op, fut: F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        let Some(deadline) = self.config.deadline(op) else {
            return fut.await;
        };
        // A store that answers at once (a memory or cache hit) needs no
        // timer: poll once before arming one. The deadline then counts from
        // the end of that first poll, which never waits.
        let mut fut = std::pin::pin!(fut);
        let first = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
        if let Poll::Ready(out) = first {
            return out;
        }
        // Boxed, so that the timer's state weighs only on calls that wait.
        match Box::pin(tokio::time::timeout(deadline, fut)).await {
            Ok(out) => out,
            Err(_) => Err(self.expired(op, deadline)),
        }
    }

    #[cold]
    fn expired(&self, op: Op, deadline: Duration) -> StoreError {
        StoreError::timeout(op)
            .with_store(self.inner.name().to_owned())
            .with_message(format!("no reply within {deadline:?}"))
    }
}

impl<S> Timeout<S> {
    /// The deadlines.
    pub fn config(&self) -> &TimeoutConfig {
        &self.config
    }

    /// The wrapped store.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the store.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

#[async_trait]
impl<S: Store> Store for Timeout<S> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &str) -> Result<Option<Record>> {
        self.run(Op::Get, self.inner.get(key)).await
    }

    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.run(Op::Set, self.inner.set(key, record)).await
    }

    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.run(Op::Create, self.inner.create(key, record)).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.run(Op::Delete, self.inner.delete(key)).await
    }

    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        self.run(Op::Touch, self.inner.touch(key, expires_at)).await
    }

    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        self.run(Op::Scan, self.inner.scan(prefix, cursor, limit))
            .await
    }

    async fn len(&self) -> Result<u64> {
        self.run(Op::Len, self.inner.len()).await
    }

    async fn clear(&self) -> Result<()> {
        self.run(Op::Clear, self.inner.clear()).await
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.run(Op::GetVersioned, self.inner.get_versioned(key))
            .await
    }

    /// A `set_if` that times out may still have written: its outcome is
    /// unknown, like any write's (see Retry on retrying it).
    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        self.run(Op::SetIf, self.inner.set_if(key, record, condition))
            .await
    }
}

#[cfg(test)]
mod tests;
