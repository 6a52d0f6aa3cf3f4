//! Real-backend scenarios on Redis: the primary is a real Redis reached
//! through `storestack-redis` (fred), the secondary a memory store (the
//! [`mongo`](super::mongo) scenarios put MongoDB on either side), and the
//! faults are real: the
//! server process killed, paused or restarted empty ([`crate::process`]),
//! or the network between client and server cut, reset, blackholed or
//! slowed by the fault proxy ([`crate::proxy`]).
//!
//! The Redis is the one given with `--redis URL` (proxy faults only; keys
//! under a prefix of their own, cleared afterwards), or one the suite
//! starts itself on a free port with `--real` (required by the process
//! faults).

use std::net::SocketAddr;
use std::time::Duration;

use storestack::{CacheConfig, MemoryStore, Store, StoreExt};
use storestack_redis::{RedisConfig, RedisInvalidator, RedisStore};

use super::failover::empty_primary_invariants;
use super::stacks::{failed_over, Failover, BOUNDED, FAILED_OVER, REPAIRED};
use crate::error::{ChaosError, Result};
use crate::history::{ErrorClass, Phase};
use crate::invariants::{Expect, Invariants};
use crate::process::{DataOnRestart, RedisServer};
use crate::proxy::{FaultProxy, Latency, Toxics};
use crate::scenario::{Action, Requirement, Scenario, ScenarioContext, Schedule, Setup};

/// The deadline of a call to Redis (loopback answers in well under a
/// millisecond; a busy 2-core machine stalls for tens).
pub(crate) const REDIS_DEADLINE: Duration = Duration::from_millis(100);

/// A Redis for one run: the server (when the suite owns it), where the
/// stack connects, and the key prefix of the run.
pub(crate) struct Redis {
    pub(crate) server: Option<RedisServer>,
    /// The URL the store connects to (the proxy's, when there is one).
    pub(crate) url: String,
    /// The URL of the server itself.
    pub(crate) direct_url: String,
    pub(crate) proxy: Option<FaultProxy>,
    prefix: String,
}

/// Where the server is, and whether the suite owns it.
async fn locate(ctx: &ScenarioContext, own: Option<bool>) -> Result<(String, Option<RedisServer>)> {
    match (own, &ctx.redis_url) {
        (None, Some(url)) => Ok((url.clone(), None)),
        (durable, _) => {
            let server = if durable == Some(true) {
                RedisServer::start_durable().await?
            } else {
                RedisServer::start().await?
            };
            Ok((server.url(), Some(server)))
        }
    }
}

/// The address of a server URL's server (`default_port` when the URL has
/// none).
pub(crate) async fn address(url: &str, default_port: u16) -> Result<SocketAddr> {
    let bad = |what: &str| ChaosError::scenario("url", format!("{what}: {url}"), None);
    let parsed = url::Url::parse(url).map_err(|_| bad("not a URL"))?;
    let host = parsed.host_str().ok_or_else(|| bad("no host in the URL"))?;
    let host = format!("{host}:{}", parsed.port().unwrap_or(default_port));
    let first = tokio::net::lookup_host(host.as_str())
        .await
        .map_err(|e| ChaosError::io(format!("cannot resolve {host}"), e))?
        .next();
    first.ok_or_else(|| bad("the host resolves to no address"))
}

/// `url` with its host and port replaced by `addr` (credentials, database
/// and options kept).
pub(crate) fn through(url: &str, addr: SocketAddr) -> Result<String> {
    let mut parsed = url::Url::parse(url)
        .map_err(|_| ChaosError::scenario("url", format!("not a URL: {url}"), None))?;
    let _ = parsed.set_ip_host(addr.ip());
    let _ = parsed.set_port(Some(addr.port()));
    Ok(parsed.to_string())
}

impl Redis {
    /// A Redis for scenario `name`: the suite's own when `own` is set
    /// (durable: append-only file, fsync on every write), else `--redis`
    /// (or the suite's own with `--real`); behind a fault proxy when
    /// `proxied`.
    pub(crate) async fn start(
        ctx: &ScenarioContext,
        name: &str,
        own: Option<bool>,
        proxied: bool,
    ) -> Result<Self> {
        let (direct_url, server) = locate(ctx, own).await?;
        let proxy = if proxied {
            let upstream = address(&direct_url, 6379).await?;
            let config = crate::proxy::ProxyConfig::new(upstream).seed(ctx.seed);
            Some(FaultProxy::start_with(config).await?)
        } else {
            None
        };
        let url = match &proxy {
            Some(p) => through(&direct_url, p.addr())?,
            None => direct_url.clone(),
        };
        Ok(Redis {
            server,
            url,
            direct_url,
            proxy,
            prefix: format!("storestack-chaos:{name}:{:016x}:", ctx.seed),
        })
    }

    /// The client configuration, scaled for short runs: fails fast while
    /// disconnected, reconnects within 200 ms, replaces a connection
    /// silent for 500 ms.
    fn config(&self, url: &str) -> RedisConfig {
        RedisConfig::new(url)
            .key_prefix(self.prefix.clone())
            .connect_timeout(Duration::from_millis(500))
            .command_timeout(Duration::from_millis(500))
            .reconnect_delay(Duration::from_millis(20), Duration::from_millis(200))
            .unresponsive_timeout(Some(Duration::from_millis(500)))
    }

    /// A client of this Redis (see [`config`](Self::config)).
    pub(crate) async fn connect(&self, url: &str) -> Result<RedisStore> {
        RedisStore::connect(self.config(url)).await.map_err(|e| {
            ChaosError::scenario("redis", "cannot connect to redis", Some(Box::new(e)))
        })
    }

    /// An invalidation channel of this Redis, on the run's prefix.
    async fn invalidator(&self, url: &str) -> Result<RedisInvalidator> {
        RedisInvalidator::connect(self.config(url))
            .await
            .map_err(|e| {
                ChaosError::scenario("redis", "cannot subscribe to redis", Some(Box::new(e)))
            })
    }

    /// The failover stack on this Redis, and the setup of the run (which
    /// keeps the server and the proxy alive, and clears the run's keys).
    async fn failover(self) -> Result<(Failover, Setup, Option<crate::proxy::ProxyHandle>)> {
        let primary = self.connect(&self.url).await?;
        let stack = Failover::new(primary, MemoryStore::new(), REDIS_DEADLINE);
        let fallback = stack.fallback.clone();
        let proxy = self.proxy.as_ref().map(FaultProxy::handle);
        let setup = self.finish(stack.setup()).await?;
        let setup = setup.probe(FAILED_OVER, move || failed_over(&fallback));
        Ok((stack, setup, proxy))
    }

    /// Hands the server and proxy to `setup`, and, on a Redis the suite
    /// does not own, the clearing of the run's keys.
    pub(crate) async fn finish(self, setup: Setup) -> Result<Setup> {
        let mut setup = setup;
        if self.server.is_none() {
            let direct = self.connect(&self.direct_url).await?;
            setup = setup.cleanup(move || async move {
                let _ = direct.clear().await;
            });
        }
        if let Some(proxy) = self.proxy {
            setup = setup.keep_alive(proxy);
        }
        if let Some(server) = self.server {
            setup = setup.keep_alive(server);
        }
        Ok(setup)
    }
}

/// What a Redis failover scenario expects: as the embedded ones, with
/// room for Redis round trips.
pub(crate) fn hidden() -> Invariants {
    Invariants::strict()
        .and(Expect::NoErrorsIn(Phase::During))
        .and(Expect::MaxLatency {
            phase: Phase::During,
            limit: BOUNDED,
        })
        .and(Expect::probe(FAILED_OVER))
        .and(Expect::probe(REPAIRED))
}

/// A fault between `at(1/3)` and `at(2/3)`.
pub(crate) fn middle_third(ctx: &ScenarioContext, fault: Action, repair: Action) -> Schedule {
    Schedule::new()
        .at(ctx.at(1.0 / 3.0), fault)
        .at(ctx.at(2.0 / 3.0), repair)
}

/// kill -9 of a durable Redis, restarted with its data.
pub fn redis_primary_killed() -> Scenario {
    Scenario::new(
        "redis-primary-killed",
        "real redis-server (append-only file, fsync always) as primary, memory as secondary: \
         kill -9 for a third of the run, restarted with its data; callers see no error",
    )
    .requires(Requirement::OwnRedis)
    .invariants(hidden())
    .setup(|ctx| async move {
        let redis = Redis::start(&ctx, "redis-primary-killed", Some(true), false).await?;
        let process = redis.server.as_ref().map(|s| s.handle());
        let process = process.ok_or_else(|| ChaosError::NotRunning {
            program: "redis-server".into(),
        })?;
        let (_, setup, _) = redis.failover().await?;
        let schedule = middle_third(
            &ctx,
            Action::kill("redis killed (-9)", process.clone()),
            Action::restart("redis restarted", process, DataOnRestart::Keep),
        );
        Ok(setup.schedule(schedule))
    })
}

/// SIGSTOP / SIGCONT of the Redis.
pub fn redis_primary_paused() -> Scenario {
    Scenario::new(
        "redis-primary-paused",
        "real redis-server as primary is paused (SIGSTOP) for a third of the run: every \
         call hangs until the timeout cuts it, the breaker opens, the fallback serves; \
         nothing hangs, no error reaches callers",
    )
    .requires(Requirement::OwnRedis)
    .invariants(hidden())
    .setup(|ctx| async move {
        let redis = Redis::start(&ctx, "redis-primary-paused", Some(false), false).await?;
        let process = redis.server.as_ref().map(|s| s.handle());
        let process = process.ok_or_else(|| ChaosError::NotRunning {
            program: "redis-server".into(),
        })?;
        let (_, setup, _) = redis.failover().await?;
        let schedule = middle_third(
            &ctx,
            Action::pause("redis paused (SIGSTOP)", process.clone()),
            Action::resume("redis resumed (SIGCONT)", process),
        );
        Ok(setup.schedule(schedule))
    })
}

/// A proxy fault on the connection to the Redis, failover hides it.
fn proxied(name: &'static str, description: &'static str, fault: Toxics) -> Scenario {
    Scenario::new(name, description)
        .requires(Requirement::Redis)
        .invariants(hidden())
        .setup(move |ctx| {
            let fault = fault.clone();
            async move {
                let redis = Redis::start(&ctx, name, None, true).await?;
                let (_, setup, proxy) = redis.failover().await?;
                let proxy = proxy.ok_or_else(|| ChaosError::scenario(name, "no proxy", None))?;
                let schedule = middle_third(
                    &ctx,
                    Action::proxy("proxy fault on", proxy.clone(), fault),
                    Action::proxy("proxy clean", proxy, Toxics::none()),
                );
                Ok(setup.schedule(schedule))
            }
        })
}

/// The connection to Redis holds every byte.
pub fn redis_blackholed() -> Scenario {
    proxied(
        "redis-blackholed",
        "the proxy between client and redis holds every byte both ways for a third of the \
         run (a silent partition); timeouts, breaker and fallback hide it; held commands \
         arrive late when it lifts",
        Toxics {
            blackhole: true,
            ..Toxics::none()
        },
    )
}

/// Redis answers slowly, around its deadline.
pub fn redis_latency_spike() -> Scenario {
    proxied(
        "redis-latency-spike",
        "the proxy delays redis' replies by 0-120 ms (the deadline is 100 ms) for a third \
         of the run: slow calls time out and fail over; latency bounded, no error",
        Toxics {
            latency: Some(
                Latency::new(Duration::from_millis(60)).jitter(Duration::from_millis(60)),
            ),
            ..Toxics::none()
        },
    )
}

/// Every connection to Redis is reset shortly after it opens.
pub fn redis_reset_storm() -> Scenario {
    proxied(
        "redis-reset-storm",
        "the proxy resets every connection to redis 100 ms after it opens, for a third of \
         the run (a connection-reset storm): the client reconnects over and over, the \
         fallback hides the failures",
        Toxics {
            reset_peer: Some(Duration::from_millis(100)),
            ..Toxics::none()
        },
    )
}

/// The Redis is killed and comes back empty.
pub fn redis_restarts_empty() -> Scenario {
    Scenario::new(
        "redis-restarts-empty",
        "real redis-server (no persistence) as primary is killed for a third of the run and \
         restarted EMPTY: reads of the keys it lost go through to the secondary, the loss is \
         detected and it is resynced; nothing lost, stale or resurrected",
    )
    .requires(Requirement::OwnRedis)
    .invariants(empty_primary_invariants())
    .setup(|ctx| async move {
        let redis = Redis::start(&ctx, "redis-restarts-empty", Some(false), false).await?;
        let process = redis.server.as_ref().map(|s| s.handle());
        let process = process.ok_or_else(|| ChaosError::NotRunning {
            program: "redis-server".into(),
        })?;
        let (_, setup, _) = redis.failover().await?;
        let schedule = middle_third(
            &ctx,
            Action::kill("redis killed (-9)", process.clone()),
            Action::restart("redis restarted empty", process, DataOnRestart::Wipe),
        );
        Ok(setup.schedule(schedule))
    })
}

/// How long another process may serve its cached copy after a write.
const PUBLISH_BOUND: Duration = Duration::from_millis(50);

/// Two processes with local caches over one Redis.
pub fn redis_two_caches() -> Scenario {
    Scenario::new(
        "redis-two-caches",
        "two processes, each with its own redis connections and local cache, over one redis, \
         kept coherent by redis pub/sub invalidation (RedisInvalidator); every connection is \
         reset 100 ms after it opens for a third of the run: errors surface (no fallback), no \
         stale read beyond the delivery bound (50 ms), nothing lost",
    )
    .requires(Requirement::Redis)
    .stale_tolerance(PUBLISH_BOUND)
    .invariants(
        Invariants::strict()
            .and(Expect::ErrorsIn(Phase::During))
            .and(Expect::OnlyErrors(vec![
                ErrorClass::Unavailable,
                ErrorClass::Timeout,
            ]))
            .and(Expect::MaxLatency {
                phase: Phase::During,
                limit: BOUNDED,
            }),
    )
    .setup(|ctx| async move {
        let redis = Redis::start(&ctx, "redis-two-caches", None, true).await?;
        let cache = CacheConfig::default()
            .max_entries(10_000)
            .ttl(Duration::from_secs(30));
        // Each process: its own store connection and invalidation channel.
        let mut processes = Vec::new();
        for _ in 0..2 {
            let store = redis.connect(&redis.url).await?;
            let channel = redis.invalidator(&redis.url).await?;
            let cached = store
                .timeout(REDIS_DEADLINE)
                .cached(cache.clone().invalidator(channel));
            processes.push(cached.shared());
        }
        let (a, b) = (processes[0].clone(), processes[1].clone());
        let proxy = redis.proxy.as_ref().map(FaultProxy::handle);
        let proxy =
            proxy.ok_or_else(|| ChaosError::scenario("redis-two-caches", "no proxy", None))?;
        let storm = Toxics {
            reset_peer: Some(Duration::from_millis(100)),
            ..Toxics::none()
        };
        let schedule = middle_third(
            &ctx,
            Action::proxy("connection resets", proxy.clone(), storm),
            Action::proxy("proxy clean", proxy, Toxics::none()),
        );
        let setup = Setup::new(a.shared())
            .process(b.shared())
            .schedule(schedule);
        redis.finish(setup).await
    })
}

/// Two processes with caches over one Redis; one process's invalidation
/// channel is cut while its data connection is fine.
pub fn redis_publish_lost() -> Scenario {
    Scenario::new(
        "redis-invalidation-cut",
        "two processes with local caches over one redis, kept coherent by RedisInvalidator; \
         for a third of the run process A's invalidation connections are refused (its data \
         connection is fine): A's writes succeed but cannot be announced, so B may serve \
         what A overwrote until A's channel is back (a documented window); after it, every \
         read is current and nothing is lost",
    )
    .requires(Requirement::Redis)
    .stale_tolerance(PUBLISH_BOUND)
    .invariants(Invariants(vec![
        Expect::limit(Expect::NoStaleReads, INVALIDATION_CUT_LIMIT),
        Expect::limit(Expect::NoResurrectedDeletes, INVALIDATION_CUT_LIMIT),
        Expect::ConsistentAfterFault,
        Expect::NoLostWrites,
        Expect::NoCorruptReads,
        Expect::NoHangs,
        Expect::NoErrorsIn(Phase::Before),
        Expect::NoErrorsIn(Phase::During),
        Expect::NoErrorsIn(Phase::After),
    ]))
    .setup(|ctx| async move {
        let redis = Redis::start(&ctx, "redis-invalidation-cut", None, true).await?;
        let cache = CacheConfig::default()
            .max_entries(10_000)
            .ttl(Duration::from_secs(30));
        let direct = redis.direct_url.clone();
        let proxied = redis.url.clone();
        let a = redis
            .connect(&direct)
            .await?
            .timeout(REDIS_DEADLINE)
            .cached(
                cache
                    .clone()
                    .invalidator(redis.invalidator(&proxied).await?),
            );
        let b = redis
            .connect(&direct)
            .await?
            .timeout(REDIS_DEADLINE)
            .cached(cache.invalidator(redis.invalidator(&direct).await?));
        let proxy = redis.proxy.as_ref().map(FaultProxy::handle);
        let proxy = proxy
            .ok_or_else(|| ChaosError::scenario("redis-invalidation-cut", "no proxy", None))?;
        let down = Toxics {
            down: true,
            ..Toxics::none()
        };
        let schedule = middle_third(
            &ctx,
            Action::proxy("A's invalidation channel cut", proxy.clone(), down),
            Action::proxy("A's invalidation channel back", proxy, Toxics::none()),
        );
        // A's publisher reconnects (200 ms at most), then pays its debt
        // (a retry every 100 ms).
        let setup = Setup::new(a.shared())
            .process(b.shared())
            .schedule(schedule)
            .settle(Duration::from_millis(500));
        redis.finish(setup).await
    })
}

/// Why another process may serve stale values while a process's
/// invalidation channel is cut.
pub const INVALIDATION_CUT_LIMIT: &str =
    "a process whose invalidation channel is down cannot tell the others what it wrote; \
     the Cached docs bound the window: until its channel is back, when it publishes \
     'forget everything'";
