//! The read and write paths of [`Fallback`](super::Fallback).
//!
//! Writes go to the primary, then the secondary, under this process's lock
//! of the key. A side that fails with a transient error is journaled as
//! stale on the side that succeeded: *after* the write when the primary
//! succeeded and the secondary then failed, *before* the write (a pending
//! entry, committed once the write succeeds) when the primary failed and
//! the write goes to the secondary alone.

use std::time::SystemTime;

use bytes::Bytes;

use super::journal::{Entry, Pair, Side};
use super::status::bump;
use super::{JournalCheck, Shared};
use crate::error::{ErrorKind, Op, Result, StoreError};
use crate::limits;
use crate::store::{Record, Store};

/// A write, applied to one side at a time.
#[derive(Debug, Clone)]
pub(crate) enum Mutation {
    Set(Record),
    Create(Record),
    Delete,
    Touch(Option<SystemTime>),
}

impl Mutation {
    pub(crate) fn op(&self) -> Op {
        match self {
            Mutation::Set(_) => Op::Set,
            Mutation::Create(_) => Op::Create,
            Mutation::Delete => Op::Delete,
            Mutation::Touch(_) => Op::Touch,
        }
    }

    /// Whether the outcome does not depend on what the side holds, so that
    /// it may be applied to a side known to be stale.
    fn blind(&self) -> bool {
        matches!(self, Mutation::Set(_) | Mutation::Delete)
    }

    /// How strongly a successful application journals its side.
    fn claim(&self) -> Claim {
        if self.blind() {
            Claim::Committed
        } else {
            Claim::Weak
        }
    }

    /// Whether the outcome `out` changed the side.
    fn changed(&self, out: bool) -> bool {
        match self {
            Mutation::Set(_) | Mutation::Delete => true,
            Mutation::Create(_) | Mutation::Touch(_) => out,
        }
    }

    async fn apply(&self, store: &dyn Store, key: &str) -> Result<bool> {
        match self {
            Mutation::Set(r) => store.set(key, r.clone()).await.map(|()| true),
            Mutation::Create(r) => store.create(key, r.clone()).await,
            Mutation::Delete => store.delete(key).await,
            Mutation::Touch(at) => store.touch(key, *at).await,
        }
    }
}

/// How strongly a journal entry claims that its side holds the newest write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// A blind write (`set`, `delete`) that succeeded: its side is the newest
    /// whatever the other side holds.
    Committed,
    /// A write whose outcome depended on what its side held (`touch`,
    /// `create`): a pending-only entry, which loses against any committed
    /// entry of the other side (so that a touch or create decided by a stale
    /// side in a double fault cannot make the stale copy win).
    Weak,
}

/// Whether two reads of a key hold the same record (expiry compared to the
/// millisecond, the precision of Redis and MongoDB).
pub(crate) fn same(a: &Option<Record>, b: &Option<Record>) -> bool {
    let ms = |r: &Record| r.expires_at.map(limits::unix_millis);
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.value == b.value && ms(a) == ms(b),
        _ => false,
    }
}

impl<P: Store, S: Store> Shared<P, S> {
    pub(crate) fn store(&self, side: Side) -> &dyn Store {
        match side {
            Side::Primary => &self.primary,
            Side::Secondary => &self.secondary,
        }
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.cfg.clock.now()
    }

    /// Records the outcome of an operation on `side` in the health state.
    #[inline]
    pub(crate) fn observe<T>(&self, side: Side, r: &Result<T>) {
        match r {
            Ok(_) => self.observe_ok(side),
            Err(e) if e.is_transient() => {
                self.health
                    .failed(side, self.store(side).name(), e.kind(), self.now())
            }
            Err(_) => {}
        }
    }

    /// Records a success on `side` (the hot-path half of
    /// [`observe`](Self::observe)).
    #[inline]
    fn observe_ok(&self, side: Side) {
        if self.health.ok(side, || self.store(side).name()) {
            self.wake.notify_one();
        }
    }

    /// Key rules: the store-wide ones, plus the reserved prefix and the room
    /// the journal key needs.
    pub(crate) fn check_key(&self, op: Op, key: &str) -> Result<()> {
        limits::check_key(op, key)?;
        self.check_reserved(op, key)
    }

    /// The fallback's own key rules: not the reserved prefix, and room for
    /// the journal key.
    pub(crate) fn check_reserved(&self, op: Op, key: &str) -> Result<()> {
        if self.names.is_reserved(key) {
            return Err(self
                .error(ErrorKind::InvalidInput, op)
                .with_message("key starts with the fallback's reserved prefix"));
        }
        let max = self.names.max_key_len();
        if key.len() > max {
            return Err(self
                .error(ErrorKind::InvalidInput, op)
                .with_message(format!(
                    "key is {} bytes, longer than the fallback's maximum of {max}",
                    key.len()
                )));
        }
        Ok(())
    }

    pub(crate) fn error(&self, kind: ErrorKind, op: Op) -> StoreError {
        StoreError::new(kind, op).with_store(self.name.clone())
    }

    /// Both sides failed: a transient error naming both.
    pub(crate) fn both_failed(
        &self,
        op: Op,
        first: (Side, StoreError),
        second: (Side, StoreError),
    ) -> StoreError {
        bump(&self.health.both_failed);
        let ((ps, pe), (ss, se)) = if first.0 == Side::Primary {
            (first, second)
        } else {
            (second, first)
        };
        let kind = if pe.kind() == se.kind() {
            pe.kind()
        } else {
            ErrorKind::Unavailable
        };
        let message = format!(
            "both sides failed: {ps} ({}): {pe}; {ss} ({}): {se}",
            self.primary.name(),
            self.secondary.name()
        );
        self.error(kind, op).with_message(message).with_source(se)
    }

    /// The only up-to-date copy of the key is on `side`, which failed.
    fn newest_unreachable(&self, op: Op, side: Side, cause: StoreError) -> StoreError {
        bump(&self.health.refused);
        let kind = if cause.is_transient() {
            cause.kind()
        } else {
            ErrorKind::Unavailable
        };
        self.error(kind, op)
            .with_message(format!(
                "the newest write of this key is on the {side} ({}), which is unreachable; \
                 the {} is stale for it",
                self.store(side).name(),
                side.other()
            ))
            .with_source(cause)
    }

    async fn on_side<T>(
        &self,
        side: Side,
        fut: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let r = fut.await;
        self.observe(side, &r);
        r
    }

    pub(crate) async fn get_on(&self, side: Side, key: &str) -> Result<Option<Record>> {
        self.on_side(side, self.store(side).get(key)).await
    }

    async fn apply(&self, side: Side, key: &str, m: &Mutation) -> Result<bool> {
        self.on_side(side, m.apply(self.store(side), key)).await
    }

    /// Writes `record` at `key` on `side`, or deletes it for `None`.
    pub(crate) async fn put(&self, side: Side, key: &str, record: Option<Record>) -> Result<()> {
        let store = self.store(side);
        match record {
            Some(r) => self.on_side(side, store.set(key, r)).await,
            None => self.on_side(side, store.delete(key)).await.map(|_| ()),
        }
    }

    pub(crate) async fn read_entry(&self, side: Side, key: &str) -> Result<Option<Entry>> {
        let raw = self.get_on(side, &self.names.journal_key(key)).await?;
        Ok(raw.map(|r| Entry::decode(&r.value)))
    }

    /// Reads the entries of both sides from the stores, teaches them to the
    /// mirror and resolves them.
    pub(crate) async fn stored_pair(&self, key: &str) -> Result<Pair> {
        let pair = Pair {
            primary: self.read_entry(Side::Primary, key).await?,
            secondary: self.read_entry(Side::Secondary, key).await?,
        };
        self.learn(key, pair);
        Ok(pair)
    }

    pub(crate) fn learn(&self, key: &str, pair: Pair) {
        for side in [Side::Primary, Side::Secondary] {
            if let Some(e) = pair.get(side) {
                self.stamps.witness(e);
                self.mirror.learn(key, side, e);
            }
        }
    }

    /// Stores an entry on `side`, then the side's dirty marker (entry first:
    /// see the repair module on why the marker may never lag).
    async fn write_entry(&self, side: Side, key: &str, entry: Entry, marker: bool) -> Result<()> {
        let store = self.store(side);
        self.on_side(
            side,
            store.set(&self.names.journal_key(key), entry.record()),
        )
        .await?;
        if marker {
            let mark = Record::never_expiring(Bytes::from_static(b"1"));
            self.on_side(side, store.set(&self.names.marker, mark))
                .await?;
        }
        Ok(())
    }

    /// `up` holds a write the other side missed: journal it on `up` with a
    /// fresh stamp. Returns the journal write's error, if any.
    pub(crate) async fn journal_after(&self, up: Side, key: &str, claim: Claim) -> Result<()> {
        bump(&self.health.degraded_writes);
        self.journal_fresh(up, key, claim).await
    }

    /// Journals `up` as holding the newest write of `key`, with a stamp
    /// above every stamp known for it.
    pub(crate) async fn journal_fresh(&self, up: Side, key: &str, claim: Claim) -> Result<()> {
        let before = self.mirror.get(key).unwrap_or_default();
        let stamp = self.stamps.next_after(self.now(), &before);
        let entry = match claim {
            Claim::Committed => Entry::committed(stamp),
            Claim::Weak => Entry {
                committed: self.committed_on(up, key, &before).await?,
                pending: Some(stamp),
            },
        };
        self.mirror.learn(key, up, entry);
        let r = self.write_entry(up, key, entry, true).await;
        if r.is_err() {
            let after = self.mirror.get(key).unwrap_or_default();
            if after.get(up) == Some(entry) {
                self.mirror.restore(key, before, after);
            }
        }
        r
    }

    /// The committed stamp of `up`'s entry for `key`, which a new pending
    /// entry must keep: from the mirror, else from the store (another
    /// process's entry).
    async fn committed_on(&self, up: Side, key: &str, known: &Pair) -> Result<Option<u64>> {
        if let Some(e) = known.get(up) {
            return Ok(e.committed);
        }
        let stored = self.read_entry(up, key).await?;
        Ok(stored.and_then(|e| {
            self.stamps.witness(e);
            e.committed
        }))
    }

    /// The authority for `key`: the mirror's if it knows one, else the
    /// stores' entries. A side that cannot be read is taken to hold no
    /// entry: it could not have taken the writes the other side missed
    /// (one fault at a time).
    async fn authority(&self, key: &str, known: Option<Side>) -> Option<Side> {
        if known.is_some() {
            return known;
        }
        let primary = self.read_entry(Side::Primary, key).await.unwrap_or(None);
        let secondary = self.read_entry(Side::Secondary, key).await.unwrap_or(None);
        let pair = Pair { primary, secondary };
        self.learn(key, pair);
        pair.authority()
    }

    // ---- reads ------------------------------------------------------------

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
                p => Box::pin(self.retry_get(key, epoch, self.finish_get(key, p))).await,
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
            Some(Side::Primary) => self.finish_get(key, p).await,
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

    // ---- writes -----------------------------------------------------------

    pub(crate) async fn mutate(&self, key: &str, m: Mutation) -> Result<bool> {
        self.check_key(m.op(), key)?;
        if let Mutation::Touch(at) = &m {
            limits::check_expiry(Op::Touch, *at)?;
        }
        let _guard = self.locks.lock(key).await;
        let known = self.mirror.get(key).and_then(|p| p.authority());
        match &m {
            Mutation::Create(record) => Box::pin(self.create(key, &m, record, known)).await,
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
        match self.authority(key, known).await {
            Some(Side::Secondary) => Ok(sr),
            Some(Side::Primary) => Ok(pr),
            None => {
                // Nothing journaled explains it (a write of another process
                // in flight, or one that failed half-way): the primary is the
                // reference; make sure the secondary converges to it.
                // Best effort: the operation itself succeeded on both sides.
                if matches!(m, Mutation::Touch(_)) {
                    let _ = self.journal_after(Side::Primary, key, Claim::Weak).await;
                }
                Ok(pr)
            }
        }
    }

    /// `create` keeps its insert-if-absent meaning: the side holding the
    /// newest write decides; with no journal, the primary decides.
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
        match self.apply(Side::Primary, key, m).await {
            Ok(true) => {}
            Ok(false) => {
                // Absent on a stale primary is not absent: ask the journal.
                if self.cfg.journal_check == JournalCheck::PerRead
                    && self.authority(key, None).await == Some(Side::Secondary)
                {
                    return self.create_on(Side::Secondary, key, m, record).await;
                }
                return Ok(false);
            }
            Err(pe) if pe.is_transient() => {
                return Box::pin(self.degraded(Side::Secondary, key, m, pe)).await;
            }
            Err(pe) => return Err(pe),
        }
        match self.apply(Side::Secondary, key, m).await {
            Ok(true) => Ok(true),
            Ok(false) => {
                // The secondary holds a live record the primary did not.
                if self.authority(key, None).await == Some(Side::Secondary) {
                    // The primary was stale: the key exists. Repair will
                    // replace the record just created on the primary.
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
        if pair.authority() == Some(down) && !m.blind() {
            // `up` is stale for this key; its answer would be wrong.
            return Err(self.newest_unreachable(op, down, first));
        }
        let committed = match self.committed_on(up, key, &pair).await {
            Ok(c) => c,
            Err(e) => return Err(self.fail_on(op, (down, first), (up, e))),
        };
        let pending = Entry {
            committed,
            pending: Some(self.stamps.next_after(self.now(), &pair)),
        };
        let stamp = pending.pending.unwrap_or_default();
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
        // A touch or create leaves its entry pending (weak): see `Claim`.
        if m.changed(out) && m.claim() == Claim::Committed {
            let committed = Entry::committed(stamp);
            self.mirror.learn(key, up, committed);
            if let Err(e) = self.write_entry(up, key, committed, false).await {
                return Err(self.fail_on(op, (down, first), (up, e)));
            }
        }
        bump(&self.health.degraded_writes);
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
