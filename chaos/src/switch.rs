//! [`Switch`]: the smallest fault a scenario can throw at a store — all of
//! it up, failing, or hanging, switched at runtime through a
//! [`SwitchHandle`].
//!
//! It lets the embedded suite run end to end on [`MemoryStore`] alone. The
//! fault-injection decorator (seeded error rates, latency, flapping) is the
//! richer tool; this one is deterministic on purpose: every operation
//! during an outage fails, none outside it does.
//!
//! [`MemoryStore`]: storestack::MemoryStore
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use storestack::{ErrorKind, MemoryStore, Record, Store};
//! use storestack_chaos::switch::{Switch, SwitchState};
//!
//! let store = Switch::new(MemoryStore::new());
//! let handle = store.handle();
//! store.set("k", Record::never_expiring("v")).await?;
//! handle.set(SwitchState::Failing(ErrorKind::Unavailable));
//! assert_eq!(store.get("k").await.unwrap_err().kind(), ErrorKind::Unavailable);
//! handle.set(SwitchState::Up);
//! assert!(store.get("k").await?.is_some());
//! # Ok::<_, storestack::StoreError>(())
//! # }).unwrap();
//! ```

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use parking_lot::Mutex;
use storestack::{ErrorKind, Op, Record, Result, ScanCursor, ScanPage, Store, StoreError};

/// What a [`Switch`] does with each operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchState {
    /// Pass operations through.
    Up,
    /// Fail every operation with this kind, without calling the inner store.
    Failing(ErrorKind),
    /// Never answer (until switched back: operations waiting then proceed).
    Hanging,
}

/// A store that can be switched off; see the [module docs](self).
#[derive(Debug)]
pub struct Switch<S> {
    inner: S,
    handle: SwitchHandle,
    name: String,
}

/// Switches a [`Switch`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct SwitchHandle {
    state: Arc<Mutex<SwitchState>>,
    changed: Arc<tokio::sync::Notify>,
}

impl SwitchHandle {
    /// Sets the state; takes effect for the next operation, and wakes the
    /// hanging ones.
    pub fn set(&self, state: SwitchState) {
        *self.state.lock() = state;
        self.changed.notify_waiters();
    }

    /// The current state.
    pub fn get(&self) -> SwitchState {
        *self.state.lock()
    }
}

impl<S: Store> Switch<S> {
    /// `inner`, switched on.
    pub fn new(inner: S) -> Self {
        let name = format!("switch({})", inner.name());
        Switch {
            inner,
            handle: SwitchHandle {
                state: Arc::new(Mutex::new(SwitchState::Up)),
                changed: Arc::new(tokio::sync::Notify::new()),
            },
            name,
        }
    }

    /// The handle that switches it.
    pub fn handle(&self) -> SwitchHandle {
        self.handle.clone()
    }

    /// The inner store.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Waits until the switch lets `op` through, or fails it.
    async fn gate(&self, op: Op) -> Result<()> {
        loop {
            let notified = self.handle.changed.notified();
            match self.handle.get() {
                SwitchState::Up => return Ok(()),
                SwitchState::Failing(kind) => {
                    return Err(StoreError::new(kind, op)
                        .with_store(self.name.clone())
                        .with_message("switched off by the chaos suite"))
                }
                SwitchState::Hanging => notified.await,
            }
        }
    }
}

#[async_trait]
impl<S: Store> Store for Switch<S> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &str) -> Result<Option<Record>> {
        self.gate(Op::Get).await?;
        self.inner.get(key).await
    }

    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.gate(Op::Set).await?;
        self.inner.set(key, record).await
    }

    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.gate(Op::Create).await?;
        self.inner.create(key, record).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.gate(Op::Delete).await?;
        self.inner.delete(key).await
    }

    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        self.gate(Op::Touch).await?;
        self.inner.touch(key, expires_at).await
    }

    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        self.gate(Op::Scan).await?;
        self.inner.scan(prefix, cursor, limit).await
    }

    async fn len(&self) -> Result<u64> {
        self.gate(Op::Len).await?;
        self.inner.len().await
    }

    async fn clear(&self) -> Result<()> {
        self.gate(Op::Clear).await?;
        self.inner.clear().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use storestack::MemoryStore;

    #[tokio::test(start_paused = true)]
    async fn hanging_waits_until_switched_back() {
        let store = Arc::new(Switch::new(MemoryStore::new()));
        let handle = store.handle();
        handle.set(SwitchState::Hanging);
        let s = store.clone();
        let pending = tokio::spawn(async move { s.get("k").await });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!pending.is_finished());
        handle.set(SwitchState::Up);
        assert_eq!(pending.await.unwrap().unwrap(), None);
    }

    #[tokio::test]
    async fn failing_does_not_reach_the_inner_store() {
        let store = Switch::new(MemoryStore::new());
        store.handle().set(SwitchState::Failing(ErrorKind::Timeout));
        let err = store
            .set("k", Record::never_expiring("v"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert_eq!(err.store(), "switch(memory)");
        assert_eq!(store.get_ref().len().await.unwrap(), 0);
    }
}
