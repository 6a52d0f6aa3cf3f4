//! The stacks the built-in scenarios run, and the probes and converge
//! steps they share.
//!
//! Every failover stack follows the ordering of `storestack::layer`:
//! `primary.timeout(..).circuit_breaker(..).with_fallback(secondary.timeout(..).circuit_breaker(..))`,
//! with the deadlines, open periods and repair timings scaled down so that
//! a scenario of a few seconds sees a whole outage and its recovery.

use std::time::Duration;

use storestack::{
    BreakerConfig, BreakerHandle, Fallback, FallbackConfig, FallbackHandle, FaultConfig,
    FaultHandle, FaultInjection, MemoryStore, SharedStore, Store, StoreExt,
};

use crate::scenario::{ScenarioContext, Setup};

/// The deadline of each operation on a side (memory answers in
/// microseconds; a loaded 2-core machine in a few milliseconds).
pub(crate) const DEADLINE: Duration = Duration::from_millis(50);

/// The longest an operation of a failover stack may take during a fault:
/// a deadline on each side plus scheduling slack, far below the workload's
/// hang deadline (2 s).
pub(crate) const BOUNDED: Duration = Duration::from_millis(500);

/// The breakers of the scenarios: open after 5 consecutive failures, for
/// 100 ms at first, doubling up to 1 s; one trial call at a time.
pub(crate) fn breaker() -> BreakerConfig {
    BreakerConfig::default()
        .consecutive_failures(5)
        .open_for(Duration::from_millis(100), Duration::from_secs(1))
}

/// The fallbacks of the scenarios: a poll every 100 ms and a 200 ms settle
/// (above the longest write: one deadline per side).
pub(crate) fn fallback_config() -> FallbackConfig {
    FallbackConfig::default()
        .poll_interval(Duration::from_millis(100))
        .settle(Duration::from_millis(200))
        // The first write of an outage the secondary takes alone waits out
        // the read lease: well under the latency bound of a fault.
        .read_lease(Duration::from_millis(100))
}

/// Fault injection seeded from the scenario's seed and `stream`.
pub(crate) fn faults(ctx: &ScenarioContext, stream: u64) -> FaultConfig {
    FaultConfig::default().seed(crate::seed::derive(ctx.seed, stream))
}

/// A failover stack and the handles its scenarios act on and probe.
pub(crate) struct Failover {
    pub(crate) store: SharedStore,
    pub(crate) fallback: FallbackHandle,
    pub(crate) primary_breaker: BreakerHandle,
}

impl Failover {
    /// `Fallback(CircuitBreaker(Timeout(primary)), CircuitBreaker(Timeout(secondary)))`.
    pub(crate) fn new(primary: impl Store, secondary: impl Store, deadline: Duration) -> Self {
        Self::with_deadlines((primary, deadline), (secondary, deadline))
    }

    /// The same, with a deadline of its own for each side (`(store,
    /// deadline)`).
    pub(crate) fn with_deadlines(
        primary: (impl Store, Duration),
        secondary: (impl Store, Duration),
    ) -> Self {
        Self::with_config(primary, secondary, fallback_config())
    }

    /// The same, with a fallback configuration of its own.
    pub(crate) fn with_config(
        (primary, primary_deadline): (impl Store, Duration),
        (secondary, secondary_deadline): (impl Store, Duration),
        config: FallbackConfig,
    ) -> Self {
        let primary = primary.timeout(primary_deadline).circuit_breaker(breaker());
        let secondary = secondary
            .timeout(secondary_deadline)
            .circuit_breaker(breaker());
        let primary_breaker = primary.handle();
        let fallback = Fallback::with_config(primary, secondary, config);
        Failover {
            fallback: fallback.handle(),
            store: fallback.shared(),
            primary_breaker,
        }
    }

    /// The setup of a run on this stack: the workload, the converge step,
    /// and the probes that the journal was repaired and that a side that
    /// lost its data was resynced.
    pub(crate) fn setup(&self) -> Setup {
        let fallback = self.fallback.clone();
        let resync = self.fallback.clone();
        Setup::new(self.store.clone())
            .converge({
                let fallback = self.fallback.clone();
                move || converge(fallback)
            })
            .probe(REPAIRED, move || repaired(&fallback))
            .probe(RESYNCED, move || resynced(&resync))
    }
}

/// Repair passes until nothing is journaled (the runner bounds the wait).
pub(crate) async fn converge(fallback: FallbackHandle) {
    loop {
        let report = fallback.repair_now().await;
        if report.remaining == 0 && fallback.status().resync.is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The name of the probe [`Failover::setup`] registers.
pub(crate) const REPAIRED: &str = "journal repaired after the fault";

pub(crate) fn repaired(fallback: &FallbackHandle) -> Result<String, String> {
    let s = fallback.status();
    let note = format!(
        "{} failover reads, {} degraded writes, {} keys repaired, {} journaled, \
         {} reads through, {} resyncs done",
        s.failover_reads,
        s.degraded_writes,
        s.repaired,
        s.journaled_keys,
        s.read_through,
        s.resyncs_completed
    );
    if s.journaled_keys == 0 && s.resync.is_none() {
        Ok(note)
    } else {
        Err(note)
    }
}

/// The name of the probe [`resynced`] answers.
pub(crate) const RESYNCED: &str = "the side that lost its data was detected and resynced";

/// Ok when a whole-side resync was completed: the loss was detected, not
/// only papered over by reads through to the other side.
pub(crate) fn resynced(fallback: &FallbackHandle) -> Result<String, String> {
    let s = fallback.status();
    let note = format!(
        "{} resyncs detected, {} completed, {} reads through",
        s.resyncs_detected, s.resyncs_completed, s.read_through
    );
    if s.resyncs_completed > 0 {
        Ok(note)
    } else {
        Err(format!("no resync completed: {note}"))
    }
}

/// The name of the probe [`observed`] answers.
pub(crate) const FAILED_OVER: &str = "the fallback took over during the fault";

/// Ok when the fallback served reads or took writes alone: the fault was
/// observed, not silently missed.
pub(crate) fn failed_over(fallback: &FallbackHandle) -> Result<String, String> {
    let s = fallback.status();
    let note = format!(
        "{} failover reads, {} degraded writes, primary failed {} times, secondary {} times",
        s.failover_reads, s.degraded_writes, s.primary.failures, s.secondary.failures
    );
    if s.failover_reads + s.degraded_writes > 0 {
        Ok(note)
    } else {
        Err(format!("the fault was not observed: {note}"))
    }
}

/// The embedded failover stack: two memory stores, each behind fault
/// injection.
pub(crate) struct Embedded {
    pub(crate) failover: Failover,
    pub(crate) primary: FaultHandle,
    pub(crate) secondary: FaultHandle,
    /// The primary's data, under its fault injection (to wipe it).
    pub(crate) primary_data: MemoryStore,
    /// The secondary's data, under its fault injection.
    pub(crate) secondary_data: MemoryStore,
}

impl Embedded {
    pub(crate) fn new(ctx: &ScenarioContext) -> Self {
        let primary_data = MemoryStore::new();
        let primary = FaultInjection::new(primary_data.clone(), faults(ctx, 1));
        let secondary_data = MemoryStore::new();
        let secondary = FaultInjection::new(secondary_data.clone(), faults(ctx, 2));
        let (primary_faults, secondary_faults) = (primary.handle(), secondary.handle());
        Embedded {
            failover: Failover::new(primary, secondary, DEADLINE),
            primary: primary_faults,
            secondary: secondary_faults,
            primary_data,
            secondary_data,
        }
    }

    /// [`Failover::setup`] plus the [`FAILED_OVER`] probe.
    pub(crate) fn setup(&self) -> Setup {
        let fallback = self.failover.fallback.clone();
        self.failover
            .setup()
            .probe(FAILED_OVER, move || failed_over(&fallback))
    }
}
