//! The breaker's states and what is told about their changes.

use std::fmt;
use std::time::Duration;

/// The state of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls go through; failures are counted.
    Closed,
    /// Calls fail fast with `CircuitOpen` until the open period ends.
    Open,
    /// A bounded number of trial calls go through; the rest fail fast.
    HalfOpen,
    /// Forced open by an operator: every call fails fast until reset.
    ForcedOpen,
    /// Forced closed by an operator: every call goes through, nothing is
    /// counted, until reset.
    ForcedClosed,
}

pub(super) const CLOSED: u64 = 0;
pub(super) const OPEN: u64 = 1;
pub(super) const HALF_OPEN: u64 = 2;
pub(super) const FORCED_OPEN: u64 = 3;
pub(super) const FORCED_CLOSED: u64 = 4;

impl BreakerState {
    pub(super) fn code(self) -> u64 {
        match self {
            BreakerState::Closed => CLOSED,
            BreakerState::Open => OPEN,
            BreakerState::HalfOpen => HALF_OPEN,
            BreakerState::ForcedOpen => FORCED_OPEN,
            BreakerState::ForcedClosed => FORCED_CLOSED,
        }
    }

    pub(super) fn from_code(code: u64) -> Self {
        match code {
            OPEN => BreakerState::Open,
            HALF_OPEN => BreakerState::HalfOpen,
            FORCED_OPEN => BreakerState::ForcedOpen,
            FORCED_CLOSED => BreakerState::ForcedClosed,
            _ => BreakerState::Closed,
        }
    }

    /// A stable lower-case name, for logs, metrics and health endpoints.
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::ForcedOpen => "forced_open",
            BreakerState::ForcedClosed => "forced_closed",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state change, as told to the `on_state_change` listener.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StateChange<'a> {
    /// The name of the guarded store.
    pub store: &'a str,
    /// The state before.
    pub from: BreakerState,
    /// The state after.
    pub to: BreakerState,
    /// For a change to `Open`: how long it stays open.
    pub open_for: Option<Duration>,
}

/// How a call ended, for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Success,
    Failure,
    /// Neither: a non-transient error says nothing of the backend's health.
    Neutral,
}
