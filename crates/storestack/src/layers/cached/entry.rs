//! What the cache holds, and when it may be served.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::generation::Tag;
use crate::store::Record;

/// Bytes counted per entry on top of its key and value.
pub(super) const ENTRY_OVERHEAD: u64 = 128;

/// A cached answer: a record, or "no such key" (negative caching).
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) record: Option<Record>,
    pub(super) tag: Tag,
    /// When it was read from or written to the inner store (cache clock).
    pub(super) stored_at: SystemTime,
    /// How long moka keeps it (memory only; serving is decided by
    /// [`Entry::freshness`] on the cache's clock).
    pub(super) retain: Duration,
    /// Key + value + overhead, in bytes, saturated.
    pub(super) weight: u32,
}

/// How long entries live and may be served.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    pub(super) ttl: Duration,
    pub(super) negative_ttl: Option<Duration>,
    pub(super) serve_stale: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Freshness {
    /// Serve it.
    Fresh,
    /// Serve it only if the inner store fails transiently.
    Stale,
    /// Never serve it.
    Unusable,
}

impl Entry {
    /// An entry for what was read or written at `tag`, or `None` when there
    /// is nothing worth keeping (an expired record, or a miss without
    /// negative caching).
    pub(super) fn new(
        key: &str,
        record: Option<Record>,
        tag: Tag,
        now: SystemTime,
        timing: &Timing,
    ) -> Option<Arc<Entry>> {
        let retain = match &record {
            Some(r) => {
                let keep = timing.ttl.max(timing.serve_stale.unwrap_or_default());
                let left = r.remaining_at(now);
                if left == Some(Duration::ZERO) {
                    return None;
                }
                left.map_or(keep, |l| l.min(keep))
            }
            None => timing.negative_ttl?,
        };
        if retain.is_zero() {
            return None;
        }
        let len = record.as_ref().map_or(0, |r| r.value.len() as u64);
        let weight = (key.len() as u64 + len + ENTRY_OVERHEAD).min(u32::MAX as u64) as u32;
        Some(Arc::new(Entry {
            record,
            tag,
            stored_at: now,
            retain,
            weight,
        }))
    }

    /// Whether the entry may be served to a caller that began at `start`,
    /// at `now`.
    pub(super) fn freshness(&self, start: Tag, now: SystemTime, timing: &Timing) -> Freshness {
        if !self.tag.covers(start) {
            return Freshness::Unusable;
        }
        if matches!(&self.record, Some(r) if r.is_expired_at(now)) {
            return Freshness::Unusable;
        }
        // A clock that went backwards makes the entry look new: trust the
        // record's expiry, checked above, and treat the age as zero.
        let age = now.duration_since(self.stored_at).unwrap_or_default();
        let ttl = match self.record {
            Some(_) => timing.ttl,
            None => timing.negative_ttl.unwrap_or_default(),
        };
        if age < ttl {
            return Freshness::Fresh;
        }
        match (&self.record, timing.serve_stale) {
            (Some(_), Some(max)) if age <= max => Freshness::Stale,
            _ => Freshness::Unusable,
        }
    }
}

/// moka's expiry: each entry is kept for its own `retain`.
pub(super) struct Retain;

impl moka::Expiry<String, Arc<Entry>> for Retain {
    fn expire_after_create(&self, _: &String, e: &Arc<Entry>, _: Instant) -> Option<Duration> {
        Some(e.retain)
    }

    fn expire_after_update(
        &self,
        _: &String,
        e: &Arc<Entry>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(e.retain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing {
        ttl: Duration::from_secs(30),
        negative_ttl: None,
        serve_stale: Some(Duration::from_secs(300)),
    };
    const TAG: Tag = Tag { epoch: 0, gen: 4 };

    #[test]
    fn lifetime_is_the_shorter_of_record_and_cache() {
        let now = SystemTime::now();
        let short = Record::expiring_at("v", now + Duration::from_secs(10));
        let e = Entry::new("k", Some(short), TAG, now, &T).unwrap();
        assert_eq!(e.retain, Duration::from_secs(10));
        let long = Record::never_expiring("v");
        let e = Entry::new("k", Some(long), TAG, now, &T).unwrap();
        assert_eq!(e.retain, Duration::from_secs(300), "kept for serve-stale");
        let expired = Record::expiring_at("v", now);
        assert!(Entry::new("k", Some(expired), TAG, now, &T).is_none());
        assert!(
            Entry::new("k", None, TAG, now, &T).is_none(),
            "no negative caching"
        );
        assert_eq!(
            Entry::new("key", Some(Record::never_expiring("vv")), TAG, now, &T)
                .unwrap()
                .weight,
            133
        );
    }

    #[test]
    fn freshness_follows_tag_ttl_expiry_and_staleness() {
        let now = SystemTime::now();
        let rec = Record::expiring_at("v", now + Duration::from_secs(100));
        let e = Entry::new("k", Some(rec), TAG, now, &T).unwrap();
        let at = |s| now + Duration::from_secs(s);
        assert_eq!(e.freshness(TAG, at(29), &T), Freshness::Fresh);
        assert_eq!(e.freshness(TAG, at(30), &T), Freshness::Stale);
        assert_eq!(
            e.freshness(TAG, at(100), &T),
            Freshness::Unusable,
            "record expired"
        );
        let later = Tag { epoch: 0, gen: 5 };
        assert_eq!(
            e.freshness(later, at(1), &T),
            Freshness::Unusable,
            "written since"
        );
        let no_stale = Timing {
            serve_stale: None,
            ..T
        };
        assert_eq!(e.freshness(TAG, at(31), &no_stale), Freshness::Unusable);
    }
}
