use std::time::Duration;

use super::ops::OpSet;
use crate::error::ErrorKind;

/// A scheduled outage: from `start` to `start + duration`, measured from
/// the schedule's start (the handle's creation, or
/// [`restart_schedule`](super::FaultHandle::restart_schedule)) on tokio's
/// clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Outage {
    /// When it begins.
    pub start: Duration,
    /// How long it lasts.
    pub duration: Duration,
}

impl Outage {
    /// An outage of `duration` beginning at `start`.
    pub const fn new(start: Duration, duration: Duration) -> Self {
        Outage { start, duration }
    }

    /// Whether it is in effect `elapsed` after the schedule's start.
    pub fn covers(&self, elapsed: Duration) -> bool {
        elapsed >= self.start && elapsed - self.start < self.duration
    }
}

/// A store that goes up and down forever: up for `up`, then down for
/// `down`, and again, from the schedule's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flapping {
    /// How long each up period lasts.
    pub up: Duration,
    /// How long each down period lasts.
    pub down: Duration,
}

impl Flapping {
    /// Up for `up`, down for `down`, repeating.
    pub const fn new(up: Duration, down: Duration) -> Self {
        Flapping { up, down }
    }

    /// Whether it is down `elapsed` after the schedule's start.
    pub fn is_down(&self, elapsed: Duration) -> bool {
        let period = self.up.as_nanos() + self.down.as_nanos();
        period != 0 && elapsed.as_nanos() % period >= self.up.as_nanos()
    }
}

/// What an operation meets while the store is down (manually, in an
/// outage window, or flapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OutageMode {
    /// Fails at once with this kind (a refused connection: `Unavailable`).
    Fail(ErrorKind),
    /// Never completes until dropped (a black hole: a Timeout above must
    /// catch it).
    Hang,
}

/// The faults a [`FaultInjection`](super::FaultInjection) injects. The
/// default injects none. Every field can be changed at runtime through the
/// [`FaultHandle`](super::FaultHandle).
///
/// Per operation, in this order: an outage (if down) ends it; then the
/// added latency; a hang; an injected error (the inner store is not
/// called); the inner call; a lost reply (the call *was applied*, then
/// fails); for `get`, a corrupted value. Rates are probabilities from 0 to
/// 1, drawn from the seeded generator.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FaultConfig {
    /// The seed; `None` takes `STORESTACK_FAULT_SEED` from the environment
    /// if set, else a random one. The seed in use is printed at creation
    /// and given by [`FaultHandle::seed`](super::FaultHandle::seed).
    pub seed: Option<u64>,
    /// The operations affected (all faults, outages included). Default all.
    pub ops: OpSet,
    /// Down now, until set up again.
    pub down: bool,
    /// Scheduled outage windows.
    pub outages: Vec<Outage>,
    /// Periodic up and down periods.
    pub flapping: Option<Flapping>,
    /// What an operation meets while down. Default `Fail(Unavailable)`.
    pub outage_mode: OutageMode,
    /// Fixed latency added to each operation.
    pub latency: Duration,
    /// Random latency added on top, uniform in `[0, latency_jitter]`.
    pub latency_jitter: Duration,
    /// Probability that an operation hangs until dropped.
    pub hang_rate: f64,
    /// Probability that an operation fails with `error_kind` without
    /// reaching the inner store.
    pub error_rate: f64,
    /// Probability that an operation reaches the inner store, is applied,
    /// and then fails with `error_kind` (a lost reply).
    pub reply_loss_rate: f64,
    /// The kind of injected errors. Default `Unavailable`.
    pub error_kind: ErrorKind,
    /// Probability that a value returned by `get` has a byte flipped.
    pub corrupt_rate: f64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            seed: None,
            ops: OpSet::ALL,
            down: false,
            outages: Vec::new(),
            flapping: None,
            outage_mode: OutageMode::Fail(ErrorKind::Unavailable),
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            hang_rate: 0.0,
            error_rate: 0.0,
            reply_loss_rate: 0.0,
            error_kind: ErrorKind::Unavailable,
            corrupt_rate: 0.0,
        }
    }
}

impl FaultConfig {
    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Restricts the faults to these operations.
    pub fn ops(mut self, ops: OpSet) -> Self {
        self.ops = ops;
        self
    }

    /// Starts down (or up).
    pub fn down(mut self, down: bool) -> Self {
        self.down = down;
        self
    }

    /// Adds an outage window.
    pub fn outage(mut self, outage: Outage) -> Self {
        self.outages.push(outage);
        self
    }

    /// Flaps: up for `up`, down for `down`, repeating.
    pub fn flapping(mut self, up: Duration, down: Duration) -> Self {
        self.flapping = Some(Flapping::new(up, down));
        self
    }

    /// Sets what operations meet while down.
    pub fn outage_mode(mut self, mode: OutageMode) -> Self {
        self.outage_mode = mode;
        self
    }

    /// Adds `fixed` latency plus a random part up to `jitter`.
    pub fn latency(mut self, fixed: Duration, jitter: Duration) -> Self {
        self.latency = fixed;
        self.latency_jitter = jitter;
        self
    }

    /// Sets the probability of a hang.
    pub fn hang_rate(mut self, rate: f64) -> Self {
        self.hang_rate = rate;
        self
    }

    /// Sets the probability of an injected error, and its kind.
    pub fn errors(mut self, rate: f64, kind: ErrorKind) -> Self {
        self.error_rate = rate;
        self.error_kind = kind;
        self
    }

    /// Sets the probability of a lost reply (applied, then failed with
    /// `error_kind`).
    pub fn reply_loss_rate(mut self, rate: f64) -> Self {
        self.reply_loss_rate = rate;
        self
    }

    /// Sets the probability that `get` (or `get_versioned`) returns a
    /// corrupted value.
    pub fn corrupt_rate(mut self, rate: f64) -> Self {
        self.corrupt_rate = rate;
        self
    }

    /// Whether any random fault or latency is configured.
    pub(super) fn draws(&self) -> bool {
        self.hang_rate > 0.0
            || self.error_rate > 0.0
            || self.reply_loss_rate > 0.0
            || self.corrupt_rate > 0.0
            || !self.latency.is_zero()
            || !self.latency_jitter.is_zero()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn windows_and_flapping() {
        let o = Outage::new(10 * S, 5 * S);
        assert!(!o.covers(9 * S) && o.covers(10 * S) && o.covers(14 * S) && !o.covers(15 * S));
        let f = Flapping::new(3 * S, S);
        let down: Vec<bool> = (0..8).map(|s| f.is_down(s * S)).collect();
        assert_eq!(down, [false, false, false, true, false, false, false, true]);
        assert!(!Flapping::new(Duration::ZERO, Duration::ZERO).is_down(S));
    }
}
