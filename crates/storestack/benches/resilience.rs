#![allow(missing_docs)]
//! Overhead of the resilience decorators over a bare MemoryStore in the
//! healthy state (one `get` / `set` of a 128-byte value on a present key,
//! single-threaded), and the latency of a call failed fast by an open
//! circuit breaker. The overhead of a decorator is its figure minus the
//! `memory` figure.
//!
//! ```sh
//! cargo bench -p storestack --bench resilience -- --measurement-time 2 --warm-up-time 1
//! ```

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use storestack::layers::fault::FaultConfig;
use storestack::{BreakerConfig, MemoryStore, Record, RetryConfig, SharedStore, Store, StoreExt};

const KEY: &str = "sess:0123456789abcdef";

fn record() -> Record {
    Record::expiring_after(vec![7u8; 128], Duration::from_secs(3600))
}

fn healthy_stacks(memory: &MemoryStore) -> Vec<(&'static str, SharedStore)> {
    let m = || memory.clone();
    vec![
        ("memory", m().shared()),
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
            b.to_async(&rt)
                .iter(|| async { black_box(store.get(KEY).await.unwrap()) })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("healthy_set");
    for (name, store) in healthy_stacks(&memory) {
        group.bench_function(name, |b| {
            b.to_async(&rt)
                .iter(|| async { store.set(KEY, record()).await.unwrap() })
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
        b.to_async(&rt)
            .iter(|| async { black_box(open.get(KEY).await.unwrap_err()) })
    });
    let forced = memory.clone().circuit_breaker(BreakerConfig::default());
    forced.handle().force_open();
    group.bench_function("forced_open", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(forced.get(KEY).await.unwrap_err()) })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
