//! Whole-side loss: detect a side that came back empty or with old data,
//! and make it whole again from the other side.
//!
//! The journal records the writes a side *missed while it was
//! unreachable*. It says nothing of data a side *lost*: a Redis without
//! persistence restarts empty, a database is restored from last night's
//! backup, a replica that missed writes is promoted. Those are caught by
//! identity keys, not by the journal:
//!
//! * `{prefix}id` on each side: the side's **generation** (a random number
//!   written once, with `create`, when the pair is first seen or a resync
//!   starts) in the value, and its **heartbeat** (a wall-clock time) in the
//!   record's *expiry*, a thousand years after the beat. The heartbeat is
//!   renewed with `touch`, which never re-creates a missing key: a process
//!   that read the key just before the side was wiped cannot bring the
//!   identity back onto the empty side.
//! * `{prefix}peer` on each side: the other side's generation and
//!   heartbeat as last verified.
//!
//! Every background poll (each process, every
//! [`poll_interval`](super::FallbackConfig::poll_interval)) reads a side's
//! `id` and the other side's `peer` for it:
//!
//! | side's `id` | other's `peer` | means | action |
//! |---|---|---|---|
//! | absent | absent | a new pair (or both lost everything) | create the `id`, then the `peer` |
//! | present | absent | the other side lost its data | the other side's own check finds it |
//! | absent | present | **the side lost its data** | resync the side |
//! | other generation | present | the side is another data set (restored from a backup taken before its last resync) | resync the side |
//! | heartbeat older than the `peer`'s by more than the tolerance | present | **the side came back from an old backup** | resync the side |
//! | matches | matches | healthy | renew the heartbeat once per interval: `id` (touch), then `peer` |
//!
//! The tolerance is `settle` plus two poll intervals: two processes' beats
//! may land out of order by as much as a write may take, plus clock skew.
//! A backup taken within the tolerance before the side failed is therefore
//! not told from the live data: writes of that last stretch would be lost
//! on that side (the limit stated in the module docs).
//!
//! A **resync** of side L from the healthy side H is recorded on H
//! (`{prefix}resync`, holding the next scan position, so that any process
//! resumes it after a restart) and run by one process at a time (a lease on
//! H). It scans H, then L, in pages of
//! [`repair_batch`](super::FallbackConfig::repair_batch) keys, at most
//! [`resync_rate`](super::FallbackConfig::resync_rate) keys a second; for
//! each key whose two sides differ, it copies H's record (or its absence)
//! to L under the key's lock, waits `settle` once per page, and verifies;
//! a key still different is journaled on H, so that repair finishes it.
//! When both scans are done, H's `peer` takes L's new generation and the
//! record on H is removed.
//!
//! While L resyncs, every process that knows it (from its poll, within a
//! poll interval; at once for the process that detected it) serves L's
//! keys from H: reads go to H (an error if H is unreachable, never L's
//! possibly stale copy), `create` and `touch` are decided by H, `scan` and
//! `len` read H, and a read never falls through to L. Writes still go to
//! both sides.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use parking_lot::Mutex;

use super::journal::Side;
use super::ops::{same, Claim};
use super::Shared;
use crate::error::Result;
use crate::store::{Record, ScanCursor, Store};

/// How far after its heartbeat an identity key expires.
const BEAT_OFFSET: Duration = Duration::from_secs(1000 * 365 * 24 * 3600);
const ID_TAG: &str = "fbid1";
const RESYNC_TAG: &str = "fbrs1";

/// Progress of a whole-side resync, as this process knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResyncStatus {
    /// The side being made whole.
    pub side: Side,
    /// Whether this process runs the resync (else another process does, or
    /// it waits for its lease).
    pub running_here: bool,
    /// Keys this process compared so far in this resync.
    pub keys_checked: u64,
    /// Keys this process copied (or deleted) on the resynced side.
    pub keys_copied: u64,
    /// Which scan the resync is in: `"healthy"` (the side it copies from)
    /// or `"resynced"` (the side being made whole, for keys to remove).
    pub phase: &'static str,
}

/// One side's identity as stored: its generation and its heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ident {
    generation: u64,
    beat: SystemTime,
}

impl Ident {
    fn fresh(now: SystemTime) -> Self {
        Ident {
            generation: rand::random(),
            beat: now,
        }
    }

    fn record(&self) -> Record {
        Record::expiring_at(
            Bytes::from(format!("{ID_TAG} {:016x}", self.generation)),
            self.beat + BEAT_OFFSET,
        )
    }

    fn decode(r: &Record) -> Option<Self> {
        let text = std::str::from_utf8(&r.value).ok()?;
        let hex = text.strip_prefix(ID_TAG)?.trim();
        let generation = u64::from_str_radix(hex, 16).ok()?;
        let beat = r.expires_at?.checked_sub(BEAT_OFFSET)?;
        Some(Ident { generation, beat })
    }
}

/// Where a resync stands, as stored on the healthy side.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    /// `false`: scanning the healthy side; `true`: the resynced side.
    second_scan: bool,
    position: Option<String>,
}

impl Cursor {
    fn encode(&self) -> Bytes {
        let phase = if self.second_scan { 'l' } else { 'h' };
        match &self.position {
            Some(p) => Bytes::from(format!("{RESYNC_TAG} {phase} {p}")),
            None => Bytes::from(format!("{RESYNC_TAG} {phase}")),
        }
    }

    fn decode(raw: &[u8]) -> Cursor {
        let start = Cursor {
            second_scan: false,
            position: None,
        };
        let Ok(text) = std::str::from_utf8(raw) else {
            return start;
        };
        let Some(rest) = text
            .strip_prefix(RESYNC_TAG)
            .and_then(|r| r.strip_prefix(' '))
        else {
            return start;
        };
        let (phase, position) = match rest.split_once(' ') {
            Some((phase, p)) => (phase, Some(p.to_owned())),
            None => (rest, None),
        };
        Cursor {
            second_scan: phase == "l",
            position,
        }
    }
}

/// What a process knows of whole-side resyncs.
#[derive(Debug, Default)]
pub(crate) struct Resyncs {
    /// Per side: a resync of it is known to be in progress.
    active: [AtomicBool; 2],
    /// Per side: it just came back from an outage and its identity has
    /// not been checked since; it may have come back empty or old.
    suspect: [AtomicBool; 2],
    /// Per side: when this process last renewed its heartbeat.
    beaten: [Mutex<Option<SystemTime>>; 2],
    progress: Mutex<Option<ResyncStatus>>,
    pub(crate) detected: AtomicU64,
    pub(crate) completed: AtomicU64,
}

impl Resyncs {
    /// Whether `side` is known to be resyncing: its copy of any key may be
    /// stale or missing.
    #[inline]
    pub(crate) fn active(&self, side: Side) -> bool {
        self.active[side.index()].load(Ordering::Acquire)
            || self.suspect[side.index()].load(Ordering::Acquire)
    }

    /// Whether a resync of `side` is known to be in progress (not merely
    /// suspected).
    pub(crate) fn resyncing(&self, side: Side) -> bool {
        self.active[side.index()].load(Ordering::Acquire)
    }

    /// `side` came back from an outage: distrust it until its identity is
    /// checked.
    pub(crate) fn suspect(&self, side: Side) {
        self.suspect[side.index()].store(true, Ordering::Release);
    }

    fn checked(&self, side: Side) {
        self.suspect[side.index()].store(false, Ordering::Release);
    }

    fn set_active(&self, side: Side, on: bool) {
        let was = self.active[side.index()].swap(on, Ordering::AcqRel);
        if was != on {
            if on {
                tracing::warn!(
                    side = side.as_str(),
                    "fallback: side lost data; resyncing it"
                );
            } else {
                tracing::info!(side = side.as_str(), "fallback: side resynced");
                *self.progress.lock() = None;
            }
            #[cfg(feature = "metrics")]
            metrics::gauge!(crate::observe::FALLBACK_RESYNCING,
                crate::observe::label::SIDE => side.as_str())
            .set(if on { 1.0 } else { 0.0 });
        }
    }

    pub(crate) fn status(&self) -> Option<ResyncStatus> {
        if let Some(p) = self.progress.lock().clone() {
            return Some(p);
        }
        [Side::Primary, Side::Secondary]
            .into_iter()
            .find(|s| self.active[s.index()].load(Ordering::Acquire))
            .map(|side| ResyncStatus {
                side,
                running_here: false,
                keys_checked: 0,
                keys_copied: 0,
                phase: "healthy",
            })
    }
}

impl<P: Store, S: Store> Shared<P, S> {
    fn tolerance(&self) -> Duration {
        self.cfg.settle + self.cfg.poll_interval * 2
    }

    async fn read_ident(&self, side: Side, key: &str) -> Result<Option<Ident>> {
        Ok(self
            .get_on(side, key)
            .await?
            .as_ref()
            .and_then(Ident::decode))
    }

    /// The background check of both sides' identities (see the module
    /// docs); starts or resumes a resync where one is due.
    pub(crate) async fn check_sides(&self) -> Result<()> {
        let mut first_err = None;
        for side in [Side::Primary, Side::Secondary] {
            if let Err(e) = self.check_side(side).await {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    async fn check_side(&self, lost: Side) -> Result<()> {
        let healthy = lost.other();
        // The peer record first, then the identity: writers store the
        // identity before the peer record that vouches for it, so an
        // identity read after its peer record is never missed.
        let (peer, flag) = tokio::join!(
            self.read_ident(healthy, &self.names.peer),
            self.get_on(healthy, &self.names.resync),
        );
        if let Some(flag) = flag? {
            self.resyncs.set_active(lost, true);
            self.resyncs.checked(lost);
            return self.run_resync(lost, Cursor::decode(&flag.value)).await;
        }
        let peer = peer?;
        let id = self.read_ident(lost, &self.names.id).await?;
        let now = self.now();
        let due = match (id, peer) {
            (None, None) => {
                // A new pair: give the side its identity.
                let fresh = Ident::fresh(now);
                let created = self.on_side(
                    lost,
                    self.store(lost).create(&self.names.id, fresh.record()),
                );
                if created.await? {
                    self.put(healthy, &self.names.peer, Some(fresh.record()))
                        .await?;
                }
                false
            }
            (Some(id), None) => {
                // The other side lost its peer record (its own check finds
                // the loss); record what this side is.
                self.put(healthy, &self.names.peer, Some(id.record()))
                    .await?;
                false
            }
            (None, Some(_)) => true,
            (Some(id), Some(peer)) if id.generation != peer.generation => true,
            (Some(id), Some(peer)) if id.beat + self.tolerance() < peer.beat => true,
            (Some(id), Some(_)) => {
                self.beat(lost, id, now).await?;
                false
            }
        };
        if !due {
            self.resyncs.set_active(lost, false);
            self.resyncs.checked(lost);
            return Ok(());
        }
        self.resyncs.detected.fetch_add(1, Ordering::Relaxed);
        // Record the resync on the healthy side first: from now on every
        // process serves the side's keys from the healthy side.
        let start = Cursor {
            second_scan: false,
            position: None,
        };
        self.put(
            healthy,
            &self.names.resync,
            Some(Record::never_expiring(start.encode())),
        )
        .await?;
        self.resyncs.set_active(lost, true);
        self.resyncs.checked(lost);
        let fresh = Ident::fresh(now);
        self.put(lost, &self.names.id, Some(fresh.record())).await?;
        self.run_resync(lost, start).await
    }

    /// Renews `side`'s heartbeat once per poll interval: its `id` first
    /// (touch: never re-created on a wiped side), then the other side's
    /// `peer`.
    async fn beat(&self, side: Side, id: Ident, now: SystemTime) -> Result<()> {
        {
            let mut last = self.resyncs.beaten[side.index()].lock();
            if matches!(*last, Some(t) if now.duration_since(t).unwrap_or_default() < self.cfg.poll_interval)
            {
                return Ok(());
            }
            *last = Some(now);
        }
        if id.beat > now {
            // Another process's clock is ahead; keep its beat.
            return Ok(());
        }
        let next = Ident {
            generation: id.generation,
            beat: now,
        };
        let touched = self.on_side(
            side,
            self.store(side)
                .touch(&self.names.id, next.record().expires_at),
        );
        if touched.await? {
            self.put(side.other(), &self.names.peer, Some(next.record()))
                .await?;
        }
        Ok(())
    }

    /// Runs (or resumes) the resync of `lost` from `cursor`, unless another
    /// process holds the resync lease.
    async fn run_resync(&self, lost: Side, mut cursor: Cursor) -> Result<()> {
        let healthy = lost.other();
        let lease_until = |now: SystemTime| now + self.cfg.lease;
        let token = Bytes::from(format!("{:016x}", rand::random::<u64>()));
        let lease = Record::expiring_at(token.clone(), lease_until(self.now()));
        let mine = self.on_side(
            healthy,
            self.store(healthy).create(&self.names.resync_lease, lease),
        );
        if !mine.await? {
            return Ok(());
        }
        let out = self.resync_pages(lost, &mut cursor, &token).await;
        let _ = self
            .on_side(
                healthy,
                self.store(healthy).delete(&self.names.resync_lease),
            )
            .await;
        if out? {
            // Done: the healthy side vouches for the lost side's new
            // generation, and the resync record goes.
            let id = self.read_ident(lost, &self.names.id).await?;
            if let Some(id) = id {
                self.put(healthy, &self.names.peer, Some(id.record()))
                    .await?;
                self.put(healthy, &self.names.resync, None).await?;
                self.resyncs.set_active(lost, false);
                self.resyncs.completed.fetch_add(1, Ordering::Relaxed);
            }
            // No id: the side was wiped again meanwhile; the next check
            // starts over.
        }
        Ok(())
    }

    /// Scans both sides page by page; returns whether the resync finished
    /// (`false`: a budget of pages per call ran out, resumed next poll).
    async fn resync_pages(&self, lost: Side, cursor: &mut Cursor, token: &Bytes) -> Result<bool> {
        let healthy = lost.other();
        let batch = self.cfg.repair_batch.max(1);
        let per_key = Duration::from_secs_f64(1.0 / f64::from(self.cfg.resync_rate.max(1)));
        let started = tokio::time::Instant::now();
        loop {
            let page_start = tokio::time::Instant::now();
            let scanned = if cursor.second_scan { lost } else { healthy };
            let position = cursor
                .position
                .clone()
                .map_or_else(ScanCursor::start, ScanCursor::from_token);
            let page = self.on_side(scanned, self.store(scanned).scan("", position, batch));
            let page = page.await?;
            let keys: Vec<String> = page
                .keys
                .into_iter()
                .filter(|k| !self.names.is_reserved(k))
                .collect();
            let mut copied = Vec::new();
            for key in &keys {
                let _guard = self.locks.lock(key).await;
                let (h, l) = tokio::join!(self.get_on(healthy, key), self.get_on(lost, key));
                let (h, l) = (h?, l?);
                if !same(&h, &l) {
                    self.put(lost, key, h).await?;
                    copied.push(key.clone());
                }
            }
            if !copied.is_empty() {
                tokio::time::sleep(self.cfg.settle).await;
                for key in &copied {
                    let _guard = self.locks.lock(key).await;
                    let (h, l) = tokio::join!(self.get_on(healthy, key), self.get_on(lost, key));
                    if !same(&h?, &l?) {
                        // A write raced the copy: repair owns the key now.
                        self.journal_fresh(healthy, key, Claim::Weak).await?;
                    }
                }
            }
            self.note_progress(lost, cursor.second_scan, keys.len(), copied.len());
            *cursor = match page.next {
                Some(next) => Cursor {
                    second_scan: cursor.second_scan,
                    position: next.token().map(str::to_owned),
                },
                None if !cursor.second_scan => Cursor {
                    second_scan: true,
                    position: None,
                },
                None => return Ok(true),
            };
            // Save the position and renew the lease, so that a restart (of
            // this process or another) resumes here.
            self.put(
                healthy,
                &self.names.resync,
                Some(Record::never_expiring(cursor.encode())),
            )
            .await?;
            let lease = Record::expiring_at(token.clone(), self.now() + self.cfg.lease);
            self.put(healthy, &self.names.resync_lease, Some(lease))
                .await?;
            // Bounded rate: at most `resync_rate` keys a second.
            let budget = per_key * u32::try_from(keys.len().max(1)).unwrap_or(u32::MAX);
            tokio::time::sleep(budget.saturating_sub(page_start.elapsed())).await;
            if started.elapsed() > self.cfg.lease / 2 {
                // Let the poll run; the next one resumes.
                return Ok(false);
            }
        }
    }

    fn note_progress(&self, side: Side, second_scan: bool, checked: usize, copied: usize) {
        let mut p = self.resyncs.progress.lock();
        let p = p.get_or_insert(ResyncStatus {
            side,
            running_here: true,
            keys_checked: 0,
            keys_copied: 0,
            phase: "healthy",
        });
        p.side = side;
        p.running_here = true;
        p.keys_checked += checked as u64;
        p.keys_copied += copied as u64;
        p.phase = if second_scan { "resynced" } else { "healthy" };
        #[cfg(feature = "metrics")]
        metrics::counter!(crate::observe::FALLBACK_RESYNC_KEYS_TOTAL,
            crate::observe::label::SIDE => side.as_str())
        .increment(checked as u64);
    }
}
