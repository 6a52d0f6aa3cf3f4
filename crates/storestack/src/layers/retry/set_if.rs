//! `set_if`, made safe to retry: see "`set_if` is safe to retry" in the
//! module docs.

use std::time::SystemTime;

use super::create::same_write;
use super::Retry;
use crate::error::{Op, Result};
use crate::store::{Condition, Record, Store};

impl<S: Store> Retry<S> {
    /// `set_if` with retries. Once an attempt has failed with an unknown
    /// outcome, a later `false` is checked by reading the key back.
    pub(super) async fn set_if_safely(
        &self,
        key: &str,
        record: Record,
        condition: Condition,
    ) -> Result<bool> {
        let (record, condition) = (&record, &condition);
        self.run_reconciled(
            Op::SetIf,
            || self.inner.set_if(key, record.clone(), condition.clone()),
            || self.reconcile_set_if(key, record),
        )
        .await
    }

    /// After `set_if` answered `false` following an attempt whose outcome
    /// is unknown: is the stored record the one that attempt wrote?
    async fn reconcile_set_if(&self, key: &str, record: &Record) -> Result<bool> {
        let found = self
            .inner
            .get(key)
            .await
            .map_err(|e| e.with_op(Op::SetIf))?;
        // An already expired record removes the key: absent is this call's
        // record then.
        Ok(match found {
            Some(found) => same_write(&found, record),
            None => record.is_expired_at(SystemTime::now()),
        })
    }
}
