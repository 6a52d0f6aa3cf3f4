use super::handle::FaultHandle;

pub(super) const COUNTERS: usize = 6;

/// The counters behind [`FaultStats`], by index.
#[derive(Debug, Clone, Copy)]
pub(super) enum Counter {
    Outages = 0,
    Errors,
    LostReplies,
    Hangs,
    Delayed,
    Corrupted,
}

/// Counters of injected faults since creation (or the last
/// [`FaultHandle::reset_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FaultStats {
    /// Operations that reached the fault layer (affected or not).
    pub ops: u64,
    /// Operations that met an outage (down, a window, or flapping).
    pub outages: u64,
    /// Injected errors (the inner store was not called).
    pub errors: u64,
    /// Lost replies (the inner store applied the operation).
    pub lost_replies: u64,
    /// Hangs started by `hang_rate` (an outage in `Hang` mode counts as
    /// an outage).
    pub hangs: u64,
    /// Operations delayed by added latency.
    pub delayed: u64,
    /// Values corrupted on `get`.
    pub corrupted: u64,
}

impl FaultStats {
    /// Operations that met a fault of any kind other than latency.
    pub fn faults(&self) -> u64 {
        self.outages + self.errors + self.lost_replies + self.hangs + self.corrupted
    }
}

impl FaultHandle {
    pub(super) fn count(&self, counter: Counter) {
        self.shared.counters[counter as usize].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}
