//! The conformance suite over RedisStore on a real 3-primary Redis
//! Cluster that this test binary starts itself (`redis-server
//! --cluster-enabled yes` on free loopback ports, joined with `redis-cli
//! --cluster create`). The cluster is shared by the cases (each has its
//! own key prefix) and dies with the test process.

use storestack::limits::{Limits, MAX_KEY_LEN};
use storestack::{Record, ScanCursor, Store, StoreExt};
use storestack_redis::fred::interfaces::ClusterInterface;
use storestack_redis::{RedisConfig, RedisStore};
use storestack_testkit::{conformance_suite, server_missing, Fixture};
use storestack_tests::redis::{connect_or_skip, shared_cluster, unique_prefix};

const MAX_VALUE: usize = 2 * 1024 * 1024;

async fn store(tag: &str) -> Option<RedisStore> {
    let cluster = match shared_cluster().await {
        Ok(cluster) => cluster,
        Err(e) => {
            server_missing("a redis cluster of redis-server processes", &e);
            return None;
        }
    };
    let config = RedisConfig::cluster(cluster.urls())
        .key_prefix(format!("{}:", unique_prefix(tag)))
        .max_value_len(MAX_VALUE);
    connect_or_skip(config, "the test redis cluster").await
}

async fn bare() -> Option<Fixture> {
    let store = store("cluster").await?;
    Some(Fixture::real_time(store).limits(Limits::default().max_value_len(MAX_VALUE)))
}

async fn namespaced() -> Option<Fixture> {
    let store = store("cluster-ns").await?;
    store
        .set("other:k", Record::never_expiring("neighbour"))
        .await
        .expect("neighbour write");
    Some(
        Fixture::real_time(store.namespaced("app:"))
            .limits(Limits::default().max_value_len(MAX_VALUE))
            .max_key_len(MAX_KEY_LEN - "app:".len()),
    )
}

conformance_suite!(redis_cluster, bare());
conformance_suite!(redis_cluster_namespaced, namespaced());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_spread_over_every_primary_and_scan_visits_each() {
    let Some(store) = store("spread").await else {
        return;
    };
    let primaries = store
        .pool()
        .next()
        .cached_cluster_state()
        .expect("cluster state")
        .unique_primary_nodes();
    assert_eq!(primaries.len(), 3);
    for i in 0..100 {
        store
            .set(&format!("k{i}"), Record::never_expiring("v"))
            .await
            .unwrap();
    }
    // Walk page by page and note which node each cursor names.
    let mut nodes = std::collections::BTreeSet::new();
    let mut keys = 0;
    let mut cursor = ScanCursor::start();
    loop {
        let page = store.scan("", cursor, 1000).await.unwrap();
        keys += page.keys.len();
        match page.next {
            Some(next) => {
                let token = next.token().unwrap().to_owned();
                let port = token.split(':').nth(1).unwrap().to_owned();
                nodes.insert(port);
                cursor = next;
            }
            None => break,
        }
    }
    assert_eq!(keys, 100);
    // The scan starts on the first node without naming it; the other two
    // must appear in the cursors (and all 100 keys, spread over three
    // nodes, were found).
    assert!(nodes.len() >= 2, "{nodes:?}");
    assert_eq!(store.len().await.unwrap(), 100);
    store.clear().await.unwrap();
    assert_eq!(store.len().await.unwrap(), 0);
}
