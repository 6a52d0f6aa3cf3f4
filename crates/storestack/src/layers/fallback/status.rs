//! Health of a fallback: per-side reachability, journal size, counters, and
//! the [`FallbackHandle`] that exposes them (and manual repair) to health
//! endpoints and operators.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::journal::Side;
use crate::error::{ErrorKind, Result};

/// Reachability of one side as last observed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SideStatus {
    /// The store's name.
    pub name: String,
    /// Whether the last operation on it did not fail with a transient error.
    pub reachable: bool,
    /// When it became unreachable (wall clock of the fallback), if it is.
    pub unreachable_since: Option<SystemTime>,
    /// The kind of the last transient error seen on it.
    pub last_error: Option<ErrorKind>,
    /// Transient errors seen on it so far.
    pub failures: u64,
}

/// A snapshot of a fallback's health, for health endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FallbackStatus {
    /// The primary side.
    pub primary: SideStatus,
    /// The secondary side.
    pub secondary: SideStatus,
    /// Keys this process knows to be journaled (not yet repaired).
    pub journaled_keys: usize,
    /// Of those, keys whose newest write is on the primary (the secondary
    /// is stale for them).
    pub newest_on_primary: usize,
    /// Of those, keys whose newest write is on the secondary (the primary
    /// is stale for them).
    pub newest_on_secondary: usize,
    /// Keys repaired by this process.
    pub repaired: u64,
    /// Repair attempts that failed (they are retried).
    pub repair_failures: u64,
    /// Reads served by the secondary because the primary failed.
    pub failover_reads: u64,
    /// Reads the primary answered absent and the secondary served, because
    /// nothing journaled said the secondary was stale: the primary had lost
    /// the record (it restarted empty or from an old backup).
    pub read_through: u64,
    /// The whole-side resync in progress, if any: a side came back empty or
    /// with old data and is being made whole from the other.
    pub resync: Option<super::ResyncStatus>,
    /// Sides this process found to have lost data (resyncs it started).
    pub resyncs_detected: u64,
    /// Resyncs this process completed.
    pub resyncs_completed: u64,
    /// Writes that reached one side only and were journaled.
    pub degraded_writes: u64,
    /// Operations refused because the only up-to-date copy of the key was
    /// on an unreachable side.
    pub refused: u64,
    /// Operations that failed because both sides failed.
    pub both_failed: u64,
}

impl FallbackStatus {
    /// Whether a side is unreachable, keys await repair, or a side is being
    /// resynced.
    pub fn is_degraded(&self) -> bool {
        !self.primary.reachable
            || !self.secondary.reachable
            || self.journaled_keys > 0
            || self.resync.is_some()
    }

    /// The status of `side`.
    pub fn side(&self, side: Side) -> &SideStatus {
        match side {
            Side::Primary => &self.primary,
            Side::Secondary => &self.secondary,
        }
    }
}

/// What one [`FallbackHandle::repair_now`] achieved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepairReport {
    /// Keys whose two sides were made equal and whose entries were removed.
    pub repaired: u64,
    /// Keys left for a later pass (changed during repair, leased by another
    /// process, or busy in this one).
    pub deferred: u64,
    /// Keys whose repair failed (a side failed); retried later.
    pub failed: u64,
    /// Keys this process still knows to be journaled afterwards.
    pub remaining: usize,
}

impl RepairReport {
    pub(crate) fn add(&mut self, other: RepairReport) {
        self.repaired += other.repaired;
        self.deferred += other.deferred;
        self.failed += other.failed;
        self.remaining = other.remaining;
    }
}

#[derive(Debug, Default)]
struct SideHealth {
    down: AtomicBool,
    since: Mutex<Option<SystemTime>>,
    last_error: Mutex<Option<ErrorKind>>,
    failures: AtomicU64,
}

/// Per-side reachability and the fallback's counters.
#[derive(Debug, Default)]
pub(crate) struct Health {
    sides: [SideHealth; 2],
    pub(crate) repaired: AtomicU64,
    pub(crate) repair_failures: AtomicU64,
    pub(crate) failover_reads: AtomicU64,
    pub(crate) read_through: AtomicU64,
    pub(crate) degraded_writes: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) both_failed: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Health {
    /// Records a success on `side`; returns whether it just recovered. The
    /// store's name is asked for only then.
    #[inline]
    pub(crate) fn ok<'a>(&self, side: Side, name: impl FnOnce() -> &'a str) -> bool {
        let h = &self.sides[side.index()];
        if h.down.load(Ordering::Relaxed) && h.down.swap(false, Ordering::AcqRel) {
            *h.since.lock() = None;
            tracing::info!(
                side = side.as_str(),
                store = name(),
                "fallback: side reachable again"
            );
            return true;
        }
        false
    }

    /// Whether `side` is marked unreachable.
    #[inline]
    pub(crate) fn is_down(&self, side: Side) -> bool {
        self.sides[side.index()].down.load(Ordering::Relaxed)
    }

    /// Records a transient failure on `side`.
    pub(crate) fn failed(&self, side: Side, name: &str, kind: ErrorKind, now: SystemTime) {
        let h = &self.sides[side.index()];
        h.failures.fetch_add(1, Ordering::Relaxed);
        *h.last_error.lock() = Some(kind);
        if !h.down.swap(true, Ordering::AcqRel) {
            *h.since.lock() = Some(now);
            tracing::warn!(
                side = side.as_str(),
                store = name,
                error = kind.as_str(),
                "fallback: side unreachable"
            );
        }
    }

    pub(crate) fn side_status(&self, side: Side, name: &str) -> SideStatus {
        let h = &self.sides[side.index()];
        SideStatus {
            name: name.to_owned(),
            reachable: !h.down.load(Ordering::Relaxed),
            unreachable_since: *h.since.lock(),
            last_error: *h.last_error.lock(),
            failures: h.failures.load(Ordering::Relaxed),
        }
    }
}

/// What a handle can ask of a fallback, whatever its store types.
#[async_trait]
pub(crate) trait Control: Send + Sync + 'static {
    fn status(&self) -> FallbackStatus;
    async fn repair_now(&self) -> RepairReport;
    async fn refresh(&self) -> Result<()>;
}

/// A cheap, clonable, type-erased handle on a
/// [`Fallback`](super::Fallback): its health for health endpoints, and
/// manual repair for operators and tests. It keeps the fallback's state
/// alive.
#[derive(Clone)]
pub struct FallbackHandle {
    pub(crate) inner: Arc<dyn Control>,
}

impl fmt::Debug for FallbackHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackHandle")
            .field("status", &self.status())
            .finish()
    }
}

impl FallbackHandle {
    /// The current health.
    pub fn status(&self) -> FallbackStatus {
        self.inner.status()
    }

    /// Polls both journals and repairs every journaled key it can, pass
    /// after pass, until nothing is left or a pass makes no progress. Each
    /// pass waits the configured [`settle`](super::FallbackConfig::settle)
    /// time once.
    pub async fn repair_now(&self) -> RepairReport {
        self.inner.repair_now().await
    }

    /// Loads the journal entries of both sides (as the background poll
    /// does). With [`JournalCheck::Poll`](super::JournalCheck::Poll), call
    /// it once after creating a fallback and before serving, so that writes
    /// journaled by earlier processes are known from the first read.
    pub async fn refresh(&self) -> Result<()> {
        self.inner.refresh().await
    }
}
