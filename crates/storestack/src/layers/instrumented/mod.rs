//! Tracing spans, metrics and slow-operation warnings for every operation.
//!
//! [`Instrumented`] wraps a store and, for each operation:
//!
//! * opens a `tracing` span `store_op` at `DEBUG` level with the fields
//!   `store` (the configured name), `op`, `key` (a
//!   [`KeyHash`], never the raw key: session IDs are credentials),
//!   and, when the operation ends, `outcome`, `latency_us` and
//!   `value_bytes`. The inner store's own events nest inside it. The span
//!   and the key hash are built only when a subscriber wants `DEBUG` spans,
//!   so a subscriber at `INFO` costs almost nothing;
//! * updates the counters and histograms of [`observe`](crate::observe),
//!   where every metric name and label value is listed in one table
//!   (`storestack_operations_total`, `storestack_operation_duration_seconds`,
//!   `storestack_value_bytes`, `storestack_slow_operations_total`; cargo
//!   feature `metrics`, on by default). Handles are registered when the
//!   store is built: install the recorder first;
//! * logs a `WARN` event `slow store operation` (with store, op, key hash and
//!   latency) when an operation takes at least the slow threshold, and
//!   counts it;
//! * logs failures as an event inside the span: `ERROR` for
//!   `PermissionDenied` and `Misconfigured` (a broken deployment:
//!   [`ErrorKind::needs_operator`]), `WARN` for `Corrupt` and `Internal`
//!   (tampering or bugs), `DEBUG` for the others (an outage shows in the
//!   metrics, not as one log line per request).
//!
//! Errors pass through unchanged; the decorator changes no semantics.
//!
//! # Default
//!
//! No default name: one is always given (it becomes the `store` label).
//! The slow threshold defaults to
//! [`DEFAULT_SLOW_THRESHOLD`] (100 ms).
//!
//! # Ordering
//!
//! Outermost, so it measures what callers see, cache hits included. Put a
//! second one lower (e.g. around the backend, with another name) to see
//! the backend's own latency next to the stack's.
//!
//! # Examples
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use storestack::layers::instrumented::InstrumentConfig;
//! use storestack::{MemoryStore, Record, Store, StoreExt};
//!
//! let store = MemoryStore::new().instrumented(
//!     InstrumentConfig::new("sessions").slow_threshold(Some(Duration::from_millis(50))),
//! );
//! assert_eq!(store.name(), "instrumented(memory)");
//! store.set("sess:1", Record::never_expiring("v")).await?;
//! assert_eq!(store.get("sess:1").await?.unwrap().value, "v");
//! assert!(store.get("sess:2").await?.is_none()); // outcome "miss"
//! # Ok::<_, storestack::StoreError>(())
//! # }).unwrap();
//! ```

mod config;
mod layer;
mod metrics;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tracing::field::{display, Empty};
use tracing::Instrument as _;

pub use config::{InstrumentConfig, DEFAULT_SLOW_THRESHOLD};
pub use layer::InstrumentedLayer;

use crate::error::{ErrorKind, Op, Result};
use crate::observe::OutcomeIdx;
use crate::redact::KeyHash;
use crate::store::{Condition, Record, ScanCursor, ScanPage, Store, Versioned};
use metrics::OpMetrics;

/// A store whose operations are traced and measured. See the
/// [module docs](self).
pub struct Instrumented<S> {
    inner: S,
    name: String,
    label: Arc<str>,
    slow: Option<Duration>,
    metrics: Arc<OpMetrics>,
}

impl<S: Clone> Clone for Instrumented<S> {
    fn clone(&self) -> Self {
        Instrumented {
            inner: self.inner.clone(),
            name: self.name.clone(),
            label: self.label.clone(),
            slow: self.slow,
            metrics: self.metrics.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Instrumented<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instrumented")
            .field("inner", &self.inner)
            .field("label", &self.label)
            .field("slow", &self.slow)
            .finish_non_exhaustive()
    }
}

impl<S: Store> Instrumented<S> {
    /// Wraps `inner`, registering its metric handles with the current
    /// `metrics` recorder.
    pub fn new(inner: S, config: impl Into<InstrumentConfig>) -> Self {
        let config = config.into();
        let name = format!("instrumented({})", inner.name());
        Instrumented {
            metrics: Arc::new(OpMetrics::new(&config.name)),
            label: config.name.into(),
            slow: config.slow_threshold,
            name,
            inner,
        }
    }
}

impl<S> Instrumented<S> {
    /// The configured name (the `store` label).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The wrapped store.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the store.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Runs `fut` (the inner operation) inside a span and records it.
    /// `classify` maps a success to its outcome and the bytes it read;
    /// `written` is the size of the value a write sends.
    async fn observe<T>(
        &self,
        op: Op,
        key: Option<&str>,
        written: Option<usize>,
        fut: impl Future<Output = Result<T>>,
        classify: impl FnOnce(&T) -> (OutcomeIdx, Option<usize>),
    ) -> Result<T> {
        let span = tracing::debug_span!(
            "store_op",
            store = &*self.label,
            op = op.as_str(),
            key = Empty,
            outcome = Empty,
            latency_us = Empty,
            value_bytes = Empty,
        );
        let enabled = !span.is_disabled();
        if let (true, Some(key)) = (enabled, key) {
            span.record("key", display(KeyHash::of(key)));
        }
        let start = quanta::Instant::now();
        let result = if enabled {
            fut.instrument(span.clone()).await
        } else {
            fut.await
        };
        let elapsed = start.elapsed();
        let (outcome, read) = match &result {
            Ok(v) => classify(v),
            Err(e) => (OutcomeIdx::of_error(e.kind()), None),
        };
        let bytes = read.or(written);
        self.metrics.record(op, outcome, elapsed, bytes);
        if enabled {
            span.record("outcome", outcome.as_str());
            span.record("latency_us", elapsed.as_micros() as u64);
            if let Some(b) = bytes {
                span.record("value_bytes", b as u64);
            }
            if let Err(e) = &result {
                if e.needs_operator() {
                    tracing::error!(parent: &span, error = %e, "store operation failed");
                } else if matches!(e.kind(), ErrorKind::Corrupt | ErrorKind::Internal) {
                    tracing::warn!(parent: &span, error = %e, "store operation failed");
                } else {
                    tracing::debug!(parent: &span, error = %e, "store operation failed");
                }
            }
        } else if let Err(e) = &result {
            // Without the span, a broken deployment, bugs and tampering
            // still deserve a line.
            if e.needs_operator() {
                tracing::error!(store = &*self.label, op = op.as_str(), error = %e, "store operation failed");
            } else if matches!(e.kind(), ErrorKind::Corrupt | ErrorKind::Internal) {
                tracing::warn!(store = &*self.label, op = op.as_str(), error = %e, "store operation failed");
            }
        }
        if matches!(self.slow, Some(t) if elapsed >= t) {
            self.metrics.slow(op);
            tracing::warn!(
                store = &*self.label,
                op = op.as_str(),
                key = key.map(|k| display(KeyHash::of(k))),
                outcome = outcome.as_str(),
                latency_ms = elapsed.as_millis() as u64,
                threshold_ms = self.slow.map_or(0, |t| t.as_millis() as u64),
                "slow store operation"
            );
        }
        result
    }
}

fn found(found: &bool) -> (OutcomeIdx, Option<usize>) {
    if *found {
        (OutcomeIdx::OK, None)
    } else {
        (OutcomeIdx::MISS, None)
    }
}

fn ok<T>(_: &T) -> (OutcomeIdx, Option<usize>) {
    (OutcomeIdx::OK, None)
}

#[async_trait]
impl<S: Store> Store for Instrumented<S> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &str) -> Result<Option<Record>> {
        self.observe(Op::Get, Some(key), None, self.inner.get(key), |r| match r {
            Some(r) => (OutcomeIdx::OK, Some(r.value.len())),
            None => (OutcomeIdx::MISS, None),
        })
        .await
    }

    async fn set(&self, key: &str, record: Record) -> Result<()> {
        let len = record.value.len();
        self.observe(
            Op::Set,
            Some(key),
            Some(len),
            self.inner.set(key, record),
            ok,
        )
        .await
    }

    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        let len = record.value.len();
        let fut = self.inner.create(key, record);
        self.observe(Op::Create, Some(key), Some(len), fut, |&wrote| {
            if wrote {
                (OutcomeIdx::OK, None)
            } else {
                (OutcomeIdx::EXISTS, None)
            }
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.observe(Op::Delete, Some(key), None, self.inner.delete(key), found)
            .await
    }

    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        let fut = self.inner.touch(key, expires_at);
        self.observe(Op::Touch, Some(key), None, fut, found).await
    }

    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        // The prefix is not recorded: it may be part of a key.
        let fut = self.inner.scan(prefix, cursor, limit);
        self.observe(Op::Scan, None, None, fut, ok).await
    }

    async fn len(&self) -> Result<u64> {
        self.observe(Op::Len, None, None, self.inner.len(), ok)
            .await
    }

    async fn clear(&self) -> Result<()> {
        self.observe(Op::Clear, None, None, self.inner.clear(), ok)
            .await
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        let fut = self.inner.get_versioned(key);
        self.observe(Op::GetVersioned, Some(key), None, fut, |r| match r {
            Some(v) => (OutcomeIdx::OK, Some(v.record.value.len())),
            None => (OutcomeIdx::MISS, None),
        })
        .await
    }

    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        let len = record.value.len();
        let fut = self.inner.set_if(key, record, condition);
        self.observe(Op::SetIf, Some(key), Some(len), fut, |&wrote| {
            if wrote {
                (OutcomeIdx::OK, None)
            } else {
                (OutcomeIdx::CONFLICT, None)
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests;
