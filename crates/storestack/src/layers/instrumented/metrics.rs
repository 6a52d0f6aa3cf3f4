//! The metric handles of one Instrumented store, registered once when it
//! is built, so recording is an atomic update with no lookup.

use std::time::Duration;

use crate::error::Op;
use crate::observe::OutcomeIdx;

/// Index of an operation in [`Op::ALL`].
fn op_idx(op: Op) -> usize {
    match op {
        Op::Get => 0,
        Op::Set => 1,
        Op::Create => 2,
        Op::Delete => 3,
        Op::Touch => 4,
        Op::Scan => 5,
        Op::Len => 6,
        Op::Clear | Op::Connect => 7,
        Op::GetVersioned => 8,
        Op::SetIf => 9,
    }
}

#[cfg(feature = "metrics")]
mod imp {
    use super::*;
    use crate::observe::{self, label, outcome};
    use metrics::{Counter, Histogram, SharedString};

    const OPS: usize = Op::ALL.len();
    const OUTCOMES: usize = outcome::ALL.len();

    pub(crate) struct OpMetrics {
        ops: [[Counter; OUTCOMES]; OPS],
        latency: [[Histogram; OUTCOMES]; OPS],
        bytes: [Histogram; OPS],
        slow: [Counter; OPS],
    }

    impl OpMetrics {
        pub(crate) fn new(store: &str) -> Self {
            let store = SharedString::from(store.to_owned());
            let s = || store.clone();
            OpMetrics {
                ops: std::array::from_fn(|o| {
                    std::array::from_fn(|k| {
                        metrics::counter!(observe::OPERATIONS_TOTAL,
                            label::STORE => s(), label::OP => Op::ALL[o].as_str(), label::OUTCOME => outcome::ALL[k])
                    })
                }),
                latency: std::array::from_fn(|o| {
                    std::array::from_fn(|k| {
                        metrics::histogram!(observe::OPERATION_DURATION_SECONDS,
                            label::STORE => s(), label::OP => Op::ALL[o].as_str(), label::OUTCOME => outcome::ALL[k])
                    })
                }),
                bytes: std::array::from_fn(|o| {
                    metrics::histogram!(observe::VALUE_BYTES,
                        label::STORE => s(), label::OP => Op::ALL[o].as_str())
                }),
                slow: std::array::from_fn(|o| {
                    metrics::counter!(observe::SLOW_OPERATIONS_TOTAL,
                        label::STORE => s(), label::OP => Op::ALL[o].as_str())
                }),
            }
        }

        #[inline]
        pub(crate) fn record(
            &self,
            op: Op,
            outcome: OutcomeIdx,
            elapsed: Duration,
            bytes: Option<usize>,
        ) {
            let o = op_idx(op);
            self.ops[o][outcome.0].increment(1);
            self.latency[o][outcome.0].record(elapsed.as_secs_f64());
            if let Some(b) = bytes {
                self.bytes[o].record(b as f64);
            }
        }

        pub(crate) fn slow(&self, op: Op) {
            self.slow[op_idx(op)].increment(1);
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod imp {
    use super::*;

    pub(crate) struct OpMetrics;

    impl OpMetrics {
        pub(crate) fn new(_store: &str) -> Self {
            OpMetrics
        }

        #[inline]
        pub(crate) fn record(
            &self,
            op: Op,
            _outcome: OutcomeIdx,
            _elapsed: Duration,
            _bytes: Option<usize>,
        ) {
            let _ = op_idx(op);
        }

        pub(crate) fn slow(&self, _op: Op) {}
    }
}

pub(crate) use imp::OpMetrics;
