//! Scenarios: a named stack, a workload, a fault schedule and the
//! invariants the stack must keep; and the [`Runner`] that runs one and
//! judges it.
//!
//! A scenario's [`setup`](Scenario::setup) builds the stack for one run and
//! returns a [`Setup`]: the store the workload talks to (or the stacks of
//! several processes sharing backends), a [`Schedule`] of fault [`Action`]s
//! at offsets from the start of the run, what to do before the final reads
//! (let a fallback repair), the scenario's probes, and whatever must stay
//! alive until the run ends (proxies, server processes). Offsets are
//! usually fractions of the run's duration ([`ScenarioContext::at`]), so a
//! scenario works at any `--duration`.
//!
//! After the workload stops and the last action ran, the runner lets the
//! stack converge, reads every written key back through every process
//! (the final reads lost writes are judged by), and checks the history.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use storestack::{FaultConfig, MemoryStore, StoreExt};
//! use storestack_chaos::history::Phase;
//! use storestack_chaos::invariants::{Expect, Invariants};
//! use storestack_chaos::scenario::{Action, RunConfig, Runner, Scenario, Schedule, Setup};
//!
//! let scenario = Scenario::new("blip", "the store fails for a moment")
//!     .invariants(Invariants::strict().and(Expect::ErrorsIn(Phase::During)))
//!     .setup(|ctx| async move {
//!         let store = MemoryStore::new().fault_injection(FaultConfig::default().seed(ctx.seed));
//!         let faults = store.handle();
//!         let down = Action::faults("store down", &faults, |f| f.set_down(true));
//!         let up = Action::faults("store up", &faults, |f| f.set_down(false));
//!         Ok(Setup::new(store.shared()).schedule(Schedule::new().at(ctx.at(0.3), down).at(ctx.at(0.6), up)))
//!     });
//! let runner = Runner::new(RunConfig::default().seed(1).duration(Duration::from_millis(600)));
//! let result = runner.run(&scenario).await?;
//! assert!(result.passed(), "{:?}", result.evaluation);
//! assert_eq!(result.verdict.consistency.unwrap().lost, 0);
//! # Ok::<_, storestack_chaos::ChaosError>(())
//! # }).unwrap();
//! ```

pub mod builtin;
mod runner;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use storestack::SharedStore;

use crate::error::Result;
use crate::history::FaultWindow;
use crate::invariants::Invariants;
use crate::process::{DataOnRestart, ProcessHandle};
use crate::proxy::{ProxyHandle, Toxics};
use crate::workload::WorkloadConfig;
use storestack::FaultHandle;

pub use runner::{ExecutedAction, RunConfig, Runner, ScenarioResult, Status};

/// What a scenario's setup knows about the run it prepares.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScenarioContext {
    /// The scenario's seed (derived from the suite's seed and the
    /// scenario's name, so a scenario replays alone or in the suite).
    pub seed: u64,
    /// How long the workload runs.
    pub duration: Duration,
    /// `--redis URL`, if given.
    pub redis_url: Option<String>,
    /// `--mongodb URL`, if given.
    pub mongodb_url: Option<String>,
    /// `--real`: the suite may start its own servers.
    pub real: bool,
}

impl ScenarioContext {
    /// The offset `fraction` (0.0–1.0) of the way through the run.
    pub fn at(&self, fraction: f64) -> Duration {
        self.duration.mul_f64(fraction.clamp(0.0, 1.0))
    }
}

/// What a scenario needs that may not be there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Requirement {
    /// `--redis URL`.
    RedisUrl,
    /// `--mongodb URL`.
    MongoDbUrl,
    /// A program on `PATH` or in `~/.cargo/bin` (e.g. `redis-server`).
    Binary(String),
    /// A Redis: `--redis URL`, or `--real` and `redis-server` installed.
    Redis,
    /// A `redis-server` the suite starts and controls (kill, pause,
    /// restart): `--real` and `redis-server` installed.
    OwnRedis,
    /// A MongoDB: `--mongodb URL`, or `--real` with `secantusd-rs`
    /// installed.
    Mongo,
    /// A `secantusd-rs` the suite starts and controls (kill, pause,
    /// restart): `--real` and `secantusd-rs` installed.
    OwnMongo,
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::RedisUrl => f.write_str("--redis URL"),
            Requirement::MongoDbUrl => f.write_str("--mongodb URL"),
            Requirement::Binary(b) => write!(f, "{b} installed"),
            Requirement::Redis => f.write_str("--redis URL, or --real with redis-server installed"),
            Requirement::OwnRedis => f.write_str("--real with redis-server installed"),
            Requirement::Mongo => {
                f.write_str("--mongodb URL, or --real with secantusd-rs installed")
            }
            Requirement::OwnMongo => f.write_str("--real with secantusd-rs installed"),
        }
    }
}

type ActionFn = Box<dyn FnOnce() -> BoxFuture<'static, Result<()>> + Send>;

/// One fault (or its repair) at one moment of a run.
pub struct Action {
    label: String,
    run: ActionFn,
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Action").field(&self.label).finish()
    }
}

impl Action {
    /// An action that runs `f` (e.g. `|| async move { handle.down().await }`).
    pub fn new<F, Fut>(label: impl Into<String>, f: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        Action {
            label: label.into(),
            run: Box::new(move || Box::pin(f())),
        }
    }

    /// An action that runs a synchronous `f` (flipping a switch, setting
    /// a fault injector's error rate).
    pub fn sync(label: impl Into<String>, f: impl FnOnce() + Send + 'static) -> Self {
        Self::new(label, move || {
            f();
            std::future::ready(Ok(()))
        })
    }

    /// Changes the faults of a
    /// [`FaultInjection`](storestack::layers::fault::FaultInjection):
    /// `Action::faults("primary down", &faults, |f| f.set_down(true))`.
    pub fn faults(
        label: impl Into<String>,
        handle: &FaultHandle,
        f: impl FnOnce(&FaultHandle) + Send + 'static,
    ) -> Self {
        let handle = handle.clone();
        Self::sync(label, move || f(&handle))
    }

    /// Replaces a proxy's toxics (and waits for its listener when `down`
    /// changes).
    pub fn proxy(label: impl Into<String>, handle: ProxyHandle, toxics: Toxics) -> Self {
        Self::new(label, move || async move { handle.apply(toxics).await })
    }

    /// SIGSTOP a server.
    pub fn pause(label: impl Into<String>, process: ProcessHandle) -> Self {
        Self::new(label, move || std::future::ready(process.pause()))
    }

    /// SIGCONT a server.
    pub fn resume(label: impl Into<String>, process: ProcessHandle) -> Self {
        Self::new(label, move || std::future::ready(process.resume()))
    }

    /// kill -9 a server.
    pub fn kill(label: impl Into<String>, process: ProcessHandle) -> Self {
        Self::new(label, move || async move { process.kill().await })
    }

    /// Restart a server on its port.
    pub fn restart(label: impl Into<String>, process: ProcessHandle, data: DataOnRestart) -> Self {
        Self::new(label, move || async move { process.restart(data).await })
    }

    /// Its label ("primary down").
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Runs it.
    pub async fn run(self) -> Result<()> {
        (self.run)().await
    }
}

/// Fault actions at offsets from the start of a run.
#[derive(Debug, Default)]
pub struct Schedule {
    steps: Vec<(Duration, Action)>,
}

impl Schedule {
    /// No faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `action` at `offset`. Actions run in offset order (insertion
    /// order for equal offsets), one at a time.
    pub fn at(mut self, offset: Duration, action: Action) -> Self {
        self.steps.push((offset, action));
        self
    }

    /// Whether there is no action.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The planned offsets and labels.
    pub fn plan(&self) -> Vec<(Duration, String)> {
        let mut plan: Vec<_> = self
            .steps
            .iter()
            .map(|(at, a)| (*at, a.label.clone()))
            .collect();
        plan.sort_by_key(|(at, _)| *at);
        plan
    }

    fn into_sorted(mut self) -> Vec<(Duration, Action)> {
        self.steps.sort_by_key(|(at, _)| *at);
        self.steps
    }
}

type StepFn = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;
type ProbeFn = Box<dyn FnOnce() -> std::result::Result<String, String> + Send>;

/// What a scenario's setup returns for one run.
pub struct Setup {
    processes: Vec<SharedStore>,
    schedule: Schedule,
    window: Option<FaultWindow>,
    settle: Duration,
    converge: Option<StepFn>,
    cleanup: Option<StepFn>,
    probes: Vec<(String, ProbeFn)>,
    keep_alive: Vec<Box<dyn Any + Send>>,
}

impl fmt::Debug for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.processes.iter().map(|s| s.name()).collect();
        let probes: Vec<&str> = self.probes.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Setup")
            .field("processes", &names)
            .field("schedule", &self.schedule)
            .field("window", &self.window)
            .field("settle", &self.settle)
            .field("converge", &self.converge.is_some())
            .field("cleanup", &self.cleanup.is_some())
            .field("probes", &probes)
            .field("keep_alive", &self.keep_alive.len())
            .finish()
    }
}

impl Setup {
    /// The workload runs against `store`; no faults yet.
    pub fn new(store: SharedStore) -> Self {
        Setup {
            processes: vec![store],
            schedule: Schedule::new(),
            window: None,
            settle: Duration::ZERO,
            converge: None,
            cleanup: None,
            probes: Vec::new(),
            keep_alive: Vec::new(),
        }
    }

    /// Adds the stack of another process over the same backends: the
    /// workers are shared out between the processes, and the final reads
    /// go through each.
    pub fn process(mut self, store: SharedStore) -> Self {
        self.processes.push(store);
        self
    }

    /// Sets the fault schedule. The fault window (the `during` phase) runs
    /// from when the first action starts to when the last one returns,
    /// as measured during the run.
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Widens the fault window to at least `window` (e.g. when the fault
    /// is injected by a decorator configured at setup, with no action).
    pub fn window(mut self, window: FaultWindow) -> Self {
        self.window = Some(window);
        self
    }

    /// Counts `settle` after the last action as still `during` the fault
    /// (time for clients to reconnect, breakers to close).
    pub fn settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// Runs `f` after the workload and the last action, before the final
    /// reads (e.g. until a fallback has repaired every journaled key). The
    /// runner gives it at most [`RunConfig::converge_patience`].
    pub fn converge<F, Fut>(mut self, f: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.converge = Some(Box::new(move || Box::pin(f())));
        self
    }

    /// Runs `f` at the very end of the run, after the probes (e.g. to
    /// remove the run's keys from a server the suite does not own). The
    /// runner gives it at most [`RunConfig::converge_patience`].
    pub fn cleanup<F, Fut>(mut self, f: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.cleanup = Some(Box::new(move || Box::pin(f())));
        self
    }

    /// Registers the probe checked by [`Expect::Probe`]`(name)`: called
    /// once after the final reads, it returns `Ok` with a note of what it
    /// measured when the property held, `Err` with what it measured when
    /// not.
    ///
    /// [`Expect::Probe`]: crate::invariants::Expect::Probe
    pub fn probe(
        mut self,
        name: impl Into<String>,
        probe: impl FnOnce() -> std::result::Result<String, String> + Send + 'static,
    ) -> Self {
        self.probes.push((name.into(), Box::new(probe)));
        self
    }

    /// Keeps `thing` alive until the run ends (a proxy, a server process).
    pub fn keep_alive(mut self, thing: impl Any + Send) -> Self {
        self.keep_alive.push(Box::new(thing));
        self
    }
}

type SetupFn = Arc<dyn Fn(ScenarioContext) -> BoxFuture<'static, Result<Setup>> + Send + Sync>;

/// A named scenario: see the [module docs](self).
#[derive(Clone)]
pub struct Scenario {
    name: String,
    description: String,
    invariants: Invariants,
    requires: Vec<Requirement>,
    workload: WorkloadConfig,
    stale_tolerance: Duration,
    opt_in: bool,
    setup: SetupFn,
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .field("description", &self.description)
            .field("invariants", &self.invariants)
            .field("requires", &self.requires)
            .field("workload", &self.workload)
            .field("stale_tolerance", &self.stale_tolerance)
            .field("opt_in", &self.opt_in)
            .finish_non_exhaustive()
    }
}

impl Scenario {
    /// A scenario on a bare [`MemoryStore`](storestack::MemoryStore) with
    /// no faults and [`Invariants::strict`]; set the rest with the builder
    /// methods.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Scenario {
            name: name.into(),
            description: description.into(),
            invariants: Invariants::strict(),
            requires: Vec::new(),
            workload: WorkloadConfig::default(),
            stale_tolerance: Duration::ZERO,
            opt_in: false,
            setup: Arc::new(|_| {
                Box::pin(async { Ok(Setup::new(Arc::new(storestack::MemoryStore::new()))) })
            }),
        }
    }

    /// Sets what the stack must keep.
    pub fn invariants(mut self, invariants: Invariants) -> Self {
        self.invariants = invariants;
        self
    }

    /// Adds a requirement; without it the scenario is skipped.
    pub fn requires(mut self, requirement: Requirement) -> Self {
        self.requires.push(requirement);
        self
    }

    /// Sets the workload (its `stop` is replaced by the run's duration).
    pub fn workload(mut self, workload: WorkloadConfig) -> Self {
        self.workload = workload;
        self
    }

    /// Tolerates reads that miss a write acknowledged less than
    /// `tolerance` before they began (see
    /// [`WriteModel::stale_tolerance`](crate::checker::WriteModel::stale_tolerance));
    /// for stacks whose contract has such a bound. Default zero.
    pub fn stale_tolerance(mut self, tolerance: Duration) -> Self {
        self.stale_tolerance = tolerance;
        self
    }

    /// Leaves the scenario out of a run that names no scenario: it runs
    /// only when asked for by name (e.g. the canaries, which must fail).
    pub fn opt_in(mut self) -> Self {
        self.opt_in = true;
        self
    }

    /// Sets how to build the stack and its fault schedule for a run.
    pub fn setup<F, Fut>(mut self, setup: F) -> Self
    where
        F: Fn(ScenarioContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Setup>> + Send + 'static,
    {
        self.setup = Arc::new(move |ctx| Box::pin(setup(ctx)));
        self
    }

    /// Its name (`--scenario NAME`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it does, in a sentence.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// What the stack must keep.
    pub fn expected(&self) -> &Invariants {
        &self.invariants
    }

    /// What it needs.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requires
    }

    /// Its workload.
    pub fn workload_config(&self) -> &WorkloadConfig {
        &self.workload
    }

    /// The staleness it tolerates.
    pub fn tolerance(&self) -> Duration {
        self.stale_tolerance
    }

    /// Whether it runs only when named.
    pub fn is_opt_in(&self) -> bool {
        self.opt_in
    }
}

/// The seed of scenario `name` in a suite seeded `seed`.
pub fn scenario_seed(seed: u64, name: &str) -> u64 {
    // FNV-1a: stable across Rust versions, unlike the std hasher.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    crate::seed::derive(seed, hash)
}

/// Every scenario the suite knows, in run order (see [`builtin`]).
/// Scenarios that need a real backend say so with [`Scenario::requires`]
/// and are skipped when it is not given; the canaries are
/// [opt-in](Scenario::opt_in).
pub fn catalogue() -> Vec<Scenario> {
    builtin::all()
}

/// The scenarios of `catalogue` named in `names`, in the order named; a
/// name ending in `*` names every scenario starting with what precedes it
/// (`redis-*`). All but the [opt-in](Scenario::opt_in) ones if `names` is
/// empty.
pub fn select(catalogue: Vec<Scenario>, names: &[String]) -> Result<Vec<Scenario>> {
    if names.is_empty() {
        return Ok(catalogue.into_iter().filter(|s| !s.opt_in).collect());
    }
    let mut chosen: Vec<Scenario> = Vec::new();
    for name in names {
        let matches: Vec<&Scenario> = match name.strip_suffix('*') {
            Some(prefix) => catalogue
                .iter()
                .filter(|s| s.name().starts_with(prefix))
                .collect(),
            None => catalogue.iter().filter(|s| s.name() == name).collect(),
        };
        if matches.is_empty() {
            return Err(crate::ChaosError::UnknownScenario(name.clone()));
        }
        for s in matches {
            if !chosen.iter().any(|c| c.name() == s.name()) {
                chosen.push(s.clone());
            }
        }
    }
    Ok(chosen)
}
