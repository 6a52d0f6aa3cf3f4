//! Metric names of the migration, defined once (the table is in the
//! [module docs](super)).

use super::phase::Phase;

/// Counter: phase changes; labels `migration`, `from`, `to`.
pub(crate) const PHASE_CHANGES: &str = "storestack_migration_phase_changes_total";
/// Gauge: the current phase (0 old only, 1 write both, 2 read new, 3 new
/// only); label `migration`.
pub(crate) const PHASE: &str = "storestack_migration_phase";
/// Gauge: the share of keys written to the new store; label `migration`.
pub(crate) const WRITE_PERCENT: &str = "storestack_migration_write_percent";
/// Counter: copies on read by outcome; labels `migration`, `outcome`.
pub(crate) const READ_COPIES: &str = "storestack_migration_read_copies_total";
/// Counter: repairs that failed and may leave the two stores different;
/// labels `migration`, `op`.
pub(crate) const REPAIR_FAILURES: &str = "storestack_migration_repair_failures_total";

pub(super) fn phase_gauges(label: &str, phase: Phase) {
    metrics::gauge!(PHASE, "migration" => label.to_owned()).set(f64::from(phase.ordinal()));
    metrics::gauge!(WRITE_PERCENT, "migration" => label.to_owned())
        .set(f64::from(phase.write_percent()));
}

pub(super) fn phase_changed(label: &str, from: Phase, to: Phase) {
    metrics::counter!(PHASE_CHANGES,
        "migration" => label.to_owned(),
        "from" => phase_name(from),
        "to" => phase_name(to))
    .increment(1);
    phase_gauges(label, to);
}

pub(super) fn read_copy(label: &str, outcome: &'static str) {
    metrics::counter!(READ_COPIES, "migration" => label.to_owned(), "outcome" => outcome)
        .increment(1);
}

pub(super) fn repair_failed(label: &str, op: crate::Op) {
    metrics::counter!(REPAIR_FAILURES, "migration" => label.to_owned(), "op" => op.as_str())
        .increment(1);
}

/// The phase without its percentage (a bounded label value).
fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::OldOnly => "old-only",
        Phase::WriteBoth { .. } => "write-both",
        Phase::ReadNew => "read-new",
        Phase::NewOnly => "new-only",
    }
}
