//! The conformance suite over the Cached and Instrumented decorators: they
//! change no semantics of the store below them.

use std::time::Duration;

use storestack::clock::MockClock;
use storestack::{CacheConfig, LocalInvalidator, MemoryConfig, MemoryStore, StoreExt};
use storestack_testkit::{conformance_suite, Fixture};

fn memory(clock: MockClock) -> MemoryStore {
    MemoryStore::with_config(MemoryConfig::default().clock(clock))
}

async fn cached() -> Option<Fixture> {
    Some(Fixture::with_mock_clock(|clock| {
        memory(clock.clone()).cached(CacheConfig::default().clock(clock))
    }))
}

/// Every option on: negative caching, serve-stale, an invalidation channel
/// shared with a second instance over the same store.
async fn cached_all_options() -> Option<Fixture> {
    Some(Fixture::with_mock_clock(|clock| {
        let config = CacheConfig::default()
            .max_entries(1000)
            .negative_ttl(Some(Duration::from_secs(1)))
            .serve_stale(Some(Duration::from_secs(60)))
            .invalidator(LocalInvalidator::new())
            .clock(clock.clone());
        let shared = memory(clock);
        let _neighbour = shared.clone().cached(config.clone());
        shared.cached(config)
    }))
}

async fn instrumented() -> Option<Fixture> {
    Some(Fixture::with_mock_clock(|clock| {
        memory(clock).instrumented("conformance")
    }))
}

/// The fluent order of the design: instrumented outside cached.
async fn instrumented_cached() -> Option<Fixture> {
    Some(Fixture::with_mock_clock(|clock| {
        memory(clock.clone())
            .cached(CacheConfig::default().clock(clock))
            .instrumented("sessions")
    }))
}

conformance_suite!(cached_memory, cached());
conformance_suite!(cached_memory_all_options, cached_all_options());
conformance_suite!(instrumented_memory, instrumented());
conformance_suite!(instrumented_cached_memory, instrumented_cached());
