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
mod config;
mod file;
mod progress;
mod rate;
mod run;
#[cfg(test)]
mod tests;
mod verify;

pub use checkpoint::{Checkpoint, CheckpointState, MemoryCheckpoint};
pub use config::BulkConfig;
pub use file::FileCheckpoint;
pub use progress::{BulkReport, Counts, Progress, ProgressSink};
pub use verify::{VerifyConfig, VerifyReport};

use super::copy::KeyLocks;
use crate::clock::{self, SharedClock};
use crate::error::{Op, Result, StoreError};
use crate::store::Store;

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
}
