#![allow(missing_docs)]
//! Bulk migration throughput, MemoryStore to MemoryStore, against the raw
//! write rate of the target (a loop of `set`) and against the bare work of
//! the copy protocol (get, create, get in a loop, no scan). All on one
//! current-thread runtime; 100 000 records of 128 bytes expiring in an
//! hour. Each figure is the time for all 100 000 records, measured as the
//! CPU time of the benchmark thread (everything runs on it), so that other
//! processes on a busy machine do not count; `STORESTACK_BENCH_WALL=1`
//! measures wall time instead.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use storestack::layers::migration::bulk::{BulkConfig, BulkMigrator};
use storestack::{MemoryStore, Record, Store};

const RECORDS: usize = 100_000;

/// A stopwatch of this thread's CPU time (Linux: the first field of
/// `/proc/thread-self/schedstat`, nanoseconds on a CPU), or of wall time
/// when `STORESTACK_BENCH_WALL=1`.
struct Instant(Duration);

fn wall() -> bool {
    static WALL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WALL.get_or_init(|| std::env::var("STORESTACK_BENCH_WALL").is_ok_and(|v| v == "1"))
}

impl Instant {
    fn now() -> Self {
        if wall() {
            static T0: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
            return Instant(T0.get_or_init(std::time::Instant::now).elapsed());
        }
        let stat = std::fs::read_to_string("/proc/thread-self/schedstat")
            .expect("this benchmark needs Linux /proc/thread-self/schedstat");
        let nanos = stat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .expect("schedstat starts with nanoseconds");
        Instant(Duration::from_nanos(nanos))
    }

    fn elapsed(&self) -> Duration {
        Instant::now().0 - self.0
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn records() -> Vec<(String, Record)> {
    (0..RECORDS)
        .map(|i| {
            let r = Record::expiring_after(vec![7u8; 128], Duration::from_secs(3600));
            (format!("sess:{i:016x}"), r)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let records = records();
    let old = MemoryStore::new();
    rt.block_on(async {
        for (k, r) in &records {
            old.set(k, r.clone()).await.unwrap();
        }
    });

    let mut group = c.benchmark_group("migration");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));

    group.bench_function("raw_set_loop", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let target = MemoryStore::new();
                let start = Instant::now();
                rt.block_on(async {
                    for (k, r) in &records {
                        target.set(k, r.clone()).await.unwrap();
                    }
                });
                total += start.elapsed();
            }
            total
        })
    });

    // The work the copy protocol does per record, without the migrator
    // around it: get from old, create in new, get from old again.
    group.bench_function("protocol_floor", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let target = MemoryStore::new();
                let start = Instant::now();
                rt.block_on(async {
                    for (k, _) in &records {
                        let r = old.get(k).await.unwrap().unwrap();
                        assert!(target.create(k, r).await.unwrap());
                        criterion::black_box(old.get(k).await.unwrap());
                    }
                });
                total += start.elapsed();
            }
            total
        })
    });

    let configs = [
        ("recheck", BulkConfig::default()),
        (
            "recheck_concurrency_1",
            BulkConfig::default().concurrency(1),
        ),
        ("no_recheck", BulkConfig::default().recheck(false)),
    ];
    for (name, config) in configs {
        let config = config.verify(None).estimate_total(false);
        group.bench_with_input(BenchmarkId::new("bulk", name), &config, |b, config| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let target = MemoryStore::new();
                    let start = Instant::now();
                    let report = rt.block_on(
                        BulkMigrator::new(&old, &target)
                            .config(config.clone())
                            .run(),
                    );
                    total += start.elapsed();
                    assert_eq!(report.unwrap().progress.counts.copied, RECORDS as u64);
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
