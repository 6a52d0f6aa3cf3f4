//! Failover between two stores that loses nothing: [`Fallback`].
//!
//! `Fallback(primary, secondary)` reads from the primary and falls over to
//! the secondary when the primary fails with a transient error
//! ([`StoreError::is_transient`](crate::StoreError::is_transient):
//! `Unavailable`, `Timeout`, `CircuitOpen`). Any other error (`Corrupt`,
//! `InvalidInput`, `TooLarge`, …) is returned as is: a bad record or a bad
//! request is not an outage, and the secondary is not asked.
//!
//! A read the primary answers *absent* also asks the secondary (unless the
//! primary's journal holds the key's delete): a primary that lost its data
//! (a Redis without persistence restarts empty) never hides a session the
//! secondary still holds, which is what the naive "primary, then secondary
//! on an error or a miss" does too.
//!
//! Writes (`set`, `delete`, `touch`) go to the primary, then to the
//! secondary; `create` asks the secondary first (see the table below). When one side is unreachable, the write goes to the other
//! side alone and the key is **journaled** there: an entry under a reserved
//! key says "this side holds the newest write of this key; the other side
//! is stale". The journal lives in the stores themselves, so every process
//! using the same two stores, and every later run, can read it. Journaled
//! keys are read from the side holding their newest write and **repaired**
//! once the other side is back: the record (value and absolute expiry,
//! [`Record::expires_at`](crate::Record)) or its deletion is copied to the
//! stale side, verified, and the entries are removed. A delete is journaled
//! like any write, so the stale side's copy is deleted, never resurrected.
//!
//! Repair runs in a background task (started when the fallback is created
//! inside a tokio runtime), promptly when a side comes back or a read meets
//! a journaled key, else every
//! [`poll_interval`](FallbackConfig::poll_interval); and on demand through
//! [`FallbackHandle::repair_now`]. The handle also reports health
//! ([`FallbackStatus`]: which side is unreachable, how many keys are
//! journaled, repairs done) for health endpoints.
//!
//! # A side that loses its data
//!
//! The journal records what a side *missed* while unreachable, not what it
//! *lost*: a side that restarts empty, is restored from an old backup, or
//! is replaced by a replica that missed writes. Those are handled in three
//! layers (details in the `resync` module source):
//!
//! * **Reads never depend on the lost side alone.** A primary miss reads
//!   through to the secondary; a `create` the secondary refuses answers
//!   `false` with nothing written; a `touch` the sides disagree on journals
//!   the side that had the record, so that reads follow it and repair
//!   copies it.
//! * **Detection, in every process, without having seen the outage.** Each
//!   side holds an identity key (a random generation, and a heartbeat kept
//!   in the key's expiry and renewed with `touch`, which never re-creates
//!   it), and each side records the other's as last verified. The
//!   background task compares them every `poll_interval`: an identity that
//!   is gone (the side came back empty), of another generation, or whose
//!   heartbeat is older than the other side's record of it by more than
//!   `settle` + 2 × `poll_interval` (the side came back from an old
//!   backup) starts a **resync** of that side. A side that this process saw
//!   come back from an outage is distrusted (served as if resyncing) until
//!   that check has run.
//! * **Resync.** The healthy side is scanned, then the resynced one, at
//!   most [`resync_rate`](FallbackConfig::resync_rate) keys a second; every
//!   key whose sides differ is copied from the healthy side under the key's
//!   lock and verified after `settle` (a key a concurrent write changed is
//!   journaled, so repair finishes it). The position is stored on the
//!   healthy side, so a restarted process resumes it; one process runs it
//!   at a time (a lease). Until it completes, every process that knows of
//!   it serves the resynced side's keys from the healthy side: reads,
//!   `create` and `touch` are decided there, `scan` and `len` read there,
//!   and a read never falls through to the side being resynced. Progress is
//!   in [`FallbackStatus::resync`], the `storestack_fallback_resyncing`
//!   gauge and `storestack_fallback_resync_keys_total`.
//!
//! # Guarantees
//!
//! With the default configuration ([`JournalCheck::PerRead`]), for every
//! process using a fallback over the same two stores, through an outage of
//! either side and its recovery:
//!
//! 1. **No acknowledged write is lost.** A write that returned `Ok` is on
//!    the side that took it and, once repaired, on both.
//! 2. **No stale read.** A read returns the value of the last write
//!    acknowledged before the read began, or of a write concurrent with it
//!    (absent if that write was a delete).
//! 3. **No deleted key comes back**, on either side, after repair.
//! 4. **`create` keeps its meaning.** It inserts only if no live record is
//!    on the side holding the key's newest write, and a create that answers
//!    `false` leaves nothing behind. It first reads the key's journal entry
//!    on the secondary (one extra point read per create; creates are rare):
//!    if the secondary holds the key's newest write, the secondary decides;
//!    else the primary does, and the record is then written to the
//!    secondary.
//! 5. **Both sides down: a clear error.** Every operation fails with a
//!    transient error (the common kind of the two failures, else
//!    `Unavailable`) whose message names both sides and both errors. It
//!    arrives as soon as both sides have failed, so put a `Timeout` (and a
//!    circuit breaker) inside each side to bound it.
//!
//! They hold as well when a side comes back **empty or with old data**
//! (guarantees 1 to 3: nothing lost, stale or resurrected), under the
//! limits below and these two of their own:
//!
//! * **Detection latency.** A process that did not see the side's outage
//!   learns of an old-data side at its next poll (within `poll_interval`):
//!   until then, a read it sends to that side may return its old copy. (An
//!   *empty* side needs no detection for reads: they read through.)
//! * **The last heartbeat stretch.** A backup taken within the tolerance
//!   (`settle` + 2 × `poll_interval`) before the side failed cannot be told
//!   from its live data: writes of that stretch are lost on that side, and
//!   served from it, unless something else (a miss, the journal) sends the
//!   read to the other side. Heartbeats compare wall clocks of different
//!   processes: clock skew between them widens the tolerance it must
//!   exceed.
//! * A side that loses its data *while* the other side holds journal
//!   entries for it is a double fault (below).
//!
//! These hold under four assumptions. They are the limits:
//!
//! * **One fault at a time.** After a side returns, the repair of the keys
//!   journaled while it was away completes before the *other* side fails
//!   (with the background task, within about `poll_interval` + `settle`
//!   of its return); and an operation does not span two outages (one that
//!   met the primary down and then, after the primary's return, the
//!   secondary down has seen both sides fail, and says so). If instead the
//!   side holding entries fails first (a *double fault*), the newest writes
//!   of those keys are on an unreachable store:
//!   * A process that knows those keys (its own writes, entries it met on
//!     reads or polls) refuses to serve them from the stale side: `get`,
//!     `touch` and `create` fail with a transient error (counted in
//!     [`FallbackStatus::refused`]) instead of acting on stale data, while
//!     `set` and `delete` go through (they supersede the stale copy).
//!     **Within one process the guarantees hold through double faults, with
//!     errors instead of stale data.**
//!   * Another process that never saw those entries may read the stale
//!     copy (stale reads, deleted keys coming back), and a `touch` or
//!     `create` it sends there is decided on stale data. Such writes leave
//!     *weak* (pending) journal entries that lose against the newer write's
//!     entry at repair, so that the newer write survives and the touch or
//!     create is the one dropped; still, across processes a double fault
//!     can lose acknowledged writes.
//! * **No partition.** Processes agree on which side is down. If each of
//!   two processes reaches a different side, both sides take writes; the
//!   journal then resolves each key to the side whose entry has the larger
//!   stamp (wall-clock milliseconds and a counter, ordered after every
//!   stamp the writer had seen), so with clock skew between processes a
//!   write can lose against an older one by up to the skew.
//! * **Writes finish within [`settle`](FallbackConfig::settle).** A repair
//!   copies a key, waits `settle`, and verifies that both sides are equal
//!   before removing its entries. A write of another process to the same
//!   key that was half done during the copy must land within `settle` to
//!   be noticed; set `settle` above the longest write (both sides'
//!   deadlines, retries included). Writes of this process are serialized
//!   with repair by a per-key lock and need no such bound.
//! * **Repairs do not stall past their [`lease`](FallbackConfig::lease).**
//!   Two processes never repair one key at once while each finishes within
//!   the lease (held on the secondary, 30 s by default). A repair cut short
//!   by an outage leaves its lease until it expires, delaying that key's
//!   repair by up to the lease.
//!
//! Also:
//!
//! * **What a second process sees during a repair window.** With
//!   [`JournalCheck::PerRead`], every read of the primary also reads the
//!   key's entry on the secondary, so it sees the entry until the repair
//!   has verified both sides equal and removed it: its reads are current
//!   throughout. With [`JournalCheck::Poll`] it knows another process's
//!   entries only from its last poll: for up to one `poll_interval` after
//!   the primary returns from an outage shorter than that, it may read the
//!   primary's stale copy of a key written or deleted by another process
//!   during the outage (until that key is repaired, which the writer's
//!   process starts at once). Writes are not affected: no write is lost in
//!   `Poll` mode. A fresh process in `Poll` mode should call
//!   [`FallbackHandle::refresh`] before serving.
//! * **Concurrent writes to one key from two processes** are not ordered
//!   with each other (no distributed lock on the hot path): the two sides
//!   may end up holding different ones of the concurrent values, and reads
//!   may return either, until the next write of the key. A value that a
//!   later write (one that began after it was acknowledged) replaced is
//!   never returned again. Within one process, writes to a key are
//!   serialized and both sides see them in the same order. (One more
//!   corner: if another process journals the key on the secondary between
//!   a create's journal read and its write to the primary, the create
//!   answers `false` and takes its record back from the primary before
//!   returning; a concurrent read may have seen it.)
//! * **Unacknowledged writes** (that returned an error, or whose future was
//!   dropped) may have reached one side; they may or may not become
//!   visible, and repair converges both sides to one outcome.
//! * **What this process remembers.** It keeps the journal entries it
//!   wrote or met. With `PerRead`, reads follow the stores' entries, and
//!   writes re-read the entries of a key it remembers (under the key's
//!   lock), so another process repairing or journaling the key cannot
//!   mislead them; the memory only stands in for a side whose journal
//!   cannot be read, and then errs towards refusing. With `Poll`, reads
//!   follow the memory, which learns of other processes' repairs and
//!   entries at the next poll (within about one `poll_interval`).
//! * Clock skew matters only where two entries for one key compete (double
//!   faults, partitions); lease expiry follows the secondary's clock.
//!
//! # What each operation does
//!
//! | operation | both sides up | one side down |
//! |---|---|---|
//! | `get` | primary (+ the key's entry on the secondary, `PerRead`); on a miss, the secondary unless the primary's journal holds the key's delete; a journaled key from its newest side; the secondary while the primary resyncs | the other side, unless it is known stale for the key (then an error) |
//! | `set`, `delete` | primary, then secondary | the up side, journaled there first |
//! | `touch` | primary, then secondary; answers as the newest side (the healthy side while one resyncs); a side that missed the record is journaled stale | the up side, unless known stale for the key |
//! | `create` | both sides' entries for the key are read; the newest side decides, else the secondary then the primary (a record on either side makes it `false`) | the up side decides, unless known stale for the key |
//! | `scan`, `len` | the primary (the secondary while the primary resyncs) | the other side |
//! | `clear` | both sides | error: needs both |
//!
//! `scan` and `len` read a single side, so until repair completes they may
//! miss keys written while the primary was away, or show keys deleted then.
//! A scan continues on the side it started on. The reserved keys are never
//! shown or counted; user keys may not start with the reserved
//! [`prefix`](FallbackConfig::prefix), and may be at most
//! [`MAX_KEY_LEN`](crate::limits::MAX_KEY_LEN) minus the length of the
//! journal prefix (`prefix` + `"j:"`) bytes long. `clear` is not atomic
//! with concurrent writes; when it fails, one side may be cleared: retry it.
//!
//! # Default
//!
//! [`FallbackConfig::default`]: [`JournalCheck::PerRead`] (one extra read
//! on the secondary per read), `poll_interval` 1 s, `settle` 2 s, `lease`
//! 30 s, `repair_batch` 256, `resync_rate` 2000 keys/s, reserved prefix
//! `"__fallback:"`, background task on, system clock. The background task
//! costs each process, per `poll_interval`: two marker reads, and for each
//! side two identity reads and, once the heartbeat is due, a `touch` and a
//! `set`.
//!
//! # Ordering
//!
//! Put `Timeout`, `Retry` and `CircuitBreaker` *inside* each side, so that
//! an unreachable side fails fast and fallback acts on its error kind:
//! `primary.timeout(..).retry(..).circuit_breaker(..).with_fallback(secondary.timeout(..).circuit_breaker(..))`.
//! The secondary needs its own breaker too: with `PerRead`, every read also
//! reads it. Put `Compressed`, `Encrypted`, `Cached` and `Instrumented`
//! *above* the fallback, so that both sides hold the same bytes and the
//! cache sees the failover. `Namespaced` may go on either side: below, the
//! journal lives inside the namespace.
//!
//! # Examples
//!
//! Both sides healthy: writes reach both.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use storestack::{MemoryStore, Record, Store, StoreExt};
//!
//! let primary = MemoryStore::new();
//! let secondary = MemoryStore::new();
//! let store = primary.clone().with_fallback(secondary.clone());
//! assert_eq!(store.name(), "fallback(memory, memory)");
//!
//! store.set("sess:1", Record::never_expiring("v1")).await?;
//! assert_eq!(primary.get("sess:1").await?.unwrap().value, "v1");
//! assert_eq!(secondary.get("sess:1").await?.unwrap().value, "v1");
//! assert!(!store.create("sess:1", Record::never_expiring("v2")).await?);
//! # Ok::<_, storestack::StoreError>(())
//! # }).unwrap();
//! ```
//!
//! The primary down: the write is journaled on the secondary and served
//! from there; the journal is invisible to users.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! # use std::time::SystemTime;
//! # use storestack::{async_trait, Op, Result, ScanCursor, ScanPage, StoreError};
//! # struct Down;
//! # fn down<T>(op: Op) -> Result<T> { Err(StoreError::unavailable(op).with_store("down")) }
//! # #[async_trait]
//! # impl Store for Down {
//! #     fn name(&self) -> &str { "down" }
//! #     async fn get(&self, _: &str) -> Result<Option<Record>> { down(Op::Get) }
//! #     async fn set(&self, _: &str, _: Record) -> Result<()> { down(Op::Set) }
//! #     async fn create(&self, _: &str, _: Record) -> Result<bool> { down(Op::Create) }
//! #     async fn delete(&self, _: &str) -> Result<bool> { down(Op::Delete) }
//! #     async fn touch(&self, _: &str, _: Option<SystemTime>) -> Result<bool> { down(Op::Touch) }
//! #     async fn scan(&self, _: &str, _: ScanCursor, _: usize) -> Result<ScanPage> { down(Op::Scan) }
//! #     async fn len(&self) -> Result<u64> { down(Op::Len) }
//! #     async fn clear(&self) -> Result<()> { down(Op::Clear) }
//! #     async fn get_versioned(&self, _: &str) -> Result<Option<storestack::Versioned>> { down(Op::GetVersioned) }
//! #     async fn set_if(&self, _: &str, _: Record, _: storestack::Condition) -> Result<bool> { down(Op::SetIf) }
//! # }
//! use storestack::{MemoryStore, Record, Store, StoreExt};
//!
//! let secondary = MemoryStore::new();
//! let store = Down.with_fallback(secondary.clone()); // `Down` fails every call
//!
//! store.set("sess:1", Record::never_expiring("v1")).await?;
//! assert_eq!(store.get("sess:1").await?.unwrap().value, "v1");
//! assert_eq!(store.len().await?, 1); // the journal entry is not counted
//!
//! let status = store.handle().status();
//! assert!(!status.primary.reachable);
//! assert_eq!(status.newest_on_secondary, 1); // repaired when the primary returns
//! # Ok::<_, storestack::StoreError>(())
//! # }).unwrap();
//! ```

mod config;
mod journal;
mod layer;
mod lease;
mod ops;
mod read;
mod repair;
mod resync;
mod status;
mod versioned;
mod whole;
mod write;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use tokio::sync::Notify;

pub use config::{FallbackConfig, JournalCheck};
pub use journal::Side;
pub use layer::FallbackLayer;
pub use resync::ResyncStatus;
pub use status::{FallbackHandle, FallbackStatus, RepairReport, SideStatus};

use crate::error::Result;
use crate::store::{Condition, Record, ScanCursor, ScanPage, Store, Versioned};
use journal::{Mirror, Names, Stamps, Stripes};
use ops::Mutation;
use status::Health;

/// Per-key lock stripes.
const STRIPES: usize = 1024;

/// The state shared by a fallback's clones, its handles and its background
/// task.
pub(crate) struct Shared<P, S> {
    primary: P,
    secondary: S,
    name: String,
    names: Names,
    cfg: FallbackConfig,
    mirror: Mirror,
    locks: Stripes,
    health: Health,
    stamps: Stamps,
    resyncs: resync::Resyncs,
    lease: lease::Lease,
    wake: Arc<Notify>,
}

/// Reads from a primary store, falls over to a secondary, and journals and
/// repairs what one side missed. See the [module docs](self). Cheap to
/// clone: clones share the same state.
pub struct Fallback<P, S> {
    shared: Arc<Shared<P, S>>,
}

impl<P, S> Clone for Fallback<P, S> {
    fn clone(&self) -> Self {
        Fallback {
            shared: self.shared.clone(),
        }
    }
}

impl<P: Store, S: Store> fmt::Debug for Fallback<P, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback")
            .field("name", &self.shared.name)
            .field("config", &self.shared.cfg)
            .field("status", &self.status())
            .finish()
    }
}

impl<P: Store, S: Store> Fallback<P, S> {
    /// `primary` with failover to `secondary`, default configuration.
    pub fn new(primary: P, secondary: S) -> Self {
        Self::with_config(primary, secondary, FallbackConfig::default())
    }

    /// `primary` with failover to `secondary`. Inside a tokio runtime (and
    /// unless disabled), starts the background poll-and-repair task.
    pub fn with_config(primary: P, secondary: S, config: FallbackConfig) -> Self {
        let name = format!("fallback({}, {})", primary.name(), secondary.name());
        let shared = Arc::new(Shared {
            names: Names::new(&config.prefix),
            name,
            primary,
            secondary,
            mirror: Mirror::default(),
            locks: Stripes::new(STRIPES),
            health: Health::default(),
            stamps: Stamps::default(),
            resyncs: resync::Resyncs::default(),
            lease: lease::Lease::default(),
            wake: Arc::new(Notify::new()),
            cfg: config,
        });
        if shared.cfg.background {
            repair::spawn_background(&shared);
        }
        Fallback { shared }
    }

    /// A handle for health endpoints and manual repair.
    pub fn handle(&self) -> FallbackHandle {
        FallbackHandle {
            inner: self.shared.clone(),
        }
    }

    /// The current health (same as `self.handle().status()`).
    pub fn status(&self) -> FallbackStatus {
        status::Control::status(&*self.shared)
    }
}

impl<P, S> Fallback<P, S> {
    /// The primary store.
    pub fn primary(&self) -> &P {
        &self.shared.primary
    }

    /// The secondary store.
    pub fn secondary(&self) -> &S {
        &self.shared.secondary
    }

    /// The configuration.
    pub fn config(&self) -> &FallbackConfig {
        &self.shared.cfg
    }

    /// The longest key this fallback accepts.
    pub fn max_key_len(&self) -> usize {
        self.shared.names.max_key_len()
    }
}

#[async_trait]
impl<P: Store, S: Store> Store for Fallback<P, S> {
    fn name(&self) -> &str {
        &self.shared.name
    }

    async fn get(&self, key: &str) -> Result<Option<Record>> {
        self.shared.get(key).await
    }

    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.shared
            .mutate(key, Mutation::Set(record))
            .await
            .map(|_| ())
    }

    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.shared.mutate(key, Mutation::Create(record)).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.shared.mutate(key, Mutation::Delete).await
    }

    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        self.shared.mutate(key, Mutation::Touch(expires_at)).await
    }

    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        self.shared.scan(prefix, cursor, limit).await
    }

    async fn len(&self) -> Result<u64> {
        self.shared.len().await
    }

    async fn clear(&self) -> Result<()> {
        self.shared.clear().await
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.shared.get_versioned(key).await
    }

    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        self.shared
            .mutate(key, Mutation::SetIf(record, condition))
            .await
    }
}

#[cfg(test)]
mod tests;
