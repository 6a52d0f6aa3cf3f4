//! End to end: the actix-web session server of
//! `storestack_examples::actix_server` (the same stack as the axum
//! `session_server`, behind actix-session through `storestack-actix`),
//! started in-process on a free port and driven over HTTP with a
//! cookie-keeping client, through a `kill -9` of its Redis and Redis's
//! return, a logout, a tampered cookie and tampered stored bytes.
//!
//! Redis is a `redis-server` the test starts on a free port; MongoDB is the
//! server at `STORESTACK_MONGODB_URL` (skipped loudly when absent, failed
//! under `CI=true`). The session cookie is encrypted, so the test finds
//! the session's key by scanning the test's own Redis prefix. The cache
//! runs on a mock clock that every visit moves past its ttl.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::cookie::Key as CookieKey;
use reqwest::cookie::Jar;
use reqwest::header::COOKIE;
use reqwest::{Client, StatusCode, Url};
use serde_json::Value;
use storestack::clock::MockClock;
use storestack::{
    BreakerConfig, CacheConfig, FallbackConfig, Key, Keyring, Record, ScanCursor, Store,
};
use storestack_examples::actix_server::ActixServer;
use storestack_examples::session_server::ServerConfig;
use storestack_mongodb::MongoStore;
use storestack_redis::{RedisConfig, RedisStore};
use storestack_testkit::server_missing;
use storestack_tests::mongo;
use storestack_tests::redis::{free_port, unique_prefix, RedisServer};

const CACHE_TTL: Duration = Duration::from_secs(30);
const RECOVERY_BOUND: Duration = Duration::from_secs(10);

struct Harness {
    server: ActixServer,
    redis_server: RedisServer,
    redis: RedisStore,
    mongo: MongoStore,
    cache_clock: MockClock,
    client: Client,
    base: Url,
}

impl Harness {
    async fn start() -> Option<Harness> {
        let mongo_config = mongo::config("actix_server");
        let mongo = mongo::connect_or_skip(mongo_config.clone()).await?;
        let redis_server = match RedisServer::start(free_port(), &[]) {
            Ok(server) => server,
            Err(e) => {
                server_missing("redis-server on PATH", &e);
                return None;
            }
        };
        let redis_config = RedisConfig::new(format!("redis://127.0.0.1:{}", redis_server.port))
            .key_prefix(format!("{}:", unique_prefix("actix_server")))
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
        let server = ActixServer::start(config, CookieKey::generate())
            .await
            .expect("server starts");
        let base = Url::parse(&server.url()).expect("server url");
        let client = Client::builder()
            .cookie_provider(Arc::new(Jar::default()))
            .timeout(Duration::from_secs(5))
            .build()
            .expect("http client");
        Some(Harness {
            server,
            redis_server,
            redis,
            mongo,
            cache_clock,
            client,
            base,
        })
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("url")
    }

    /// `GET /` with the client's cookies, past the cache: the count.
    async fn view(&self) -> u64 {
        self.cache_clock.advance(CACHE_TTL + Duration::from_secs(1));
        let response = self.client.get(self.url("/")).send().await.expect("GET /");
        assert!(response.headers().get("x-session-degraded").is_none());
        views_of(response).await
    }

    /// The key of the one session stored in the test's Redis prefix (the
    /// fallback's reserved keys, its identity and journal, aside).
    async fn session_key(&self) -> String {
        let page = self
            .redis
            .scan("", ScanCursor::default(), 100)
            .await
            .expect("scan redis");
        let sessions: Vec<_> = page
            .keys
            .into_iter()
            .filter(|k| !k.starts_with("__fallback:"))
            .collect();
        assert_eq!(sessions.len(), 1, "one session stored: {}", sessions.len());
        sessions[0].clone()
    }

    async fn health(&self) -> Value {
        let response = (self.client.get(self.url("/health")).send().await).expect("GET /health");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("health is JSON")
    }

    async fn stored(&self, key: &str) -> (Option<Record>, Option<Record>) {
        let in_redis = self.redis.get(key).await.expect("read redis directly");
        let in_mongo = self.mongo.get(key).await.expect("read mongodb directly");
        (in_redis, in_mongo)
    }
}

async fn views_of(response: reqwest::Response) -> u64 {
    assert_eq!(response.status(), StatusCode::OK, "GET / failed");
    let body = response.text().await.expect("body");
    body.trim()
        .strip_prefix("views: ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a view count: {body:?}"))
}

/// Flips one byte in the middle of `key`'s stored value in `store`.
async fn tamper(store: &dyn Store, key: &str) {
    let record = store
        .get(key)
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
    store.set(key, tampered).await.expect("overwrite");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_sessions_survive_a_redis_outage_and_resist_tampering() {
    let Some(mut h) = Harness::start().await else {
        return;
    };
    let started = Instant::now();

    for expected in 1..=3 {
        assert_eq!(h.view().await, expected);
    }
    let key = h.session_key().await;
    assert_eq!(key.len(), 64, "actix-session's key length");
    let (in_redis, in_mongo) = h.stored(&key).await;
    let (in_redis, in_mongo) = (in_redis.expect("in redis"), in_mongo.expect("in mongodb"));
    assert_eq!(in_redis.value, in_mongo.value);
    assert!(!in_redis.value.windows(5).any(|w| w == b"views"));
    let remaining = in_redis.expires_at.expect("an absolute expiry");
    let day = std::time::SystemTime::now() + Duration::from_secs(24 * 3600);
    assert!(remaining <= day && remaining + Duration::from_secs(60) > day);
    assert_eq!(h.health().await["status"], "ok");
    let metrics = h
        .client
        .get(h.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    let metrics = metrics.text().await.expect("metrics text");
    assert!(metrics.contains("storestack_operations_total"), "{metrics}");

    // Redis killed: sessions are served from MongoDB, not degraded.
    h.redis_server.kill9();
    for expected in 4..=6 {
        assert_eq!(h.view().await, expected, "count during the outage");
    }
    let health = h.health().await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(
        health["fallback"]["primary"]["reachable"], false,
        "{health}"
    );

    // Redis back (empty): the count goes on and the fallback repairs it.
    h.redis_server.restart();
    for expected in 7..=9 {
        assert_eq!(h.view().await, expected, "count after redis returned");
    }
    let deadline = Instant::now() + RECOVERY_BOUND;
    while h.health().await["status"] != "ok" {
        assert!(Instant::now() < deadline, "not recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (in_redis, in_mongo) = h.stored(&key).await;
    assert_eq!(
        in_redis.expect("repaired into redis").value,
        in_mongo.expect("in mongodb").value
    );

    // Logout deletes the session from both stores.
    let response = h
        .client
        .get(h.url("/logout"))
        .send()
        .await
        .expect("GET /logout");
    assert_eq!(response.status(), StatusCode::OK);
    let (in_redis, in_mongo) = h.stored(&key).await;
    assert!(
        in_redis.is_none() && in_mongo.is_none(),
        "logout left the session behind"
    );
    assert_eq!(h.view().await, 1);
    assert_eq!(h.view().await, 2);
    let key = h.session_key().await;

    // A forged cookie fails the cookie's encryption: a fresh session.
    let response = Client::new()
        .get(h.url("/"))
        .header(COOKIE, "id=Zm9yZ2Vk")
        .send()
        .await
        .expect("GET / with a forged cookie");
    assert_eq!(views_of(response).await, 1);
    assert_eq!(h.view().await, 3, "the real session is untouched");

    // Tampered stored bytes fail authentication: a fresh session under a
    // new key, not an error page.
    tamper(&h.redis, &key).await;
    tamper(&h.mongo, &key).await;
    assert_eq!(h.view().await, 1, "a tampered session is replaced");
    assert_eq!(h.view().await, 2);
    let page = h
        .redis
        .scan("", ScanCursor::default(), 100)
        .await
        .expect("scan");
    assert!(page.keys.iter().any(|k| *k != key), "a new key was drawn");

    println!("actix server scenario took {:?}", started.elapsed());
    h.server.shutdown().await.expect("clean shutdown");
}
