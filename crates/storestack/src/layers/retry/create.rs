//! `create`, made safe to retry: see "`create` is safe to retry" in the
//! module docs.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{retryable, Retry};
use crate::error::{Op, Result};
use crate::store::{Record, Store};

/// Whether `found` is the record a `create` of `mine` wrote. Expiries are
/// compared to the millisecond: backends store milliseconds.
pub(super) fn same_write(found: &Record, mine: &Record) -> bool {
    let expiry = match (found.expires_at, mine.expires_at) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            let d = a.duration_since(b).or_else(|_| b.duration_since(a));
            d.is_ok_and(|d| d < Duration::from_millis(1))
        }
        _ => false,
    };
    expiry && found.value == mine.value
}

impl<S: Store> Retry<S> {
    /// `create` with retries. Once an attempt has failed with an unknown
    /// outcome, a later `false` is checked by reading the key back.
    pub(super) async fn create_safely(&self, key: &str, record: Record) -> Result<bool> {
        let record = &record;
        self.run_reconciled(
            Op::Create,
            || self.inner.create(key, record.clone()),
            || self.reconcile_create(key, record),
        )
        .await
    }

    /// Runs `attempt` with retries; once an attempt has failed with a
    /// retryable error (its outcome unknown), a later `false` is replaced
    /// by what `reconcile` says.
    pub(super) async fn run_reconciled<A, AF, R, RF>(
        &self,
        op: Op,
        attempt: A,
        reconcile: R,
    ) -> Result<bool>
    where
        A: Fn() -> AF + Send + Sync,
        AF: Future<Output = Result<bool>> + Send,
        R: Fn() -> RF + Send + Sync,
        RF: Future<Output = Result<bool>> + Send,
    {
        let unknown = &AtomicBool::new(false);
        let (attempt, reconcile) = (&attempt, &reconcile);
        self.run(op, move || async move {
            let after_unknown = unknown.load(Ordering::Relaxed);
            match attempt().await {
                Ok(false) if after_unknown => reconcile().await,
                Err(e) => {
                    if retryable(&e) {
                        unknown.store(true, Ordering::Relaxed);
                    }
                    Err(e)
                }
                done => done,
            }
        })
        .await
    }

    /// After `create` answered `false` following an attempt whose outcome
    /// is unknown: was that attempt ours? See the module docs.
    async fn reconcile_create(&self, key: &str, record: &Record) -> Result<bool> {
        let found = self
            .inner
            .get(key)
            .await
            .map_err(|e| e.with_op(Op::Create))?;
        match found {
            Some(found) => Ok(same_write(&found, record)),
            None => self.inner.create(key, record.clone()).await,
        }
    }
}
