//! Test doubles: a memory store that can be taken down, can fail after
//! applying a write (an unknown outcome), and can pause inside one call
//! so that a test drives a race step by step.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::clock::MockClock;
use crate::error::{Op, Result, StoreError};
use crate::store::{Record, ScanCursor, ScanPage, Store};
use crate::{MemoryConfig, MemoryStore};

/// Pauses one call of an operation, after the inner store ran it.
pub(crate) struct Gate {
    op: Op,
    skip: AtomicUsize,
    reached: Notify,
    release: Notify,
}

impl Gate {
    /// Waits until the gated call is paused.
    pub(crate) async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Lets the paused call return.
    pub(crate) fn release(&self) {
        self.release.notify_one();
    }
}

#[derive(Default)]
struct State {
    down: AtomicBool,
    fail_next: AtomicUsize,
    timeout_after_apply: AtomicBool,
    gate: Mutex<Option<Arc<Gate>>>,
    calls: Mutex<HashMap<Op, usize>>,
}

/// A MemoryStore with switchable faults. Clones share data and switches.
#[derive(Clone)]
pub(crate) struct TestStore {
    inner: MemoryStore,
    name: &'static str,
    state: Arc<State>,
}

impl TestStore {
    pub(crate) fn new(name: &'static str, clock: &MockClock) -> Self {
        Self::wrapping(
            name,
            MemoryStore::with_config(
                MemoryConfig::default()
                    .clock(clock.clone())
                    .sweep_interval(None),
            ),
        )
    }

    pub(crate) fn wrapping(name: &'static str, inner: MemoryStore) -> Self {
        TestStore {
            inner,
            name,
            state: Arc::default(),
        }
    }

    /// The data, without faults or gates.
    pub(crate) fn raw(&self) -> &MemoryStore {
        &self.inner
    }

    /// Every call fails with `Unavailable` before doing anything.
    pub(crate) fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// The next `n` calls fail with `Unavailable` before doing anything.
    pub(crate) fn fail_next(&self, n: usize) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// Every call does its work, then fails with `Timeout`.
    pub(crate) fn set_timeout_after_apply(&self, on: bool) {
        self.state.timeout_after_apply.store(on, Ordering::SeqCst);
    }

    /// Pauses the call of `op` that comes after `skip` others.
    pub(crate) fn gate(&self, op: Op, skip: usize) -> Arc<Gate> {
        let gate = Arc::new(Gate {
            op,
            skip: AtomicUsize::new(skip),
            reached: Notify::new(),
            release: Notify::new(),
        });
        *self.state.gate.lock() = Some(gate.clone());
        gate
    }

    /// Calls of `op` so far (failed ones included).
    pub(crate) fn calls(&self, op: Op) -> usize {
        self.state.calls.lock().get(&op).copied().unwrap_or(0)
    }

    fn before(&self, op: Op) -> Result<()> {
        *self.state.calls.lock().entry(op).or_default() += 1;
        let flaky = self
            .state
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if flaky || self.state.down.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable(op).with_store(self.name));
        }
        Ok(())
    }

    async fn after<T>(&self, op: Op, out: Result<T>) -> Result<T> {
        let gate = {
            let mut slot = self.state.gate.lock();
            match slot.as_ref() {
                Some(g) if g.op == op => {
                    if g.skip.load(Ordering::SeqCst) == 0 {
                        slot.take()
                    } else {
                        g.skip.fetch_sub(1, Ordering::SeqCst);
                        None
                    }
                }
                _ => None,
            }
        };
        if let Some(gate) = gate {
            gate.reached.notify_one();
            gate.release.notified().await;
        }
        if out.is_ok() && self.state.timeout_after_apply.load(Ordering::SeqCst) {
            return Err(StoreError::timeout(op).with_store(self.name));
        }
        out
    }
}

#[async_trait]
impl Store for TestStore {
    fn name(&self) -> &str {
        self.name
    }
    async fn get(&self, key: &str) -> Result<Option<Record>> {
        self.before(Op::Get)?;
        self.after(Op::Get, self.inner.get(key).await).await
    }
    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.before(Op::Set)?;
        self.after(Op::Set, self.inner.set(key, record).await).await
    }
    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.before(Op::Create)?;
        self.after(Op::Create, self.inner.create(key, record).await)
            .await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.before(Op::Delete)?;
        self.after(Op::Delete, self.inner.delete(key).await).await
    }
    async fn touch(&self, key: &str, at: Option<SystemTime>) -> Result<bool> {
        self.before(Op::Touch)?;
        self.after(Op::Touch, self.inner.touch(key, at).await).await
    }
    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        self.before(Op::Scan)?;
        self.after(Op::Scan, self.inner.scan(prefix, cursor, limit).await)
            .await
    }
    async fn len(&self) -> Result<u64> {
        self.before(Op::Len)?;
        self.after(Op::Len, self.inner.len().await).await
    }
    async fn clear(&self) -> Result<()> {
        self.before(Op::Clear)?;
        self.after(Op::Clear, self.inner.clear().await).await
    }
}
