//! Seeded, replayable fault injection, for tests and chaos runs.
//!
//! [`FaultInjection`] sits around a store and makes it misbehave the way
//! real backends do, as a [`FaultConfig`] says, switchable at runtime
//! through a [`FaultHandle`]:
//!
//! * **outages**: down on command ([`FaultHandle::set_down`]), in scheduled
//!   windows ([`Outage`]), or flapping up and down ([`Flapping`]); an
//!   operation meets either a refusal (`Unavailable` by default) or a black
//!   hole that never answers ([`OutageMode`]);
//! * **latency**: fixed plus random jitter;
//! * **hangs**: an operation that never completes until its future is
//!   dropped (a Timeout above must catch it);
//! * **errors**: the operation fails with a chosen [`ErrorKind`] without
//!   reaching the store;
//! * **lost replies**: the operation *is applied*, then fails (what a
//!   timeout after the write looks like: the case Retry's safe `create`
//!   and Fallback's journal exist for);
//! * **corruption**: a value returned by `get` has one byte flipped (what
//!   a decoder above must reject as `Corrupt`).
//!
//! Every fault can be limited to some operations ([`OpSet`]). Injected
//! errors are ordinary [`StoreError`]s of the chosen kind, naming the
//! operation and the inner store, with a message that says they were
//! injected. Counters ([`FaultStats`]) say what was injected.
//!
//! **Replayable**: the n-th operation through the layer draws its faults
//! from a generator seeded with the seed and n, always the same values in
//! the same order, so the same seed and the same sequence of operations
//! give the same faults. A sequential run replays exactly; in a concurrent
//! run the n-th fault pattern is the same, while which operation comes n-th
//! is up to the scheduler. The seed is printed when the handle is made
//! (stderr, and a `tracing` event) and given by [`FaultHandle::seed`]; with
//! no seed configured, the [`SEED_ENV`] environment variable supplies one,
//! so a failed run replays without touching code. Time (latency, windows,
//! flapping) is tokio's, so paused-time tests run instantly.
//!
//! # Default
//!
//! [`FaultConfig::default`] injects nothing: the layer is transparent until
//! told otherwise through its handle. All operations are selected; outages
//! refuse with `Unavailable`; injected errors are `Unavailable`.
//!
//! # Ordering
//!
//! Directly around the backend it stands for, below everything under test:
//! `backend.fault_injection(..).timeout(..).retry(..).circuit_breaker(..)`.
//! For corruption scenarios it must sit below the decoders (Compressed,
//! Encrypted, Typed) so they see the damaged bytes. A [`FaultInjectionLayer`]
//! shares one handle among every store it builds.
//!
//! # Examples
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(async {
//! use std::time::Duration;
//! use storestack::layers::fault::Outage;
//! use storestack::{ErrorKind, FaultConfig, MemoryStore, Record, Store, StoreExt};
//!
//! let store = MemoryStore::new().fault_injection(
//!     FaultConfig::default()
//!         .seed(42)
//!         .outage(Outage::new(Duration::from_secs(10), Duration::from_secs(5))),
//! );
//! let faults = store.handle();
//! store.set("sess", Record::never_expiring("v")).await?;
//!
//! tokio::time::sleep(Duration::from_secs(10)).await; // the outage window
//! let err = store.get("sess").await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Unavailable);
//! assert!(err.message().contains("injected"));
//!
//! tokio::time::sleep(Duration::from_secs(5)).await; // over
//! assert!(store.get("sess").await?.is_some());
//!
//! faults.set_error_rate(1.0);
//! assert!(store.get("sess").await.is_err());
//! faults.heal();
//! assert!(store.get("sess").await.is_ok());
//! assert_eq!((faults.stats().outages, faults.stats().errors), (1, 1));
//! # Ok::<_, storestack::StoreError>(())
//! # }).unwrap();
//! ```

mod config;
mod handle;
mod layer;
mod ops;
mod plan;
mod stats;

use std::future::Future;
use std::time::SystemTime;

use async_trait::async_trait;

pub use config::{FaultConfig, Flapping, Outage, OutageMode};
pub use handle::{FaultHandle, SEED_ENV};
pub use layer::FaultInjectionLayer;
pub use ops::OpSet;
pub use stats::FaultStats;

use crate::error::{ErrorKind, Op, Result, StoreError};
use crate::store::{Condition, Record, ScanCursor, ScanPage, Store, Versioned};
use plan::Plan;
use stats::Counter;

/// A store with injected faults. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct FaultInjection<S> {
    inner: S,
    handle: FaultHandle,
    name: String,
}

impl<S: Store> FaultInjection<S> {
    /// Wraps `inner` with faults as `config` says (and a new handle, which
    /// prints the seed).
    pub fn new(inner: S, config: FaultConfig) -> Self {
        Self::with_handle(inner, FaultHandle::new(config))
    }

    /// Wraps `inner` with the faults `handle` controls (shared with every
    /// other store using it: same switches, same counters, one operation
    /// sequence).
    pub fn with_handle(inner: S, handle: FaultHandle) -> Self {
        let name = format!("fault({})", inner.name());
        FaultInjection {
            inner,
            handle,
            name,
        }
    }

    async fn run<T, F, Fut>(&self, op: Op, call: F) -> Result<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        match self.handle.plan(op) {
            None => call().await,
            Some(plan) => self.inject(op, &plan, call).await,
        }
    }

    async fn inject<T, F, Fut>(&self, op: Op, plan: &Plan, call: F) -> Result<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        if let Some(mode) = plan.outage {
            self.handle.count(Counter::Outages);
            match mode {
                OutageMode::Fail(kind) => return Err(self.injected(kind, op, "outage")),
                OutageMode::Hang => return std::future::pending().await,
            }
        }
        if !plan.delay.is_zero() {
            self.handle.count(Counter::Delayed);
            tokio::time::sleep(plan.delay).await;
        }
        if plan.hang {
            self.handle.count(Counter::Hangs);
            tracing::debug!(store = self.inner.name(), %op, "injected hang");
            return std::future::pending().await;
        }
        if let Some(kind) = plan.error {
            self.handle.count(Counter::Errors);
            return Err(self.injected(kind, op, "error"));
        }
        let out = call().await;
        if let Some(kind) = plan.lose_reply {
            self.handle.count(Counter::LostReplies);
            return Err(self.injected(kind, op, "lost reply after the operation was applied"));
        }
        out
    }

    /// Flips a byte of a value read, if the plan says so.
    fn corrupt(&self, plan: &Plan, record: &mut Record) {
        if let (Some((at, mask)), false) = (plan.corrupt, record.value.is_empty()) {
            let mut bytes = record.value.to_vec();
            let i = (at % bytes.len() as u64) as usize;
            bytes[i] ^= mask;
            record.value = bytes.into();
            self.handle.count(Counter::Corrupted);
            tracing::debug!(store = self.inner.name(), "injected corruption");
        }
    }

    fn injected(&self, kind: ErrorKind, op: Op, what: &'static str) -> StoreError {
        tracing::debug!(store = self.inner.name(), %op, %kind, what, "injected fault");
        StoreError::new(kind, op)
            .with_store(self.inner.name().to_owned())
            .with_message(format!("injected fault: {what}"))
    }
}

impl<S> FaultInjection<S> {
    /// The handle controlling the faults.
    pub fn handle(&self) -> FaultHandle {
        self.handle.clone()
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
impl<S: Store> Store for FaultInjection<S> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &str) -> Result<Option<Record>> {
        let Some(plan) = self.handle.plan(Op::Get) else {
            return self.inner.get(key).await;
        };
        let mut found = self.inject(Op::Get, &plan, || self.inner.get(key)).await?;
        if let Some(record) = found.as_mut() {
            self.corrupt(&plan, record);
        }
        Ok(found)
    }

    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.run(Op::Set, || self.inner.set(key, record)).await
    }

    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.run(Op::Create, || self.inner.create(key, record))
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.run(Op::Delete, || self.inner.delete(key)).await
    }

    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        self.run(Op::Touch, || self.inner.touch(key, expires_at))
            .await
    }

    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        self.run(Op::Scan, || self.inner.scan(prefix, cursor, limit))
            .await
    }

    async fn len(&self) -> Result<u64> {
        self.run(Op::Len, || self.inner.len()).await
    }

    async fn clear(&self) -> Result<()> {
        self.run(Op::Clear, || self.inner.clear()).await
    }

    /// Corruption flips a byte of the record read, not of its version.
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        let op = Op::GetVersioned;
        let Some(plan) = self.handle.plan(op) else {
            return self.inner.get_versioned(key).await;
        };
        let mut found = self
            .inject(op, &plan, || self.inner.get_versioned(key))
            .await?;
        if let Some(v) = found.as_mut() {
            self.corrupt(&plan, &mut v.record);
        }
        Ok(found)
    }

    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        self.run(Op::SetIf, || self.inner.set_if(key, record, condition))
            .await
    }
}

#[cfg(test)]
mod tests;
