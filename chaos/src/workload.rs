//! A session-like workload: many keys, mostly reads, some writes, creates,
//! deletes and touches, values of varying size with TTLs, several
//! concurrent workers.
//!
//! Deterministic for a seed: worker `i` draws from its own RNG seeded from
//! the run's seed and `i`, and its choices never depend on results or
//! timing, so the same seed gives every worker the same sequence of
//! operations, keys, values and TTLs ([`Workload::plan`]). What the store
//! answers, and how the workers interleave, is what the run measures.
//!
//! Every operation is recorded in a [`History`]; each is wrapped in a
//! timeout of [`WorkloadConfig::hang_deadline`] and recorded as
//! [`Outcome::Hung`] when it expires.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use storestack::MemoryStore;
//! use storestack_chaos::workload::{Stop, Workload, WorkloadConfig};
//!
//! let config = WorkloadConfig::default().concurrency(2).stop(Stop::Ops(100)).rate(None);
//! let history = Workload::new(config).run(Arc::new(MemoryStore::new()), 7).await;
//! assert_eq!(history.ops.len(), 100);
//! assert!(history.ops.iter().all(|op| op.outcome.is_ok()));
//! # });
//! ```

use std::fmt;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::distributions::{Distribution, WeightedIndex};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use storestack::clock::SharedClock;
use storestack::{Record, SharedStore};
use tokio::time::{Instant, MissedTickBehavior};

use crate::history::{
    key_name, FaultWindow, History, OpRecord, Outcome, ReadValue, ValueId, WorkOp,
};

/// The relative weights of the operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpMix {
    /// Weight of `get`.
    pub get: u32,
    /// Weight of `set`.
    pub set: u32,
    /// Weight of `create`.
    pub create: u32,
    /// Weight of `delete`.
    pub delete: u32,
    /// Weight of `touch`.
    pub touch: u32,
}

impl Default for OpMix {
    /// Session-like: 70 % reads, 15 % writes, 5 % each of create, delete
    /// and touch.
    fn default() -> Self {
        OpMix {
            get: 70,
            set: 15,
            create: 5,
            delete: 5,
            touch: 5,
        }
    }
}

impl OpMix {
    fn weights(&self) -> [u32; 5] {
        [self.get, self.set, self.create, self.delete, self.touch]
    }
}

/// When the workload stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// After this long (operations in flight finish).
    After(Duration),
    /// After this many operations in total, split evenly between workers.
    Ops(u64),
}

/// The configuration of a [`Workload`].
///
/// # Default
///
/// 1,000 keys (`chaos:000000` …), [`OpMix::default`], values of 64–1,024
/// bytes, TTLs of 10–30 minutes with 10 % never expiring (nothing expires
/// during a short run, so a missing key means a lost write or a delete), 8
/// workers, 2,000 operations per second in total, a 20 % hot set taking
/// 80 % of the operations, a 2 s hang deadline, stop after 5 s, the system
/// clock for expiries.
#[derive(Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkloadConfig {
    /// Number of distinct keys.
    pub keys: u32,
    /// Prefix of every key.
    pub key_prefix: String,
    /// Operation weights.
    pub mix: OpMix,
    /// Value sizes in bytes (uniform).
    pub value_size: RangeInclusive<usize>,
    /// TTLs of written records (uniform); see `never_expire_percent`.
    pub ttl: RangeInclusive<Duration>,
    /// Percentage of writes and touches that never expire.
    pub never_expire_percent: u8,
    /// Number of concurrent workers.
    pub concurrency: u32,
    /// Target operations per second over all workers; `None` for as fast as
    /// the store answers.
    pub rate: Option<u32>,
    /// Hot set: `(fraction of keys, fraction of operations)`; `None` for a
    /// uniform choice of keys.
    pub hot: Option<(f64, f64)>,
    /// Deadline of each operation; past it the operation is abandoned and
    /// recorded as hung.
    pub hang_deadline: Duration,
    /// When to stop.
    pub stop: Stop,
    /// The clock expiries are computed with.
    #[serde(skip, default = "storestack::clock::system")]
    pub clock: SharedClock,
}

impl fmt::Debug for WorkloadConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadConfig")
            .field("keys", &self.keys)
            .field("key_prefix", &self.key_prefix)
            .field("mix", &self.mix)
            .field("value_size", &self.value_size)
            .field("ttl", &self.ttl)
            .field("never_expire_percent", &self.never_expire_percent)
            .field("concurrency", &self.concurrency)
            .field("rate", &self.rate)
            .field("hot", &self.hot)
            .field("hang_deadline", &self.hang_deadline)
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            keys: 1_000,
            key_prefix: "chaos:".into(),
            mix: OpMix::default(),
            value_size: 64..=1024,
            ttl: Duration::from_secs(600)..=Duration::from_secs(1800),
            never_expire_percent: 10,
            concurrency: 8,
            rate: Some(2_000),
            hot: Some((0.2, 0.8)),
            hang_deadline: Duration::from_secs(2),
            stop: Stop::After(Duration::from_secs(5)),
            clock: storestack::clock::system(),
        }
    }
}

impl WorkloadConfig {
    /// Sets the number of distinct keys (at least 1).
    pub fn keys(mut self, keys: u32) -> Self {
        self.keys = keys.max(1);
        self
    }

    /// Sets the key prefix.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets the operation weights.
    pub fn mix(mut self, mix: OpMix) -> Self {
        self.mix = mix;
        self
    }

    /// Sets the value sizes.
    pub fn value_size(mut self, sizes: RangeInclusive<usize>) -> Self {
        self.value_size = sizes;
        self
    }

    /// Sets the TTLs and the percentage of records that never expire.
    pub fn ttl(mut self, ttl: RangeInclusive<Duration>, never_expire_percent: u8) -> Self {
        self.ttl = ttl;
        self.never_expire_percent = never_expire_percent.min(100);
        self
    }

    /// Sets the number of workers (at least 1).
    pub fn concurrency(mut self, workers: u32) -> Self {
        self.concurrency = workers.max(1);
        self
    }

    /// Sets the target rate over all workers (`None`: unpaced).
    pub fn rate(mut self, ops_per_sec: Option<u32>) -> Self {
        self.rate = ops_per_sec.filter(|&r| r > 0);
        self
    }

    /// Sets the hot set (`None`: uniform keys).
    pub fn hot(mut self, hot: Option<(f64, f64)>) -> Self {
        self.hot = hot;
        self
    }

    /// Sets the hang deadline.
    pub fn hang_deadline(mut self, deadline: Duration) -> Self {
        self.hang_deadline = deadline;
        self
    }

    /// Sets when to stop.
    pub fn stop(mut self, stop: Stop) -> Self {
        self.stop = stop;
        self
    }

    /// Sets the clock expiries are computed with.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }
}

/// One operation as a worker plans it, before running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedOp {
    /// The worker's sequence number.
    pub seq: u64,
    /// The operation.
    pub op: WorkOp,
    /// The key index.
    pub key: u32,
    /// For `set` / `create`: the value's size.
    pub value_size: usize,
    /// For `set` / `create` / `touch`: the TTL (`None`: never expires).
    pub ttl: Option<Duration>,
}

/// The deterministic source of one worker's operations.
#[derive(Debug)]
pub struct OpGenerator {
    rng: ChaCha8Rng,
    ops: WeightedIndex<u32>,
    config: WorkloadConfig,
    next_seq: u64,
}

/// The seed of worker `worker` in a run seeded `seed`.
pub fn worker_seed(seed: u64, worker: u32) -> u64 {
    crate::seed::derive(seed, u64::from(worker))
}

impl OpGenerator {
    /// The generator of worker `worker` for a run seeded `seed`.
    pub fn new(config: &WorkloadConfig, seed: u64, worker: u32) -> Self {
        let weights = config.mix.weights();
        // All-zero weights would be a configuration mistake: fall back to
        // reads only rather than panic.
        let ops = WeightedIndex::new(weights)
            .unwrap_or_else(|_| WeightedIndex::new([1, 0, 0, 0, 0]).expect("valid weights"));
        OpGenerator {
            rng: ChaCha8Rng::seed_from_u64(worker_seed(seed, worker)),
            ops,
            config: config.clone(),
            next_seq: 0,
        }
    }

    fn key(&mut self) -> u32 {
        let keys = self.config.keys.max(1);
        match self.config.hot {
            Some((key_frac, op_frac)) if keys > 1 => {
                let hot_keys = ((f64::from(keys) * key_frac.clamp(0.0, 1.0)) as u32).clamp(1, keys);
                if self.rng.gen_bool(op_frac.clamp(0.0, 1.0)) || hot_keys == keys {
                    self.rng.gen_range(0..hot_keys)
                } else {
                    self.rng.gen_range(hot_keys..keys)
                }
            }
            _ => self.rng.gen_range(0..keys),
        }
    }

    fn ttl(&mut self) -> Option<Duration> {
        if self
            .rng
            .gen_ratio(u32::from(self.config.never_expire_percent.min(100)), 100)
        {
            return None;
        }
        let (lo, hi) = (*self.config.ttl.start(), *self.config.ttl.end());
        if hi <= lo {
            return Some(lo);
        }
        let span = (hi - lo).as_millis() as u64;
        Some(lo + Duration::from_millis(self.rng.gen_range(0..=span)))
    }
}

impl Iterator for OpGenerator {
    type Item = PlannedOp;

    fn next(&mut self) -> Option<PlannedOp> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let op = WorkOp::ALL[self.ops.sample(&mut self.rng)];
        let key = self.key();
        let (value_size, ttl) = match op {
            WorkOp::Set | WorkOp::Create => {
                let (lo, hi) = (
                    *self.config.value_size.start(),
                    *self.config.value_size.end(),
                );
                let size = if hi > lo {
                    self.rng.gen_range(lo..=hi)
                } else {
                    lo
                };
                (size, self.ttl())
            }
            WorkOp::Touch => (0, self.ttl()),
            WorkOp::Get | WorkOp::Delete => (0, None),
        };
        Some(PlannedOp {
            seq,
            op,
            key,
            value_size,
            ttl,
        })
    }
}

/// A configured workload; [`run`](Workload::run) it against a store.
#[derive(Debug, Clone)]
pub struct Workload {
    config: WorkloadConfig,
}

/// Where a run stands while it goes: shared with a progress display.
#[derive(Debug, Default)]
pub struct Progress {
    ops: AtomicU64,
    errors: AtomicU64,
    hangs: AtomicU64,
}

impl Progress {
    /// Operations finished so far.
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }

    /// Operations that failed so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Operations that hung so far.
    pub fn hangs(&self) -> u64 {
        self.hangs.load(Ordering::Relaxed)
    }
}

/// The time origin of a run, shared by the workload and the fault
/// schedule so that their offsets agree.
#[derive(Debug, Clone, Copy)]
pub struct RunStart {
    /// The monotonic start (tokio's clock, so paused time works).
    pub instant: Instant,
    /// The wall-clock start, read from the workload's clock.
    pub wall: SystemTime,
}

impl RunStart {
    /// Now, by tokio's clock and `clock`.
    pub fn now(clock: &SharedClock) -> Self {
        RunStart {
            instant: Instant::now(),
            wall: clock.now(),
        }
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.instant.elapsed()
    }
}

impl Workload {
    /// A workload with this configuration.
    pub fn new(config: WorkloadConfig) -> Self {
        Workload { config }
    }

    /// The configuration.
    pub fn config(&self) -> &WorkloadConfig {
        &self.config
    }

    /// The first `n` operations worker `worker` issues in a run seeded
    /// `seed`: what determinism means here.
    pub fn plan(&self, seed: u64, worker: u32, n: usize) -> Vec<PlannedOp> {
        OpGenerator::new(&self.config, seed, worker)
            .take(n)
            .collect()
    }

    /// Runs the workload against `store` and returns its history.
    pub async fn run(&self, store: SharedStore, seed: u64) -> History {
        let start = RunStart::now(&self.config.clock);
        self.run_from(&[store], seed, start, None, &Arc::new(Progress::default()))
            .await
    }

    /// Runs the workload from a given start (shared with a fault
    /// schedule), reporting progress as it goes. `processes` are the
    /// stacks of as many processes sharing the same backends: worker `i`
    /// uses `processes[i % processes.len()]` (none: nothing runs).
    pub async fn run_from(
        &self,
        processes: &[SharedStore],
        seed: u64,
        start: RunStart,
        window: Option<FaultWindow>,
        progress: &Arc<Progress>,
    ) -> History {
        let workers = if processes.is_empty() {
            0
        } else {
            self.config.concurrency.max(1)
        };
        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..workers {
            let quota = match self.config.stop {
                Stop::Ops(total) => {
                    let base = total / u64::from(workers);
                    let extra = u64::from(u64::from(worker) < total % u64::from(workers));
                    Some(base + extra)
                }
                Stop::After(_) => None,
            };
            let deadline = match self.config.stop {
                Stop::After(d) => Some(start.instant + d),
                Stop::Ops(_) => None,
            };
            let worker_run = WorkerRun {
                worker,
                store: processes[worker as usize % processes.len()].clone(),
                config: self.config.clone(),
                seed,
                start,
                quota,
                deadline,
                progress: progress.clone(),
            };
            tasks.spawn(worker_run.run());
        }
        let mut ops = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(records) => ops.extend(records),
                // A worker only panics if the store under test panics;
                // make that loud rather than silently losing its records.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => {}
            }
        }
        ops.sort_by_key(|op| (op.start, op.worker, op.seq));
        History {
            seed,
            started_at: start.wall,
            elapsed: start.elapsed(),
            hang_deadline: self.config.hang_deadline,
            key_prefix: self.config.key_prefix.clone(),
            window,
            ops,
            final_reads: Vec::new(),
        }
    }
}

struct WorkerRun {
    worker: u32,
    store: SharedStore,
    config: WorkloadConfig,
    seed: u64,
    start: RunStart,
    quota: Option<u64>,
    deadline: Option<Instant>,
    progress: Arc<Progress>,
}

impl WorkerRun {
    async fn run(self) -> Vec<OpRecord> {
        let mut records = Vec::new();
        let mut pacer = self.config.rate.map(|rate| {
            let workers = self.config.concurrency.max(1);
            let period = Duration::from_secs_f64(f64::from(workers) / f64::from(rate));
            // Stagger workers across one period so they do not fire together.
            let offset = period.mul_f64(f64::from(self.worker) / f64::from(workers));
            let mut interval = tokio::time::interval_at(self.start.instant + offset, period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        for planned in OpGenerator::new(&self.config, self.seed, self.worker) {
            if self.quota.is_some_and(|q| planned.seq >= q) {
                break;
            }
            if let Some(pacer) = pacer.as_mut() {
                match self.deadline {
                    Some(deadline) => {
                        tokio::select! {
                            _ = pacer.tick() => {}
                            _ = tokio::time::sleep_until(deadline) => break,
                        }
                    }
                    None => {
                        pacer.tick().await;
                    }
                }
            } else {
                tokio::task::yield_now().await;
            }
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let record = self.issue(planned).await;
            self.progress.ops.fetch_add(1, Ordering::Relaxed);
            match record.outcome {
                Outcome::Failed(_) => {
                    self.progress.errors.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::Hung => {
                    self.progress.hangs.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
            records.push(record);
        }
        records
    }

    async fn issue(&self, planned: PlannedOp) -> OpRecord {
        let key = key_name(&self.config.key_prefix, planned.key);
        let expires_at = planned.ttl.map(|ttl| self.config.clock.now() + ttl);
        let id = ValueId {
            worker: self.worker,
            seq: planned.seq,
        };
        let write = planned.op.writes_value().then_some(id);
        let record = || Record {
            value: id.encode(planned.key, planned.value_size),
            expires_at,
        };
        let store = &self.store;
        let started = Instant::now();
        let call = async {
            match planned.op {
                WorkOp::Get => store.get(&key).await.map(|r| {
                    Outcome::Read(match r {
                        None => ReadValue::Absent,
                        Some(r) => ValueId::decode(&r.value, planned.key),
                    })
                }),
                WorkOp::Set => store.set(&key, record()).await.map(|()| Outcome::Written),
                WorkOp::Create => store.create(&key, record()).await.map(Outcome::Applied),
                WorkOp::Delete => store.delete(&key).await.map(Outcome::Applied),
                WorkOp::Touch => store.touch(&key, expires_at).await.map(Outcome::Applied),
            }
        };
        let outcome = match tokio::time::timeout(self.config.hang_deadline, call).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => Outcome::Failed(e.kind().into()),
            Err(_) => Outcome::Hung,
        };
        let ended = Instant::now();
        OpRecord {
            worker: self.worker,
            seq: planned.seq,
            op: planned.op,
            key: planned.key,
            start: started.saturating_duration_since(self.start.instant),
            end: ended.saturating_duration_since(self.start.instant),
            write,
            expires_at: if matches!(planned.op, WorkOp::Get | WorkOp::Delete) {
                None
            } else {
                expires_at
            },
            outcome,
        }
    }
}

mod read_back;

pub use read_back::{read_back, ReadBack};

#[cfg(test)]
mod tests;
