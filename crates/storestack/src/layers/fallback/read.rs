//! The read path of [`Fallback`](super::Fallback).
//!
//! A key this process knows to be journaled is read from the side holding
//! its newest write, and only from there. Otherwise the primary is read,
//! and with [`JournalCheck::PerRead`] the key's journal entry on the
//! secondary at the same time: an entry there means the primary missed
//! writes to the key, which are then read from the secondary. The
//! secondary serves a read also when the primary fails with a transient
//! error.

use super::journal::{Entry, Pair, Side};
use super::status::bump;
use super::{JournalCheck, Shared};
use crate::error::{Op, Result};
use crate::store::{Record, Store};

impl<P: Store, S: Store> Shared<P, S> {
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Record>> {
        // The side stores check the rest of the key rules.
        self.check_reserved(Op::Get, key)?;
        if !self.mirror.is_empty() {
            return Box::pin(self.get_slow(key)).await;
        }
        // The hot path: nothing journaled is known to this process. The rare
        // cases are boxed, to keep this future small.
        let epoch = self.mirror.epoch();
        match self.cfg.journal_check {
            JournalCheck::Poll => match self.primary.get(key).await {
                Ok(v) => {
                    self.observe_ok(Side::Primary);
                    Ok(v)
                }
                p => {
                    self.observe(Side::Primary, &p);
                    Box::pin(self.retry_get(key, epoch, self.finish_get(key, p))).await
                }
            },
            JournalCheck::PerRead => {
                let jkey = self.names.journal_key(key);
                let (p, j) = tokio::join!(self.primary.get(key), self.secondary.get(&jkey));
                match (p, j) {
                    (Ok(v), Ok(None)) => {
                        self.observe_ok(Side::Primary);
                        self.observe_ok(Side::Secondary);
                        Ok(v)
                    }
                    (p, j) => {
                        let rest = self.after_checked(key, epoch, p, j);
                        Box::pin(self.retry_get(key, epoch, rest)).await
                    }
                }
            }
        }
    }

    /// Reads a key this process knows to be journaled.
    async fn get_slow(&self, key: &str) -> Result<Option<Record>> {
        let epoch = self.mirror.epoch();
        self.retry_get(key, epoch, self.get_once(key)).await
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
        if let Some(side) = self.mirror.get(key).and_then(|p| p.authority()) {
            return self.get_from_authority(side, key).await;
        }
        match self.cfg.journal_check {
            JournalCheck::PerRead => self.get_checked(key).await,
            JournalCheck::Poll => {
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
        let (p, j) = tokio::join!(self.primary.get(key), self.secondary.get(&jkey));
        self.after_checked(key, epoch, p, j).await
    }

    /// The rest of [`get_checked`](Self::get_checked), given the primary's
    /// answer `p` and the secondary's journal entry `j`.
    async fn after_checked(
        &self,
        key: &str,
        epoch: u64,
        p: Result<Option<Record>>,
        j: Result<Option<Record>>,
    ) -> Result<Option<Record>> {
        self.observe(Side::Primary, &p);
        self.observe(Side::Secondary, &j);
        let Ok(Some(raw)) = j else {
            // No entry (or the secondary is unreachable and cannot have
            // taken writes the primary missed since it failed).
            return self.finish_get(key, p).await;
        };
        // The primary may be stale: the secondary took writes it missed.
        let secondary = Some(Entry::decode(&raw.value));
        let primary = self.read_entry(Side::Primary, key).await.unwrap_or(None);
        let pair = Pair { primary, secondary };
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
            Some(Side::Primary) => match p {
                Err(e) if e.is_transient() => {
                    Err(self.newest_unreachable(Op::Get, Side::Primary, e))
                }
                r => r,
            },
            _ => self.get_from_authority(Side::Secondary, key).await,
        }
    }

    /// The primary's answer, or the secondary's when the primary failed
    /// with a transient error.
    async fn finish_get(&self, key: &str, p: Result<Option<Record>>) -> Result<Option<Record>> {
        match p {
            Err(pe) if pe.is_transient() => {
                bump(&self.health.failover_reads);
                match self.get_on(Side::Secondary, key).await {
                    Err(se) if se.is_transient() => {
                        Err(self.both_failed(Op::Get, (Side::Primary, pe), (Side::Secondary, se)))
                    }
                    r => r,
                }
            }
            r => r,
        }
    }
}
