//! Where a bulk migration remembers how far it got: the [`Checkpoint`]
//! trait, [`MemoryCheckpoint`], and [`FileCheckpoint`](super::FileCheckpoint)
//! (atomic file replacement, in its own module).

use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::progress::Counts;
use crate::error::Result;
use crate::store::ScanCursor;

/// The state a bulk migration saves after every completed page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointState {
    /// Which migration this is (refuses to resume another one's state).
    pub label: String,
    /// Where the next page of the scan of old starts.
    pub cursor: ScanCursor,
    /// Whether the copy pass is complete.
    pub done: bool,
    /// Counts so far.
    pub counts: Counts,
}

impl CheckpointState {
    /// The state of a migration that has not started.
    pub fn new(label: impl Into<String>) -> Self {
        CheckpointState {
            label: label.into(),
            cursor: ScanCursor::start(),
            done: false,
            counts: Counts::default(),
        }
    }
}

/// Stores a [`CheckpointState`]. A save must be atomic: after a crash,
/// `load` returns the previous or the new state, never a mix.
#[async_trait]
pub trait Checkpoint: Send + Sync {
    /// The saved state, if any.
    async fn load(&self) -> Result<Option<CheckpointState>>;
    /// Replaces the saved state.
    async fn save(&self, state: &CheckpointState) -> Result<()>;
}

fn _assert_object_safe(_: &dyn Checkpoint) {}

/// A checkpoint in memory (tests, and runs that need not survive the
/// process). Clones share the state.
#[derive(Debug, Clone, Default)]
pub struct MemoryCheckpoint {
    state: Arc<Mutex<Option<CheckpointState>>>,
}

impl MemoryCheckpoint {
    /// An empty checkpoint.
    pub fn new() -> Self {
        Self::default()
    }

    /// The saved state.
    pub fn state(&self) -> Option<CheckpointState> {
        self.state.lock().clone()
    }
}

#[async_trait]
impl Checkpoint for MemoryCheckpoint {
    async fn load(&self) -> Result<Option<CheckpointState>> {
        Ok(self.state())
    }

    async fn save(&self, state: &CheckpointState) -> Result<()> {
        *self.state.lock() = Some(state.clone());
        Ok(())
    }
}
