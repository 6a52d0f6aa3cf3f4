//! What the benchmarks of whole stacks share: the servers, the stacks under
//! test and the raw clients they are compared with.
//!
//! The benchmarks themselves are in `benches/` (`cargo bench -p
//! storestack-bench`); `BENCHMARKS.md` at the top of the repository gives
//! the method and the figures.
//!
//! # The stack
//!
//! [`full_stack`] builds, from the outside in,
//! `Instrumented → Cached → Compressed → Encrypted →
//! Fallback(CircuitBreaker(Timeout(Redis)), CircuitBreaker(Timeout(Mongo)))`.
//! Compression sits *outside* encryption (ciphertext does not compress),
//! which is the order `storestack::layer` documents.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use storestack::bytes::Bytes;
use storestack::layers::fallback::JournalCheck;
use storestack::{
    BreakerConfig, CacheConfig, Codec, Fallback, FallbackConfig, Key, Keyring, Record, Store,
    StoreError, StoreExt,
};
use storestack_mongodb::mongodb::bson::raw::RawBinaryRef;
use storestack_mongodb::mongodb::bson::spec::BinarySubtype;
use storestack_mongodb::mongodb::bson::{doc, DateTime, RawDocumentBuf};
use storestack_mongodb::mongodb::Collection;
use storestack_mongodb::{MongoConfig, MongoStore, EXPIRES_FIELD, VALUE_FIELD};
use storestack_redis::fred::clients::Pool;
use storestack_redis::fred::interfaces::KeysInterface;
use storestack_redis::fred::types::{Expiration, SetOptions};
use storestack_redis::{RedisConfig, RedisStore};

/// A store behind a trait object, as the benchmarks hold every subject.
pub type DynStore = Arc<dyn Store>;

/// The lifetime of every record written: long enough never to expire
/// during a run, short enough that an interrupted run leaves nothing for
/// long.
pub const TTL: Duration = Duration::from_secs(600);

/// The Redis server: `STORESTACK_REDIS_URL`, default `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    std::env::var("STORESTACK_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// The MongoDB server: `STORESTACK_MONGODB_URL`, if set.
pub fn mongodb_url() -> Option<String> {
    std::env::var("STORESTACK_MONGODB_URL").ok()
}

/// What every benchmark of this crate needs before it starts: the runtime
/// (2 worker threads) and the MongoDB URL. `None`, after saying why, when
/// there is nothing to run: under `cargo test --all-targets`, which runs
/// bench targets without `--bench` (a benchmark that needs servers and
/// minutes has nothing to check there), or without `STORESTACK_MONGODB_URL`.
pub fn start(bench: &str) -> Option<(tokio::runtime::Runtime, String)> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("benchmark only: run it with `cargo bench -p storestack-bench`");
        return None;
    }
    let Some(url) = mongodb_url() else {
        eprintln!(
            "*** SKIPPED: STORESTACK_MONGODB_URL is not set; the {bench} bench needs Redis and \
             MongoDB (eval \"$(scripts/mongo.sh start)\") ***"
        );
        return None;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    Some((rt, url))
}

/// A session-like value of `len` bytes: JSON-ish text with repetition, as
/// sessions are, so that compression has the work it has in production.
pub fn session_value(len: usize, seed: u64) -> Bytes {
    let mut out = String::with_capacity(len + 64);
    let mut i = seed;
    while out.len() < len {
        i = i
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.push_str(&format!(
            "{{\"cart_item\":{},\"sku\":\"SKU-{:08x}\",\"qty\":{},\"seen\":true}},",
            i % 1000,
            i >> 32,
            i % 7
        ));
    }
    out.truncate(len);
    Bytes::from(out)
}

/// A record of `value` that expires [`TTL`] from now.
pub fn record(value: &Bytes) -> Record {
    Record::expiring_after(value.clone(), TTL)
}

/// The key of record `i`: a session ID's length and shape.
pub fn key(i: u64) -> String {
    format!("sess:{i:032x}")
}

/// Connects the Redis backend under `prefix`.
pub async fn redis(prefix: &str) -> Result<RedisStore, StoreError> {
    RedisStore::connect(
        RedisConfig::new(redis_url())
            .key_prefix(prefix)
            .command_timeout(Duration::from_secs(2)),
    )
    .await
}

/// Connects the MongoDB backend to collection `collection`.
pub async fn mongo(url: &str, collection: &str) -> Result<MongoStore, StoreError> {
    MongoStore::connect(
        MongoConfig::new(url)
            .database("storestack_bench")
            .collection(collection)
            .max_pool_size(64),
    )
    .await
}

/// How the stack's cache behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// A normal cache (10 000 entries, 30 s).
    Normal,
    /// A cache that holds nothing (`max_entries(0)`): every read is a miss
    /// that pays the lookup and the load through every layer.
    AlwaysMiss,
}

/// The circuit breaker of each side: five consecutive failures open it,
/// for 1 s at first.
pub fn breaker() -> BreakerConfig {
    BreakerConfig::default()
        .consecutive_failures(5)
        .open_for(Duration::from_secs(1), Duration::from_secs(5))
}

/// The encryption keyring of the stack (a fixed, public benchmark key).
pub fn keyring() -> Keyring {
    Keyring::new(Key::from_bytes("bench", &[7u8; 32]).expect("a 32-byte key"))
}

/// The full stack over `primary` (Redis) and `secondary` (Mongo):
/// `Instrumented → Cached → Compressed → Encrypted → Fallback(...)`.
pub fn full_stack<P: Store, S: Store>(
    primary: P,
    secondary: S,
    cache: CacheMode,
    check: JournalCheck,
    primary_deadline: Duration,
) -> DynStore {
    let fallback = Fallback::with_config(
        primary.timeout(primary_deadline).circuit_breaker(breaker()),
        secondary
            .timeout(Duration::from_millis(500))
            .circuit_breaker(breaker()),
        FallbackConfig::default().journal_check(check),
    );
    let cache = match cache {
        CacheMode::Normal => CacheConfig::default(),
        CacheMode::AlwaysMiss => CacheConfig::default().max_entries(0),
    };
    Arc::new(
        fallback
            .encrypted(keyring())
            .compressed(Codec::Zstd { level: 3 })
            .cached(cache)
            .instrumented("bench"),
    )
}

/// The raw fred calls that do what a session store needs, on a pool of
/// its own: the baseline every ratio is taken against.
#[derive(Debug, Clone)]
pub struct RawFred {
    /// The pool lives as long as the store that owns it.
    _owner: RedisStore,
    pool: Pool,
    prefix: String,
}

impl RawFred {
    /// Raw calls on `store`'s server under `store`'s key prefix, on a pool
    /// of the same size and settings (a second connection of the store's
    /// own configuration).
    pub async fn connect(store: &RedisStore) -> Result<Self, StoreError> {
        let second = RedisStore::connect(store.config().clone()).await?;
        Ok(RawFred {
            pool: second.pool().clone(),
            _owner: second,
            prefix: store.key_prefix().to_owned(),
        })
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// `GET`.
    pub async fn get(&self, key: &str) -> Option<Bytes> {
        self.pool.get(self.full(key)).await.expect("GET")
    }

    /// `SET … PXAT`.
    pub async fn set(&self, key: &str, value: Bytes) {
        let _: () = self
            .pool
            .set(self.full(key), value, Some(pxat()), None, false)
            .await
            .expect("SET");
    }

    /// `SET … NX PXAT`: whether it inserted.
    pub async fn create(&self, key: &str, value: Bytes) -> bool {
        let reply: Option<String> = self
            .pool
            .set(
                self.full(key),
                value,
                Some(pxat()),
                Some(SetOptions::NX),
                false,
            )
            .await
            .expect("SET NX");
        reply.is_some()
    }

    /// `DEL` of many keys.
    pub async fn delete_many(&self, keys: &[String]) {
        for chunk in keys.chunks(512) {
            let full: Vec<String> = chunk.iter().map(|k| self.full(k)).collect();
            let _: i64 = self.pool.del(full).await.expect("DEL");
        }
    }
}

/// The raw driver calls the stack's two stores make, without any storestack
/// code in between: the fair baseline for what the stack must do by
/// design (each write reaches Redis, then MongoDB, before it is
/// acknowledged; with `JournalCheck::PerRead` each read of Redis goes with
/// a point read on MongoDB).
///
/// * get: fred `GET` concurrently with a Mongo `find_one` by an `_id` that
///   is absent (as the key's journal entry is, in the healthy state);
/// * set: `SET … PXAT`, then `replace_one` with upsert;
/// * create: `SET … NX PXAT`, then `insert_one`.
#[derive(Debug, Clone)]
pub struct RawBoth {
    fred: RawFred,
    /// The collection lives as long as the store that owns its client.
    _owner: Arc<MongoStore>,
    mongo: Collection<RawDocumentBuf>,
}

impl RawBoth {
    /// Raw calls on `fred` and on `mongo`'s collection (its client's pool).
    pub fn new(fred: RawFred, mongo: MongoStore) -> Self {
        RawBoth {
            mongo: mongo.collection().clone(),
            _owner: Arc::new(mongo),
            fred,
        }
    }

    /// `GET` on Redis, concurrently with a Mongo point read of an absent
    /// document; the Redis value.
    pub async fn get(&self, key: &str) -> Option<Bytes> {
        let (value, ()) = tokio::join!(self.fred.get(key), self.find_absent(key));
        value
    }

    /// The Mongo point read alone: `find_one` by the `_id` of `key`'s
    /// journal entry, which is absent.
    pub async fn find_absent(&self, key: &str) {
        let absent = doc! { "_id": journal_key(key) };
        let found = self.mongo.find_one(absent).await.expect("find_one");
        assert!(found.is_none());
    }

    /// `SET … PXAT` on Redis, then an upsert on Mongo.
    pub async fn set(&self, key: &str, value: Bytes) {
        self.fred.set(key, value.clone()).await;
        self.mongo
            .replace_one(doc! { "_id": key }, mongo_doc(None, &value))
            .upsert(true)
            .await
            .expect("replace_one");
    }

    /// `SET … NX PXAT` on Redis, then an insert on Mongo: whether it
    /// inserted.
    pub async fn create(&self, key: &str, value: Bytes) -> bool {
        if !self.fred.create(key, value.clone()).await {
            return false;
        }
        self.mongo
            .insert_one(mongo_doc(Some(key), &value))
            .await
            .expect("insert_one");
        true
    }

    /// Deletes `keys` on both.
    pub async fn delete_many(&self, keys: &[String]) {
        self.fred.delete_many(keys).await;
        for chunk in keys.chunks(512) {
            self.mongo
                .delete_many(doc! { "_id": { "$in": chunk } })
                .await
                .expect("delete_many");
        }
    }
}

/// The key of `key`'s journal entry under the default fallback
/// configuration: what a healthy `JournalCheck::PerRead` get reads, and
/// finds absent, on the secondary.
pub fn journal_key(key: &str) -> String {
    format!("__fallback:j:{key}")
}

/// A baseline of raw client calls, either of the two.
#[derive(Debug, Clone)]
pub enum Raw {
    /// Redis alone.
    Fred(RawFred),
    /// Redis and MongoDB, as the stack's two stores.
    Both(RawBoth),
}

impl Raw {
    /// The value of a key.
    pub async fn get(&self, key: &str) -> Option<Bytes> {
        match self {
            Raw::Fred(r) => r.get(key).await,
            Raw::Both(r) => r.get(key).await,
        }
    }

    /// Writes a value.
    pub async fn set(&self, key: &str, value: Bytes) {
        match self {
            Raw::Fred(r) => r.set(key, value).await,
            Raw::Both(r) => r.set(key, value).await,
        }
    }

    /// Inserts a value if absent: whether it inserted.
    pub async fn create(&self, key: &str, value: Bytes) -> bool {
        match self {
            Raw::Fred(r) => r.create(key, value).await,
            Raw::Both(r) => r.create(key, value).await,
        }
    }

    /// Deletes `keys`.
    pub async fn delete_many(&self, keys: &[String]) {
        match self {
            Raw::Fred(r) => r.delete_many(keys).await,
            Raw::Both(r) => r.delete_many(keys).await,
        }
    }
}

/// A document as `MongoStore` writes it.
fn mongo_doc(id: Option<&str>, value: &[u8]) -> RawDocumentBuf {
    let mut d = RawDocumentBuf::new();
    if let Some(id) = id {
        d.append("_id", id);
    }
    d.append_ref(
        VALUE_FIELD,
        RawBinaryRef {
            subtype: BinarySubtype::Generic,
            bytes: value,
        },
    );
    d.append(
        EXPIRES_FIELD,
        DateTime::from_system_time(SystemTime::now() + TTL),
    );
    d
}

fn pxat() -> Expiration {
    let at = SystemTime::now() + TTL;
    let ms = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    Expiration::PXAT(ms as i64)
}
