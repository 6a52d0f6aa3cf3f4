//! Key prefixing, so several applications share one backend.
//!
//! [`Namespaced`] prepends a fixed prefix to every key on the way in and
//! strips it from scanned keys on the way out. `len`, `scan` and `clear`
//! see only this namespace: `len` and `clear` walk the namespace with a
//! prefix scan (the backends serve prefix scans natively), so their cost
//! grows with the namespace, not with the whole backend.
//!
//! The caller's key is checked against [`limits`] *before*
//! the prefix is added, so an empty key is refused even though
//! `prefix + ""` would not be empty; the backend then checks the full key,
//! so the longest key a namespaced store accepts is
//! [`MAX_KEY_LEN`](crate::limits::MAX_KEY_LEN) minus the prefix length.
//!
//! # Default
//!
//! No default prefix: one is always given. An empty prefix is allowed and
//! makes the decorator transparent.
//!
//! # Ordering
//!
//! Anywhere above the backend. Put it *below* Encrypted if you want the
//! namespaced key to be the associated data that binds a ciphertext to its
//! key (the default fluent order does this only when `namespaced` is called
//! first).
//!
//! # Examples
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use storestack::{MemoryStore, Record, Store, StoreExt};
//!
//! let shared = MemoryStore::new();
//! let app_a = shared.clone().namespaced("a:");
//! let app_b = shared.clone().namespaced("b:");
//! app_a.set("sess", Record::never_expiring("from a")).await?;
//! app_b.set("sess", Record::never_expiring("from b")).await?;
//!
//! assert_eq!(app_a.get("sess").await?.unwrap().value, "from a");
//! assert_eq!(shared.get("b:sess").await?.unwrap().value, "from b");
//! assert_eq!(app_a.len().await?, 1);
//! app_a.clear().await?;
//! assert_eq!(shared.len().await?, 1); // b's session is untouched
//! # Ok::<_, storestack::StoreError>(())
//! # }).unwrap();
//! ```

mod layer;

use std::time::SystemTime;

use async_trait::async_trait;

pub use layer::NamespacedLayer;

use crate::error::{Op, Result};
use crate::limits;
use crate::store::{Condition, Record, ScanCursor, ScanPage, Store, Versioned};

/// Keys scanned per page by `len` and `clear`.
const WALK_PAGE: usize = 1000;

/// A store whose keys all carry a prefix. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Namespaced<S> {
    inner: S,
    prefix: String,
    name: String,
}

impl<S: Store> Namespaced<S> {
    /// Wraps `inner`, prefixing every key with `prefix`.
    pub fn new(inner: S, prefix: impl Into<String>) -> Self {
        let name = format!("namespaced({})", inner.name());
        Namespaced {
            inner,
            prefix: prefix.into(),
            name,
        }
    }
}

impl<S> Namespaced<S> {
    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The wrapped store.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the store.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn full_key(&self, op: Op, key: &str) -> Result<String> {
        limits::check_key(op, key)?;
        let mut full = String::with_capacity(self.prefix.len() + key.len());
        full.push_str(&self.prefix);
        full.push_str(key);
        Ok(full)
    }
}

impl<S: Store> Namespaced<S> {
    /// Calls `f` with every page of keys in the namespace (full keys).
    async fn walk(&self, op: Op, mut f: impl FnMut(Vec<String>) -> Result<()>) -> Result<()> {
        let mut cursor = ScanCursor::start();
        loop {
            let page = self
                .inner
                .scan(&self.prefix, cursor, WALK_PAGE)
                .await
                .map_err(|e| e.with_op(op))?;
            f(page.keys)?;
            match page.next {
                Some(next) => cursor = next,
                None => return Ok(()),
            }
        }
    }
}

#[async_trait]
impl<S: Store> Store for Namespaced<S> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &str) -> Result<Option<Record>> {
        self.inner.get(&self.full_key(Op::Get, key)?).await
    }

    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.inner.set(&self.full_key(Op::Set, key)?, record).await
    }

    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.inner
            .create(&self.full_key(Op::Create, key)?, record)
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.inner.delete(&self.full_key(Op::Delete, key)?).await
    }

    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        self.inner
            .touch(&self.full_key(Op::Touch, key)?, expires_at)
            .await
    }

    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        let full_prefix = format!("{}{prefix}", self.prefix);
        let mut page = self.inner.scan(&full_prefix, cursor, limit).await?;
        let strip = self.prefix.len();
        for key in &mut page.keys {
            key.drain(..strip);
        }
        Ok(page)
    }

    async fn len(&self) -> Result<u64> {
        if self.prefix.is_empty() {
            return self.inner.len().await;
        }
        let mut n = 0u64;
        self.walk(Op::Len, |keys| {
            n += keys.len() as u64;
            Ok(())
        })
        .await?;
        Ok(n)
    }

    async fn clear(&self) -> Result<()> {
        if self.prefix.is_empty() {
            return self.inner.clear().await;
        }
        let mut keys = Vec::new();
        self.walk(Op::Clear, |page| {
            keys.extend(page);
            Ok(())
        })
        .await?;
        for key in keys {
            self.inner
                .delete(&key)
                .await
                .map_err(|e| e.with_op(Op::Clear))?;
        }
        Ok(())
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.inner
            .get_versioned(&self.full_key(Op::GetVersioned, key)?)
            .await
    }

    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        self.inner
            .set_if(&self.full_key(Op::SetIf, key)?, record, condition)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, MemoryStore, StoreExt};

    #[tokio::test]
    async fn empty_key_refused_before_prefixing() {
        let store = MemoryStore::new().namespaced("ns:");
        let err = store.get("").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = store
            .set("", Record::never_expiring("v"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn scan_strips_prefix_and_ignores_other_namespaces() {
        let shared = MemoryStore::new();
        let ns = shared.clone().namespaced("ns:");
        for k in ["a1", "a2", "b1"] {
            ns.set(k, Record::never_expiring("v")).await.unwrap();
        }
        shared
            .set("other:a1", Record::never_expiring("v"))
            .await
            .unwrap();
        let page = ns.scan("a", ScanCursor::start(), 10).await.unwrap();
        let mut keys = page.keys;
        keys.sort();
        assert_eq!(keys, ["a1", "a2"]);
        assert_eq!(ns.len().await.unwrap(), 3);
    }
}
