//! The scenarios that need nothing but [`MemoryStore`] and a [`Switch`]:
//! they run anywhere and prove the pipeline end to end (workload → faults →
//! history → checker → report).
//!
//! [`MemoryStore`]: storestack::MemoryStore

use storestack::{ErrorKind, MemoryStore, StoreExt};

use super::{Action, Scenario, Schedule, Setup};
use crate::history::Phase;
use crate::invariants::{Expect, Invariants};
use crate::switch::{Switch, SwitchState};

/// Every built-in scenario, in the order the suite runs them.
pub fn embedded() -> Vec<Scenario> {
    vec![baseline(), store_down()]
}

/// No fault at all: every operation succeeds, nothing hangs.
pub fn baseline() -> Scenario {
    Scenario::new(
        "baseline",
        "memory store, no fault: every operation succeeds and nothing hangs",
    )
    .invariants(Invariants::strict().and(Expect::MinAvailability(100.0)))
}

/// The only store fails every operation from a third to two thirds of the
/// run, with nothing in front of it: callers must see errors during the
/// outage (and only then), and nothing may hang.
pub fn store_down() -> Scenario {
    Scenario::new(
        "store-down",
        "memory store without fallback fails every operation for a third of the run: \
         errors during the outage only, nothing hangs",
    )
    .invariants(Invariants::strict().and(Expect::ErrorsIn(Phase::During)))
    .setup(|ctx| async move {
        let store = Switch::new(MemoryStore::new());
        let switch = store.handle();
        let schedule = Schedule::new()
            .at(
                ctx.at(1.0 / 3.0),
                Action::switch(
                    "store down",
                    switch.clone(),
                    SwitchState::Failing(ErrorKind::Unavailable),
                ),
            )
            .at(
                ctx.at(2.0 / 3.0),
                Action::switch("store up", switch, SwitchState::Up),
            );
        Ok(Setup::new(store.shared()).schedule(schedule))
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::history::ErrorClass;
    use crate::scenario::{RunConfig, Runner, Status};

    fn runner() -> Runner {
        Runner::new(
            RunConfig::default()
                .seed(11)
                .duration(Duration::from_millis(600)),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn baseline_passes_with_no_errors() {
        let r = runner().run(&baseline()).await.unwrap();
        assert_eq!(r.status, Status::Ran);
        assert!(r.passed(), "{:?}", r.evaluation);
        assert!(r.verdict.total.ops > 500, "{}", r.verdict.total.ops);
        assert_eq!(r.verdict.total.ok, r.verdict.total.ops);
        assert_eq!(r.window, None);
        // Unchecked until a consistency model is plugged in.
        assert_eq!(r.evaluation.unchecked().count(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn store_down_shows_errors_only_during_the_outage() {
        let r = runner().run(&store_down()).await.unwrap();
        assert!(r.passed(), "{:?}", r.evaluation);
        let w = r.window.expect("measured window");
        assert!(w.start >= Duration::from_millis(200) && w.end >= Duration::from_millis(400));
        assert_eq!(r.actions.len(), 2);
        let during = r.verdict.phase(Phase::During);
        // Every operation during the outage failed, as Unavailable.
        assert!(during.ops > 100, "{during:?}");
        assert_eq!(
            during.errors.get(&ErrorClass::Unavailable),
            Some(&during.error_count())
        );
        assert!(during.error_count() + 2 >= during.ops, "{during:?}");
        assert_eq!(r.verdict.phase(Phase::Before).error_count(), 0);
        assert_eq!(r.verdict.phase(Phase::After).error_count(), 0);
        assert!(r.verdict.phase(Phase::After).ops > 100);
        assert_eq!(r.verdict.total.hangs, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unobserved_fault_fails_the_scenario() {
        // The same schedule on a store the switch does not wrap.
        let scenario = store_down().setup(|ctx| async move {
            let unused = Switch::new(MemoryStore::new()).handle();
            let down = Action::switch("down", unused, SwitchState::Failing(ErrorKind::Unavailable));
            Ok(Setup::new(MemoryStore::new().shared())
                .schedule(Schedule::new().at(ctx.at(0.5), down)))
        });
        let r = runner().run(&scenario).await.unwrap();
        assert!(!r.passed());
        let failed: Vec<_> = r.evaluation.failures().map(|(e, _)| e.clone()).collect();
        assert_eq!(failed, vec![Expect::ErrorsIn(Phase::During)]);
    }

    #[tokio::test]
    async fn a_missing_requirement_skips() {
        let scenario = baseline().requires(crate::scenario::Requirement::RedisUrl);
        let r = runner().run(&scenario).await.unwrap();
        assert!(r.skipped());
        assert!(!r.passed());
        assert_eq!(r.status, Status::Skipped("needs --redis URL".into()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_action_fails_the_scenario() {
        let scenario = baseline().setup(|ctx| async move {
            let broken = Action::new("explode", || async {
                Err(crate::ChaosError::NotRunning {
                    program: "nothing".into(),
                })
            });
            Ok(Setup::new(MemoryStore::new().shared())
                .schedule(Schedule::new().at(ctx.at(0.1), broken)))
        });
        let r = runner().run(&scenario).await.unwrap();
        assert!(r.evaluation.passed());
        assert!(!r.passed());
        assert_eq!(
            r.actions[0].error.as_deref(),
            Some("nothing is not running")
        );
    }
}
