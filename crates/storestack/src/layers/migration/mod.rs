//! Moving live records from one store to another without logging anyone
//! out.
//!
//! [`Migration`] wraps an *old* and a *new* store and routes every
//! operation by a [`Phase`] that a [`MigrationHandle`] switches at runtime
//! (and back), without a restart. The [`bulk`] migrator copies the records
//! the application does not touch, resumably, and verifies the result.
//!
//! # Phases
//!
//! | phase | `get` | `set`, `create`, `touch` | `delete` | `len`, `scan` |
//! |---|---|---|---|---|
//! | `OldOnly` | old | old | old | old |
//! | `WriteBoth { percent }` | old | [bucket] < percent: new, then old; others: old | new, old, new | old |
//! | `ReadNew` | new, else old (copied to new) | new, then old | new, old, new | old |
//! | `NewOnly` | new | new | new, then old (best effort) | new |
//!
//! A key's [bucket] is a stable hash of the key (SipHash-1-3 with fixed
//! keys, modulo 100): the same key always gets the same answer, in every
//! process and after restarts, so one key's reads and writes never split
//! between stores, and raising the percentage only adds keys.
//!
//! A migration goes: deploy in `OldOnly` (nothing changes); `WriteBoth`
//! with a growing percentage (the new store takes a growing share of the
//! writes: an outage of new fails only the writes of that share); at
//! `WriteBoth { percent: 100 }` or in `ReadNew`, run the bulk migrator
//! until it verifies; `ReadNew` (new serves reads, old catches misses);
//! `NewOnly`; finally remove the decorator and the old store. Every step
//! among the first three phases can be undone; `NewOnly` is the point of no
//! return (old stops receiving writes, so the handle refuses to leave it
//! unless forced).
//!
//! # Order of the two writes, and failures
//!
//! One invariant carries every phase switch, in both directions: **new
//! never holds a record that old does not** (it holds old's record, or
//! nothing). A miss in new is always safe before `NewOnly`: `ReadNew`
//! falls back to old, and the bulk migrator fills it. So:
//!
//! * A write to both stores goes to new first, then to old, and is
//!   acknowledged only when both succeeded.
//! * When either step fails (its outcome unknown: it may have been
//!   applied), the key is removed from new before the error is returned.
//!   Old then holds the previous record or, if its write was applied
//!   after all, the new one; either way both phases agree on what a reader
//!   sees next, so switching back and forth never shows a write that then
//!   disappears, or an old value after a newer one. If that removal fails
//!   too (both stores failing at once), the key may differ between the
//!   stores: `storestack_migration_repair_failures_total` counts it and a
//!   warning names its [`KeyHash`](crate::redact::KeyHash).
//! * In `ReadNew`, a write to both stores is visible in new for the
//!   moment between its two steps; if the second fails, readers may have
//!   seen the value that is then removed again.
//! * The price is availability: in a write-both phase an outage of either
//!   store fails the writes of the keys written to both (put Retry or
//!   Fallback around a store if that matters more). The percentage bounds
//!   how many keys depend on the new store.
//!
//! `create` keeps insert-if-absent across both stores: it creates in new,
//! then in old, and old decides: a key live only in old is never created
//! anew in new (the create in new is undone). A create that finds the key
//! in new stops there in `ReadNew` (readers see it); in `WriteBoth` it asks
//! old, and replaces a record old does not hold (left by a failed repair).
//!
//! `set_if` (a conditional write) is decided by old until `NewOnly`, by
//! new after; `get_versioned` reads the deciding store, so the version a
//! caller holds is always compared by the store that read it. In a
//! write-both route, new is written first but only where it already holds
//! the key (`set_if` with `Condition::Exists`: a conditional write never
//! creates a record in new), then old under the caller's condition; if old
//! refuses, the key is removed from new, as after a failed step. A session
//! saved with `Condition::Exists` after a logout therefore stays deleted
//! in every phase. In `ReadNew` the value written to new may be seen by
//! readers for the moment before old refuses, as for any write to both.
//!
//! Deletes go to both stores in every write-both phase and in `ReadNew`,
//! whatever the key's bucket. New is deleted once more after old, and a
//! touch that found no copy in new is repeated there after old: that is
//! what makes the copy protocol below safe against a concurrent copier.
//!
//! # Reads in `ReadNew`
//!
//! Because of the invariant, old stays complete and current until
//! `NewOnly`: in `ReadNew`, new serves reads (that is what the phase is
//! for: load and warm it), and when new fails with a transient error the
//! read is served from old instead (the error is returned only if old
//! fails too). `len` and `scan` read old until `NewOnly`; a scan whose
//! pages span the switch to `NewOnly` gets a cursor of the other store
//! and must restart.
//!
//! # Copy on read
//!
//! In `ReadNew`, a miss in new reads old; a record found there is copied
//! to new with its absolute expiry, so it keeps its *remaining* lifetime
//! (never immortal, never a fresh TTL). The copy never resurrects a
//! concurrent delete or leaves a stale value: it uses `create` on new, then
//! reads old again and removes the copy if old changed meanwhile (details
//! in the copy module's source). Within one process, a per-key lock (256
//! stripes) serializes the copy with every write of that key, so there is
//! no window at all. Across processes (another instance, or the bulk
//! migrator run as a separate program), a copy of a just-deleted record
//! can be readable for one round trip to old and one to new before it is
//! removed, and a copier that crashes in that window leaves it until the
//! record's own expiry. [`copy_on_read(false)`](Migration::copy_on_read)
//! serves old's record without copying.
//!
//! # Switching back: the high-water mark
//!
//! A key written to both stores at 50 % keeps its copy in new when the
//! percentage drops to 10 %, and the copy would go stale. The handle
//! remembers the highest share that ever went to new
//! ([`PhaseState::high_water`]); a write to a key below it that is not
//! written to both stores removes the key from new (before and after
//! writing old). A missing key in new is always safe before `NewOnly`:
//! `ReadNew` falls back to old and the bulk migrator fills it.
//!
//! # Guarantees within a process and across processes
//!
//! Within a process: operations on one key that change a store take a
//! per-key lock (256 stripes), read the phase under it, and run to the end
//! under that phase, so both stores see one key's writes in the same order,
//! a copy on read never interleaves with a write of its key, and a phase
//! switch takes effect for a key once the operations in flight on it are
//! done. Reads of new take no lock.
//!
//! Across processes nothing is shared but the stores:
//!
//! * Two processes writing one key at the same moment may reach the two
//!   stores in different orders, leaving each store with a different last
//!   write (a session written by two instances at once already has an
//!   arbitrary winner; here the winner may differ per store until the next
//!   write). Sticky sessions avoid it; verification finds it.
//! * A copy (on read, or by a separately run bulk migrator) of a record a
//!   process is deleting at that moment can be readable briefly, as said
//!   above.
//! * The phase is per process, and a fleet does not switch at one instant.
//!   [`PhaseControl`] is a control record every process follows; it carries
//!   the high-water mark with the phase. Processes at different phases are
//!   safe together as long as every process's high-water mark covers the
//!   largest share any process writes to new (100 once any is in
//!   `ReadNew`): a process below the mark removes from new what it writes to
//!   old only. [`PhaseControl::publish_staged`] raises the mark first, waits
//!   for the fleet to pick it up, then switches the phase. A process that
//!   starts mid-migration applies the record before it serves.
//! * `NewOnly` deletes are also applied to old (best effort), so that an
//!   instance still in `ReadNew` during the switch cannot find a deleted
//!   key in old and copy it back. A touch that *shortens* an expiry in
//!   `NewOnly` is not applied to old: a `ReadNew` straggler may copy the
//!   longer one back after the shorter one passes, within the switch.
//! * Run the bulk migrator once every process writes every key to both
//!   stores (`WriteBoth { percent: 100 }` or `ReadNew` everywhere), and
//!   switch to `NewOnly` once it verified; verification counts live keys
//!   and byte-compares a sample, so rerun it if the application wrote
//!   heavily meanwhile.

//! # Metrics and events
//!
//! Every phase change emits a `tracing` info event (`migration phase
//! changed`, with `from`, `to`, `high_water`). Keys are never logged or
//! labeled; events about one key carry its [`KeyHash`](crate::redact::KeyHash).
//!
//! | metric | kind | labels | meaning |
//! |---|---|---|---|
//! | `storestack_migration_phase_changes_total` | counter | `migration`, `from`, `to` | phase switches |
//! | `storestack_migration_phase` | gauge | `migration` | 0 old only, 1 write both, 2 read new, 3 new only |
//! | `storestack_migration_write_percent` | gauge | `migration` | share of keys written to new |
//! | `storestack_migration_read_copies_total` | counter | `migration`, `outcome` | copies on read: `copied`, `existing`, `gone`, `unstable`, `failed` |
//! | `storestack_migration_repair_failures_total` | counter | `migration`, `op` | repairs that failed: the stores may differ for a key |
//!
//! # Default
//!
//! `OldOnly`, copy on read on, the system clock, label `migration`.
//!
//! # Ordering
//!
//! Position 4 of the fluent order, where `with_fallback` also sits: each
//! store carries its own timeout, retry and circuit breaker *below* the
//! migration; compression, encryption and caching go *above* it, so both
//! stores receive the same bytes and a cached value is never one store's
//! and not the other's.
//!
//! # Examples
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use storestack::layers::migration::Phase;
//! use storestack::{MemoryStore, Record, Store, StoreExt};
//!
//! let (old, new) = (MemoryStore::new(), MemoryStore::new());
//! old.set("sess:1", Record::expiring_after("alice", Duration::from_secs(600))).await?;
//!
//! let store = old.clone().migrating_to(new.clone());
//! let handle = store.handle().clone(); // cloneable; switch from anywhere
//! handle.set(Phase::write_both(100)).unwrap();
//! store.set("sess:2", Record::expiring_after("bob", Duration::from_secs(600))).await?;
//! assert!(new.get("sess:2").await?.is_some()); // written to both
//!
//! handle.set(Phase::ReadNew).unwrap();
//! let rec = store.get("sess:1").await?.unwrap(); // copied on read ...
//! assert_eq!(new.get("sess:1").await?.unwrap().expires_at, rec.expires_at); // ... same expiry
//!
//! store.delete("sess:2").await?; // both stores
//! assert!(old.get("sess:2").await?.is_none() && new.get("sess:2").await?.is_none());
//! # Ok::<_, storestack::StoreError>(())
//! # }).unwrap();
//! ```
//!
//! A bulk migration (see [`bulk`] for checkpoints, rate limits, dry runs):
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use storestack::layers::migration::bulk::BulkConfig;
//! use storestack::layers::migration::Phase;
//! use storestack::{MemoryStore, Record, Store, StoreExt};
//!
//! let (old, new) = (MemoryStore::new(), MemoryStore::new());
//! for i in 0..1000 {
//!     old.set(&format!("sess:{i}"), Record::never_expiring("data")).await?;
//! }
//! let store = old.migrating_to(new.clone());
//! store.handle().set(Phase::ReadNew).unwrap();
//! let report = store.bulk().config(BulkConfig::default().page_size(100)).run().await?;
//! assert_eq!(report.progress.counts.copied, 1000);
//! assert!(report.is_success(), "{report:?}");
//! assert_eq!(new.len().await?, 1000);
//! # Ok::<_, storestack::StoreError>(())
//! # }).unwrap();
//! ```

pub mod bulk;
mod control;
mod copy;
mod handle;
mod layer;
mod observe;
mod ops;
mod phase;
#[cfg(test)]
mod tests;

use std::fmt;
use std::time::SystemTime;

use async_trait::async_trait;

pub use control::PhaseControl;
pub use handle::{MigrationHandle, PhaseError};
pub use layer::MigrationLayer;
pub use phase::{bucket, ParsePhaseError, Phase, PhaseState};

use crate::clock::{self, Clock, SharedClock};
use crate::error::Result;
use crate::store::{Condition, Record, ScanCursor, ScanPage, Store, Versioned};
use copy::{Copier, KeyLocks};

/// A store moving from `old` to `new`. See the [module docs](self).
pub struct Migration<O, N> {
    old: O,
    new: N,
    handle: MigrationHandle,
    locks: KeyLocks,
    copy_on_read: bool,
    clock: SharedClock,
    name: String,
}

impl<O: Store, N: Store> fmt::Debug for Migration<O, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Migration")
            .field("name", &self.name)
            .field("handle", &self.handle)
            .field("copy_on_read", &self.copy_on_read)
            .finish_non_exhaustive()
    }
}

impl<O: Store, N: Store> Migration<O, N> {
    /// A migration from `old` to `new` in `OldOnly`, with its own handle.
    pub fn new(old: O, new: N) -> Self {
        let name = format!("migration({}, {})", old.name(), new.name());
        Migration {
            old,
            new,
            handle: MigrationHandle::default(),
            locks: KeyLocks::new(),
            copy_on_read: true,
            clock: clock::system(),
            name,
        }
    }

    /// Uses `handle` (shared with other migrations or a control task).
    pub fn with_handle(mut self, handle: MigrationHandle) -> Self {
        self.handle = handle;
        self
    }

    /// Whether a miss in new copies old's record there in `ReadNew`
    /// (default: yes). Without it, old's record is served and left to the
    /// bulk migrator.
    pub fn copy_on_read(mut self, on: bool) -> Self {
        self.copy_on_read = on;
        self
    }

    /// The clock that decides whether a record read from old is still worth
    /// copying (a mock clock in tests).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = std::sync::Arc::new(clock);
        self
    }

    /// A bulk migrator over this migration's stores that also takes its
    /// per-key locks, so it never races this process's writers.
    pub fn bulk(&self) -> bulk::BulkMigrator<'_> {
        bulk::BulkMigrator::new(&self.old, &self.new)
            .clock(self.clock.clone())
            .with_locks(&self.locks)
    }

    fn copier(&self) -> Copier<'_> {
        Copier {
            old: &self.old,
            new: &self.new,
            clock: &*self.clock,
            label: self.handle.label(),
            recheck: true,
        }
    }
}

impl<O, N> Migration<O, N> {
    /// The handle that switches this migration's phase.
    pub fn handle(&self) -> &MigrationHandle {
        &self.handle
    }

    /// The old store.
    pub fn old(&self) -> &O {
        &self.old
    }

    /// The new store.
    pub fn new_store(&self) -> &N {
        &self.new
    }

    /// Unwraps the two stores.
    pub fn into_inner(self) -> (O, N) {
        (self.old, self.new)
    }
}

#[async_trait]
impl<O: Store, N: Store> Store for Migration<O, N> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &str) -> Result<Option<Record>> {
        match self.handle.phase() {
            Phase::OldOnly | Phase::WriteBoth { .. } => self.old.get(key).await,
            Phase::ReadNew => self.read_new(key).await,
            Phase::NewOnly => self.new.get(key).await,
        }
    }

    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.set_routed(key, record).await
    }

    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.create_routed(key, record).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.delete_routed(key).await
    }

    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        self.touch_routed(key, expires_at).await
    }

    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        match self.handle.phase() {
            Phase::NewOnly => self.new.scan(prefix, cursor, limit).await,
            _ => self.old.scan(prefix, cursor, limit).await,
        }
    }

    async fn len(&self) -> Result<u64> {
        match self.handle.phase() {
            Phase::NewOnly => self.new.len().await,
            _ => self.old.len().await,
        }
    }

    async fn clear(&self) -> Result<()> {
        self.clear_routed().await
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.get_versioned_routed(key).await
    }

    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        self.set_if_routed(key, record, condition).await
    }
}
