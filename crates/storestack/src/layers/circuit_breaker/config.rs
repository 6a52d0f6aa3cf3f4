use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use backoff::backoff::Backoff;
use backoff::exponential::ExponentialBackoff;
use failsafe::failure_policy::consecutive_failures;
use failsafe::FailurePolicy;

use super::policy::FailureRate;
use super::state::StateChange;

/// A failure policy, boxed (any `failsafe` policy will do).
pub type BoxPolicy = Box<dyn FailurePolicy + Send>;

/// Builds the policy of one breaker from the backoff of its open periods.
pub type PolicyFactory = Arc<dyn Fn(OpenBackoff) -> BoxPolicy + Send + Sync>;

/// Called on every state change.
pub(super) type Listener = Arc<dyn Fn(&StateChange<'_>) + Send + Sync>;

/// When a closed breaker opens. Only transient errors (`Unavailable`,
/// `Timeout`, `CircuitOpen` from a breaker further down) and slow calls
/// count as failures.
#[derive(Clone)]
#[non_exhaustive]
pub enum Trip {
    /// After this many failures in a row (failsafe's `consecutive_failures`).
    ConsecutiveFailures(u32),
    /// When at least `min_calls` calls ended in the last `window` and at
    /// least `rate` (0 to 1) of them failed ([`FailureRate`], on tokio's
    /// clock).
    FailureRate {
        /// The failure rate that opens the breaker, from 0 to 1.
        rate: f64,
        /// The fewest calls in the window for the rate to count.
        min_calls: u32,
        /// The sliding window.
        window: Duration,
    },
    /// Any `failsafe` policy, built for each breaker from the backoff of
    /// its open periods.
    Custom(PolicyFactory),
}

impl Trip {
    /// A custom `failsafe` policy, e.g. two policies combined with
    /// `FailurePolicy::or_else`.
    pub fn custom<P>(make: impl Fn(OpenBackoff) -> P + Send + Sync + 'static) -> Self
    where
        P: FailurePolicy + Send + 'static,
    {
        Trip::Custom(Arc::new(move |backoff| Box::new(make(backoff))))
    }

    pub(super) fn build(&self, backoff: OpenBackoff) -> BoxPolicy {
        match self {
            Trip::ConsecutiveFailures(n) => Box::new(consecutive_failures((*n).max(1), backoff)),
            Trip::FailureRate {
                rate,
                min_calls,
                window,
            } => Box::new(FailureRate::new(*rate, *min_calls, *window, backoff)),
            Trip::Custom(make) => make(backoff),
        }
    }
}

impl fmt::Debug for Trip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trip::ConsecutiveFailures(n) => f.debug_tuple("ConsecutiveFailures").field(n).finish(),
            Trip::FailureRate {
                rate,
                min_calls,
                window,
            } => f
                .debug_struct("FailureRate")
                .field("rate", rate)
                .field("min_calls", min_calls)
                .field("window", window)
                .finish(),
            Trip::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// Configuration of a [`CircuitBreaker`](super::CircuitBreaker).
#[derive(Clone)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// When to open. Default: 5 consecutive failures.
    pub trip: Trip,
    /// How long the first open period lasts. Default 5 s.
    pub open_for: Duration,
    /// The longest open period: each failed trial doubles the previous one
    /// up to this. Default 60 s.
    pub max_open_for: Duration,
    /// Spread of each open period, from 0 (none) to 1, so that many
    /// instances do not probe in step. Default 0.2.
    pub open_jitter: f64,
    /// Trial calls admitted at once while half-open; the rest fail fast.
    /// Default 1.
    pub half_open_calls: u32,
    /// Successful trials that close the breaker. Default 1.
    pub close_after: u32,
    /// A call slower than this counts as a failure even if it succeeds;
    /// `None` for no such rule. Default `None` (a Timeout inside the
    /// breaker turns hangs into `Timeout` errors, which count).
    pub slow_call: Option<Duration>,
    pub(super) on_state_change: Option<Listener>,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            trip: Trip::ConsecutiveFailures(5),
            open_for: Duration::from_secs(5),
            max_open_for: Duration::from_secs(60),
            open_jitter: 0.2,
            half_open_calls: 1,
            close_after: 1,
            slow_call: None,
            on_state_change: None,
        }
    }
}

impl fmt::Debug for BreakerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerConfig")
            .field("trip", &self.trip)
            .field("open_for", &self.open_for)
            .field("max_open_for", &self.max_open_for)
            .field("open_jitter", &self.open_jitter)
            .field("half_open_calls", &self.half_open_calls)
            .field("close_after", &self.close_after)
            .field("slow_call", &self.slow_call)
            .field(
                "on_state_change",
                &self.on_state_change.as_ref().map(|_| ".."),
            )
            .finish()
    }
}

impl BreakerConfig {
    /// Opens after `n` failures in a row.
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.trip = Trip::ConsecutiveFailures(n);
        self
    }

    /// Opens when at least `min_calls` calls ended within `window` and at
    /// least `rate` of them failed.
    pub fn failure_rate(mut self, rate: f64, min_calls: u32, window: Duration) -> Self {
        self.trip = Trip::FailureRate {
            rate,
            min_calls,
            window,
        };
        self
    }

    /// Sets when to open.
    pub fn trip(mut self, trip: Trip) -> Self {
        self.trip = trip;
        self
    }

    /// Sets the first and the longest open period.
    pub fn open_for(mut self, first: Duration, max: Duration) -> Self {
        self.open_for = first;
        self.max_open_for = max;
        self
    }

    /// Sets the spread of open periods (0 for none, up to 1).
    pub fn open_jitter(mut self, factor: f64) -> Self {
        self.open_jitter = factor;
        self
    }

    /// Sets how many trial calls run at once while half-open, and how many
    /// must succeed to close.
    pub fn half_open(mut self, calls: u32, close_after: u32) -> Self {
        self.half_open_calls = calls;
        self.close_after = close_after;
        self
    }

    /// Counts calls slower than `threshold` as failures.
    pub fn slow_call(mut self, threshold: Duration) -> Self {
        self.slow_call = Some(threshold);
        self
    }

    /// Calls `listener` on every state change, after the change, outside
    /// the breaker's lock (it may query or force the breaker). Keep it
    /// short: it runs on the task that caused the change.
    pub fn on_state_change(
        mut self,
        listener: impl Fn(&StateChange<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.on_state_change = Some(Arc::new(listener));
        self
    }

    pub(super) fn backoff(&self) -> OpenBackoff {
        let jitter = if self.open_jitter.is_nan() {
            0.0
        } else {
            self.open_jitter.clamp(0.0, 1.0)
        };
        let mut b = ExponentialBackoff {
            current_interval: self.open_for,
            initial_interval: self.open_for,
            randomization_factor: jitter,
            multiplier: 2.0,
            max_interval: self.max_open_for.max(self.open_for),
            max_elapsed_time: None,
            clock: backoff::SystemClock::default(),
            start_time: std::time::Instant::now(),
        };
        b.reset();
        OpenBackoff(b)
    }
}

/// The lengths of successive open periods: exponential from `open_for` to
/// `max_open_for`, with jitter (the `backoff` crate's, as an iterator, the
/// shape `failsafe` policies take). It never ends.
#[derive(Debug, Clone)]
pub struct OpenBackoff(ExponentialBackoff<backoff::SystemClock>);

impl Iterator for OpenBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        // Without a time budget the exponential backoff never runs out.
        self.0.next_backoff()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_periods_double_up_to_the_cap() {
        let config = BreakerConfig::default()
            .open_for(Duration::from_millis(500), Duration::from_secs(3))
            .open_jitter(0.0);
        let secs: Vec<f64> = config.backoff().take(5).map(|d| d.as_secs_f64()).collect();
        assert_eq!(secs, [0.5, 1.0, 2.0, 3.0, 3.0]);
        assert!(format!("{config:?}").contains("ConsecutiveFailures(5)"));
    }
}
