//! Graceful degradation, end to end, in both example servers (axum +
//! tower-sessions, actix-web + actix-session) over the full stack: both
//! stores behind fault proxies that the test takes down and brings back.
//!
//! * Both stores unreachable at start: the server starts, answers 200
//!   with `X-Session-Degraded: true`, and recovers by itself when they
//!   return.
//! * Both stores down under a live session: 200 and the header, a
//!   temporary count, the same session; the real session is intact when
//!   they return.
//!
//! Redis is the server at `STORESTACK_REDIS_URL`, MongoDB the one at
//! `STORESTACK_MONGODB_URL` (each skipped loudly when absent, failed under
//! `CI=true`). The cache runs on a mock clock that every visit moves past
//! its ttl, so every read reaches the stores.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::cookie::Key as CookieKey;
use reqwest::cookie::Jar;
use reqwest::{Client, StatusCode, Url};
use storestack::clock::MockClock;
use storestack::{BreakerConfig, CacheConfig, FallbackConfig, Key, Keyring};
use storestack_chaos::proxy::FaultProxy;
use storestack_examples::actix_server::ActixServer;
use storestack_examples::session_server::{ServerConfig, SessionServer};
use storestack_redis::RedisConfig;
use storestack_tests::mongo;
use storestack_tests::redis::{connect_or_skip, redis_url, unique_prefix};

const CACHE_TTL: Duration = Duration::from_secs(30);
/// The longest the stack may take to notice that both stores are back.
const RECOVERY_BOUND: Duration = Duration::from_secs(10);
const HEADER: &str = "x-session-degraded";

enum Server {
    Axum(SessionServer),
    Actix(ActixServer),
}

impl Server {
    fn url(&self) -> String {
        match self {
            Server::Axum(s) => s.url(),
            Server::Actix(s) => s.url(),
        }
    }

    async fn shutdown(self) {
        match self {
            Server::Axum(s) => s.shutdown().await.expect("clean shutdown"),
            Server::Actix(s) => s.shutdown().await.expect("clean shutdown"),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Framework {
    Axum,
    Actix,
}

struct Harness {
    server: Server,
    proxies: [FaultProxy; 2],
    cache_clock: MockClock,
    client: Client,
    base: Url,
}

fn socket_of(url: &str) -> SocketAddr {
    let parsed = Url::parse(url).expect("a server URL");
    let host = parsed
        .host_str()
        .expect("a host")
        .replace("localhost", "127.0.0.1");
    let port = parsed.port().expect("a port in the URL");
    format!("{host}:{port}")
        .parse()
        .expect("a loopback address")
}

fn through(url: &str, addr: SocketAddr) -> String {
    let mut parsed = Url::parse(url).expect("a server URL");
    parsed.set_ip_host(addr.ip()).expect("set the host");
    parsed.set_port(Some(addr.port())).expect("set the port");
    parsed.to_string()
}

impl Harness {
    /// Both servers reachable (else skipped), proxies in front of them,
    /// down at start when `down_at_start`.
    async fn start(framework: Framework, down_at_start: bool) -> Option<Harness> {
        let tag = format!("degraded_{framework:?}").to_lowercase();
        mongo::connect_or_skip(mongo::config(&tag)).await?;
        let redis_check = RedisConfig::new(redis_url()).key_prefix(unique_prefix(&tag));
        connect_or_skip(redis_check, &format!("redis at {}", redis_url())).await?;

        let redis_proxy = FaultProxy::start(socket_of(&redis_url()))
            .await
            .expect("redis proxy");
        let mongo_proxy = FaultProxy::start(socket_of(&mongo::url()))
            .await
            .expect("mongodb proxy");
        if down_at_start {
            redis_proxy.handle().down().await.expect("proxy down");
            mongo_proxy.handle().down().await.expect("proxy down");
        }
        let redis_config = RedisConfig::new(through(&redis_url(), redis_proxy.addr()))
            .key_prefix(format!("{}:", unique_prefix(&tag)))
            .command_timeout(Duration::from_millis(250))
            .connect_timeout(Duration::from_millis(250))
            .reconnect_delay(Duration::from_millis(20), Duration::from_millis(200));
        let mut mongo_config = mongo::config(&tag);
        mongo_config.uri = through(&mongo_config.uri, mongo_proxy.addr());
        let mongo_config = mongo_config
            .server_selection_timeout(Duration::from_millis(300))
            .connect_timeout(Duration::from_millis(300));

        let cache_clock = MockClock::new();
        let keyring = Keyring::new(Key::generate("test").expect("a random key"));
        let mut config = ServerConfig::new(redis_config, mongo_config, keyring)
            .listen(([127, 0, 0, 1], 0).into());
        config.redis_deadline = Duration::from_millis(300);
        config.mongo_deadline = Duration::from_millis(400);
        config.reconnect_every = Duration::from_millis(100);
        config.breaker = BreakerConfig::default()
            .consecutive_failures(2)
            .open_for(Duration::from_millis(100), Duration::from_millis(400));
        config.fallback = FallbackConfig::default()
            .poll_interval(Duration::from_millis(100))
            .settle(Duration::from_millis(50));
        config.cache = CacheConfig::default()
            .ttl(CACHE_TTL)
            .clock(cache_clock.clone());
        let server = match framework {
            Framework::Axum => Server::Axum(SessionServer::start(config).await.expect("starts")),
            Framework::Actix => Server::Actix(
                ActixServer::start(config, CookieKey::generate())
                    .await
                    .expect("starts"),
            ),
        };
        let base = Url::parse(&server.url()).expect("server url");
        let client = Client::builder()
            .cookie_provider(Arc::new(Jar::default()))
            .timeout(Duration::from_secs(5))
            .build()
            .expect("http client");
        Some(Harness {
            server,
            proxies: [redis_proxy, mongo_proxy],
            cache_clock,
            client,
            base,
        })
    }

    /// `GET /` past the cache: the count, and whether it was degraded.
    async fn view(&self) -> (u64, bool) {
        self.cache_clock.advance(CACHE_TTL + Duration::from_secs(1));
        let url = self.base.join("/").expect("url");
        let response = self.client.get(url).send().await.expect("GET /");
        assert_eq!(response.status(), StatusCode::OK, "never an error page");
        let degraded = match response.headers().get(HEADER) {
            Some(v) => {
                assert_eq!(v, "true");
                true
            }
            None => false,
        };
        let body = response.text().await.expect("body");
        let count = body
            .trim()
            .strip_prefix("views: ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a view count: {body:?}"));
        (count, degraded)
    }

    async fn set_down(&self, down: bool) {
        for p in &self.proxies {
            let handle = p.handle();
            if down {
                handle.down().await
            } else {
                handle.clear().await
            }
            .expect("proxy");
        }
    }

    /// Visits until a response is not degraded: its count.
    async fn until_recovered(&self) -> u64 {
        let deadline = Instant::now() + RECOVERY_BOUND;
        loop {
            let (count, degraded) = self.view().await;
            if !degraded {
                return count;
            }
            assert!(
                Instant::now() < deadline,
                "still degraded after {RECOVERY_BOUND:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn unreachable_at_start(framework: Framework) {
    let Some(h) = Harness::start(framework, true).await else {
        return;
    };
    let started = Instant::now();
    assert_eq!(h.view().await, (1, true), "served with a temporary session");
    assert_eq!(h.view().await, (2, true), "the temporary session is kept");

    h.set_down(false).await;
    // The session begun during the outage was never stored: a new one.
    assert_eq!(h.until_recovered().await, 1);
    assert_eq!(h.view().await, (2, false));
    println!(
        "{framework:?}: unreachable at start, recovered in {:?}",
        started.elapsed()
    );
    h.server.shutdown().await;
}

async fn both_down_under_a_live_session(framework: Framework) {
    let Some(h) = Harness::start(framework, false).await else {
        return;
    };
    for expected in 1..=3 {
        assert_eq!(h.view().await, (expected, false));
    }

    h.set_down(true).await;
    let outage = Instant::now();
    assert_eq!(h.view().await, (1, true), "a temporary, empty session");
    assert_eq!(h.view().await, (2, true), "the temporary session is kept");
    let took = outage.elapsed();

    h.set_down(false).await;
    assert_eq!(h.until_recovered().await, 4, "the real session is intact");
    assert_eq!(h.view().await, (5, false));
    println!("{framework:?}: two degraded requests took {took:?}");
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_starts_with_both_stores_unreachable() {
    unreachable_at_start(Framework::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_starts_with_both_stores_unreachable() {
    unreachable_at_start(Framework::Actix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_rides_out_both_stores_down() {
    both_down_under_a_live_session(Framework::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_rides_out_both_stores_down() {
    both_down_under_a_live_session(Framework::Actix).await;
}
