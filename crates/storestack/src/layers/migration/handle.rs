//! The runtime handle that switches a migration's phase.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

use super::observe;
use super::phase::{Phase, PhaseState};

/// A switch [`MigrationHandle::set`] refuses because it would lose data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PhaseError {
    /// Leaving `NewOnly` goes back to an old store that missed every write
    /// and delete since.
    #[error("leaving new-only would serve an old store that missed every write since (use force)")]
    LeavingNewOnly,
    /// `NewOnly` can only follow `ReadNew` (after a verified bulk
    /// migration): from earlier phases the new store is incomplete.
    #[error("new-only must follow read-new, once the bulk migration has verified (use force)")]
    NewOnlyTooEarly,
}

struct HandleInner {
    state: AtomicU32,
    watch: watch::Sender<PhaseState>,
    label: String,
    switch: parking_lot::Mutex<()>,
}

/// The runtime switch of a [`Migration`](super::Migration): cheap to clone,
/// every clone controls the same migration(s).
///
/// Every change of phase emits a `tracing` info event, increments
/// `storestack_migration_phase_changes_total` and sets the
/// `storestack_migration_phase` and `storestack_migration_write_percent`
/// gauges (label `migration` = the handle's label); [`subscribe`](Self::subscribe)
/// gives a channel of changes.
///
/// ```
/// use storestack::layers::migration::{MigrationHandle, Phase, PhaseError};
///
/// let handle = MigrationHandle::new(Phase::OldOnly).labeled("sessions");
/// handle.set(Phase::write_both(10)).unwrap();
/// handle.set(Phase::ReadNew).unwrap();
/// handle.set(Phase::write_both(50)).unwrap(); // back: allowed
/// assert_eq!(handle.state().high_water, 100);
/// assert_eq!(handle.set(Phase::NewOnly), Err(PhaseError::NewOnlyTooEarly));
/// ```
#[derive(Clone)]
pub struct MigrationHandle {
    inner: Arc<HandleInner>,
}

impl fmt::Debug for MigrationHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MigrationHandle")
            .field("label", &self.inner.label)
            .field("state", &self.state())
            .finish()
    }
}

impl Default for MigrationHandle {
    fn default() -> Self {
        Self::new(Phase::OldOnly)
    }
}

impl MigrationHandle {
    /// A handle starting in `phase`, labeled `migration`. The high-water
    /// mark starts at what `phase` implies; when processes restart in the
    /// middle of a migration, restore it with [`raise_high_water`](Self::raise_high_water).
    pub fn new(phase: Phase) -> Self {
        let phase = phase.normalized();
        let state = PhaseState {
            phase,
            high_water: phase.write_percent(),
        };
        Self::from_parts(state, "migration".to_owned())
    }

    fn from_parts(state: PhaseState, label: String) -> Self {
        observe::phase_gauges(&label, state.phase);
        MigrationHandle {
            inner: Arc::new(HandleInner {
                state: AtomicU32::new(state.pack()),
                watch: watch::Sender::new(state),
                label,
                switch: parking_lot::Mutex::new(()),
            }),
        }
    }

    /// Sets the label of this handle's metrics and events. Call it before
    /// sharing the handle: clones made earlier are not relabeled and no
    /// longer control the same migrations as the returned handle.
    pub fn labeled(self, label: impl Into<String>) -> Self {
        Self::from_parts(self.state(), label.into())
    }

    /// The label of metrics and events.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.state().phase
    }

    /// The current phase and high-water mark, read atomically.
    pub fn state(&self) -> PhaseState {
        PhaseState::unpack(self.inner.state.load(Ordering::Acquire))
    }

    /// Switches to `phase` (percentages above 100 count as 100) and returns
    /// the previous one. Refuses the two switches that lose data (see
    /// [`PhaseError`]); [`force`](Self::force) does them anyway.
    pub fn set(&self, phase: Phase) -> Result<Phase, PhaseError> {
        let phase = phase.normalized();
        let _g = self.inner.switch.lock();
        let prev = self.state();
        if let Some(err) = refusal(prev.phase, phase) {
            return Err(err);
        }
        Ok(self.apply(prev, phase))
    }

    /// Switches to `phase` whatever the current one, and warns when the
    /// switch is one [`set`](Self::set) refuses. Returns the previous phase.
    pub fn force(&self, phase: Phase) -> Phase {
        let phase = phase.normalized();
        let _g = self.inner.switch.lock();
        let prev = self.state();
        if let Some(err) = refusal(prev.phase, phase) {
            tracing::warn!(migration = %self.inner.label, from = %prev.phase, to = %phase,
                reason = %err, "forced migration phase change");
        }
        self.apply(prev, phase)
    }

    /// Raises the high-water mark to at least `percent` (a restarted
    /// process that joins a migration already past that percentage).
    pub fn raise_high_water(&self, percent: u8) {
        let _g = self.inner.switch.lock();
        let mut s = self.state();
        s.high_water = s.high_water.max(percent.min(100));
        self.store(s);
    }

    /// Lowers the high-water mark to what the current phase implies. Only
    /// correct once the new store holds no copies of keys above that
    /// percentage (for instance after clearing it in `OldOnly`).
    pub fn reset_high_water(&self) {
        let _g = self.inner.switch.lock();
        let mut s = self.state();
        s.high_water = s.phase.write_percent();
        self.store(s);
    }

    /// A channel that sees every change of state.
    pub fn subscribe(&self) -> watch::Receiver<PhaseState> {
        self.inner.watch.subscribe()
    }

    fn store(&self, s: PhaseState) {
        self.inner.state.store(s.pack(), Ordering::Release);
        self.inner.watch.send_replace(s);
    }

    /// Moves from `prev` to `phase` (the switch lock is held).
    fn apply(&self, prev: PhaseState, phase: Phase) -> Phase {
        if prev.phase == phase {
            return prev.phase;
        }
        let next = PhaseState {
            phase,
            high_water: prev.high_water.max(phase.write_percent()),
        };
        self.store(next);
        tracing::info!(migration = %self.inner.label, from = %prev.phase, to = %phase,
            high_water = next.high_water, "migration phase changed");
        observe::phase_changed(&self.inner.label, prev.phase, phase);
        prev.phase
    }
}

/// Why `set` refuses to go from `from` to `to`, if it does.
pub(crate) fn refusal(from: Phase, to: Phase) -> Option<PhaseError> {
    match (from, to) {
        (Phase::NewOnly, Phase::NewOnly) | (Phase::ReadNew, Phase::NewOnly) => None,
        (Phase::NewOnly, _) => Some(PhaseError::LeavingNewOnly),
        (_, Phase::NewOnly) => Some(PhaseError::NewOnlyTooEarly),
        _ => None,
    }
}
