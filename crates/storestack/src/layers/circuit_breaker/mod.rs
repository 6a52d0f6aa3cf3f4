//! Fail fast while a store keeps failing.
//!
//! [`CircuitBreaker`] watches the outcome of every call to the inner store.
//! While **closed**, calls go through and a failure policy counts their
//! failures. When the policy trips, the breaker **opens**: for an open
//! period, every call fails at once with
//! [`ErrorKind::CircuitOpen`] without
//! touching the inner store (in well under a microsecond: see the
//! `resilience` benchmark), which spares a sick backend and lets a Fallback
//! above switch over immediately. When the period ends the breaker is
//! **half-open**: at most [`half_open_calls`](BreakerConfig::half_open_calls)
//! trial calls run at once and every other call fails fast; a failed trial
//! reopens it for a longer period (doubling up to
//! [`max_open_for`](BreakerConfig::max_open_for)), and
//! [`close_after`](BreakerConfig::close_after) successful trials close it.
//!
//! **What counts as a failure**: transient errors only (`Unavailable`,
//! `Timeout`, `CircuitOpen` from a breaker below), and calls slower than
//! [`slow_call`](BreakerConfig::slow_call) if set. `Corrupt`,
//! `InvalidInput`, `TooLarge` and the other permanent errors say nothing
//! about the backend's health: they are neither failures nor successes.
//! That includes a broken deployment (`PermissionDenied`, `Misconfigured`):
//! opening would turn it into a transient `CircuitOpen` that Retry and
//! Fallback treat as an outage (the table and the reasons are in the
//! [error module](crate::error)). A
//! call abandoned by its caller (its future dropped) counts as a failure
//! if it was a trial or already slow, and not at all otherwise.
//!
//! **The policies come from `failsafe`**: [`Trip::ConsecutiveFailures`] is
//! failsafe's `consecutive_failures`, and any [`failsafe::FailurePolicy`]
//! can be plugged in with [`Trip::custom`] (e.g. two combined with
//! `or_else`). The state machine around them is this module's own, because
//! failsafe's `StateMachine` (a) admits *every* call while half-open, where
//! a recovering backend must see a bounded number, (b) reads
//! `std::time::Instant`, which `tokio::time::pause()` cannot move, so open
//! periods could not be tested without real sleeps, and (c) can be neither
//! queried nor forced. For the same clock reason the failure-rate policy
//! ([`Trip::FailureRate`], [`FailureRate`]) is written here on tokio's
//! clock, as a failsafe `FailurePolicy`. Open periods are the `backoff`
//! crate's exponential backoff ([`OpenBackoff`]).
//!
//! **Observable**: every state change emits a `tracing` event (`warn` when
//! opening, `info` otherwise; the store's name, never a key) and calls the
//! [`on_state_change`](BreakerConfig::on_state_change) listener. Operators
//! hold a [`BreakerHandle`] ([`CircuitBreaker::handle`]) to read the state
//! and counters and to force the breaker open or closed or reset it.
//!
//! # Default
//!
//! [`BreakerConfig::default`]: opens after 5 consecutive failures, for
//! 5 s at first, doubling up to 60 s with ±20 % jitter; one trial call at a
//! time while half-open, closing after one success; no slow-call rule.
//!
//! # Ordering
//!
//! Above Timeout (so that hangs reach it as `Timeout` failures) and above
//! Retry (an open breaker is not retried, and a retried call counts once),
//! and **inside** Fallback, so that an open breaker fails over in
//! microseconds. The fluent order `timeout → retry → circuit_breaker →
//! with_fallback` does all three.
//!
//! # Examples
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(async {
//! use std::time::Duration;
//! use storestack::{BreakerConfig, BreakerState, ErrorKind, MemoryStore, Record, Store, StoreExt};
//!
//! let store = MemoryStore::new()
//!     .timeout(Duration::from_millis(50))
//!     .circuit_breaker(BreakerConfig::default().consecutive_failures(3));
//! let breaker = store.handle();
//! store.set("sess", Record::never_expiring("v")).await?;
//!
//! breaker.force_open(); // maintenance: fail fast
//! let err = store.get("sess").await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::CircuitOpen);
//! assert_eq!(breaker.stats().rejected, 1);
//!
//! breaker.reset();
//! assert_eq!(breaker.state(), BreakerState::Closed);
//! assert_eq!(store.get("sess").await?.unwrap().value, "v");
//! # Ok::<_, storestack::StoreError>(())
//! # }).unwrap();
//! ```
//!
//! Opening on failures, then probing (with injected faults):
//!
//! ```
//! # #[cfg(feature = "fault")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(async {
//! use std::time::Duration;
//! use storestack::{BreakerConfig, BreakerState, ErrorKind, FaultConfig, MemoryStore, Store, StoreExt};
//!
//! let faulty = MemoryStore::new().fault_injection(FaultConfig::default().seed(3));
//! let faults = faulty.handle();
//! let store = faulty.circuit_breaker(
//!     BreakerConfig::default()
//!         .consecutive_failures(3)
//!         .open_for(Duration::from_secs(5), Duration::from_secs(60))
//!         .open_jitter(0.0),
//! );
//! let breaker = store.handle();
//!
//! faults.set_down(true);
//! for _ in 0..3 {
//!     assert_eq!(store.get("k").await.unwrap_err().kind(), ErrorKind::Unavailable);
//! }
//! assert_eq!(breaker.state(), BreakerState::Open);
//! let err = store.get("k").await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::CircuitOpen);
//! assert_eq!(faults.stats().ops, 3); // the fourth call never reached the store
//!
//! faults.set_down(false);
//! tokio::time::sleep(Duration::from_secs(5)).await;
//! assert_eq!(store.get("k").await.unwrap(), None); // the trial call succeeds
//! assert_eq!(breaker.state(), BreakerState::Closed);
//! # });
//! ```

mod config;
mod handle;
mod layer;
mod machine;
mod policy;
mod state;

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

pub use config::{BoxPolicy, BreakerConfig, OpenBackoff, PolicyFactory, Trip};
pub use handle::{BreakerHandle, BreakerStats};
pub use layer::CircuitBreakerLayer;
pub use policy::FailureRate;
pub use state::{BreakerState, StateChange};

use crate::error::{ErrorKind, Op, Result, StoreError};
use crate::store::{Condition, Record, ScanCursor, ScanPage, Store, Versioned};
use machine::Core;
use state::Outcome;

/// A store guarded by a circuit breaker. See the [module docs](self).
/// Clones share the breaker.
#[derive(Debug, Clone)]
pub struct CircuitBreaker<S> {
    inner: S,
    core: Arc<Core>,
    name: String,
}

impl<S: Store> CircuitBreaker<S> {
    /// Wraps `inner` in a new, closed breaker.
    pub fn new(inner: S, config: BreakerConfig) -> Self {
        let name = format!("circuit_breaker({})", inner.name());
        let core = Arc::new(Core::new(config, inner.name().to_owned()));
        CircuitBreaker { inner, core, name }
    }

    async fn call<T, F, Fut>(&self, op: Op, call: F) -> Result<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let Some(permit) = self.core.admit() else {
            return Err(self.rejected(op));
        };
        let out = call().await;
        permit.finish(match &out {
            Ok(_) => Outcome::Success,
            Err(e) if e.is_transient() => Outcome::Failure,
            Err(_) => Outcome::Neutral,
        });
        out
    }

    fn rejected(&self, op: Op) -> StoreError {
        StoreError::new(ErrorKind::CircuitOpen, op)
            .with_store(self.core.store.clone())
            .with_message("circuit breaker open")
    }
}

impl<S> CircuitBreaker<S> {
    /// The operators' handle of this breaker.
    pub fn handle(&self) -> BreakerHandle {
        BreakerHandle {
            core: self.core.clone(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.core.config
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
impl<S: Store> Store for CircuitBreaker<S> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &str) -> Result<Option<Record>> {
        self.call(Op::Get, || self.inner.get(key)).await
    }

    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.call(Op::Set, || self.inner.set(key, record)).await
    }

    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.call(Op::Create, || self.inner.create(key, record))
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.call(Op::Delete, || self.inner.delete(key)).await
    }

    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        self.call(Op::Touch, || self.inner.touch(key, expires_at))
            .await
    }

    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        self.call(Op::Scan, || self.inner.scan(prefix, cursor, limit))
            .await
    }

    async fn len(&self) -> Result<u64> {
        self.call(Op::Len, || self.inner.len()).await
    }

    async fn clear(&self) -> Result<()> {
        self.call(Op::Clear, || self.inner.clear()).await
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.call(Op::GetVersioned, || self.inner.get_versioned(key))
            .await
    }

    /// A failed precondition (`Ok(false)`) is a success for the breaker:
    /// the store answered.
    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        self.call(Op::SetIf, || self.inner.set_if(key, record, condition))
            .await
    }
}

#[cfg(test)]
mod tests;
