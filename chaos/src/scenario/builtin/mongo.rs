//! Real-backend scenarios on MongoDB: a real MongoDB-compatible server
//! reached through `storestack-mongodb` (the official driver), with a real
//! Redis on the other side of the fallback, and real faults: the server
//! process killed, paused or restarted empty ([`crate::process`]), or the
//! network between the driver and the server blackholed by the fault proxy
//! ([`crate::proxy`]).
//!
//! The MongoDB is the one given with `--mongodb URL` (proxy faults only; a
//! collection of the run's own, cleared afterwards), or a `secantusd-rs`
//! the suite starts itself on a free port with its own data directory
//! with `--real` (required by the process faults). The Redis is `--redis
//! URL` or, with `--real`, the suite's own `redis-server`.

use std::time::Duration;

use storestack::layers::fallback::JournalCheck;
use storestack::{FallbackConfig, FallbackHandle, Store, StoreExt};
use storestack_mongodb::{MongoConfig, MongoStore};

use super::failover::empty_primary_invariants;
use super::redis::{address, hidden, middle_third, through, Redis, REDIS_DEADLINE};
use super::stacks::{
    breaker, converge, failed_over, fallback_config, repaired, Failover, BOUNDED, FAILED_OVER,
    REPAIRED,
};
use crate::error::{ChaosError, Result};
use crate::history::{ErrorClass, Phase};
use crate::invariants::{Expect, Invariants};
use crate::process::{DataOnRestart, MongoServer, ProcessHandle};
use crate::proxy::{FaultProxy, ProxyHandle, Toxics};
use crate::scenario::{Action, Requirement, Scenario, ScenarioContext, Setup};
use crate::workload::WorkloadConfig;

/// The deadline of a call to MongoDB: a loopback round trip takes about a
/// millisecond; a write of `secantusd-rs` (WiredTiger, journaled) on a
/// busy 2-core machine now and then a hundred or more.
const MONGO_DEADLINE: Duration = Duration::from_millis(250);

/// The longest an operation may take during a fault: a call can meet the
/// MongoDB deadline twice in a row (a read waits for the primary and the
/// key's journal entry on the secondary, then reads the secondary), plus
/// scheduling slack.
const MONGO_BOUNDED: Duration = MONGO_DEADLINE
    .saturating_mul(2)
    .saturating_add(Duration::from_millis(250));

/// What a MongoDB failover scenario expects: as the Redis ones, with the
/// latency bound of [`MONGO_BOUNDED`].
fn mongo_hidden() -> Invariants {
    let redis_bound = Expect::MaxLatency {
        phase: Phase::During,
        limit: BOUNDED,
    };
    hidden().without(&redis_bound).and(Expect::MaxLatency {
        phase: Phase::During,
        limit: MONGO_BOUNDED,
    })
}

/// The database of the runs.
const DATABASE: &str = "storestack_chaos";

/// The workload of the MongoDB scenarios: the default mix at a rate a
/// journaled single-node server keeps up with on a small machine (with the
/// fallback's per-read journal check, every read also reads the
/// secondary).
fn workload() -> WorkloadConfig {
    WorkloadConfig::default().rate(Some(400))
}

/// A MongoDB for one run: the server (when the suite owns it), where the
/// stack connects, and the run's collection.
struct Mongo {
    server: Option<MongoServer>,
    /// The URL the store connects to (the proxy's, when there is one).
    url: String,
    proxy: Option<FaultProxy>,
    collection: String,
}

impl Mongo {
    /// A MongoDB for scenario `name`: the suite's own when `own`, else
    /// `--mongodb URL` (or the suite's own with `--real`); behind a fault
    /// proxy when `proxied`.
    async fn start(ctx: &ScenarioContext, name: &str, own: bool, proxied: bool) -> Result<Self> {
        let (direct_url, server) = match (&ctx.mongodb_url, own) {
            (Some(url), false) => (url.clone(), None),
            _ => {
                let server = MongoServer::start().await?;
                (server.url(), Some(server))
            }
        };
        let proxy = if proxied {
            let upstream = address(&direct_url, 27017).await?;
            let config = crate::proxy::ProxyConfig::new(upstream).seed(ctx.seed);
            Some(FaultProxy::start_with(config).await?)
        } else {
            None
        };
        let url = match &proxy {
            Some(p) => through(&direct_url, p.addr())?,
            None => direct_url,
        };
        Ok(Mongo {
            server,
            url,
            proxy,
            collection: format!("{}_{:016x}", name.replace('-', "_"), ctx.seed),
        })
    }

    /// The server process; an error when the suite does not own it.
    fn process(&self) -> Result<ProcessHandle> {
        let server = self.server.as_ref().ok_or_else(|| ChaosError::NotRunning {
            program: "secantusd-rs".into(),
        })?;
        Ok(server.handle())
    }

    /// The proxy; an error when there is none.
    fn proxy(&self, name: &str) -> Result<ProxyHandle> {
        let proxy = self.proxy.as_ref().map(FaultProxy::handle);
        proxy.ok_or_else(|| ChaosError::scenario(name, "no proxy", None))
    }

    /// A client, scaled for short runs: server selection and connection
    /// give up after 500 ms, an operation after 1 s (the stack's Timeout
    /// cuts it sooner).
    async fn connect(&self) -> Result<MongoStore> {
        let config = MongoConfig::new(self.url.clone())
            .database(DATABASE)
            .collection(self.collection.clone())
            .server_selection_timeout(Duration::from_millis(500))
            .connect_timeout(Duration::from_millis(500))
            .operation_timeout(Duration::from_secs(1));
        MongoStore::connect(config).await.map_err(|e| {
            ChaosError::scenario("mongodb", "cannot connect to mongodb", Some(Box::new(e)))
        })
    }

    /// Hands the server and proxy to `setup`, and, on a server the suite
    /// does not own, the clearing of the run's collection.
    fn finish(self, setup: Setup, store: &MongoStore) -> Setup {
        let mut setup = setup;
        if self.server.is_none() {
            let store = store.clone();
            setup = setup.cleanup(move || async move {
                let _ = store.clear().await;
            });
        }
        if let Some(proxy) = self.proxy {
            setup = setup.keep_alive(proxy);
        }
        if let Some(server) = self.server {
            setup = setup.keep_alive(server);
        }
        setup
    }
}

/// Which side of the fallback MongoDB is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MongoSide {
    Primary,
    Secondary,
}

/// The failover stack over MongoDB and a Redis, MongoDB on `side`; the
/// setup keeps both servers (and proxies) alive.
async fn failover(
    ctx: &ScenarioContext,
    name: &str,
    mongo: Mongo,
    side: MongoSide,
) -> Result<Setup> {
    let redis = Redis::start(ctx, name, None, false).await?;
    let redis_store = redis.connect(&redis.url).await?;
    let mongo_store = mongo.connect().await?;
    let stack = match side {
        MongoSide::Primary => Failover::with_deadlines(
            (mongo_store.clone(), MONGO_DEADLINE),
            (redis_store, REDIS_DEADLINE),
        ),
        MongoSide::Secondary => Failover::with_deadlines(
            (redis_store, REDIS_DEADLINE),
            (mongo_store.clone(), MONGO_DEADLINE),
        ),
    };
    let fallback = stack.fallback.clone();
    let setup = stack
        .setup()
        .probe(FAILED_OVER, move || failed_over(&fallback));
    let setup = redis.finish(setup).await?;
    Ok(mongo.finish(setup, &mongo_store))
}

/// kill -9 of the MongoDB secondary, restarted with its data.
pub fn mongo_secondary_killed() -> Scenario {
    Scenario::new(
        "mongo-secondary-killed",
        "Fallback(redis, mongodb) on real servers: secantusd-rs (the secondary) is killed (-9) \
         for a third of the run and restarted with its data; redis serves alone and journals \
         what mongodb missed, repaired when it returns; callers see no error",
    )
    .requires(Requirement::OwnMongo)
    .requires(Requirement::Redis)
    .workload(workload())
    .invariants(mongo_hidden())
    .setup(|ctx| async move {
        let name = "mongo-secondary-killed";
        let mongo = Mongo::start(&ctx, name, true, false).await?;
        let process = mongo.process()?;
        let setup = failover(&ctx, name, mongo, MongoSide::Secondary).await?;
        Ok(setup.schedule(middle_third(
            &ctx,
            Action::kill("mongodb killed (-9)", process.clone()),
            Action::restart("mongodb restarted", process, DataOnRestart::Keep),
        )))
    })
}

/// SIGSTOP / SIGCONT of the MongoDB primary.
pub fn mongo_primary_paused() -> Scenario {
    Scenario::new(
        "mongo-primary-paused",
        "Fallback(mongodb, redis) on real servers: secantusd-rs (the primary) is paused \
         (SIGSTOP) for a third of the run: every call hangs until the 250 ms timeout cuts it, \
         the breaker opens, redis serves; nothing hangs, no error reaches callers",
    )
    .requires(Requirement::OwnMongo)
    .requires(Requirement::Redis)
    .workload(workload())
    .invariants(mongo_hidden())
    .setup(|ctx| async move {
        let name = "mongo-primary-paused";
        let mongo = Mongo::start(&ctx, name, true, false).await?;
        let process = mongo.process()?;
        let setup = failover(&ctx, name, mongo, MongoSide::Primary).await?;
        Ok(setup.schedule(middle_third(
            &ctx,
            Action::pause("mongodb paused (SIGSTOP)", process.clone()),
            Action::resume("mongodb resumed (SIGCONT)", process),
        )))
    })
}

/// The connection to the MongoDB primary holds every byte.
pub fn mongo_primary_blackholed() -> Scenario {
    Scenario::new(
        "mongo-primary-blackholed",
        "Fallback(mongodb, redis): the proxy between the mongodb driver and the server holds \
         every byte both ways for a third of the run (a silent partition); timeouts, breaker \
         and fallback hide it; held commands arrive late when it lifts",
    )
    .requires(Requirement::Mongo)
    .requires(Requirement::Redis)
    .workload(workload())
    .invariants(mongo_hidden())
    .setup(|ctx| async move {
        let name = "mongo-primary-blackholed";
        let mongo = Mongo::start(&ctx, name, false, true).await?;
        let proxy = mongo.proxy(name)?;
        let setup = failover(&ctx, name, mongo, MongoSide::Primary).await?;
        let blackhole = Toxics {
            blackhole: true,
            ..Toxics::none()
        };
        Ok(setup.schedule(middle_third(
            &ctx,
            Action::proxy("mongodb blackholed", proxy.clone(), blackhole),
            Action::proxy("proxy clean", proxy, Toxics::none()),
        )))
    })
}

/// The MongoDB primary is killed and comes back empty.
pub fn mongo_restarts_empty() -> Scenario {
    Scenario::new(
        "mongo-restarts-empty",
        "Fallback(mongodb, redis): secantusd-rs (the primary) is killed for a third of the run \
         and restarted with an EMPTY data directory: reads of the keys it lost go through to \
         redis, the loss is detected and it is resynced; nothing lost, stale or resurrected",
    )
    .requires(Requirement::OwnMongo)
    .requires(Requirement::Redis)
    .workload(workload())
    .invariants(empty_primary_invariants())
    .setup(|ctx| async move {
        let name = "mongo-restarts-empty";
        let mongo = Mongo::start(&ctx, name, true, false).await?;
        let process = mongo.process()?;
        let setup = failover(&ctx, name, mongo, MongoSide::Primary).await?;
        Ok(setup.schedule(middle_third(
            &ctx,
            Action::kill("mongodb killed (-9)", process.clone()),
            Action::restart("mongodb restarted empty", process, DataOnRestart::Wipe),
        )))
    })
}

/// Why a MongoDB killed with -9 may come back without the writes it
/// acknowledged last.
pub const UNSYNCED_LIMIT: &str =
    "secantusd-rs (the MongoDB stand-in) acknowledges a write before it is synced to disk, \
     so a kill -9 loses the writes of the last few milliseconds (measured here also with \
     write concern journal=true); a deleted key may then come back. With nothing in front \
     of it, no layer can recover them; behind a fallback, the other side keeps them";

/// MongoDB alone behind Timeout and CircuitBreaker, killed.
pub fn mongo_store_killed() -> Scenario {
    Scenario::new(
        "mongo-store-killed",
        "mongodb alone behind Timeout (250 ms) and CircuitBreaker: secantusd-rs is killed (-9) \
         for a third of the run and restarted with its data: transient errors during the \
         outage only, each within the deadline; writes acknowledged in the last milliseconds \
         before the kill may be lost by the server (a limit of secantusd-rs: see the notes)",
    )
    .requires(Requirement::OwnMongo)
    .workload(workload())
    .invariants(
        Invariants::strict()
            .without(&Expect::NoLostWrites)
            .without(&Expect::NoResurrectedDeletes)
            .without(&Expect::NoStaleReads)
            .and(Expect::limit(Expect::NoLostWrites, UNSYNCED_LIMIT))
            .and(Expect::limit(Expect::NoResurrectedDeletes, UNSYNCED_LIMIT))
            .and(Expect::limit(Expect::NoStaleReads, UNSYNCED_LIMIT))
            .and(Expect::ConsistentSinceFault)
            .and(Expect::ErrorsIn(Phase::During))
            .and(Expect::OnlyErrors(vec![
                ErrorClass::Timeout,
                ErrorClass::CircuitOpen,
                ErrorClass::Unavailable,
            ]))
            .and(Expect::MaxLatency {
                phase: Phase::During,
                limit: MONGO_BOUNDED,
            }),
    )
    .setup(|ctx| async move {
        let mongo = Mongo::start(&ctx, "mongo-store-killed", true, false).await?;
        let process = mongo.process()?;
        let store = mongo.connect().await?;
        let guarded = store
            .clone()
            .timeout(MONGO_DEADLINE)
            .circuit_breaker(breaker())
            .shared();
        let setup = Setup::new(guarded).schedule(middle_third(
            &ctx,
            Action::kill("mongodb killed (-9)", process.clone()),
            Action::restart("mongodb restarted", process, DataOnRestart::Keep),
        ));
        // Breakers opened during the outage fail fast for up to their open
        // period (1 s at most) after it: that is still the fault.
        Ok(mongo
            .finish(setup, &store)
            .settle(Duration::from_millis(1200)))
    })
}

/// The name of the probe that the partition of
/// [`mongo_redis_partition`] was partial.
pub(crate) const PARTIAL: &str =
    "only process A lost the primary: its breaker opened, B's never did";

/// The fallbacks of the partition: [`fallback_config`]'s short lease and
/// poll, with a settle above the longest write of the other process (a
/// Redis and a MongoDB deadline), as the Fallback's guarantees assume.
fn partition_config(check: JournalCheck) -> FallbackConfig {
    fallback_config()
        .settle(REDIS_DEADLINE + MONGO_DEADLINE + Duration::from_millis(50))
        .journal_check(check)
}

/// Ok when process A (cut) lost the primary (its breaker opened) and wrote
/// to the secondary alone, while process B (not cut) kept the primary (its
/// breaker never opened; a stray timeout on a loaded machine is not a
/// loss): the two disagreed about the primary, which is what the scenario
/// is about.
fn partial(a: &Failover, b: &Failover) -> std::result::Result<String, String> {
    let (sa, sb) = (a.fallback.status(), b.fallback.status());
    let (ba, bb) = (a.primary_breaker.stats(), b.primary_breaker.stats());
    let note = format!(
        "A: breaker opened {} times, primary failed {} times, {} failover reads, \
         {} degraded writes; B: breaker opened {} times, primary failed {} times, \
         {} failover reads, {} degraded writes",
        ba.opened,
        sa.primary.failures,
        sa.failover_reads,
        sa.degraded_writes,
        bb.opened,
        sb.primary.failures,
        sb.failover_reads,
        sb.degraded_writes
    );
    if ba.opened > 0 && sa.degraded_writes > 0 && bb.opened == 0 {
        Ok(note)
    } else {
        Err(note)
    }
}

/// [`repaired`] for both processes.
fn both_repaired(a: &FallbackHandle, b: &FallbackHandle) -> std::result::Result<String, String> {
    let (a, b) = (repaired(a), repaired(b));
    let note = |r: &std::result::Result<String, String>| match r {
        Ok(n) | Err(n) => n.clone(),
    };
    let both = format!("A: {}; B: {}", note(&a), note(&b));
    if a.is_ok() && b.is_ok() {
        Ok(both)
    } else {
        Err(both)
    }
}

/// Two processes over one Redis (primary) and one MongoDB (secondary),
/// each with its own clients and fallback in mode `check`; process A's
/// path to Redis is cut for the middle third of the run.
fn partition(name: &'static str, description: &'static str, check: JournalCheck) -> Scenario {
    Scenario::new(name, description)
        .requires(Requirement::Mongo)
        .requires(Requirement::Redis)
        // Fewer keys than the other MongoDB scenarios, so that the two
        // processes often read what the other just wrote.
        .workload(workload().keys(200))
        .invariants(mongo_hidden().and(Expect::probe(PARTIAL)))
        .setup(move |ctx| async move {
            let redis = Redis::start(&ctx, name, None, true).await?;
            let mongo = Mongo::start(&ctx, name, false, false).await?;
            let cut = redis.proxy.as_ref().map(FaultProxy::handle);
            let cut = cut.ok_or_else(|| ChaosError::scenario(name, "no proxy", None))?;
            // Only A's Redis client goes through the proxy.
            let mongo_a = mongo.connect().await?;
            let a = Failover::with_config(
                (redis.connect(&redis.url).await?, REDIS_DEADLINE),
                (mongo_a.clone(), MONGO_DEADLINE),
                partition_config(check),
            );
            let b = Failover::with_config(
                (redis.connect(&redis.direct_url).await?, REDIS_DEADLINE),
                (mongo.connect().await?, MONGO_DEADLINE),
                partition_config(check),
            );
            let (fa, fb) = (a.fallback.clone(), b.fallback.clone());
            let (ra, rb, oa) = (fa.clone(), fb.clone(), fa.clone());
            let (store_a, store_b) = (a.store.clone(), b.store.clone());
            let down = Toxics {
                down: true,
                ..Toxics::none()
            };
            let setup = Setup::new(store_a)
                .process(store_b)
                .converge(move || async move {
                    tokio::join!(converge(fa), converge(fb));
                })
                .probe(FAILED_OVER, move || failed_over(&oa))
                .probe(REPAIRED, move || both_repaired(&ra, &rb))
                .probe(PARTIAL, move || partial(&a, &b))
                .schedule(middle_third(
                    &ctx,
                    Action::proxy("A's path to redis cut", cut.clone(), down),
                    Action::proxy("A's path to redis back", cut, Toxics::none()),
                ));
            let setup = redis.finish(setup).await?;
            Ok(mongo.finish(setup, &mongo_a))
        })
}

/// A partial partition: one process's path to the Redis primary is cut,
/// the other's is not.
pub fn mongo_redis_partition() -> Scenario {
    partition(
        "mongo-redis-partition",
        "a partial partition: two processes, each with its own Fallback(redis, mongodb) and \
         its own connections, in read-lease mode (JournalCheck::Lease); for a third of the run the \
         proxy on process A's path to redis is down (connections closed, new ones refused) \
         while B still reaches redis: A writes to mongodb alone (journaled, its first such \
         write waiting out the read lease) while B keeps reading and writing redis. No read \
         of either process is stale, nothing is lost or resurrected, no error reaches callers",
        JournalCheck::Lease,
    )
}

/// The same partition with [`JournalCheck::Poll`], which lets B read
/// Redis' stale copy until its next poll: a canary that must fail.
pub fn canary_partition_poll() -> Scenario {
    partition(
        "canary-partition-poll",
        "mongo-redis-partition with JournalCheck::Poll (no read lease): B learns of A's \
         writes to mongodb only at its next poll and reads redis' stale copies meanwhile; \
         must FAIL with stale reads, proving the scenario catches what the lease prevents",
        JournalCheck::Poll,
    )
    .opt_in()
}
