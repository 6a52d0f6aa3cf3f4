use std::fmt;
use std::time::Duration;

use crate::error::Op;

/// Deadlines of a [`Timeout`](super::Timeout): one per operation.
///
/// ```
/// use std::time::Duration;
/// use storestack::layers::timeout::TimeoutConfig;
/// use storestack::Op;
///
/// let config = TimeoutConfig::new(Duration::from_millis(50))
///     .op(Op::Scan, Duration::from_secs(2))
///     .without(Op::Clear);
/// assert_eq!(config.deadline(Op::Get), Some(Duration::from_millis(50)));
/// assert_eq!(config.deadline(Op::Scan), Some(Duration::from_secs(2)));
/// assert_eq!(config.deadline(Op::Clear), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeoutConfig {
    /// Indexed by [`slot`]; `None` is no deadline.
    deadlines: [Option<Duration>; Op::ALL.len()],
}

/// The index of a `Store` operation in [`Op::ALL`]; `None` for `Connect`,
/// which is not a `Store` operation.
fn slot(op: Op) -> Option<usize> {
    Op::ALL.iter().position(|o| *o == op)
}

impl TimeoutConfig {
    /// The same deadline for every operation.
    pub const fn new(every_op: Duration) -> Self {
        TimeoutConfig {
            deadlines: [Some(every_op); Op::ALL.len()],
        }
    }

    /// No deadline for any operation (then set some with [`op`](Self::op)).
    pub const fn none() -> Self {
        TimeoutConfig {
            deadlines: [None; Op::ALL.len()],
        }
    }

    /// Sets the deadline of one operation.
    pub fn op(mut self, op: Op, deadline: Duration) -> Self {
        if let Some(i) = slot(op) {
            self.deadlines[i] = Some(deadline);
        }
        self
    }

    /// Removes the deadline of one operation.
    pub fn without(mut self, op: Op) -> Self {
        if let Some(i) = slot(op) {
            self.deadlines[i] = None;
        }
        self
    }

    /// The deadline of `op`, if it has one.
    pub fn deadline(&self, op: Op) -> Option<Duration> {
        slot(op).and_then(|i| self.deadlines[i])
    }
}

/// 1 s for the single-key operations (`get`, `set`, `create`, `delete`,
/// `touch`), 30 s for `scan`, `len` and `clear`, which walk many keys.
impl Default for TimeoutConfig {
    fn default() -> Self {
        TimeoutConfig::new(Duration::from_secs(1))
            .op(Op::Scan, Duration::from_secs(30))
            .op(Op::Len, Duration::from_secs(30))
            .op(Op::Clear, Duration::from_secs(30))
    }
}

impl From<Duration> for TimeoutConfig {
    fn from(every_op: Duration) -> Self {
        TimeoutConfig::new(every_op)
    }
}

impl fmt::Debug for TimeoutConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (op, d) in Op::ALL.iter().zip(self.deadlines) {
            m.entry(&op.as_str(), &d);
        }
        m.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_gives_walks_longer() {
        let c = TimeoutConfig::default();
        assert_eq!(c.deadline(Op::Get), Some(Duration::from_secs(1)));
        assert_eq!(c.deadline(Op::Len), Some(Duration::from_secs(30)));
        assert_eq!(c.deadline(Op::Connect), None);
        let none = TimeoutConfig::none().op(Op::Set, Duration::from_millis(5));
        assert_eq!(none.deadline(Op::Get), None);
        assert_eq!(none.deadline(Op::Set), Some(Duration::from_millis(5)));
        assert!(format!("{c:?}").contains("\"scan\": Some(30s)"));
    }
}
