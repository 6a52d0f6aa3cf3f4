//! Authenticated encryption of values: AES-256-GCM or XChaCha20-Poly1305,
//! with key rotation.
//!
//! [`Encrypted`] seals every value on the way in and opens it on the way
//! out. Keys, expiry and the operations themselves pass through: `create`
//! stays `create`, `touch` never rewrites a value.
//!
//! * **Random nonces** from the operating system's generator, one per
//!   write, carried in the value.
//! * **Key rotation**: a [`Keyring`] encrypts with its current key and
//!   decrypts with any key it lists; every value names its key id, so a
//!   ring change needs no downtime (see [`Keyring`] for the steps).
//!   [`Encrypted::reencrypt`] (or the store-free
//!   [`EncryptedLayer::reencrypt_value`], for a custom copy loop) rewrites
//!   a record under the current key and keeps its expiry. A
//!   [`BulkMigrator`](crate::layers::migration::bulk::BulkMigrator) run
//!   between two stores that are both wrapped in `Encrypted` with the same
//!   keyring re-encrypts on the way: each value is opened with the key
//!   that sealed it and sealed again under the current key as the
//!   migrator writes it to the new store, expiry kept; once the run is
//!   verified, the old keys can leave the ring.
//! * **Bound to its key**: the store key is authenticated as associated
//!   data, so a ciphertext copied under another key does not decrypt:
//!   someone who can write to the backend cannot swap one user's session
//!   for another's.
//! * **Tampering is `Corrupt`**: any changed, truncated or extended byte
//!   fails authentication; garbage is never returned, nothing panics.
//! * **Keys** are wiped from memory when dropped and never printed by
//!   `Debug`; they load from bytes, hex, base64 or an environment
//!   variable ([`Keyring::from_env`]) with errors ([`KeyError`]) that name
//!   key ids, never key material.
//!
//! What it does not protect: the expiry (an attacker with write access can
//! extend or shorten a record's life) and freshness (the same attacker can
//! put back an older ciphertext of the *same* key, i.e. roll a session
//! back). Keys are visible to the backend in clear, as they must be.
//!
//! # Header
//!
//! ```text
//! 0xC1 'E' | version (1) | algorithm | id length | key id | nonce | ciphertext | tag (16)
//! ```
//!
//! Algorithm 1 is AES-256-GCM (12-byte nonce), 2 XChaCha20-Poly1305
//! (24-byte nonce). The associated data is the header up to the key id
//! followed by the store key. With a 2-byte key id a value grows by 35
//! bytes (AES-256-GCM) or 47 (XChaCha20-Poly1305). A value without the
//! magic is not encrypted: `Corrupt`, unless
//! [plaintext reads](EncryptedLayer::allow_plaintext_reads) are on.
//!
//! # Default
//!
//! AES-256-GCM; plaintext reads off. There is no default key: one is
//! always given.
//!
//! # Ordering
//!
//! Below `Compressed`, i.e. `.encrypted(..)` *before*
//! `.compressed(..)`: the outer Compressed sees the plaintext first and
//! compresses it, then Encrypted seals the smaller result. The other
//! order compresses ciphertext, which does not shrink (the two doctests
//! under [Order](crate::layer#order) measure it). Below `Cached`, so the
//! cache holds plaintext and hits skip decryption. The key bound into
//! each value is the key this decorator sees: put `namespaced` *below* it
//! (call it first) to bind the full prefixed key.
//!
//! # Examples
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use storestack::{ErrorKind, Key, Keyring, MemoryStore, Record, Store, StoreExt};
//!
//! let backend = MemoryStore::new();
//! let old = Keyring::new(Key::from_hex("2024-01", &"11".repeat(32))?);
//! backend.clone().encrypted(old).set("sess:a", Record::never_expiring("alice")).await?;
//!
//! // Rotate: the new key encrypts, the old one still decrypts.
//! let ring = Keyring::from_keys([
//!     Key::generate("2024-06")?,
//!     Key::from_hex("2024-01", &"11".repeat(32))?,
//! ])?;
//! let store = backend.clone().encrypted(ring);
//! assert_eq!(store.get("sess:a").await?.unwrap().value, "alice");
//! assert!(store.reencrypt("sess:a").await?); // now under 2024-06
//!
//! // Stored bytes are sealed and bound to their key.
//! store.set("sess:b", Record::never_expiring("bob")).await?;
//! let sealed = backend.get("sess:b").await?.unwrap();
//! assert!(!sealed.value.windows(3).any(|w| w == b"bob"));
//! backend.set("sess:a", sealed).await?; // swap bob's session in for alice
//! assert_eq!(store.get("sess:a").await.unwrap_err().kind(), ErrorKind::Corrupt);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod header;
mod key;
mod keyring;
mod layer;
#[cfg(test)]
mod tests;

use std::time::SystemTime;

use async_trait::async_trait;

pub use key::{Algorithm, Key, KeyError, KEY_LEN, MAX_KEY_ID_LEN};
pub use keyring::Keyring;
pub use layer::EncryptedLayer;

use crate::error::{Op, Result, StoreError};
use crate::store::{Condition, Record, ScanCursor, ScanPage, Store, Versioned};

/// A store whose values are encrypted. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Encrypted<S> {
    inner: S,
    layer: EncryptedLayer,
    name: String,
}

impl<S: Store> Encrypted<S> {
    /// Wraps `inner`, encrypting with `keyring` (other settings at their
    /// defaults).
    pub fn new(inner: S, keyring: Keyring) -> Self {
        Self::with_layer(inner, EncryptedLayer::new(keyring))
    }

    /// Wraps `inner` with the settings of `layer`.
    pub fn with_layer(inner: S, layer: EncryptedLayer) -> Self {
        let name = format!("encrypted({})", inner.name());
        Encrypted { inner, layer, name }
    }

    /// Rewrites the record at `key` under the current key and algorithm,
    /// keeping its expiry; returns whether it rewrote (`false`: no record,
    /// or already current). With plaintext reads on, a legacy plaintext
    /// value is encrypted.
    ///
    /// Not atomic: the record is read, then written with `set`. A write by
    /// someone else in between is overwritten with the older value, so
    /// sweep when writes are rare, or leave active sessions alone (every
    /// write already uses the current key) and sweep the idle ones. A
    /// record that expires in between is not resurrected: a `set` with a
    /// past expiry removes it.
    pub async fn reencrypt(&self, key: &str) -> Result<bool> {
        let Some(record) = self.inner.get(key).await? else {
            return Ok(false);
        };
        let Some(value) = self
            .layer
            .reencrypt_value(key, record.value)
            .map_err(|e| self.own(e))?
        else {
            return Ok(false);
        };
        self.inner.set(key, Record { value, ..record }).await?;
        Ok(true)
    }
}

impl<S> Encrypted<S> {
    /// The settings.
    pub fn layer(&self) -> &EncryptedLayer {
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

    fn encode(&self, op: Op, key: &str, record: Record) -> Result<Record> {
        let value = self
            .layer
            .encode_value(key, &record.value)
            .map_err(|e| self.own(e).with_op(op))?;
        Ok(Record { value, ..record })
    }

    fn own(&self, err: StoreError) -> StoreError {
        err.with_store(self.name.clone())
    }
}

#[async_trait]
impl<S: Store> Store for Encrypted<S> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &str) -> Result<Option<Record>> {
        let Some(record) = self.inner.get(key).await? else {
            return Ok(None);
        };
        let value = self
            .layer
            .decode_value(key, record.value)
            .map_err(|e| self.own(e))?;
        Ok(Some(Record { value, ..record }))
    }

    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.inner
            .set(key, self.encode(Op::Set, key, record)?)
            .await
    }

    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        let record = self.encode(Op::Create, key, record)?;
        self.inner.create(key, record).await
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

    /// The version is the inner store's: that of the ciphertext (a fresh
    /// nonce per write, so every write has a new version).
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        let Some(Versioned { record, version }) = self.inner.get_versioned(key).await? else {
            return Ok(None);
        };
        let value = self
            .layer
            .decode_value(key, record.value)
            .map_err(|e| self.own(e))?;
        let record = Record { value, ..record };
        Ok(Some(Versioned { record, version }))
    }

    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        let record = self.encode(Op::SetIf, key, record)?;
        self.inner.set_if(key, record, condition).await
    }
}
