//! The read path of [`Fallback`](super::Fallback).
//!
//! With [`JournalCheck::PerRead`] every read reads the primary and, at the
//! same time, the key's journal entry on the secondary: the stores'
//! journal, not this process's memory of it, decides where the newest
//! write is, so knowledge another process made stale (by repairing or
//! journaling the key) cannot mislead a read. No entry on the secondary:
//! the primary is current (with a transient error, the secondary serves,
//! unless this process knows it is stale for the key). An entry: the
//! primary's entry is read too and the side holding the newest write
//! serves, alone. This process's memory ([`Mirror`](super::journal::Mirror))
//! stands in only for a side whose journal cannot be read.
//!
//! With [`JournalCheck::Poll`] reads trust this process's memory: a key it
//! knows to be journaled is read from the side holding its newest write,
//! any other key from the primary (the secondary on a transient error).

use super::journal::{Entry, Pair, Side};
use super::status::bump;
use super::{JournalCheck, Shared};
use crate::error::{Op, Result};
use crate::store::{Record, Store};

impl<P: Store, S: Store> Shared<P, S> {
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Record>> {
        // The side stores check the rest of the key rules.
        self.check_reserved(Op::Get, key)?;
        if self.resyncs.active(Side::Primary) {
            return Box::pin(self.get_resyncing_primary(key)).await;
        }
        let epoch = self.mirror.epoch();
        // The hot paths first; the rare cases are boxed, to keep this future
        // small.
        match self.cfg.journal_check {
            JournalCheck::Lease
                if self.lease.valid()
                    && !self.health.is_down(Side::Primary)
                    && self.mirror.get(key).is_none() =>
            {
                // No write the primary missed is journaled anywhere (as of
                // the lease's check): the primary alone is current.
                match self.primary.get(key).await {
                    Ok(Some(v)) => {
                        self.observe_ok(Side::Primary);
                        Ok(Some(v))
                    }
                    Ok(None) => {
                        self.observe_ok(Side::Primary);
                        Box::pin(self.read_through(key)).await
                    }
                    // A bad record or a bad request is not an outage: no
                    // second look, no failover.
                    Err(e) if !e.is_transient() => Err(e),
                    Err(e) => {
                        self.observe(Side::Primary, &Err::<(), _>(e));
                        Box::pin(self.retry_get(key, epoch, self.get_checked(key))).await
                    }
                }
            }
            JournalCheck::PerRead | JournalCheck::Lease => {
                // What this process knows, as of before the reads (a write
                // finishing during them must not vouch for what they saw).
                let known = self.mirror.get(key).unwrap_or_default();
                let jkey = self.names.journal_key(key);
                let (p, j) = tokio::join!(self.primary.get(key), self.secondary.get(&jkey));
                match (p, j) {
                    (Ok(Some(v)), Ok(None)) => {
                        self.observe_ok(Side::Primary);
                        self.observe_ok(Side::Secondary);
                        Ok(Some(v))
                    }
                    (p, j) => {
                        let rest = self.after_checked(key, epoch, known, p, j);
                        Box::pin(self.retry_get(key, epoch, rest)).await
                    }
                }
            }
            JournalCheck::Poll if self.mirror.is_empty() => match self.primary.get(key).await {
                Ok(Some(v)) => {
                    self.observe_ok(Side::Primary);
                    Ok(Some(v))
                }
                p => {
                    self.observe(Side::Primary, &p);
                    Box::pin(self.retry_get(key, epoch, self.finish_get(key, p))).await
                }
            },
            JournalCheck::Poll => Box::pin(self.retry_get(key, epoch, self.get_once(key))).await,
        }
    }

    /// Reads take no lock: a repair of this process may have finished (and
    /// forgotten the key) while a read waited on a side that then failed.
    /// Then the read looks again.
    async fn retry_get(
        &self,
        key: &str,
        epoch: u64,
        first: impl std::future::Future<Output = Result<Option<Record>>>,
    ) -> Result<Option<Record>> {
        match first.await {
            Err(e) if e.is_transient() && self.mirror.epoch() != epoch => self.get_once(key).await,
            r => r,
        }
    }

    async fn get_once(&self, key: &str) -> Result<Option<Record>> {
        match self.cfg.journal_check {
            JournalCheck::PerRead | JournalCheck::Lease => self.get_checked(key).await,
            JournalCheck::Poll => {
                if let Some(side) = self.mirror.get(key).and_then(|p| p.authority()) {
                    return self.get_from_authority(side, key).await;
                }
                let p = self.get_on(Side::Primary, key).await;
                self.finish_get(key, p).await
            }
        }
    }

    /// Reads the authority only: the other side is known to be stale.
    async fn get_from_authority(&self, side: Side, key: &str) -> Result<Option<Record>> {
        match self.get_on(side, key).await {
            Err(e) if e.is_transient() => Err(self.newest_unreachable(Op::Get, side, e)),
            r => r,
        }
    }

    /// Reads the primary and, concurrently, the key's journal entry on the
    /// secondary.
    async fn get_checked(&self, key: &str) -> Result<Option<Record>> {
        let jkey = self.names.journal_key(key);
        let epoch = self.mirror.epoch();
        let known = self.mirror.get(key).unwrap_or_default();
        let (p, j) = tokio::join!(self.primary.get(key), self.secondary.get(&jkey));
        self.after_checked(key, epoch, known, p, j).await
    }

    /// The rest of [`get_checked`](Self::get_checked), given what this
    /// process knew before the reads, the primary's answer `p` and the
    /// secondary's journal entry `j`.
    async fn after_checked(
        &self,
        key: &str,
        epoch: u64,
        known: Pair,
        p: Result<Option<Record>>,
        j: Result<Option<Record>>,
    ) -> Result<Option<Record>> {
        self.observe(Side::Primary, &p);
        self.observe(Side::Secondary, &j);
        let secondary = match j {
            Ok(None) => {
                // The secondary took no write the primary missed. If the
                // primary failed, the secondary serves, unless this process
                // knows the secondary missed writes to the key.
                let pair = Pair {
                    primary: known.primary,
                    secondary: None,
                };
                return match pair.authority() {
                    Some(Side::Primary) => self.primary_only(p),
                    _ => self.finish_get(key, p).await,
                };
            }
            // The secondary cannot be read: this process's knowledge stands
            // in for its entry.
            Err(_) => {
                return match known.authority() {
                    Some(Side::Secondary) => self.get_from_authority(Side::Secondary, key).await,
                    Some(Side::Primary) => self.primary_only(p),
                    None => self.finish_get(key, p).await,
                };
            }
            Ok(Some(raw)) => Entry::decode(&raw.value),
        };
        // The primary may be stale: the secondary took writes it missed.
        let primary = match self.read_entry(Side::Primary, key).await {
            Ok(entry) => entry,
            Err(_) => known.primary,
        };
        let pair = Pair {
            primary,
            secondary: Some(secondary),
        };
        for side in [Side::Primary, Side::Secondary] {
            if let Some(e) = pair.get(side) {
                self.stamps.witness(e);
                self.mirror.learn_since(epoch, key, side, e);
            }
        }
        self.wake.notify_one();
        match pair.authority() {
            // The secondary's entry is older than the primary's: the
            // secondary is the stale one, so no failover to it.
            Some(Side::Primary) => self.primary_only(p),
            _ => self.get_from_authority(Side::Secondary, key).await,
        }
    }

    /// The primary's answer where the secondary is known to be stale.
    fn primary_only(&self, p: Result<Option<Record>>) -> Result<Option<Record>> {
        match p {
            Err(e) if e.is_transient() => Err(self.newest_unreachable(Op::Get, Side::Primary, e)),
            r => r,
        }
    }

    /// The primary's answer, or the secondary's when the primary failed
    /// with a transient error or has no record (see [`read_through`](Self::read_through)).
    async fn finish_get(&self, key: &str, p: Result<Option<Record>>) -> Result<Option<Record>> {
        match p {
            Ok(None) => Box::pin(self.read_through(key)).await,
            Err(pe) if pe.is_transient() => {
                bump(&self.health.failover_reads);
                match self.get_on(Side::Secondary, key).await {
                    Err(se) if se.is_transient() => {
                        Err(self.both_failed(Op::Get, (Side::Primary, pe), (Side::Secondary, se)))
                    }
                    r => {
                        self.served_by_secondary(Op::Get, pe.kind());
                        r
                    }
                }
            }
            r => r,
        }
    }

    /// The primary has no live record of `key` and nothing journaled says
    /// the secondary is stale for it: a primary that lost its data (it
    /// restarted empty, or came back from an old backup) answers absent
    /// for records the secondary still holds, so the secondary is asked.
    /// Its record is served unless the primary's journal entry says the
    /// primary holds the key's newest write (a delete the secondary missed).
    /// A secondary that cannot answer leaves the primary's answer.
    async fn read_through(&self, key: &str) -> Result<Option<Record>> {
        self.read_through_with(key, self.get_on(Side::Secondary, key))
            .await
    }

    /// [`read_through`](Self::read_through) with `secondary` as the read of
    /// the key on the secondary (a plain or a versioned read).
    pub(crate) async fn read_through_with<T>(
        &self,
        key: &str,
        secondary: impl std::future::Future<Output = Result<Option<T>>>,
    ) -> Result<Option<T>> {
        if self.resyncs.active(Side::Secondary) {
            // The secondary is being made whole: its copy may be one that
            // was deleted since.
            return Ok(None);
        }
        let (s, pe) = tokio::join!(secondary, self.read_entry(Side::Primary, key));
        match (s, pe) {
            (Ok(Some(record)), Ok(None)) => {
                bump(&self.health.read_through);
                self.suspect(Side::Primary);
                Ok(Some(record))
            }
            (Ok(Some(_)), Ok(Some(entry))) => {
                // The primary holds the newest write of the key: its absence
                // is a delete the secondary missed.
                self.stamps.witness(entry);
                self.mirror.learn(key, Side::Primary, entry);
                self.wake.notify_one();
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// A read while the primary is being resynced: its copy may be stale
    /// or missing, so the secondary serves (unless this process journaled
    /// the key's newest write on the primary since).
    async fn get_resyncing_primary(&self, key: &str) -> Result<Option<Record>> {
        if self.mirror.get(key).and_then(|p| p.authority()) == Some(Side::Primary) {
            return self.get_from_authority(Side::Primary, key).await;
        }
        match self.get_on(Side::Secondary, key).await {
            // The primary is only suspected (back from an outage, not yet
            // checked): rather than an error, the usual path decides.
            Err(se) if se.is_transient() && !self.resyncs.resyncing(Side::Primary) => {
                drop(se);
                self.get_checked(key).await
            }
            Err(se) if se.is_transient() => {
                Err(self.newest_unreachable(Op::Get, Side::Secondary, se))
            }
            r => r,
        }
    }
}
