//! # storestack-sessions
//!
//! A [tower-sessions](https://docs.rs/tower-sessions) [`SessionStore`] for
//! any storestack [`Store`]: put a whole stack (fallback, breaker, cache,
//! encryption, …) behind `SessionManagerLayer`.
//!
//! | tower-sessions | storestack |
//! |---|---|
//! | `create` | [`Store::create`] (insert only if absent); on an ID collision a fresh ID is drawn and tried again, so another user's session is never overwritten |
//! | `save` | [`Store::set`] |
//! | `load` | [`Store::get`] |
//! | `delete` | [`Store::delete`] |
//!
//! The record is stored compactly: the key is the session ID, the value is
//! the session data encoded as MessagePack, and the session's expiry date
//! becomes the record's absolute expiry.
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

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use storestack::redact::KeyHash;
use storestack::{ErrorKind, Record, Store, StoreError};
use storestack_session_core::codec::{
    self, offset_date_time as to_offset_date_time, system_time as to_system_time,
};
use tower_sessions_core::session::{Id, Record as SessionRecord};
use tower_sessions_core::session_store::{self, Error};

pub use degraded::{DegradedLayer, DegradedService};
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
}

impl<S: Store> fmt::Debug for SessionStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStore")
            .field("store", &self.inner.name())
            .finish()
    }
}

impl<S: Store> SessionStore<S> {
    /// Serves sessions from `store`.
    pub fn new(store: S) -> Self {
        SessionStore { inner: store }
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

fn encode(record: &SessionRecord) -> session_store::Result<Record> {
    codec::encode(&record.data, to_system_time(record.expiry_date))
        .map_err(|e| Error::Encode(e.to_string()))
}

#[async_trait]
impl<S: Store> tower_sessions_core::SessionStore for SessionStore<S> {
    async fn create(&self, record: &mut SessionRecord) -> session_store::Result<()> {
        let stored = encode(record)?;
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
        let stored = encode(record)?;
        self.inner
            .set(&record.id.to_string(), stored)
            .await
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<SessionRecord>> {
        let key = id.to_string();
        let record = match self.inner.get(&key).await {
            Ok(Some(record)) => record,
            Ok(None) => return Ok(None),
            Err(err) if err.kind() == ErrorKind::Corrupt => {
                tracing::warn!(session = %KeyHash::of(&key), error = %err, "unreadable session ignored");
                return Ok(None);
            }
            Err(err) => return Err(backend(err)),
        };
        match rmp_serde::from_slice::<Data>(&record.value) {
            Ok(data) => Ok(Some(SessionRecord {
                id: *id,
                data,
                expiry_date: to_offset_date_time(record.expires_at),
            })),
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
