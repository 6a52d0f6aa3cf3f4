//! End to end: the session server of `storestack_examples::session_server`
//! (Instrumented → Cached → Compressed → Encrypted → Fallback(Redis, MongoDB)
//! behind tower-sessions), started in-process on a free port and driven
//! over HTTP with a cookie-keeping client, through a `kill -9` of its
//! Redis and Redis's return, a logout, a tampered cookie and tampered
//! stored bytes.
//!
//! Redis is a `redis-server` the test starts on a free port; MongoDB is the
//! server at `STORESTACK_MONGODB_URL` (skipped loudly when absent, failed
//! under `CI=true`). The cache runs on a mock clock: the test moves it past
//! the cache's ttl whenever a read must reach the stores.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Client, StatusCode, Url};
use serde_json::Value;
use storestack::clock::MockClock;
use storestack::{BreakerConfig, CacheConfig, FallbackConfig, Key, Keyring, Record, Store};
use storestack_examples::session_server::{ServerConfig, SessionServer};
use storestack_mongodb::MongoStore;
use storestack_redis::{RedisConfig, RedisStore};
use storestack_testkit::server_missing;
use storestack_tests::mongo;
use storestack_tests::redis::{free_port, unique_prefix, RedisServer};

/// How long the cache serves a session without asking the stores.
const CACHE_TTL: Duration = Duration::from_secs(30);
/// The longest the stack may take to close its Redis breaker and repair
/// what Redis missed once Redis is back.
const RECOVERY_BOUND: Duration = Duration::from_secs(10);

struct Harness {
    server: SessionServer,
    redis_server: RedisServer,
    /// Direct handles on the two stores, bypassing the stack.
    redis: RedisStore,
    mongo: MongoStore,
    cache_clock: MockClock,
    jar: Arc<Jar>,
    client: Client,
    base: Url,
}

impl Harness {
    async fn start() -> Option<Harness> {
        let mongo_config = mongo::config("session_server");
        let mongo = mongo::connect_or_skip(mongo_config.clone()).await?;
        let redis_server = match RedisServer::start(free_port(), &[]) {
            Ok(server) => server,
            Err(e) => {
                server_missing("redis-server on PATH", &e);
                return None;
            }
        };
        let redis_config = RedisConfig::new(format!("redis://127.0.0.1:{}", redis_server.port))
            .key_prefix(format!("{}:", unique_prefix("session_server")))
            .command_timeout(Duration::from_millis(250))
            .connect_timeout(Duration::from_millis(250))
            .reconnect_delay(Duration::from_millis(20), Duration::from_millis(200))
            .unresponsive_timeout(Some(Duration::from_millis(600)));
        let redis = RedisStore::connect(redis_config.clone())
            .await
            .expect("the test's redis-server answers");

        let cache_clock = MockClock::new();
        let keyring = Keyring::new(Key::generate("test").expect("a random key"));
        let mut config = ServerConfig::new(redis_config, mongo_config, keyring)
            .listen(([127, 0, 0, 1], 0).into());
        config.redis_deadline = Duration::from_millis(300);
        config.breaker = BreakerConfig::default()
            .consecutive_failures(2)
            .open_for(Duration::from_millis(100), Duration::from_millis(400));
        config.fallback = FallbackConfig::default()
            .poll_interval(Duration::from_millis(100))
            .settle(Duration::from_millis(50));
        config.cache = CacheConfig::default()
            .ttl(CACHE_TTL)
            .clock(cache_clock.clone());
        let server = SessionServer::start(config).await.expect("server starts");
        let base = Url::parse(&server.url()).expect("server url");
        let jar = Arc::new(Jar::default());
        let client = Client::builder()
            .cookie_provider(jar.clone())
            .timeout(Duration::from_secs(5))
            .build()
            .expect("http client");
        Some(Harness {
            server,
            redis_server,
            redis,
            mongo,
            cache_clock,
            jar,
            client,
            base,
        })
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("url")
    }

    /// Makes the next reads miss the cache.
    fn expire_cache(&self) {
        self.cache_clock.advance(CACHE_TTL + Duration::from_secs(1));
    }

    /// `GET /` with the client's cookies: the view count it answers.
    async fn view(&self) -> u64 {
        let response = self.client.get(self.url("/")).send().await.expect("GET /");
        views_of(response).await
    }

    /// The session ID in the client's cookie jar.
    fn session_id(&self) -> String {
        let header = self.jar.cookies(&self.base).expect("a session cookie");
        let cookies = header.to_str().expect("ascii cookies").to_owned();
        cookie_id(&cookies).expect("an id cookie").to_owned()
    }

    async fn health(&self) -> Value {
        let response = (self.client.get(self.url("/health")).send().await).expect("GET /health");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("health is JSON")
    }

    /// The stored record of `id` in each store.
    async fn stored(&self, id: &str) -> (Option<Record>, Option<Record>) {
        let in_redis = self.redis.get(id).await.expect("read redis directly");
        let in_mongo = self.mongo.get(id).await.expect("read mongodb directly");
        (in_redis, in_mongo)
    }
}

/// The value of the `id` cookie in a `Cookie` or `Set-Cookie` header value.
fn cookie_id(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == "id")
        .map(|(_, value)| value)
}

async fn views_of(response: reqwest::Response) -> u64 {
    assert_eq!(response.status(), StatusCode::OK, "GET / failed");
    let body = response.text().await.expect("body");
    body.trim()
        .strip_prefix("views: ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a view count: {body:?}"))
}

/// `GET /` with exactly this cookie header and no cookie store: the count
/// and the session ID the server set.
async fn view_with_cookie(h: &Harness, cookie: &str) -> (u64, String) {
    let response = Client::new()
        .get(h.url("/"))
        .header(COOKIE, cookie)
        .send()
        .await
        .expect("GET / with a cookie");
    let set = response
        .headers()
        .get(SET_COOKIE)
        .map(|v| v.to_str().expect("ascii").to_owned())
        .expect("a fresh session sets a cookie");
    let id = cookie_id(&set).expect("an id cookie").to_owned();
    (views_of(response).await, id)
}

/// Flips one byte in the middle of `id`'s stored value in `store`, keeping
/// its expiry.
async fn tamper(store: &dyn Store, id: &str) {
    let record = store
        .get(id)
        .await
        .expect("read")
        .expect("a stored session");
    let mut value = record.value.to_vec();
    let middle = value.len() / 2;
    value[middle] ^= 0x5a;
    let tampered = Record {
        value: value.into(),
        expires_at: record.expires_at,
    };
    store.set(id, tampered).await.expect("overwrite");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_a_redis_outage_and_resist_tampering() {
    let Some(mut h) = Harness::start().await else {
        return;
    };
    let started = Instant::now();

    // Both stores up: the count rises, and each store holds the same
    // ciphertext (no plaintext field name in it).
    for expected in 1..=3 {
        assert_eq!(h.view().await, expected);
    }
    let id = h.session_id();
    let (in_redis, in_mongo) = h.stored(&id).await;
    let (in_redis, in_mongo) = (in_redis.expect("in redis"), in_mongo.expect("in mongodb"));
    assert_eq!(in_redis.value, in_mongo.value);
    assert!(!in_redis.value.windows(5).any(|w| w == b"views"));
    let health = h.health().await;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["breakers"]["redis"]["state"], "closed");
    let metrics = h
        .client
        .get(h.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    let metrics = metrics.text().await.expect("metrics text");
    assert!(metrics.contains("storestack_operations_total"), "{metrics}");

    // Redis killed: sessions are read from and written to MongoDB.
    h.redis_server.kill9();
    for expected in 4..=6 {
        h.expire_cache();
        assert_eq!(h.view().await, expected, "count during the outage");
    }
    let health = h.health().await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(
        health["fallback"]["primary"]["reachable"], false,
        "{health}"
    );
    // The first read failed over; the key is then journaled as newest in
    // MongoDB, and read from there directly.
    assert!(
        health["fallback"]["failover_reads"].as_u64() >= Some(1),
        "{health}"
    );
    assert_eq!(health["fallback"]["newest_on_secondary"], 1, "{health}");
    assert!(
        health["fallback"]["degraded_writes"].as_u64() >= Some(3),
        "{health}"
    );
    assert!(
        health["breakers"]["redis"]["opened"].as_u64() >= Some(1),
        "{health}"
    );
    let in_mongo_now = h
        .mongo
        .get(&id)
        .await
        .expect("read mongodb")
        .expect("in mongodb");
    assert_ne!(
        in_mongo_now.value, in_mongo.value,
        "mongodb took the outage's writes"
    );

    // Redis back (empty: it has no persistence): the count keeps rising,
    // and the fallback repairs Redis from MongoDB.
    h.redis_server.restart();
    for expected in 7..=9 {
        h.expire_cache();
        assert_eq!(h.view().await, expected, "count after redis returned");
    }
    let deadline = Instant::now() + RECOVERY_BOUND;
    loop {
        let health = h.health().await;
        let recovered = health["status"] == "ok";
        if recovered {
            break;
        }
        assert!(Instant::now() < deadline, "not recovered: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (in_redis, in_mongo) = h.stored(&id).await;
    assert_eq!(
        in_redis.expect("repaired into redis").value,
        in_mongo.expect("in mongodb").value
    );
    h.expire_cache();
    assert_eq!(h.view().await, 10);

    // Logout deletes the session from both stores; the next visit starts
    // a new one.
    let response = h
        .client
        .get(h.url("/logout"))
        .send()
        .await
        .expect("GET /logout");
    assert_eq!(response.status(), StatusCode::OK);
    let (in_redis, in_mongo) = h.stored(&id).await;
    assert!(
        in_redis.is_none() && in_mongo.is_none(),
        "logout left the session behind"
    );
    assert_eq!(h.view().await, 1);
    assert_eq!(h.view().await, 2);
    let id = h.session_id();

    // A tampered cookie names no session: a fresh one, not an error.
    let mut forged = id.clone().into_bytes();
    forged[0] = if forged[0] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ascii id");
    let (count, fresh) = view_with_cookie(&h, &format!("id={forged}")).await;
    assert_eq!(count, 1);
    assert_ne!(fresh, id);
    let (count, _) = view_with_cookie(&h, "id=not*a*session*id").await;
    assert_eq!(count, 1);
    assert_eq!(h.view().await, 3, "the real session is untouched");

    // Tampered stored bytes in both stores fail authentication: a fresh
    // session, not an error page.
    tamper(&h.redis, &id).await;
    tamper(&h.mongo, &id).await;
    h.expire_cache();
    assert_eq!(h.view().await, 1, "a tampered session is replaced");
    assert_ne!(h.session_id(), id);
    assert_eq!(h.view().await, 2);

    println!("session server scenario took {:?}", started.elapsed());
    h.server.shutdown().await.expect("clean shutdown");
}
