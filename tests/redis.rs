//! The conformance suite over RedisStore on the shared server
//! (`STORESTACK_REDIS_URL`, default `redis://127.0.0.1:6379`), bare and
//! behind Namespaced, plus what only Redis can show: the native
//! expiry, prefix isolation inside one database, error mapping.
//!
//! Every fixture has its own key prefix, so the cases run in parallel on
//! one database next to other users' keys.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use storestack::limits::{Limits, MAX_KEY_LEN};
use storestack::{ErrorKind, Record, ScanCursor, Store, StoreExt};
use storestack_redis::fred::interfaces::{ClientLike, KeysInterface};
use storestack_redis::fred::types::{CustomCommand, Value};
use storestack_redis::RedisStore;
use storestack_testkit::{conformance_suite, Fixture};
use storestack_tests::redis::shared_store;

/// Small enough that the oversized-value case stays fast, large enough
/// for the 1 MiB case.
const MAX_VALUE: usize = 2 * 1024 * 1024;

async fn store(tag: &str) -> Option<RedisStore> {
    shared_store(tag, |c| c.max_value_len(MAX_VALUE)).await
}

async fn bare() -> Option<Fixture> {
    let store = store("bare").await?;
    Some(Fixture::real_time(store).limits(Limits::default().max_value_len(MAX_VALUE)))
}

async fn namespaced() -> Option<Fixture> {
    let store = store("ns").await?;
    // A neighbour in the same store must stay invisible to the suite.
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

conformance_suite!(redis_bare, bare());
conformance_suite!(redis_namespaced, namespaced());

/// Runs a raw command on the store's own pool.
async fn raw(store: &RedisStore, cmd: &'static str, args: Vec<Value>) -> Value {
    store
        .pool()
        .custom(CustomCommand::new_static(cmd, None, false), args)
        .await
        .expect(cmd)
}

#[tokio::test]
async fn expiry_is_native_and_absolute() {
    let Some(store) = store("native").await else {
        return;
    };
    let at = UNIX_EPOCH + Duration::from_millis(32_503_680_000_123); // year 3000
    store.set("k", Record::expiring_at("v", at)).await.unwrap();
    let full = format!("{}k", store.key_prefix());
    let ms: i64 = store.pool().pexpire_time(&full).await.unwrap();
    assert_eq!(ms, 32_503_680_000_123);
    assert_eq!(store.get("k").await.unwrap().unwrap().expires_at, Some(at));

    // touch rewrites the expiry only.
    let later = at + Duration::from_secs(1);
    assert!(store.touch("k", Some(later)).await.unwrap());
    let ms: i64 = store.pool().pexpire_time(&full).await.unwrap();
    assert_eq!(ms, 32_503_680_001_123);
    assert!(store.touch("k", None).await.unwrap());
    let ms: i64 = store.pool().pexpire_time(&full).await.unwrap();
    assert_eq!(ms, -1, "PERSIST removed the expiry");
}

#[tokio::test]
async fn touch_none_reports_a_key_without_expiry() {
    let Some(store) = store("persist").await else {
        return;
    };
    store.set("k", Record::never_expiring("v")).await.unwrap();
    // PERSIST alone answers 0 here; the store must still say the key exists.
    assert!(store.touch("k", None).await.unwrap());
    assert!(!store.touch("missing", None).await.unwrap());
    assert_eq!(store.get("k").await.unwrap().unwrap().expires_at, None);
}

#[tokio::test]
async fn past_expiry_writes_remove_and_create_nothing() {
    let Some(store) = store("past").await else {
        return;
    };
    let past = SystemTime::now() - Duration::from_secs(5);
    assert!(store
        .create("k", Record::expiring_at("v", past))
        .await
        .unwrap());
    assert_eq!(store.len().await.unwrap(), 0);
    store.set("k", Record::never_expiring("v")).await.unwrap();
    assert!(!store
        .create("k", Record::expiring_at("w", past))
        .await
        .unwrap());
    assert!(
        store.touch("k", Some(past)).await.unwrap(),
        "touch saw the live key"
    );
    let full = format!("{}k", store.key_prefix());
    let exists: i64 = store.pool().exists(&full).await.unwrap();
    assert_eq!(exists, 0, "touch into the past deleted the key");
}

#[tokio::test]
async fn stores_with_different_prefixes_share_a_database_safely() {
    let (Some(a), Some(b)) = (store("iso-a").await, store("iso-b").await) else {
        return;
    };
    for i in 0..30 {
        a.set(&format!("k{i}"), Record::never_expiring("a"))
            .await
            .unwrap();
    }
    b.set("k0", Record::never_expiring("b")).await.unwrap();
    // A foreign key that a glob-unescaped prefix would match.
    let lookalike = a.key_prefix().replace(['[', '*', '?', '\\', ']'], "x") + "k0";
    let _: () = a
        .pool()
        .set(&lookalike, "foreign", None, None, false)
        .await
        .unwrap();

    assert_eq!(a.len().await.unwrap(), 30);
    assert_eq!(b.len().await.unwrap(), 1);
    a.clear().await.unwrap();
    assert_eq!(a.len().await.unwrap(), 0);
    assert_eq!(b.get("k0").await.unwrap().unwrap().value, "b");
    let foreign: Option<String> = a.pool().get(&lookalike).await.unwrap();
    assert_eq!(
        foreign.as_deref(),
        Some("foreign"),
        "clear stayed in its prefix"
    );
    let _: i64 = a.pool().del(&lookalike).await.unwrap();
    b.clear().await.unwrap();
}

#[tokio::test]
async fn scan_pages_are_bounded_and_resumable() {
    let Some(store) = store("scan").await else {
        return;
    };
    for i in 0..50 {
        store
            .set(&format!("k{i:02}"), Record::never_expiring("v"))
            .await
            .unwrap();
    }
    let page = store.scan("", ScanCursor::start(), 5).await.unwrap();
    assert!(
        page.keys.len() <= 20,
        "COUNT 5 gave {} keys",
        page.keys.len()
    );
    let next = page.next.expect("more pages");
    assert!(
        next.token().unwrap().parse::<u64>().is_ok(),
        "standalone cursor is SCAN's"
    );
    let err = store
        .scan("", ScanCursor::from_token("not-a-cursor"), 5)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    store.clear().await.unwrap();
}

#[tokio::test]
async fn a_non_string_value_is_corrupt_not_an_outage() {
    let Some(store) = store("wrongtype").await else {
        return;
    };
    let full = format!("{}list", store.key_prefix());
    raw(&store, "RPUSH", vec![full.as_str().into(), "x".into()]).await;
    let err = store.get("list").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err:?}");
    assert!(!err.is_transient());
    assert!(
        std::error::Error::source(&err).is_some(),
        "fred error kept as source"
    );
    store.clear().await.unwrap();
}

#[tokio::test]
async fn connection_refused_is_unavailable_and_prompt() {
    let port = storestack_tests::redis::free_port();
    let config = storestack_redis::RedisConfig::new(format!("redis://127.0.0.1:{port}"))
        .connect_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let err = RedisStore::connect(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
