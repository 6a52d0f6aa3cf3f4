//! Metric names and labels, defined once for every decorator.
//!
//! [`Instrumented`](crate::layers::instrumented::Instrumented) and
//! `Cached` emit these through the [`metrics`](https://docs.rs/metrics)
//! facade (cargo feature `metrics`, on by default); CircuitBreaker emits the
//! breaker names at each state change and Fallback the fallback name each
//! time its secondary stands in. Exporters stay thin: install any `metrics`
//! recorder (Prometheus, StatsD, …) **before** building the stack, because
//! Instrumented and Cached register their handles when they are built
//! (CircuitBreaker and Fallback emit through the recorder installed when
//! the event happens).
//!
//! No label ever holds a key: keys are session IDs, i.e. credentials. The
//! `store` label is the name given to Instrumented and Cached
//! (`"sessions"`), and for CircuitBreaker and Fallback the
//! [`Store::name`](crate::Store::name) of what they guard (`"redis"`,
//! `"fallback(redis, mongodb)"`): never derived from data.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `storestack_operations_total` | counter | `store`, `op`, `outcome` | operations finished |
//! | `storestack_operation_duration_seconds` | histogram | `store`, `op`, `outcome` | latency of an operation as its caller saw it |
//! | `storestack_value_bytes` | histogram | `store`, `op` | size of values read (`get`, `get_versioned` hits) and written (`set`, `create`, `set_if`) |
//! | `storestack_slow_operations_total` | counter | `store`, `op` | operations slower than the slow threshold (each also logs a warning) |
//! | `storestack_cache_hits_total` | counter | `store` | `get`s answered by a local cache |
//! | `storestack_cache_misses_total` | counter | `store` | `get`s that went to the inner store |
//! | `storestack_cache_stale_served_total` | counter | `store` | `get`s answered from a stale cache entry because the inner store failed |
//! | `storestack_cache_invalidations_total` | counter | `store`, `scope` | invalidations received from other instances (`scope`: `key` or `all`) |
//! | `storestack_cache_publish_failures_total` | counter | `store` | invalidations that could not be published |
//! | `storestack_breaker_state_changes_total` | counter | `store`, `from`, `to` | circuit breaker transitions |
//! | `storestack_breaker_state` | gauge | `store` | current breaker state: 0 closed (or forced closed), 1 open (or forced open), 2 half-open |
//! | `storestack_fallback_resyncing` | gauge | `side` | 1 while a Fallback's side that lost its data (came back empty or from an old backup) is being made whole from the other side, else 0 |
//! | `storestack_fallback_resync_keys_total` | counter | `side` | keys a Fallback's whole-side resync compared |
//! | `storestack_fallbacks_total` | counter | `store`, `op`, `reason` | operations a Fallback served from its secondary alone because the primary failed (`reason`: the primary's error kind): reads that failed over, writes that went to the secondary alone |
//!
//! Label values:
//!
//! | label | values |
//! |---|---|
//! | `op` | [`Op::as_str`](crate::Op::as_str): `get`, `set`, `create`, `delete`, `touch`, `scan`, `len`, `clear`, `get_versioned`, `set_if` |
//! | `outcome` | `ok`; `miss` (`get` found nothing, `delete`/`touch` found no record); `exists` (`create` found a record); `conflict` (`set_if`'s condition did not hold); or an [`ErrorKind::as_str`](crate::ErrorKind::as_str): `unavailable`, `timeout`, `circuit_open`, `corrupt`, `invalid_input`, `too_large`, `unsupported`, `internal`, `permission_denied`, `misconfigured` |
//! | `from`, `to` | `closed`, `open`, `half_open`, `forced_open`, `forced_closed` |
//! | `reason` | an [`ErrorKind::as_str`](crate::ErrorKind::as_str) |
//! | `scope` | `key`, `all` |
//! | `side` | `primary`, `secondary` |

use crate::error::ErrorKind;

/// Counter: operations finished, by `store`, `op`, `outcome`.
pub const OPERATIONS_TOTAL: &str = "storestack_operations_total";
/// Histogram (seconds): operation latency, by `store`, `op`, `outcome`.
pub const OPERATION_DURATION_SECONDS: &str = "storestack_operation_duration_seconds";
/// Histogram (bytes): value sizes read and written, by `store`, `op`.
pub const VALUE_BYTES: &str = "storestack_value_bytes";
/// Counter: operations over the slow threshold, by `store`, `op`.
pub const SLOW_OPERATIONS_TOTAL: &str = "storestack_slow_operations_total";
/// Counter: cache hits, by `store`.
pub const CACHE_HITS_TOTAL: &str = "storestack_cache_hits_total";
/// Counter: cache misses, by `store`.
pub const CACHE_MISSES_TOTAL: &str = "storestack_cache_misses_total";
/// Counter: stale entries served because the inner store failed, by `store`.
pub const CACHE_STALE_SERVED_TOTAL: &str = "storestack_cache_stale_served_total";
/// Counter: invalidations received from other instances, by `store`, `scope`.
pub const CACHE_INVALIDATIONS_TOTAL: &str = "storestack_cache_invalidations_total";
/// Counter: invalidations that could not be published, by `store`.
pub const CACHE_PUBLISH_FAILURES_TOTAL: &str = "storestack_cache_publish_failures_total";
/// Counter: circuit breaker transitions, by `store`, `from`, `to`.
pub const BREAKER_STATE_CHANGES_TOTAL: &str = "storestack_breaker_state_changes_total";
/// Gauge: circuit breaker state (0 closed, 1 open, 2 half-open), by `store`.
pub const BREAKER_STATE: &str = "storestack_breaker_state";
/// Counter: operations served by a Fallback's secondary, by `store`, `op`, `reason`.
pub const FALLBACKS_TOTAL: &str = "storestack_fallbacks_total";

/// Gauge: 1 while a Fallback's side is being resynced (it lost data), by
/// `side`.
pub const FALLBACK_RESYNCING: &str = "storestack_fallback_resyncing";
/// Counter: keys a Fallback's whole-side resync compared, by `side`.
pub const FALLBACK_RESYNC_KEYS_TOTAL: &str = "storestack_fallback_resync_keys_total";

/// Label names.
pub mod label {
    /// The decorator's configured name.
    pub const STORE: &str = "store";
    /// A Fallback's side: `primary` or `secondary`.
    pub const SIDE: &str = "side";
    /// The operation ([`Op::as_str`](crate::Op::as_str)).
    pub const OP: &str = "op";
    /// How the operation ended (see [`outcome`](super::outcome)).
    pub const OUTCOME: &str = "outcome";
    /// A breaker's previous state.
    pub const FROM: &str = "from";
    /// A breaker's new state.
    pub const TO: &str = "to";
    /// Why a Fallback used its secondary (an error kind).
    pub const REASON: &str = "reason";
    /// What an invalidation covered: `key` or `all`.
    pub const SCOPE: &str = "scope";
}

/// Values of the `outcome` label.
pub mod outcome {
    use crate::error::ErrorKind;

    /// The operation succeeded (and found what it looked for).
    pub const OK: &str = "ok";
    /// `get` found nothing; `delete` or `touch` found no live record.
    pub const MISS: &str = "miss";
    /// `create` found a live record and wrote nothing.
    pub const EXISTS: &str = "exists";
    /// `set_if`'s condition did not hold: it wrote nothing.
    pub const CONFLICT: &str = "conflict";

    /// Every outcome value: `ok`, `miss`, `exists`, `conflict`, then every
    /// error kind (in [`ErrorKind::ALL`] order).
    pub const ALL: [&str; 4 + ErrorKind::ALL.len()] = {
        let mut all = [OK; 4 + ErrorKind::ALL.len()];
        all[1] = MISS;
        all[2] = EXISTS;
        all[3] = CONFLICT;
        let mut i = 0;
        while i < ErrorKind::ALL.len() {
            all[4 + i] = ErrorKind::ALL[i].as_str();
            i += 1;
        }
        all
    };
}

/// Values of the `from` / `to` labels and of the `storestack_breaker_state`
/// gauge.
pub mod breaker_state {
    /// Calls flow.
    pub const CLOSED: &str = "closed";
    /// Calls fail fast.
    pub const OPEN: &str = "open";
    /// A bounded number of trial calls flow.
    pub const HALF_OPEN: &str = "half_open";
    /// Held open by an operator: calls fail fast.
    pub const FORCED_OPEN: &str = "forced_open";
    /// Held closed by an operator: calls flow.
    pub const FORCED_CLOSED: &str = "forced_closed";

    /// The gauge value of a state name: 0 closed (or forced closed), 1 open
    /// (or forced open), 2 half-open.
    pub const fn gauge_value(state: &str) -> f64 {
        match state.as_bytes() {
            b"open" | b"forced_open" => 1.0,
            b"half_open" => 2.0,
            _ => 0.0,
        }
    }
}

/// Values of the `scope` label.
pub mod scope {
    /// One key.
    pub const KEY: &str = "key";
    /// Everything (a `clear`, or messages that may have been lost).
    pub const ALL: &str = "all";
}

/// How an operation ended, as an index into [`outcome::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutcomeIdx(pub(crate) usize);

impl OutcomeIdx {
    pub(crate) const OK: Self = OutcomeIdx(0);
    pub(crate) const MISS: Self = OutcomeIdx(1);
    pub(crate) const EXISTS: Self = OutcomeIdx(2);
    pub(crate) const CONFLICT: Self = OutcomeIdx(3);

    pub(crate) const fn of_error(kind: ErrorKind) -> Self {
        // `ErrorKind::ALL` lists the kinds in declaration order.
        OutcomeIdx(4 + kind as usize)
    }

    pub(crate) const fn as_str(self) -> &'static str {
        outcome::ALL[self.0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_indices_match_names() {
        for kind in ErrorKind::ALL {
            assert_eq!(OutcomeIdx::of_error(kind).as_str(), kind.as_str());
        }
        assert_eq!(OutcomeIdx::MISS.as_str(), "miss");
        assert_eq!(OutcomeIdx::CONFLICT.as_str(), "conflict");
        assert_eq!(breaker_state::gauge_value(breaker_state::HALF_OPEN), 2.0);
    }
}

/// For tests of the decorators that emit metrics when events happen
/// (CircuitBreaker, Fallback): runs them under a debugging recorder and
/// hands back what was recorded.
#[cfg(all(test, feature = "metrics"))]
pub(crate) mod capture {
    use std::future::Future;

    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    /// One recorded metric.
    #[derive(Debug)]
    pub(crate) struct Recorded {
        pub(crate) name: String,
        labels: Vec<(String, String)>,
        pub(crate) value: DebugValue,
    }

    impl Recorded {
        /// The value of label `name`; panics if the metric has none.
        pub(crate) fn label(&self, name: &str) -> &str {
            self.labels
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("{} has no label {name}", self.name))
        }
    }

    /// Runs `ops` on a current-thread runtime (its clock paused if
    /// `paused`) with a debugging recorder as this thread's recorder;
    /// every metric recorded.
    pub(crate) fn metrics<F>(paused: bool, ops: impl FnOnce() -> F) -> Vec<Recorded>
    where
        F: Future<Output = ()>,
    {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        ::metrics::with_local_recorder(&recorder, || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(paused)
                .build()
                .unwrap()
                .block_on(ops())
        });
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                Recorded {
                    name: key.name().to_owned(),
                    labels: key
                        .labels()
                        .map(|l| (l.key().to_owned(), l.value().to_owned()))
                        .collect(),
                    value,
                }
            })
            .collect()
    }
}
