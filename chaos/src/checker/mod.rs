//! Checking a [`History`]: the [`Checker`] trait, the [`Verdict`] it
//! returns, and [`StatsChecker`], which computes what needs no model of the
//! store (errors by kind, hangs, unrecognized reads, latency percentiles
//! per phase) and runs a [`ConsistencyModel`] for the rest.
//!
//! Lost acknowledged writes, stale reads and resurrected deletes need a
//! model of the acknowledged writes per key: [`WriteModel`], which runs the
//! testkit's history checker ([`storestack_testkit::model`]), is the one
//! the suite uses ([`StatsChecker::default`]); another can be plugged in
//! with [`StatsChecker::with_model`]. Without a model
//! ([`StatsChecker::stats_only`]), [`Verdict::consistency`] is `None` and
//! the invariants that need it are reported as unchecked, never as passed.
//!
//! When the history has a fault window, the model also runs on the keys
//! first written after the fault began ([`Verdict::since_fault`]): what a
//! stack that loses data in the fault (a store that restarts empty) must
//! still get right; and on the reads made after the fault
//! ([`Verdict::after_fault`]): whether a stack with a documented window of
//! staleness during a fault is consistent again once it is over.
//!
//! ```
//! use std::time::SystemTime;
//! use storestack_chaos::checker::{Checker, Consistency, StatsChecker};
//! use storestack_chaos::history::History;
//!
//! let history = History::new(1, SystemTime::now(), "k");
//! assert_eq!(StatsChecker::new().check(&history).consistency, Some(Consistency::default()));
//! assert!(StatsChecker::stats_only().check(&history).consistency.is_none());
//! let custom = StatsChecker::stats_only().with_model(|_: &History| Consistency::new(1, 0, 0));
//! assert_eq!(custom.check(&history).consistency.unwrap().lost, 1);
//! ```

pub mod model;
mod timeline;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::history::{ErrorClass, History, Outcome, Phase, ReadValue};

pub use model::WriteModel;
pub use timeline::{Bucket, Timeline};

/// Judges a history.
pub trait Checker: Send + Sync {
    /// The verdict on `history`.
    fn check(&self, history: &History) -> Verdict;
}

impl<F> Checker for F
where
    F: Fn(&History) -> Verdict + Send + Sync,
{
    fn check(&self, history: &History) -> Verdict {
        self(history)
    }
}

// Checkers are boxed by the runner.
fn _checker_is_object_safe(_: &dyn Checker) {}

/// Counts a model of the acknowledged writes finds in a history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Consistency {
    /// Acknowledged writes that later reads did not see (the key read as
    /// absent or as an older value while the write was the newest
    /// acknowledged one and had not expired).
    pub lost: u64,
    /// Reads that returned a value older than the last write acknowledged
    /// before the read began.
    pub stale: u64,
    /// Reads that returned a value after an acknowledged delete of it.
    pub resurrected: u64,
    /// Reads that returned a value whose write had not started yet.
    #[serde(default)]
    pub unknown: u64,
    /// Keys the model checked.
    #[serde(default)]
    pub keys_checked: u64,
    /// Keys left out because a record of theirs may have expired during
    /// the run (the model does not model expiry).
    #[serde(default)]
    pub keys_excluded: u64,
    /// Keys whose final read failed, so that lost writes could not be
    /// ruled out.
    #[serde(default)]
    pub keys_unverified: u64,
    /// Short descriptions of the first few violations (no raw keys: key
    /// indexes and value ids only).
    pub examples: Vec<String>,
}

impl Consistency {
    /// Counts without examples.
    pub fn new(lost: u64, stale: u64, resurrected: u64) -> Self {
        Consistency {
            lost,
            stale,
            resurrected,
            ..Consistency::default()
        }
    }

    /// Whether nothing was lost, stale, resurrected or unknown.
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.stale == 0 && self.resurrected == 0 && self.unknown == 0
    }

    /// Sets the examples.
    pub fn with_examples(mut self, examples: Vec<String>) -> Self {
        self.examples = examples;
        self
    }
}

/// A model that finds lost, stale and resurrected values in a history.
pub trait ConsistencyModel: Send + Sync {
    /// What it finds in `history`.
    fn check(&self, history: &History) -> Consistency;
}

impl<F> ConsistencyModel for F
where
    F: Fn(&History) -> Consistency + Send + Sync,
{
    fn check(&self, history: &History) -> Consistency {
        self(history)
    }
}

fn _model_is_object_safe(_: &dyn ConsistencyModel) {}

/// Latency percentiles of a set of operations (hangs excluded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// How many operations.
    pub count: u64,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
}

/// A latency histogram in microseconds, 1 µs to 1 hour, 3 significant
/// digits.
#[derive(Clone)]
pub(crate) struct Latencies(Histogram<u64>);

impl fmt::Debug for Latencies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Latencies").field(&self.0.len()).finish()
    }
}

impl Latencies {
    pub(crate) fn new() -> Self {
        Latencies(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"))
    }

    pub(crate) fn record(&mut self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        self.0.saturating_record(micros);
    }

    pub(crate) fn summary(&self) -> LatencySummary {
        if self.0.is_empty() {
            return LatencySummary::default();
        }
        let us = Duration::from_micros;
        LatencySummary {
            count: self.0.len(),
            p50: us(self.0.value_at_quantile(0.5)),
            p99: us(self.0.value_at_quantile(0.99)),
            max: us(self.0.max()),
        }
    }
}

/// What happened in one phase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseStats {
    /// Operations issued.
    pub ops: u64,
    /// Operations that succeeded.
    pub ok: u64,
    /// Operations that failed, by error kind.
    pub errors: BTreeMap<ErrorClass, u64>,
    /// Operations that hung.
    pub hangs: u64,
    /// Latency of the operations that did not hang.
    pub latency: LatencySummary,
}

impl PhaseStats {
    /// Failed operations, all kinds together.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Percentage of operations that succeeded (100 for no operations).
    pub fn availability(&self) -> f64 {
        percent(self.ok, self.ops)
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        100.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// The result of checking a history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Verdict {
    /// Totals over the whole run.
    pub total: PhaseStats,
    /// Per phase (only phases that had operations).
    pub phases: BTreeMap<Phase, PhaseStats>,
    /// Successful reads of bytes the workload never wrote (corruption).
    pub unrecognized_reads: u64,
    /// Successful reads of a value written to another key.
    pub misplaced_reads: u64,
    /// Lost / stale / resurrected counts, when a consistency model ran.
    pub consistency: Option<Consistency>,
    /// The same on the keys first written after the fault began (no write
    /// to them started before the fault window), when a model ran and the
    /// run had a fault window.
    #[serde(default)]
    pub since_fault: Option<Consistency>,
    /// The same on the reads that began after the fault window (writes
    /// and final reads all kept), when a model ran and the run had a
    /// fault window: whether the stack is consistent again once the fault
    /// is over.
    #[serde(default)]
    pub after_fault: Option<Consistency>,
    /// What the scenario's own probes measured (by probe name): `Ok` with
    /// a note when the probe held, `Err` with what was measured when not.
    #[serde(default)]
    pub probes: BTreeMap<String, Result<String, String>>,
}

impl Verdict {
    /// Percentage of all operations that succeeded.
    pub fn availability(&self) -> f64 {
        self.total.availability()
    }

    /// The stats of `phase` (empty if it had no operations).
    pub fn phase(&self, phase: Phase) -> PhaseStats {
        self.phases.get(&phase).cloned().unwrap_or_default()
    }
}

/// The suite's checker: statistics that need no model of the store, plus
/// a [`ConsistencyModel`] ([`WriteModel`] by default).
#[derive(Clone)]
pub struct StatsChecker {
    model: Option<Arc<dyn ConsistencyModel>>,
}

impl Default for StatsChecker {
    fn default() -> Self {
        Self::stats_only().with_model(WriteModel::new())
    }
}

impl fmt::Debug for StatsChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatsChecker")
            .field("model", &self.model.is_some())
            .finish()
    }
}

impl StatsChecker {
    /// Statistics and the [`WriteModel`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Statistics only: the invariants that need a model are unchecked.
    pub fn stats_only() -> Self {
        StatsChecker { model: None }
    }

    /// Sets the consistency model; its counts fill [`Verdict::consistency`].
    pub fn with_model(mut self, model: impl ConsistencyModel + 'static) -> Self {
        self.model = Some(Arc::new(model));
        self
    }
}

struct PhaseAcc {
    stats: PhaseStats,
    latencies: Latencies,
}

impl PhaseAcc {
    fn new() -> Self {
        PhaseAcc {
            stats: PhaseStats::default(),
            latencies: Latencies::new(),
        }
    }

    fn add(&mut self, outcome: &Outcome, latency: Duration) {
        self.stats.ops += 1;
        match outcome {
            Outcome::Hung => self.stats.hangs += 1,
            Outcome::Failed(class) => *self.stats.errors.entry(*class).or_default() += 1,
            _ => self.stats.ok += 1,
        }
        if !matches!(outcome, Outcome::Hung) {
            self.latencies.record(latency);
        }
    }

    fn finish(mut self) -> PhaseStats {
        self.stats.latency = self.latencies.summary();
        self.stats
    }
}

impl Checker for StatsChecker {
    fn check(&self, history: &History) -> Verdict {
        let mut total = PhaseAcc::new();
        let mut phases: BTreeMap<Phase, PhaseAcc> = BTreeMap::new();
        let mut unrecognized_reads = 0;
        let mut misplaced_reads = 0;
        for op in &history.ops {
            let latency = op.latency();
            total.add(&op.outcome, latency);
            phases
                .entry(history.phase(op))
                .or_insert_with(PhaseAcc::new)
                .add(&op.outcome, latency);
            match op.outcome {
                Outcome::Read(ReadValue::Unrecognized { .. }) => unrecognized_reads += 1,
                Outcome::Read(ReadValue::Misplaced(_)) => misplaced_reads += 1,
                _ => {}
            }
        }
        Verdict {
            total: total.finish(),
            phases: phases
                .into_iter()
                .map(|(p, acc)| (p, acc.finish()))
                .collect(),
            unrecognized_reads,
            misplaced_reads,
            consistency: self.model.as_ref().map(|m| m.check(history)),
            since_fault: self
                .model
                .as_ref()
                .zip(history.window)
                .map(|(m, w)| m.check(&fresh_keys(history, w.start))),
            after_fault: self
                .model
                .as_ref()
                .zip(history.window)
                .map(|(m, w)| m.check(&reads_after(history, w.end))),
            probes: BTreeMap::new(),
        }
    }
}

/// `history` restricted to the keys no write to which started before
/// `since`.
fn fresh_keys(history: &History, since: Duration) -> History {
    let old: std::collections::BTreeSet<u32> = history
        .ops
        .iter()
        .filter(|op| op.op != crate::history::WorkOp::Get && op.start < since)
        .map(|op| op.key)
        .collect();
    history.filter_keys(|key| !old.contains(&key))
}

/// `history` without the reads that began before `end`.
fn reads_after(history: &History, end: Duration) -> History {
    let mut after = history.clone();
    after
        .ops
        .retain(|op| op.op != crate::history::WorkOp::Get || op.start > end);
    after
}

#[cfg(test)]
mod tests;
