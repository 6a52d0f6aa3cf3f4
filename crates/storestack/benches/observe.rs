//! Overhead of Instrumented over MemoryStore, and Cached hit latency, with
//! 2 KiB and 20 KiB JSON session documents.
//!
//! Instrumented variants:
//! * `bare`: MemoryStore alone;
//! * `quiet`: Instrumented, no tracing subscriber, no metrics recorder;
//! * `info+prom`: Instrumented under a tracing `fmt` subscriber at INFO
//!   (writing to a sink; per-op spans are DEBUG, so not recorded) with its
//!   handles registered in a Prometheus recorder (metrics-exporter-prometheus,
//!   no HTTP listener): the production setup the ≤ 150 ns goal is about;
//! * `debug+prom`: the same with a DEBUG subscriber that formats every span
//!   (to a sink): what recording per-op spans costs.
//!
//! Each iteration runs `iters` operations inside one `block_on` of a
//! current-thread runtime, over 10 000 keys in turn, and reports the
//! *thread CPU time* they took (`CLOCK_THREAD_CPUTIME_ID`), so time spent
//! descheduled on a shared machine does not count. After criterion (only
//! under `cargo bench`), two hand-rolled measurements print:
//! * the Instrumented overhead, paired: 40 rounds, each timing 20 000 ops
//!   bare then 20 000 ops instrumented (info+prom), CPU time; the median of
//!   the per-round differences;
//! * Cached hit latency: 200 000 single hits timed one by one with
//!   `Instant` (wall clock), p50 / p99 / p99.9 (each sample includes one
//!   `Instant::now()` pair, printed as `timer`).
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use cpu_time::ThreadTime;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use storestack::{
    CacheConfig, Cached, InstrumentConfig, Instrumented, MemoryStore, Record, Store, StoreExt,
};

const KEYS: usize = 10_000;

/// A session document of about `size` bytes: user, csrf token, roles,
/// flash messages and a cart, as JSON.
fn session_doc(size: usize, seed: usize) -> Vec<u8> {
    let mut doc = format!(
        r#"{{"user_id":"u-{seed:08}","email":"user{seed}@example.com","csrf":"{:032x}","roles":["customer","beta"],"locale":"en-GB","ua":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36","created_at":1732450000,"last_seen":1732453600,"flash":[{{"level":"info","text":"Welcome back!"}}],"cart":["#,
        seed as u128 * 0x9e37_79b9_7f4a_7c15
    );
    let mut i = 0;
    while doc.len() + 80 < size {
        if i > 0 {
            doc.push(',');
        }
        doc.push_str(&format!(
            r#"{{"sku":"SKU-{:06}","qty":{},"price_cents":{},"gift":false}}"#,
            (seed * 31 + i * 7) % 1_000_000,
            i % 5 + 1,
            199 + (i * 37) % 9000
        ));
        i += 1;
    }
    doc.push_str("]}");
    while doc.len() < size {
        doc.insert(doc.len() - 2, ' ');
    }
    doc.into_bytes()
}

fn keys() -> Vec<String> {
    (0..KEYS)
        .map(|i| format!("sess:{:032x}", i as u128 * 0x2545_f491_4f6c_dd1d))
        .collect()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn populate(store: &impl Store, keys: &[String], size: usize) {
    rt().block_on(async {
        for (i, k) in keys.iter().enumerate() {
            let r = Record::expiring_after(session_doc(size, i), Duration::from_secs(3600));
            store.set(k, r).await.unwrap();
        }
    });
}

fn time_gets<S: Store>(rt: &tokio::runtime::Runtime, s: &S, keys: &[String], n: u64) -> Duration {
    rt.block_on(async {
        let start = ThreadTime::now();
        for i in 0..n as usize {
            criterion::black_box(s.get(&keys[i % keys.len()]).await.unwrap());
        }
        start.elapsed()
    })
}

fn time_sets<S: Store>(
    rt: &tokio::runtime::Runtime,
    s: &S,
    keys: &[String],
    rec: &Record,
    n: u64,
) -> Duration {
    rt.block_on(async {
        let start = ThreadTime::now();
        for i in 0..n as usize {
            s.set(&keys[i % keys.len()], rec.clone()).await.unwrap();
        }
        start.elapsed()
    })
}

fn quiet_subscriber() -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::sink)
        .finish()
}

fn debug_subscriber() -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(std::io::sink)
        .finish()
}

fn instrumented(mem: &MemoryStore, prom: bool) -> Instrumented<MemoryStore> {
    let config = InstrumentConfig::new("bench").slow_threshold(Some(Duration::from_millis(100)));
    if prom {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        // Handles keep the recorder's storage alive after this scope.
        metrics::with_local_recorder(&recorder, || mem.clone().instrumented(config))
    } else {
        mem.clone().instrumented(config)
    }
}

fn bench_instrumented(c: &mut Criterion) {
    let keys = keys();
    let rt = rt();
    for size in [2048usize, 20 * 1024] {
        let mem = MemoryStore::new();
        populate(&mem, &keys, size);
        let rec = Record::expiring_after(session_doc(size, 7), Duration::from_secs(3600));
        let quiet = instrumented(&mem, false);
        let prom = instrumented(&mem, true);
        let mut g = c.benchmark_group(format!("instrumented/{}KiB", size / 1024));
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::new("get", "bare"), |b| {
            b.iter_custom(|n| time_gets(&rt, &mem, &keys, n))
        });
        g.bench_function(BenchmarkId::new("get", "quiet"), |b| {
            b.iter_custom(|n| time_gets(&rt, &quiet, &keys, n))
        });
        g.bench_function(BenchmarkId::new("get", "info+prom"), |b| {
            tracing::subscriber::with_default(quiet_subscriber(), || {
                tracing::callsite::rebuild_interest_cache();
                b.iter_custom(|n| time_gets(&rt, &prom, &keys, n))
            })
        });
        g.bench_function(BenchmarkId::new("get", "debug+prom"), |b| {
            tracing::subscriber::with_default(debug_subscriber(), || {
                tracing::callsite::rebuild_interest_cache();
                b.iter_custom(|n| time_gets(&rt, &prom, &keys, n))
            })
        });
        g.bench_function(BenchmarkId::new("set", "bare"), |b| {
            b.iter_custom(|n| time_sets(&rt, &mem, &keys, &rec, n))
        });
        g.bench_function(BenchmarkId::new("set", "quiet"), |b| {
            b.iter_custom(|n| time_sets(&rt, &quiet, &keys, &rec, n))
        });
        g.bench_function(BenchmarkId::new("set", "info+prom"), |b| {
            tracing::subscriber::with_default(quiet_subscriber(), || {
                tracing::callsite::rebuild_interest_cache();
                b.iter_custom(|n| time_sets(&rt, &prom, &keys, &rec, n))
            })
        });
        g.finish();
    }
}

fn cached(size: usize, keys: &[String]) -> Cached<MemoryStore> {
    let mem = MemoryStore::new();
    populate(&mem, keys, size);
    let cached = mem.cached(
        CacheConfig::default()
            .max_entries(2 * KEYS as u64)
            .max_bytes(Some(1 << 30))
            .ttl(Duration::from_secs(3600)),
    );
    time_gets(&rt(), &cached, keys, KEYS as u64); // warm: every key cached
    cached
}

fn bench_cached(c: &mut Criterion) {
    let keys = keys();
    let rt = rt();
    for size in [2048usize, 20 * 1024] {
        let store = cached(size, &keys);
        let mut g = c.benchmark_group(format!("cached/{}KiB", size / 1024));
        g.throughput(Throughput::Elements(1));
        g.bench_function("get_hit", |b| {
            b.iter_custom(|n| time_gets(&rt, &store, &keys, n))
        });
        g.finish();
    }
}

/// p50 / p99 / p99.9 of single Cached hits, timed one by one.
fn hit_percentiles() {
    let keys = keys();
    let rt = rt();
    let timer = {
        let mut t: Vec<u64> = (0..100_000)
            .map(|_| {
                let a = Instant::now();
                criterion::black_box(());
                a.elapsed().as_nanos() as u64
            })
            .collect();
        t.sort_unstable();
        t[t.len() / 2]
    };
    for size in [2048usize, 20 * 1024] {
        let store = cached(size, &keys);
        // All 10 000 keys in turn (a working set beyond the CPU caches),
        // then the same 100 keys over and over (a hot set).
        for (label, spread) in [("10000 keys", KEYS), ("100 hot keys", 100)] {
            let mut samples = Vec::with_capacity(200_000);
            let start = Instant::now();
            rt.block_on(async {
                for i in 0..200_000 {
                    let k = &keys[(i * 7919) % spread];
                    let t = Instant::now();
                    criterion::black_box(store.get(k).await.unwrap());
                    samples.push(t.elapsed().as_nanos() as u64);
                }
            });
            let wall = start.elapsed();
            samples.sort_unstable();
            let p = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
            println!(
                "cached/{}KiB hit latency, {label}: p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns (timer {timer} ns); {:.2} M hits/s single task",
                size / 1024,
                p(0.50),
                p(0.99),
                p(0.999),
                samples[samples.len() - 1],
                200_000.0 / wall.as_secs_f64() / 1e6,
            );
        }
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_instrumented, bench_cached
}

/// Instrumented (info+prom) minus bare, per op, paired round by round.
fn paired_overhead() {
    const ROUNDS: usize = 40;
    const OPS: u64 = 20_000;
    let keys = keys();
    let rt = rt();
    for size in [2048usize, 20 * 1024] {
        let mem = MemoryStore::new();
        populate(&mem, &keys, size);
        let prom = instrumented(&mem, true);
        let rec = Record::expiring_after(session_doc(size, 7), Duration::from_secs(3600));
        tracing::subscriber::with_default(quiet_subscriber(), || {
            tracing::callsite::rebuild_interest_cache();
            // All keys in turn, then 100 hot keys (less memory-bound, so the
            // instrumentation's own cost shows with less noise).
            for (label, keys) in [("10000 keys", &keys[..]), ("100 hot keys", &keys[..100])] {
                for op in ["get", "set"] {
                    let run = |s: &dyn Fn() -> Duration| s().as_nanos() as f64 / OPS as f64;
                    let (mut bare, mut inst, mut diff) = (vec![], vec![], vec![]);
                    for _ in 0..ROUNDS {
                        let (b, i) = if op == "get" {
                            (
                                run(&|| time_gets(&rt, &mem, keys, OPS)),
                                run(&|| time_gets(&rt, &prom, keys, OPS)),
                            )
                        } else {
                            (
                                run(&|| time_sets(&rt, &mem, keys, &rec, OPS)),
                                run(&|| time_sets(&rt, &prom, keys, &rec, OPS)),
                            )
                        };
                        bare.push(b);
                        inst.push(i);
                        diff.push(i - b);
                    }
                    let median = |v: &mut Vec<f64>| {
                        v.sort_by(f64::total_cmp);
                        v[v.len() / 2]
                    };
                    println!(
                        "paired {op} {}KiB, {label}: bare {:.0} ns, instrumented {:.0} ns, overhead {:.0} ns/op (median of {ROUNDS} rounds of {OPS} ops, CPU time)",
                        size / 1024,
                        median(&mut bare),
                        median(&mut inst),
                        median(&mut diff),
                    );
                }
            }
        });
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Under `cargo test --benches` criterion runs each bench once; the
    // hand-rolled measurements run only under `cargo bench`.
    if std::env::args().any(|a| a == "--bench") {
        paired_overhead();
        hit_percentiles();
    }
}
