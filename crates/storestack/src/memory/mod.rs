//! [`MemoryStore`]: the embedded default backend.
//!
//! A sharded, bounded, expiring in-process store.
//!
//! * **Never returns an expired record**: every read compares the record's
//!   expiry with the store's [`Clock`](crate::clock::Clock).
//! * **Reclaims expired records**: each shard keeps an index ordered by
//!   expiry. Every write purges a few expired entries from its shard,
//!   [`len`](crate::Store::len) and [`MemoryStore::purge_expired`] purge
//!   them all, and, when the store is created inside a tokio runtime, a
//!   background sweeper does the same every
//!   [`sweep_interval`](MemoryConfig::sweep_interval). Memory does not grow
//!   with the number of records that ever lived.
//! * **Bounded** by entries and by bytes (key + value + a fixed per-entry
//!   overhead). Over a bound, expired entries go first, then the entries
//!   that expire soonest, then those that never expire, oldest first. For
//!   session data with sliding expiry, "expires soonest" is "used least
//!   recently". Eviction works shard by shard, so the order is approximate
//!   across shards.
//! * **Scan** walks shards in order and, within a shard, keys in (hash, key)
//!   order, so a key live for the whole scan is returned exactly once, even
//!   with concurrent writers. The order is not lexicographic, so a prefix
//!   scan examines the whole shard; each page examines a bounded number of
//!   entries and may come back short (or empty) with a cursor to go on.
//!
//! # Examples
//!
//! ```
//! # tokio_test_main(async {
//! use std::time::Duration;
//! use storestack::{MemoryConfig, MemoryStore, Record, Store};
//!
//! let store = MemoryStore::with_config(MemoryConfig::default().max_entries(10_000));
//! store.set("sess:1", Record::expiring_after("data", Duration::from_secs(60))).await?;
//! assert_eq!(store.get("sess:1").await?.unwrap().value, "data");
//! assert_eq!(store.len().await?, 1);
//! # Ok::<_, storestack::StoreError>(())
//! # });
//! # fn tokio_test_main<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! ```

mod shard;

use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::clock::{self, SharedClock};
use crate::error::{ErrorKind, Op, Result, StoreError};
use crate::limits::{self, Limits};
use crate::store::{Condition, ScanCursor, ScanPage, Store, Versioned};
use crate::Record;
use shard::{Delta, Position, Shard, ENTRY_OVERHEAD};

/// Expired entries a write purges from its shard on the way.
const PURGE_PER_WRITE: usize = 8;
/// Expired entries purged per lock acquisition by sweeps.
const PURGE_CHUNK: usize = 1024;
/// Entries a scan page examines per shard at most (bounds lock hold time
/// and the work of a page whose prefix matches little).
const SCAN_BUDGET: usize = 4096;

/// Configuration of a [`MemoryStore`].
#[derive(Clone)]
#[non_exhaustive]
pub struct MemoryConfig {
    /// Most records held; `None` for no bound on the count.
    pub max_entries: Option<u64>,
    /// Most bytes held (keys + values + per-entry overhead); `None` for no
    /// bound. Default 256 MiB.
    pub max_bytes: Option<u64>,
    /// Number of shards (rounded up to a power of two). Default 64.
    pub shards: usize,
    /// Value size limit.
    pub limits: Limits,
    /// How often the background sweeper purges expired records; `None`
    /// disables it. Default 5 s.
    pub sweep_interval: Option<Duration>,
    /// The clock deciding expiry. Default: the system clock.
    pub clock: SharedClock,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            max_entries: None,
            max_bytes: Some(256 * 1024 * 1024),
            shards: 64,
            limits: Limits::default(),
            sweep_interval: Some(Duration::from_secs(5)),
            clock: clock::system(),
        }
    }
}

impl fmt::Debug for MemoryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryConfig")
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .field("shards", &self.shards)
            .field("limits", &self.limits)
            .field("sweep_interval", &self.sweep_interval)
            .field("clock", &self.clock)
            .finish()
    }
}

impl MemoryConfig {
    /// Bounds the number of records.
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = Some(n);
        self
    }

    /// Bounds the bytes held; `None` removes the bound.
    pub fn max_bytes(mut self, bytes: Option<u64>) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Sets the number of shards.
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = n;
        self
    }

    /// Sets the largest value accepted.
    pub fn max_value_len(mut self, bytes: usize) -> Self {
        self.limits = self.limits.max_value_len(bytes);
        self
    }

    /// Sets the sweeper's interval; `None` disables the sweeper.
    pub fn sweep_interval(mut self, every: Option<Duration>) -> Self {
        self.sweep_interval = every;
        self
    }

    /// Sets the clock (a [`MockClock`](crate::clock::MockClock) in tests).
    pub fn clock(mut self, clock: impl crate::clock::Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }
}

/// Counters of a [`MemoryStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryStats {
    /// Records held, including expired ones not yet reclaimed.
    pub entries: u64,
    /// Bytes held (keys + values + per-entry overhead).
    pub bytes: u64,
    /// Records evicted to stay within bounds.
    pub evicted: u64,
    /// Expired records reclaimed.
    pub expired: u64,
}

struct Inner {
    shards: Box<[Mutex<Shard>]>,
    mask: usize,
    hasher: std::collections::hash_map::RandomState,
    config: MemoryConfig,
    entries: AtomicI64,
    bytes: AtomicI64,
    evicted: AtomicU64,
    expired: AtomicU64,
    evict_cursor: AtomicUsize,
}

/// The embedded, bounded, expiring in-memory store. Cheap to clone: clones
/// share the same data. See the [module docs](self).
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store with the default configuration.
    pub fn new() -> Self {
        Self::with_config(MemoryConfig::default())
    }

    /// A store with `config`. Inside a tokio runtime, starts the sweeper.
    pub fn with_config(config: MemoryConfig) -> Self {
        let n = config.shards.max(1).next_power_of_two();
        let shards = (0..n).map(|_| Mutex::new(Shard::default())).collect();
        let inner = Arc::new(Inner {
            shards,
            mask: n - 1,
            hasher: Default::default(),
            entries: AtomicI64::new(0),
            bytes: AtomicI64::new(0),
            evicted: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            evict_cursor: AtomicUsize::new(0),
            config,
        });
        if let (Some(every), Ok(rt)) = (
            inner.config.sweep_interval,
            tokio::runtime::Handle::try_current(),
        ) {
            rt.spawn(sweep(Arc::downgrade(&inner), every));
        }
        MemoryStore { inner }
    }

    /// Current counters.
    pub fn stats(&self) -> MemoryStats {
        let i = &self.inner;
        MemoryStats {
            entries: i.entries.load(Ordering::Relaxed).max(0) as u64,
            bytes: i.bytes.load(Ordering::Relaxed).max(0) as u64,
            evicted: i.evicted.load(Ordering::Relaxed),
            expired: i.expired.load(Ordering::Relaxed),
        }
    }

    /// Reclaims every expired record now; returns how many.
    pub fn purge_expired(&self) -> u64 {
        self.inner.purge_all()
    }

    fn now(&self) -> SystemTime {
        self.inner.config.clock.now()
    }

    /// The key's hash and its shard.
    fn locate(&self, key: &str) -> (u64, usize) {
        let hash = self.inner.hasher.hash_one(key);
        (hash, (hash as usize) & self.inner.mask)
    }

    fn shard_of(&self, key: &str) -> usize {
        self.locate(key).1
    }

    fn with_shard<T>(&self, idx: usize, f: impl FnOnce(&mut Shard) -> (T, Delta)) -> T {
        let (out, delta) = f(&mut self.inner.shards[idx].lock());
        self.inner.apply(delta);
        out
    }

    fn check_fits(&self, op: Op, key: &str, record: &Record) -> Result<()> {
        self.inner.config.limits.check_write(op, key, record)?;
        let size = key.len() as u64 + record.value.len() as u64 + ENTRY_OVERHEAD;
        if matches!(self.inner.config.max_bytes, Some(max) if size > max) {
            return Err(StoreError::new(ErrorKind::TooLarge, op)
                .with_store("memory")
                .with_message("record is larger than the store's byte bound"));
        }
        Ok(())
    }

    /// Writes `record` if `guard` holds (checked under the shard's lock);
    /// returns whether it did.
    fn write(&self, key: &str, record: Record, now: SystemTime, guard: Guard<'_>) -> bool {
        let (hash, idx) = self.locate(key);
        let wrote = self.with_shard(idx, |shard| {
            let mut delta = shard.purge_expired(now, PURGE_PER_WRITE);
            let holds = match guard {
                Guard::None => true,
                Guard::Absent => !shard.contains_live(key, now),
                Guard::If(Condition::Exists) => shard.contains_live(key, now),
                Guard::If(Condition::Matches(v)) => {
                    shard.live_value(key, now).is_some_and(|b| v.matches(b))
                }
            };
            if !holds {
                return (false, delta);
            }
            let d = if record.is_expired_at(now) {
                shard.remove(key, false)
            } else {
                shard.put(key, hash, record)
            };
            delta.entries += d.entries;
            delta.bytes += d.bytes;
            (true, delta)
        });
        if wrote {
            self.inner.enforce_bounds(now);
        }
        wrote
    }
}

impl Inner {
    fn apply(&self, d: Delta) {
        if d.entries != 0 {
            self.entries.fetch_add(d.entries, Ordering::Relaxed);
        }
        if d.bytes != 0 {
            self.bytes.fetch_add(d.bytes, Ordering::Relaxed);
        }
        if d.expired != 0 {
            self.expired.fetch_add(d.expired, Ordering::Relaxed);
        }
    }

    fn over_bounds(&self) -> bool {
        let c = &self.config;
        matches!(c.max_entries, Some(max) if self.entries.load(Ordering::Relaxed) > max as i64)
            || matches!(c.max_bytes, Some(max) if self.bytes.load(Ordering::Relaxed) > max as i64)
    }

    fn enforce_bounds(&self, now: SystemTime) {
        let n = self.shards.len();
        while self.over_bounds() {
            let start = self.evict_cursor.fetch_add(1, Ordering::Relaxed);
            let mut evicted = false;
            for i in 0..n {
                let mut shard = self.shards[(start + i) & self.mask].lock();
                let purged = shard.purge_expired(now, 1);
                let d = if purged.entries != 0 {
                    purged
                } else if let Some(d) = shard.evict_one() {
                    self.evicted.fetch_add(1, Ordering::Relaxed);
                    d
                } else {
                    continue;
                };
                drop(shard);
                self.apply(d);
                evicted = true;
                break;
            }
            if !evicted {
                break;
            }
        }
    }

    fn purge_all(&self) -> u64 {
        let now = self.config.clock.now();
        let mut total = 0;
        for shard in self.shards.iter() {
            loop {
                let d = shard.lock().purge_expired(now, PURGE_CHUNK);
                self.apply(d);
                total += d.expired;
                if d.expired < PURGE_CHUNK as u64 {
                    break;
                }
            }
        }
        total
    }
}

async fn sweep(inner: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        match inner.upgrade() {
            Some(inner) => {
                inner.purge_all();
            }
            None => return,
        }
    }
}

/// What a write requires of the live record at its key.
enum Guard<'a> {
    /// Nothing (`set`).
    None,
    /// No live record (`create`).
    Absent,
    /// A `set_if` condition.
    If(&'a Condition),
}

/// Cursor tokens: `"{shard}:"` for the start of a shard, or
/// `"{shard}:{hash:016x}>{key}"` to resume after that position.
fn parse_cursor(cursor: &ScanCursor) -> Result<(usize, Option<Position>)> {
    let Some(token) = cursor.token() else {
        return Ok((0, None));
    };
    let bad = || {
        StoreError::invalid_input(Op::Scan)
            .with_store("memory")
            .with_message("malformed scan cursor")
    };
    let (shard, rest) = token.split_once(':').ok_or_else(bad)?;
    let shard = shard.parse().map_err(|_| bad())?;
    if rest.is_empty() {
        return Ok((shard, None));
    }
    let (hash, key) = rest.split_once('>').ok_or_else(bad)?;
    let hash = u64::from_str_radix(hash, 16).map_err(|_| bad())?;
    Ok((shard, Some((hash, Arc::from(key)))))
}

fn cursor_token(shard: usize, pos: &Position) -> ScanCursor {
    ScanCursor::from_token(format!("{shard}:{:016x}>{}", pos.0, pos.1))
}

#[async_trait]
impl Store for MemoryStore {
    fn name(&self) -> &str {
        "memory"
    }

    async fn get(&self, key: &str) -> Result<Option<Record>> {
        limits::check_key(Op::Get, key)?;
        let now = self.now();
        Ok(self.with_shard(self.shard_of(key), |s| s.get(key, now)))
    }

    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.check_fits(Op::Set, key, &record)?;
        self.write(key, record, self.now(), Guard::None);
        Ok(())
    }

    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.check_fits(Op::Create, key, &record)?;
        Ok(self.write(key, record, self.now(), Guard::Absent))
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        limits::check_key(Op::Delete, key)?;
        let now = self.now();
        Ok(self.with_shard(self.shard_of(key), |s| {
            let live = s.contains_live(key, now);
            (live, s.remove(key, !live))
        }))
    }

    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        limits::check_key(Op::Touch, key)?;
        limits::check_expiry(Op::Touch, expires_at)?;
        let now = self.now();
        Ok(self.with_shard(self.shard_of(key), |s| {
            if !s.contains_live(key, now) {
                return (false, s.remove(key, true));
            }
            if crate::store::is_expired(expires_at, now) {
                return (true, s.remove(key, false));
            }
            (s.touch(key, expires_at), Delta::default())
        }))
    }

    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        let (mut shard, mut after) = parse_cursor(&cursor)?;
        let limit = limit.max(1);
        let now = self.now();
        let mut keys = Vec::new();
        let mut budget = SCAN_BUDGET;
        while shard < self.inner.shards.len() {
            let (found, resume, examined) = self.inner.shards[shard].lock().scan(
                prefix,
                after.as_ref(),
                limit - keys.len(),
                budget,
                now,
            );
            budget = budget.saturating_sub(examined.max(1));
            keys.extend(found);
            if let Some(pos) = resume {
                let next = cursor_token(shard, &pos);
                return Ok(ScanPage {
                    keys,
                    next: Some(next),
                });
            }
            shard += 1;
            after = None;
            if keys.len() == limit || budget == 0 {
                break;
            }
        }
        let next =
            (shard < self.inner.shards.len()).then(|| ScanCursor::from_token(format!("{shard}:")));
        Ok(ScanPage { keys, next })
    }

    async fn len(&self) -> Result<u64> {
        self.inner.purge_all();
        Ok(self
            .inner
            .shards
            .iter()
            .map(|s| s.lock().len() as u64)
            .sum())
    }

    async fn clear(&self) -> Result<()> {
        for shard in self.inner.shards.iter() {
            let d = shard.lock().clear();
            self.inner.apply(d);
        }
        Ok(())
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        limits::check_key(Op::GetVersioned, key)?;
        let now = self.now();
        let record = self.with_shard(self.shard_of(key), |s| s.get(key, now));
        Ok(record.map(Versioned::stored))
    }

    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        self.check_fits(Op::SetIf, key, &record)?;
        Ok(self.write(key, record, self.now(), Guard::If(&condition)))
    }
}

#[cfg(test)]
mod tests;
