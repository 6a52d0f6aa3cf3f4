//! The divergence journal: which side holds the newest write of a key.
//!
//! An entry `J(k)` stored on side X says "X holds the newest content of
//! `k`; the other side may be stale". It is stored under
//! `{prefix}j:{k}` with no expiry. Its value holds up to three
//! [stamps](Stamps), from the strongest claim to the weakest: `committed`
//! (a blind write, `set` or `delete`, succeeded on X), `weak` (a `touch` or
//! `create`, whose outcome depended on what X held, changed X) and
//! `pending` (a write on X whose outcome is not known yet: written before
//! the write and replaced once it succeeds). A new claim keeps the stronger
//! ones X already had. When both sides hold an entry, [`resolve`] picks the
//! authority: the larger committed stamp wins, then the larger weak stamp,
//! then the larger pending stamp, and a tie goes to the primary.
//!
//! This module also holds the in-process [`Mirror`] of the entries this
//! process knows about, the per-key [`Stripes`] of async locks and the
//! reserved key [`Names`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::limits::MAX_KEY_LEN;
use crate::store::Record;

/// One of the two stores of a [`Fallback`](super::Fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The store reads go to first.
    Primary,
    /// The store reads fall over to.
    Secondary,
}

impl Side {
    /// The other side.
    pub const fn other(self) -> Side {
        match self {
            Side::Primary => Side::Secondary,
            Side::Secondary => Side::Primary,
        }
    }

    /// `"primary"` or `"secondary"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Side::Primary => "primary",
            Side::Secondary => "secondary",
        }
    }

    pub(crate) const fn index(self) -> usize {
        match self {
            Side::Primary => 0,
            Side::Secondary => 1,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A journal entry as stored on one side: up to three stamps, from the
/// strongest claim to the weakest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Entry {
    /// The last blind write (`set`, `delete`) that succeeded on this side
    /// while the other missed it: this side is newest, whatever the other
    /// holds.
    pub(crate) committed: Option<u64>,
    /// The last `touch` or `create` that changed this side while the other
    /// missed it: its outcome depended on what this side held, so it does
    /// not beat a committed entry of the other side.
    pub(crate) weak: Option<u64>,
    /// A write on this side whose outcome is not known (yet): written
    /// before the write, replaced once it succeeds. It beats no claim of
    /// the other side, only its absence.
    pub(crate) pending: Option<u64>,
}

const ENTRY_TAG: &str = "fbj1";

impl Entry {
    pub(crate) const fn committed(stamp: u64) -> Self {
        Entry {
            committed: Some(stamp),
            weak: None,
            pending: None,
        }
    }

    /// A weak claim at `stamp` on top of `prev` (its committed stamp kept).
    pub(crate) fn weak(prev: Option<Entry>, stamp: u64) -> Self {
        Entry {
            committed: prev.and_then(|e| e.committed),
            weak: Some(stamp),
            pending: None,
        }
    }

    /// A pending write at `stamp` on top of `prev` (its claims kept).
    pub(crate) fn pending(prev: Option<Entry>, stamp: u64) -> Self {
        let prev = prev.unwrap_or_default();
        Entry {
            pending: Some(stamp),
            ..prev
        }
    }

    /// Ordering key: committed stamps first, then weak ones, then pending
    /// ones; an absent stamp is lower than any present one.
    fn rank(&self) -> (u64, u64, u64) {
        let lift = |s: Option<u64>| s.map_or(0, |s| s.saturating_add(1));
        (lift(self.committed), lift(self.weak), lift(self.pending))
    }

    /// The largest stamp of the entry.
    pub(crate) fn top(&self) -> u64 {
        self.committed.max(self.weak).max(self.pending).unwrap_or(0)
    }

    pub(crate) fn encode(&self) -> Bytes {
        let part = |s: Option<u64>| s.map_or_else(|| "-".to_owned(), |s| s.to_string());
        Bytes::from(format!(
            "{ENTRY_TAG} {} {} {}",
            part(self.committed),
            part(self.weak),
            part(self.pending)
        ))
    }

    pub(crate) fn record(&self) -> Record {
        Record::never_expiring(self.encode())
    }

    /// Decodes a stored entry. Bytes that do not parse still mean "this side
    /// was journaled": they decode as the weakest committed entry, which
    /// wins against no entry and loses against any real committed one.
    pub(crate) fn decode(raw: &[u8]) -> Entry {
        Self::parse(raw).unwrap_or_else(|| {
            tracing::warn!("fallback: unreadable journal entry, treating it as the oldest write");
            Entry::committed(0)
        })
    }

    fn parse(raw: &[u8]) -> Option<Entry> {
        let text = std::str::from_utf8(raw).ok()?;
        let mut parts = text.split(' ');
        if parts.next()? != ENTRY_TAG {
            return None;
        }
        let stamp = |p: &str| -> Option<Option<u64>> {
            if p == "-" {
                Some(None)
            } else {
                p.parse().ok().map(Some)
            }
        };
        let entry = Entry {
            committed: stamp(parts.next()?)?,
            weak: stamp(parts.next()?)?,
            pending: stamp(parts.next()?)?,
        };
        if parts.next().is_some() || entry == Entry::default() {
            return None;
        }
        Some(entry)
    }

    /// The larger of two entries of the same side.
    fn max(a: Option<Entry>, b: Option<Entry>) -> Option<Entry> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.rank() > a.rank() { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

/// The side holding the newest write given the entries of both sides, or
/// `None` when the key is not journaled.
pub(crate) fn resolve(primary: Option<Entry>, secondary: Option<Entry>) -> Option<Side> {
    match (primary, secondary) {
        (None, None) => None,
        (Some(_), None) => Some(Side::Primary),
        (None, Some(_)) => Some(Side::Secondary),
        (Some(p), Some(s)) if s.rank() > p.rank() => Some(Side::Secondary),
        (Some(_), Some(_)) => Some(Side::Primary),
    }
}

/// Stamps ordering journal entries: milliseconds of the wall clock shifted
/// left by 16 bits plus a counter, strictly increasing within a process
/// (hybrid logical clock). Across processes they are ordered by wall
/// clock, so clock skew bounds how well they order concurrent entries.
#[derive(Debug, Default)]
pub(crate) struct Stamps {
    last: AtomicU64,
}

impl Stamps {
    /// A stamp larger than every stamp this process made or saw.
    pub(crate) fn next(&self, now: SystemTime) -> u64 {
        let ms = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let base = ms.saturating_mul(1 << 16);
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            let next = base.max(prev.saturating_add(1));
            match self
                .last
                .compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(actual) => prev = actual,
            }
        }
    }

    /// A stamp larger than [`next`](Self::next) and than every stamp of
    /// `pair` (Lamport: a write that follows a journaled one is ordered
    /// after it even if this process's clock is behind).
    pub(crate) fn next_after(&self, now: SystemTime, pair: &Pair) -> u64 {
        for e in [pair.primary, pair.secondary].into_iter().flatten() {
            self.witness(e);
        }
        self.next(now)
    }

    /// Makes later stamps larger than those of `entry`.
    pub(crate) fn witness(&self, entry: Entry) {
        self.last.fetch_max(entry.top(), Ordering::Relaxed);
    }
}

/// The reserved prefix when none (or an empty one) is configured.
pub(crate) const DEFAULT_PREFIX: &str = "__fallback:";

/// The reserved keys of a fallback, all under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub(crate) prefix: String,
    journal: String,
    lease: String,
    pub(crate) marker: String,
    /// A side's identity: its generation in the value, its heartbeat in
    /// the expiry (see the resync module).
    pub(crate) id: String,
    /// The other side's identity as last verified.
    pub(crate) peer: String,
    /// On the healthy side: the resync of the other side in progress.
    pub(crate) resync: String,
    /// The lease of the resync runner.
    pub(crate) resync_lease: String,
}

impl Names {
    pub(crate) fn new(prefix: &str) -> Self {
        // An empty prefix would reserve every key.
        let prefix = if prefix.is_empty() {
            DEFAULT_PREFIX
        } else {
            prefix
        };
        Names {
            prefix: prefix.to_owned(),
            journal: format!("{prefix}j:"),
            lease: format!("{prefix}l:"),
            marker: format!("{prefix}dirty"),
            id: format!("{prefix}id"),
            peer: format!("{prefix}peer"),
            resync: format!("{prefix}resync"),
            resync_lease: format!("{prefix}resync-lease"),
        }
    }

    /// The prefix of every journal entry key.
    pub(crate) fn journal_prefix(&self) -> &str {
        &self.journal
    }

    pub(crate) fn journal_key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.journal.len() + key.len());
        k.push_str(&self.journal);
        k.push_str(key);
        k
    }

    pub(crate) fn lease_key(&self, key: &str) -> String {
        format!("{}{key}", self.lease)
    }

    /// The user key of a journal entry key.
    pub(crate) fn user_key<'a>(&self, journal_key: &'a str) -> Option<&'a str> {
        journal_key.strip_prefix(self.journal.as_str())
    }

    /// The longest user key: its journal key must fit the key limit.
    pub(crate) fn max_key_len(&self) -> usize {
        MAX_KEY_LEN
            .saturating_sub(self.journal.len())
            .min(MAX_KEY_LEN.saturating_sub(self.lease.len()))
    }

    pub(crate) fn is_reserved(&self, key: &str) -> bool {
        key.starts_with(self.prefix.as_str())
    }
}

/// The entries of both sides for one key, as far as this process knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pair {
    pub(crate) primary: Option<Entry>,
    pub(crate) secondary: Option<Entry>,
}

impl Pair {
    pub(crate) fn get(&self, side: Side) -> Option<Entry> {
        match side {
            Side::Primary => self.primary,
            Side::Secondary => self.secondary,
        }
    }

    pub(crate) fn slot_mut(&mut self, side: Side) -> &mut Option<Entry> {
        self.slot(side)
    }

    fn slot(&mut self, side: Side) -> &mut Option<Entry> {
        match side {
            Side::Primary => &mut self.primary,
            Side::Secondary => &mut self.secondary,
        }
    }

    pub(crate) fn authority(&self) -> Option<Side> {
        resolve(self.primary, self.secondary)
    }

    fn is_empty(&self) -> bool {
        self.primary.is_none() && self.secondary.is_none()
    }
}

/// The journal entries this process knows of: its own, those it read on
/// the way (strict reads), and those loaded by polls. Reads consult it
/// first; the repair task works through it.
#[derive(Debug, Default)]
pub(crate) struct Mirror {
    // Ordered, so that repairs run in the same order from run to run
    // (seeded tests replay exactly).
    map: Mutex<BTreeMap<String, Pair>>,
    len: AtomicUsize,
    /// Bumped by every forget: knowledge read from a store before a forget
    /// may be stale after it (see [`Mirror::learn_since`]).
    epoch: AtomicU64,
}

impl Mirror {
    /// Whether no key is known to be journaled (one atomic load).
    pub(crate) fn is_empty(&self) -> bool {
        self.len.load(Ordering::Acquire) == 0
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    pub(crate) fn get(&self, key: &str) -> Option<Pair> {
        if self.is_empty() {
            return None;
        }
        self.map.lock().get(key).copied()
    }

    fn with<T>(&self, key: &str, f: impl FnOnce(&mut Pair) -> T) -> T {
        let mut map = self.map.lock();
        let pair = map.entry(key.to_owned()).or_default();
        let out = f(pair);
        if pair.is_empty() {
            map.remove(key);
        }
        self.len.store(map.len(), Ordering::Release);
        out
    }

    /// Records an entry of `side`, keeping the larger of the known and the
    /// new one (knowledge only grows, except through the `forget`s).
    pub(crate) fn learn(&self, key: &str, side: Side, entry: Entry) {
        self.with(key, |pair| {
            let slot = pair.slot(side);
            *slot = Entry::max(*slot, Some(entry));
        });
    }

    /// The current epoch, to pass to [`Mirror::learn_since`].
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// [`Mirror::learn`], unless something was forgotten since `epoch`: an
    /// entry read from a store before a repair removed it must not come
    /// back (it would make this process refuse keys that are repaired).
    /// Returns whether it learned.
    pub(crate) fn learn_since(&self, epoch: u64, key: &str, side: Side, entry: Entry) -> bool {
        let mut map = self.map.lock();
        if self.epoch.load(Ordering::Acquire) != epoch {
            return false;
        }
        let pair = map.entry(key.to_owned()).or_default();
        let slot = pair.slot(side);
        *slot = Entry::max(*slot, Some(entry));
        self.len.store(map.len(), Ordering::Release);
        true
    }

    /// Sets what `side` holds for `key` to exactly `entry`, as just read
    /// from its store under the key's lock (drops knowledge the store no
    /// longer backs, e.g. an entry another process repaired).
    pub(crate) fn set_side(&self, key: &str, side: Side, entry: Option<Entry>) {
        let dropped = self.with(key, |pair| {
            let slot = pair.slot(side);
            let dropped = slot.is_some() && entry.is_none();
            *slot = entry;
            dropped
        });
        if dropped {
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Puts back `before` if the pair is still `after` (undoes a learn
    /// whose journal write failed).
    pub(crate) fn restore(&self, key: &str, before: Pair, after: Pair) {
        self.with(key, |pair| {
            if *pair == after {
                *pair = before;
            }
        });
    }

    /// Forgets `key` entirely (after a repair, under the key's lock).
    pub(crate) fn forget(&self, key: &str) {
        self.with(key, |pair| *pair = Pair::default());
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Forgets the entry of `side` for `key` if it is still `expected`.
    pub(crate) fn forget_side_if(&self, key: &str, side: Side, expected: Option<Entry>) {
        self.with(key, |pair| {
            if pair.get(side) == expected {
                *pair.slot(side) = None;
            }
        });
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Up to `limit` journaled keys.
    pub(crate) fn keys(&self, limit: usize) -> Vec<String> {
        self.map.lock().keys().take(limit).cloned().collect()
    }

    /// Keys with an entry on `side`.
    pub(crate) fn keys_on(&self, side: Side) -> Vec<(String, Option<Entry>)> {
        self.map
            .lock()
            .iter()
            .filter_map(|(k, p)| p.get(side).map(|e| (k.clone(), Some(e))))
            .collect()
    }

    /// (keys whose newest write is on the primary, on the secondary).
    pub(crate) fn authorities(&self) -> (usize, usize) {
        let map = self.map.lock();
        map.values()
            .fold((0, 0), |(p, s), pair| match pair.authority() {
                Some(Side::Primary) => (p + 1, s),
                Some(Side::Secondary) => (p, s + 1),
                None => (p, s),
            })
    }

    pub(crate) fn clear(&self) {
        let mut map = self.map.lock();
        map.clear();
        self.len.store(0, Ordering::Release);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

/// Striped async locks serializing the operations of this process on one
/// key (writes against each other and against repair).
pub(crate) struct Stripes {
    locks: Box<[tokio::sync::Mutex<()>]>,
}

impl fmt::Debug for Stripes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stripes")
            .field("stripes", &self.locks.len())
            .finish()
    }
}

impl Stripes {
    pub(crate) fn new(n: usize) -> Self {
        let n = n.max(1).next_power_of_two();
        Stripes {
            locks: (0..n).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    fn index(&self, key: &str) -> usize {
        // FxHash-style: fast, and good enough to spread keys over stripes.
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut h = 0u64;
        let mut chunks = key.as_bytes().chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            h = (h.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
        (h >> 32) as usize & (self.locks.len() - 1)
    }

    pub(crate) async fn lock(&self, key: &str) -> tokio::sync::MutexGuard<'_, ()> {
        self.locks[self.index(key)].lock().await
    }

    pub(crate) fn try_lock(&self, key: &str) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        self.locks[self.index(key)].try_lock().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn entries_round_trip_and_garbage_is_weakest_committed() {
        for e in [
            Entry::committed(7),
            Entry::weak(Some(Entry::committed(2)), 4),
            Entry::pending(None, 3),
            Entry::pending(Some(Entry::weak(None, 1)), 9),
        ] {
            assert_eq!(Entry::decode(&e.encode()), e);
        }
        for bad in [
            &b""[..],
            b"fbj1",
            b"fbj1 - - -",
            b"fbj1 1 -",
            b"fbj2 1 - -",
            b"fbj1 x - -",
            b"fbj1 1 2 3 4",
            b"\xff",
        ] {
            assert_eq!(Entry::decode(bad), Entry::committed(0), "{bad:?}");
        }
    }

    #[test]
    fn committed_beats_weak_beats_pending_then_newest_wins_tie_to_primary() {
        let c = Entry::committed;
        let w = |s| Entry::weak(None, s);
        let p = |s| Entry::pending(None, s);
        assert_eq!(resolve(None, None), None);
        assert_eq!(resolve(Some(p(1)), None), Some(Side::Primary));
        assert_eq!(resolve(None, Some(p(1))), Some(Side::Secondary));
        assert_eq!(resolve(Some(c(1)), Some(w(9))), Some(Side::Primary));
        assert_eq!(resolve(Some(w(1)), Some(p(9))), Some(Side::Primary));
        assert_eq!(resolve(Some(w(1)), Some(w(2))), Some(Side::Secondary));
        assert_eq!(resolve(Some(c(1)), Some(c(2))), Some(Side::Secondary));
        assert_eq!(resolve(Some(c(0)), Some(c(0))), Some(Side::Primary));
        // A new claim keeps the stronger ones its side had.
        let touched = Entry::weak(Some(c(5)), 6);
        assert_eq!(resolve(Some(c(4)), Some(touched)), Some(Side::Secondary));
        let in_flight = Entry::pending(Some(c(5)), 7);
        assert_eq!(resolve(Some(c(4)), Some(in_flight)), Some(Side::Secondary));
        assert_eq!(resolve(Some(c(6)), Some(in_flight)), Some(Side::Primary));
    }

    #[test]
    fn stamps_increase_even_when_the_clock_stands_still_or_goes_back() {
        let s = Stamps::default();
        let t = UNIX_EPOCH + Duration::from_secs(1_000);
        let a = s.next(t);
        let b = s.next(t);
        let c = s.next(t - Duration::from_secs(10));
        assert!(a < b && b < c);
        assert!(s.next(t + Duration::from_millis(1)) > c);
    }

    #[test]
    fn mirror_keeps_the_larger_entry_and_forgets() {
        let m = Mirror::default();
        assert!(m.is_empty());
        m.learn("k", Side::Secondary, Entry::committed(5));
        m.learn("k", Side::Secondary, Entry::committed(2));
        assert_eq!(m.get("k").unwrap().secondary, Some(Entry::committed(5)));
        m.learn("k", Side::Primary, Entry::committed(9));
        assert_eq!(m.get("k").unwrap().authority(), Some(Side::Primary));
        assert_eq!(m.authorities(), (1, 0));
        m.forget_side_if("k", Side::Primary, Some(Entry::committed(8)));
        assert!(m.get("k").unwrap().primary.is_some());
        m.forget("k");
        assert!(m.is_empty());
        assert_eq!(m.get("k"), None);
    }

    #[test]
    fn names_reserve_room_for_the_journal_key() {
        let n = Names::new("__fallback:");
        assert_eq!(n.journal_key("abc"), "__fallback:j:abc");
        assert_eq!(n.user_key("__fallback:j:abc"), Some("abc"));
        assert_eq!(n.max_key_len() + n.journal_prefix().len(), MAX_KEY_LEN);
        assert!(n.is_reserved("__fallback:anything"));
        assert!(!n.is_reserved("sess:1"));
        assert_eq!(Names::new("").prefix, DEFAULT_PREFIX);
    }
}
