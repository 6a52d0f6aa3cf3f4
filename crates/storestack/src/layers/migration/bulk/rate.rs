//! A token bucket on tokio's clock (GCRA form): each caller reserves the
//! next slot and sleeps until it. Hand-written rather than `governor`
//! because it must follow tokio's clock, so that a paused test clock
//! drives it.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

pub(crate) struct RateLimiter {
    /// Time between two records at the steady rate.
    interval: Duration,
    /// How far ahead of the steady rate a burst may run.
    tolerance: Duration,
    /// When the next record would be due at the steady rate.
    due: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// `per_second` records per second, in bursts of at most 1/100 s worth
    /// (at least one record).
    pub(crate) fn new(per_second: u32) -> Self {
        let per_second = per_second.max(1);
        let burst = (per_second / 100).max(1);
        let interval = Duration::from_secs(1) / per_second;
        RateLimiter {
            interval,
            tolerance: interval * (burst - 1),
            due: Mutex::new(None),
        }
    }

    /// Waits for the next slot.
    pub(crate) async fn acquire(&self) {
        let now = Instant::now();
        let start = {
            let mut due = self.due.lock();
            let slot = due.map_or(now, |d| d.max(now));
            *due = Some(slot + self.interval);
            slot.checked_sub(self.tolerance).unwrap_or(now)
        };
        if start > now {
            tokio::time::sleep_until(start).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn steady_rate_after_a_small_burst() {
        let limiter = RateLimiter::new(200); // burst 2
        let t0 = Instant::now();
        for _ in 0..402 {
            limiter.acquire().await;
        }
        // 2 at once, then 400 more at 5 ms each.
        assert_eq!(t0.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_is_not_banked_beyond_the_burst() {
        let limiter = RateLimiter::new(100); // burst 1
        limiter.acquire().await;
        tokio::time::advance(Duration::from_secs(10)).await;
        let t0 = Instant::now();
        for _ in 0..11 {
            limiter.acquire().await;
        }
        assert_eq!(t0.elapsed(), Duration::from_millis(100));
    }
}
