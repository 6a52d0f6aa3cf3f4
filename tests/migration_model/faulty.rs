//! A switchable fault wrapper (until the shared FaultInjection decorator
//! lands): up, down (fail before doing anything), or losing answers (do
//! the work, then report a timeout: an unknown outcome). It also yields to
//! the scheduler at random, seeded points, so that concurrent tasks on a
//! single-threaded runtime interleave inside migration operations.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use storestack::clock::MockClock;
use storestack::{
    async_trait, Condition, MemoryConfig, MemoryStore, Op, Record, Result, ScanCursor, ScanPage,
    Store, StoreError, Versioned,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Up = 0,
    Down = 1,
    LoseAnswers = 2,
}

#[derive(Clone)]
pub(crate) struct Faulty {
    inner: MemoryStore,
    name: &'static str,
    mode: Arc<AtomicU8>,
    rng: Arc<Mutex<StdRng>>,
}

impl Faulty {
    pub(crate) fn new(name: &'static str, clock: &MockClock, seed: u64) -> Self {
        let config = MemoryConfig::default()
            .clock(clock.clone())
            .sweep_interval(None);
        Faulty {
            inner: MemoryStore::with_config(config),
            name,
            mode: Arc::new(AtomicU8::new(Mode::Up as u8)),
            rng: Arc::new(Mutex::new(StdRng::seed_from_u64(seed))),
        }
    }

    pub(crate) fn raw(&self) -> &MemoryStore {
        &self.inner
    }

    pub(crate) fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub(crate) fn mode_now(&self) -> Mode {
        match self.mode() {
            0 => Mode::Up,
            1 => Mode::Down,
            _ => Mode::LoseAnswers,
        }
    }

    fn mode(&self) -> u8 {
        self.mode.load(Ordering::SeqCst)
    }

    async fn jitter(&self) {
        let yield_now = self.rng.lock().gen_bool(0.3);
        if yield_now {
            tokio::task::yield_now().await;
        }
    }

    async fn run<T>(&self, op: Op, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        self.jitter().await;
        if self.mode() == Mode::Down as u8 {
            return Err(StoreError::unavailable(op).with_store(self.name));
        }
        let out = f.await;
        self.jitter().await;
        if out.is_ok() && self.mode() == Mode::LoseAnswers as u8 {
            return Err(StoreError::timeout(op).with_store(self.name));
        }
        out
    }
}

#[async_trait]
impl Store for Faulty {
    fn name(&self) -> &str {
        self.name
    }
    async fn get(&self, key: &str) -> Result<Option<Record>> {
        self.run(Op::Get, self.inner.get(key)).await
    }
    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.run(Op::Set, self.inner.set(key, record)).await
    }
    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.run(Op::Create, self.inner.create(key, record)).await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.run(Op::Delete, self.inner.delete(key)).await
    }
    async fn touch(&self, key: &str, at: Option<SystemTime>) -> Result<bool> {
        self.run(Op::Touch, self.inner.touch(key, at)).await
    }
    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        self.run(Op::Scan, self.inner.scan(prefix, cursor, limit))
            .await
    }
    async fn len(&self) -> Result<u64> {
        self.run(Op::Len, self.inner.len()).await
    }
    async fn clear(&self) -> Result<()> {
        self.run(Op::Clear, self.inner.clear()).await
    }
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.run(Op::GetVersioned, self.inner.get_versioned(key))
            .await
    }
    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        self.run(Op::SetIf, self.inner.set_if(key, record, condition))
            .await
    }
}
