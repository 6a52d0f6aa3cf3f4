#![allow(missing_docs)]
//! Fallback(Memory, Memory) in the healthy state against a bare MemoryStore:
//! get and set of present keys, single-threaded. The overhead of the
//! decorator is the difference between `fallback-*` and `memory`.
//!
//! `fallback-per-read` is the default (`JournalCheck::PerRead`: each get
//! also reads the key's journal entry on the secondary); `fallback-poll`
//! trusts the journal entries it knows of (`JournalCheck::Poll`).
//!
//! Time is the CPU time of the benchmark thread, so that other processes on
//! a busy machine do not count (their cache pressure still does). Everything
//! runs on that thread (current-thread runtime).

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use storestack::layers::fallback::JournalCheck;
use storestack::{Fallback, FallbackConfig, MemoryStore, Record, Store};

/// Key-set sizes: one that fits in cache (the decorator's own cost) and
/// one that does not (closer to a loaded server; the fallback touches two
/// stores' memory).
const SIZES: [usize; 2] = [1_000, 100_000];

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("sess:{i:016x}")).collect()
}

fn record() -> Record {
    Record::expiring_after(vec![0u8; 128], Duration::from_secs(3600))
}

/// The stores under test, built outside any runtime (so no background
/// task runs) and populated.
fn stores(rt: &tokio::runtime::Runtime, keys: &[String]) -> Vec<(&'static str, Box<dyn Store>)> {
    let fallback = |check| {
        let config = FallbackConfig::default()
            .journal_check(check)
            .background(false);
        Fallback::with_config(MemoryStore::new(), MemoryStore::new(), config)
    };
    let stores: Vec<(&'static str, Box<dyn Store>)> = vec![
        ("memory", Box::new(MemoryStore::new())),
        (
            "fallback-per-read",
            Box::new(fallback(JournalCheck::PerRead)),
        ),
        ("fallback-poll", Box::new(fallback(JournalCheck::Poll))),
    ];
    rt.block_on(async {
        for (_, store) in &stores {
            for k in keys {
                store.set(k, record()).await.unwrap();
            }
        }
    });
    stores
}

/// Times `f` in CPU time of this thread.
fn timed(f: impl FnOnce()) -> Duration {
    let start = cpu_time::ThreadTime::now();
    f();
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for n in SIZES {
        bench_size(c, &rt, n);
    }
}

fn bench_size(c: &mut Criterion, rt: &tokio::runtime::Runtime, n: usize) {
    let keys = keys(n);
    let stores = stores(rt, &keys);
    let mut group = c.benchmark_group(format!("fallback-{n}-keys"));
    group.throughput(Throughput::Elements(1));
    for (name, store) in &stores {
        group.bench_function(BenchmarkId::new("get", name), |b| {
            b.iter_custom(|iters| {
                timed(|| {
                    rt.block_on(async {
                        for i in 0..iters as usize {
                            let key = &keys[(i * 7919) % n];
                            black_box(store.get(key).await.unwrap());
                        }
                    })
                })
            })
        });
        group.bench_function(BenchmarkId::new("set", name), |b| {
            b.iter_custom(|iters| {
                timed(|| {
                    rt.block_on(async {
                        for i in 0..iters as usize {
                            let key = &keys[(i * 7919) % n];
                            store.set(key, record()).await.unwrap();
                        }
                    })
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
