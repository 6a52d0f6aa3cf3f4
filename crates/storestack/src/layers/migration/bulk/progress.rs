//! What a bulk migration reports: [`Counts`], [`Progress`], [`BulkReport`],
//! and the [`ProgressSink`] callback.

use std::ops::AddAssign;
use std::time::Duration;

use super::verify::VerifyReport;

/// Records by outcome. Cumulative over every run resumed from the same
/// checkpoint; a page interrupted and processed again counts its records
/// again (those already copied as `skipped_existing`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counts {
    /// Keys scanned in the old store.
    pub scanned: u64,
    /// Records copied to the new store (in a dry run: that would be).
    pub copied: u64,
    /// Records the new store already held, left alone: written there by
    /// the application in a write-both phase, so newer than old's.
    pub skipped_existing: u64,
    /// Records that expired before they could be copied.
    pub skipped_expired: u64,
    /// Keys gone from old between the scan and the copy (deleted or
    /// expired), or deleted while being copied (the copy was removed).
    pub vanished: u64,
    /// Records that kept changing while being copied: left for the
    /// application's copy on read or the next run.
    pub raced: u64,
    /// Records that failed with transient errors after every retry.
    pub failed: u64,
}

impl Counts {
    /// Records dealt with, whatever the outcome.
    pub fn processed(&self) -> u64 {
        self.copied
            + self.skipped_existing
            + self.skipped_expired
            + self.vanished
            + self.raced
            + self.failed
    }

    pub(super) fn record(&mut self, outcome: Outcome) {
        let field = match outcome {
            Outcome::Copied => &mut self.copied,
            Outcome::Existing => &mut self.skipped_existing,
            Outcome::Expired => &mut self.skipped_expired,
            Outcome::Vanished => &mut self.vanished,
            Outcome::Raced => &mut self.raced,
            Outcome::Failed => &mut self.failed,
        };
        *field += 1;
    }
}

impl AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.scanned += o.scanned;
        self.copied += o.copied;
        self.skipped_existing += o.skipped_existing;
        self.skipped_expired += o.skipped_expired;
        self.vanished += o.vanished;
        self.raced += o.raced;
        self.failed += o.failed;
    }
}

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Copied,
    Existing,
    Expired,
    Vanished,
    Raced,
    Failed,
}

/// A snapshot of a running bulk migration, given to the
/// [`ProgressSink`] after every page and at the end.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Progress {
    /// Cumulative counts (including earlier runs resumed from).
    pub counts: Counts,
    /// Keys scanned by this run.
    pub run_scanned: u64,
    /// Time since this run started.
    pub elapsed: Duration,
    /// Keys scanned per second by this run.
    pub rate: f64,
    /// Live records in the old store when the run started, if known.
    pub total_estimate: Option<u64>,
    /// Pages completed (and checkpointed) by this run.
    pub pages: u64,
    /// Whether the copy pass is complete.
    pub done: bool,
    /// Whether this is a dry run (nothing is written, `copied` counts what
    /// would be).
    pub dry_run: bool,
}

impl Progress {
    /// Estimated time left at the current rate, if a total is known.
    pub fn eta(&self) -> Option<Duration> {
        let total = self.total_estimate?;
        if self.rate <= 0.0 {
            return None;
        }
        let left = total.saturating_sub(self.counts.scanned) as f64;
        Some(Duration::from_secs_f64(left / self.rate))
    }
}

/// Receives progress: implement it, or pass a closure `Fn(&Progress)`.
pub trait ProgressSink: Send + Sync {
    /// Called after every checkpointed page and once at the end.
    fn on_progress(&self, progress: &Progress);
}

impl<F: Fn(&Progress) + Send + Sync> ProgressSink for F {
    fn on_progress(&self, progress: &Progress) {
        self(progress)
    }
}

fn _assert_object_safe(_: &dyn ProgressSink) {}

/// The result of [`BulkMigrator::run`](super::BulkMigrator::run).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BulkReport {
    /// The final progress.
    pub progress: Progress,
    /// The verification, unless disabled or a dry run.
    pub verify: Option<VerifyReport>,
    /// Whether the run resumed from a saved checkpoint.
    pub resumed: bool,
}

impl BulkReport {
    /// No record failed or raced, and the verification (if any) passed.
    /// Otherwise run again (with `restart` to revisit every key: records
    /// already copied are skipped cheaply).
    pub fn is_success(&self) -> bool {
        let c = &self.progress.counts;
        c.failed == 0 && c.raced == 0 && self.verify.as_ref().is_none_or(VerifyReport::is_ok)
    }
}
