//! # storestack-actix
//!
//! An [actix-session](https://docs.rs/actix-session) [`SessionStore`] for
//! any storestack [`Store`]: put a whole stack (fallback, breaker, cache,
//! encryption, …) behind actix-web's `SessionMiddleware`.
//!
//! | actix-session | storestack |
//! |---|---|
//! | `save` (a new session) | [`Store::create`] under a fresh 64-character key (insert only if absent); on a collision another key is drawn, so another user's session is never overwritten |
//! | `update` | [`Store::set`] |
//! | `update_ttl` | [`Store::touch`] |
//! | `load` | [`Store::get`] |
//! | `delete` | [`Store::delete`] |
//!
//! The record is the one `storestack-sessions` writes (see
//! [`storestack_session_core::codec`]): the session's string map as
//! MessagePack, and an **absolute** expiry, `now + ttl` when the session
//! is written, so fallback repairs and migrations keep its remaining life.
//!
//! ## Tampering, corruption and outages
//!
//! A stored value that fails to decode or to authenticate (`Corrupt` from
//! an `Encrypted` layer) is logged with a keyed hash of the key, never the
//! key, and is *no session*: actix-session then starts a fresh session
//! under a **new** key (a `LoadError::Deserialization` would make it reuse
//! the old key). Transient failures (`Unavailable`, `Timeout`,
//! `CircuitOpen`) are errors (`LoadError::Other` and friends, the
//! [`StoreError`] inside with its whole chain): they are not the user's
//! fault and must not silently log anyone out.
//!
//! ## Graceful degradation
//!
//! Wrap the stack in [`DegradeLayer`] and the app in the [`Degradation`]
//! middleware (outside `SessionMiddleware`), and a store outage costs a
//! user the session changes made during it, not the site: the request goes
//! on with a temporary session and the response carries
//! `X-Session-Degraded: true`. See [`storestack_session_core::degrade`]
//! for the rules and limits.
//!
//! # Examples
//!
//! ```
//! use actix_session::SessionMiddleware;
//! use actix_web::cookie::Key;
//! use actix_web::{web, App, HttpResponse};
//! use storestack::{MemoryStore, StoreExt};
//! use storestack_actix::{Degradation, DegradeLayer, SessionStore};
//!
//! let store = SessionStore::new(MemoryStore::new().layer(DegradeLayer::default()).shared());
//! let key = Key::generate();
//! let app = App::new()
//!     .wrap(SessionMiddleware::new(store, key))
//!     .wrap(Degradation::new()) // wraps the line above: the outer one
//!     .route("/", web::get().to(HttpResponse::Ok));
//! # drop(app);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod middleware;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use actix_session::storage::{generate_session_key, LoadError, SaveError, SessionKey, UpdateError};
use storestack::clock::{self, SharedClock};
use storestack::redact::KeyHash;
use storestack::{Record, Store, StoreError};
use storestack_session_core::codec::{self, StringMap};

pub use middleware::{Degradation, DegradationMiddleware};
pub use storestack_session_core::degrade::{DegradeConfig, DegradeLayer, Degraded, HEADER};

/// How many fresh keys `save` draws after collisions before giving up.
/// With 64 random alphanumeric characters a single collision is already
/// astronomically rare; repeated ones mean a broken random source or a
/// store that always says "exists".
const MAX_CREATE_ATTEMPTS: usize = 8;

/// An actix-session store over any storestack [`Store`]. See the
/// [crate docs](crate).
#[derive(Clone)]
pub struct SessionStore<S> {
    inner: S,
    clock: SharedClock,
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
        SessionStore {
            inner: store,
            clock: clock::system(),
        }
    }

    /// Sets the clock that turns a session's TTL into its absolute expiry
    /// (a `MockClock` in tests, the same as the store's). Default: the
    /// system clock.
    pub fn clock(mut self, clock: impl clock::Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The storestack store underneath.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the storestack store.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn encode(&self, state: &StringMap, ttl: &time::Duration) -> Result<Record, anyhow::Error> {
        let expires_at = codec::expiry_after(self.clock.now(), *ttl);
        codec::encode(state, expires_at).map_err(anyhow::Error::new)
    }

    // The store-facing calls, one each: a switch to conditional writes
    // changes these alone.

    async fn fetch(&self, key: &str) -> Result<Option<StringMap>, StoreError> {
        let found = codec::load::<StringMap>(key, self.inner.get(key).await)?;
        Ok(found.map(|(state, _)| state))
    }

    async fn insert_new(&self, key: &str, record: Record) -> Result<bool, StoreError> {
        self.inner.create(key, record).await
    }

    /// Writes over the stored session only if it still exists
    /// (`set_if(Exists)`): a session deleted (a logout) while this request
    /// ran stays deleted. Returns whether it wrote.
    async fn overwrite(&self, key: &str, record: Record) -> Result<bool, StoreError> {
        self.inner
            .set_if(key, record, storestack::Condition::Exists)
            .await
    }

    async fn extend(&self, key: &str, expires_at: SystemTime) -> Result<(), StoreError> {
        self.inner.touch(key, Some(expires_at)).await.map(drop)
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await.map(drop)
    }
}

impl<S: Store> actix_session::storage::SessionStore for SessionStore<S> {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<StringMap>, LoadError> {
        self.fetch(session_key.as_ref())
            .await
            .map_err(|e| LoadError::Other(e.into()))
    }

    async fn save(&self, state: StringMap, ttl: &time::Duration) -> Result<SessionKey, SaveError> {
        let record = self.encode(&state, ttl).map_err(SaveError::Serialization)?;
        for _ in 0..MAX_CREATE_ATTEMPTS {
            let key = generate_session_key();
            let created = self.insert_new(key.as_ref(), record.clone()).await;
            if created.map_err(|e| SaveError::Other(e.into()))? {
                return Ok(key);
            }
            tracing::warn!(session = %KeyHash::of(key.as_ref()), "session key collision, drawing a fresh key");
        }
        Err(SaveError::Other(anyhow::anyhow!(
            "no free session key after {MAX_CREATE_ATTEMPTS} attempts"
        )))
    }

    async fn update(
        &self,
        session_key: SessionKey,
        state: StringMap,
        ttl: &time::Duration,
    ) -> Result<SessionKey, UpdateError> {
        let record = self
            .encode(&state, ttl)
            .map_err(UpdateError::Serialization)?;
        let written = self
            .overwrite(session_key.as_ref(), record)
            .await
            .map_err(|e| UpdateError::Other(e.into()))?;
        if !written {
            // Deleted meanwhile (a logout in another request): never
            // re-created. The cookie now names no session; the next request
            // starts a fresh one.
            tracing::debug!(session = %KeyHash::of(session_key.as_ref()), "session deleted during the request; not re-created");
        }
        Ok(session_key)
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        ttl: &time::Duration,
    ) -> Result<(), anyhow::Error> {
        let expires_at = codec::expiry_after(self.clock.now(), *ttl);
        Ok(self.extend(session_key.as_ref(), expires_at).await?)
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        Ok(self.remove(session_key.as_ref()).await?)
    }
}

#[cfg(test)]
mod tests;
