#![allow(missing_docs)]
//! The whole stack against the raw fred client, in one run, against the
//! same Redis and MongoDB servers.
//!
//! Subjects, for get / set / create of 2 KiB and 20 KiB session values,
//! with 1 task and with 64 concurrent tasks:
//!
//! * `raw-fred`: the fred calls a session store needs (`GET`, `SET PXAT`,
//!   `SET NX PXAT`) on a pool of its own: the baseline.
//! * `raw-both`: the raw driver calls the stack's two stores make by
//!   design, with no storestack code (`storestack_bench::RawBoth`: a get
//!   is `GET` with a concurrent Mongo point read, a write reaches Redis and
//!   then Mongo): the fair baseline for the stack, whose ratios to it are
//!   printed in a second table.
//! * `redis-store`: `RedisStore` alone.
//! * `stack-miss`: the full stack (see `storestack_bench::full_stack`)
//!   with a cache that holds nothing, so every read pays the lookup and the
//!   load through every layer; the fallback in its default mode
//!   (`JournalCheck::Lease`: while the read lease holds, a read is one
//!   Redis read).
//! * `stack-miss-per-read`: the same with `JournalCheck::PerRead` (each
//!   read of Redis also reads the key's journal entry on Mongo,
//!   concurrently).
//! * `stack-miss-poll`: the same with `JournalCheck::Poll` (reads trust the
//!   journal entries this process knows of, polled every second).
//! * `stack-hit` (get only): the full stack on a cache hit.
//!
//! At the end it prints a table of each subject's throughput as a ratio to
//! raw fred's in this run (means over every timed call), and the latency
//! percentiles and rate of cache hits. Both servers are needed:
//!
//! ```sh
//! eval "$(scripts/mongo.sh start)"
//! cargo bench -p storestack-bench --bench stack
//! scripts/mongo.sh stop
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use futures::stream::{self, StreamExt};
use hdrhistogram::Histogram;
use storestack::bytes::Bytes;
use storestack::layers::fallback::JournalCheck;
use storestack::Store;
use storestack_bench::{
    full_stack, key, mongo, record, redis, session_value, CacheMode, DynStore, Raw, RawBoth,
    RawFred,
};

/// Preloaded keys that get and set address, round robin.
const KEYS: u64 = 2_000;
const SIZES: [usize; 2] = [2 * 1024, 20 * 1024];
const TASKS: [usize; 2] = [1, 64];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Get,
    Set,
    Create,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Set => "set",
            Op::Create => "create",
        }
    }
}

#[derive(Clone)]
enum Subject {
    Raw(Raw),
    Store(DynStore),
}

impl Subject {
    async fn once(&self, op: Op, key: &str, value: &Bytes) {
        match (self, op) {
            (Subject::Raw(raw), Op::Get) => {
                assert!(raw.get(key).await.is_some(), "a preloaded key")
            }
            (Subject::Raw(raw), Op::Set) => raw.set(key, value.clone()).await,
            (Subject::Raw(raw), Op::Create) => assert!(raw.create(key, value.clone()).await),
            (Subject::Store(s), Op::Get) => {
                assert!(s.get(key).await.expect("get").is_some(), "a preloaded key")
            }
            (Subject::Store(s), Op::Set) => s.set(key, record(value)).await.expect("set"),
            (Subject::Store(s), Op::Create) => {
                assert!(s.create(key, record(value)).await.expect("create"))
            }
        }
    }

    async fn delete_all(&self, keys: Vec<String>) {
        match self {
            Subject::Raw(raw) => raw.delete_many(&keys).await,
            Subject::Store(s) => {
                stream::iter(keys)
                    .for_each_concurrent(64, |k| async move {
                        s.delete(&k).await.expect("delete");
                    })
                    .await
            }
        }
    }
}

/// Mean time per call of each (op, size, tasks, subject), over every call
/// criterion timed.
type Totals = Mutex<BTreeMap<(Op, usize, usize, &'static str), (Duration, u64)>>;

struct Bench {
    rt: tokio::runtime::Runtime,
    subjects: Vec<(&'static str, Subject)>,
    fresh: Arc<AtomicU64>,
    totals: Totals,
}

fn main() {
    let Some((rt, url)) = storestack_bench::start("stack") else {
        return;
    };
    let pid = std::process::id();
    let subjects = rt.block_on(async {
        let store = redis(&format!("ssb:{pid}:raw:")).await.expect("redis");
        let raw = RawFred::connect(&store).await.expect("redis");
        let both = RawBoth::new(
            RawFred::connect(&redis(&format!("ssb:{pid}:both:")).await.expect("redis"))
                .await
                .expect("redis"),
            mongo(&url, &format!("both_{pid}")).await.expect("mongo"),
        );
        let stack = |cache, check| {
            let url = url.clone();
            async move {
                let primary = redis(&format!("ssb:{pid}:stack:")).await.expect("redis");
                let secondary = mongo(&url, &format!("stack_{pid}")).await.expect("mongo");
                full_stack(primary, secondary, cache, check, Duration::from_millis(250))
            }
        };
        vec![
            ("raw-fred", Subject::Raw(Raw::Fred(raw))),
            ("raw-both", Subject::Raw(Raw::Both(both))),
            ("redis-store", Subject::Store(Arc::new(store))),
            (
                "stack-miss",
                Subject::Store(stack(CacheMode::AlwaysMiss, JournalCheck::Lease).await),
            ),
            (
                "stack-miss-per-read",
                Subject::Store(stack(CacheMode::AlwaysMiss, JournalCheck::PerRead).await),
            ),
            (
                "stack-miss-poll",
                Subject::Store(stack(CacheMode::AlwaysMiss, JournalCheck::Poll).await),
            ),
            (
                "stack-hit",
                Subject::Store(stack(CacheMode::Normal, JournalCheck::Lease).await),
            ),
        ]
    });
    let bench = Bench {
        rt,
        subjects,
        fresh: Arc::new(AtomicU64::new(1 << 40)),
        totals: Mutex::new(BTreeMap::new()),
    };
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    for size in SIZES {
        bench.size(&mut c, size);
    }
    c.final_summary();
    bench.hits();
    bench.ratios("raw-fred", |_| true);
    bench.ratios("raw-both", |name| name.starts_with("stack-miss"));
    bench.rt.block_on(async {
        for (_, subject) in &bench.subjects {
            if let Subject::Store(s) = subject {
                let _ = s.clear().await;
            }
        }
    });
}

impl Bench {
    fn size(&self, c: &mut Criterion, size: usize) {
        let value = session_value(size, 1);
        // Every subject reads the same preloaded keys.
        self.rt.block_on(async {
            for (_, subject) in &self.subjects {
                stream::iter(0..KEYS)
                    .for_each_concurrent(64, |i| {
                        let (subject, value) = (subject.clone(), value.clone());
                        async move { subject.once(Op::Set, &key(i), &value).await }
                    })
                    .await;
            }
        });
        for op in [Op::Get, Op::Set, Op::Create] {
            for tasks in TASKS {
                let mut group =
                    c.benchmark_group(format!("{}-{}KiB-{tasks}t", op.name(), size / 1024));
                group.throughput(Throughput::Elements(1));
                for (name, subject) in &self.subjects {
                    if *name == "stack-hit" && op != Op::Get {
                        continue; // writes go through to both stores: a miss
                    }
                    group.bench_function(BenchmarkId::from_parameter(name), |b| {
                        b.iter_custom(|iters| {
                            let took = self
                                .rt
                                .block_on(self.run(subject, op, iters, tasks, &value));
                            let mut totals = self.totals.lock().unwrap();
                            let t = totals.entry((op, size, tasks, *name)).or_default();
                            t.0 += took;
                            t.1 += iters;
                            took
                        })
                    });
                }
                group.finish();
            }
        }
    }

    /// `iters` calls of `op` spread over `tasks` tasks; the wall time.
    async fn run(
        &self,
        subject: &Subject,
        op: Op,
        iters: u64,
        tasks: usize,
        value: &Bytes,
    ) -> Duration {
        let tasks = (tasks as u64).min(iters).max(1);
        let next = Arc::new(AtomicU64::new(0));
        let created = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let (subject, value, next) = (subject.clone(), value.clone(), next.clone());
                let (fresh, created) = (self.fresh.clone(), created.clone());
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= iters {
                            break;
                        }
                        let k = match op {
                            Op::Create => key(fresh.fetch_add(1, Ordering::Relaxed)),
                            _ => key(i % KEYS),
                        };
                        subject.once(op, &k, &value).await;
                        if op == Op::Create {
                            mine.push(k);
                        }
                    }
                    created.lock().unwrap().extend(mine);
                })
            })
            .collect();
        for h in handles {
            h.await.expect("a benchmark task panicked");
        }
        let took = start.elapsed();
        let created = std::mem::take(&mut *created.lock().unwrap());
        if !created.is_empty() {
            subject.delete_all(created).await;
        }
        took
    }

    /// Cache hits one at a time (latency percentiles), then from 64 tasks
    /// (rate).
    fn hits(&self) {
        let Some(Subject::Store(stack)) = self.subject("stack-hit") else {
            return;
        };
        let stack = stack.clone();
        self.rt.block_on(async {
            let mut hist = Histogram::<u64>::new(3).unwrap();
            for round in 0..5u64 {
                for i in 0..KEYS {
                    let start = Instant::now();
                    let got = stack.get(&key(i)).await.expect("get");
                    let ns = start.elapsed().as_nanos() as u64;
                    assert!(got.is_some());
                    if round > 0 {
                        hist.record(ns).unwrap();
                    }
                }
            }
            let per_task = 50_000u64;
            let start = Instant::now();
            let handles: Vec<_> = (0..64u64)
                .map(|t| {
                    let stack = stack.clone();
                    tokio::spawn(async move {
                        for i in 0..per_task {
                            let got = stack.get(&key((t * 31 + i) % KEYS)).await.expect("get");
                            assert!(got.is_some());
                        }
                    })
                })
                .collect();
            for h in handles {
                h.await.unwrap();
            }
            let rate = (64 * per_task) as f64 / start.elapsed().as_secs_f64();
            println!(
                "\ncache hits, 1 task ({} calls): p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
                hist.len(),
                hist.value_at_quantile(0.50),
                hist.value_at_quantile(0.99),
                hist.value_at_quantile(0.999),
                hist.max()
            );
            println!(
                "cache hits, 64 tasks on 2 worker threads: {:.0} hits/s",
                rate
            );
        });
    }

    fn subject(&self, name: &str) -> Option<&Subject> {
        self.subjects
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s)
    }

    /// Throughput of the subjects that `show` picks as a ratio to
    /// `baseline`'s (mean time per call of the baseline / of the subject).
    fn ratios(&self, baseline: &'static str, show: impl Fn(&str) -> bool) {
        let totals = self.totals.lock().unwrap();
        let mean = |k: &(Op, usize, usize, &'static str)| {
            totals
                .get(k)
                .filter(|(_, n)| *n > 0)
                .map(|(d, n)| d.as_secs_f64() / *n as f64)
        };
        let names: Vec<&'static str> = self
            .subjects
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| *n != baseline && show(n))
            .collect();
        println!("\nthroughput as a ratio to {baseline} (same run; mean time per call)\n");
        print!("| op | value | tasks | {baseline} µs/op |");
        for n in &names {
            print!(" {n} |");
        }
        println!();
        println!("|---|---|---|---|{}", "---|".repeat(names.len()));
        for op in [Op::Get, Op::Set, Op::Create] {
            for size in SIZES {
                for tasks in TASKS {
                    let Some(base) = mean(&(op, size, tasks, baseline)) else {
                        continue;
                    };
                    print!(
                        "| {} | {} KiB | {tasks} | {:.1} |",
                        op.name(),
                        size / 1024,
                        base * 1e6
                    );
                    for n in &names {
                        match mean(&(op, size, tasks, n)) {
                            Some(m) => print!(" {:.2}× |", base / m),
                            None => print!(" – |"),
                        }
                    }
                    println!();
                }
            }
        }
    }
}
