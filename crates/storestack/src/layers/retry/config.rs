use std::sync::Arc;
use std::time::Duration;

use backoff::exponential::ExponentialBackoff;

use super::observer::{Observer, RetryObserver};

/// How a [`Retry`](super::Retry) retries: exponential backoff with jitter
/// (computed by the `backoff` crate), bounded by attempts and by total time.
///
/// The n-th retry waits `initial_backoff * multiplier^(n-1)`, capped at
/// `max_backoff`, then spread by `jitter`: a delay `d` becomes a uniform
/// pick in `[d * (1 - jitter), d * (1 + jitter)]`. No retry starts once
/// `max_elapsed` has passed since the first attempt failed, nor when its
/// delay would end past it, so a call lasts at most the first attempt,
/// `max_elapsed`, and one more attempt (put a Timeout inside Retry to bound
/// the attempts). The backoff is set up only after a failure: a call that
/// succeeds at once costs nothing more.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Attempts in all, the first one included (at least 1). Default 3.
    pub max_attempts: u32,
    /// The delay before the first retry. Default 25 ms.
    pub initial_backoff: Duration,
    /// The largest delay (before jitter). Default 1 s.
    pub max_backoff: Duration,
    /// The growth of the delay per retry (at least 1). Default 2.
    pub multiplier: f64,
    /// The spread of each delay, from 0 (none) to 1. Default 0.5.
    pub jitter: f64,
    /// The time budget of the retries of one call, counted from the first
    /// failure; `None` for none. Default 2 s.
    pub max_elapsed: Option<Duration>,
    pub(super) observer: Observer,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: 0.5,
            max_elapsed: Some(Duration::from_secs(2)),
            observer: Observer::default(),
        }
    }
}

impl RetryConfig {
    /// Sets the number of attempts, the first one included.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// Sets the first delay and the largest delay.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// Sets the growth of the delay per retry.
    pub fn multiplier(mut self, m: f64) -> Self {
        self.multiplier = m;
        self
    }

    /// Sets the spread of each delay (0 for none, up to 1).
    pub fn jitter(mut self, factor: f64) -> Self {
        self.jitter = factor;
        self
    }

    /// Sets the time budget of the retries; `None` for none.
    pub fn max_elapsed(mut self, budget: Option<Duration>) -> Self {
        self.max_elapsed = budget;
        self
    }

    /// Calls `observer` on every retry and when giving up.
    pub fn observer(mut self, observer: impl RetryObserver) -> Self {
        self.observer = Observer(Some(Arc::new(observer)));
        self
    }

    /// The attempts actually allowed (at least 1).
    pub(super) fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }

    /// A fresh backoff for one call, on tokio's clock.
    pub(super) fn new_backoff(&self) -> ExponentialBackoff<TokioClock> {
        let jitter = if self.jitter.is_nan() {
            0.0
        } else {
            self.jitter.clamp(0.0, 1.0)
        };
        let multiplier = if self.multiplier >= 1.0 {
            self.multiplier
        } else {
            1.0
        };
        ExponentialBackoff {
            current_interval: self.initial_backoff,
            initial_interval: self.initial_backoff,
            randomization_factor: jitter,
            multiplier,
            max_interval: self.max_backoff.max(self.initial_backoff),
            max_elapsed_time: self.max_elapsed,
            clock: TokioClock,
            start_time: TokioClock::now_std(),
        }
    }
}

/// The `backoff` crate's clock, read from tokio's, so that the time budget
/// follows `tokio::time::pause()` and `advance` like the sleeps do.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TokioClock;

impl TokioClock {
    fn now_std() -> std::time::Instant {
        tokio::time::Instant::now().into_std()
    }
}

impl backoff::Clock for TokioClock {
    fn now(&self) -> std::time::Instant {
        Self::now_std()
    }
}

#[cfg(test)]
mod tests {
    use backoff::backoff::Backoff;

    use super::*;

    #[test]
    fn delays_grow_and_cap_without_jitter() {
        let config = RetryConfig::default()
            .backoff(Duration::from_millis(10), Duration::from_millis(50))
            .jitter(0.0)
            .max_elapsed(None);
        let mut b = config.new_backoff();
        let ms: Vec<u128> = (0..5)
            .map(|_| b.next_backoff().unwrap().as_millis())
            .collect();
        assert_eq!(ms, [10, 20, 40, 50, 50]);
    }

    #[test]
    fn silly_values_are_tamed() {
        let config = RetryConfig::default()
            .max_attempts(0)
            .multiplier(0.1)
            .jitter(f64::NAN)
            .max_elapsed(None);
        assert_eq!(config.attempts(), 1);
        let mut b = config.new_backoff();
        let first = b.next_backoff().unwrap();
        assert_eq!(first, Duration::from_millis(25));
        assert_eq!(b.next_backoff().unwrap(), first);
    }
}
