use std::time::Duration;

use storestack::{FaultConfig, MemoryStore, StoreExt};

use super::*;
use crate::history::{ErrorClass, Phase};
use crate::invariants::{Check, Expect};
use crate::scenario::{
    Action, RunConfig, Runner, Scenario, ScenarioResult, Schedule, Setup, Status,
};

fn runner(millis: u64) -> Runner {
    Runner::new(
        RunConfig::default()
            .seed(11)
            .duration(Duration::from_millis(millis)),
    )
}

async fn run(scenario: &Scenario, millis: u64) -> ScenarioResult {
    runner(millis).run(scenario).await.unwrap()
}

fn check_of(r: &ScenarioResult, expect: &Expect) -> Check {
    r.evaluation
        .0
        .iter()
        .find(|(e, _)| e == expect)
        .map(|(_, c)| c.clone())
        .unwrap_or_else(|| panic!("{expect} not expected"))
}

#[test]
fn the_catalogue_has_twelve_embedded_scenarios_with_unique_names() {
    let embedded = embedded();
    assert!(embedded.len() >= 12);
    assert!(embedded.iter().all(|s| s.requirements().is_empty()));
    let everything = all();
    let mut names: Vec<&str> = everything.iter().map(|s| s.name()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before);
    // Every scenario that may run by default checks the model's invariants.
    for s in embedded.iter().chain(&real()) {
        let expects = &s.expected().0;
        let mentions = |e: &Expect| {
            expects.iter().any(|x| match x {
                Expect::Limit { expect, .. } => **expect == *e,
                x => x == e,
            })
        };
        for e in [
            Expect::NoLostWrites,
            Expect::NoStaleReads,
            Expect::NoResurrectedDeletes,
        ] {
            assert!(mentions(&e), "{} does not check {e}", s.name());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_passes_with_every_invariant_checked() {
    let r = run(&baseline(), 600).await;
    assert_eq!(r.status, Status::Ran);
    assert!(r.passed(), "{:?}", r.evaluation);
    assert!(r.verdict.total.ops > 500, "{}", r.verdict.total.ops);
    assert_eq!(r.verdict.total.ok, r.verdict.total.ops);
    assert_eq!(r.evaluation.unchecked().count(), 0);
    let c = r.verdict.consistency.unwrap();
    assert!(c.keys_checked > 100, "{c:?}");
    assert_eq!((c.keys_excluded, c.keys_unverified), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_is_hidden_by_the_fallback() {
    let r = run(&primary_killed(), 900).await;
    assert!(r.passed(), "{:#?}", r.evaluation);
    assert_eq!(r.evaluation.unchecked().count(), 0);
    let during = r.verdict.phase(Phase::During);
    assert!(during.ops > 100, "{during:?}");
    assert_eq!(r.verdict.total.error_count(), 0);
    // The fault was observed: the probes measured failover and repair.
    let failover = &r.verdict.probes[super::stacks::FAILED_OVER];
    assert!(failover.is_ok(), "{failover:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_down_gives_clear_errors_within_the_deadline() {
    let r = run(&both_down(), 1200).await;
    assert!(r.passed(), "{:#?}", r.evaluation);
    let during = r.verdict.phase(Phase::During);
    assert!(during.error_count() > 0);
    assert!(during.latency.max <= super::stacks::BOUNDED, "{during:?}");
    assert_eq!(r.verdict.total.hangs, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_primary_loses_nothing_and_is_resynced() {
    let r = run(&primary_restarts_empty(), 900).await;
    assert!(r.passed(), "{:#?}", r.evaluation);
    // Writes made before the primary lost its data are still read (from
    // the secondary, then from the resynced primary).
    assert_eq!(check_of(&r, &Expect::NoLostWrites), Check::Pass);
    assert_eq!(r.verdict.consistency.as_ref().unwrap().lost, 0);
    assert_eq!(r.verdict.consistency.as_ref().unwrap().stale, 0);
    assert_eq!(
        check_of(&r, &Expect::probe(super::stacks::RESYNCED)),
        Check::Pass
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canaries_fail() {
    let r = run(&canary_dropped_writes(), 500).await;
    assert!(!r.passed());
    let c = r.verdict.consistency.as_ref().unwrap();
    assert!(c.lost > 0 && c.stale > 0, "{c:?}");
    assert!(matches!(
        check_of(&r, &Expect::NoLostWrites),
        Check::Fail(_)
    ));
    assert!(!c.examples.is_empty());

    let r = run(&canary_stale_caches(), 500).await;
    assert!(!r.passed());
    let c = r.verdict.consistency.as_ref().unwrap();
    assert!(c.stale > 0, "{c:?}");
    assert!(matches!(
        check_of(&r, &Expect::NoStaleReads),
        Check::Fail(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unobserved_fault_fails_the_scenario() {
    // The store-down schedule, on a store the faults do not wrap.
    let scenario = store_down().setup(|ctx| async move {
        let unused = MemoryStore::new().fault_injection(FaultConfig::default().seed(1));
        let down = Action::faults("down", &unused.handle(), |f| f.set_down(true));
        Ok(Setup::new(MemoryStore::new().shared()).schedule(Schedule::new().at(ctx.at(0.5), down)))
    });
    let r = run(&scenario, 400).await;
    assert!(!r.passed());
    let failed: Vec<_> = r.evaluation.failures().map(|(e, _)| e.clone()).collect();
    assert_eq!(failed, vec![Expect::ErrorsIn(Phase::During)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_down_shows_unavailable_errors_only_during_the_outage() {
    let r = run(&store_down(), 600).await;
    assert!(r.passed(), "{:?}", r.evaluation);
    let during = r.verdict.phase(Phase::During);
    assert!(during.ops > 100, "{during:?}");
    assert_eq!(
        during.errors.get(&ErrorClass::Unavailable),
        Some(&during.error_count())
    );
    assert_eq!(r.verdict.phase(Phase::Before).error_count(), 0);
    assert_eq!(r.verdict.phase(Phase::After).error_count(), 0);
}

#[tokio::test]
async fn a_missing_requirement_skips() {
    let scenario = baseline().requires(crate::scenario::Requirement::RedisUrl);
    let r = run(&scenario, 300).await;
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
    let r = run(&scenario, 300).await;
    assert!(r.evaluation.passed());
    assert!(!r.passed());
    assert_eq!(
        r.actions[0].error.as_deref(),
        Some("nothing is not running")
    );
}

#[test]
fn selection_by_name_and_prefix() {
    use crate::scenario::select;
    let names = |v: Vec<Scenario>| v.iter().map(|s| s.name().to_owned()).collect::<Vec<_>>();
    let default = names(select(all(), &[]).unwrap());
    assert!(default.iter().all(|n| !n.starts_with("canary")));
    assert!(default.contains(&"redis-blackholed".to_owned()));
    let redis = names(select(all(), &["redis-*".into()]).unwrap());
    let mongo = names(select(all(), &["mongo-*".into()]).unwrap());
    assert!(mongo.len() >= 4, "{mongo:?}");
    assert_eq!(redis.len() + mongo.len(), real().len());
    let two = names(select(all(), &["canary-stale-caches".into(), "baseline".into()]).unwrap());
    assert_eq!(two, ["canary-stale-caches", "baseline"]);
    assert!(select(all(), &["nope*".into()]).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_redis_is_hidden_by_the_fallback() {
    if crate::process::find_binary("redis-server").is_none() {
        storestack_testkit::server_missing("redis-server", &"not installed");
        return;
    }
    let config = RunConfig::default()
        .seed(5)
        .duration(Duration::from_millis(1500))
        .real(true);
    let r = Runner::new(config)
        .run(&redis::redis_primary_killed())
        .await
        .unwrap();
    assert!(r.passed(), "{:#?}", r.evaluation);
    assert!(
        r.actions.iter().all(|a| a.error.is_none()),
        "{:?}",
        r.actions
    );
    assert!(r.store.contains("timeout(redis)"), "{}", r.store);
    let c = r.verdict.consistency.unwrap();
    assert_eq!((c.lost, c.stale, c.keys_unverified), (0, 0, 0));
    assert!(c.keys_checked > 100, "{c:?}");
}

/// Runs `scenario` for `millis` with the suite's own redis-server and
/// secantusd-rs; `None` (loudly skipped, a failure under CI) when either is
/// not installed.
async fn run_on_own_servers(scenario: &Scenario, seed: u64, millis: u64) -> Option<ScenarioResult> {
    for program in ["redis-server", "secantusd-rs"] {
        if crate::process::find_binary(program).is_none() {
            storestack_testkit::server_missing(program, &"not installed");
            return None;
        }
    }
    let config = RunConfig::default()
        .seed(seed)
        .duration(Duration::from_millis(millis))
        .real(true);
    Some(Runner::new(config).run(scenario).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_mongodb_secondary_is_hidden_by_the_fallback() {
    let Some(r) = run_on_own_servers(&mongo::mongo_secondary_killed(), 6, 2000).await else {
        return;
    };
    assert!(r.passed(), "{:#?} {:?}", r.evaluation, r.actions);
    assert!(r.store.contains("timeout(mongodb)"), "{}", r.store);
    let c = r.verdict.consistency.unwrap();
    assert_eq!((c.lost, c.stale, c.resurrected), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_partition_leaves_no_process_stale() {
    let Some(r) = run_on_own_servers(&mongo::mongo_redis_partition(), 7, 2000).await else {
        return;
    };
    assert!(r.passed(), "{:#?} {:?}", r.evaluation, r.actions);
    assert!(r.store.starts_with("2 x "), "{}", r.store);
    let c = r.verdict.consistency.unwrap();
    assert_eq!((c.lost, c.stale, c.resurrected), (0, 0, 0));
    assert!(c.keys_checked > 50, "{c:?}");
    // A took writes alone while B kept the primary.
    let partial = &r.verdict.probes[mongo::PARTIAL];
    assert!(partial.is_ok(), "{partial:?}");
}
