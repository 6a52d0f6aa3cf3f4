//! Copying one record from old to new without resurrecting a delete or
//! leaving a stale value: shared by the copy on read and the bulk
//! migrator.
//!
//! The protocol: `create` (insert-if-absent) the record read from old into
//! new, then read old again. If old still holds exactly that record, the
//! copy is current. If not, a writer or a delete ran in between: remove
//! the copy and read old once more; stop when old is empty (nothing to
//! copy) or go around with the record it now holds.
//!
//! Why that is enough: every writer of a migration writes new first and
//! old second, deletes and touches new once more after old, and removes
//! the key from new when a step fails. A `set` that reached new before our
//! `create` makes the create fail (its value is kept); one that reaches new
//! after overwrites the copy. A delete or touch whose last change to new
//! came before our `create` changed old before that, so our final read of
//! old sees it; one whose last change came after removes or re-touches
//! the copy. What is left in new is either nothing or what old holds.
//!
//! Within a process the stripe lock ([`KeyLocks`]) is held around the
//! whole copy and around every write of the same key, so no writer
//! interleaves at all and no reader ever sees a copy that is about to be
//! removed. Across processes, a copy of a just-deleted record can be
//! visible to readers of new for the time of one read of old and one
//! delete on new, and a copier that dies inside that window leaves the
//! copy in place (until the record's own expiry).

use tokio::sync::{Mutex, MutexGuard};

use super::observe;
use crate::clock::Clock;
use crate::error::{Op, Result};
use crate::redact::KeyHash;
use crate::store::{Record, Store};

/// Rounds of copy-and-check before giving up on a record that keeps
/// changing.
const MAX_ROUNDS: usize = 4;

/// Number of stripes of [`KeyLocks`].
const STRIPES: usize = 256;

/// Striped per-key locks: operations on one key within a process run one
/// at a time (across both stores), operations on different keys mostly do
/// not wait for each other.
pub(crate) struct KeyLocks {
    stripes: Box<[Mutex<()>]>,
}

impl KeyLocks {
    pub(crate) fn new() -> Self {
        KeyLocks {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Locks the stripe of a key, given its [`key_hash`](super::phase::key_hash).
    pub(crate) async fn lock(&self, hash: u64) -> MutexGuard<'_, ()> {
        // The low bits choose the percentage bucket; use the high ones.
        self.stripes[(hash >> 48) as usize % STRIPES].lock().await
    }
}

/// Whether two records are equal; cheap when both share one buffer (an
/// in-process store hands out clones of the same bytes).
fn same_record(a: &Record, b: &Record) -> bool {
    let same_buffer = a.value.as_ptr() == b.value.as_ptr() && a.value.len() == b.value.len();
    a.expires_at == b.expires_at && (same_buffer || a.value == b.value)
}

/// What [`Copier::copy_key`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CopyOutcome {
    /// New now holds this record, checked against old after the write.
    Copied(Record),
    /// New already held a record: left alone (a write of the application,
    /// newer than old's by construction).
    Existing,
    /// Old no longer holds the key: nothing copied.
    Gone,
    /// The record expired before it could be copied.
    Expired,
    /// Old kept changing: new is left without a copy; old's latest record.
    Unstable(Record),
}

/// The stores and settings of a copy.
pub(crate) struct Copier<'a> {
    pub(crate) old: &'a dyn Store,
    pub(crate) new: &'a dyn Store,
    pub(crate) clock: &'a dyn Clock,
    /// Metric label.
    pub(crate) label: &'a str,
    /// Read old again after the write (the protocol above); off only for
    /// offline migrations where nothing else writes.
    pub(crate) recheck: bool,
}

impl Copier<'_> {
    /// Copies `first`, just read from old at `key`, to new. On error, any
    /// copy of ours that may be in new unchecked has been removed (or the
    /// failure to remove it counted and logged).
    pub(crate) async fn copy_key(&self, key: &str, first: Record) -> Result<CopyOutcome> {
        let mut rec = first;
        for _ in 0..MAX_ROUNDS {
            if rec.is_expired_at(self.clock.now()) {
                return Ok(CopyOutcome::Expired);
            }
            let created = match self.new.create(key, rec.clone()).await {
                Ok(created) => created,
                Err(e) => {
                    // The create may have happened: do not leave it unchecked.
                    self.discard(key).await;
                    return Err(e);
                }
            };
            if !created {
                return Ok(CopyOutcome::Existing);
            }
            if !self.recheck {
                return Ok(CopyOutcome::Copied(rec));
            }
            let again = match self.old.get(key).await {
                Ok(again) => again,
                Err(e) => {
                    self.discard(key).await;
                    return Err(e);
                }
            };
            if again.as_ref().is_some_and(|again| same_record(again, &rec)) {
                return Ok(CopyOutcome::Copied(rec));
            }
            // Old changed or lost the key while we copied: the copy may be
            // stale or resurrect a delete.
            if let Err(e) = self.new.delete(key).await {
                self.repair_failed(key, &e);
                return Err(e);
            }
            match self.old.get(key).await? {
                None => return Ok(CopyOutcome::Gone),
                Some(latest) => rec = latest,
            }
        }
        Ok(CopyOutcome::Unstable(rec))
    }

    /// Removes a copy that could not be checked.
    async fn discard(&self, key: &str) {
        if let Err(e) = self.new.delete(key).await {
            self.repair_failed(key, &e);
        }
    }

    fn repair_failed(&self, key: &str, e: &crate::StoreError) {
        observe::repair_failed(self.label, Op::Delete);
        tracing::warn!(migration = %self.label, key = %KeyHash::of(key), error = %e,
            "could not remove an unchecked copy from the new store; it may be stale");
    }
}
