//! A scripted store for the decorators' unit tests: a [`MemoryStore`] that
//! counts the calls reaching it and plays a script of faults, one step per
//! call, whatever the operation.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::Semaphore;

use crate::error::{ErrorKind, Op, Result, StoreError};
use crate::store::{Record, ScanCursor, ScanPage, Store};
use crate::{MemoryConfig, MemoryStore};

/// What the next call does.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step {
    /// Runs the operation normally.
    Pass,
    /// Fails with this kind without touching the data.
    Fail(ErrorKind),
    /// Runs the operation, then fails with this kind (a lost reply).
    FailAfter(ErrorKind),
    /// Never completes.
    Hang,
    /// Waits this long, then runs the operation.
    Sleep(Duration),
}

#[derive(Debug, Default)]
struct Counters {
    /// Calls that reached the store.
    entered: AtomicUsize,
    /// Calls that completed (with any result).
    completed: AtomicUsize,
    /// Calls dropped before completing.
    dropped: AtomicUsize,
}

/// See the [module docs](self). Clones share script, data and counters.
#[derive(Debug, Clone)]
pub(crate) struct Scripted {
    data: MemoryStore,
    script: Arc<Mutex<VecDeque<Step>>>,
    counters: Arc<Counters>,
    gate: Option<Arc<Semaphore>>,
}

/// Counts a call as dropped unless it was marked complete.
struct Tracker<'a> {
    counters: &'a Counters,
    done: bool,
}

impl Drop for Tracker<'_> {
    fn drop(&mut self) {
        let n = if self.done {
            &self.counters.completed
        } else {
            &self.counters.dropped
        };
        n.fetch_add(1, Ordering::SeqCst);
    }
}

impl Scripted {
    pub(crate) fn new() -> Self {
        Scripted {
            data: MemoryStore::with_config(MemoryConfig::default().sweep_interval(None)),
            script: Arc::default(),
            counters: Arc::default(),
            gate: None,
        }
    }

    /// Every call waits for a permit of the returned semaphore (after
    /// counting as entered) before running.
    pub(crate) fn gated() -> (Self, Arc<Semaphore>) {
        let gate = Arc::new(Semaphore::new(0));
        let mut s = Self::new();
        s.gate = Some(gate.clone());
        (s, gate)
    }

    /// Appends steps to the script; calls beyond the script just run.
    pub(crate) fn then(&self, steps: impl IntoIterator<Item = Step>) -> &Self {
        self.script.lock().extend(steps);
        self
    }

    pub(crate) fn data(&self) -> &MemoryStore {
        &self.data
    }

    pub(crate) fn entered(&self) -> usize {
        self.counters.entered.load(Ordering::SeqCst)
    }

    pub(crate) fn completed(&self) -> usize {
        self.counters.completed.load(Ordering::SeqCst)
    }

    pub(crate) fn dropped(&self) -> usize {
        self.counters.dropped.load(Ordering::SeqCst)
    }

    async fn play<T, F: Future<Output = Result<T>>>(
        &self,
        op: Op,
        run: impl FnOnce() -> F,
    ) -> Result<T> {
        self.counters.entered.fetch_add(1, Ordering::SeqCst);
        let mut tracker = Tracker {
            counters: &self.counters,
            done: false,
        };
        if let Some(gate) = &self.gate {
            gate.acquire().await.expect("gate open").forget();
        }
        let step = self.script.lock().pop_front();
        let out = match step {
            None | Some(Step::Pass) => run().await,
            Some(Step::Fail(kind)) => Err(scripted(kind, op)),
            Some(Step::FailAfter(kind)) => run().await.and(Err(scripted(kind, op))),
            Some(Step::Hang) => std::future::pending().await,
            Some(Step::Sleep(d)) => {
                tokio::time::sleep(d).await;
                run().await
            }
        };
        tracker.done = true;
        out
    }
}

fn scripted(kind: ErrorKind, op: Op) -> StoreError {
    StoreError::new(kind, op)
        .with_store("scripted")
        .with_message("scripted failure")
}

#[async_trait]
impl Store for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }
    async fn get(&self, key: &str) -> Result<Option<Record>> {
        self.play(Op::Get, || self.data.get(key)).await
    }
    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.play(Op::Set, || self.data.set(key, record)).await
    }
    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.play(Op::Create, || self.data.create(key, record))
            .await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.play(Op::Delete, || self.data.delete(key)).await
    }
    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        self.play(Op::Touch, || self.data.touch(key, expires_at))
            .await
    }
    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        self.play(Op::Scan, || self.data.scan(prefix, cursor, limit))
            .await
    }
    async fn len(&self) -> Result<u64> {
        self.play(Op::Len, || self.data.len()).await
    }
    async fn clear(&self) -> Result<()> {
        self.play(Op::Clear, || self.data.clear()).await
    }
}
