//! Retries of transient failures, with exponential backoff and jitter.
//!
//! [`Retry`] repeats an operation that failed with a transient error
//! (`Unavailable`, `Timeout`) after a delay computed by the
//! [`backoff`](https://docs.rs/backoff) crate's exponential backoff
//! ([`RetryConfig`]), up to a number of attempts and a time budget. When it
//! gives up, the last error is returned marked
//! [`exhausted`](crate::StoreError::is_exhausted).
//!
//! What is **not** retried, and returned at once, unmarked:
//!
//! * non-transient errors (`Corrupt`, `InvalidInput`, `TooLarge`, …):
//!   trying again cannot change them; nor a broken deployment
//!   (`PermissionDenied`: a wrong password or a missing grant;
//!   `Misconfigured`: TLS, an unknown command), which only an operator can
//!   fix (see the [error module](crate::error));
//! * `CircuitOpen`: a breaker fails fast by design, and retrying a fast
//!   failure only burns the budget while the breaker stays open (put the
//!   breaker *above* Retry, or let a Fallback take over);
//! * errors already marked exhausted: a Retry further down has tried.
//!
//! # `create` is safe to retry
//!
//! Every operation but `create` and `set_if` may simply be repeated. `create` may not:
//! if an attempt *was applied* but its reply was lost (a `Timeout`, or an
//! `Unavailable` from a connection that broke after sending), the next
//! attempt finds the key taken by the caller's own write and would answer
//! `false`, "already existed", and the caller would discard a session it
//! just created. So once an attempt has failed with an unknown outcome and
//! a later attempt answers `false`, Retry reads the key back:
//!
//! * the stored record **is this call's record** (same value bytes, expiry
//!   equal within 1 ms, since backends keep milliseconds): the earlier
//!   attempt was applied, and `create` answers `true`;
//! * a different record: someone else holds the key; `false`;
//! * no record (it vanished between the two steps, deleted or expired):
//!   the key is free, so `create` tries once more and answers what that
//!   attempt says.
//!
//! The residual ambiguity: had the lost attempt *not* been applied, and
//! another caller created the same key with byte-identical value and the
//! same expiry in between, both callers are told `true`. For sessions this
//! needs two callers to draw the same random session ID (128 bits or more)
//! *and* write identical data within one retry window: negligible, and the
//! store then holds exactly what each believes it wrote. The opposite error
//! cannot happen for a record left in place: a caller whose own write was
//! applied is never told `false`, unless another writer replaced the
//! record before the read-back, in which case `false` is the safe answer
//! (the caller picks a new ID). Reads of the key are done with the same
//! inner store, so the comparison sees the same bytes the attempt wrote.
//!
//! # `set_if` is safe to retry
//!
//! `set_if` has the same trap: an attempt applied whose reply was lost
//! changes the stored bytes, so the next attempt's
//! [`Condition::Matches`] fails against the
//! caller's own write, and `false` would send the caller into a needless
//! conflict (a session merge would redo its work; the fail policy would
//! refuse the request). So, as for `create`, once an attempt has failed
//! with an unknown outcome and a later one answers `false`, Retry reads
//! the key back and answers `true` if and only if the stored record is
//! this call's record (same bytes, expiry within 1 ms).
//!
//! Repeating the write itself is safe: an attempt can only succeed while
//! the condition still holds, i.e. while no other writer changed the
//! record since the version was read (an earlier attempt of this call that
//! was applied changed it, so a later one cannot apply twice, unless the
//! new bytes equal the old, and then writing them again changes nothing).
//! A [`Condition::Exists`] attempt repeated after another writer's `set`
//! overwrites that write, exactly as a repeated `set` would; it never
//! re-creates a deleted record.
//!
//! What stays ambiguous, because only the stored bytes can be compared:
//!
//! * `true` after an unknown outcome means *the store holds exactly this
//!   call's record*. If another writer wrote byte-identical bytes (same
//!   value, same expiry) in between, both are told `true`: the stored state
//!   is what each wanted, but a caller counting its own writes (a counter
//!   whose increments two writers computed alike) would count one twice.
//!   Make records unique where a writer's identity matters (name the
//!   writer in the value); [`Encrypted`](crate::Encrypted) below Retry
//!   does it for you with a fresh nonce per write.
//! * A record this call wrote and another writer then replaced or deleted
//!   before the read-back is answered `false` (the caller re-reads and
//!   finds the other write, which is newer anyway; a counter would count
//!   again: a read-modify-write that must be exactly-once cannot be made
//!   so across a lost reply by comparing bytes). A `set_if` of an already
//!   expired record (which removes the key) answers `true` when the
//!   read-back finds the key absent.
//!
//! `delete` and `touch` return whether a live record was there; after an
//! attempt with an unknown outcome, a repeated `delete` can answer `false`
//! for a record the first attempt removed. The key is gone either way.
//!
//! # Default
//!
//! [`RetryConfig::default`]: 3 attempts, 25 ms initial delay doubling up to
//! 1 s, jitter ±50 %, no retry starting more than 2 s after the first
//! failure.
//!
//! # Ordering
//!
//! Put a Timeout **inside** Retry: each attempt then has its own deadline,
//! and a hung attempt is cut off and retried. Outside, one deadline covers
//! all attempts, and a hang consumes it whole. Against a backend that
//! hangs, inside:
//!
//! ```
//! # #[cfg(feature = "fault")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(async {
//! use std::time::Duration;
//! use storestack::{ErrorKind, FaultConfig, MemoryStore, RetryConfig, Store, StoreExt};
//!
//! let faulty = MemoryStore::new().fault_injection(FaultConfig::default().seed(1).hang_rate(1.0));
//! let faults = faulty.handle();
//! let store = faulty
//!     .timeout(Duration::from_millis(50))
//!     .retry(RetryConfig::default().max_attempts(3));
//!
//! let err = store.get("sess").await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Timeout);
//! assert!(err.is_exhausted()); // retried, then gave up
//! assert_eq!(faults.stats().hangs, 3); // three attempts, each cut at 50 ms
//! # });
//! ```
//!
//! and outside, the same pieces in the other order:
//!
//! ```
//! # #[cfg(feature = "fault")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(async {
//! use std::time::Duration;
//! use storestack::{ErrorKind, FaultConfig, MemoryStore, RetryConfig, Store, StoreExt};
//!
//! let faulty = MemoryStore::new().fault_injection(FaultConfig::default().seed(1).hang_rate(1.0));
//! let faults = faulty.handle();
//! let store = faulty
//!     .retry(RetryConfig::default().max_attempts(3))
//!     .timeout(Duration::from_millis(50));
//!
//! let err = store.get("sess").await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Timeout);
//! assert!(!err.is_exhausted()); // never retried
//! assert_eq!(faults.stats().hangs, 1); // the first attempt took the whole deadline
//! # });
//! ```
//!
//! Put a CircuitBreaker **above** Retry, so that an open breaker is not
//! retried and a retried call counts once.
//!
//! # Examples
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use storestack::{MemoryStore, Record, RetryConfig, Store, StoreExt};
//!
//! let store = MemoryStore::new()
//!     .timeout(Duration::from_millis(50))
//!     .retry(RetryConfig::default().max_attempts(4).backoff(
//!         Duration::from_millis(10),
//!         Duration::from_millis(200),
//!     ));
//! assert!(store.create("sess", Record::never_expiring("v")).await?);
//! assert!(!store.create("sess", Record::never_expiring("w")).await?);
//! assert_eq!(store.name(), "retry(timeout(memory))");
//! # Ok::<_, storestack::StoreError>(())
//! # }).unwrap();
//! ```

mod config;
mod create;
mod layer;
mod observer;
mod set_if;

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

pub use config::RetryConfig;
pub use layer::RetryLayer;
pub use observer::{RetryEvent, RetryObserver};

use crate::error::{ErrorKind, Op, Result, StoreError};
use crate::store::{Condition, Record, ScanCursor, ScanPage, Store, Versioned};

/// A store that retries transient failures. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Retry<S> {
    inner: S,
    config: RetryConfig,
    name: String,
}

/// One attempt of [`Retry::retry`]: the replayed first failure, or a call.
enum Step<F> {
    Failed(StoreError),
    Run(F),
}

/// Whether `err` is worth another attempt.
fn retryable(err: &StoreError) -> bool {
    err.is_transient() && err.kind() != ErrorKind::CircuitOpen && !err.is_exhausted()
}

impl<S: Store> Retry<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, config: RetryConfig) -> Self {
        let name = format!("retry({})", inner.name());
        Retry {
            inner,
            config,
            name,
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or the budget is
    /// spent.
    async fn run<T, F, Fut>(&self, op: Op, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send,
    {
        // The first attempt runs alone: a healthy call pays for no backoff.
        match attempt().await {
            Ok(v) => Ok(v),
            Err(e) if !retryable(&e) => Err(e),
            Err(e) => self.retry(op, e, attempt).await,
        }
    }

    /// Retries after a first attempt failed with `first`, on the backoff
    /// crate's schedule.
    async fn retry<T, F, Fut>(&self, op: Op, first: StoreError, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send,
    {
        let attempts = AtomicU32::new(0);
        let max = self.config.attempts();
        let counter = &attempts;
        let mut first = Some(first);
        let operation = move || {
            let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
            // The backoff's first "attempt" replays the first failure, so
            // that it schedules the second attempt.
            let step = match first.take() {
                Some(e) => Step::Failed(e),
                None => Step::Run(attempt()),
            };
            async move {
                let out = match step {
                    Step::Failed(e) => Err(e),
                    Step::Run(fut) => fut.await,
                };
                match out {
                    Ok(v) => Ok(v),
                    Err(e) if !retryable(&e) => Err(backoff::Error::permanent(e)),
                    Err(e) if n >= max => Err(backoff::Error::permanent(e.exhausted())),
                    Err(e) => Err(backoff::Error::transient(e)),
                }
            }
        };
        let notify = |err: StoreError, delay: Duration| {
            let attempt = attempts.load(Ordering::Relaxed);
            self.observe(op, attempt, &err, Some(delay));
        };
        let out = backoff::future::retry_notify(self.config.new_backoff(), operation, notify).await;
        out.map_err(|err| {
            // Out of time: the backoff returns the last transient error.
            let err = if retryable(&err) {
                err.exhausted()
            } else {
                err
            };
            if err.is_exhausted() {
                self.observe(op, attempts.load(Ordering::Relaxed), &err, None);
            }
            err
        })
    }

    fn observe(&self, op: Op, attempt: u32, error: &StoreError, next_delay: Option<Duration>) {
        let store = self.inner.name();
        match next_delay {
            Some(delay) => {
                tracing::debug!(store, %op, attempt, ?delay, %error, "retrying store operation")
            }
            None => {
                tracing::warn!(store, %op, attempt, %error, "store operation failed after retries")
            }
        }
        self.config.observer.emit(&RetryEvent {
            store,
            op,
            attempt,
            error,
            next_delay,
        });
    }
}

impl<S> Retry<S> {
    /// The configuration.
    pub fn config(&self) -> &RetryConfig {
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
impl<S: Store> Store for Retry<S> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &str) -> Result<Option<Record>> {
        self.run(Op::Get, || self.inner.get(key)).await
    }

    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.run(Op::Set, || self.inner.set(key, record.clone()))
            .await
    }

    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.create_safely(key, record).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.run(Op::Delete, || self.inner.delete(key)).await
    }

    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        self.run(Op::Touch, || self.inner.touch(key, expires_at))
            .await
    }

    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        self.run(Op::Scan, || self.inner.scan(prefix, cursor.clone(), limit))
            .await
    }

    async fn len(&self) -> Result<u64> {
        self.run(Op::Len, || self.inner.len()).await
    }

    async fn clear(&self) -> Result<()> {
        self.run(Op::Clear, || self.inner.clear()).await
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.run(Op::GetVersioned, || self.inner.get_versioned(key))
            .await
    }

    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        self.set_if_safely(key, record, condition).await
    }
}

#[cfg(test)]
mod tests;
