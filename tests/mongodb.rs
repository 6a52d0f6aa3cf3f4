//! MongoStore against a real server (`STORESTACK_MONGODB_URL`, default
//! 127.0.0.1:27017): the conformance suite, then what is particular to
//! MongoDB (expired documents the TTL monitor has not swept, the document
//! layout, the TTL index, foreign documents).

use std::sync::Arc;
use std::time::Duration;

use storestack::clock::MockClock;
use storestack::{ErrorKind, Record, Store};
use storestack_mongodb::mongodb::bson::{doc, Bson, Document};
use storestack_mongodb::{MongoConfig, MongoStore, EXPIRES_FIELD, TTL_INDEX_NAME, VALUE_FIELD};
use storestack_testkit::conformance_suite;
use storestack_tests::mongo;

conformance_suite!(mongodb_conformance, storestack_tests::mongo::fixture());

/// A store whose clock the test moves, so a document is expired for the
/// store long before the server's TTL monitor may sweep it.
async fn store_with_mock_clock(tag: &str) -> Option<(MongoStore, MockClock)> {
    let clock = MockClock::new();
    let store = mongo::connect_or_skip(mongo::config(tag).clock(clock.clone())).await?;
    Some((store, clock))
}

/// Raw documents of a store's collection, for checking what is stored.
fn raw(store: &MongoStore) -> storestack_mongodb::mongodb::Collection<Document> {
    store.collection().clone_with_type()
}

async fn scan_all(store: &dyn Store, prefix: &str) -> Vec<String> {
    storestack_testkit::cases::scan_all(store, prefix, 3).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_unswept_document_is_invisible_and_does_not_block_create() {
    let Some((store, clock)) = store_with_mock_clock("unswept").await else {
        return;
    };
    let ttl = Duration::from_secs(60);
    store
        .set("old", Record::expiring_at("stale", clock.now_plus(ttl)))
        .await
        .unwrap();
    store
        .set("keep", Record::never_expiring("live"))
        .await
        .unwrap();
    // For the store, "old" is now two minutes past its expiry; for the
    // server it has a minute to live, so no TTL pass can have removed it.
    clock.advance(ttl * 3);
    assert_eq!(raw(&store).count_documents(doc! {}).await.unwrap(), 2);

    assert_eq!(store.get("old").await.unwrap(), None);
    assert_eq!(store.len().await.unwrap(), 1);
    assert_eq!(scan_all(&store, "").await, ["keep"]);
    assert!(!store.touch("old", None).await.unwrap(), "touch revived it");
    assert!(store.get("old").await.unwrap().is_none());

    // The expired document is still stored, and must not block create.
    assert!(store
        .create("old", Record::expiring_at("fresh", clock.now_plus(ttl)))
        .await
        .unwrap());
    let got = store.get("old").await.unwrap().expect("created record");
    assert_eq!(got.value, "fresh");
    assert!(!store
        .create("old", Record::never_expiring("again"))
        .await
        .unwrap());

    // delete of an expired document says "not live" but reclaims it.
    store
        .set("gone", Record::expiring_at("v", clock.now_plus(ttl)))
        .await
        .unwrap();
    clock.advance(ttl * 2);
    assert!(!store.delete("gone").await.unwrap());
    let left = raw(&store)
        .count_documents(doc! { "_id": "gone" })
        .await
        .unwrap();
    assert_eq!(left, 0, "delete left the expired document");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_over_an_expired_document_admit_one() {
    let Some((store, clock)) = store_with_mock_clock("create_race").await else {
        return;
    };
    storestack_tests::creates_over_an_expired_record_admit_one(Arc::new(store), &clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_have_the_documented_layout() {
    let Some(store) = mongo::connect_or_skip(mongo::config("layout")).await else {
        return;
    };
    let at = std::time::UNIX_EPOCH + Duration::from_millis(4_102_444_800_123);
    store
        .set("dated", Record::expiring_at(&b"\x00\xff"[..], at))
        .await
        .unwrap();
    store
        .set("forever", Record::never_expiring("v"))
        .await
        .unwrap();
    let dated = raw(&store)
        .find_one(doc! { "_id": "dated" })
        .await
        .unwrap()
        .unwrap();
    match dated.get(VALUE_FIELD) {
        Some(Bson::Binary(b)) => assert_eq!(b.bytes, [0x00, 0xff]),
        other => panic!("value stored as {other:?}"),
    }
    match dated.get(EXPIRES_FIELD) {
        Some(Bson::DateTime(d)) => assert_eq!(d.timestamp_millis(), 4_102_444_800_123),
        other => panic!("expiry stored as {other:?}"),
    }
    let forever = raw(&store)
        .find_one(doc! { "_id": "forever" })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(forever.get(EXPIRES_FIELD), Some(&Bson::Null));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_index_is_created_once_and_reconnecting_is_harmless() {
    let config = mongo::config("ttl_index");
    let Some(first) = mongo::connect_or_skip(config.clone()).await else {
        return;
    };
    let second = MongoStore::connect(config).await.expect("second connect");
    let mut ttl_indexes = Vec::new();
    let mut cursor = second.collection().list_indexes().await.unwrap();
    while cursor.advance().await.unwrap() {
        let index = cursor.deserialize_current().unwrap();
        if index.keys == doc! { EXPIRES_FIELD: 1 } {
            let options = index.options.unwrap();
            assert_eq!(options.expire_after, Some(Duration::ZERO));
            ttl_indexes.push(options.name.unwrap());
        }
    }
    assert_eq!(ttl_indexes, [TTL_INDEX_NAME]);
    first.set("k", Record::never_expiring("v")).await.unwrap();
    assert!(second.get("k").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_expiry_index_is_refused_at_connect() {
    let config = mongo::config("index_conflict");
    let Some(store) = mongo::connect_or_skip(config.clone()).await else {
        return;
    };
    store
        .collection()
        .drop_index(TTL_INDEX_NAME)
        .await
        .expect("drop index");
    // The same name, another expiry: the server refuses to create ours.
    let options = storestack_mongodb::mongodb::options::IndexOptions::builder()
        .name(TTL_INDEX_NAME.to_owned())
        .expire_after(Duration::from_secs(3600))
        .build();
    let other = storestack_mongodb::mongodb::IndexModel::builder()
        .keys(doc! { EXPIRES_FIELD: 1 })
        .options(options)
        .build();
    store.collection().create_index(other).await.unwrap();
    let err = MongoStore::connect(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_documents_are_errors_not_panics() {
    let Some(store) = mongo::connect_or_skip(mongo::config("foreign")).await else {
        return;
    };
    let docs = [
        doc! { "_id": "text", VALUE_FIELD: "not binary", EXPIRES_FIELD: Bson::Null },
        doc! { "_id": "when", VALUE_FIELD: Bson::Binary(storestack_mongodb::mongodb::bson::Binary { subtype: storestack_mongodb::mongodb::bson::spec::BinarySubtype::Generic, bytes: vec![1] }), EXPIRES_FIELD: "soon" },
        doc! { "_id": 42, VALUE_FIELD: "numeric id" },
    ];
    raw(&store).insert_many(docs).await.unwrap();
    assert_eq!(
        store.get("text").await.unwrap_err().kind(),
        ErrorKind::Corrupt
    );
    assert_eq!(
        store.get("when").await.unwrap_err().kind(),
        ErrorKind::Corrupt
    );
    // Scans see string ids only, and an expiry that is not a date is not
    // live.
    assert_eq!(scan_all(&store, "").await, ["text"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_prefixes_scan_exactly_their_keys() {
    let Some(store) = mongo::connect_or_skip(mongo::config("unicode_scan")).await else {
        return;
    };
    storestack_tests::unicode_prefixes_scan_exactly_their_keys(&store).await;
}

#[tokio::test]
async fn an_oversized_value_limit_is_refused_before_connecting() {
    let config = MongoConfig::new("mongodb://127.0.0.1:1/").max_value_len(16 * 1024 * 1024);
    let err = MongoStore::connect(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

trait NowPlus {
    fn now_plus(&self, d: Duration) -> std::time::SystemTime;
}

impl NowPlus for MockClock {
    fn now_plus(&self, d: Duration) -> std::time::SystemTime {
        storestack::clock::Clock::now(self) + d
    }
}
