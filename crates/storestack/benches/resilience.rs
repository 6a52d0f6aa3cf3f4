#![allow(missing_docs)]
//! Overhead of the resilience decorators over a bare MemoryStore in the
//! healthy state (one `get` / `set` of a 128-byte value on a present key,
//! single-threaded), and the latency of a call failed fast by an open
//! circuit breaker. The overhead of a decorator is its figure minus the
//! `memory` figure; `passthrough`, a decorator that only forwards, shows
//! what any decorator costs (the boxed future of each call).
//!
//! ```sh
//! cargo bench -p storestack --bench resilience -- --measurement-time 2 --warm-up-time 1
//! ```
//!
//! On a machine shared with other work, preemption inflates every figure.
//! With `BENCH_MIN_OF_BATCHES=1` each sample times its iterations in
//! batches of 256 and reports the fastest batch's per-iteration time: a
//! best-case figure, robust to preemption, for comparing decorators with
//! the baseline on a busy machine (it is lower than the mean of a quiet one).

use std::time::Duration;

use std::future::Future;
use std::time::Instant;

use criterion::{black_box, criterion_group, criterion_main, Bencher, Criterion};
use storestack::layers::fault::FaultConfig;
use storestack::{
    async_trait, BreakerConfig, Condition, MemoryStore, Record, Result, RetryConfig, ScanCursor,
    ScanPage, SharedStore, Store, StoreExt, Versioned,
};

/// The control: a decorator that only forwards. Every decorator pays what
/// it pays (a boxed future per call, from `async_trait`); a decorator's own
/// cost is its figure minus this one.
struct Passthrough<S>(S);

#[async_trait]
impl<S: Store> Store for Passthrough<S> {
    fn name(&self) -> &str {
        self.0.name()
    }
    async fn get(&self, key: &str) -> Result<Option<Record>> {
        self.0.get(key).await
    }
    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.0.set(key, record).await
    }
    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.0.create(key, record).await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.0.delete(key).await
    }
    async fn touch(&self, key: &str, at: Option<std::time::SystemTime>) -> Result<bool> {
        self.0.touch(key, at).await
    }
    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        self.0.scan(prefix, cursor, limit).await
    }
    async fn len(&self) -> Result<u64> {
        self.0.len().await
    }
    async fn clear(&self) -> Result<()> {
        self.0.clear().await
    }
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.0.get_versioned(key).await
    }
    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        self.0.set_if(key, record, condition).await
    }
}

const KEY: &str = "sess:0123456789abcdef";

fn record() -> Record {
    Record::expiring_after(vec![7u8; 128], Duration::from_secs(3600))
}

fn healthy_stacks(memory: &MemoryStore) -> Vec<(&'static str, SharedStore)> {
    let m = || memory.clone();
    vec![
        ("memory", m().shared()),
        ("passthrough", Passthrough(m()).shared()),
        ("timeout", m().timeout(Duration::from_secs(1)).shared()),
        ("retry", m().retry(RetryConfig::default()).shared()),
        (
            "circuit_breaker",
            m().circuit_breaker(BreakerConfig::default()).shared(),
        ),
        (
            "circuit_breaker_slow_call",
            m().circuit_breaker(BreakerConfig::default().slow_call(Duration::from_millis(500)))
                .shared(),
        ),
        (
            "fault_injection",
            m().fault_injection(FaultConfig::default().seed(1)).shared(),
        ),
        (
            "timeout_retry_breaker",
            m().timeout(Duration::from_secs(1))
                .retry(RetryConfig::default())
                .circuit_breaker(BreakerConfig::default())
                .shared(),
        ),
    ]
}

const BATCH: u64 = 256;

/// Times `op` (see the module docs for the two modes).
fn measure<F, Fut>(b: &mut Bencher<'_>, rt: &tokio::runtime::Runtime, op: F)
where
    F: Fn() -> Fut,
    Fut: Future,
{
    let min_of_batches = std::env::var_os("BENCH_MIN_OF_BATCHES").is_some();
    b.to_async(rt).iter_custom(|iters| {
        let op = &op;
        async move {
            if !min_of_batches {
                let t0 = Instant::now();
                for _ in 0..iters {
                    black_box(op().await);
                }
                return t0.elapsed();
            }
            let mut best = Duration::MAX;
            let mut done = 0;
            while done < iters {
                let n = BATCH.min(iters - done);
                let t0 = Instant::now();
                for _ in 0..n {
                    black_box(op().await);
                }
                best = best.min(t0.elapsed() / n as u32);
                done += n;
            }
            best.mul_f64(iters as f64)
        }
    });
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let memory = MemoryStore::new();
    rt.block_on(memory.set(KEY, record())).unwrap();

    let mut group = c.benchmark_group("healthy_get");
    for (name, store) in healthy_stacks(&memory) {
        group.bench_function(name, |b| {
            measure(b, &rt, || async { store.get(KEY).await.unwrap() })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("healthy_set");
    for (name, store) in healthy_stacks(&memory) {
        group.bench_function(name, |b| {
            measure(b, &rt, || async { store.set(KEY, record()).await.unwrap() })
        });
    }
    group.finish();

    // Open by failures (the common case: the clock is read to see whether
    // the open period is over) and forced open.
    let mut group = c.benchmark_group("breaker_open_fail_fast");
    let down = rt.block_on(async {
        MemoryStore::new().fault_injection(FaultConfig::default().seed(1).down(true))
    });
    let open = down.circuit_breaker(
        BreakerConfig::default()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(3600), Duration::from_secs(3600)),
    );
    assert!(rt.block_on(open.get(KEY)).is_err());
    assert!(open.handle().is_failing_fast());
    group.bench_function("open", |b| {
        measure(b, &rt, || async { open.get(KEY).await.unwrap_err() })
    });
    let forced = memory.clone().circuit_breaker(BreakerConfig::default());
    forced.handle().force_open();
    group.bench_function("forced_open", |b| {
        measure(b, &rt, || async { forced.get(KEY).await.unwrap_err() })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
