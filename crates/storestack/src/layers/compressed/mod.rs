//! Value compression: zstd, LZ4 or gzip, behind a self-describing header.
//!
//! [`Compressed`] compresses values on the way in and decompresses them on
//! the way out. Keys, expiry and the operations themselves pass through
//! untouched: `create` stays `create`, `touch` never rewrites a value.
//!
//! * **Threshold**: values shorter than
//!   [`min_size`](CompressedLayer::min_size) are stored as they are, and so
//!   are values whose compressed form (with its header) is not smaller.
//! * **Self-describing**: a compressed value starts with a header naming
//!   its codec, so changing the codec or the threshold never makes old
//!   values unreadable; a reader decodes whatever any writer chose.
//! * **Legacy values**: a value without the header (written before
//!   compression was switched on, or stored raw) is returned as it is.
//! * **Bounded**: the header declares the decompressed length; a value
//!   declaring more than [`max_value_len`](CompressedLayer::max_value_len)
//!   is `TooLarge` before anything is allocated, and data that inflates
//!   past its declared length is `Corrupt`, so a crafted value (a
//!   decompression bomb) cannot exhaust memory. Bad data is `Corrupt`,
//!   never a panic. Writing a value over the limit is `TooLarge`, so
//!   whatever is written can be read back.
//!
//! Compression runs on the calling task. A 20 KiB JSON session took about
//! 50 µs of CPU to compress with zstd level 3 and 15 µs to decompress on
//! the (loaded, 2-core) development machine: `cargo bench -p storestack
//! --bench codec`. zstd contexts are kept per thread and reused, so no
//! call pays for creating one.
//!
//! # Header
//!
//! ```text
//! 0xC1 'C' | version (1) | codec | decompressed length (LEB128, 1-5 bytes) | payload
//! ```
//!
//! Codec 0 is "stored" (the payload is the value), 1 zstd (one frame),
//! 2 LZ4 block format, 3 gzip (one RFC 1952 member): a program in another
//! language reads a value by skipping the header and handing the payload
//! to its own library. A 2 KiB value has a 6-byte header.
//!
//! The magic `0xC1` can start neither UTF-8 text (so no JSON document)
//! nor any MessagePack value, so session payloads written before
//! compression was switched on are never mistaken for compressed ones.
//! Values this decorator stores raw that happen to start with `0xC1 'C'`
//! are escaped with a "stored" header. The one residual ambiguity: a
//! *legacy* binary value in some other format (CBOR, bincode, …) that
//! starts with `0xC1 0x43` is read as a header and most likely reported
//! `Corrupt`.
//!
//! # Default
//!
//! zstd level 3 (feature `zstd`; else LZ4, else gzip), values under 512
//! bytes stored raw, at most 8 MiB per value
//! ([`DEFAULT_MAX_VALUE_LEN`](crate::limits::DEFAULT_MAX_VALUE_LEN)).
//!
//! # Ordering
//!
//! Above `Encrypted`, i.e. `.compressed(..)` *after* `.encrypted(..)`:
//! Compressed then sees the plaintext first and compresses it, and
//! Encrypted seals the smaller result. Ciphertext looks random and does
//! not compress, so the other order stores every value at full size (the
//! two doctests under [Order](crate::layer#order) measure it). Below
//! `Cached`, so the cache holds values ready to use. Above the backend
//! and any Fallback or Migration, so every store holds the same bytes.
//!
//! # Examples
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use storestack::{CompressedLayer, MemoryStore, Record, Store, StoreExt};
//!
//! let backend = MemoryStore::new();
//! let store = backend.clone().compressed(CompressedLayer::default().min_size(64));
//! let session = format!(r#"{{"user":"ada","views":[{}]}}"#, "\"/cart\",".repeat(200));
//!
//! store.set("sess:1", Record::never_expiring(session.clone())).await?;
//! assert_eq!(store.get("sess:1").await?.unwrap().value, session);
//! let stored = backend.get("sess:1").await?.unwrap().value;
//! assert!(stored.len() < session.len() / 10);
//!
//! // A value written before compression was switched on reads as it is.
//! backend.set("sess:old", Record::never_expiring(r#"{"user":"bob"}"#)).await?;
//! assert_eq!(store.get("sess:old").await?.unwrap().value, r#"{"user":"bob"}"#);
//! # Ok::<_, storestack::StoreError>(())
//! # }).unwrap();
//! ```

mod codec;
mod header;
mod layer;
#[cfg(all(test, feature = "zstd", feature = "lz4", feature = "gzip"))]
mod tests;

use std::time::SystemTime;

use async_trait::async_trait;

pub use codec::Codec;
pub use layer::{CompressedLayer, DEFAULT_MIN_SIZE};

use crate::error::{Op, Result, StoreError};
use crate::store::{Condition, Record, ScanCursor, ScanPage, Store, Versioned};

/// A store whose values are compressed. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Compressed<S> {
    inner: S,
    layer: CompressedLayer,
    name: String,
}

impl<S: Store> Compressed<S> {
    /// Wraps `inner` with the default settings.
    pub fn new(inner: S) -> Self {
        Self::with_layer(inner, CompressedLayer::default())
    }

    /// Wraps `inner` with the settings of `layer`.
    pub fn with_layer(inner: S, layer: CompressedLayer) -> Self {
        let name = format!("compressed({})", inner.name());
        Compressed { inner, layer, name }
    }
}

impl<S> Compressed<S> {
    /// The settings.
    pub fn layer(&self) -> &CompressedLayer {
        &self.layer
    }

    /// The wrapped store.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the store.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn encode(&self, op: Op, record: Record) -> Result<Record> {
        let value = self
            .layer
            .encode_value(record.value)
            .map_err(|e| self.own(e).with_op(op))?;
        Ok(Record { value, ..record })
    }

    fn own(&self, err: StoreError) -> StoreError {
        err.with_store(self.name.clone())
    }
}

#[async_trait]
impl<S: Store> Store for Compressed<S> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &str) -> Result<Option<Record>> {
        let Some(record) = self.inner.get(key).await? else {
            return Ok(None);
        };
        let value = self
            .layer
            .decode_value(record.value)
            .map_err(|e| self.own(e))?;
        Ok(Some(Record { value, ..record }))
    }

    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.inner.set(key, self.encode(Op::Set, record)?).await
    }

    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.inner
            .create(key, self.encode(Op::Create, record)?)
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.inner.delete(key).await
    }

    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        self.inner.touch(key, expires_at).await
    }

    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        self.inner.scan(prefix, cursor, limit).await
    }

    async fn len(&self) -> Result<u64> {
        self.inner.len().await
    }

    async fn clear(&self) -> Result<()> {
        self.inner.clear().await
    }

    /// The version is the inner store's: that of the compressed bytes.
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        let Some(Versioned { record, version }) = self.inner.get_versioned(key).await? else {
            return Ok(None);
        };
        let value = self
            .layer
            .decode_value(record.value)
            .map_err(|e| self.own(e))?;
        let record = Record { value, ..record };
        Ok(Some(Versioned { record, version }))
    }

    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        let record = self.encode(Op::SetIf, record)?;
        self.inner.set_if(key, record, condition).await
    }
}
