//! The scripted store of the decorators' unit tests: a [`MemoryStore`] that
//! counts the calls reaching it and plays faults.
//!
//! Faults come two ways:
//! - a one-shot script, one [`Step`] per call whatever the operation
//!   ([`then`](Scripted::then)): "the next call fails, the one after hangs";
//! - standing steps per operation, played by every call of it while the
//!   script is empty ([`fail`](Scripted::fail),
//!   [`fail_after_write`](Scripted::fail_after_write),
//!   [`get_delay`](Scripted::get_delay)): "gets are unavailable until
//!   [`heal`](Scripted::heal)".
//!
//! Standing failures before the work are read when a call enters; those
//! after it ([`fail_after_write`](Scripted::fail_after_write)) when it
//! answers, so a test can lose the answer of a call it holds paused.
//!
//! Two ways to hold calls in flight:
//! - a gate ([`close_gate`](Scripted::close_gate)) holds every `get` after
//!   it has read, until the test adds permits;
//! - a pause ([`pause`](Scripted::pause)) holds one call of any operation
//!   after the data answered, tells the test when it is there, and lets it
//!   go on [`release`](Pause::release): a race driven step by step.
//!
//! The migration tests use it too (as "old" and "new", see
//! [`named`](Scripted::named)). The fleet model test
//! (`tests/migration_model/faulty.rs`) keeps its own wrapper: it is an
//! integration test of another package, which cannot reach this
//! `#[cfg(test)]` module, and it yields at seeded random points.

// Each decorator's tests use a part of the API; with features off, some of
// it goes unused.
#![cfg_attr(
    not(all(feature = "cache", feature = "circuit-breaker", feature = "retry")),
    allow(dead_code)
)]

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::{Notify, Semaphore};

use crate::clock::MockClock;
use crate::error::{ErrorKind, Op, Result, StoreError};
use crate::store::{Condition, Record, ScanCursor, ScanPage, Store, Versioned};
use crate::{MemoryConfig, MemoryStore};

/// What a call does.
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
    /// Waits this long (tokio time), then goes on.
    Sleep(Duration),
}

#[derive(Debug, Default)]
struct Script {
    /// One step per call, whatever the operation; played first.
    queue: VecDeque<Step>,
    /// Steps every call of an operation plays, in order, while `queue` is
    /// empty.
    standing: Vec<(Op, Step)>,
    /// Times a `get` yields to the scheduler before and after its read.
    get_yields: usize,
    /// When present, `get`s take a permit after reading, before returning.
    gate: Option<Arc<Semaphore>>,
    /// The one call to pause, not reached yet.
    pause: Option<Pending>,
}

/// A pause waiting for its call.
#[derive(Debug)]
struct Pending {
    op: Op,
    /// Calls of `op` to let through first.
    skip: usize,
    pause: Arc<Pause>,
}

/// One call held after the data answered; see [`Scripted::pause`].
#[derive(Debug, Default)]
pub(crate) struct Pause {
    reached: Notify,
    release: Notify,
}

impl Pause {
    /// Waits until the paused call is there.
    pub(crate) async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Lets the paused call answer (now, or as soon as it is there).
    pub(crate) fn release(&self) {
        self.release.notify_one();
    }
}

#[derive(Debug, Default)]
struct Counters {
    /// Calls that reached the store, per operation (in [`Op::ALL`] order).
    calls: [AtomicUsize; Op::ALL.len()],
    /// Calls that completed (with any result).
    completed: AtomicUsize,
    /// Calls dropped before completing.
    dropped: AtomicUsize,
}

/// See the [module docs](self). Clones share script, data and counters.
#[derive(Debug, Clone)]
pub(crate) struct Scripted {
    name: &'static str,
    data: MemoryStore,
    script: Arc<Mutex<Script>>,
    counters: Arc<Counters>,
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

fn idx(op: Op) -> usize {
    Op::ALL
        .iter()
        .position(|o| *o == op)
        .expect("Op::ALL lists every op")
}

const WRITES: [Op; 4] = [Op::Set, Op::Create, Op::Delete, Op::Touch];

impl Scripted {
    /// Over a fresh [`MemoryStore`] without a sweeper.
    pub(crate) fn new() -> Self {
        Self::with_data(MemoryStore::with_config(
            MemoryConfig::default().sweep_interval(None),
        ))
    }

    /// Over a fresh [`MemoryStore`] on `clock`, without a sweeper.
    pub(crate) fn on_clock(clock: &MockClock) -> Self {
        Self::with_data(MemoryStore::with_config(
            MemoryConfig::default()
                .clock(clock.clone())
                .sweep_interval(None),
        ))
    }

    /// Over `data` (say, a memory store with a small size limit).
    pub(crate) fn with_data(data: MemoryStore) -> Self {
        Scripted {
            name: "scripted",
            data,
            script: Arc::default(),
            counters: Arc::default(),
        }
    }

    /// Named `name` (its [`Store::name`] and the store of its errors)
    /// instead of "scripted".
    pub(crate) fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Appends steps to the one-shot script; calls beyond it play the
    /// standing steps (none: they just run).
    pub(crate) fn then(&self, steps: impl IntoIterator<Item = Step>) -> &Self {
        self.script.lock().queue.extend(steps);
        self
    }

    /// From now on, every call of `op` fails with `kind` without touching
    /// the data, until [`heal`](Self::heal).
    pub(crate) fn fail(&self, op: Op, kind: ErrorKind) {
        self.script.lock().standing.push((op, Step::Fail(kind)));
    }

    /// From now on, every call fails with `Unavailable` without touching
    /// the data, until [`heal`](Self::heal).
    pub(crate) fn down(&self) {
        for op in Op::ALL {
            self.fail(op, ErrorKind::Unavailable);
        }
    }

    /// From now on, every write reaches the data, then times out (outcome
    /// unknown to the caller), until [`heal`](Self::heal).
    pub(crate) fn fail_after_write(&self) {
        let mut s = self.script.lock();
        for op in WRITES {
            s.standing.push((op, Step::FailAfter(ErrorKind::Timeout)));
        }
    }

    /// Drops the standing failures; standing delays stay.
    pub(crate) fn heal(&self) {
        let mut s = self.script.lock();
        s.standing
            .retain(|(_, step)| matches!(step, Step::Sleep(_)));
    }

    /// From now on, every `get` first waits `d` (tokio time).
    pub(crate) fn get_delay(&self, d: Duration) {
        self.script.lock().standing.push((Op::Get, Step::Sleep(d)));
    }

    /// From now on, every `get` yields to the scheduler `n` times before and
    /// after its read.
    pub(crate) fn get_yields(&self, n: usize) {
        self.script.lock().get_yields = n;
    }

    /// From now on, `get`s wait at a gate after reading (or failing);
    /// returns it (add permits to release them).
    pub(crate) fn close_gate(&self) -> Arc<Semaphore> {
        let gate = Arc::new(Semaphore::new(0));
        self.script.lock().gate = Some(gate.clone());
        gate
    }

    /// Removes the gate and releases the `get`s waiting at it.
    pub(crate) fn open_gate(&self) {
        if let Some(g) = self.script.lock().gate.take() {
            g.add_permits(1 << 20);
        }
    }

    /// Pauses the call of `op` that comes after `skip` others reaching the
    /// data, once it has run and before it answers (and before a failure
    /// after the work is decided). Replaces a pause not reached yet.
    pub(crate) fn pause(&self, op: Op, skip: usize) -> Arc<Pause> {
        let pause = Arc::new(Pause::default());
        self.script.lock().pause = Some(Pending {
            op,
            skip,
            pause: pause.clone(),
        });
        pause
    }

    /// The data behind the script, to read or seed without counting.
    pub(crate) fn data(&self) -> &MemoryStore {
        &self.data
    }

    /// Calls of `op` that reached the store.
    pub(crate) fn calls(&self, op: Op) -> usize {
        self.counters.calls[idx(op)].load(Ordering::SeqCst)
    }

    /// Calls of any operation that reached the store.
    pub(crate) fn entered(&self) -> usize {
        Op::ALL.iter().map(|op| self.calls(*op)).sum()
    }

    /// Calls that completed, with any result.
    pub(crate) fn completed(&self) -> usize {
        self.counters.completed.load(Ordering::SeqCst)
    }

    /// Calls dropped before completing.
    pub(crate) fn dropped(&self) -> usize {
        self.counters.dropped.load(Ordering::SeqCst)
    }

    async fn play<T, F: Future<Output = Result<T>>>(
        &self,
        op: Op,
        run: impl FnOnce() -> F,
    ) -> Result<T> {
        self.counters.calls[idx(op)].fetch_add(1, Ordering::SeqCst);
        let mut tracker = Tracker {
            counters: &self.counters,
            done: false,
        };
        let (queued, before, yields) = {
            let mut s = self.script.lock();
            let queued = s.queue.pop_front();
            let before: Vec<Step> = match queued {
                Some(step) => vec![step],
                None => s
                    .standing
                    .iter()
                    .filter(|(o, step)| *o == op && !matches!(step, Step::FailAfter(_)))
                    .map(|(_, step)| *step)
                    .collect(),
            };
            (queued, before, if op == Op::Get { s.get_yields } else { 0 })
        };
        let out = match self.before_work(op, before).await {
            Ok(()) => self.work(op, queued, yields, run).await,
            Err(e) => Err(e),
        };
        if op == Op::Get {
            let gate = self.script.lock().gate.clone();
            if let Some(gate) = gate {
                gate.acquire().await.expect("gate open").forget();
            }
        }
        tracker.done = true;
        out
    }

    /// Plays the steps before the work, in order.
    async fn before_work(&self, op: Op, steps: Vec<Step>) -> Result<()> {
        for step in steps {
            match step {
                Step::Pass | Step::FailAfter(_) => {}
                Step::Fail(kind) => return Err(self.scripted(kind, op)),
                Step::Hang => std::future::pending().await,
                Step::Sleep(d) => tokio::time::sleep(d).await,
            }
        }
        Ok(())
    }

    /// Runs the operation, pauses if it is the paused call, then fails it
    /// after the work if the call's step says so (`queued`) or, for a call
    /// off the script, if a standing step says so now.
    async fn work<T, F: Future<Output = Result<T>>>(
        &self,
        op: Op,
        queued: Option<Step>,
        yields: usize,
        run: impl FnOnce() -> F,
    ) -> Result<T> {
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
        let out = run().await;
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
        if let Some(pause) = self.take_pause(op) {
            pause.reached.notify_one();
            pause.release.notified().await;
        }
        let after = match queued {
            Some(Step::FailAfter(kind)) => Some(kind),
            Some(_) => None,
            None => self
                .script
                .lock()
                .standing
                .iter()
                .find_map(|(o, step)| match step {
                    Step::FailAfter(kind) if *o == op => Some(*kind),
                    _ => None,
                }),
        };
        match after {
            Some(kind) => out.and(Err(self.scripted(kind, op))),
            None => out,
        }
    }

    /// The pause, if this call of `op` is the one it waits for.
    fn take_pause(&self, op: Op) -> Option<Arc<Pause>> {
        let mut s = self.script.lock();
        let pending = s.pause.as_mut().filter(|p| p.op == op)?;
        if pending.skip > 0 {
            pending.skip -= 1;
            return None;
        }
        s.pause.take().map(|p| p.pause)
    }

    fn scripted(&self, kind: ErrorKind, op: Op) -> StoreError {
        StoreError::new(kind, op)
            .with_store(self.name)
            .with_message("scripted failure")
    }
}

#[async_trait]
impl Store for Scripted {
    fn name(&self) -> &str {
        self.name
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
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.play(Op::GetVersioned, || self.data.get_versioned(key))
            .await
    }
    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        self.play(Op::SetIf, || self.data.set_if(key, record, condition))
            .await
    }
}
