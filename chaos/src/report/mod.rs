//! The suite's report: a terminal table ([`SuiteReport::table`]), a JSON
//! file (`report.json`, [`SuiteReport::to_json`] / [`SuiteReport::from_json`])
//! and an SVG picture per scenario (`<scenario>.svg`: latency p50 / p99 and
//! error rate over time, the fault window shaded), all written into one
//! output directory by [`SuiteReport::write`].
//!
//! The pictures use plotters' SVG backend alone: text is emitted as SVG
//! `<text>` and laid out by the viewer, so no system font library is
//! needed to draw them.

mod svg;
mod table;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::{ChaosError, Result};
use crate::scenario::ScenarioResult;

pub use svg::render_svg;

/// Everything a suite run found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SuiteReport {
    /// The suite's seed (`--seed` replays it).
    pub seed: u64,
    /// Each scenario's workload duration.
    pub duration: Duration,
    /// When the run started.
    pub started_at: SystemTime,
    /// One result per scenario, in run order.
    pub scenarios: Vec<ScenarioResult>,
}

/// The files [`SuiteReport::write`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The JSON report.
    pub json: PathBuf,
    /// The table as text.
    pub table: PathBuf,
    /// One picture per scenario that ran.
    pub pictures: Vec<PathBuf>,
}

impl SuiteReport {
    /// A report of `scenarios`.
    pub fn new(
        seed: u64,
        duration: Duration,
        started_at: SystemTime,
        scenarios: Vec<ScenarioResult>,
    ) -> Self {
        SuiteReport {
            seed,
            duration,
            started_at,
            scenarios,
        }
    }

    /// Whether no scenario that ran failed (skipped ones do not fail the
    /// suite; they are listed).
    pub fn passed(&self) -> bool {
        self.scenarios
            .iter()
            .filter(|s| !s.skipped())
            .all(ScenarioResult::passed)
    }

    /// The terminal table with the notes under it (failures, unchecked
    /// invariants, skipped scenarios, fault actions).
    pub fn table(&self) -> String {
        table::render(self)
    }

    /// The JSON report.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Reads a JSON report back.
    pub fn from_json(json: &str) -> Result<Self> {
        Ok(serde_json::from_str(json)?)
    }

    /// Writes `report.json`, `report.txt` and one `<scenario>.svg` per
    /// scenario that ran into `dir` (created if missing).
    pub fn write(&self, dir: &Path) -> Result<Written> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ChaosError::io(format!("cannot create {}", dir.display()), e))?;
        let write = |name: &str, contents: &str| {
            let path = dir.join(name);
            std::fs::write(&path, contents)
                .map_err(|e| ChaosError::io(format!("cannot write {}", path.display()), e))?;
            Ok::<_, ChaosError>(path)
        };
        let json = write("report.json", &self.to_json()?)?;
        let table = write("report.txt", &self.table())?;
        let mut pictures = Vec::new();
        for scenario in self.scenarios.iter().filter(|s| !s.skipped()) {
            let name = format!("{}.svg", file_stem(&scenario.name));
            pictures.push(write(&name, &render_svg(scenario)?)?);
        }
        Ok(Written {
            json,
            table,
            pictures,
        })
    }
}

/// A scenario name as a file name: anything but `[A-Za-z0-9_-]` becomes `_`.
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Milliseconds with a precision that suits the size.
pub(crate) fn fmt_ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms == 0.0 {
        "0".into()
    } else if ms < 1.0 {
        format!("{ms:.3}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

#[cfg(test)]
mod tests;
