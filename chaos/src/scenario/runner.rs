//! Runs a [`Scenario`]: builds its stack, starts the workload, drives the
//! fault schedule on a timer, lets the stack converge, reads every written
//! key back, and judges the history.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{scenario_seed, Requirement, Scenario, ScenarioContext};
use crate::checker::{Checker, StatsChecker, Timeline, Verdict, WriteModel};
use crate::error::{ChaosError, Result};
use crate::history::{FaultWindow, History};
use crate::invariants::Evaluation;
use crate::process::find_binary;
use crate::workload::{read_back, Progress, ReadBack, RunStart, Stop, Workload};

/// How the suite runs.
///
/// # Default
///
/// Seed 0, 5 s per scenario, 100 timeline buckets, no real backends (and
/// no servers of the suite's own), the history not kept in the result, 10 s
/// for a stack to converge after a run, 5 s of retries for a final read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunConfig {
    /// The suite's seed; each scenario derives its own from it.
    pub seed: u64,
    /// How long each scenario's workload runs.
    pub duration: Duration,
    /// Buckets of each scenario's timeline.
    pub timeline_buckets: u32,
    /// `--redis URL` for real-backend scenarios.
    pub redis_url: Option<String>,
    /// `--mongodb URL` for real-backend scenarios.
    pub mongodb_url: Option<String>,
    /// Keep the full history in each [`ScenarioResult`].
    pub keep_history: bool,
    /// `--real`: scenarios may start their own servers.
    pub real: bool,
    /// The longest a scenario's converge step may take.
    pub converge_patience: Duration,
    /// How long a failed final read is retried.
    pub final_read_patience: Duration,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            seed: 0,
            duration: Duration::from_secs(5),
            timeline_buckets: 100,
            redis_url: None,
            mongodb_url: None,
            keep_history: false,
            real: false,
            converge_patience: Duration::from_secs(10),
            final_read_patience: Duration::from_secs(5),
        }
    }
}

impl RunConfig {
    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the duration of each scenario.
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    /// Sets the Redis URL.
    pub fn redis_url(mut self, url: Option<String>) -> Self {
        self.redis_url = url;
        self
    }

    /// Sets the MongoDB URL.
    pub fn mongodb_url(mut self, url: Option<String>) -> Self {
        self.mongodb_url = url;
        self
    }

    /// Keeps the history in each result.
    pub fn keep_history(mut self, keep: bool) -> Self {
        self.keep_history = keep;
        self
    }

    /// Lets scenarios start their own servers.
    pub fn real(mut self, real: bool) -> Self {
        self.real = real;
        self
    }

    fn unmet(&self, requirement: &Requirement) -> bool {
        let own_redis = || self.real && find_binary("redis-server").is_some();
        let own_mongo = || self.real && find_binary("secantusd-rs").is_some();
        match requirement {
            Requirement::RedisUrl => self.redis_url.is_none(),
            Requirement::MongoDbUrl => self.mongodb_url.is_none(),
            Requirement::Binary(b) => find_binary(b).is_none(),
            Requirement::Redis => self.redis_url.is_none() && !own_redis(),
            Requirement::OwnRedis => !own_redis(),
            Requirement::Mongo => self.mongodb_url.is_none() && !own_mongo(),
            Requirement::OwnMongo => !own_mongo(),
        }
    }
}

/// A fault action as it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutedAction {
    /// Its label.
    pub label: String,
    /// When it was planned, since the start of the run.
    pub planned: Duration,
    /// When it started.
    pub started: Duration,
    /// When it returned.
    pub finished: Duration,
    /// Its error, if it failed.
    pub error: Option<String>,
}

/// Whether a scenario ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// It ran and was judged.
    Ran,
    /// A requirement was missing; nothing ran.
    Skipped(String),
}

/// What running a scenario found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ScenarioResult {
    /// The scenario's name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Its seed.
    pub seed: u64,
    /// Whether it ran.
    pub status: Status,
    /// The name of the stack under test.
    pub store: String,
    /// How long the workload ran.
    pub elapsed: Duration,
    /// The fault window as measured.
    pub window: Option<FaultWindow>,
    /// The fault actions as they ran.
    pub actions: Vec<ExecutedAction>,
    /// The checker's verdict.
    pub verdict: Verdict,
    /// The scenario's invariants, checked.
    pub evaluation: Evaluation,
    /// Latency and error rate over time.
    pub timeline: Timeline,
    /// The full history, when [`RunConfig::keep_history`] is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<History>,
}

impl ScenarioResult {
    /// Whether it ran, every invariant held and every fault action ran.
    /// A skipped scenario has not passed.
    pub fn passed(&self) -> bool {
        self.status == Status::Ran
            && self.evaluation.passed()
            && self.actions.iter().all(|a| a.error.is_none())
    }

    /// `PASS`, `LIMIT` (passed, and a documented limit of the stack
    /// showed), `FAIL` or `SKIP`.
    pub fn verdict_label(&self) -> &'static str {
        match self.status {
            Status::Skipped(_) => "SKIP",
            Status::Ran if !self.passed() => "FAIL",
            Status::Ran if self.evaluation.limits().next().is_some() => "LIMIT",
            Status::Ran => "PASS",
        }
    }

    /// Whether it was skipped.
    pub fn skipped(&self) -> bool {
        matches!(self.status, Status::Skipped(_))
    }

    fn skipped_because(scenario: &Scenario, seed: u64, why: String) -> Self {
        ScenarioResult {
            name: scenario.name().into(),
            description: scenario.description().into(),
            seed,
            status: Status::Skipped(why),
            store: String::new(),
            elapsed: Duration::ZERO,
            window: None,
            actions: Vec::new(),
            verdict: Verdict::default(),
            evaluation: Evaluation::default(),
            timeline: Timeline::default(),
            history: None,
        }
    }
}

/// Runs scenarios; see the [module docs](super).
#[derive(Clone)]
pub struct Runner {
    config: RunConfig,
    checker: Option<Arc<dyn Checker>>,
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// A runner that judges each scenario with a [`StatsChecker`] and the
    /// [`WriteModel`] at the scenario's
    /// [staleness tolerance](Scenario::stale_tolerance).
    pub fn new(config: RunConfig) -> Self {
        Runner {
            config,
            checker: None,
        }
    }

    /// Judges every scenario with `checker` instead.
    pub fn with_checker(mut self, checker: impl Checker + 'static) -> Self {
        self.checker = Some(Arc::new(checker));
        self
    }

    /// The configuration.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// Runs `scenario`.
    pub async fn run(&self, scenario: &Scenario) -> Result<ScenarioResult> {
        self.run_with_progress(scenario, Arc::new(Progress::default()))
            .await
    }

    /// Runs `scenario`, counting operations in `progress` as they finish.
    pub async fn run_with_progress(
        &self,
        scenario: &Scenario,
        progress: Arc<Progress>,
    ) -> Result<ScenarioResult> {
        let seed = scenario_seed(self.config.seed, scenario.name());
        let unmet: Vec<String> = scenario
            .requirements()
            .iter()
            .filter(|r| self.config.unmet(r))
            .map(ToString::to_string)
            .collect();
        if !unmet.is_empty() {
            let why = format!("needs {}", unmet.join("; and "));
            return Ok(ScenarioResult::skipped_because(scenario, seed, why));
        }
        let ctx = ScenarioContext {
            seed,
            duration: self.config.duration,
            redis_url: self.config.redis_url.clone(),
            mongodb_url: self.config.mongodb_url.clone(),
            real: self.config.real,
        };
        let setup = (scenario.setup)(ctx).await.map_err(|e| match e {
            e @ ChaosError::Scenario { .. } => e,
            e => ChaosError::scenario(scenario.name(), "setup failed", Some(Box::new(e))),
        })?;
        let store_name = setup
            .processes
            .first()
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        let store_name = match setup.processes.len() {
            0 | 1 => store_name,
            n => format!("{n} x {store_name}"),
        };
        let workload = Workload::new(
            scenario
                .workload
                .clone()
                .stop(Stop::After(self.config.duration)),
        );
        let start = RunStart::now(&workload.config().clock);
        let steps = setup.schedule.into_sorted();
        let driver = tokio::spawn(async move {
            let mut executed = Vec::with_capacity(steps.len());
            for (planned, action) in steps {
                tokio::time::sleep_until(start.instant + planned).await;
                let label = action.label().to_string();
                let started = start.elapsed();
                let result = action.run().await;
                executed.push(ExecutedAction {
                    label,
                    planned,
                    started,
                    finished: start.elapsed(),
                    error: result.err().map(|e| error_chain(&e)),
                });
            }
            executed
        });
        let mut history = workload
            .run_from(&setup.processes, seed, start, None, &progress)
            .await;
        // Actions planned past the end of the run still run: a fault must
        // never be left in place.
        let actions = driver.await.map_err(|e| {
            ChaosError::scenario(
                scenario.name(),
                "fault schedule panicked",
                Some(Box::new(e)),
            )
        })?;
        if let Some(converge) = setup.converge {
            // Past its patience the stack is judged as it is.
            let _ = tokio::time::timeout(self.config.converge_patience, converge()).await;
        }
        let read_config = ReadBack::default()
            .hang_deadline(workload.config().hang_deadline)
            .patience(self.config.final_read_patience);
        read_back(&mut history, &setup.processes, start, read_config).await;
        let probes = setup
            .probes
            .into_iter()
            .map(|(name, probe)| (name, probe()))
            .collect();
        if let Some(cleanup) = setup.cleanup {
            let _ = tokio::time::timeout(self.config.converge_patience, cleanup()).await;
        }
        drop(setup.keep_alive);
        drop(setup.processes);

        let window = measured_window(&actions, setup.window, setup.settle);
        history.window = window;
        let mut verdict = match &self.checker {
            Some(checker) => checker.check(&history),
            None => StatsChecker::new()
                .with_model(WriteModel::new().stale_tolerance(scenario.tolerance()))
                .check(&history),
        };
        verdict.probes = probes;
        let evaluation = scenario.expected().evaluate(&verdict);
        let timeline = Timeline::of(&history, self.config.timeline_buckets);
        Ok(ScenarioResult {
            name: scenario.name().into(),
            description: scenario.description().into(),
            seed,
            status: Status::Ran,
            store: store_name,
            elapsed: history.elapsed,
            window,
            actions,
            verdict,
            evaluation,
            timeline,
            history: self.config.keep_history.then_some(history),
        })
    }

    /// Runs every scenario in turn, calling `on_start` before each with a
    /// fresh progress counter.
    pub async fn run_all(
        &self,
        scenarios: &[Scenario],
        mut on_start: impl FnMut(&Scenario, Arc<Progress>),
        mut on_done: impl FnMut(&ScenarioResult),
    ) -> Result<Vec<ScenarioResult>> {
        let mut results = Vec::with_capacity(scenarios.len());
        for scenario in scenarios {
            let progress = Arc::new(Progress::default());
            on_start(scenario, progress.clone());
            let result = self.run_with_progress(scenario, progress).await?;
            on_done(&result);
            results.push(result);
        }
        Ok(results)
    }
}

/// The fault window: from the first action's start to the last action's
/// end plus `settle`, widened to `explicit`.
fn measured_window(
    actions: &[ExecutedAction],
    explicit: Option<FaultWindow>,
    settle: Duration,
) -> Option<FaultWindow> {
    let from_actions = match (actions.first(), actions.last()) {
        (Some(first), Some(last)) => Some(FaultWindow::new(first.started, last.finished + settle)),
        _ => None,
    };
    match (from_actions, explicit) {
        (Some(a), Some(e)) => Some(FaultWindow::new(a.start.min(e.start), a.end.max(e.end))),
        (a, e) => a.or(e),
    }
}

fn error_chain(e: &ChaosError) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(started: u64, finished: u64) -> ExecutedAction {
        ExecutedAction {
            label: "a".into(),
            planned: Duration::from_millis(started),
            started: Duration::from_millis(started),
            finished: Duration::from_millis(finished),
            error: None,
        }
    }

    #[test]
    fn window_spans_actions_settle_and_explicit() {
        let ms = Duration::from_millis;
        assert_eq!(measured_window(&[], None, ms(5)), None);
        let w = measured_window(&[action(100, 101), action(300, 310)], None, ms(50)).unwrap();
        assert_eq!((w.start, w.end), (ms(100), ms(360)));
        let explicit = FaultWindow::new(ms(50), ms(200));
        let w = measured_window(&[action(100, 101)], Some(explicit), ms(0)).unwrap();
        assert_eq!((w.start, w.end), (ms(50), ms(200)));
        assert_eq!(measured_window(&[], Some(explicit), ms(0)), Some(explicit));
    }
}
