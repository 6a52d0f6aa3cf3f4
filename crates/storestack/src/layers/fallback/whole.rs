//! Operations over the whole store: `scan`, `len`, `clear`.
//!
//! `scan` and `len` read one side: the primary, or the secondary when the
//! primary fails with a transient error. The reserved keys (journal
//! entries, leases, markers) are never shown or counted. `clear` clears
//! both sides and needs both.

use super::journal::Side;
use super::Shared;
use crate::error::{Op, Result, StoreError};
use crate::store::{ScanCursor, ScanPage, Store};

/// Keys per page when counting reserved keys.
const COUNT_PAGE: usize = 1000;

impl<P: Store, S: Store> Shared<P, S> {
    pub(crate) async fn scan(
        &self,
        prefix: &str,
        cursor: ScanCursor,
        limit: usize,
    ) -> Result<ScanPage> {
        let Some(token) = cursor.token() else {
            // A side being resynced is incomplete: start on the other.
            let first = self.whole_first();
            return match self.scan_side(first, prefix, cursor.clone(), limit).await {
                Err(pe) if pe.is_transient() => {
                    match self.scan_side(first.other(), prefix, cursor, limit).await {
                        Err(se) if se.is_transient() => {
                            Err(self.both_failed(Op::Scan, (first, pe), (first.other(), se)))
                        }
                        r => r,
                    }
                }
                r => r,
            };
        };
        // A scan continues on the side it started on: cursors are the
        // side's own.
        let (side, inner) = if let Some(rest) = token.strip_prefix('p') {
            (Side::Primary, rest)
        } else if let Some(rest) = token.strip_prefix('s') {
            (Side::Secondary, rest)
        } else {
            return Err(StoreError::invalid_input(Op::Scan)
                .with_store(self.name.clone())
                .with_message("malformed scan cursor"));
        };
        self.scan_side(side, prefix, ScanCursor::from_token(inner), limit)
            .await
    }

    async fn scan_side(
        &self,
        side: Side,
        prefix: &str,
        cursor: ScanCursor,
        limit: usize,
    ) -> Result<ScanPage> {
        let page = self.store(side).scan(prefix, cursor, limit).await;
        self.observe(side, &page);
        let mut page = page?;
        page.keys.retain(|k| !self.names.is_reserved(k));
        let tag = match side {
            Side::Primary => 'p',
            Side::Secondary => 's',
        };
        page.next = page.next.map(|c| {
            let mut token = String::with_capacity(1 + c.token().map_or(0, str::len));
            token.push(tag);
            token.push_str(c.token().unwrap_or_default());
            ScanCursor::from_token(token)
        });
        Ok(page)
    }

    /// The side `scan` and `len` read first: the primary, unless it is
    /// being resynced.
    fn whole_first(&self) -> Side {
        if self.resyncs.active(Side::Primary) {
            Side::Secondary
        } else {
            Side::Primary
        }
    }

    pub(crate) async fn len(&self) -> Result<u64> {
        let first = self.whole_first();
        match self.side_len(first).await {
            Err(pe) if pe.is_transient() => match self.side_len(first.other()).await {
                Err(se) if se.is_transient() => {
                    Err(self.both_failed(Op::Len, (first, pe), (first.other(), se)))
                }
                r => r,
            },
            r => r,
        }
    }

    /// The side's count minus its reserved keys.
    async fn side_len(&self, side: Side) -> Result<u64> {
        let store = self.store(side);
        let total = store.len().await;
        self.observe(side, &total);
        let total = total?;
        let mut reserved = 0u64;
        let mut cursor = ScanCursor::start();
        loop {
            let page = store.scan(&self.names.prefix, cursor, COUNT_PAGE).await;
            self.observe(side, &page);
            let page = page.map_err(|e| e.with_op(Op::Len))?;
            reserved += page.keys.len() as u64;
            match page.next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        Ok(total.saturating_sub(reserved))
    }

    pub(crate) async fn clear(&self) -> Result<()> {
        let p = self.primary.clear().await;
        self.observe(Side::Primary, &p);
        let s = self.secondary.clear().await;
        self.observe(Side::Secondary, &s);
        match (p, s) {
            (Ok(()), Ok(())) => {
                self.mirror.clear();
                Ok(())
            }
            (Err(pe), Err(se)) if pe.is_transient() && se.is_transient() => {
                Err(self.both_failed(Op::Clear, (Side::Primary, pe), (Side::Secondary, se)))
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    }
}
