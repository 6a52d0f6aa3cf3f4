//! # storestack-chaos
//!
//! Runs named scenarios against a store stack, injects faults, records
//! every operation and checks that the stack keeps its invariants. The
//! binary (`cargo run -p storestack-chaos`) runs the embedded suite and
//! writes a report; the library lets users run scenarios against their own
//! stacks.
//!
//! The pipeline, one module each:
//!
//! 1. **Faults**: the fault-injection decorator of the core crate
//!    (`storestack::layers::fault`: refusals, hangs, latency, flapping,
//!    lost replies, corruption), [`proxy`] (a TCP fault proxy in front of
//!    a real server: down,
//!    reset_peer, blackhole, latency with jitter, bandwidth, slow_close) and
//!    [`process`] (a `redis-server` or `secantusd-rs` the suite owns: kill -9,
//!    SIGSTOP / SIGCONT, restart on the same port).
//! 2. **Workload** ([`workload`]): session-like, concurrent, deterministic
//!    for a seed; every written value is unique and names its writer.
//! 3. **History** ([`history`]): every operation's start, end, key, value
//!    written or read, and outcome (ok, error kind, hung past a deadline),
//!    split into phases before / during / after the fault window.
//! 4. **Checker** ([`checker`]): a [`Verdict`](checker::Verdict) with errors
//!    by kind, hangs, corrupt reads and latency percentiles per phase, plus
//!    lost / stale / resurrected counts from the
//!    [`WriteModel`](checker::WriteModel), which runs the testkit's history
//!    checker (`storestack_testkit::model`) on the history; [`invariants`]
//!    says what a scenario expects of it.
//! 5. **Scenarios** ([`scenario`], the catalogue in
//!    [`scenario::builtin`]): a stack, a workload, a fault schedule and
//!    invariants; the [`Runner`](scenario::Runner) runs one, lets the
//!    stack converge, reads every written key back, and judges it.
//! 6. **Report** ([`report`]): a terminal table, JSON, and an SVG picture
//!    per scenario.
//!
//! Every random choice derives from one seed ([`seed`]), printed at the
//! start of a run, so a run replays with `--seed`.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use storestack_chaos::scenario::{builtin, RunConfig, Runner};
//!
//! let runner = Runner::new(RunConfig::default().seed(7).duration(Duration::from_millis(300)));
//! let result = runner.run(&builtin::primary_killed()).await?;
//! assert!(result.passed(), "{:?}", result.evaluation);
//! let consistency = result.verdict.consistency.expect("the model ran");
//! assert_eq!((consistency.lost, consistency.stale, consistency.resurrected), (0, 0, 0));
//! # Ok::<_, storestack_chaos::ChaosError>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

pub mod checker;
pub mod error;
pub mod history;
pub mod invariants;
pub mod process;
pub mod proxy;
pub mod report;
pub mod scenario;
pub mod seed;
pub mod workload;

pub use error::{ChaosError, Result};
