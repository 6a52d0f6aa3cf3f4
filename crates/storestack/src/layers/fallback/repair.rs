//! Repair: make the stale side of each journaled key equal to the side
//! holding its newest write, then remove the key's journal entries.
//!
//! A pass works on a batch of keys in two stages:
//!
//! 1. **copy**, under this process's lock of the key and a lease stored on
//!    the secondary (`create` with an expiry, so that two processes do not
//!    repair one key at once): read both entries, resolve the authority,
//!    read its record and write it (value and absolute expiry) or its
//!    absence to the other side;
//! 2. after waiting [`settle`](super::FallbackConfig::settle) once for the
//!    whole batch, **verify**, under the key's lock again: both sides must
//!    hold the same record, else the key is left for the next pass. Then
//!    delete the entries seen in stage 1 and read both sides once more; if
//!    they now differ, a write slipped in between (one whose journal entry
//!    may just have been deleted), so the side that changed is journaled
//!    afresh and the key is left for the next pass.
//!
//! Why the settle: a write of *another* process to the same key goes to the
//! primary, then the secondary. If the copy overwrote its first half, its
//! second half lands within the write's own deadline, so after `settle` the
//! two sides differ and verification catches it. Writes of this process are
//! excluded by the key's lock.
//!
//! Dirty markers: each side holds a marker key while its journal may be
//! non-empty, so that polls cost one read per side. Writers store their
//! entry, then the marker; the marker is removed only when a scan finds no
//! entry, and the journal is scanned again after the removal, restoring the
//! marker if an entry appeared: whichever order a writer and the cleaner
//! interleave in, an entry never stays without its marker.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::Notify;

use super::journal::{Entry, Pair, Side};
use super::ops::{same, Claim};
use super::status::{bump, Control, FallbackStatus, RepairReport};
use super::Shared;
use crate::error::Result;
use crate::redact::KeyHash;
use crate::store::{Record, ScanCursor, Store};

/// Passes of one [`repair_now`](super::FallbackHandle::repair_now) at most.
const MAX_PASSES: usize = 8;
/// Keys per page when scanning a journal.
const SCAN_PAGE: usize = 1000;

/// A key copied in stage 1, awaiting verification.
#[derive(Debug)]
pub(crate) struct Staged {
    key: String,
    authority: Side,
    seen: Pair,
    lease: String,
}

enum Copied {
    Staged(Staged),
    NotJournaled,
    Deferred,
    Failed,
}

enum Verified {
    Repaired,
    Deferred,
    Failed,
}

impl<P: Store, S: Store> Shared<P, S> {
    /// One repair pass over up to `repair_batch` journaled keys.
    pub(crate) async fn repair_pass(&self) -> RepairReport {
        let mut report = RepairReport::default();
        let mut staged = Vec::new();
        for key in self.mirror.keys(self.cfg.repair_batch) {
            match self.copy_stage(&key).await {
                Copied::Staged(s) => staged.push(s),
                Copied::NotJournaled => {}
                Copied::Deferred => report.deferred += 1,
                Copied::Failed => {
                    report.failed += 1;
                    bump(&self.health.repair_failures);
                    // A side is failing: the rest of the batch would too.
                    break;
                }
            }
        }
        if !staged.is_empty() {
            tokio::time::sleep(self.cfg.settle).await;
            for s in staged {
                match self.verify_stage(s).await {
                    Verified::Repaired => {
                        report.repaired += 1;
                        bump(&self.health.repaired);
                    }
                    Verified::Deferred => report.deferred += 1,
                    Verified::Failed => {
                        report.failed += 1;
                        bump(&self.health.repair_failures);
                    }
                }
            }
        }
        report.remaining = self.mirror.len();
        report
    }

    async fn copy_stage(&self, key: &str) -> Copied {
        // A write of this process holds the key: repair it later.
        let Some(_guard) = self.locks.try_lock(key) else {
            return Copied::Deferred;
        };
        let lease = self.names.lease_key(key);
        let token = Bytes::from(format!("{:016x}", rand::random::<u64>()));
        let record = Record::expiring_at(token, self.now() + self.cfg.lease);
        match self.secondary.create(&lease, record).await {
            Ok(true) => {}
            Ok(false) => return Copied::Deferred,
            Err(e) => {
                self.observe(Side::Secondary, &Err::<(), _>(e));
                return Copied::Failed;
            }
        }
        match self.copy(key).await {
            Ok(Some((authority, seen))) => Copied::Staged(Staged {
                key: key.to_owned(),
                authority,
                seen,
                lease,
            }),
            Ok(None) => {
                self.release(&lease).await;
                Copied::NotJournaled
            }
            Err(e) => {
                tracing::debug!(key = %KeyHash::of(key), error = %e, "fallback: repair copy failed");
                self.release(&lease).await;
                Copied::Failed
            }
        }
    }

    async fn copy(&self, key: &str) -> Result<Option<(Side, Pair)>> {
        let seen = self.stored_pair(key).await?;
        let Some(authority) = seen.authority() else {
            // Repaired by another process, or a journal write that failed.
            self.mirror.forget(key);
            return Ok(None);
        };
        let record = self.get_on(authority, key).await?;
        self.put(authority.other(), key, record).await?;
        Ok(Some((authority, seen)))
    }

    async fn verify_stage(&self, s: Staged) -> Verified {
        let out = {
            let _guard = self.locks.lock(&s.key).await;
            self.verify(&s).await
        };
        self.release(&s.lease).await;
        match out {
            Ok(true) => {
                tracing::debug!(key = %KeyHash::of(&s.key), from = %s.authority, "fallback: key repaired");
                Verified::Repaired
            }
            Ok(false) => Verified::Deferred,
            Err(e) => {
                tracing::debug!(key = %KeyHash::of(&s.key), error = %e, "fallback: repair verification failed");
                Verified::Failed
            }
        }
    }

    async fn verify(&self, s: &Staged) -> Result<bool> {
        let key = s.key.as_str();
        let a = self.get_on(s.authority, key).await?;
        let t = self.get_on(s.authority.other(), key).await?;
        if !same(&a, &t) {
            return Ok(false);
        }
        let jkey = self.names.journal_key(key);
        for side in [Side::Primary, Side::Secondary] {
            if s.seen.get(side).is_some() {
                self.observe(side, &self.store(side).delete(&jkey).await);
            }
        }
        let p = self.get_on(Side::Primary, key).await?;
        let q = self.get_on(Side::Secondary, key).await?;
        if !same(&p, &q) {
            // A write landed after the verification; its entry may be gone.
            let changed = if same(&p, &a) {
                Side::Secondary
            } else {
                Side::Primary
            };
            self.journal_fresh(changed, key, Claim::Weak).await?;
            return Ok(false);
        }
        self.mirror.forget(key);
        Ok(true)
    }

    async fn release(&self, lease: &str) {
        let r = self.secondary.delete(lease).await;
        self.observe(Side::Secondary, &r);
    }

    // ---- discovery ----------------------------------------------------------

    /// The background poll: one marker read per side; loads the journal of a
    /// marked side, and forgets known entries of an unmarked side that are
    /// gone from its store (repaired by another process).
    pub(crate) async fn poll(&self) -> Result<()> {
        let mut first_err = None;
        for side in [Side::Primary, Side::Secondary] {
            let r = match self.get_on(side, &self.names.marker).await {
                Ok(Some(_)) => self.load_journal(side).await,
                Ok(None) => self.forget_repaired(side).await,
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Loads every entry of `side`'s journal (a scan of the reserved prefix);
    /// removes the side's marker when the journal is empty. A load that
    /// raced with a repair's forget is done again.
    pub(crate) async fn load_journal(&self, side: Side) -> Result<()> {
        for _ in 0..3 {
            if self.load_journal_once(side).await? {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Returns `false` if some entry read could not be learned. Known
    /// entries of `side` that are gone from its store are forgotten
    /// (another process repaired them).
    async fn load_journal_once(&self, side: Side) -> Result<bool> {
        let store = self.store(side);
        let epoch = self.mirror.epoch();
        let known: Vec<_> = self.mirror.keys_on(side);
        let mut seen = std::collections::BTreeSet::new();
        let mut cursor = ScanCursor::start();
        let mut found = 0usize;
        loop {
            let page = store
                .scan(self.names.journal_prefix(), cursor, SCAN_PAGE)
                .await;
            self.observe(side, &page);
            let page = page?;
            for jkey in &page.keys {
                let Some(key) = self.names.user_key(jkey) else {
                    continue;
                };
                if let Some(raw) = self.get_on(side, jkey).await? {
                    let entry = Entry::decode(&raw.value);
                    self.stamps.witness(entry);
                    if !self.mirror.learn_since(epoch, key, side, entry) {
                        return Ok(false);
                    }
                    seen.insert(key.to_owned());
                    found += 1;
                }
            }
            match page.next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        // Known entries the scan did not find were repaired elsewhere, or
        // written by this process after the scan passed them: look again,
        // under the key's lock.
        for (key, expected) in known {
            if seen.contains(&key) {
                continue;
            }
            if let Some(_guard) = self.locks.try_lock(&key) {
                if self.read_entry(side, &key).await?.is_none() {
                    self.mirror.forget_side_if(&key, side, expected);
                }
            }
        }
        if found == 0 {
            self.clean_marker(side).await?;
        }
        Ok(true)
    }

    /// Removes the marker of a side whose journal was found empty, then
    /// scans again and restores it if an entry appeared meanwhile.
    async fn clean_marker(&self, side: Side) -> Result<()> {
        let store = self.store(side);
        let r = store.delete(&self.names.marker).await;
        self.observe(side, &r);
        if !r? {
            return Ok(());
        }
        let page = store
            .scan(self.names.journal_prefix(), ScanCursor::start(), 1)
            .await;
        self.observe(side, &page);
        let page = page?;
        if !page.keys.is_empty() || page.next.is_some() {
            let r = store
                .create(&self.names.marker, super::lease::marker_record())
                .await;
            self.observe(side, &r);
            r?;
        }
        Ok(())
    }

    /// Forgets the known entries of `side` that its store no longer holds.
    async fn forget_repaired(&self, side: Side) -> Result<()> {
        for (key, expected) in self.mirror.keys_on(side) {
            let Some(_guard) = self.locks.try_lock(&key) else {
                continue;
            };
            if self.read_entry(side, &key).await?.is_none() {
                self.mirror.forget_side_if(&key, side, expected);
            }
        }
        Ok(())
    }

    async fn refresh_all(&self) -> Result<()> {
        let p = self.load_journal(Side::Primary).await;
        let s = self.load_journal(Side::Secondary).await;
        p.and(s)
    }
}

#[async_trait]
impl<P: Store, S: Store> Control for Shared<P, S> {
    fn status(&self) -> FallbackStatus {
        let (newest_on_primary, newest_on_secondary) = self.mirror.authorities();
        let h = &self.health;
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        FallbackStatus {
            primary: h.side_status(Side::Primary, self.primary.name()),
            secondary: h.side_status(Side::Secondary, self.secondary.name()),
            journaled_keys: self.mirror.len(),
            newest_on_primary,
            newest_on_secondary,
            repaired: load(&h.repaired),
            repair_failures: load(&h.repair_failures),
            failover_reads: load(&h.failover_reads),
            read_through: load(&h.read_through),
            resync: self.resyncs.status(),
            resyncs_detected: load(&self.resyncs.detected),
            resyncs_completed: load(&self.resyncs.completed),
            degraded_writes: load(&h.degraded_writes),
            refused: load(&h.refused),
            both_failed: load(&h.both_failed),
        }
    }

    async fn repair_now(&self) -> RepairReport {
        // Sides may be down: repair what is known.
        let _ = self.refresh_all().await;
        // A side that lost its data is made whole first (resumed by the
        // next call if it takes longer than half a lease).
        let _ = self.check_sides().await;
        let mut total = RepairReport::default();
        for _ in 0..MAX_PASSES {
            if self.mirror.is_empty() {
                break;
            }
            let pass = self.repair_pass().await;
            total.add(pass);
            if pass.failed > 0 || (pass.repaired == 0 && pass.deferred == 0) {
                break;
            }
        }
        // Pick up entries written meanwhile; drop markers of empty journals.
        let _ = self.refresh_all().await;
        total.remaining = self.mirror.len();
        total
    }

    async fn refresh(&self) -> Result<()> {
        self.refresh_all().await
    }
}

/// Starts the background poll-and-repair task if a tokio runtime is
/// running. It holds only a weak reference and ends once the fallback is
/// dropped.
pub(crate) fn spawn_background<P: Store, S: Store>(shared: &Arc<Shared<P, S>>) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak = Arc::downgrade(shared);
    let wake = shared.wake.clone();
    let every = shared.cfg.poll_interval;
    if shared.cfg.journal_check == super::JournalCheck::Lease {
        let renew = super::lease::renew_every(shared.cfg.read_lease);
        rt.spawn(renew_leases(Arc::downgrade(shared), renew));
    }
    rt.spawn(background(weak, wake, every));
}

/// Renews the read lease until the fallback is dropped.
async fn renew_leases<P: Store, S: Store>(weak: Weak<Shared<P, S>>, every: std::time::Duration) {
    loop {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let _ = shared.renew_lease().await;
        drop(shared);
        tokio::time::sleep(every).await;
    }
}

async fn background<P: Store, S: Store>(
    weak: Weak<Shared<P, S>>,
    wake: Arc<Notify>,
    every: std::time::Duration,
) {
    loop {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let mut failed = shared.poll().await.is_err();
        failed |= shared.check_sides().await.is_err();
        if !shared.mirror.is_empty() {
            failed |= shared.repair_pass().await.failed > 0;
        }
        drop(shared);
        if failed {
            // Do not hammer a failing side: ignore wake-ups for one interval.
            tokio::time::sleep(every).await;
        } else {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = wake.notified() => {}
            }
        }
    }
}
