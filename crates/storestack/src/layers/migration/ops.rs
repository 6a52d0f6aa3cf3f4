//! The operations of [`Migration`] along each [`Route`]. The rules and
//! their reasons are in the [module docs](super).

use std::time::SystemTime;

use super::copy::CopyOutcome;
use super::observe;
use super::phase::{bucket_of_hash, key_hash, Phase, Route};
use super::Migration;
use crate::error::{Op, Result, StoreError};
use crate::redact::KeyHash;
use crate::store::{Record, Store};

impl<O: Store, N: Store> Migration<O, N> {
    /// `get` in `ReadNew`: new, else old, copying old's record to new.
    pub(super) async fn read_new(&self, key: &str) -> Result<Option<Record>> {
        if let Some(found) = self.new.get(key).await? {
            return Ok(Some(found));
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
            Route::Mirror => {
                self.new.set(key, record.clone()).await?;
                self.old.set(key, record).await
            }
            Route::Invalidate => {
                self.new.delete(key).await?;
                self.old.set(key, record).await?;
                self.new.delete(key).await.map(drop)
            }
            Route::ReadNew => {
                self.old.set(key, record.clone()).await?;
                self.new.set(key, record).await
            }
        }
    }

    pub(super) async fn create_routed(&self, key: &str, record: Record) -> Result<bool> {
        let hash = key_hash(key);
        let _g = self.locks.lock(hash).await;
        match self.route(hash, false) {
            Route::Old => self.old.create(key, record).await,
            Route::New => self.new.create(key, record).await,
            Route::Mirror => self.create_mirrored(key, record).await,
            Route::Invalidate => {
                self.new.delete(key).await?;
                let created = self.old.create(key, record).await?;
                self.new.delete(key).await?;
                Ok(created)
            }
            Route::ReadNew => {
                // The key exists if either store has it; old is written first.
                if !self.old.create(key, record.clone()).await? {
                    return Ok(false);
                }
                if self.new.create(key, record).await? {
                    return Ok(true);
                }
                // New holds a record old did not: undo our create in old.
                self.repairing(key, Op::Create, self.old.delete(key)).await?;
                Ok(false)
            }
        }
    }

    /// `create` in `WriteBoth`: old decides, new is written first.
    async fn create_mirrored(&self, key: &str, record: Record) -> Result<bool> {
        // A key live only in old must not be created anew in new.
        if self.old.get(key).await?.is_some() {
            return Ok(false);
        }
        let in_new = self.new.create(key, record.clone()).await?;
        let in_old = self.old.create(key, record.clone()).await?;
        match (in_new, in_old) {
            (true, true) | (false, false) => Ok(in_old),
            // New held a leftover of a failed write: replace it.
            (false, true) => {
                self.repairing(key, Op::Create, self.new.set(key, record))
                    .await?;
                Ok(true)
            }
            // Old got the key after our check: undo our create in new.
            (true, false) => {
                self.repairing(key, Op::Create, self.new.delete(key)).await?;
                Ok(false)
            }
        }
    }

    pub(super) async fn delete_routed(&self, key: &str) -> Result<bool> {
        let hash = key_hash(key);
        let _g = self.locks.lock(hash).await;
        match self.route(hash, true) {
            Route::Old => self.old.delete(key).await,
            Route::New => self.new.delete(key).await,
            Route::Mirror | Route::Invalidate => {
                self.new.delete(key).await?;
                let deleted = self.old.delete(key).await?;
                // Again, after old: removes a copy made in between.
                self.new.delete(key).await?;
                Ok(deleted)
            }
            Route::ReadNew => {
                let in_old = self.old.delete(key).await?;
                let in_new = self.new.delete(key).await?;
                Ok(in_old || in_new)
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
        match self.route(hash, false) {
            Route::Old => self.old.touch(key, expires_at).await,
            Route::New => self.new.touch(key, expires_at).await,
            Route::Mirror => {
                let in_new = self.new.touch(key, expires_at).await?;
                let in_old = self.old.touch(key, expires_at).await?;
                if in_old && !in_new {
                    // Again, after old: a copy made in between.
                    self.new.touch(key, expires_at).await?;
                }
                Ok(in_old)
            }
            Route::Invalidate => {
                self.new.delete(key).await?;
                let touched = self.old.touch(key, expires_at).await?;
                self.new.delete(key).await?;
                Ok(touched)
            }
            Route::ReadNew => {
                let in_old = self.old.touch(key, expires_at).await?;
                let in_new = self.new.touch(key, expires_at).await?;
                Ok(in_old || in_new)
            }
        }
    }

    /// The stores `clear` empties, in order: old is involved unless the
    /// migration is over, new unless it never received anything.
    pub(super) async fn clear_routed(&self) -> Result<()> {
        let state = self.handle.state();
        match state.phase {
            Phase::NewOnly => self.new.clear().await,
            Phase::OldOnly if state.high_water == 0 => self.old.clear().await,
            Phase::ReadNew => {
                self.old.clear().await?;
                self.new.clear().await
            }
            _ => {
                self.new.clear().await?;
                self.old.clear().await
            }
        }
    }

    /// Runs a repair step; a failure leaves the stores different, so it is
    /// counted and logged before it is returned.
    async fn repairing<T>(
        &self,
        key: &str,
        op: Op,
        step: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        step.await.map_err(|e: StoreError| {
            observe::repair_failed(self.handle.label(), op);
            tracing::warn!(migration = %self.handle.label(), key = %KeyHash::of(key), error = %e,
                "repair after a conflicting create failed; the stores may differ for this key");
            e.with_op(op)
        })
    }
}
