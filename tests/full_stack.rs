//! The conditional-write cases of the conformance suite over the README's
//! full stack on real servers: `Instrumented → Cached → Compressed →
//! Encrypted → Fallback(CircuitBreaker(Retry(Timeout(redis))),
//! Timeout(mongodb))`. Each case gets fresh key spaces (a Redis prefix, a
//! MongoDB collection). Skipped (loudly; failed under `CI=true`) without
//! the servers.

use std::time::Duration;

use storestack::{CacheConfig, Key, Keyring, RetryConfig, StoreExt};
use storestack_redis::RedisConfig;
use storestack_testkit::Fixture;
use storestack_tests::{mongo, redis};

async fn full_stack() -> Option<Fixture> {
    let redis = redis::shared_store("full", |c: RedisConfig| c).await?;
    let mongo = mongo::connect_or_skip(mongo::config("full_stack")).await?;
    let keyring = Keyring::new(Key::generate("k1").expect("key"));
    let fallback = redis
        .timeout(Duration::from_millis(500))
        .retry(RetryConfig::default())
        .circuit_breaker(storestack::BreakerConfig::default())
        .with_fallback(mongo.timeout(Duration::from_secs(2)));
    let max_key_len = fallback.max_key_len();
    let store = fallback
        .encrypted(keyring)
        .compressed(storestack::CompressedLayer::zstd(3))
        .cached(CacheConfig::default())
        .instrumented("full-stack");
    Some(Fixture::real_time(store).max_key_len(max_key_len))
}

storestack_testkit::__conformance_tests!(
    full_stack();
    get_versioned_reads_like_get,
    set_if_matches_only_the_version_read,
    set_if_never_creates,
    set_if_treats_expired_as_absent,
    set_if_exists_replaces_value_and_expiry,
    touch_keeps_version_and_past_set_if_removes,
    concurrent_set_ifs_admit_one_per_round,
    set_if_loops_lose_no_update,
    concurrent_creates_on_one_key_admit_one,
);
