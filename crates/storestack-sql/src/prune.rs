//! The background task that deletes expired rows.
//!
//! Expired rows are invisible to every operation whether or not they were
//! deleted; pruning only reclaims space. The task holds the store weakly:
//! it ends when the last clone of the store is dropped (which also aborts
//! it mid-sleep), and it never keeps the pool alive.

use std::sync::Arc;
use std::time::Duration;

use crate::backend::Backend;
use crate::store::SqlStore;

/// Starts the prune task of `store`: every `every`, one
/// [`prune_expired`](SqlStore::prune_expired) pass.
pub(crate) fn spawn<B: Backend>(store: &SqlStore<B>, every: Duration) {
    let weak = Arc::downgrade(&store.inner);
    let task = tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(inner) = weak.upgrade() else { return };
            let store = SqlStore { inner };
            match store.prune_expired().await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::debug!(store = %storestack::Store::name(&store), rows = n, "pruned expired rows")
                }
                // Transient while the server is away; the next tick retries.
                Err(err) => {
                    tracing::warn!(store = %storestack::Store::name(&store), error = %err, "pruning expired rows failed")
                }
            }
        }
    });
    // Set once, right after the store was built.
    let _ = store.inner.prune_task.set(task.abort_handle());
}
