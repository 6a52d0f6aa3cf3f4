//! The write path of [`Fallback`](super::Fallback).
//!
//! Writes go to the primary, then the secondary, under this process's lock
//! of the key. A side that fails with a transient error is journaled as
//! stale on the side that succeeded: *after* the write when the first side
//! succeeded and the second then failed, *before* the write (a pending
//! entry, committed once a blind write succeeds) when the first side failed
//! and the write goes to the other side alone.

use super::journal::{Entry, Side};
use super::ops::{Claim, Mutation};
use super::status::bump;
use super::Shared;
use crate::error::{Op, Result, StoreError};
use crate::limits;
use crate::store::{Record, Store};

impl<P: Store, S: Store> Shared<P, S> {
    pub(crate) async fn mutate(&self, key: &str, m: Mutation) -> Result<bool> {
        self.check_key(m.op(), key)?;
        if let Mutation::Touch(at) = &m {
            limits::check_expiry(Op::Touch, *at)?;
        }
        let _guard = self.locks.lock(key).await;
        // What this process knows of the key may be out of date (another
        // process repaired or journaled it): refresh it from the stores.
        let known = match self.mirror.get(key) {
            Some(_) => Box::pin(self.authority(key)).await,
            None => self.resync_authority(),
        };
        match &m {
            Mutation::Create(record) => Box::pin(self.create(key, &m, record, known)).await,
            Mutation::SetIf(record, _) => Box::pin(self.set_if(key, &m, record, known)).await,
            _ => self.write_both(key, &m, known).await,
        }
    }

    /// set, delete, touch: primary, then secondary; a touch of a key known
    /// to be stale on the primary goes to the secondary first, so that the
    /// side holding the newest write decides.
    async fn write_both(&self, key: &str, m: &Mutation, known: Option<Side>) -> Result<bool> {
        let first = match known {
            Some(side) if !m.blind() => side,
            _ => Side::Primary,
        };
        let second = first.other();
        let r1 = match self.apply(first, key, m).await {
            Ok(r) => r,
            Err(e) if e.is_transient() => {
                return Box::pin(self.degraded(second, key, m, e)).await;
            }
            Err(e) => return Err(e),
        };
        match self.apply(second, key, m).await {
            Ok(r2) if r2 == r1 => Ok(r1),
            Ok(r2) => {
                let (pr, sr) = if first == Side::Primary {
                    (r1, r2)
                } else {
                    (r2, r1)
                };
                Box::pin(self.disagreement(key, m, known, pr, sr)).await
            }
            Err(e2) => {
                // The first side took the write, the second did not: journal
                // it so that the second is repaired (or never served).
                let journaled = Box::pin(self.journal_after(first, key, m.claim())).await;
                match journaled {
                    Err(je) if e2.is_transient() => {
                        Err(self.both_failed(m.op(), (second, e2), (first, je)))
                    }
                    _ if e2.is_transient() => Ok(r1),
                    _ => Err(e2),
                }
            }
        }
    }

    /// The sides disagreed on whether a live record was there (delete,
    /// touch): answer what the side holding the newest write says.
    async fn disagreement(
        &self,
        key: &str,
        m: &Mutation,
        known: Option<Side>,
        pr: bool,
        sr: bool,
    ) -> Result<bool> {
        let authority = match known {
            Some(side) => Some(side),
            None => self.authority(key).await,
        };
        match authority {
            Some(Side::Secondary) => Ok(sr),
            Some(Side::Primary) => Ok(pr),
            None => {
                // Nothing journaled explains it: one side lost the record
                // (it restarted empty or from an old backup), or a write of
                // another process is in flight. A live record is never
                // dropped on a guess: a delete removed it from both sides
                // (it was there); a touch made it live on one side, so it
                // is copied to the side that had lost it.
                match m {
                    Mutation::Touch(_) => {
                        // The side that had it holds the newest record: journal
                        // it, so that reads follow it and repair copies it
                        // (copying here could race a delete of another process).
                        let (from, to) = if pr {
                            (Side::Primary, Side::Secondary)
                        } else {
                            (Side::Secondary, Side::Primary)
                        };
                        self.suspect(to);
                        let _ = self.journal_after(from, key, Claim::Weak).await;
                        Ok(true)
                    }
                    _ => Ok(pr || sr),
                }
            }
        }
    }

    /// `create` keeps its insert-if-absent meaning: the side holding the
    /// newest write decides; with no journal, the primary decides, unless
    /// the secondary holds a live record.
    async fn create(
        &self,
        key: &str,
        m: &Mutation,
        record: &Record,
        known: Option<Side>,
    ) -> Result<bool> {
        if let Some(side) = known {
            return self.create_on(side, key, m, record).await;
        }
        // Either side may hold the key's newest write (the other missed it):
        // then that side decides, before anything is written. And a live
        // record on the secondary that nothing journaled explains means the
        // key exists: the primary lost it (it restarted empty, or from an
        // old backup), so the create answers `false` with nothing written.
        // Three point reads at once, where the other writes need none:
        // creates are rare (one per session). An unreadable side cannot have
        // taken writes the other missed since it failed.
        let (pe, se, existing) = tokio::join!(
            self.read_entry(Side::Primary, key),
            self.read_entry(Side::Secondary, key),
            self.get_on(Side::Secondary, key)
        );
        if matches!(pe, Ok(Some(_))) || matches!(se, Ok(Some(_))) {
            if let Some(side) = self.authority(key).await {
                return self.create_on(side, key, m, record).await;
            }
        }
        if let Ok(Some(_)) = existing {
            self.suspect(Side::Primary);
            return Ok(false);
        }
        match self.apply(Side::Primary, key, m).await {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(pe) if pe.is_transient() => {
                return Box::pin(self.degraded(Side::Secondary, key, m, pe)).await;
            }
            Err(pe) => return Err(pe),
        }
        match self.apply(Side::Secondary, key, m).await {
            Ok(true) => Ok(true),
            Ok(false) => {
                // The secondary holds a live record the primary did not.
                if self.authority(key).await == Some(Side::Secondary) {
                    // The primary was stale (journaled by another process
                    // since the check above): the key exists. Take back the
                    // record just created on the primary by copying the
                    // secondary's over it (repair would, later).
                    if let Ok(newest) = self.get_on(Side::Secondary, key).await {
                        let _ = self.put(Side::Primary, key, newest).await;
                    }
                    return Ok(false);
                }
                // A leftover on the secondary (or a concurrent write of
                // another process): the primary decided; align the secondary
                // with it, or journal it as stale.
                match self.put(Side::Secondary, key, Some(record.clone())).await {
                    Ok(()) => Ok(true),
                    Err(se) => match self.journal_after(Side::Primary, key, Claim::Weak).await {
                        Ok(()) => Ok(true),
                        Err(je) if se.is_transient() => Err(self.both_failed(
                            Op::Create,
                            (Side::Secondary, se),
                            (Side::Primary, je),
                        )),
                        Err(_) => Err(se),
                    },
                }
            }
            Err(se) => {
                let journaled = self.journal_after(Side::Primary, key, Claim::Weak).await;
                match journaled {
                    Err(je) if se.is_transient() => Err(self.both_failed(
                        Op::Create,
                        (Side::Secondary, se),
                        (Side::Primary, je),
                    )),
                    _ if se.is_transient() => Ok(true),
                    _ => Err(se),
                }
            }
        }
    }

    /// `set_if`: one side decides the condition (the side holding the
    /// key's newest write; the primary when nothing is journaled; the
    /// healthy side while the other resyncs), and its outcome is mirrored to
    /// the other side as a blind write, so that both sides keep the same
    /// bytes (the same version). Deciding on both sides could split: each
    /// side might hold a different record that matches, or not.
    async fn set_if(
        &self,
        key: &str,
        m: &Mutation,
        record: &Record,
        known: Option<Side>,
    ) -> Result<bool> {
        let decider = known.unwrap_or(Side::Primary);
        match self.apply(decider, key, m).await {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) if e.is_transient() && known.is_none() => {
                // Nothing journaled: the secondary is current for the key
                // and decides alone (journaled, as any degraded write).
                return Box::pin(self.degraded(decider.other(), key, m, e)).await;
            }
            Err(e) if e.is_transient() => {
                return Err(self.newest_unreachable(Op::SetIf, decider, e));
            }
            Err(e) => return Err(e),
        }
        let other = decider.other();
        match self.put(other, key, Some(record.clone())).await {
            Ok(()) => Ok(true),
            Err(e) => match self.journal_after(decider, key, Claim::Weak).await {
                Ok(()) => Ok(true),
                Err(je) if e.is_transient() => {
                    Err(self.both_failed(Op::SetIf, (other, e), (decider, je)))
                }
                Err(_) => Err(e),
            },
        }
    }

    /// Create where `side` holds the newest write of the key.
    async fn create_on(
        &self,
        side: Side,
        key: &str,
        m: &Mutation,
        record: &Record,
    ) -> Result<bool> {
        match self.apply(side, key, m).await {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) if e.is_transient() => {
                return Err(self.newest_unreachable(Op::Create, side, e));
            }
            Err(e) => return Err(e),
        }
        let other = side.other();
        match self.put(other, key, Some(record.clone())).await {
            Ok(()) => Ok(true),
            Err(e) if e.is_transient() => match self.journal_after(side, key, Claim::Weak).await {
                Ok(()) => Ok(true),
                Err(je) => Err(self.both_failed(Op::Create, (other, e), (side, je))),
            },
            // The other side is journaled as stale already.
            Err(_) => Ok(true),
        }
    }

    /// The other side of `up` failed with `first`: write to `up` alone,
    /// journaling it first.
    async fn degraded(&self, up: Side, key: &str, m: &Mutation, first: StoreError) -> Result<bool> {
        let down = up.other();
        let op = m.op();
        let pair = self.mirror.get(key).unwrap_or_default();
        if (pair.authority() == Some(down) || self.resyncs.resyncing(up)) && !m.blind() {
            // `up` is stale for this key; its answer would be wrong.
            return Err(self.newest_unreachable(op, down, first));
        }
        let prev = match self.entry_on(up, key, &pair).await {
            Ok(prev) => prev,
            Err(e) => return Err(self.fail_on(op, (down, first), (up, e))),
        };
        let stamp = self.stamps.next_after(self.now(), &pair);
        let pending = Entry::pending(prev, stamp);
        self.mirror.learn(key, up, pending);
        if let Err(e) = self.write_entry(up, key, pending, true).await {
            let after = self.mirror.get(key).unwrap_or_default();
            if after.get(up) == Some(pending) {
                self.mirror.restore(key, pair, after);
            }
            return Err(self.fail_on(op, (down, first), (up, e)));
        }
        let out = match self.apply(up, key, m).await {
            Ok(out) => out,
            Err(e) => return Err(self.fail_on(op, (down, first), (up, e))),
        };
        if m.changed(out) {
            let claim = match m.claim() {
                Claim::Committed => Entry::committed(stamp),
                Claim::Weak => Entry::weak(prev, stamp),
            };
            self.mirror.learn(key, up, claim);
            if let Err(e) = self.write_entry(up, key, claim, false).await {
                return Err(self.fail_on(op, (down, first), (up, e)));
            }
        }
        bump(&self.health.degraded_writes);
        if up == Side::Secondary {
            self.served_by_secondary(op, first.kind());
        }
        if let Err(e) = self.guard_if_secondary(up, key).await {
            return Err(self.fail_on(op, (down, first), (up, e)));
        }
        Ok(out)
    }

    /// `second` is the error of the side tried after `first` failed
    /// transiently: both failed if it is transient too, else it is the
    /// answer.
    fn fail_on(&self, op: Op, first: (Side, StoreError), second: (Side, StoreError)) -> StoreError {
        if second.1.is_transient() {
            self.both_failed(op, first, second)
        } else {
            second.1
        }
    }
}
