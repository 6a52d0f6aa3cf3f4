//! `storestack-chaos`: runs the chaos suite and prints its report.
//!
//! With no arguments it runs the embedded suite (memory stores, no server)
//! and writes `chaos-report/`; the real-backend scenarios run with
//! `--redis URL` or `--real` and are listed as skipped otherwise. The exit code is 0 when every scenario that
//! ran kept its invariants, 1 when one did not, 2 when the suite itself
//! could not run (bad arguments, a scenario that could not be set up).
//! With `--fail-on-skip`, a scenario skipped for a missing backend also
//! exits 1.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use storestack_chaos::report::SuiteReport;
use storestack_chaos::scenario::{self, RunConfig, Runner, Scenario, ScenarioResult, Status};
use storestack_chaos::workload::Progress;
use storestack_chaos::ChaosError;

/// Runs named fault scenarios against storestack stacks and checks that
/// they keep their invariants.
#[derive(Debug, Parser)]
#[command(name = "storestack-chaos", version)]
struct Cli {
    /// Run only this scenario (repeatable; `redis-*` names every scenario
    /// starting with `redis-`, `mongo-*` the MongoDB ones; see --list).
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Seed of every random choice (printed at start; default random).
    #[arg(long)]
    seed: Option<u64>,
    /// How long each scenario's workload runs, in seconds.
    #[arg(long, value_name = "SECS", default_value = "4", value_parser = parse_secs)]
    duration: Duration,
    /// Where to write report.json, report.txt and the pictures.
    #[arg(long, value_name = "DIR", default_value = "chaos-report")]
    out: PathBuf,
    /// Redis for the real-backend scenarios (redis://host:port).
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// MongoDB for the real-backend scenarios (mongodb://host:port).
    #[arg(long, value_name = "URL")]
    mongodb: Option<String>,
    /// Let the real-backend scenarios start their own servers
    /// (redis-server, secantusd-rs, each on a free port): needed by the
    /// process faults (kill, pause, restart empty), and used when no
    /// --redis / --mongodb is given.
    #[arg(long)]
    real: bool,
    /// Also write every operation of every scenario into report.json.
    #[arg(long)]
    keep_history: bool,
    /// Fail the run (exit 1) when a scenario is skipped for a missing
    /// backend, as CI must.
    #[arg(long)]
    fail_on_skip: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("storestack-chaos: {}", chain(&e));
            ExitCode::from(2)
        }
    }
}

/// A positive number of seconds, fractions allowed.
fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if secs.is_finite() && secs > 0.0 && secs <= 86_400.0 {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(format!("{s} is not between 0 and 86400 seconds"))
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

async fn run(cli: Cli) -> Result<bool, ChaosError> {
    if cli.list {
        for s in scenario::catalogue() {
            let needs = s
                .requirements()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>();
            let needs = if needs.is_empty() {
                String::new()
            } else {
                format!(" (needs {})", needs.join("; and "))
            };
            let opt_in = if s.is_opt_in() {
                " (runs only when named)"
            } else {
                ""
            };
            println!("{:<24} {}{needs}{opt_in}", s.name(), s.description());
        }
        return Ok(true);
    }
    let scenarios = scenario::select(scenario::catalogue(), &cli.scenarios)?;
    let seed = cli.seed.unwrap_or_else(storestack_chaos::seed::random);
    let duration = cli.duration;
    println!(
        "storestack-chaos: {} scenarios, {:.1}s each, seed {seed} (replay with --seed {seed})",
        scenarios.len(),
        duration.as_secs_f64()
    );
    let config = RunConfig::default()
        .seed(seed)
        .duration(duration)
        .redis_url(cli.redis)
        .mongodb_url(cli.mongodb)
        .real(cli.real)
        .keep_history(cli.keep_history);
    let runner = Runner::new(config);
    let started_at = SystemTime::now();
    let results = run_with_progress(&runner, &scenarios).await?;
    let report = SuiteReport::new(seed, duration, started_at, results);
    println!();
    print!("{}", report.table());
    let written = report.write(&cli.out)?;
    println!(
        "report: {} ({} and {} pictures alongside)",
        written.json.display(),
        written
            .table
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        written.pictures.len()
    );
    let skipped = report.scenarios.iter().filter(|s| s.skipped()).count();
    if cli.fail_on_skip && skipped > 0 {
        println!("--fail-on-skip: {skipped} scenarios were skipped");
        return Ok(false);
    }
    Ok(report.passed())
}

async fn run_with_progress(
    runner: &Runner,
    scenarios: &[Scenario],
) -> Result<Vec<ScenarioResult>, ChaosError> {
    let interactive = std::io::stderr().is_terminal();
    let style = ProgressStyle::with_template("{spinner} {prefix:<26} {elapsed:>4} {msg}")
        .expect("valid template");
    let width = scenarios.iter().map(|s| s.name().len()).max().unwrap_or(0);
    let mut results = Vec::with_capacity(scenarios.len());
    for s in scenarios {
        let progress = Arc::new(Progress::default());
        // Hidden while the scenario sets up (decorators may print their
        // seeds then), shown on a terminal once the workload runs.
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(style.clone());
        bar.set_prefix(s.name().to_string());
        let show = {
            let bar = bar.clone();
            move || {
                if interactive && bar.is_hidden() {
                    bar.set_draw_target(ProgressDrawTarget::stderr());
                    bar.enable_steady_tick(Duration::from_millis(100));
                }
            }
        };
        let ticker = {
            let bar = bar.clone();
            let progress = progress.clone();
            let show = show.clone();
            tokio::spawn(async move {
                loop {
                    if progress.ops() > 0 {
                        show();
                    }
                    bar.set_message(format!(
                        "{} ops, {} errors, {} hangs",
                        progress.ops(),
                        progress.errors(),
                        progress.hangs()
                    ));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        let result = runner.run_with_progress(s, progress).await;
        ticker.abort();
        show();
        let result = match result {
            Ok(r) => r,
            Err(e) => {
                bar.abandon_with_message("setup failed");
                return Err(e);
            }
        };
        let summary = match &result.status {
            Status::Skipped(why) => format!("SKIP ({why})"),
            Status::Ran => format!(
                "{} {} ops, {:.2}% available",
                result.verdict_label(),
                result.verdict.total.ops,
                result.verdict.availability()
            ),
        };
        bar.finish_with_message(summary.clone());
        if !interactive {
            eprintln!("{:<width$}  {summary}", s.name());
        }
        results.push(result);
    }
    Ok(results)
}
