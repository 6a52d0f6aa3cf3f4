//! Saves of existing sessions: never re-creating a deleted one, and
//! merging what concurrent requests changed. See "Concurrent requests" in
//! the [crate docs](crate).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use storestack::bytes::Bytes;
use storestack::redact::KeyHash;
use storestack::{Condition, Store, Version, Versioned};
use tower_sessions_core::session::Record as SessionRecord;
use tower_sessions_core::session_store::{self, Error};

use crate::merge::three_way;
use crate::{backend, encode_data, to_system_time, Data};

/// The session data key under which `load` leaves the token of its
/// snapshot for `save` to find (removed again before anything is stored).
pub const SNAPSHOT_KEY: &str = "__storestack_snapshot";

/// Counter: saves that found the session changed by a concurrent request
/// since it was loaded and merged their change with it (by `store`).
pub const MERGES_TOTAL: &str = "storestack_session_merges_total";
/// Counter: top-level session keys that two concurrent requests both
/// changed to different values; the last writer's value was kept.
pub const MERGE_CONFLICTS_TOTAL: &str = "storestack_session_merge_conflicts_total";
/// Counter: saves refused under [`SavePolicy::Fail`] because a concurrent
/// request changed the session.
pub const SAVE_REFUSALS_TOTAL: &str = "storestack_session_save_refusals_total";

/// What the save of a session does when another request changed the
/// session since this request loaded it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SavePolicy {
    /// Three-way merge: this request's changes (top-level keys added,
    /// changed or removed since its load) are applied on top of what is
    /// stored now, with a conditional write retried on conflict. A key
    /// both changed keeps this request's value (it writes last; counted in
    /// [`MERGE_CONFLICTS_TOTAL`]).
    #[default]
    Merge,
    /// The whole session as this request has it replaces the stored one
    /// (what tower-sessions stores do), unless the session was deleted.
    LastWriteWins,
    /// The save fails with an error the request can retry (a fresh load
    /// sees the other change), unless the session was deleted.
    Fail,
}

/// How saves of existing sessions behave. See the [crate docs](crate).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SaveConfig {
    /// What a save does about a concurrent change.
    pub policy: SavePolicy,
    /// How long a load's snapshot waits for its save.
    pub snapshot_ttl: Duration,
    /// Bytes of snapshots kept at most (value, version, key, overhead).
    pub snapshot_bytes: u64,
    /// Conditional writes a merging save tries before giving up.
    pub max_attempts: usize,
}

impl Default for SaveConfig {
    /// Merge, snapshots kept 10 minutes within 64 MiB, 16 attempts.
    fn default() -> Self {
        SaveConfig {
            policy: SavePolicy::Merge,
            snapshot_ttl: Duration::from_secs(600),
            snapshot_bytes: 64 << 20,
            max_attempts: 16,
        }
    }
}

impl SaveConfig {
    /// Sets the policy.
    pub fn policy(mut self, policy: SavePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets how long, and within how many bytes, snapshots are kept.
    pub fn snapshots(mut self, ttl: Duration, max_bytes: u64) -> Self {
        self.snapshot_ttl = ttl;
        self.snapshot_bytes = max_bytes;
        self
    }

    /// Sets how many conditional writes a merging save tries.
    pub fn max_attempts(mut self, n: usize) -> Self {
        self.max_attempts = n.max(1);
        self
    }
}

/// What a load saw: the stored value (MessagePack) and its version.
#[derive(Clone)]
struct Snapshot {
    key: String,
    value: Bytes,
    version: Version,
    expires_at: Option<SystemTime>,
}

/// The snapshots of loads waiting for their saves.
pub(crate) struct Saves {
    config: SaveConfig,
    snapshots: moka::sync::Cache<u64, Snapshot>,
    next: AtomicU64,
}

impl Saves {
    pub(crate) fn new(config: SaveConfig) -> Self {
        let snapshots = moka::sync::Cache::builder()
            .time_to_live(config.snapshot_ttl)
            .max_capacity(config.snapshot_bytes)
            .weigher(|_, s: &Snapshot| {
                let bytes = s.value.len() + s.version.stored().len() + s.key.len() + 96;
                bytes.try_into().unwrap_or(u32::MAX)
            })
            .build();
        Saves {
            config,
            snapshots,
            next: AtomicU64::new(1),
        }
    }

    pub(crate) fn policy(&self) -> SavePolicy {
        self.config.policy
    }

    /// Remembers what a load of `key` read, and leaves the snapshot's token
    /// in the loaded `data`.
    pub(crate) fn remember(&self, key: &str, found: &Versioned, data: &mut Data) {
        if self.config.policy == SavePolicy::LastWriteWins {
            return;
        }
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let snapshot = Snapshot {
            key: key.to_owned(),
            value: found.record.value.clone(),
            version: found.version.clone(),
            expires_at: found.record.expires_at,
        };
        self.snapshots.insert(token, snapshot);
        data.insert(SNAPSHOT_KEY.to_owned(), token.into());
    }

    /// Takes the token out of `data` and its snapshot out of the map.
    fn take(&self, key: &str, data: &mut Data) -> Option<Snapshot> {
        let token = data.remove(SNAPSHOT_KEY)?.as_u64()?;
        self.snapshots.remove(&token).filter(|s| s.key == key)
    }

    /// `data` without the snapshot token, for a `create` (a new session,
    /// or one whose ID was cycled).
    pub(crate) fn forget(&self, data: &mut Data) {
        if let Some(token) = data.remove(SNAPSHOT_KEY).and_then(|t| t.as_u64()) {
            self.snapshots.invalidate(&token);
        }
    }

    /// The save of an existing session.
    pub(crate) async fn save<S: Store>(
        &self,
        store: &S,
        record: &SessionRecord,
    ) -> session_store::Result<()> {
        let key = record.id.to_string();
        let mut mine = record.data.clone();
        let snapshot = self.take(&key, &mut mine);
        let expires_at = to_system_time(record.expiry_date);
        let base = snapshot.as_ref().and_then(|s| decode(&s.value));
        let (Some(snapshot), Some(base)) = (snapshot, base) else {
            // No snapshot (last-write-wins, or it was evicted): the whole
            // session replaces the stored one, if it still exists.
            let stored = encode_data(&mine, expires_at)?;
            store
                .set_if(&key, stored, Condition::Exists)
                .await
                .map_err(backend)?;
            return Ok(());
        };
        if base == mine {
            // Only the expiry may have changed: never rewrite the data.
            if snapshot.expires_at != Some(expires_at) {
                store.touch(&key, Some(expires_at)).await.map_err(backend)?;
            }
            return Ok(());
        }
        self.write_merged(store, &key, base, mine, snapshot.version, expires_at)
            .await
    }

    /// Conditional writes of this request's changes, merged again with
    /// what is stored after every conflict.
    async fn write_merged<S: Store>(
        &self,
        store: &S,
        key: &str,
        base: Data,
        mine: Data,
        mut version: Version,
        expires_at: SystemTime,
    ) -> session_store::Result<()> {
        let label = store.name().to_owned();
        let mut target = encode_data(&mine, expires_at)?;
        for _ in 0..self.config.max_attempts {
            let cond = Condition::Matches(version);
            if store.set_if(key, target, cond).await.map_err(backend)? {
                return Ok(());
            }
            // Changed or deleted since it was read.
            let Some(current) = store.get_versioned(key).await.map_err(backend)? else {
                // Deleted (a logout) or expired: it stays so.
                return Ok(());
            };
            if self.config.policy == SavePolicy::Fail {
                metrics::counter!(SAVE_REFUSALS_TOTAL, "store" => label).increment(1);
                return Err(Error::Backend(
                    "the session was changed by a concurrent request; load it again".into(),
                ));
            }
            let theirs = decode(&current.record.value).unwrap_or_default();
            let merged = three_way(&base, &mine, &theirs);
            metrics::counter!(MERGES_TOTAL, "store" => label.clone()).increment(1);
            if merged.conflicts > 0 {
                metrics::counter!(MERGE_CONFLICTS_TOTAL, "store" => label.clone())
                    .increment(merged.conflicts as u64);
                tracing::debug!(session = %KeyHash::of(key), conflicts = merged.conflicts,
                    "concurrent requests changed the same session keys; the last writer's values kept");
            }
            target = encode_data(&merged.data, expires_at)?;
            version = current.version;
        }
        Err(Error::Backend(format!(
            "the session kept changing: not saved after {} attempts",
            self.config.max_attempts
        )))
    }
}

fn decode(value: &[u8]) -> Option<Data> {
    rmp_serde::from_slice(value).ok()
}
