#![allow(missing_docs)]
//! MemoryStore get / set / create on a present key (the refusal path), and
//! `create+delete` (an insert on an absent key, then its removal, so that
//! the store does not grow: the figure is the pair), single-threaded and
//! with 2 threads. With 2 threads the figure is wall time per operation of
//! the whole run, i.e. the inverse of aggregate throughput.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use storestack::{MemoryStore, Record, Store};

const KEYS: usize = 100_000;

fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("sess:{i:016x}")).collect()
}

fn populated(keys: &[String]) -> MemoryStore {
    let store = MemoryStore::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        for k in keys {
            store
                .set(
                    k,
                    Record::expiring_after(vec![0u8; 128], Duration::from_secs(3600)),
                )
                .await
                .unwrap();
        }
    });
    store
}

/// Runs `iters` operations split over `threads` OS threads, each driving
/// its own current-thread runtime, and returns the wall time.
fn run<F, Fut>(
    threads: usize,
    iters: u64,
    store: &MemoryStore,
    keys: &Arc<Vec<String>>,
    op: F,
) -> Duration
where
    F: Fn(MemoryStore, Arc<Vec<String>>, usize) -> Fut + Send + Sync + Copy + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let per = iters as usize / threads + 1;
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let store = store.clone();
            let keys = keys.clone();
            s.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    for i in 0..per {
                        op(store.clone(), keys.clone(), (i * 7919 + t * 104_729) % KEYS).await;
                    }
                });
            });
        }
    });
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let keys = Arc::new(keys());
    let store = populated(&keys);
    // Keys never set by `populated`.
    let fresh: Arc<Vec<String>> = Arc::new((0..KEYS).map(|i| format!("fresh:{i:016x}")).collect());
    let mut group = c.benchmark_group("memory");
    group.throughput(Throughput::Elements(1));
    for threads in [1usize, 2] {
        group.bench_with_input(BenchmarkId::new("get", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                run(t, iters, &store, &keys, |s, k, i| async move {
                    criterion::black_box(s.get(&k[i]).await.unwrap());
                })
            })
        });
        group.bench_with_input(BenchmarkId::new("set", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                run(t, iters, &store, &keys, |s, k, i| async move {
                    let r = Record::expiring_after(vec![1u8; 128], Duration::from_secs(3600));
                    s.set(&k[i], r).await.unwrap();
                })
            })
        });
        group.bench_with_input(BenchmarkId::new("create", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                run(t, iters, &store, &keys, |s, k, i| async move {
                    let r = Record::expiring_after(vec![1u8; 128], Duration::from_secs(3600));
                    criterion::black_box(s.create(&k[i], r).await.unwrap());
                })
            })
        });
        group.bench_with_input(
            BenchmarkId::new("create+delete", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    run(t, iters, &store, &fresh, |s, k, i| async move {
                        let r = Record::expiring_after(vec![1u8; 128], Duration::from_secs(3600));
                        // No assert: two threads that drift ~4 000 operations
                        // apart can meet on a key (then one create refuses).
                        criterion::black_box(s.create(&k[i], r).await.unwrap());
                        criterion::black_box(s.delete(&k[i]).await.unwrap());
                    })
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
