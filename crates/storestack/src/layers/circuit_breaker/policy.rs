use std::time::Duration;

use failsafe::FailurePolicy;
use tokio::time::Instant;

/// Buckets the window is cut into: it slides by a tenth of its length.
const BUCKETS: usize = 10;

/// A `failsafe` [`FailurePolicy`] that opens when, over a sliding window,
/// at least `min_calls` calls ended and at least `rate` of them failed.
///
/// failsafe's own `success_rate_over_time_window` reads `std::time::Instant`,
/// which `tokio::time::pause()` cannot move; this one reads tokio's clock,
/// so breaker tests run in paused time. The window slides in steps of a
/// tenth of its length.
#[derive(Debug, Clone)]
pub struct FailureRate<B> {
    rate: f64,
    min_calls: u32,
    bucket_nanos: u64,
    epoch: Instant,
    buckets: [Bucket; BUCKETS],
    backoff: B,
    fresh_backoff: B,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which bucket since the epoch this one counts; stale ones are reset.
    id: u64,
    ok: u64,
    failed: u64,
}

impl<B: Iterator<Item = Duration> + Clone> FailureRate<B> {
    /// A policy opening for the durations `backoff` yields.
    pub fn new(rate: f64, min_calls: u32, window: Duration, backoff: B) -> Self {
        let rate = if rate.is_nan() {
            1.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        let bucket_nanos = (window.as_nanos() / BUCKETS as u128).clamp(1, u64::MAX as u128) as u64;
        FailureRate {
            rate,
            min_calls: min_calls.max(1),
            bucket_nanos,
            epoch: Instant::now(),
            buckets: [Bucket::default(); BUCKETS],
            backoff: backoff.clone(),
            fresh_backoff: backoff,
        }
    }

    fn now_id(&self) -> u64 {
        (self.epoch.elapsed().as_nanos() / u128::from(self.bucket_nanos)) as u64
    }

    fn current(&mut self) -> &mut Bucket {
        let id = self.now_id();
        let b = &mut self.buckets[(id % BUCKETS as u64) as usize];
        if b.id != id {
            *b = Bucket {
                id,
                ..Bucket::default()
            };
        }
        b
    }

    /// (calls, failures) in the window.
    fn totals(&self) -> (u64, u64) {
        let now = self.now_id();
        self.buckets
            .iter()
            .filter(|b| b.id <= now && b.id + (BUCKETS as u64) > now)
            .fold((0, 0), |(n, f), b| (n + b.ok + b.failed, f + b.failed))
    }
}

impl<B: Iterator<Item = Duration> + Clone> FailurePolicy for FailureRate<B> {
    fn record_success(&mut self) {
        self.current().ok += 1;
    }

    fn mark_dead_on_failure(&mut self) -> Option<Duration> {
        self.current().failed += 1;
        let (calls, failed) = self.totals();
        let tripped =
            calls >= u64::from(self.min_calls) && failed as f64 >= self.rate * calls as f64;
        // An endless backoff never yields None; fall back to its start.
        tripped.then(|| {
            self.backoff
                .next()
                .or_else(|| self.fresh_backoff.clone().next())
                .unwrap_or(Duration::from_secs(5))
        })
    }

    fn revived(&mut self) {
        self.buckets = [Bucket::default(); BUCKETS];
        self.backoff = self.fresh_backoff.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn policy() -> FailureRate<std::iter::Repeat<Duration>> {
        FailureRate::new(0.5, 4, 10 * S, std::iter::repeat(7 * S))
    }

    #[tokio::test(start_paused = true)]
    async fn opens_at_the_rate_once_enough_calls() {
        let mut p = policy();
        assert_eq!(p.mark_dead_on_failure(), None); // 1 call: too few
        p.record_success();
        p.record_success();
        assert_eq!(p.mark_dead_on_failure(), Some(7 * S)); // 2 of 4 failed
    }

    #[tokio::test(start_paused = true)]
    async fn old_calls_leave_the_window() {
        let mut p = policy();
        for _ in 0..3 {
            assert_eq!(p.mark_dead_on_failure(), None);
            tokio::time::advance(4 * S).await;
        }
        // The first failure (12 s ago) is out: 2 failures, too few calls.
        assert_eq!(p.totals(), (2, 2));
        for _ in 0..10 {
            p.record_success();
        }
        assert_eq!(p.mark_dead_on_failure(), None); // 3 of 13
        p.revived();
        assert_eq!(p.totals(), (0, 0));
    }
}
