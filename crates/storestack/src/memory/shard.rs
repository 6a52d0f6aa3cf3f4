//! One shard of the memory store: a hash map for lookups, plus two ordered
//! indexes whose keys are plain integers (compared inline, without chasing
//! a pointer to the key's bytes):
//!
//! * `by_position`, ordered by (hash of key, key), gives `scan` a stable
//!   order to resume from;
//! * `by_expiry` serves both reclamation (expired entries sit at its front)
//!   and eviction (the soonest-expiring entry goes first; entries that never
//!   expire go last, oldest first).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::store::{is_expired, Record};

/// Bytes charged per entry on top of key and value: map nodes, index node,
/// the shared key allocation.
pub(crate) const ENTRY_OVERHEAD: u64 = 96;

/// Position in the expiry index: (expiry in µs since the epoch or
/// `u64::MAX` for never, insertion sequence).
type OrderKey = (u64, u64);

/// Position in the scan index: (hash of the key, the key).
pub(crate) type Position = (u64, Arc<str>);

#[derive(Debug)]
struct Entry {
    value: Bytes,
    expires_at: Option<SystemTime>,
    order: OrderKey,
    hash: u64,
}

/// What a mutation did to the shard's size, for the store's global counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delta {
    pub(crate) entries: i64,
    pub(crate) bytes: i64,
    pub(crate) expired: u64,
}

impl Delta {
    fn add(&mut self, other: Delta) {
        self.entries += other.entries;
        self.bytes += other.bytes;
        self.expired += other.expired;
    }
}

#[derive(Debug, Default)]
pub(crate) struct Shard {
    map: HashMap<Arc<str>, Entry>,
    by_position: BTreeSet<Position>,
    by_expiry: BTreeMap<OrderKey, Arc<str>>,
    seq: u64,
}

fn entry_bytes(key: &str, value: &Bytes) -> u64 {
    key.len() as u64 + value.len() as u64 + ENTRY_OVERHEAD
}

fn expiry_micros(at: Option<SystemTime>) -> u64 {
    match at {
        None => u64::MAX,
        Some(t) => t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros().min(u64::MAX as u128 - 1) as u64)
            .unwrap_or(0),
    }
}

impl Shard {
    fn next_order(&mut self, expires_at: Option<SystemTime>) -> OrderKey {
        self.seq += 1;
        (expiry_micros(expires_at), self.seq)
    }

    /// The live record at `key`; an expired one is removed on the way.
    pub(crate) fn get(&mut self, key: &str, now: SystemTime) -> (Option<Record>, Delta) {
        match self.map.get(key) {
            None => (None, Delta::default()),
            Some(e) if is_expired(e.expires_at, now) => (None, self.remove(key, true)),
            Some(e) => (
                Some(Record {
                    value: e.value.clone(),
                    expires_at: e.expires_at,
                }),
                Delta::default(),
            ),
        }
    }

    /// Whether a live record is at `key`.
    pub(crate) fn contains_live(&self, key: &str, now: SystemTime) -> bool {
        self.live_value(key, now).is_some()
    }

    /// The stored bytes of the live record at `key`.
    pub(crate) fn live_value(&self, key: &str, now: SystemTime) -> Option<&Bytes> {
        match self.map.get(key) {
            Some(e) if !is_expired(e.expires_at, now) => Some(&e.value),
            _ => None,
        }
    }

    /// Inserts or replaces; `hash` is the key's hash (the store's).
    pub(crate) fn put(&mut self, key: &str, hash: u64, record: Record) -> Delta {
        let order = self.next_order(record.expires_at);
        let new_bytes = entry_bytes(key, &record.value) as i64;
        if let Some(e) = self.map.get_mut(key) {
            // Replace in place: the scan position stays, the expiry moves.
            let old_bytes = entry_bytes(key, &e.value) as i64;
            let old_order = std::mem::replace(&mut e.order, order);
            e.value = record.value;
            e.expires_at = record.expires_at;
            if let Some(k) = self.by_expiry.remove(&old_order) {
                self.by_expiry.insert(order, k);
            }
            return Delta {
                entries: 0,
                bytes: new_bytes - old_bytes,
                expired: 0,
            };
        }
        let key: Arc<str> = Arc::from(key);
        self.by_expiry.insert(order, key.clone());
        self.by_position.insert((hash, key.clone()));
        self.map.insert(
            key,
            Entry {
                value: record.value,
                expires_at: record.expires_at,
                order,
                hash,
            },
        );
        Delta {
            entries: 1,
            bytes: new_bytes,
            expired: 0,
        }
    }

    /// Removes `key` if present (live or not).
    pub(crate) fn remove(&mut self, key: &str, expired: bool) -> Delta {
        match self.map.remove_entry(key) {
            None => Delta::default(),
            Some((k, e)) => {
                self.by_expiry.remove(&e.order);
                let bytes = entry_bytes(&k, &e.value) as i64;
                self.by_position.remove(&(e.hash, k));
                Delta {
                    entries: -1,
                    bytes: -bytes,
                    expired: expired as u64,
                }
            }
        }
    }

    /// Changes the expiry of a live entry; returns whether there was one.
    pub(crate) fn touch(&mut self, key: &str, expires_at: Option<SystemTime>) -> bool {
        let order = self.next_order(expires_at);
        match self.map.get_mut(key) {
            None => false,
            Some(e) => {
                let old = std::mem::replace(&mut e.order, order);
                e.expires_at = expires_at;
                if let Some(k) = self.by_expiry.remove(&old) {
                    self.by_expiry.insert(order, k);
                }
                true
            }
        }
    }

    /// Removes up to `max` expired entries from the front of the index.
    pub(crate) fn purge_expired(&mut self, now: SystemTime, max: usize) -> Delta {
        let now_micros = expiry_micros(Some(now));
        let mut delta = Delta::default();
        for _ in 0..max {
            let Some((&(exp, _), key)) = self.by_expiry.first_key_value() else {
                break;
            };
            if exp > now_micros {
                break;
            }
            let key = key.clone();
            delta.add(self.remove(&key, true));
        }
        delta
    }

    /// Evicts the entry that expires soonest (never-expiring entries last,
    /// oldest first). Returns `None` when the shard is empty.
    pub(crate) fn evict_one(&mut self) -> Option<Delta> {
        let key = self.by_expiry.first_key_value()?.1.clone();
        Some(self.remove(&key, false))
    }

    /// Number of entries, expired or not (call `purge_expired` first for a
    /// live count).
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Up to `limit` live keys starting with `prefix`, in position order,
    /// strictly after `after` if given, examining at most `budget` entries.
    /// Returns the keys, the position to resume after if the shard may hold
    /// more matching keys, and how many entries were examined.
    pub(crate) fn scan(
        &self,
        prefix: &str,
        after: Option<&Position>,
        limit: usize,
        budget: usize,
        now: SystemTime,
    ) -> (Vec<String>, Option<Position>, usize) {
        let lower = match after {
            Some(p) => Bound::Excluded(p),
            None => Bound::Unbounded,
        };
        let mut keys = Vec::new();
        let mut last: Option<&Position> = None;
        let mut examined = 0;
        for pos in self.by_position.range((lower, Bound::Unbounded)) {
            if keys.len() == limit || examined == budget {
                return (keys, last.cloned(), examined);
            }
            examined += 1;
            last = Some(pos);
            if !pos.1.starts_with(prefix) {
                continue;
            }
            if let Some(e) = self.map.get(&pos.1) {
                if !is_expired(e.expires_at, now) {
                    keys.push(pos.1.to_string());
                }
            }
        }
        (keys, None, examined)
    }

    /// Removes everything.
    pub(crate) fn clear(&mut self) -> Delta {
        let entries = self.map.len() as i64;
        let bytes: u64 = self.map.iter().map(|(k, e)| entry_bytes(k, &e.value)).sum();
        self.map.clear();
        self.by_position.clear();
        self.by_expiry.clear();
        Delta {
            entries: -entries,
            bytes: -(bytes as i64),
            expired: 0,
        }
    }
}
