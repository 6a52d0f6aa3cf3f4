//! Read leases: one primary read per healthy `get`, current across
//! processes ([`JournalCheck::Lease`](super::JournalCheck::Lease)).
//!
//! A read of the primary alone is current unless some process acknowledged
//! a write that the secondary took and the primary missed. Such a write is
//! journaled on the secondary, and the secondary's **dirty marker** (the
//! key that says "this side's journal may be non-empty") exists from before
//! the entry is written until the journal is found empty.
//!
//! * **Renewal.** Every process reads the secondary's marker (and its
//!   record of a resync of the primary) every quarter of the
//!   [`read_lease`](super::FallbackConfig::read_lease), in a task of its
//!   own. A read that began at `t` and found neither makes the lease valid
//!   until `t + read_lease` on this process's monotonic clock. While the
//!   lease is valid, and this process knows nothing journaled for the key
//!   and no resync, a `get` reads the primary alone; otherwise it takes the
//!   [`PerRead`](super::JournalCheck::PerRead) path (the primary and the
//!   key's entry on the secondary).
//! * **Failover.** Before a write that the secondary took alone is
//!   acknowledged, its process waits until the marker it saw has existed,
//!   with the same value, for a whole `read_lease`: by then every other
//!   process either read the marker (and stopped trusting the primary
//!   alone) or saw its lease run out. The marker's value is a random token
//!   written with `create`, so a marker removed and put back between two
//!   looks is seen as new and waited for again. Only the first such write
//!   of an outage waits, and only if its process had not already watched
//!   the marker for a lease.
//!
//! The assumption: the monotonic clocks of the processes advance at rates
//! that differ by a small fraction (the lease is measured locally, never
//! compared across machines); a process stalled for longer than the lease
//! between reading the primary and answering is not covered.

use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::journal::Side;
use super::Shared;
use crate::error::Result;
use crate::store::{Record, Store};

/// Looks at the marker before a write that only the secondary took gives
/// up (the marker replaced under it every time).
const GUARD_ROUNDS: usize = 8;

/// What this process knows of the read lease.
#[derive(Debug, Default)]
pub(crate) struct Lease {
    /// Until when a primary-only read is current; `None` while guarded.
    valid_until: Mutex<Option<Instant>>,
    /// The secondary's marker token last seen, and since when it has been
    /// seen without a gap.
    marker: Mutex<Option<(Bytes, Instant)>>,
}

impl Lease {
    /// Whether a read of the primary alone is current now.
    #[inline]
    pub(crate) fn valid(&self) -> bool {
        matches!(*self.valid_until.lock(), Some(until) if Instant::now() < until)
    }

    fn revoke(&self) {
        *self.valid_until.lock() = None;
    }

    /// Records a look at the marker that began at `start`.
    fn saw(&self, token: Option<Bytes>, start: Instant) {
        let mut m = self.marker.lock();
        match token {
            None => *m = None,
            Some(t) => match &*m {
                Some((known, _)) if *known == t => {}
                _ => *m = Some((t, start)),
            },
        }
    }

    /// Since when `token` has been watched without a gap, if it is the one
    /// this process knows.
    fn watched_since(&self, token: &Bytes) -> Option<Instant> {
        match &*self.marker.lock() {
            Some((known, since)) if known == token => Some(*since),
            _ => None,
        }
    }
}

/// A fresh marker token.
pub(crate) fn marker_record() -> Record {
    Record::never_expiring(Bytes::from(format!("{:016x}", rand::random::<u64>())))
}

impl<P: Store, S: Store> Shared<P, S> {
    /// One renewal: reads the secondary's marker and its resync record.
    pub(crate) async fn renew_lease(&self) -> Result<()> {
        let start = Instant::now();
        let (marker, resync) = tokio::join!(
            self.get_on(Side::Secondary, &self.names.marker),
            self.get_on(Side::Secondary, &self.names.resync)
        );
        let (marker, resync) = match (marker, resync) {
            (Ok(m), Ok(r)) => (m, r),
            (Err(e), _) | (_, Err(e)) => {
                self.lease.revoke();
                return Err(e);
            }
        };
        let guarded = marker.is_some() || resync.is_some();
        self.lease.saw(marker.map(|r| r.value), start);
        if resync.is_some() {
            // Another process resyncs the primary: learn it now rather than
            // at the next poll.
            self.wake.notify_one();
        }
        *self.lease.valid_until.lock() = if guarded {
            None
        } else {
            Some(start + self.cfg.read_lease)
        };
        Ok(())
    }

    /// Called after a write the secondary took alone was journaled there
    /// (entry, then marker), before it is acknowledged: waits until the
    /// marker has been in place, unchanged, for a whole read lease.
    pub(crate) async fn await_guard(&self, key: &str) -> Result<()> {
        self.lease.revoke();
        let lease = self.cfg.read_lease;
        for _ in 0..GUARD_ROUNDS {
            let token = match self.get_on(Side::Secondary, &self.names.marker).await? {
                Some(r) => r.value,
                None => {
                    // The journal was found empty: if the key's entry is gone
                    // too, it was repaired and the primary holds the write.
                    if self.read_entry(Side::Secondary, key).await?.is_none() {
                        return Ok(());
                    }
                    // Removed by a cleaner between our entry and now: put it
                    // back (ours or another writer's, whichever lands).
                    let store = self.store(Side::Secondary);
                    self.on_side(
                        Side::Secondary,
                        store.create(&self.names.marker, marker_record()),
                    )
                    .await?;
                    continue;
                }
            };
            let now = Instant::now();
            let since = match self.lease.watched_since(&token) {
                Some(since) => since,
                None => {
                    self.lease.saw(Some(token.clone()), now);
                    now
                }
            };
            let ready = since + lease;
            if ready <= now {
                return Ok(());
            }
            tokio::time::sleep_until(ready).await;
            // Look again: the marker must still be the one waited for.
            let again = self.get_on(Side::Secondary, &self.names.marker).await?;
            if again.as_ref().map(|r| &r.value) == Some(&token) {
                return Ok(());
            }
            self.lease.saw(again.map(|r| r.value), Instant::now());
        }
        Err(crate::error::StoreError::unavailable(crate::error::Op::Set)
            .with_store(self.name.clone())
            .with_message(
                "the secondary's journal marker kept changing: the read lease could not be \
                 waited out, so the write is not acknowledged",
            ))
    }
}

/// How often the lease is renewed: four times per lease.
pub(crate) fn renew_every(lease: Duration) -> Duration {
    (lease / 4).max(Duration::from_millis(1))
}
