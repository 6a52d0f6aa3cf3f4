use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{self, Clock, SharedClock};

/// How a [`Fallback`](super::Fallback) learns that the primary is stale for
/// a key because another process (or an earlier run of this one) wrote it
/// to the secondary while the primary was unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum JournalCheck {
    /// Read leases (opt-in, not yet the default: a randomized two-process
    /// model run found a stale read after a racing `create` in this mode,
    /// not yet explained): while no write taken by the secondary
    /// alone is journaled anywhere, a read is one read of the primary; a
    /// background task per process checks that every quarter of
    /// [`read_lease`](FallbackConfig::read_lease), and the first write an
    /// outage sends to the secondary alone waits out the lease before it is
    /// acknowledged. Otherwise reads take the `PerRead` path. Current across
    /// processes, assuming their monotonic clocks run at about the same
    /// rate (see the `lease` module source).
    Lease,
    /// Every read of the primary also reads the key's journal entry on the
    /// secondary, concurrently. No stale read after a primary outage, for
    /// every process, with no timing assumption, at the price of one extra
    /// point read on the secondary per read. The default.
    #[default]
    PerRead,
    /// Reads trust the journal entries this process knows of: its own
    /// writes, and entries of other processes loaded by the background
    /// poll every [`poll_interval`](FallbackConfig::poll_interval). A read
    /// of the primary costs nothing extra, but for at most one poll
    /// interval after another process wrote a key during a primary outage
    /// that this process did not see, this process may read the primary's
    /// stale copy of that key.
    Poll,
}

/// Configuration of a [`Fallback`](super::Fallback).
#[derive(Clone)]
#[non_exhaustive]
pub struct FallbackConfig {
    /// How reads learn of other processes' journal entries. Default
    /// [`JournalCheck::PerRead`].
    pub journal_check: JournalCheck,
    /// How long one check of the secondary's journal marker lets reads
    /// trust the primary alone ([`JournalCheck::Lease`]); also how long the
    /// first write of an outage that only the secondary took waits before
    /// it is acknowledged. Renewed every quarter of it. Default 1 s.
    pub read_lease: Duration,
    /// How often the background task polls both journals and retries
    /// repairs. Default 1 s.
    pub poll_interval: Duration,
    /// How long a repair waits between copying a key and verifying the copy,
    /// so that a write to the same key by another process that was in flight
    /// during the copy has landed on both sides. Must exceed the longest
    /// write (both sides' deadlines, retries included). Default 2 s.
    pub settle: Duration,
    /// How long a repairer holds its per-key lease (stored on the
    /// secondary), so that two processes do not repair one key at once.
    /// Must exceed `settle` plus a few round trips. Default 30 s.
    pub lease: Duration,
    /// Keys repaired per pass, and keys per page of a whole-side resync.
    /// Default 256.
    pub repair_batch: usize,
    /// The most keys a whole-side resync compares per second (see
    /// [`ResyncStatus`](super::ResyncStatus)), so that making a side whole
    /// does not starve the traffic it serves. Default 2000.
    pub resync_rate: u32,
    /// The reserved key prefix of the journal, the leases and the dirty
    /// markers. User keys may not start with it, and `scan`, `len` and
    /// `clear` hide it. Two fallbacks sharing a store need distinct
    /// prefixes; an empty prefix means the default. It must be a valid key
    /// prefix (no control characters). Default `"__fallback:"`.
    pub prefix: String,
    /// Whether to spawn the background poll-and-repair task when the
    /// fallback is created inside a tokio runtime. Default `true`. Without
    /// it, repairs happen when
    /// [`FallbackHandle::repair_now`](super::FallbackHandle::repair_now) is
    /// called.
    pub background: bool,
    /// The wall clock of journal stamps and lease expiry. Default: the
    /// system clock.
    pub clock: SharedClock,
}

impl Default for FallbackConfig {
    fn default() -> Self {
        FallbackConfig {
            journal_check: JournalCheck::PerRead,
            read_lease: Duration::from_secs(1),
            poll_interval: Duration::from_secs(1),
            settle: Duration::from_secs(2),
            lease: Duration::from_secs(30),
            repair_batch: 256,
            resync_rate: 2000,
            prefix: super::journal::DEFAULT_PREFIX.to_owned(),
            background: true,
            clock: clock::system(),
        }
    }
}

impl fmt::Debug for FallbackConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackConfig")
            .field("journal_check", &self.journal_check)
            .field("read_lease", &self.read_lease)
            .field("poll_interval", &self.poll_interval)
            .field("settle", &self.settle)
            .field("lease", &self.lease)
            .field("repair_batch", &self.repair_batch)
            .field("resync_rate", &self.resync_rate)
            .field("prefix", &self.prefix)
            .field("background", &self.background)
            .field("clock", &self.clock)
            .finish()
    }
}

impl FallbackConfig {
    /// Sets how reads learn of other processes' journal entries.
    pub fn journal_check(mut self, check: JournalCheck) -> Self {
        self.journal_check = check;
        self
    }

    /// Sets the read lease ([`JournalCheck::Lease`]).
    pub fn read_lease(mut self, lease: Duration) -> Self {
        self.read_lease = lease.max(Duration::from_millis(4));
        self
    }

    /// Sets the background poll interval.
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every;
        self
    }

    /// Sets the settle time of repairs.
    pub fn settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// Sets the repair lease.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Sets the keys repaired per pass.
    pub fn repair_batch(mut self, n: usize) -> Self {
        self.repair_batch = n.max(1);
        self
    }

    /// Sets the most keys a whole-side resync compares per second.
    pub fn resync_rate(mut self, keys_per_second: u32) -> Self {
        self.resync_rate = keys_per_second.max(1);
        self
    }

    /// Sets the reserved key prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Enables or disables the background task.
    pub fn background(mut self, on: bool) -> Self {
        self.background = on;
        self
    }

    /// Sets the clock (a [`TokioClock`](crate::clock::TokioClock) under
    /// paused tokio time in tests).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }
}
