#![allow(missing_docs)] // criterion_group! generates undocumented items
//! get / set / create of 2 KiB values through `MongoStore` and through the
//! raw driver (a second `Client` with the same options, on the same
//! collection, so the same TTL index), side by side against one server.
//! The raw side uses the driver's fastest path, raw BSON documents
//! (`RawDocumentBuf`), so the difference is what the store adds.
//!
//! ```sh
//! eval "$(scripts/mongo.sh start)"
//! cargo bench -p storestack-mongodb --bench mongodb
//! scripts/mongo.sh stop
//! ```
//!
//! Without `STORESTACK_MONGODB_URL` the bench says so and does nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use storestack::{Record, Store};
use storestack_mongodb::mongodb::bson::raw::RawBinaryRef;
use storestack_mongodb::mongodb::bson::{doc, spec::BinarySubtype, DateTime, RawDocumentBuf};
use storestack_mongodb::mongodb::{Client, Collection};
use storestack_mongodb::{MongoConfig, MongoStore, EXPIRES_FIELD, VALUE_FIELD};

const VALUE_LEN: usize = 2048;
const KEYS: u64 = 1000;
const TTL: Duration = Duration::from_secs(3600);

struct Setup {
    rt: tokio::runtime::Runtime,
    store: MongoStore,
    raw: Collection<RawDocumentBuf>,
    value: Vec<u8>,
}

fn setup() -> Option<Setup> {
    let Ok(url) = std::env::var("STORESTACK_MONGODB_URL") else {
        eprintln!("STORESTACK_MONGODB_URL is not set: skipping the MongoDB bench");
        return None;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let config = MongoConfig::new(url)
        .database("storestack_bench")
        .collection(format!("bench_{}", std::process::id()));
    let (store, raw) = rt.block_on(async {
        let store = MongoStore::connect(config.clone()).await.expect("connect");
        store.clear().await.unwrap();
        let client = Client::with_options(config.client_options().await.unwrap()).unwrap();
        let raw = client
            .database(&config.database)
            .collection::<RawDocumentBuf>(&config.collection);
        (store, raw)
    });
    let value = (0..VALUE_LEN).map(|i| (i * 131 % 251) as u8).collect();
    Some(Setup {
        rt,
        store,
        raw,
        value,
    })
}

fn raw_doc(id: Option<&str>, value: &[u8], at: SystemTime) -> RawDocumentBuf {
    let mut d = RawDocumentBuf::new();
    if let Some(id) = id {
        d.append("_id", id);
    }
    let bytes = RawBinaryRef {
        subtype: BinarySubtype::Generic,
        bytes: value,
    };
    d.append_ref(VALUE_FIELD, bytes);
    d.append(EXPIRES_FIELD, DateTime::from_system_time(at));
    d
}

fn bench(c: &mut Criterion) {
    let Some(s) = setup() else { return };
    let Setup {
        rt,
        store,
        raw,
        value,
    } = &s;
    let value_bytes = storestack::bytes::Bytes::copy_from_slice(value);
    // Same keys for both sides: "s:" through the store, "r:" raw.
    rt.block_on(async {
        for i in 0..KEYS {
            let r = Record::expiring_after(value_bytes.clone(), TTL);
            store.set(&format!("s:{i}"), r).await.unwrap();
            let d = raw_doc(None, value, SystemTime::now() + TTL);
            raw.replace_one(doc! { "_id": format!("r:{i}") }, d)
                .upsert(true)
                .await
                .unwrap();
        }
    });
    let next = AtomicU64::new(0);
    let key = |side: &str| format!("{side}:{}", next.fetch_add(1, Ordering::Relaxed) % KEYS);
    let fresh = AtomicU64::new(0);
    let new_key = |side: &str| format!("{side}:new:{}", fresh.fetch_add(1, Ordering::Relaxed));

    let mut g = c.benchmark_group("get_2k");
    g.bench_function(BenchmarkId::new("raw", "find_one"), |b| {
        b.to_async(rt).iter(|| async {
            let d = raw
                .find_one(doc! { "_id": key("r") })
                .await
                .unwrap()
                .unwrap();
            assert_eq!(d.get_binary(VALUE_FIELD).unwrap().bytes.len(), VALUE_LEN);
        })
    });
    g.bench_function(BenchmarkId::new("storestack", "get"), |b| {
        b.to_async(rt).iter(|| async {
            let r = store.get(&key("s")).await.unwrap().unwrap();
            assert_eq!(r.value.len(), VALUE_LEN);
        })
    });
    g.finish();

    let mut g = c.benchmark_group("set_2k");
    g.bench_function(BenchmarkId::new("raw", "replace_one_upsert"), |b| {
        b.to_async(rt).iter(|| async {
            let d = raw_doc(None, value, SystemTime::now() + TTL);
            raw.replace_one(doc! { "_id": key("r") }, d)
                .upsert(true)
                .await
                .unwrap();
        })
    });
    g.bench_function(BenchmarkId::new("storestack", "set"), |b| {
        b.to_async(rt).iter(|| async {
            let r = Record::expiring_after(value_bytes.clone(), TTL);
            store.set(&key("s"), r).await.unwrap();
        })
    });
    g.finish();

    let mut g = c.benchmark_group("create_2k");
    g.bench_function(BenchmarkId::new("raw", "insert_one"), |b| {
        b.to_async(rt).iter(|| async {
            let d = raw_doc(Some(&new_key("r")), value, SystemTime::now() + TTL);
            raw.insert_one(d).await.unwrap();
        })
    });
    g.bench_function(BenchmarkId::new("storestack", "create"), |b| {
        b.to_async(rt).iter(|| async {
            let r = Record::expiring_after(value_bytes.clone(), TTL);
            assert!(store.create(&new_key("s"), r).await.unwrap());
        })
    });
    g.finish();

    rt.block_on(async { store.collection().drop().await.unwrap() });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
