//! Wall-clock time, injectable.
//!
//! Expiry in storestack is absolute ([`SystemTime`]), so every component that
//! decides whether a record is expired asks a [`Clock`]. Production code uses
//! [`SystemClock`]; tests use [`MockClock`] (advanced by hand) or
//! [`TokioClock`] (driven by a paused tokio clock, so `tokio::time::advance`
//! moves timers and expiry together).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> SystemTime {
        (**self).now()
    }
}

/// A shared, type-erased clock.
pub type SharedClock = Arc<dyn Clock>;

/// The system clock ([`SystemTime::now`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The default clock: the system clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that moves only when told to. Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use storestack::clock::{Clock, MockClock};
///
/// let clock = MockClock::new();
/// let t0 = clock.now();
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now().duration_since(t0).unwrap(), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct MockClock {
    micros_since_epoch: Arc<AtomicU64>,
}

impl MockClock {
    /// A mock clock starting at the current system time.
    pub fn new() -> Self {
        Self::starting_at(SystemTime::now())
    }

    /// A mock clock starting at `start`.
    pub fn starting_at(start: SystemTime) -> Self {
        let micros = start
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros() as u64;
        MockClock {
            micros_since_epoch: Arc::new(AtomicU64::new(micros)),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.micros_since_epoch
            .fetch_add(by.as_micros() as u64, Ordering::SeqCst);
    }

    /// Sets the clock to `to` (which may be in the past: wall clocks jump).
    pub fn set(&self, to: SystemTime) {
        let micros = to
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros() as u64;
        self.micros_since_epoch.store(micros, Ordering::SeqCst);
    }
}

impl Default for MockClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MockClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.micros_since_epoch.load(Ordering::SeqCst))
    }
}

/// A wall clock driven by tokio's clock: the system time at creation plus the
/// tokio time elapsed since. Under `tokio::time::pause()` it stands still and
/// `tokio::time::advance` moves it, together with every tokio timer.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base_wall: SystemTime,
    base_instant: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading the current system time now.
    pub fn new() -> Self {
        TokioClock {
            base_wall: SystemTime::now(),
            base_instant: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        self.base_wall + self.base_instant.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = TokioClock::new();
        let t0 = clock.now();
        tokio::time::advance(Duration::from_secs(90)).await;
        let elapsed = clock.now().duration_since(t0).unwrap();
        assert!(elapsed >= Duration::from_secs(90) && elapsed < Duration::from_secs(91));
    }

    #[test]
    fn mock_clock_clones_share_time() {
        let a = MockClock::starting_at(UNIX_EPOCH + Duration::from_secs(10));
        let b = a.clone();
        a.advance(Duration::from_millis(1500));
        assert_eq!(b.now(), UNIX_EPOCH + Duration::from_millis(11_500));
        b.set(UNIX_EPOCH);
        assert_eq!(a.now(), UNIX_EPOCH);
    }
}
