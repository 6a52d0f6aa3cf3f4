//! Generation counters: the guard against stale fills.
//!
//! Every key hashes (keyed SipHash) to one of a fixed number of slots; a
//! slot holds a counter that each write to any of its keys bumps twice,
//! once before the inner write starts and once after it ends, and that a
//! message from another instance bumps once. An `epoch` plays the same role
//! for every key at once (`clear`, lost messages).
//!
//! A read notes the [`Tag`] (epoch, slot counter) *before* it asks the inner
//! store, and stores it with what it read. An entry is served to a caller
//! only if its tag is at least the tag the caller noted when it began: so
//! nothing read before a write (or invalidation) that finished before the
//! caller began is ever served to it, however late that read fills the
//! cache. A write fills the cache with its own record only if no other
//! write of the slot started or ended while it ran (its two bumps are the
//! only ones), since otherwise the order of the two writes in the inner
//! store is unknown.

use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use siphasher::sip::SipHasher13;

/// The point in the history of a key at which something was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tag {
    pub(super) epoch: u64,
    pub(super) gen: u64,
}

impl Tag {
    /// Whether a value read at `self` is fresh enough for a caller that
    /// began at `start`.
    pub(super) fn covers(self, start: Tag) -> bool {
        self.epoch >= start.epoch && self.gen >= start.gen
    }
}

pub(super) struct Generations {
    epoch: AtomicU64,
    slots: Box<[AtomicU64]>,
    mask: u64,
    k0: u64,
    k1: u64,
}

impl Generations {
    pub(super) fn new(slots: usize, secret: [u8; 16]) -> Self {
        let n = slots.clamp(1, 1 << 24).next_power_of_two();
        let (a, b) = secret.split_at(8);
        Generations {
            epoch: AtomicU64::new(0),
            slots: (0..n).map(|_| AtomicU64::new(0)).collect(),
            mask: n as u64 - 1,
            k0: u64::from_le_bytes(a.try_into().expect("8 bytes")),
            k1: u64::from_le_bytes(b.try_into().expect("8 bytes")),
        }
    }

    /// The keyed hash of `key`: picks its slot here and names it in
    /// invalidation messages (the same on every instance sharing a secret).
    pub(super) fn hash(&self, key: &str) -> u64 {
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        h.write(key.as_bytes());
        h.finish()
    }

    fn slot(&self, hash: u64) -> &AtomicU64 {
        &self.slots[(hash & self.mask) as usize]
    }

    /// The current tag of the key with `hash`.
    pub(super) fn tag(&self, hash: u64) -> Tag {
        Tag {
            epoch: self.epoch.load(SeqCst),
            gen: self.slot(hash).load(SeqCst),
        }
    }

    /// Invalidates the key with `hash` (and its slot neighbours).
    pub(super) fn bump(&self, hash: u64) {
        self.slot(hash).fetch_add(1, SeqCst);
    }

    /// Invalidates every key.
    pub(super) fn bump_epoch(&self) {
        self.epoch.fetch_add(1, SeqCst);
    }

    /// Starts a write of the key with `hash`: from now on no entry read
    /// before is served.
    pub(super) fn begin_write(&self, hash: u64) -> WriteTicket<'_> {
        let epoch = self.epoch.load(SeqCst);
        let before = self.slot(hash).fetch_add(1, SeqCst);
        WriteTicket {
            gens: self,
            hash,
            start: Tag { epoch, gen: before },
            done: false,
        }
    }

    /// Starts a `clear`.
    pub(super) fn begin_clear(&self) -> ClearTicket<'_> {
        self.bump_epoch();
        ClearTicket { gens: self }
    }
}

/// A write in progress. Dropping it unfinished (a cancelled write) still
/// ends it, so reads that overlapped it are never served.
pub(super) struct WriteTicket<'a> {
    gens: &'a Generations,
    hash: u64,
    start: Tag,
    done: bool,
}

impl WriteTicket<'_> {
    /// The tag just before this write began.
    pub(super) fn start(&self) -> Tag {
        self.start
    }

    /// Ends the write. Returns the tag to fill the cache with, or `None`
    /// when another write or invalidation overlapped this one.
    pub(super) fn finish(mut self) -> Option<Tag> {
        self.done = true;
        let end = self.gens.slot(self.hash).fetch_add(1, SeqCst) + 1;
        let epoch = self.gens.epoch.load(SeqCst);
        let clean = end == self.start.gen + 2 && epoch == self.start.epoch;
        clean.then_some(Tag { epoch, gen: end })
    }
}

impl Drop for WriteTicket<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.gens.bump(self.hash);
        }
    }
}

/// A `clear` in progress; ends (bumps the epoch again) when dropped.
pub(super) struct ClearTicket<'a> {
    gens: &'a Generations,
}

impl Drop for ClearTicket<'_> {
    fn drop(&mut self) {
        self.gens.bump_epoch();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_before_a_write_is_not_covered_after_it() {
        let g = Generations::new(4, [7; 16]);
        let h = g.hash("k");
        let read_at = g.tag(h);
        let w = g.begin_write(h);
        let during = g.tag(h);
        let fill = w.finish().expect("clean write");
        let after = g.tag(h);
        assert!(read_at.covers(read_at));
        assert!(!read_at.covers(after), "old read served after the write");
        assert!(
            !during.covers(after),
            "read during the write served after it"
        );
        assert!(fill.covers(after));
    }

    #[test]
    fn overlapping_writes_do_not_fill() {
        let g = Generations::new(4, [7; 16]);
        let h = g.hash("k");
        let a = g.begin_write(h);
        let b = g.begin_write(h);
        assert!(a.finish().is_none());
        assert!(b.finish().is_none());
        let c = g.begin_write(h);
        assert!(c.finish().is_some());
    }

    #[test]
    fn cancelled_write_and_clear_still_end() {
        let g = Generations::new(4, [7; 16]);
        let h = g.hash("k");
        let w = g.begin_write(h);
        let during = g.tag(h);
        drop(w);
        assert!(!during.covers(g.tag(h)));
        let before = g.tag(h);
        drop(g.begin_clear());
        assert!(!before.covers(g.tag(h)));
        g.bump(h);
        assert_eq!(g.tag(h).epoch, 2);
    }

    #[test]
    fn hash_depends_on_the_secret() {
        let a = Generations::new(4, [1; 16]);
        let b = Generations::new(4, [2; 16]);
        assert_ne!(a.hash("k"), b.hash("k"));
        assert_eq!(a.hash("k"), Generations::new(64, [1; 16]).hash("k"));
    }
}
