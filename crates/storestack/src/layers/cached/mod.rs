#![doc = include_str!("docs.md")]

mod config;
mod core;
mod entry;
mod flight;
mod generation;
pub mod invalidation;
mod layer;
mod metrics;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

pub use config::{CacheConfig, DEFAULT_INVALIDATION_SECRET};
pub use invalidation::{Invalidator, LocalInvalidator, Notice, Subscriber};
pub use layer::CachedLayer;

use self::core::Core;
use crate::error::{ErrorKind, Result};
use crate::store::{Condition, Record, ScanCursor, ScanPage, Store, Versioned};
use entry::Freshness;
use flight::Role;
use invalidation::Message;

/// A store with a local cache in front. See the [module docs](self).
pub struct Cached<S> {
    inner: S,
    core: Arc<Core>,
    name: String,
}

impl<S: Clone> Clone for Cached<S> {
    /// A handle on the same cache and inner store.
    fn clone(&self) -> Self {
        Cached {
            inner: self.inner.clone(),
            core: self.core.clone(),
            name: self.name.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Cached<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cached")
            .field("inner", &self.inner)
            .field("entries", &self.core.cache.entry_count())
            .field("timing", &self.core.timing)
            .finish_non_exhaustive()
    }
}

impl<S: Store> Cached<S> {
    /// Wraps `inner`. With an invalidator, starts listening to it (at once
    /// inside a tokio runtime, else on the first operation).
    pub fn new(inner: S, config: CacheConfig) -> Self {
        let label = config
            .metrics_label
            .clone()
            .unwrap_or_else(|| inner.name().to_owned());
        Cached {
            name: format!("cached({})", inner.name()),
            core: Core::new(config, &label),
            inner,
        }
    }

    /// The number of cached entries (approximate: moka applies some
    /// updates lazily). Includes entries that can no longer be served.
    pub fn entry_count(&self) -> u64 {
        self.core.cache.entry_count()
    }

    /// A write: ends the key's cached entry before `run` starts, then
    /// caches what `after` says (when the write filled cleanly) and tells
    /// the other instances if the inner store may have changed.
    async fn write<T>(
        &self,
        key: &str,
        run: impl Future<Output = Result<T>>,
        after: impl FnOnce(&T) -> (Option<Record>, bool),
    ) -> Result<T> {
        self.write_with(key, false, run, |v, _| after(v)).await
    }

    /// [`write`](Self::write), also handing `after` the record that was
    /// cached and servable when the write began (if `lookup`).
    async fn write_with<T>(
        &self,
        key: &str,
        lookup: bool,
        run: impl Future<Output = Result<T>>,
        after: impl FnOnce(&T, Option<Record>) -> (Option<Record>, bool),
    ) -> Result<T> {
        let core = &self.core;
        let hash = core.gens.hash(key);
        if !core.caching() {
            let result = run.await;
            core.publish(|origin| Message::Key { origin, hash }).await;
            return result;
        }
        let ticket = core.gens.begin_write(hash);
        let cached = match lookup {
            true => match core.cache.get(key) {
                Some(e) if e.tag.covers(ticket.start()) => e.record.clone(),
                _ => None,
            },
            false => None,
        };
        let result = run.await;
        let tag = ticket.finish();
        let changed = match &result {
            Ok(v) => {
                let (fill, changed) = after(v, cached);
                core.fill_write(key, fill, tag);
                changed
            }
            Err(e) => {
                core.fill_write(key, None, None);
                // The other kinds are refusals before anything changed. A
                // permanent refusal may come from a Fallback's second side
                // after the first took the write: other instances must drop
                // the key too.
                matches!(
                    e.kind(),
                    ErrorKind::Timeout
                        | ErrorKind::Unavailable
                        | ErrorKind::Internal
                        | ErrorKind::PermissionDenied
                        | ErrorKind::Misconfigured
                )
            }
        };
        if changed {
            core.publish(|origin| Message::Key { origin, hash }).await;
        }
        result
    }

    /// A miss: reads through the single-flight and fills the cache.
    async fn load(&self, key: &str, hash: u64, start: generation::Tag) -> Result<Option<Record>> {
        let core = &self.core;
        for _ in 0..2 {
            match core.flights.join(&core.gens, hash, key, start) {
                Role::Leader(leader) => {
                    let result = self.inner.get(key).await;
                    if let Ok(record) = &result {
                        core.fill_read(key, hash, record, leader.tag());
                    }
                    leader.complete(&result);
                    return result;
                }
                Role::Follower(f) => {
                    if let Some(result) = f.wait().await {
                        return result;
                    }
                    // The leader was cancelled: try again.
                }
            }
        }
        self.inner.get(key).await
    }
}

impl<S> Cached<S> {
    /// The wrapped store.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the store (the cache is dropped with the last clone).
    pub fn into_inner(self) -> S {
        self.inner
    }
}

#[async_trait]
impl<S: Store> Store for Cached<S> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &str) -> Result<Option<Record>> {
        let core = &self.core;
        if !core.caching() {
            return self.inner.get(key).await;
        }
        let hash = core.gens.hash(key);
        let start = core.gens.tag(hash);
        let mut stale = None;
        if let Some(e) = core.cache.get(key) {
            match e.freshness(start, core.now(), &core.timing) {
                Freshness::Fresh => {
                    core.metrics.hits.increment(1);
                    return Ok(e.record.clone());
                }
                Freshness::Stale => stale = Some(e),
                Freshness::Unusable => {}
            }
        }
        core.metrics.misses.increment(1);
        match self.load(key, hash, start).await {
            Err(err) if err.is_transient() => {
                let now = core.now();
                match stale {
                    Some(e) if e.freshness(start, now, &core.timing) == Freshness::Stale => {
                        core.metrics.stale_served.increment(1);
                        tracing::debug!(error = %err, "inner store failed; served a stale cache entry");
                        Ok(e.record.clone())
                    }
                    _ => Err(err),
                }
            }
            other => other,
        }
    }

    async fn set(&self, key: &str, record: Record) -> Result<()> {
        let fill = record.clone();
        self.write(key, self.inner.set(key, record), |_| (Some(fill), true))
            .await
    }

    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        let fill = record.clone();
        self.write(key, self.inner.create(key, record), |&wrote| {
            (wrote.then_some(fill), wrote)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.write(key, self.inner.delete(key), |&found| (None, found))
            .await
    }

    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        // A touch changes only the expiry: a record cached (and servable)
        // when it began stays cached with the new expiry.
        self.write_with(
            key,
            true,
            self.inner.touch(key, expires_at),
            |&found, cached| {
                let fill = cached.filter(|_| found).map(|r| Record {
                    value: r.value,
                    expires_at,
                });
                (fill, found)
            },
        )
        .await
    }

    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        self.inner.scan(prefix, cursor, limit).await
    }

    async fn len(&self) -> Result<u64> {
        self.inner.len().await
    }

    async fn clear(&self) -> Result<()> {
        let core = &self.core;
        let ticket = core.gens.begin_clear();
        let result = self.inner.clear().await;
        drop(ticket);
        core.forget_all();
        core.publish(|origin| Message::All { origin }).await;
        result
    }

    /// Never answered from the cache: the version must be that of the
    /// bytes stored now. The record read refreshes the cache.
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        let core = &self.core;
        if !core.caching() {
            return self.inner.get_versioned(key).await;
        }
        let hash = core.gens.hash(key);
        let tag = core.gens.tag(hash);
        let found = self.inner.get_versioned(key).await?;
        let record = found.as_ref().map(|v| v.record.clone());
        core.fill_read(key, hash, &record, tag);
        Ok(found)
    }

    /// Always decided by the inner store. A win caches the record written,
    /// like a `set`; a conflict drops the key's entry (it is stale: someone
    /// else wrote) and tells nobody (this call changed nothing).
    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        let fill = record.clone();
        let run = self.inner.set_if(key, record, condition);
        self.write(key, run, |&wrote| (wrote.then_some(fill), wrote))
            .await
    }
}

#[cfg(test)]
mod tests;
