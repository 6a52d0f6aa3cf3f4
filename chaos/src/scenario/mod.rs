//! Scenarios: a named stack, a workload, a fault schedule and the
//! invariants the stack must keep; and the [`Runner`] that runs one and
//! judges it.
//!
//! A scenario's [`setup`](Scenario::setup) builds the stack for one run and
//! returns a [`Setup`]: the store the workload talks to, a [`Schedule`] of
//! fault [`Action`]s at offsets from the start of the run, and whatever must
//! stay alive until the run ends (proxies, server processes). Offsets are
//! usually fractions of the run's duration ([`ScenarioContext::at`]), so a
//! scenario works at any `--duration`.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use storestack::{ErrorKind, MemoryStore, StoreExt};
//! use storestack_chaos::history::Phase;
//! use storestack_chaos::invariants::{Expect, Invariants};
//! use storestack_chaos::scenario::{Action, RunConfig, Runner, Scenario, Schedule, Setup};
//! use storestack_chaos::switch::{Switch, SwitchState};
//!
//! let scenario = Scenario::new("blip", "the store fails for a moment")
//!     .invariants(Invariants::strict().and(Expect::ErrorsIn(Phase::During)))
//!     .setup(|ctx| async move {
//!         let store = Switch::new(MemoryStore::new());
//!         let switch = store.handle();
//!         let down = Action::switch("store down", switch.clone(), SwitchState::Failing(ErrorKind::Unavailable));
//!         let up = Action::switch("store up", switch, SwitchState::Up);
//!         Ok(Setup::new(store.shared()).schedule(Schedule::new().at(ctx.at(0.3), down).at(ctx.at(0.6), up)))
//!     });
//! let runner = Runner::new(RunConfig::default().seed(1).duration(Duration::from_millis(600)));
//! let result = runner.run(&scenario).await?;
//! assert!(result.passed(), "{:?}", result.evaluation);
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
use crate::switch::{SwitchHandle, SwitchState};
use crate::workload::WorkloadConfig;

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
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::RedisUrl => f.write_str("--redis URL"),
            Requirement::MongoDbUrl => f.write_str("--mongodb URL"),
            Requirement::Binary(b) => write!(f, "{b} installed"),
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

    /// Sets a [`Switch`](crate::switch::Switch).
    pub fn switch(label: impl Into<String>, handle: SwitchHandle, state: SwitchState) -> Self {
        Self::sync(label, move || handle.set(state))
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

/// What a scenario's setup returns for one run.
pub struct Setup {
    store: SharedStore,
    schedule: Schedule,
    window: Option<FaultWindow>,
    settle: Duration,
    keep_alive: Vec<Box<dyn Any + Send>>,
}

impl fmt::Debug for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setup")
            .field("store", &self.store.name())
            .field("schedule", &self.schedule)
            .field("window", &self.window)
            .field("settle", &self.settle)
            .field("keep_alive", &self.keep_alive.len())
            .finish()
    }
}

impl Setup {
    /// The workload runs against `store`; no faults yet.
    pub fn new(store: SharedStore) -> Self {
        Setup {
            store,
            schedule: Schedule::new(),
            window: None,
            settle: Duration::ZERO,
            keep_alive: Vec::new(),
        }
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
}

/// The seed of scenario `name` in a suite seeded `seed`.
pub fn scenario_seed(seed: u64, name: &str) -> u64 {
    // FNV-1a: stable across Rust versions, unlike the std hasher.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    crate::seed::derive(seed, hash)
}

/// Every scenario the suite knows, in run order. Scenarios that need a
/// real backend say so with [`Scenario::requires`] and are skipped when it
/// is not given.
pub fn catalogue() -> Vec<Scenario> {
    builtin::embedded()
}

/// The scenarios of `catalogue` named in `names`, in the order named; all
/// of them if `names` is empty.
pub fn select(catalogue: Vec<Scenario>, names: &[String]) -> Result<Vec<Scenario>> {
    if names.is_empty() {
        return Ok(catalogue);
    }
    names
        .iter()
        .map(|name| {
            catalogue
                .iter()
                .find(|s| s.name() == name)
                .cloned()
                .ok_or_else(|| crate::ChaosError::UnknownScenario(name.clone()))
        })
        .collect()
}
