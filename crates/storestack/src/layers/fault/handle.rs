use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::time::Instant;

use super::config::{FaultConfig, Flapping, Outage, OutageMode};
use super::ops::OpSet;
use super::plan::{is_active, is_down};
use super::stats::{Counter, FaultStats, COUNTERS};
use crate::error::ErrorKind;

/// The environment variable a [`FaultConfig`] without a seed reads its
/// seed from, to replay a run without changing code.
pub const SEED_ENV: &str = "STORESTACK_FAULT_SEED";

/// Runtime control of a [`FaultInjection`](super::FaultInjection): switch
/// faults on and off, read the seed and the counters. Cheap to clone;
/// clones control the same faults.
///
/// ```
/// use std::time::Duration;
/// use storestack::{ErrorKind, FaultConfig, FaultHandle};
///
/// let faults = FaultHandle::new(FaultConfig::default().seed(42));
/// assert_eq!(faults.seed(), 42);
/// faults.set_down(true);
/// faults.set_error_rate(0.1);
/// faults.set_latency(Duration::from_millis(5), Duration::from_millis(10));
/// faults.update(|c| c.error_kind = ErrorKind::Timeout);
/// faults.heal();
/// assert!(!faults.config().down);
/// ```
#[derive(Debug, Clone)]
pub struct FaultHandle {
    pub(super) shared: Arc<Shared>,
}

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) seed: u64,
    pub(super) state: RwLock<State>,
    /// Operations seen; the n-th one draws from a generator seeded with
    /// (seed, n).
    pub(super) seq: AtomicU64,
    /// `seq` at the last `reset_stats`.
    pub(super) seq_base: AtomicU64,
    /// Whether any fault is configured: when not, operations skip the lock.
    pub(super) active: AtomicBool,
    pub(super) counters: [AtomicU64; COUNTERS],
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) config: FaultConfig,
    /// Where outage windows and flapping are measured from.
    pub(super) start: Instant,
}

/// The configured seed, else the one in `env` (the value of [`SEED_ENV`]),
/// else a random one.
fn choose_seed(configured: Option<u64>, env: Option<String>) -> u64 {
    if let Some(seed) = configured {
        return seed;
    }
    match env.map(|s| s.trim().parse::<u64>()) {
        Some(Ok(seed)) => seed,
        Some(Err(_)) => {
            tracing::warn!(
                var = SEED_ENV,
                "unparsable fault injection seed; using a random one"
            );
            rand::random()
        }
        None => rand::random(),
    }
}

impl FaultHandle {
    /// Faults as `config` says. Prints the seed in use (stderr and a
    /// `tracing` event) so that a failed run can be replayed.
    pub fn new(config: FaultConfig) -> Self {
        let seed = choose_seed(config.seed, std::env::var(SEED_ENV).ok());
        eprintln!("storestack fault injection: seed {seed} (replay with {SEED_ENV}={seed})");
        tracing::info!(seed, "fault injection seeded");
        let active = is_active(&config);
        FaultHandle {
            shared: Arc::new(Shared {
                seed,
                seq_base: AtomicU64::new(0),
                active: AtomicBool::new(active),
                state: RwLock::new(State {
                    config: FaultConfig {
                        seed: Some(seed),
                        ..config
                    },
                    start: Instant::now(),
                }),
                seq: AtomicU64::new(0),
                counters: Default::default(),
            }),
        }
    }

    /// The seed in use.
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// The configuration now.
    pub fn config(&self) -> FaultConfig {
        self.shared.state.read().config.clone()
    }

    /// Changes the configuration (any field; the seed cannot change).
    pub fn update(&self, f: impl FnOnce(&mut FaultConfig)) {
        let mut state = self.shared.state.write();
        f(&mut state.config);
        state.config.seed = Some(self.shared.seed);
        self.shared
            .active
            .store(is_active(&state.config), Ordering::Release);
    }

    /// Takes the store down (every affected operation meets the outage
    /// mode) or brings it back up.
    pub fn set_down(&self, down: bool) {
        self.update(|c| c.down = down);
    }

    /// Sets the probability of an injected error.
    pub fn set_error_rate(&self, rate: f64) {
        self.update(|c| c.error_rate = rate);
    }

    /// Sets the kind of injected errors and lost replies.
    pub fn set_error_kind(&self, kind: ErrorKind) {
        self.update(|c| c.error_kind = kind);
    }

    /// Sets the probability of a lost reply.
    pub fn set_reply_loss_rate(&self, rate: f64) {
        self.update(|c| c.reply_loss_rate = rate);
    }

    /// Sets the probability of a hang.
    pub fn set_hang_rate(&self, rate: f64) {
        self.update(|c| c.hang_rate = rate);
    }

    /// Sets the added latency: `fixed` plus up to `jitter`.
    pub fn set_latency(&self, fixed: Duration, jitter: Duration) {
        self.update(|c| {
            c.latency = fixed;
            c.latency_jitter = jitter;
        });
    }

    /// Sets the probability that `get` returns a corrupted value.
    pub fn set_corrupt_rate(&self, rate: f64) {
        self.update(|c| c.corrupt_rate = rate);
    }

    /// Restricts the faults to these operations.
    pub fn set_ops(&self, ops: OpSet) {
        self.update(|c| c.ops = ops);
    }

    /// Sets what operations meet while down.
    pub fn set_outage_mode(&self, mode: OutageMode) {
        self.update(|c| c.outage_mode = mode);
    }

    /// Adds an outage window (relative to the schedule's start).
    pub fn add_outage(&self, outage: Outage) {
        self.update(|c| c.outages.push(outage));
    }

    /// Removes every outage window.
    pub fn clear_outages(&self) {
        self.update(|c| c.outages.clear());
    }

    /// Starts (`Some`) or stops (`None`) flapping.
    pub fn set_flapping(&self, flapping: Option<Flapping>) {
        self.update(|c| c.flapping = flapping);
    }

    /// Measures outage windows and flapping from now on.
    pub fn restart_schedule(&self) {
        self.shared.state.write().start = Instant::now();
    }

    /// The time since the schedule's start.
    pub fn elapsed(&self) -> Duration {
        self.shared.state.read().start.elapsed()
    }

    /// Whether the store is down now (manually, in a window, or flapping).
    pub fn is_down_now(&self) -> bool {
        let state = self.shared.state.read();
        is_down(&state.config, state.start.elapsed())
    }

    /// Removes every fault: up, no windows, no flapping, no latency, all
    /// rates zero. The seed, the operation count and the counters stay.
    pub fn heal(&self) {
        self.update(|c| {
            *c = FaultConfig {
                ops: c.ops,
                outage_mode: c.outage_mode,
                error_kind: c.error_kind,
                ..FaultConfig::default()
            }
        });
    }

    /// The counters.
    pub fn stats(&self) -> FaultStats {
        let c = |k: Counter| self.shared.counters[k as usize].load(Ordering::Relaxed);
        FaultStats {
            ops: self
                .shared
                .seq
                .load(Ordering::Relaxed)
                .saturating_sub(self.shared.seq_base.load(Ordering::Relaxed)),
            outages: c(Counter::Outages),
            errors: c(Counter::Errors),
            lost_replies: c(Counter::LostReplies),
            hangs: c(Counter::Hangs),
            delayed: c(Counter::Delayed),
            corrupted: c(Counter::Corrupted),
        }
    }

    /// Sets the counters to zero (not the operation sequence, so the
    /// faults to come are unchanged).
    pub fn reset_stats(&self) {
        for c in &self.shared.counters {
            c.store(0, Ordering::Relaxed);
        }
        let seq = self.shared.seq.load(Ordering::Relaxed);
        self.shared.seq_base.store(seq, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_comes_from_config_then_env_then_chance() {
        assert_eq!(choose_seed(Some(1), Some("2".into())), 1);
        assert_eq!(choose_seed(None, Some(" 2\n".into())), 2);
        let a = choose_seed(None, Some("not a number".into()));
        let b = choose_seed(None, None);
        assert_ne!(a, b); // two random picks (fails with probability 2^-64)
    }
}
