//! The breaker's state machine: failsafe's policies decide when to open;
//! the states, their timing (tokio's clock) and the bounded half-open
//! admission live here.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::config::{BoxPolicy, BreakerConfig};
use super::state::{BreakerState, Outcome, StateChange, CLOSED, FORCED_CLOSED, HALF_OPEN, OPEN};

struct Machine {
    policy: BoxPolicy,
    /// The length of the last open period.
    delay: Duration,
    /// Trial calls in flight in this half-open period.
    trials: u32,
    /// Successful trials in this half-open period.
    successes: u32,
}

/// The shared state of one breaker.
pub(super) struct Core {
    /// `generation << 8 | state`: read without locking on every call. The
    /// generation changes with every transition, so that a result from an
    /// earlier period is ignored.
    word: AtomicU64,
    /// While open: the end of the open period, in nanoseconds since `epoch`.
    open_until: AtomicU64,
    epoch: Instant,
    machine: Mutex<Machine>,
    pub(super) config: BreakerConfig,
    pub(super) store: String,
    pub(super) rejected: AtomicU64,
    pub(super) opened: AtomicU64,
    /// The policy is failsafe's `consecutive_failures`, for which a success
    /// only matters after a failure: `record_success` resets the streak.
    streak_only: bool,
    /// A failure was recorded since the streak was last reset. Lets a
    /// success skip the lock when there is no streak to reset.
    streak: AtomicBool,
}

fn split(word: u64) -> (u64, u64) {
    (word & 0xff, word >> 8)
}

/// A transition to announce once the lock is released.
#[must_use]
struct Change(BreakerState, BreakerState, Option<Duration>);

/// Leave to call. Dropped without [`finish`](Permit::finish) (the caller
/// gave up on the call), a trial counts as failed and a normal call counts
/// as failed only if it was already slow.
pub(super) struct Permit<'a> {
    core: &'a Core,
    generation: u64,
    kind: Kind,
    started: Option<Instant>,
    finished: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Normal,
    Trial,
    Unrecorded,
}

impl Permit<'_> {
    pub(super) fn finish(mut self, outcome: Outcome) {
        self.finished = true;
        let outcome = match (outcome, self.is_slow()) {
            (Outcome::Success, true) => Outcome::Failure,
            (o, _) => o,
        };
        self.core.record(self.generation, self.kind, outcome);
    }

    fn is_slow(&self) -> bool {
        match (self.started, self.core.config.slow_call) {
            (Some(t), Some(limit)) => t.elapsed() >= limit,
            _ => false,
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let outcome = if self.kind == Kind::Trial || self.is_slow() {
            Outcome::Failure
        } else {
            Outcome::Neutral
        };
        self.core.record(self.generation, self.kind, outcome);
    }
}

impl Core {
    pub(super) fn new(config: BreakerConfig, store: String) -> Self {
        let policy = config.trip.build(config.backoff());
        let streak_only = matches!(config.trip, super::config::Trip::ConsecutiveFailures(_));
        Core {
            word: AtomicU64::new(CLOSED),
            open_until: AtomicU64::new(0),
            epoch: Instant::now(),
            machine: Mutex::new(Machine {
                policy,
                delay: config.open_for,
                trials: 0,
                successes: 0,
            }),
            config,
            store,
            rejected: AtomicU64::new(0),
            opened: AtomicU64::new(0),
            streak_only,
            streak: AtomicBool::new(false),
        }
    }

    pub(super) fn state(&self) -> BreakerState {
        BreakerState::from_code(split(self.word.load(Ordering::Acquire)).0)
    }

    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// The time left in the open period, if open.
    pub(super) fn open_remaining(&self) -> Option<Duration> {
        if self.state() != BreakerState::Open {
            return None;
        }
        let now = self.nanos(Instant::now());
        let until = self.open_until.load(Ordering::Acquire);
        Some(Duration::from_nanos(until.saturating_sub(now)))
    }

    /// Leave to call, or `None`: fail fast.
    pub(super) fn admit(&self) -> Option<Permit<'_>> {
        let (state, generation) = split(self.word.load(Ordering::Acquire));
        let kind = match state {
            CLOSED => Kind::Normal,
            FORCED_CLOSED => Kind::Unrecorded,
            OPEN if self.nanos(Instant::now()) < self.open_until.load(Ordering::Acquire) => {
                return self.reject()
            }
            OPEN | HALF_OPEN => return self.admit_trial(),
            _ => return self.reject(),
        };
        Some(self.permit(generation, kind))
    }

    fn permit(&self, generation: u64, kind: Kind) -> Permit<'_> {
        let started = match (kind, self.config.slow_call) {
            (Kind::Unrecorded, _) | (_, None) => None,
            _ => Some(Instant::now()),
        };
        Permit {
            core: self,
            generation,
            kind,
            started,
            finished: false,
        }
    }

    fn reject<'a>(&self) -> Option<Permit<'a>> {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        None
    }

    #[cold]
    fn admit_trial(&self) -> Option<Permit<'_>> {
        let mut m = self.machine.lock();
        let mut change = None;
        let (mut state, mut generation) = split(self.word.load(Ordering::Acquire));
        if state == OPEN && self.nanos(Instant::now()) >= self.open_until.load(Ordering::Acquire) {
            change = Some(self.transit(&mut m, BreakerState::HalfOpen, None));
            (state, generation) = split(self.word.load(Ordering::Acquire));
        }
        let kind = match state {
            HALF_OPEN if m.trials < self.config.half_open_calls.max(1) => {
                m.trials += 1;
                Some(Kind::Trial)
            }
            // The state moved on while we waited for the lock.
            CLOSED => Some(Kind::Normal),
            FORCED_CLOSED => Some(Kind::Unrecorded),
            _ => None,
        };
        drop(m);
        if let Some(change) = change {
            self.announce(change);
        }
        match kind {
            Some(kind) => Some(self.permit(generation, kind)),
            None => self.reject(),
        }
    }

    fn record(&self, generation: u64, kind: Kind, outcome: Outcome) {
        // The hot path of a healthy breaker: nothing to record.
        let nothing = match (kind, outcome) {
            (Kind::Unrecorded, _) | (Kind::Normal, Outcome::Neutral) => true,
            (Kind::Normal, Outcome::Success) => {
                self.streak_only && !self.streak.load(Ordering::Acquire)
            }
            _ => false,
        };
        if nothing {
            return;
        }
        let mut m = self.machine.lock();
        let (state, current) = split(self.word.load(Ordering::Acquire));
        if current != generation {
            return; // a result from an earlier period
        }
        if kind == Kind::Trial {
            m.trials = m.trials.saturating_sub(1);
        }
        let change = match (state, outcome) {
            (CLOSED, Outcome::Success) => {
                m.policy.record_success();
                self.streak.store(false, Ordering::Release);
                None
            }
            (CLOSED, Outcome::Failure) => {
                self.streak.store(true, Ordering::Release);
                m.policy
                    .mark_dead_on_failure()
                    .map(|delay| self.transit(&mut m, BreakerState::Open, Some(delay)))
            }
            (HALF_OPEN, Outcome::Success) => {
                m.successes += 1;
                (m.successes >= self.config.close_after.max(1))
                    .then(|| self.transit(&mut m, BreakerState::Closed, None))
            }
            (HALF_OPEN, Outcome::Failure) => {
                let delay = m.policy.mark_dead_on_failure().unwrap_or(m.delay);
                Some(self.transit(&mut m, BreakerState::Open, Some(delay)))
            }
            _ => None,
        };
        drop(m);
        if let Some(change) = change {
            self.announce(change);
        }
    }

    /// Moves to `to` (an operator's command).
    pub(super) fn set(&self, to: BreakerState) {
        let mut m = self.machine.lock();
        let change = self.transit(&mut m, to, None);
        drop(m);
        self.announce(change);
    }

    fn transit(&self, m: &mut Machine, to: BreakerState, delay: Option<Duration>) -> Change {
        let (from, generation) = split(self.word.load(Ordering::Acquire));
        let mut open_for = None;
        match to {
            BreakerState::Open => {
                let delay = delay.unwrap_or(m.delay);
                m.delay = delay;
                open_for = Some(delay);
                let until = Instant::now()
                    .checked_add(delay)
                    .map_or(u64::MAX, |t| self.nanos(t));
                self.open_until.store(until, Ordering::Release);
                self.opened.fetch_add(1, Ordering::Relaxed);
            }
            BreakerState::HalfOpen => {
                m.trials = 0;
                m.successes = 0;
            }
            BreakerState::Closed => {
                m.policy.revived();
                self.streak.store(false, Ordering::Release);
            }
            BreakerState::ForcedOpen | BreakerState::ForcedClosed => {}
        }
        let word = ((generation + 1) << 8) | to.code();
        self.word.store(word, Ordering::Release);
        Change(BreakerState::from_code(from), to, open_for)
    }

    fn announce(&self, Change(from, to, open_for): Change) {
        let store = self.store.as_str();
        match to {
            BreakerState::Open | BreakerState::ForcedOpen => {
                tracing::warn!(store, %from, %to, ?open_for, "circuit breaker state changed")
            }
            _ => tracing::info!(store, %from, %to, "circuit breaker state changed"),
        }
        #[cfg(feature = "metrics")]
        {
            use crate::observe::{self, breaker_state, label};
            let owned = || metrics::SharedString::from(store.to_owned());
            metrics::counter!(observe::BREAKER_STATE_CHANGES_TOTAL,
                label::STORE => owned(), label::FROM => from.as_str(), label::TO => to.as_str())
            .increment(1);
            metrics::gauge!(observe::BREAKER_STATE, label::STORE => owned())
                .set(breaker_state::gauge_value(to.as_str()));
        }
        if let Some(listener) = &self.config.on_state_change {
            listener(&StateChange {
                store,
                from,
                to,
                open_for,
            });
        }
    }
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("store", &self.store)
            .field("state", &self.state())
            .field("rejected", &self.rejected.load(Ordering::Relaxed))
            .field("opened", &self.opened.load(Ordering::Relaxed))
            .finish()
    }
}
