//! The terminal table.

use std::fmt::Write;

use super::{fmt_ms, SuiteReport};
use crate::checker::PhaseStats;
use crate::history::Phase;
use crate::invariants::Check;
use crate::scenario::{ScenarioResult, Status};

const HEADERS: [&str; 12] = [
    "scenario",
    "verdict",
    "ops",
    "avail %",
    "lost",
    "stale",
    "resurr.",
    "errors",
    "hangs",
    "before p50/p99/max ms",
    "during p50/p99/max ms",
    "after p50/p99/max ms",
];

/// Violations shown per scenario (the JSON report has more).
const EXAMPLES: usize = 5;

/// Numeric columns are right-aligned.
const NUMERIC: [bool; 12] = [
    false, false, true, true, true, true, true, true, true, false, false, false,
];

fn verdict(s: &ScenarioResult) -> &'static str {
    s.verdict_label()
}

fn latency(stats: Option<&PhaseStats>) -> String {
    match stats {
        Some(p) if p.latency.count > 0 => format!(
            "{}/{}/{}",
            fmt_ms(p.latency.p50),
            fmt_ms(p.latency.p99),
            fmt_ms(p.latency.max)
        ),
        _ => "-".into(),
    }
}

fn row(s: &ScenarioResult) -> Vec<String> {
    let mut row = vec![s.name.clone(), verdict(s).into()];
    if s.skipped() {
        row.extend(std::iter::repeat_n("-".to_string(), HEADERS.len() - 2));
        return row;
    }
    let v = &s.verdict;
    let model = |pick: fn(&crate::checker::Consistency) -> u64| {
        v.consistency
            .as_ref()
            .map_or("-".to_string(), |c| pick(c).to_string())
    };
    row.extend([
        v.total.ops.to_string(),
        format!("{:.2}", v.availability()),
        model(|c| c.lost),
        model(|c| c.stale),
        model(|c| c.resurrected),
        v.total.error_count().to_string(),
        v.total.hangs.to_string(),
    ]);
    for phase in Phase::ALL {
        row.push(latency(v.phases.get(&phase)));
    }
    row
}

pub(super) fn render(report: &SuiteReport) -> String {
    let rows: Vec<Vec<String>> = report.scenarios.iter().map(row).collect();
    let mut widths: Vec<usize> = HEADERS.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            if NUMERIC[i] {
                let _ = write!(text, "{cell:>w$}", w = widths[i]);
            } else {
                let _ = write!(text, "{cell:<w$}", w = widths[i]);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    let headers: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
    line(&mut out, &headers);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&mut out, &rule);
    for r in &rows {
        line(&mut out, r);
    }
    out.push('\n');
    for s in &report.scenarios {
        notes(&mut out, s);
    }
    let ran = report.scenarios.iter().filter(|s| !s.skipped()).count();
    let failed = report
        .scenarios
        .iter()
        .filter(|s| !s.skipped() && !s.passed())
        .count();
    let skipped = report.scenarios.len() - ran;
    let _ = writeln!(
        out,
        "{} scenarios: {} passed, {failed} failed, {skipped} skipped. seed {} (replay: --seed {})",
        report.scenarios.len(),
        ran - failed,
        report.seed,
        report.seed
    );
    out
}

fn notes(out: &mut String, s: &ScenarioResult) {
    let _ = writeln!(out, "{} [{}]: {}", s.name, verdict(s), s.description);
    if let Status::Skipped(why) = &s.status {
        let _ = writeln!(out, "  skipped: {why}");
        return;
    }
    let _ = writeln!(out, "  stack: {}", s.store);
    if !s.actions.is_empty() {
        let faults: Vec<String> = s
            .actions
            .iter()
            .map(|a| {
                let mut f = format!("{:.2}s {}", a.started.as_secs_f64(), a.label);
                if let Some(e) = &a.error {
                    let _ = write!(f, " (FAILED: {e})");
                }
                f
            })
            .collect();
        let _ = writeln!(out, "  faults: {}", faults.join("; "));
    }
    if let Some(w) = s.window {
        let _ = writeln!(
            out,
            "  fault window: {:.2}s to {:.2}s",
            w.start.as_secs_f64(),
            w.end.as_secs_f64()
        );
    }
    if !s.verdict.total.errors.is_empty() {
        let errors: Vec<String> = s
            .verdict
            .total
            .errors
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        let _ = writeln!(out, "  errors by kind: {}", errors.join(", "));
    }
    for (expect, check) in &s.evaluation.0 {
        match check {
            Check::Fail(why) => {
                let _ = writeln!(out, "  VIOLATED: {expect} (measured: {why})");
            }
            Check::Unchecked(why) => {
                let _ = writeln!(out, "  unchecked: {expect} ({why})");
            }
            Check::Limit(why) => {
                let _ = writeln!(out, "  {expect} showed (measured: {why})");
            }
            Check::Pass => {}
        }
    }
    if let Some(c) = &s.verdict.consistency {
        for example in c.examples.iter().take(EXAMPLES) {
            let _ = writeln!(out, "  example: {example}");
        }
        if c.keys_excluded > 0 {
            let _ = writeln!(
                out,
                "  {} keys left out of the consistency check (records that may expire during the run)",
                c.keys_excluded
            );
        }
    }
}
