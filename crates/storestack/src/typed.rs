//! Typed access: application structs in, application structs out.
//!
//! [`Typed`] wraps any store and encodes values with a [`Codec`]: [`Json`]
//! (feature `json`) or [`MessagePack`] (feature `msgpack`, compact: the
//! better choice for session payloads). Every decorator below still works
//! on bytes. Bytes that do not decode are a [`Corrupt`](crate::ErrorKind::Corrupt)
//! error, never a panic.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use serde::{Deserialize, Serialize};
//! use storestack::{Expiry, MemoryStore, StoreExt};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Session { user: String, views: u32 }
//!
//! let sessions = MemoryStore::new().typed::<Session>();
//! let s = Session { user: "ada".into(), views: 1 };
//! sessions.set("sess:1", &s, Expiry::after(Duration::from_secs(60))).await?;
//! assert_eq!(sessions.get("sess:1").await?, Some(s));
//! # Ok::<_, storestack::StoreError>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::time::SystemTime;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Op, Result, StoreError};
use crate::store::{Expiry, Record, Store};

/// Turns values into bytes and back.
pub trait Codec: Send + Sync + 'static {
    /// A short name for messages (`"json"`).
    const NAME: &'static str;

    /// Encodes `value`.
    fn encode<T: Serialize + ?Sized>(
        value: &T,
    ) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>>;

    /// Decodes `bytes`.
    fn decode<T: DeserializeOwned>(
        bytes: &[u8],
    ) -> Result<T, Box<dyn std::error::Error + Send + Sync>>;
}

/// JSON via `serde_json`.
#[cfg(feature = "json")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

#[cfg(feature = "json")]
impl Codec for Json {
    const NAME: &'static str = "json";

    fn encode<T: Serialize + ?Sized>(
        value: &T,
    ) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(serde_json::to_vec(value)?)
    }

    fn decode<T: DeserializeOwned>(
        bytes: &[u8],
    ) -> Result<T, Box<dyn std::error::Error + Send + Sync>> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

/// MessagePack via `rmp-serde`, with field names (so structs can gain
/// optional fields without breaking stored sessions).
#[cfg(feature = "msgpack")]
#[derive(Debug, Clone, Copy, Default)]
pub struct MessagePack;

#[cfg(feature = "msgpack")]
impl Codec for MessagePack {
    const NAME: &'static str = "msgpack";

    fn encode<T: Serialize + ?Sized>(
        value: &T,
    ) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(rmp_serde::to_vec_named(value)?)
    }

    fn decode<T: DeserializeOwned>(
        bytes: &[u8],
    ) -> Result<T, Box<dyn std::error::Error + Send + Sync>> {
        Ok(rmp_serde::from_slice(bytes)?)
    }
}

/// A typed view of a store. Build it with
/// [`StoreExt::typed`](crate::StoreExt::typed) or
/// [`StoreExt::typed_with`](crate::StoreExt::typed_with).
pub struct Typed<S, T, C> {
    inner: S,
    _marker: PhantomData<fn() -> (T, C)>,
}

impl<S: fmt::Debug, T, C: Codec> fmt::Debug for Typed<S, T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Typed")
            .field("codec", &C::NAME)
            .field("type", &std::any::type_name::<T>())
            .field("inner", &self.inner)
            .finish()
    }
}

impl<S: Clone, T, C> Clone for Typed<S, T, C> {
    fn clone(&self) -> Self {
        Typed {
            inner: self.inner.clone(),
            _marker: PhantomData,
        }
    }
}

impl<S, T, C> Typed<S, T, C> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Typed {
            inner,
            _marker: PhantomData,
        }
    }

    /// The byte store underneath.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the byte store.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, T, C> Typed<S, T, C>
where
    S: Store,
    T: Serialize + DeserializeOwned,
    C: Codec,
{
    fn encode(&self, op: Op, value: &T) -> Result<Bytes> {
        C::encode(value).map(Bytes::from).map_err(|e| {
            StoreError::invalid_input(op)
                .with_store(C::NAME)
                .with_message("value could not be encoded")
                .with_source(e)
        })
    }

    fn decode(&self, bytes: &[u8]) -> Result<T> {
        C::decode(bytes).map_err(|e| {
            StoreError::corrupt(Op::Get)
                .with_store(C::NAME)
                .with_message("stored value could not be decoded")
                .with_source(e)
        })
    }

    /// The value at `key`, if any.
    pub async fn get(&self, key: &str) -> Result<Option<T>> {
        Ok(self.get_with_expiry(key).await?.map(|(v, _)| v))
    }

    /// The value at `key` and its expiry, if any.
    pub async fn get_with_expiry(&self, key: &str) -> Result<Option<(T, Option<SystemTime>)>> {
        match self.inner.get(key).await? {
            None => Ok(None),
            Some(r) => Ok(Some((self.decode(&r.value)?, r.expires_at))),
        }
    }

    /// Writes `value` at `key` (upsert).
    pub async fn set(&self, key: &str, value: &T, expiry: Expiry) -> Result<()> {
        let bytes = self.encode(Op::Set, value)?;
        self.inner.set(key, Record::new(bytes, expiry)).await
    }

    /// Writes `value` at `key` only if absent; returns whether it wrote.
    pub async fn create(&self, key: &str, value: &T, expiry: Expiry) -> Result<bool> {
        let bytes = self.encode(Op::Create, value)?;
        self.inner.create(key, Record::new(bytes, expiry)).await
    }

    /// Removes `key`; returns whether it was there.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        self.inner.delete(key).await
    }

    /// Changes the expiry of `key`; returns whether it was there.
    pub async fn touch(&self, key: &str, expiry: Expiry) -> Result<bool> {
        self.inner
            .touch(key, expiry.resolve(SystemTime::now()))
            .await
    }
}

#[cfg(all(test, feature = "json", feature = "msgpack"))]
mod tests {
    use super::*;
    use crate::{ErrorKind, MemoryStore, StoreExt};
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Session {
        user: String,
        views: u32,
    }

    #[tokio::test]
    async fn round_trips_with_both_codecs() {
        let mem = MemoryStore::new();
        let json = mem.clone().typed::<Session>();
        let mp = mem.clone().typed_with::<Session, MessagePack>();
        let s = Session {
            user: "ada".into(),
            views: 3,
        };
        json.set("j", &s, Expiry::Never).await.unwrap();
        mp.set("m", &s, Expiry::Never).await.unwrap();
        assert_eq!(json.get("j").await.unwrap().as_ref(), Some(&s));
        assert_eq!(mp.get("m").await.unwrap().as_ref(), Some(&s));
        assert!(!mp.create("m", &s, Expiry::Never).await.unwrap());
    }

    #[tokio::test]
    async fn garbage_is_corrupt_not_a_panic() {
        let mem = MemoryStore::new();
        mem.set("k", Record::never_expiring(&b"\xff\x00not json"[..]))
            .await
            .unwrap();
        for err in [
            mem.clone().typed::<Session>().get("k").await.unwrap_err(),
            mem.clone()
                .typed_with::<Session, MessagePack>()
                .get("k")
                .await
                .unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::Corrupt);
            assert!(std::error::Error::source(&err).is_some());
        }
    }
}
