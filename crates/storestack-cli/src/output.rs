//! What `storestack migrate` shows: a progress bar on a terminal, plain
//! periodic lines otherwise, and the final summary.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use storestack::layers::migration::bulk::{BulkReport, Progress, VerifyReport};

/// How often plain progress lines are printed when stderr is no terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Shows progress on stderr: an indicatif bar on a terminal, a line every
/// few seconds otherwise, nothing when quiet.
#[derive(Debug)]
pub(crate) struct Reporter {
    bar: ProgressBar,
    plain: bool,
    last_line: Mutex<Option<Instant>>,
}

impl Reporter {
    pub(crate) fn new(quiet: bool) -> Self {
        let terminal = !quiet && std::io::stderr().is_terminal();
        let bar = if terminal {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} keys  {msg}",
                )
                .expect("valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        } else {
            ProgressBar::hidden()
        };
        Reporter {
            bar,
            plain: !quiet && !terminal,
            last_line: Mutex::new(None),
        }
    }

    /// Takes one progress report (the migrator's sink).
    pub(crate) fn update(&self, p: &Progress) {
        if let Some(total) = p.total_estimate {
            // Records of a resumed page count twice: never shrink the bar
            // below the position.
            self.bar.set_length(total.max(p.counts.scanned));
        }
        self.bar.set_position(p.counts.scanned);
        self.bar.set_message(status(p));
        if self.plain && !p.done {
            let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
                *last = Some(Instant::now());
                let of = p
                    .total_estimate
                    .map(|t| format!("/{t}"))
                    .unwrap_or_default();
                eprintln!("progress: {}{of} keys, {}", p.counts.scanned, status(p));
            }
        }
    }

    /// Removes the bar (before the summary or an error is printed).
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `copied 10 · present 0 · expired 0 · failed 0 · 8000 keys/s · ETA 12s`.
fn status(p: &Progress) -> String {
    let c = &p.counts;
    let mut s = format!(
        "{} {} · present {} · expired {} · failed {} · {:.0} keys/s",
        if p.dry_run { "would copy" } else { "copied" },
        c.copied,
        c.skipped_existing,
        c.skipped_expired,
        c.failed,
        p.rate
    );
    if let Some(eta) = p.eta().filter(|_| !p.done) {
        let _ = write!(s, " · ETA {}", indicatif::HumanDuration(eta));
    }
    s
}

/// What the summary reports besides the migrator's own report.
#[derive(Debug, Clone)]
pub(crate) struct RunFacts {
    /// `from -> to`, redacted.
    pub(crate) route: String,
    /// Keys scanned by earlier runs of a resumed migration.
    pub(crate) resumed_after: Option<u64>,
    /// The whole run, verification included.
    pub(crate) elapsed: Duration,
}

/// The final summary (stdout), one `name  value` line per figure.
pub(crate) fn summary(report: &BulkReport, facts: &RunFacts) -> String {
    let p = &report.progress;
    let c = &p.counts;
    let mut out = String::new();
    let title = if p.dry_run {
        "dry run (nothing written)"
    } else {
        "migrated"
    };
    let _ = writeln!(out, "{title} {}", facts.route);
    let mut line = |name: &str, value: String| {
        let _ = writeln!(out, "  {name:<18} {value}");
    };
    line("scanned", c.scanned.to_string());
    line(
        if p.dry_run { "would copy" } else { "copied" },
        c.copied.to_string(),
    );
    line(
        "skipped-present",
        format!(
            "{} (already in the destination: written there by the application, or by an \
             interrupted run; left alone)",
            c.skipped_existing
        ),
    );
    line("skipped-expired", c.skipped_expired.to_string());
    line(
        "vanished",
        format!("{} (deleted from the source during the run)", c.vanished),
    );
    line(
        "raced",
        format!("{} (kept changing while copied; run again)", c.raced),
    );
    line("failed", c.failed.to_string());
    line(
        "verify",
        match &report.verify {
            Some(v) => verify_line(v),
            None if p.dry_run => "skipped (dry run)".to_owned(),
            None => "skipped (--no-verify)".to_owned(),
        },
    );
    let mut elapsed = format!("{:.1} s", facts.elapsed.as_secs_f64());
    if let Some(before) = facts.resumed_after {
        let _ = write!(
            elapsed,
            " (this run; resumed from a checkpoint after {before} keys)"
        );
    }
    line("elapsed", elapsed);
    line(
        "rate",
        format!(
            "{:.0} keys/s ({} keys in {:.1} s of copying)",
            p.rate,
            p.run_scanned,
            p.elapsed.as_secs_f64()
        ),
    );
    let _ = writeln!(
        out,
        "result: {}",
        if report.is_success() {
            "OK"
        } else {
            "INCOMPLETE"
        }
    );
    out
}

fn verify_line(v: &VerifyReport) -> String {
    let counts = if v.counts_match() {
        format!("{} live records in each store", v.old_len)
    } else {
        format!(
            "live records differ: {} in the source, {} in the destination",
            v.old_len, v.new_len
        )
    };
    if v.is_ok() {
        format!(
            "ok: {} of {} sampled records equal ({} gone from both); {counts}",
            v.matched, v.sampled, v.gone
        )
    } else {
        format!(
            "FAILED: of {} sampled, {} missing, {} values differ, {} expiries differ, \
             {} only in the destination; {counts} (sample seed {})",
            v.sampled, v.missing, v.value_mismatch, v.expiry_mismatch, v.unexpected, v.seed
        )
    }
}
