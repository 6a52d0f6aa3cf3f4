//! `get_versioned` of [`Fallback`](super::Fallback): the read path's rules
//! (see the read module), always with the per-read journal check whatever
//! [`JournalCheck`](super::JournalCheck) says, since the version returned
//! is what a conditional write will be compared with.
//!
//! The primary's versioned record and the secondary's journal entry for
//! the key are read at once. No entry on the secondary: the primary is
//! current (on a transient error the secondary serves, unless this process
//! knows it is stale for the key). An entry: the primary's entry is read
//! too, and the side holding the newest write serves, alone. Both sides
//! hold the same bytes for the same record (repairs copy bytes), so a
//! version read on either side is the version of the newest write.

use super::journal::{Entry, Pair, Side};
use super::status::bump;
use super::Shared;
use crate::error::{Op, Result};
use crate::store::{Store, Versioned};

impl<P: Store, S: Store> Shared<P, S> {
    pub(crate) async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.check_reserved(Op::GetVersioned, key)?;
        let known = self.mirror.get(key).unwrap_or_default();
        if self.resyncs.active(Side::Primary) && known.authority() != Some(Side::Primary) {
            // The primary may have lost data or hold old data: the
            // secondary decides (see the resync module).
            return match self.versioned_on(Side::Secondary, key).await {
                Err(e) if e.is_transient() => {
                    Err(self.newest_unreachable(Op::GetVersioned, Side::Secondary, e))
                }
                r => r,
            };
        }
        let jkey = self.names.journal_key(key);
        let (p, j) = tokio::join!(self.primary.get_versioned(key), self.secondary.get(&jkey));
        self.observe(Side::Primary, &p);
        self.observe(Side::Secondary, &j);
        let secondary = match j {
            Ok(None) => None,
            Ok(Some(raw)) => Some(Entry::decode(&raw.value)),
            // Unreadable: what this process knows stands in for it.
            Err(_) => known.secondary,
        };
        let primary = match secondary {
            Some(_) => self
                .read_entry(Side::Primary, key)
                .await
                .unwrap_or(known.primary),
            None => known.primary,
        };
        match (Pair { primary, secondary }).authority() {
            Some(Side::Secondary) => match self.versioned_on(Side::Secondary, key).await {
                Err(e) if e.is_transient() => {
                    Err(self.newest_unreachable(Op::GetVersioned, Side::Secondary, e))
                }
                r => r,
            },
            Some(Side::Primary) => match p {
                Err(e) if e.is_transient() => {
                    Err(self.newest_unreachable(Op::GetVersioned, Side::Primary, e))
                }
                r => r,
            },
            None => match p {
                Err(pe) if pe.is_transient() => {
                    bump(&self.health.failover_reads);
                    match self.versioned_on(Side::Secondary, key).await {
                        Err(se) if se.is_transient() => Err(self.both_failed(
                            Op::GetVersioned,
                            (Side::Primary, pe),
                            (Side::Secondary, se),
                        )),
                        r => {
                            self.served_by_secondary(Op::GetVersioned, pe.kind());
                            r
                        }
                    }
                }
                // The primary has no record: it may have lost it (see the
                // read module's read-through).
                Ok(None) => {
                    self.read_through_with(key, self.versioned_on(Side::Secondary, key))
                        .await
                }
                r => r,
            },
        }
    }

    async fn versioned_on(&self, side: Side, key: &str) -> Result<Option<Versioned>> {
        self.on_side(side, self.store(side).get_versioned(key))
            .await
    }
}
