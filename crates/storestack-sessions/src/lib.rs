//! # storestack-sessions
//!
//! A [tower-sessions](https://docs.rs/tower-sessions) [`SessionStore`] for
//! any storestack [`Store`]: put a whole stack (fallback, breaker, cache,
//! encryption, …) behind `SessionManagerLayer`.
//!
//! | tower-sessions | storestack |
//! |---|---|
//! | `create` | [`Store::create`] (insert only if absent); on an ID collision a fresh ID is drawn and tried again, so another user's session is never overwritten |
//! | `save` | [`Store::set_if`]: never re-creates a deleted session; concurrent saves merge (see below) |
//! | `load` | [`Store::get_versioned`] |
//! | `delete` | [`Store::delete`] |
//!
//! The record is stored compactly: the key is the session ID, the value is
//! the session data encoded as MessagePack, and the session's expiry date
//! becomes the record's absolute expiry.
//!
//! ## Concurrent requests
//!
//! A browser sends requests in parallel, and each loads the session when
//! it starts and saves it when it ends. Two guarantees, whatever the
//! stack underneath:
//!
//! * **A logout stays a logout.** The save of an existing session is a
//!   conditional write ([`Condition::Exists`](storestack::Condition) or
//!   [`Condition::Matches`](storestack::Condition)): it never re-creates a
//!   session that was deleted (or expired) while the request ran. The save
//!   then succeeds and writes nothing; the next request gets a fresh
//!   session.
//! * **Changes to different keys are all kept** (policy
//!   [`SavePolicy::Merge`], the default). A save writes only if the session
//!   is still what its request loaded (the [`Version`](storestack::Version)
//!   of the stored bytes). If another request saved in between, the save
//!   reads the session again and applies its own changes (top-level keys
//!   added, changed or removed since its load) on top: a three-way merge,
//!   retried within [`SaveConfig::max_attempts`]. A key that both requests
//!   changed keeps the value of the one that saves last, counted in
//!   [`MERGE_CONFLICTS_TOTAL`]. Values are merged whole: two requests
//!   that change different fields *inside* one key's value conflict.
//!
//! The other policies: [`SavePolicy::LastWriteWins`] (the whole session of
//! the last save replaces the stored one, as tower-sessions' own stores
//! do; the first request's change is lost) and [`SavePolicy::Fail`] (the
//! save returns an error, which tower-sessions turns into a 500 response;
//! the client can retry, and the retry loads the other change).
//!
//! A request that changed nothing is not saved by tower-sessions (unless
//! `with_always_save(true)`); one whose only change is the expiry
//! (inactivity expiry with `always_save`) updates the expiry with
//! [`Store::touch`] and never rewrites the data.
//!
//! ### How the adapter learns what a request loaded
//!
//! tower-sessions' `SessionStore::save` receives the new state only. So
//! `load` keeps a snapshot of what it read (the stored value and its
//! version) in a bounded in-process map, and leaves the snapshot's token in
//! the session data under the reserved key [`SNAPSHOT_KEY`]; `save` takes
//! the token out again (it is never stored) and finds the snapshot.
//! Consequences:
//!
//! * Handlers see one extra key, [`SNAPSHOT_KEY`], in a loaded session;
//!   they must neither use nor remove it (removing it makes that save
//!   last-write-wins).
//! * Snapshots wait for their save at most
//!   [`SaveConfig::snapshot_ttl`] (10 minutes) within
//!   [`SaveConfig::snapshot_bytes`] (64 MiB, weighed by value size;
//!   requests that only read leave theirs to expire). A save whose
//!   snapshot is gone (a very long request, or eviction under load) and a
//!   second save within one request fall back to last-write-wins, still
//!   never re-creating a deleted session.
//! * The version compared is that of the bytes the innermost store holds,
//!   so it works through every decorator (see
//!   [`Version`](storestack::Version)); with `Encrypted` every write has a
//!   new version, so equal sessions written twice still conflict (and then
//!   merge to the same result).
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | [`MERGES_TOTAL`] | counter | `store` | saves that merged a concurrent request's change |
//! | [`MERGE_CONFLICTS_TOTAL`] | counter | `store` | top-level keys two requests both changed (the last writer's value kept) |
//! | [`SAVE_REFUSALS_TOTAL`] | counter | `store` | saves refused under [`SavePolicy::Fail`] |
//!
//! `store` is the [`Store::name`] of the stack.
//!
//! ## No expired-deletion task
//!
//! tower-sessions offers `ExpiredDeletion` for stores that keep expired rows
//! around. storestack backends expire records themselves — Redis with
//! `PXAT`, MongoDB with a TTL index (and reads that filter expired documents
//! until its monitor runs), `MemoryStore` with its expiry index and sweeper —
//! and no store ever returns an expired record, so no deletion task is
//! needed and none is provided.
//!
//! ## Tampering and corruption
//!
//! A stored value that fails to decode — corrupted bytes, or a ciphertext
//! that fails authentication under an `Encrypted` layer — is logged (with a
//! keyed hash of the ID, never the ID) and treated as *no session*: the user
//! gets a fresh session rather than an error page. Transient failures
//! (`Unavailable`, `Timeout`, `CircuitOpen`) are reported as errors: they are
//! not the user's fault and must not silently log anyone out.
//!
//! tower-sessions' error type holds strings only; the storestack error is
//! rendered with its whole source chain before it is flattened.
//!
//! ## Graceful degradation
//!
//! Wrap the stack in [`DegradeLayer`] and the router in [`DegradedLayer`]
//! (outside `SessionManagerLayer`), and a store outage costs a user the
//! session changes made during it, not the site: the request goes on with
//! a temporary session under the same ID and the response carries
//! `X-Session-Degraded: true`. See [`storestack_session_core::degrade`]
//! for the rules and limits. The encoding, error rendering and time
//! conversions are shared with `storestack-actix` through
//! [`storestack_session_core::codec`].
//!
//! # Examples
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use storestack::{MemoryStore, StoreExt};
//! use storestack_sessions::SessionStore;
//! use tower_sessions_core::session::{Id, Record};
//! use tower_sessions_core::SessionStore as _;
//!
//! let store = SessionStore::new(MemoryStore::new().namespaced("sess:"));
//! let mut record = Record {
//!     id: Id::default(),
//!     data: Default::default(),
//!     expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
//! };
//! record.data.insert("views".into(), 1.into());
//! store.create(&mut record).await.unwrap();
//! let loaded = store.load(&record.id).await.unwrap().unwrap();
//! assert_eq!(loaded.data["views"], 1);
//! # });
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod degraded;
mod merge;
mod save;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use storestack::redact::KeyHash;
use storestack::{ErrorKind, Record, Store, StoreError};
use storestack_session_core::codec::{
    self, offset_date_time as to_offset_date_time, system_time as to_system_time,
};
use tower_sessions_core::session::{Id, Record as SessionRecord};
use tower_sessions_core::session_store::{self, Error};

pub use degraded::{DegradedLayer, DegradedService};
use save::Saves;
pub use save::{
    SaveConfig, SavePolicy, MERGES_TOTAL, MERGE_CONFLICTS_TOTAL, SAVE_REFUSALS_TOTAL, SNAPSHOT_KEY,
};
pub use storestack_session_core::degrade::{DegradeConfig, DegradeLayer, Degraded, HEADER};

/// How many fresh IDs `create` draws after collisions before giving up. With
/// 128-bit random IDs a single collision is already astronomically rare;
/// repeated ones mean a broken random source or a store that always says
/// "exists".
const MAX_CREATE_ATTEMPTS: usize = 8;

/// A tower-sessions store over any storestack [`Store`]. See the
/// [crate docs](crate).
#[derive(Clone)]
pub struct SessionStore<S> {
    inner: S,
    saves: Arc<Saves>,
}

impl<S: Store> fmt::Debug for SessionStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStore")
            .field("store", &self.inner.name())
            .finish()
    }
}

impl<S: Store> SessionStore<S> {
    /// Serves sessions from `store`, merging concurrent saves
    /// ([`SaveConfig::default`]).
    pub fn new(store: S) -> Self {
        Self::with_config(store, SaveConfig::default())
    }

    /// Serves sessions from `store`, saving as `config` says.
    pub fn with_config(store: S, config: SaveConfig) -> Self {
        SessionStore {
            inner: store,
            saves: Arc::new(Saves::new(config)),
        }
    }

    /// The policy for concurrent saves.
    pub fn policy(&self) -> SavePolicy {
        self.saves.policy()
    }

    /// The storestack store underneath.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the storestack store.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

type Data = HashMap<String, serde_json::Value>;

/// Renders an error with its whole source chain (tower-sessions keeps only
/// strings).
fn backend(err: StoreError) -> Error {
    Error::Backend(codec::chain(&err))
}

fn encode_data(data: &Data, expires_at: SystemTime) -> session_store::Result<Record> {
    codec::encode(data, expires_at).map_err(|e| Error::Encode(e.to_string()))
}

#[async_trait]
impl<S: Store> tower_sessions_core::SessionStore for SessionStore<S> {
    async fn create(&self, record: &mut SessionRecord) -> session_store::Result<()> {
        // A cycled ID: the loaded session's snapshot token goes.
        self.saves.forget(&mut record.data);
        let stored = encode_data(&record.data, to_system_time(record.expiry_date))?;
        for _ in 0..MAX_CREATE_ATTEMPTS {
            let key = record.id.to_string();
            if self
                .inner
                .create(&key, stored.clone())
                .await
                .map_err(backend)?
            {
                return Ok(());
            }
            tracing::warn!(session = %KeyHash::of(&key), "session id collision, drawing a fresh id");
            record.id = Id::default();
        }
        Err(Error::Backend(format!(
            "no free session id after {MAX_CREATE_ATTEMPTS} attempts"
        )))
    }

    async fn save(&self, record: &SessionRecord) -> session_store::Result<()> {
        self.saves.save(&self.inner, record).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<SessionRecord>> {
        let key = id.to_string();
        let found = match self.inner.get_versioned(&key).await {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(None),
            Err(err) if err.kind() == ErrorKind::Corrupt => {
                tracing::warn!(session = %KeyHash::of(&key), error = %err, "unreadable session ignored");
                return Ok(None);
            }
            Err(err) => return Err(backend(err)),
        };
        match rmp_serde::from_slice::<Data>(&found.record.value) {
            Ok(mut data) => {
                self.saves.remember(&key, &found, &mut data);
                Ok(Some(SessionRecord {
                    id: *id,
                    data,
                    expiry_date: to_offset_date_time(found.record.expires_at),
                }))
            }
            Err(err) => {
                tracing::warn!(session = %KeyHash::of(&key), error = %err, "undecodable session ignored");
                Ok(None)
            }
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.inner
            .delete(&id.to_string())
            .await
            .map(drop)
            .map_err(backend)
    }
}

#[cfg(test)]
mod tests;
