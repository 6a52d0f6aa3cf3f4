//! A scripted store for decorator unit tests: a MemoryStore that counts
//! calls, can be told to fail, and can hold `get`s at a gate after they
//! have read.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::Semaphore;

use crate::error::{ErrorKind, Op, Result, StoreError};
use crate::store::{Record, ScanCursor, ScanPage, Store};
use crate::MemoryStore;

#[derive(Default)]
struct Script {
    /// Operations that fail, and with which kind.
    fail: Vec<(Op, ErrorKind)>,
    /// When set, writes fail *after* reaching the memory store (outcome
    /// unknown to the caller).
    fail_after_write: bool,
    /// Simulated latency of `get` (tokio time).
    get_delay: Option<Duration>,
    /// Yield to the scheduler this many times around the read of `get`.
    get_yields: usize,
}

/// The scripted store. Clones share state.
#[derive(Clone)]
pub(crate) struct Scripted {
    pub(crate) mem: MemoryStore,
    script: Arc<Mutex<Script>>,
    calls: Arc<[AtomicUsize; 8]>,
    /// When present, `get` takes a permit after reading and before
    /// returning, so a test can hold a read in flight.
    gate: Arc<Mutex<Option<Arc<Semaphore>>>>,
}

impl std::fmt::Debug for Scripted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scripted")
    }
}

fn idx(op: Op) -> usize {
    Op::ALL.iter().position(|o| *o == op).unwrap_or(7)
}

#[cfg_attr(not(feature = "cache"), allow(dead_code))]
impl Scripted {
    pub(crate) fn new(mem: MemoryStore) -> Self {
        Scripted {
            mem,
            script: Default::default(),
            calls: Arc::new(Default::default()),
            gate: Default::default(),
        }
    }

    pub(crate) fn calls(&self, op: Op) -> usize {
        self.calls[idx(op)].load(Ordering::SeqCst)
    }

    pub(crate) fn fail(&self, op: Op, kind: ErrorKind) {
        self.script.lock().fail.push((op, kind));
    }

    pub(crate) fn heal(&self) {
        let mut s = self.script.lock();
        s.fail.clear();
        s.fail_after_write = false;
    }

    pub(crate) fn fail_after_write(&self) {
        self.script.lock().fail_after_write = true;
    }

    pub(crate) fn get_yields(&self, n: usize) {
        self.script.lock().get_yields = n;
    }

    pub(crate) fn get_delay(&self, d: Duration) {
        self.script.lock().get_delay = Some(d);
    }

    /// From now on, `get`s wait at a gate after reading; returns it (add
    /// permits to release them).
    pub(crate) fn close_gate(&self) -> Arc<Semaphore> {
        let gate = Arc::new(Semaphore::new(0));
        *self.gate.lock() = Some(gate.clone());
        gate
    }

    pub(crate) fn open_gate(&self) {
        if let Some(g) = self.gate.lock().take() {
            g.add_permits(1 << 20);
        }
    }

    fn enter(&self, op: Op) -> Result<()> {
        self.calls[idx(op)].fetch_add(1, Ordering::SeqCst);
        self.check(op)
    }

    fn check(&self, op: Op) -> Result<()> {
        let s = self.script.lock();
        match s.fail.iter().find(|(o, _)| *o == op) {
            Some((_, kind)) => Err(StoreError::new(*kind, op).with_store("scripted")),
            None => Ok(()),
        }
    }

    fn after_write(&self, op: Op) -> Result<()> {
        let s = self.script.lock();
        if s.fail_after_write {
            return Err(StoreError::timeout(op).with_store("scripted"));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    async fn get(&self, key: &str) -> Result<Option<Record>> {
        self.calls[idx(Op::Get)].fetch_add(1, Ordering::SeqCst);
        let (delay, yields) = {
            let s = self.script.lock();
            (s.get_delay, s.get_yields)
        };
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        self.check(Op::Get)?;
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
        let out = self.mem.get(key).await;
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
        let gate = self.gate.lock().clone();
        if let Some(gate) = gate {
            gate.acquire().await.expect("gate").forget();
        }
        out
    }

    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.enter(Op::Set)?;
        self.mem.set(key, record).await?;
        self.after_write(Op::Set)
    }

    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.enter(Op::Create)?;
        let wrote = self.mem.create(key, record).await?;
        self.after_write(Op::Create).map(|_| wrote)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.enter(Op::Delete)?;
        let found = self.mem.delete(key).await?;
        self.after_write(Op::Delete).map(|_| found)
    }

    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        self.enter(Op::Touch)?;
        let found = self.mem.touch(key, expires_at).await?;
        self.after_write(Op::Touch).map(|_| found)
    }

    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        self.enter(Op::Scan)?;
        self.mem.scan(prefix, cursor, limit).await
    }

    async fn len(&self) -> Result<u64> {
        self.enter(Op::Len)?;
        self.mem.len().await
    }

    async fn clear(&self) -> Result<()> {
        self.enter(Op::Clear)?;
        self.mem.clear().await
    }
}
