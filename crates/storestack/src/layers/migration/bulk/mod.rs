//! The bulk migrator: copies every record of an old store to a new one,
//! resumably, and checks the result.
//!
//! [`BulkMigrator`] scans old page by page ([`Store::scan`]) and copies each
//! record to new with bounded concurrency and an optional rate limit
//! (records per second):
//!
//! * **Expiry is kept**: the absolute `expires_at` is copied, so a record
//!   keeps its remaining lifetime; a record that expired meanwhile is
//!   skipped.
//! * **Never overwrites**: a record goes to new with `create`
//!   (insert-if-absent). A record already in new was written there by the
//!   application in a write-both phase, after the value the scan found in
//!   old, so it is newer by construction and left alone. This needs every
//!   writer to write every key to both stores while the migrator runs:
//!   run it in `WriteBoth { percent: 100 }` or `ReadNew` only.
//! * **Never resurrects or goes stale**: each copy follows the copy
//!   protocol of the [migration](super) (read old again after the write,
//!   remove the copy if old changed). Run through
//!   [`Migration::bulk`](super::Migration::bulk), it also takes the
//!   migration's per-key locks, so it never races that process's writers.
//! * **Resumable**: after every page whose copies all completed, the scan
//!   cursor is saved to a [`Checkpoint`] ([`FileCheckpoint`] writes it
//!   atomically). A run that stops, crashes or whose future is dropped
//!   resumes at the first unfinished page; records of that page already
//!   copied are found in new and skipped, so nothing is lost or copied
//!   twice.
//! * **Errors**: a transient error on one record is retried
//!   ([`BulkConfig::max_attempts`], doubling delays); if it persists the
//!   record counts as failed and the run goes on (aborting once more than
//!   [`BulkConfig::max_failed`] failed). A non-transient error (a corrupt
//!   record, a value too large for new, …) or a scan that keeps failing
//!   aborts the run with that error as the source; the checkpoint is kept.
//! * **Dry run**: reads both stores and counts what would be copied;
//!   writes nothing, not even the checkpoint.
//! * **Verification** at the end ([`VerifyConfig`]): live counts of both
//!   stores, and a byte compare (value, expiry within 1 s) of a random
//!   sample of old's keys.
//! * **Progress**: a [`ProgressSink`] (any `Fn(&Progress)`) is called after
//!   every page and at the end, with counts, rate, elapsed time and an
//!   estimated total.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use storestack::layers::migration::bulk::{BulkConfig, BulkMigrator, MemoryCheckpoint, Progress};
//! use storestack::{MemoryStore, Record, Store};
//!
//! let (old, new) = (MemoryStore::new(), MemoryStore::new());
//! for i in 0..300 {
//!     old.set(&format!("k{i}"), Record::never_expiring("v")).await?;
//! }
//! new.set("k7", Record::never_expiring("newer")).await?; // written by the app
//! let checkpoint = MemoryCheckpoint::new();
//! let report = BulkMigrator::new(&old, &new)
//!     .config(BulkConfig::default().page_size(50).rate_limit(Some(100_000)))
//!     .checkpoint(checkpoint.clone())
//!     .on_progress(|p: &Progress| println!("{} scanned, {:.0}/s", p.counts.scanned, p.rate))
//!     .run()
//!     .await?;
//! assert_eq!(report.progress.counts.copied, 299);
//! assert_eq!(report.progress.counts.skipped_existing, 1);
//! assert_eq!(new.get("k7").await?.unwrap().value, "newer");
//! assert!(checkpoint.state().unwrap().done);
//! # Ok::<_, storestack::StoreError>(())
//! # }).unwrap();
//! ```

mod checkpoint;
mod progress;
mod rate;
#[cfg(test)]
mod tests;
mod verify;

use std::future::Future;
use std::time::Duration;

use std::task::Poll;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;

pub use checkpoint::{Checkpoint, CheckpointState, FileCheckpoint, MemoryCheckpoint};
pub use progress::{BulkReport, Counts, Progress, ProgressSink};
pub use verify::{VerifyConfig, VerifyReport};

use super::copy::{Copier, CopyOutcome, KeyLocks};
use super::phase::key_hash;
use crate::clock::{self, SharedClock};
use crate::error::{ErrorKind, Op, Result, StoreError};
use crate::store::{ScanCursor, ScanPage, Store};
use progress::Outcome;
use rate::RateLimiter;

/// Settings of a [`BulkMigrator`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BulkConfig {
    /// Keys per scan page (and per checkpoint). Default 500.
    pub page_size: usize,
    /// Copies in flight. Default 32.
    pub concurrency: usize,
    /// Most records per second; `None` (default) for no limit.
    pub rate_limit: Option<u32>,
    /// Count what would be copied, write nothing. Default off.
    pub dry_run: bool,
    /// Ignore a saved checkpoint and start from the beginning. Default off.
    pub restart: bool,
    /// Attempts per record (and per scan page) on transient errors.
    /// Default 3.
    pub max_attempts: u32,
    /// Delay before the first retry, doubled after each. Default 100 ms.
    pub retry_delay: Duration,
    /// Abort once more records than this have failed. Default 1000.
    pub max_failed: u64,
    /// The final check; `None` skips it. Default [`VerifyConfig::default`].
    pub verify: Option<VerifyConfig>,
    /// Copy only keys starting with this prefix. Default `""`.
    pub prefix: String,
    /// Read old again after each copy (the copy protocol). Turn it off
    /// only when nothing else writes either store. Default on.
    pub recheck: bool,
    /// Ask old for its live count at the start (for ETA). Default on.
    pub estimate_total: bool,
}

impl Default for BulkConfig {
    fn default() -> Self {
        BulkConfig {
            page_size: 500,
            concurrency: 32,
            rate_limit: None,
            dry_run: false,
            restart: false,
            max_attempts: 3,
            retry_delay: Duration::from_millis(100),
            max_failed: 1000,
            verify: Some(VerifyConfig::default()),
            prefix: String::new(),
            recheck: true,
            estimate_total: true,
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        impl BulkConfig {
            $($(#[$doc])* pub fn $name(mut self, v: $ty) -> Self {
                self.$name = v;
                self
            })*
        }
    };
}

setters! {
    /// Sets [`page_size`](Self::page_size) (at least 1).
    page_size: usize,
    /// Sets [`concurrency`](Self::concurrency) (at least 1).
    concurrency: usize,
    /// Sets [`rate_limit`](Self::rate_limit).
    rate_limit: Option<u32>,
    /// Sets [`dry_run`](Self::dry_run).
    dry_run: bool,
    /// Sets [`restart`](Self::restart).
    restart: bool,
    /// Sets [`max_attempts`](Self::max_attempts) (at least 1).
    max_attempts: u32,
    /// Sets [`retry_delay`](Self::retry_delay).
    retry_delay: Duration,
    /// Sets [`max_failed`](Self::max_failed).
    max_failed: u64,
    /// Sets [`verify`](Self::verify).
    verify: Option<VerifyConfig>,
    /// Sets [`prefix`](Self::prefix).
    prefix: String,
    /// Sets [`recheck`](Self::recheck).
    recheck: bool,
    /// Sets [`estimate_total`](Self::estimate_total).
    estimate_total: bool,
}

/// Copies every record of one store to another. See the
/// [module docs](self).
pub struct BulkMigrator<'a> {
    old: &'a dyn Store,
    new: &'a dyn Store,
    config: BulkConfig,
    checkpoint: Box<dyn Checkpoint + 'a>,
    progress: Option<Box<dyn ProgressSink + 'a>>,
    locks: Option<&'a KeyLocks>,
    clock: SharedClock,
    label: String,
}

impl std::fmt::Debug for BulkMigrator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkMigrator")
            .field("label", &self.label)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<'a> BulkMigrator<'a> {
    /// A migrator from `old` to `new` with the default settings, an
    /// in-memory checkpoint and the label `"<old name> -> <new name>"`.
    pub fn new(old: &'a dyn Store, new: &'a dyn Store) -> Self {
        BulkMigrator {
            label: format!("{} -> {}", old.name(), new.name()),
            old,
            new,
            config: BulkConfig::default(),
            checkpoint: Box::new(MemoryCheckpoint::new()),
            progress: None,
            locks: None,
            clock: clock::system(),
        }
    }

    /// Replaces the settings.
    pub fn config(mut self, config: BulkConfig) -> Self {
        self.config = config;
        self
    }

    /// Saves progress there (and resumes from it).
    pub fn checkpoint(mut self, checkpoint: impl Checkpoint + 'a) -> Self {
        self.checkpoint = Box::new(checkpoint);
        self
    }

    /// Reports progress there.
    pub fn on_progress(mut self, sink: impl ProgressSink + 'a) -> Self {
        self.progress = Some(Box::new(sink));
        self
    }

    /// The clock that decides whether a record has expired.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Names the migration: a checkpoint saved under another label is
    /// refused, so a run never resumes someone else's cursor.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub(super) fn with_locks(mut self, locks: &'a KeyLocks) -> Self {
        self.locks = Some(locks);
        self
    }

    /// Copies (resuming from the checkpoint), then verifies.
    pub async fn run(&self) -> Result<BulkReport> {
        let cfg = &self.config;
        let saved = if cfg.restart {
            None
        } else {
            self.checkpoint.load().await?
        };
        if let Some(s) = &saved {
            if s.label != self.label {
                return Err(StoreError::invalid_input(Op::Scan)
                    .with_store(self.label.clone())
                    .with_message(format!(
                        "the checkpoint belongs to another migration ({})",
                        s.label
                    )));
            }
        }
        let resumed = saved.is_some();
        let mut state = saved.unwrap_or_else(|| CheckpointState::new(self.label.clone()));
        let mut progress = Progress {
            counts: state.counts,
            dry_run: cfg.dry_run,
            done: state.done,
            ..Progress::default()
        };
        if cfg.estimate_total {
            progress.total_estimate = self.old.len().await.ok();
        }
        if !state.done {
            self.copy_all(&mut state, &mut progress).await?;
        }
        progress.done = true;
        self.emit(&progress);
        let verify = match &cfg.verify {
            Some(v) if !cfg.dry_run => Some(self.verify_with(v).await?),
            _ => None,
        };
        Ok(BulkReport {
            progress,
            verify,
            resumed,
        })
    }

    /// Verifies only (see [`VerifyConfig`]), with the configured check or
    /// the default one.
    pub async fn verify(&self) -> Result<VerifyReport> {
        self.verify_with(&self.config.verify.clone().unwrap_or_default())
            .await
    }

    async fn verify_with(&self, v: &VerifyConfig) -> Result<VerifyReport> {
        let page = self.config.page_size.max(1);
        verify::verify(self.old, self.new, &self.config.prefix, page, v)
            .await
            .map_err(|e| self.abort(e, "verification failed to read a store"))
    }

    async fn copy_all(&self, state: &mut CheckpointState, progress: &mut Progress) -> Result<()> {
        let started = Instant::now();
        let limiter = self.config.rate_limit.map(RateLimiter::new);
        let mut page = self.scan(state.cursor.clone()).await?;
        loop {
            let next = page.next.clone();
            let prefetch = async {
                match &next {
                    Some(cursor) => Some(self.scan(cursor.clone()).await),
                    None => None,
                }
            };
            let (copied, fetched) =
                tokio::join!(self.copy_page(&page.keys, limiter.as_ref()), prefetch);
            let counts = copied?;
            state.counts += counts;
            if state.counts.failed > self.config.max_failed {
                return Err(StoreError::unavailable(Op::Set)
                    .with_store(self.label.clone())
                    .with_message(format!(
                        "bulk migration stopped: {} records failed after retries",
                        state.counts.failed
                    )));
            }
            state.done = next.is_none();
            state.cursor = next.unwrap_or_default();
            if !self.config.dry_run {
                self.checkpoint.save(state).await?;
            }
            progress.counts = state.counts;
            progress.run_scanned += counts.scanned;
            progress.pages += 1;
            progress.elapsed = started.elapsed();
            let secs = progress.elapsed.as_secs_f64();
            progress.rate = if secs > 0.0 {
                progress.run_scanned as f64 / secs
            } else {
                0.0
            };
            progress.done = state.done;
            self.emit(progress);
            // Let other tasks run between pages, even over a store whose
            // calls never wait.
            tokio::task::yield_now().await;
            match fetched {
                None => return Ok(()),
                Some(fetched) => page = fetched?,
            }
        }
    }

    async fn scan(&self, cursor: ScanCursor) -> Result<ScanPage> {
        let limit = self.config.page_size.max(1);
        self.retrying(|| self.old.scan(&self.config.prefix, cursor.clone(), limit))
            .await
            .map_err(|e| self.abort(e, "could not scan the old store"))
    }

    async fn copy_page(&self, keys: &[String], limiter: Option<&RateLimiter>) -> Result<Counts> {
        let mut counts = Counts {
            scanned: keys.len() as u64,
            ..Counts::default()
        };
        let limit = self.config.concurrency.max(1);
        let mut in_flight = FuturesUnordered::new();
        for key in keys {
            while in_flight.len() >= limit {
                if let Some(outcome) = in_flight.next().await {
                    counts.record(outcome?);
                }
            }
            // A copy that completes on its first poll (an in-process store)
            // never enters the concurrent set: that costs more than the copy.
            let mut copy = Box::pin(self.copy_record(key, limiter));
            match futures::poll!(copy.as_mut()) {
                Poll::Ready(outcome) => counts.record(outcome?),
                Poll::Pending => in_flight.push(copy),
            }
        }
        while let Some(outcome) = in_flight.next().await {
            counts.record(outcome?);
        }
        Ok(counts)
    }

    async fn copy_record(&self, key: &str, limiter: Option<&RateLimiter>) -> Result<Outcome> {
        if let Some(limiter) = limiter {
            limiter.acquire().await;
        }
        let _guard = match self.locks {
            Some(locks) => Some(locks.lock(key_hash(key)).await),
            None => None,
        };
        let first = match self.retrying(|| self.old.get(key)).await {
            Ok(Some(first)) => first,
            Ok(None) => return Ok(Outcome::Vanished),
            Err(e) => return self.failed(e, "could not read a record from the old store"),
        };
        if first.is_expired_at(self.clock.now()) {
            return Ok(Outcome::Expired);
        }
        if self.config.dry_run {
            return match self.retrying(|| self.new.get(key)).await {
                Ok(Some(_)) => Ok(Outcome::Existing),
                Ok(None) => Ok(Outcome::Copied),
                Err(e) => self.failed(e, "could not read the new store"),
            };
        }
        let copier = Copier {
            old: self.old,
            new: self.new,
            clock: &*self.clock,
            label: &self.label,
            recheck: self.config.recheck,
        };
        match self.retrying(|| copier.copy_key(key, first.clone())).await {
            Ok(CopyOutcome::Copied(_)) => Ok(Outcome::Copied),
            Ok(CopyOutcome::Existing) => Ok(Outcome::Existing),
            Ok(CopyOutcome::Expired) => Ok(Outcome::Expired),
            Ok(CopyOutcome::Gone) => Ok(Outcome::Vanished),
            Ok(CopyOutcome::Unstable(_)) => Ok(Outcome::Raced),
            Err(e) => self.failed(e, "could not copy a record to the new store"),
        }
    }

    /// A record's error after retries: transient ones count, others abort.
    fn failed(&self, e: StoreError, what: &'static str) -> Result<Outcome> {
        if e.is_transient() {
            tracing::debug!(migration = %self.label, error = %e, "{what}");
            Ok(Outcome::Failed)
        } else {
            Err(self.abort(e, what))
        }
    }

    fn abort(&self, e: StoreError, what: &'static str) -> StoreError {
        let kind: ErrorKind = e.kind();
        StoreError::new(kind, e.op())
            .with_store(self.label.clone())
            .with_message(format!("bulk migration stopped: {what}"))
            .with_source(e)
    }

    async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut delay = self.config.retry_delay;
        let mut tries = 1;
        loop {
            match attempt().await {
                Err(e) if e.is_transient() && tries < self.config.max_attempts => {
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                    tries += 1;
                }
                result => return result,
            }
        }
    }

    fn emit(&self, progress: &Progress) {
        if let Some(sink) = &self.progress {
            sink.on_progress(progress);
        }
    }
}
