//! [`WriteModel`]: lost acknowledged writes, stale reads and resurrected
//! deletes, counted by the project's one history checker,
//! [`storestack_testkit::model`], on a chaos [`History`] converted to its
//! events.
//!
//! The conversion:
//!
//! * **Values**: a written [`ValueId`](crate::history::ValueId) becomes its
//!   text (`w3#17`), unique per write as the testkit model needs.
//! * **Time**: the testkit orders operations by logical ticks. Here the
//!   ticks are the ranks of the recorded start and end offsets (one
//!   monotonic clock for every worker), with starts ranked before ends at
//!   equal offsets: two operations whose times tie count as concurrent,
//!   never as ordered, so a tie cannot make a violation.
//! * **Staleness tolerance** ([`WriteModel::stale_tolerance`]): each read
//!   counts as starting that much earlier, so a write acknowledged less than
//!   the tolerance before a read began may still be missed by it. For stacks
//!   whose contract has such a bound (caches of several processes kept
//!   coherent by invalidation messages); zero by default.
//! * **Expiry** is not modeled by the testkit: keys with a record that could
//!   expire before the last final read are left out and counted in
//!   [`Consistency::keys_excluded`]. The default workload's TTLs (10 to 30
//!   minutes) leave nothing out.
//! * **Reads of foreign bytes** (corruption, a value of another key) are
//!   counted by the statistics as corrupt reads, not here.
//! * **Final reads** ([`History::final_reads`]) are the testkit's final
//!   reads: what lost writes are judged by. A key whose final read failed is
//!   counted in [`Consistency::keys_unverified`].
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use storestack_chaos::checker::{ConsistencyModel, WriteModel};
//! use storestack_chaos::history::{History, OpRecord, Outcome, ReadValue, ValueId, WorkOp};
//!
//! let ms = Duration::from_millis;
//! let id = ValueId { worker: 0, seq: 0 };
//! let op = |op, start, end, write, outcome| OpRecord {
//!     worker: 0, seq: 0, op, key: 7, start: ms(start), end: ms(end),
//!     write, expires_at: None, outcome,
//! };
//! let mut history = History::new(1, SystemTime::now(), "k:");
//! history.ops.push(op(WorkOp::Set, 0, 1, Some(id), Outcome::Written));
//! // Read after the acknowledged write: absent. Stale.
//! history.ops.push(op(WorkOp::Get, 2, 3, None, Outcome::Read(ReadValue::Absent)));
//! // And the final read does not find it either: lost.
//! history.final_reads.push(op(WorkOp::Get, 10, 11, None, Outcome::Read(ReadValue::Absent)));
//! let c = WriteModel::new().check(&history);
//! assert_eq!((c.lost, c.stale, c.resurrected), (1, 1, 0));
//! assert_eq!(c.keys_checked, 1);
//! ```

use std::collections::BTreeSet;
use std::time::Duration;

use storestack_testkit::model::{self as testkit, Call, Event, ViolationKind};

use super::{Consistency, ConsistencyModel};
use crate::history::{History, OpRecord, Outcome, ReadValue, WorkOp};

/// Records that expire this soon after the last final read still count as
/// possibly expired (clock differences between the suite and a server).
const EXPIRY_MARGIN: Duration = Duration::from_secs(1);

/// The consistency model of the suite; see the [module docs](self).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteModel {
    stale_tolerance: Duration,
}

impl WriteModel {
    /// No staleness tolerated.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tolerates reads that miss writes acknowledged less than `tolerance`
    /// before they began.
    pub fn stale_tolerance(mut self, tolerance: Duration) -> Self {
        self.stale_tolerance = tolerance;
        self
    }
}

/// One operation as the testkit sees it.
struct Converted<'a> {
    op: &'a OpRecord,
    final_read: bool,
    start: Duration,
}

impl ConsistencyModel for WriteModel {
    fn check(&self, history: &History) -> Consistency {
        let excluded = expiring_keys(history);
        let candidates = history
            .ops
            .iter()
            .map(|op| (op, false))
            .chain(history.final_reads.iter().map(|op| (op, true)));
        let converted: Vec<Converted<'_>> = candidates
            .filter(|(op, _)| !excluded.contains(&op.key) && !foreign_read(op))
            .map(|(op, final_read)| Converted {
                op,
                final_read,
                start: if op.op == WorkOp::Get {
                    op.start.saturating_sub(self.stale_tolerance)
                } else {
                    op.start
                },
            })
            .collect();
        let ticks = Ticks::of(&converted);
        let events: Vec<Event> = converted
            .iter()
            .enumerate()
            .map(|(i, c)| event(c, ticks.start[i], ticks.end[i]))
            .collect();
        let report = testkit::check(&events);
        let keys_checked = converted.iter().map(|c| c.op.key).collect::<BTreeSet<_>>();
        let unverified = history
            .final_reads
            .iter()
            .filter(|op| !excluded.contains(&op.key) && !op.outcome.is_ok())
            .map(|op| op.key)
            .collect::<BTreeSet<_>>();
        let examples = report
            .examples
            .iter()
            .map(|v| describe(v, &ticks.times))
            .collect();
        Consistency {
            lost: report.lost_writes,
            stale: report.stale_reads,
            resurrected: report.resurrected,
            unknown: report.unknown_values,
            keys_checked: keys_checked.len() as u64,
            keys_excluded: excluded.len() as u64,
            keys_unverified: unverified.len() as u64,
            examples,
        }
    }
}

/// Keys with a record that may expire before the end of the history.
fn expiring_keys(history: &History) -> BTreeSet<u32> {
    let last = history
        .ops
        .iter()
        .chain(&history.final_reads)
        .map(|op| op.end)
        .max()
        .unwrap_or_default()
        .max(history.elapsed);
    let horizon = history.wall_time(last + EXPIRY_MARGIN);
    history
        .ops
        .iter()
        .filter(|op| op.expires_at.is_some_and(|at| at <= horizon))
        .map(|op| op.key)
        .collect()
}

/// A read of bytes the workload never wrote to this key: the statistics'
/// business.
fn foreign_read(op: &OpRecord) -> bool {
    matches!(
        op.outcome,
        Outcome::Read(ReadValue::Misplaced(_) | ReadValue::Unrecognized { .. })
    )
}

/// Logical times: ranks of the start and end offsets.
struct Ticks {
    start: Vec<u64>,
    end: Vec<u64>,
    /// The offset of every tick (tick 0: the start of the run).
    times: Vec<Duration>,
}

impl Ticks {
    fn of(ops: &[Converted<'_>]) -> Self {
        // (offset, 0 = start / 1 = end, index): starts first at a tie.
        let mut points: Vec<(Duration, u8, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, c) in ops.iter().enumerate() {
            points.push((c.start, 0, i));
            points.push((c.op.end.max(c.start), 1, i));
        }
        points.sort_unstable();
        let mut ticks = Ticks {
            start: vec![0; ops.len()],
            end: vec![0; ops.len()],
            times: Vec::with_capacity(points.len() + 1),
        };
        ticks.times.push(Duration::ZERO);
        for (rank, (at, kind, i)) in points.into_iter().enumerate() {
            let tick = rank as u64 + 1; // tick 0 is the initial write
            if kind == 0 {
                ticks.start[i] = tick;
            } else {
                ticks.end[i] = tick;
            }
            ticks.times.push(at);
        }
        ticks
    }
}

fn event(c: &Converted<'_>, start: u64, end: u64) -> Event {
    let op = c.op;
    let value = || op.write.map(|id| id.to_string()).unwrap_or_default();
    let call = match op.op {
        WorkOp::Get => Call::Get,
        WorkOp::Set => Call::Set(value()),
        WorkOp::Create => Call::Create(value()),
        WorkOp::Delete => Call::Delete,
        WorkOp::Touch => Call::Touch,
    };
    let outcome = match op.outcome {
        Outcome::Read(ReadValue::Value(id)) => testkit::Outcome::Read(Some(id.to_string())),
        // Foreign reads were filtered out; absent is all that is left.
        Outcome::Read(_) => testkit::Outcome::Read(None),
        Outcome::Written => testkit::Outcome::Written,
        Outcome::Applied(flag) => testkit::Outcome::Flag(flag),
        Outcome::Failed(class) => testkit::Outcome::Failed(class.kind()),
        Outcome::Hung => testkit::Outcome::Abandoned,
    };
    Event {
        key: op.key.to_string(),
        call,
        start,
        end,
        started_at: op.start,
        ended_at: op.end,
        outcome,
        final_read: c.final_read,
    }
}

/// A violation in the suite's terms: key index, seconds, value ids.
fn describe(v: &testkit::Violation, times: &[Duration]) -> String {
    let what = match v.kind {
        ViolationKind::StaleRead => "stale read",
        ViolationKind::LostWrite => "lost write",
        ViolationKind::ResurrectedDelete => "resurrected delete",
        ViolationKind::UnknownValue => "unknown value",
    };
    let got = match &v.read.outcome {
        testkit::Outcome::Read(Some(value)) => value.clone(),
        _ => "absent".to_owned(),
    };
    let read = if v.read.final_read {
        "final read"
    } else {
        "read"
    };
    format!(
        "{what}: key #{} {read} at {:.3}s..{:.3}s returned {got}; allowed: {}",
        v.read.key,
        v.read.started_at.as_secs_f64(),
        v.read.ended_at.as_secs_f64(),
        ticks_to_seconds(&v.expected, times)
    )
}

/// Rewrites every `@<tick>` of a testkit description as `@<seconds>s`.
fn ticks_to_seconds(text: &str, times: &[Duration]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits]
            .parse::<usize>()
            .ok()
            .and_then(|t| times.get(t))
        {
            Some(time) => out.push_str(&format!("{:.3}s", time.as_secs_f64())),
            None => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
