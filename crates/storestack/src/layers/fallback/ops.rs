//! What the read and write paths share: the writes as values
//! ([`Mutation`]), health bookkeeping, key checks, errors, and journal
//! entry I/O.

use std::time::SystemTime;

use super::journal::{Entry, Pair, Side};
use super::status::bump;
use super::Shared;
use crate::error::{ErrorKind, Op, Result, StoreError};
use crate::limits;
use crate::store::{Condition, Record, Store};

/// A write, applied to one side at a time.
#[derive(Debug, Clone)]
pub(crate) enum Mutation {
    Set(Record),
    Create(Record),
    Delete,
    Touch(Option<SystemTime>),
    SetIf(Record, Condition),
}

impl Mutation {
    pub(crate) fn op(&self) -> Op {
        match self {
            Mutation::Set(_) => Op::Set,
            Mutation::Create(_) => Op::Create,
            Mutation::Delete => Op::Delete,
            Mutation::Touch(_) => Op::Touch,
            Mutation::SetIf(..) => Op::SetIf,
        }
    }

    /// Whether the outcome does not depend on what the side holds, so that
    /// it may be applied to a side known to be stale.
    pub(crate) fn blind(&self) -> bool {
        matches!(self, Mutation::Set(_) | Mutation::Delete)
    }

    /// How strongly a successful application journals its side.
    pub(crate) fn claim(&self) -> Claim {
        if self.blind() {
            Claim::Committed
        } else {
            Claim::Weak
        }
    }

    /// Whether the outcome `out` changed the side.
    pub(crate) fn changed(&self, out: bool) -> bool {
        match self {
            Mutation::Set(_) | Mutation::Delete => true,
            Mutation::Create(_) | Mutation::Touch(_) | Mutation::SetIf(..) => out,
        }
    }

    pub(crate) async fn apply(&self, store: &dyn Store, key: &str) -> Result<bool> {
        match self {
            Mutation::Set(r) => store.set(key, r.clone()).await.map(|()| true),
            Mutation::Create(r) => store.create(key, r.clone()).await,
            Mutation::Delete => store.delete(key).await,
            Mutation::Touch(at) => store.touch(key, *at).await,
            Mutation::SetIf(r, c) => store.set_if(key, r.clone(), c.clone()).await,
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
    /// `create`): a weak entry, which loses against any committed entry of
    /// the other side (so that a touch or create decided by a stale side in
    /// a double fault cannot make the stale copy win).
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

    /// Counts an operation the secondary served alone because the primary
    /// failed with `reason` (`storestack_fallbacks_total`).
    pub(crate) fn served_by_secondary(&self, op: Op, reason: ErrorKind) {
        #[cfg(feature = "metrics")]
        {
            use crate::observe::{self, label};
            metrics::counter!(observe::FALLBACKS_TOTAL,
                label::STORE => self.name.clone(), label::OP => op.as_str(),
                label::REASON => reason.as_str())
            .increment(1);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (op, reason);
    }

    /// `side` answered as if it had lost data: check both sides'
    /// identities now rather than at the next poll.
    pub(crate) fn suspect(&self, side: Side) {
        let _ = side;
        self.wake.notify_one();
    }

    /// The side that decides for every key while the other resyncs, or
    /// while the other is suspected (back from an outage, not yet checked)
    /// and this side is not known to be down.
    pub(crate) fn resync_authority(&self) -> Option<Side> {
        for lost in [Side::Primary, Side::Secondary] {
            if self.resyncs.resyncing(lost) {
                return Some(lost.other());
            }
        }
        for lost in [Side::Primary, Side::Secondary] {
            if self.resyncs.active(lost) && !self.health.is_down(lost.other()) {
                return Some(lost.other());
            }
        }
        None
    }

    /// Records a success on `side` (the hot-path half of
    /// [`observe`](Self::observe)).
    #[inline]
    pub(crate) fn observe_ok(&self, side: Side) {
        if self.health.ok(side, || self.store(side).name()) {
            // Back from an outage: it may have come back empty or from an
            // old backup; distrust it until the background task checked it.
            self.resyncs.suspect(side);
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
    pub(crate) fn newest_unreachable(&self, op: Op, side: Side, cause: StoreError) -> StoreError {
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

    pub(crate) async fn on_side<T>(
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

    pub(crate) async fn apply(&self, side: Side, key: &str, m: &Mutation) -> Result<bool> {
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
    /// Callers hold the key's lock: the mirror is set to exactly what the
    /// stores hold.
    pub(crate) async fn stored_pair(&self, key: &str) -> Result<Pair> {
        let pair = Pair {
            primary: self.read_entry(Side::Primary, key).await?,
            secondary: self.read_entry(Side::Secondary, key).await?,
        };
        for side in [Side::Primary, Side::Secondary] {
            self.known_exactly(key, side, pair.get(side));
        }
        Ok(pair)
    }

    /// Records what `side`'s store holds for `key`, read under the key's
    /// lock: in-process writers cannot interleave, so the store is the
    /// truth for this side.
    pub(crate) fn known_exactly(&self, key: &str, side: Side, entry: Option<Entry>) {
        if let Some(e) = entry {
            self.stamps.witness(e);
        }
        self.mirror.set_side(key, side, entry);
    }

    /// Stores an entry on `side`, then the side's dirty marker (entry first:
    /// see the repair module on why the marker may never lag).
    pub(crate) async fn write_entry(
        &self,
        side: Side,
        key: &str,
        entry: Entry,
        marker: bool,
    ) -> Result<()> {
        let store = self.store(side);
        self.on_side(
            side,
            store.set(&self.names.journal_key(key), entry.record()),
        )
        .await?;
        if marker {
            // `create`: a marker in place keeps its token (see the lease
            // module).
            let mark = super::lease::marker_record();
            self.on_side(side, store.create(&self.names.marker, mark))
                .await?;
        }
        Ok(())
    }

    /// `up` holds a write the other side missed: journal it on `up` with a
    /// fresh stamp, and if `up` is the secondary, wait out the read lease
    /// before the write is acknowledged (see the lease module). Returns the
    /// first error, if any.
    pub(crate) async fn journal_after(&self, up: Side, key: &str, claim: Claim) -> Result<()> {
        bump(&self.health.degraded_writes);
        self.journal_fresh(up, key, claim).await?;
        self.guard_if_secondary(up, key).await
    }

    /// Waits out the read lease before acknowledging a write that `up`
    /// alone took, if `up` is the secondary and reads use leases.
    pub(crate) async fn guard_if_secondary(&self, up: Side, key: &str) -> Result<()> {
        if up == Side::Secondary && self.cfg.journal_check == super::JournalCheck::Lease {
            self.await_guard(key).await
        } else {
            Ok(())
        }
    }

    /// Journals `up` as holding the newest write of `key`, with a stamp
    /// above every stamp known for it.
    pub(crate) async fn journal_fresh(&self, up: Side, key: &str, claim: Claim) -> Result<()> {
        let before = self.mirror.get(key).unwrap_or_default();
        let stamp = self.stamps.next_after(self.now(), &before);
        let entry = match claim {
            Claim::Committed => Entry::committed(stamp),
            Claim::Weak => Entry::weak(self.entry_on(up, key, &before).await?, stamp),
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

    /// `up`'s entry for `key`, whose stronger claims a new entry must keep:
    /// from the mirror, else from the store (another process's entry).
    pub(crate) async fn entry_on(
        &self,
        up: Side,
        key: &str,
        known: &Pair,
    ) -> Result<Option<Entry>> {
        if let Some(e) = known.get(up) {
            return Ok(Some(e));
        }
        let stored = self.read_entry(up, key).await?;
        if let Some(e) = stored {
            self.stamps.witness(e);
        }
        Ok(stored)
    }

    /// The side holding the newest write of `key`, from the stores'
    /// entries (read under the key's lock, so the mirror is set to them); a
    /// side whose journal cannot be read is represented by what this process
    /// knows of it.
    pub(crate) async fn authority(&self, key: &str) -> Option<Side> {
        let mut pair = self.mirror.get(key).unwrap_or_default();
        for side in [Side::Primary, Side::Secondary] {
            if let Ok(entry) = self.read_entry(side, key).await {
                self.known_exactly(key, side, entry);
                *pair.slot_mut(side) = entry;
            }
        }
        pair.authority()
    }
}
