use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::machine::Core;
use super::state::BreakerState;

/// Operators' control of a breaker: query its state (health endpoints),
/// force it open or closed, reset it. Cheap to clone; clones control the
/// same breaker.
///
/// ```
/// use storestack::{BreakerConfig, BreakerState, MemoryStore, StoreExt};
///
/// let store = MemoryStore::new().circuit_breaker(BreakerConfig::default());
/// let breaker = store.handle();
/// assert_eq!(breaker.state(), BreakerState::Closed);
/// breaker.force_open(); // e.g. during maintenance of the backend
/// assert_eq!(breaker.state(), BreakerState::ForcedOpen);
/// breaker.reset();
/// assert_eq!(breaker.stats().opened, 0);
/// ```
#[derive(Debug, Clone)]
pub struct BreakerHandle {
    pub(super) core: Arc<Core>,
}

/// A snapshot of a breaker's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerStats {
    /// The state now.
    pub state: BreakerState,
    /// Calls failed fast with `CircuitOpen` so far.
    pub rejected: u64,
    /// Times the breaker opened by itself (not forced) so far.
    pub opened: u64,
    /// While `Open`: the time left before trial calls are admitted.
    pub open_remaining: Option<Duration>,
}

impl BreakerHandle {
    /// The state now.
    pub fn state(&self) -> BreakerState {
        self.core.state()
    }

    /// Whether calls are failing fast now (open, or forced open). An open
    /// breaker whose period has ended counts as open until a call comes
    /// to try it.
    pub fn is_failing_fast(&self) -> bool {
        matches!(self.state(), BreakerState::Open | BreakerState::ForcedOpen)
    }

    /// Counters and state.
    pub fn stats(&self) -> BreakerStats {
        BreakerStats {
            state: self.core.state(),
            rejected: self.core.rejected.load(Ordering::Relaxed),
            opened: self.core.opened.load(Ordering::Relaxed),
            open_remaining: self.core.open_remaining(),
        }
    }

    /// Fails every call fast until [`reset`](Self::reset) or
    /// [`force_closed`](Self::force_closed).
    pub fn force_open(&self) {
        self.core.set(BreakerState::ForcedOpen);
    }

    /// Lets every call through and counts nothing until
    /// [`reset`](Self::reset) or [`force_open`](Self::force_open).
    pub fn force_closed(&self) {
        self.core.set(BreakerState::ForcedClosed);
    }

    /// Closes the breaker and forgets its failure history.
    pub fn reset(&self) {
        self.core.set(BreakerState::Closed);
    }

    /// The name of the guarded store.
    pub fn store(&self) -> &str {
        &self.core.store
    }
}
