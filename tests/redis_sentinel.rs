//! The conformance suite over RedisStore reaching its primary through
//! Redis Sentinel: a primary and a sentinel that this test binary starts
//! itself, shared by the cases (each has its own key prefix).

use storestack::limits::Limits;
use storestack_redis::{RedisConfig, RedisStore, Topology};
use storestack_testkit::{conformance_suite, server_missing, Fixture};
use storestack_tests::redis::{connect_or_skip, shared_sentinel, unique_prefix, Sentinel};

const MAX_VALUE: usize = 2 * 1024 * 1024;

async fn store() -> Option<RedisStore> {
    let pair = match shared_sentinel().await {
        Ok(pair) => pair,
        Err(e) => {
            server_missing("a redis primary and sentinel of redis-server processes", &e);
            return None;
        }
    };
    let config = RedisConfig::sentinel(
        [format!("redis://127.0.0.1:{}", pair.sentinel.port)],
        Sentinel::SERVICE,
    )
    .key_prefix(format!("{}:", unique_prefix("sentinel")))
    .max_value_len(MAX_VALUE);
    assert!(matches!(config.topology, Topology::Sentinel { .. }));
    connect_or_skip(config, "the test redis sentinel").await
}

async fn fixture() -> Option<Fixture> {
    let store = store().await?;
    Some(Fixture::real_time(store).limits(Limits::default().max_value_len(MAX_VALUE)))
}

conformance_suite!(redis_sentinel, fixture());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_land_on_the_monitored_primary() {
    let Some(store) = store().await else { return };
    let pair = shared_sentinel().await.unwrap();
    storestack::Store::set(&store, "k", storestack::Record::never_expiring("v"))
        .await
        .unwrap();
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &pair.primary.port.to_string(), "get"])
        .arg(format!("{}k", store.key_prefix()))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "v");
}
