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
use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use storestack::bytes::Bytes;
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
    value: Bytes,
    next: AtomicU64,
    fresh: AtomicU64,
}

fn setup() -> Option<Setup> {
    let Ok(url) = std::env::var("STORESTACK_MONGODB_URL") else {
        eprintln!("STORESTACK_MONGODB_URL is not set: skipping the MongoDB bench");
        return None;
    };
    // One thread runs the calls and the drivers' background tasks, so its
    // CPU time is the client's whole CPU cost.
    let rt = tokio::runtime::Builder::new_current_thread()
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
    let value: Vec<u8> = (0..VALUE_LEN).map(|i| (i * 131 % 251) as u8).collect();
    Some(Setup {
        rt,
        store,
        raw,
        value: value.into(),
        next: AtomicU64::new(0),
        fresh: AtomicU64::new(0),
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

impl Setup {
    fn key(&self, side: &str) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed) % KEYS;
        format!("{side}:{n}")
    }

    fn new_key(&self, side: &str) -> String {
        let n = self.fresh.fetch_add(1, Ordering::Relaxed);
        format!("{side}:new:{n}")
    }

    fn record(&self) -> Record {
        Record::expiring_after(self.value.clone(), TTL)
    }

    async fn run(&self, op: &str, side: Side) {
        match (op, side) {
            ("get", Side::Raw) => {
                let filter = doc! { "_id": self.key("r") };
                let d = self.raw.find_one(filter).await.unwrap().unwrap();
                assert_eq!(d.get_binary(VALUE_FIELD).unwrap().bytes.len(), VALUE_LEN);
            }
            ("get", Side::Store) => {
                let r = self.store.get(&self.key("s")).await.unwrap().unwrap();
                assert_eq!(r.value.len(), VALUE_LEN);
            }
            ("set", Side::Raw) => {
                let d = raw_doc(None, &self.value, SystemTime::now() + TTL);
                self.raw
                    .replace_one(doc! { "_id": self.key("r") }, d)
                    .upsert(true)
                    .await
                    .unwrap();
            }
            ("set", Side::Store) => {
                self.store.set(&self.key("s"), self.record()).await.unwrap();
            }
            ("create", Side::Raw) => {
                let id = self.new_key("r");
                let d = raw_doc(Some(&id), &self.value, SystemTime::now() + TTL);
                self.raw.insert_one(d).await.unwrap();
            }
            ("create", Side::Store) => {
                let key = self.new_key("s");
                assert!(self.store.create(&key, self.record()).await.unwrap());
            }
            _ => unreachable!("unknown op {op}"),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Raw,
    Store,
}

const OPS: [&str; 3] = ["get", "set", "create"];

fn bench(c: &mut Criterion) {
    let Some(s) = setup() else { return };
    // The same keys on both sides: "s:" through the store, "r:" raw.
    s.rt.block_on(async {
        for i in 0..KEYS {
            s.store.set(&format!("s:{i}"), s.record()).await.unwrap();
            let d = raw_doc(None, &s.value, SystemTime::now() + TTL);
            s.raw
                .replace_one(doc! { "_id": format!("r:{i}") }, d)
                .upsert(true)
                .await
                .unwrap();
        }
    });
    for op in OPS {
        let mut g = c.benchmark_group(format!("{op}_2k"));
        for (name, side) in [("raw", Side::Raw), ("storestack", Side::Store)] {
            g.bench_function(name, |b| b.to_async(&s.rt).iter(|| s.run(op, side)));
        }
        g.finish();
    }
    if std::env::args().any(|a| a == "--bench") {
        alternating(&s);
    }
    s.rt.block_on(async { s.store.collection().drop().await.unwrap() });
}

/// Criterion measures one side after the other, so load that changes
/// between the two (a shared machine) skews their ratio. This measures
/// both in alternating short batches and reports the median of the
/// per-batch ratios, which such drift does not move, and the client CPU
/// time per call (of the one runtime thread), which other processes'
/// load hardly moves at all.
fn alternating(s: &Setup) {
    const ROUNDS: usize = 60;
    const BATCH: u32 = 100;
    let time = |op: &'static str, side: Side| {
        s.rt.block_on(async {
            let (t, cpu) = (Instant::now(), thread_cpu_ns());
            for _ in 0..BATCH {
                s.run(op, side).await;
            }
            (
                t.elapsed() / BATCH,
                (thread_cpu_ns() - cpu) / u64::from(BATCH),
            )
        })
    };
    for op in OPS {
        let mut ratios = Vec::new();
        let (mut raw_wall, mut store_wall, mut raw_cpu, mut store_cpu) =
            (Duration::ZERO, Duration::ZERO, 0, 0);
        for round in 0..ROUNDS {
            let (raw, store) = if round % 2 == 0 {
                let raw = time(op, Side::Raw);
                (raw, time(op, Side::Store))
            } else {
                let store = time(op, Side::Store);
                (time(op, Side::Raw), store)
            };
            raw_wall += raw.0;
            store_wall += store.0;
            raw_cpu += raw.1;
            store_cpu += store.1;
            ratios.push(store.0.as_secs_f64() / raw.0.as_secs_f64());
        }
        ratios.sort_by(f64::total_cmp);
        let per_op = |d: Duration| d.as_secs_f64() * 1e6 / ROUNDS as f64;
        let cpu = |ns: u64| ns as f64 / 1e3 / ROUNDS as f64;
        println!(
            "alternating {op}_2k: wall raw {:.1} us, storestack {:.1} us, median ratio {:.3}; \
             client cpu raw {:.1} us, storestack {:.1} us, ratio {:.3} ({ROUNDS} rounds of {BATCH})",
            per_op(raw_wall),
            per_op(store_wall),
            ratios[ROUNDS / 2],
            cpu(raw_cpu),
            cpu(store_cpu),
            store_cpu as f64 / raw_cpu as f64,
        );
    }
}

/// CPU time of the calling thread, in nanoseconds (Linux; 0 elsewhere).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
