//! What a scenario expects of its [`Verdict`]: a list of [`Expect`]s, each
//! checked to [`Check::Pass`], [`Check::Fail`], [`Check::Unchecked`] (the
//! verdict lacks what it needs, e.g. no consistency model ran) or
//! [`Check::Limit`] (a documented limit of the stack showed, as the
//! scenario said it would: reported, not failed).
//!
//! ```
//! use storestack_chaos::checker::Verdict;
//! use storestack_chaos::history::Phase;
//! use storestack_chaos::invariants::{Expect, Invariants};
//!
//! let invariants = Invariants::strict().and(Expect::ErrorsIn(Phase::During));
//! let verdict = Verdict::default(); // no operations at all
//! let report = invariants.evaluate(&verdict);
//! assert!(!report.passed()); // no errors during the fault: it was not observed
//! ```

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::checker::{Consistency, Verdict};
use crate::history::{ErrorClass, Phase};

/// One expectation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Expect {
    /// No acknowledged write is lost.
    NoLostWrites,
    /// No read returns a value older than the last write acknowledged
    /// before it began.
    NoStaleReads,
    /// No deleted value comes back.
    NoResurrectedDeletes,
    /// No operation passes the hang deadline.
    NoHangs,
    /// No read returns bytes the workload never wrote to that key.
    NoCorruptReads,
    /// No operation fails in this phase.
    NoErrorsIn(Phase),
    /// Some operation fails in this phase (the fault was observed, not
    /// silently skipped).
    ErrorsIn(Phase),
    /// At most this percentage of operations fail or hang in the phase.
    MaxErrorRate {
        /// The phase.
        phase: Phase,
        /// The largest acceptable percentage.
        percent: f64,
    },
    /// The 99th percentile latency of the phase stays within `limit`.
    MaxP99 {
        /// The phase.
        phase: Phase,
        /// The limit.
        limit: Duration,
    },
    /// The slowest operation of the phase (hangs excluded) stays within
    /// `limit`.
    MaxLatency {
        /// The phase.
        phase: Phase,
        /// The limit.
        limit: Duration,
    },
    /// At least this percentage of all operations succeed.
    MinAvailability(f64),
    /// Every error surfaced to callers is of one of these kinds (e.g. only
    /// `Corrupt` when stored values are damaged; only transient kinds when
    /// both stores are down: clear errors, not `Internal`).
    OnlyErrors(Vec<ErrorClass>),
    /// The keys first written after the fault began have no lost, stale,
    /// resurrected or unknown values (see
    /// [`Verdict::since_fault`](crate::checker::Verdict::since_fault)).
    ConsistentSinceFault,
    /// Every read that began after the fault window (settle included) is
    /// consistent with every write, and no write is lost (see
    /// [`Verdict::after_fault`](crate::checker::Verdict::after_fault)).
    ConsistentAfterFault,
    /// A scenario-specific measurement, made by the probe of this name that
    /// the scenario's setup registers
    /// ([`Setup::probe`](crate::scenario::Setup::probe)): bounded trial
    /// calls of a half-open breaker, no failover on corruption, …
    Probe(String),
    /// A documented limit of the stack: `expect` is checked, and if it
    /// fails the result is [`Check::Limit`] with what was measured and
    /// `why`, which does not fail the scenario. For properties the stack's
    /// design cannot guarantee under this fault (say which, and why).
    Limit {
        /// What the stack cannot promise here.
        expect: Box<Expect>,
        /// Why, in a sentence.
        why: String,
    },
}

impl Expect {
    /// A probe expectation (see [`Expect::Probe`]).
    pub fn probe(name: impl Into<String>) -> Self {
        Expect::Probe(name.into())
    }

    /// `expect` as a documented limit (see [`Expect::Limit`]).
    pub fn limit(expect: Expect, why: impl Into<String>) -> Self {
        Expect::Limit {
            expect: Box::new(expect),
            why: why.into(),
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::NoLostWrites => f.write_str("no lost writes"),
            Expect::NoStaleReads => f.write_str("no stale reads"),
            Expect::NoResurrectedDeletes => f.write_str("no resurrected deletes"),
            Expect::NoHangs => f.write_str("no hangs"),
            Expect::NoCorruptReads => f.write_str("no corrupt reads"),
            Expect::NoErrorsIn(p) => write!(f, "no errors {p}"),
            Expect::ErrorsIn(p) => write!(f, "errors {p} the fault"),
            Expect::MaxErrorRate { phase, percent } => {
                write!(f, "error rate {phase} <= {percent}%")
            }
            Expect::MaxP99 { phase, limit } => write!(f, "p99 {phase} <= {limit:?}"),
            Expect::MaxLatency { phase, limit } => write!(f, "max latency {phase} <= {limit:?}"),
            Expect::MinAvailability(p) => write!(f, "availability >= {p}%"),
            Expect::OnlyErrors(kinds) => {
                let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                write!(f, "errors only of kinds {}", kinds.join(", "))
            }
            Expect::ConsistentSinceFault => {
                f.write_str("keys first written since the fault: no lost, stale or resurrected")
            }
            Expect::ConsistentAfterFault => {
                f.write_str("reads after the fault: no stale or resurrected; no lost writes")
            }
            Expect::Probe(name) => f.write_str(name),
            Expect::Limit { expect, .. } => write!(f, "known limit: {expect}"),
        }
    }
}

/// The result of one expectation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Met.
    Pass,
    /// Violated, with what was measured.
    Fail(String),
    /// Could not be checked, with why.
    Unchecked(String),
    /// A documented limit showed ([`Expect::Limit`]): what was measured,
    /// and why the stack cannot do better. Does not fail the scenario.
    Limit(String),
}

impl Expect {
    /// Checks the expectation against `verdict`.
    pub fn check(&self, verdict: &Verdict) -> Check {
        let at_most = |what: &str, got: u64, max: u64| {
            if got <= max {
                Check::Pass
            } else {
                Check::Fail(format!("{got} {what}"))
            }
        };
        let model = |pick: fn(&Consistency) -> u64, what: &str| match &verdict.consistency {
            Some(c) => at_most(what, pick(c), 0),
            None => Check::Unchecked("no consistency model ran".into()),
        };
        match self {
            Expect::NoLostWrites => match &verdict.consistency {
                Some(c) if c.keys_unverified > 0 => Check::Fail(format!(
                    "{} lost writes, and {} keys could not be read back after the run",
                    c.lost, c.keys_unverified
                )),
                _ => model(|c| c.lost, "lost writes"),
            },
            Expect::NoStaleReads => model(|c| c.stale, "stale reads"),
            Expect::NoResurrectedDeletes => model(|c| c.resurrected, "resurrected deletes"),
            Expect::NoHangs => at_most("hung operations", verdict.total.hangs, 0),
            Expect::NoCorruptReads => at_most(
                "corrupt reads",
                verdict.unrecognized_reads
                    + verdict.misplaced_reads
                    + verdict.consistency.as_ref().map_or(0, |c| c.unknown),
                0,
            ),
            Expect::NoErrorsIn(phase) => {
                let stats = verdict.phase(*phase);
                at_most(&format!("errors {phase}"), stats.error_count(), 0)
            }
            Expect::ErrorsIn(phase) => {
                let stats = verdict.phase(*phase);
                if stats.error_count() + stats.hangs > 0 {
                    Check::Pass
                } else {
                    Check::Fail(format!(
                        "no error {phase} the fault in {} operations: the fault was not observed",
                        stats.ops
                    ))
                }
            }
            Expect::MaxErrorRate { phase, percent } => {
                let stats = verdict.phase(*phase);
                let rate = 100.0 - stats.availability();
                if rate <= *percent {
                    Check::Pass
                } else {
                    Check::Fail(format!("error rate {phase} {rate:.2}%"))
                }
            }
            Expect::MaxP99 { phase, limit } => {
                let p99 = verdict.phase(*phase).latency.p99;
                if p99 <= *limit {
                    Check::Pass
                } else {
                    Check::Fail(format!("p99 {phase} {p99:?}"))
                }
            }
            Expect::MaxLatency { phase, limit } => {
                let max = verdict.phase(*phase).latency.max;
                if max <= *limit {
                    Check::Pass
                } else {
                    Check::Fail(format!("max latency {phase} {max:?}"))
                }
            }
            Expect::MinAvailability(min) => {
                let got = verdict.availability();
                if got >= *min {
                    Check::Pass
                } else {
                    Check::Fail(format!("availability {got:.2}%"))
                }
            }
            Expect::OnlyErrors(kinds) => {
                let other: Vec<String> = verdict
                    .total
                    .errors
                    .iter()
                    .filter(|(k, _)| !kinds.contains(k))
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect();
                if other.is_empty() {
                    Check::Pass
                } else {
                    Check::Fail(format!("other errors: {}", other.join(", ")))
                }
            }
            Expect::ConsistentSinceFault => match &verdict.since_fault {
                Some(c) if c.is_clean() && c.keys_unverified == 0 => Check::Pass,
                Some(c) => Check::Fail(format!(
                    "{} lost, {} stale, {} resurrected, {} unknown, {} unverified in {} keys",
                    c.lost, c.stale, c.resurrected, c.unknown, c.keys_unverified, c.keys_checked
                )),
                None if verdict.consistency.is_none() => {
                    Check::Unchecked("no consistency model ran".into())
                }
                None => Check::Unchecked("the run had no fault window".into()),
            },
            Expect::ConsistentAfterFault => match &verdict.after_fault {
                Some(c) if c.is_clean() && c.keys_unverified == 0 => Check::Pass,
                Some(c) => Check::Fail(format!(
                    "{} lost, {} stale, {} resurrected, {} unknown, {} unverified",
                    c.lost, c.stale, c.resurrected, c.unknown, c.keys_unverified
                )),
                None if verdict.consistency.is_none() => {
                    Check::Unchecked("no consistency model ran".into())
                }
                None => Check::Unchecked("the run had no fault window".into()),
            },
            Expect::Probe(name) => match verdict.probes.get(name) {
                Some(Ok(_)) => Check::Pass,
                Some(Err(measured)) => Check::Fail(measured.clone()),
                None => Check::Unchecked("the scenario registered no such probe".into()),
            },
            Expect::Limit { expect, why } => match expect.check(verdict) {
                Check::Fail(measured) | Check::Limit(measured) => {
                    Check::Limit(format!("{measured}: {why}"))
                }
                other => other,
            },
        }
    }
}

/// A scenario's expectations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Invariants(pub Vec<Expect>);

impl Invariants {
    /// No expectations.
    pub fn none() -> Self {
        Invariants(Vec::new())
    }

    /// What a resilient stack promises whatever the fault: no lost, stale,
    /// resurrected or corrupt values and nothing hung.
    pub fn safety() -> Self {
        Invariants(vec![
            Expect::NoLostWrites,
            Expect::NoStaleReads,
            Expect::NoResurrectedDeletes,
            Expect::NoCorruptReads,
            Expect::NoHangs,
        ])
    }

    /// [`safety`](Self::safety), plus no errors before or after the fault.
    pub fn strict() -> Self {
        Self::safety()
            .and(Expect::NoErrorsIn(Phase::Before))
            .and(Expect::NoErrorsIn(Phase::After))
    }

    /// Adds an expectation.
    pub fn and(mut self, expect: Expect) -> Self {
        self.0.push(expect);
        self
    }

    /// Removes every expectation equal to `expect`.
    pub fn without(mut self, expect: &Expect) -> Self {
        self.0.retain(|e| e != expect);
        self
    }

    /// Checks every expectation.
    pub fn evaluate(&self, verdict: &Verdict) -> Evaluation {
        Evaluation(
            self.0
                .iter()
                .map(|e| (e.clone(), e.check(verdict)))
                .collect(),
        )
    }
}

/// Every expectation of a scenario with its result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evaluation(pub Vec<(Expect, Check)>);

impl Evaluation {
    /// Whether no expectation failed (unchecked ones do not fail).
    pub fn passed(&self) -> bool {
        !self.0.iter().any(|(_, c)| matches!(c, Check::Fail(_)))
    }

    /// The failed expectations with what was measured.
    pub fn failures(&self) -> impl Iterator<Item = (&Expect, &str)> {
        self.0.iter().filter_map(|(e, c)| match c {
            Check::Fail(why) => Some((e, why.as_str())),
            _ => None,
        })
    }

    /// The documented limits that showed, with what was measured.
    pub fn limits(&self) -> impl Iterator<Item = (&Expect, &str)> {
        self.0.iter().filter_map(|(e, c)| match c {
            Check::Limit(why) => Some((e, why.as_str())),
            _ => None,
        })
    }

    /// The expectations that could not be checked.
    pub fn unchecked(&self) -> impl Iterator<Item = &Expect> {
        self.0
            .iter()
            .filter_map(|(e, c)| matches!(c, Check::Unchecked(_)).then_some(e))
    }
}
