//! The operations of [`Migration`] along each [`Route`]. The rules and
//! their reasons are in the [module docs](super).

use std::time::SystemTime;

use super::copy::CopyOutcome;
use super::observe;
use super::phase::{bucket_of_hash, key_hash, Phase, Route};
use super::Migration;
use crate::error::{Op, Result, StoreError};
use crate::redact::KeyHash;
use crate::store::{Condition, Record, Store, Versioned};

impl<O: Store, N: Store> Migration<O, N> {
    /// `get` in `ReadNew`: new, else old, copying old's record to new.
    pub(super) async fn read_new(&self, key: &str) -> Result<Option<Record>> {
        match self.new.get(key).await {
            Ok(Some(found)) => return Ok(Some(found)),
            Ok(None) => {}
            // Old holds everything new does (the invariant), so it can
            // serve while new is unreachable; no copy is attempted.
            Err(e) if e.is_transient() => {
                return self.old.get(key).await.map_err(|_| e);
            }
            Err(e) => return Err(e),
        }
        if !self.copy_on_read {
            return self.old.get(key).await;
        }
        let _g = self.locks.lock(key_hash(key)).await;
        let Some(first) = self.old.get(key).await? else {
            return Ok(None);
        };
        let label = self.handle.label();
        match self.copier().copy_key(key, first.clone()).await {
            Ok(CopyOutcome::Copied(rec)) => {
                observe::read_copy(label, "copied");
                Ok(Some(rec))
            }
            Ok(CopyOutcome::Existing) => {
                // Someone else wrote new since our miss: theirs is newer.
                observe::read_copy(label, "existing");
                match self.new.get(key).await? {
                    Some(found) => Ok(Some(found)),
                    None => self.old.get(key).await,
                }
            }
            Ok(CopyOutcome::Gone | CopyOutcome::Expired) => {
                observe::read_copy(label, "gone");
                Ok(None)
            }
            Ok(CopyOutcome::Unstable(latest)) => {
                observe::read_copy(label, "unstable");
                Ok(Some(latest))
            }
            Err(e) => {
                // The read itself succeeded; only the copy failed (and was
                // cleaned up). Serve what old held.
                observe::read_copy(label, "failed");
                tracing::debug!(migration = %label, key = %KeyHash::of(key), error = %e,
                    "copy on read failed");
                Ok(Some(first))
            }
        }
    }

    /// The route of a write, decided under the key's lock.
    fn route(&self, hash: u64, delete: bool) -> Route {
        let state = self.handle.state();
        let bucket = bucket_of_hash(hash);
        if delete {
            state.delete_route(bucket)
        } else {
            state.write_route(bucket)
        }
    }

    pub(super) async fn set_routed(&self, key: &str, record: Record) -> Result<()> {
        let hash = key_hash(key);
        let _g = self.locks.lock(hash).await;
        match self.route(hash, false) {
            Route::Old => self.old.set(key, record).await,
            Route::New => self.new.set(key, record).await,
            Route::Mirror | Route::ReadNew => {
                self.shadowed(key, Op::Set, self.new.set(key, record.clone()))
                    .await?;
                self.shadowed(key, Op::Set, self.old.set(key, record)).await
            }
            Route::Invalidate => {
                self.new.delete(key).await?;
                self.old.set(key, record).await?;
                self.new.delete(key).await.map(drop)
            }
        }
    }

    pub(super) async fn create_routed(&self, key: &str, record: Record) -> Result<bool> {
        let hash = key_hash(key);
        let _g = self.locks.lock(hash).await;
        match self.route(hash, false) {
            Route::Old => self.old.create(key, record).await,
            Route::New => self.new.create(key, record).await,
            route @ (Route::Mirror | Route::ReadNew) => {
                let in_new = self
                    .shadowed(key, Op::Create, self.new.create(key, record.clone()))
                    .await?;
                if !in_new {
                    // New holds the key. In `ReadNew` readers see it, so it
                    // exists. In `WriteBoth` old decides; a record in new
                    // that old lacks (left by a failed repair) is replaced.
                    if route == Route::ReadNew || self.old.get(key).await?.is_some() {
                        return Ok(false);
                    }
                    self.shadowed(key, Op::Create, self.new.set(key, record.clone()))
                        .await?;
                }
                // Old decides: a key live only in old is not created anew.
                let in_old = self
                    .shadowed(key, Op::Create, self.old.create(key, record))
                    .await?;
                if !in_old {
                    self.unshadow(key, Op::Create).await?;
                }
                Ok(in_old)
            }
            Route::Invalidate => {
                self.new.delete(key).await?;
                let created = self.old.create(key, record).await?;
                self.new.delete(key).await?;
                Ok(created)
            }
        }
    }

    /// `get_versioned` reads the store that decides conditional writes:
    /// old until `NewOnly`.
    pub(super) async fn get_versioned_routed(&self, key: &str) -> Result<Option<Versioned>> {
        match self.handle.phase() {
            Phase::NewOnly => self.new.get_versioned(key).await,
            _ => self.old.get_versioned(key).await,
        }
    }

    /// `set_if`: old decides until `NewOnly`. In a write-both route new is
    /// written first, only where it already holds the key (a miss in new
    /// is safe), then old under the condition; if old refuses, the copy in
    /// new is removed, as after a failed step.
    pub(super) async fn set_if_routed(
        &self,
        key: &str,
        record: Record,
        condition: Condition,
    ) -> Result<bool> {
        let hash = key_hash(key);
        let _g = self.locks.lock(hash).await;
        match self.route(hash, false) {
            Route::Old => self.old.set_if(key, record, condition).await,
            Route::New => self.new.set_if(key, record, condition).await,
            Route::Mirror | Route::ReadNew => {
                let step = self.new.set_if(key, record.clone(), Condition::Exists);
                self.shadowed(key, Op::SetIf, step).await?;
                let wrote = self
                    .shadowed(key, Op::SetIf, self.old.set_if(key, record, condition))
                    .await?;
                if !wrote {
                    self.unshadow(key, Op::SetIf).await?;
                }
                Ok(wrote)
            }
            Route::Invalidate => {
                self.new.delete(key).await?;
                let wrote = self.old.set_if(key, record, condition).await?;
                self.new.delete(key).await?;
                Ok(wrote)
            }
        }
    }

    pub(super) async fn delete_routed(&self, key: &str) -> Result<bool> {
        let hash = key_hash(key);
        let _g = self.locks.lock(hash).await;
        let route = self.route(hash, true);
        match route {
            Route::Old => self.old.delete(key).await,
            Route::New => {
                let deleted = self.new.delete(key).await?;
                // Best effort: an instance still in `ReadNew` while the
                // fleet switches must not find the key in old and copy it
                // back.
                if let Err(e) = self.old.delete(key).await {
                    tracing::debug!(migration = %self.handle.label(), key = %KeyHash::of(key),
                        error = %e, "new-only delete could not clear the old store");
                }
                Ok(deleted)
            }
            Route::Mirror | Route::Invalidate | Route::ReadNew => {
                let in_new = self.new.delete(key).await?;
                let in_old = self.old.delete(key).await?;
                // Again, after old: removes a copy made in between.
                self.new.delete(key).await?;
                Ok(in_old || (route == Route::ReadNew && in_new))
            }
        }
    }

    pub(super) async fn touch_routed(
        &self,
        key: &str,
        expires_at: Option<SystemTime>,
    ) -> Result<bool> {
        let hash = key_hash(key);
        let _g = self.locks.lock(hash).await;
        let route = self.route(hash, false);
        match route {
            Route::Old => self.old.touch(key, expires_at).await,
            Route::New => self.new.touch(key, expires_at).await,
            Route::Mirror | Route::ReadNew => {
                let in_new = self
                    .shadowed(key, Op::Touch, self.new.touch(key, expires_at))
                    .await?;
                let in_old = self
                    .shadowed(key, Op::Touch, self.old.touch(key, expires_at))
                    .await?;
                if in_old && !in_new {
                    // Again, after old: a copy made in between.
                    self.shadowed(key, Op::Touch, self.new.touch(key, expires_at))
                        .await?;
                }
                Ok(in_old || (route == Route::ReadNew && in_new))
            }
            Route::Invalidate => {
                self.new.delete(key).await?;
                let touched = self.old.touch(key, expires_at).await?;
                self.new.delete(key).await?;
                Ok(touched)
            }
        }
    }

    /// The stores `clear` empties: old unless the migration is over, new
    /// unless it never received anything; new first.
    pub(super) async fn clear_routed(&self) -> Result<()> {
        let state = self.handle.state();
        match state.phase {
            Phase::NewOnly => self.new.clear().await,
            Phase::OldOnly if state.high_water == 0 => self.old.clear().await,
            _ => {
                self.new.clear().await?;
                self.old.clear().await
            }
        }
    }

    /// Runs one step of a write to both stores. If it fails, its outcome
    /// is unknown and the two stores may now differ: the key is removed
    /// from new (a miss in new is always safe before `NewOnly`) before the
    /// error is returned.
    async fn shadowed<T>(
        &self,
        key: &str,
        op: Op,
        step: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        match step.await {
            Ok(out) => Ok(out),
            Err(e) => {
                // The step's error is the one to report, not the repair's.
                let _ = self.unshadow(key, op).await;
                Err(e)
            }
        }
    }

    /// Removes the key from new after a failed or refused write to both
    /// stores. A failure is counted and logged: the stores may then differ.
    async fn unshadow(&self, key: &str, op: Op) -> Result<()> {
        self.new.delete(key).await.map(drop).map_err(|e: StoreError| {
            observe::repair_failed(self.handle.label(), op);
            tracing::warn!(migration = %self.handle.label(), key = %KeyHash::of(key), error = %e,
                "could not remove a key from the new store after a failed write; the stores may differ for it");
            e.with_op(op)
        })
    }
}
