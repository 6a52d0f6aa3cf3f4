//! The scenario catalogue: every built-in scenario with the invariants it
//! expects.
//!
//! **Embedded** scenarios need no server: memory stores behind fault
//! injection (`storestack::layers::fault`), so `cargo run -p
//! storestack-chaos` runs them anywhere. The failover ones use
//! `Fallback(CircuitBreaker(Timeout(primary)), CircuitBreaker(Timeout(secondary)))`.
//!
//! | scenario | fault (middle third of the run) | expected |
//! |---|---|---|
//! | `baseline` | none | no error, nothing lost or stale |
//! | `store-down` | a lone store refuses every call | `Unavailable` during the fault only; nothing lost |
//! | `primary-killed` | primary refuses every call | no error: failover, journal, repair |
//! | `primary-paused` | primary hangs | Timeout cuts each call, breaker opens; no error, latency bounded |
//! | `latency-spike` | primary answers in 20–80 ms (deadline 50 ms) | no error, latency bounded |
//! | `flapping` | primary down 100 ms of every 250 ms | no error, nothing lost or stale |
//! | `secondary-down` | secondary refuses every call | no error; repaired onto the secondary |
//! | `both-down` | both hang | transient errors within the deadline, nothing hangs, recovery |
//! | `primary-restarts-empty` | primary down, then back EMPTY | no error, nothing lost, stale or resurrected; the loss detected and the primary resynced |
//! | `secondary-restarts-empty` | secondary down, then back EMPTY | the same, the secondary resynced |
//! | `primary-restarts-old` | primary down, then back with a snapshot taken before the outage | the same: old values, deleted keys and missing keys never served |
//! | `corrupted-values` | 5 % of primary reads damaged | `Corrupt` surfaced, never served, no failover, no breaker trip |
//! | `migration-switch-in-outage` | new store down while the migration goes write-both 100 % and read-new | writes to both fail (the documented price), reads served from old, nothing lost |
//! | `two-caches` | two processes with caches; 10 % store errors, half after applying | no stale read beyond the invalidation delivery bound |
//! | `half-open-storm` | a store hangs behind a breaker, 32 callers | at most 2 trial calls at once when half-open |
//!
//! **Real-backend** scenarios ([`redis`]) run against a real Redis (`--redis
//! URL`, or `--real` for the suite's own `redis-server`): killed,
//! paused, blackholed, slowed, reset, restarted empty, and two processes
//! with caches.
//!
//! **MongoDB** scenarios ([`mongo`]) run against a real MongoDB-compatible
//! server (`--mongodb URL`, or `--real` for the suite's own
//! `secantusd-rs`) and a Redis on the other side of the fallback:
//!
//! | scenario | fault (middle third of the run) | expected |
//! |---|---|---|
//! | `mongo-secondary-killed` | Fallback(redis, mongodb): mongodb kill -9, restarted with its data | no error; journaled on redis, repaired |
//! | `mongo-primary-paused` | Fallback(mongodb, redis): mongodb SIGSTOP / SIGCONT | no error, latency bounded |
//! | `mongo-primary-blackholed` | Fallback(mongodb, redis): the proxy holds every byte | no error, latency bounded |
//! | `mongo-restarts-empty` | Fallback(mongodb, redis): mongodb killed, back EMPTY | as `primary-restarts-empty` |
//! | `mongo-store-killed` | mongodb alone (Timeout, CircuitBreaker): kill -9 | transient errors during the outage only, within the deadline; the server may lose its last acknowledged writes (a limit of secantusd-rs) |
//! | `mongo-redis-partition` | two processes, each its own Fallback(redis, mongodb) in the default (read lease) mode: the proxy on process A's path to redis is down, B's path is not | no error; A journals on mongodb, B never reads redis' stale copy; nothing lost, stale or resurrected in either process; A's breaker opens, B's never |
//!
//! **Canaries** run only when named: deliberately broken stacks that must
//! FAIL, proving the checker catches lost writes and stale reads
//! (`canary-dropped-writes`, `canary-stale-caches`; and, with `--real`,
//! `canary-partition-poll`: `mongo-redis-partition` in
//! `JournalCheck::Poll` mode, whose process B reads redis' stale copies).

mod failover;
mod migration;
pub mod mongo;
mod other;
pub mod redis;
mod stacks;
mod wrappers;

pub use failover::{
    both_down, empty_primary_invariants, flapping, latency_spike, primary_killed, primary_paused,
    primary_restarts_empty, primary_restarts_old, secondary_down, secondary_restarts_empty,
};
pub use migration::migration_during_outage;
pub use other::{
    baseline, canary_dropped_writes, canary_stale_caches, corrupted_values, half_open_storm,
    store_down, two_caches,
};

use super::Scenario;

/// The embedded scenarios, in the order the suite runs them.
pub fn embedded() -> Vec<Scenario> {
    vec![
        baseline(),
        store_down(),
        primary_killed(),
        primary_paused(),
        latency_spike(),
        flapping(),
        secondary_down(),
        both_down(),
        primary_restarts_empty(),
        secondary_restarts_empty(),
        primary_restarts_old(),
        corrupted_values(),
        migration_during_outage(),
        two_caches(),
        half_open_storm(),
    ]
}

/// The real-backend scenarios (skipped unless their backend is given).
pub fn real() -> Vec<Scenario> {
    vec![
        redis::redis_primary_killed(),
        redis::redis_primary_paused(),
        redis::redis_blackholed(),
        redis::redis_latency_spike(),
        redis::redis_reset_storm(),
        redis::redis_restarts_empty(),
        redis::redis_two_caches(),
        redis::redis_publish_lost(),
        mongo::mongo_secondary_killed(),
        mongo::mongo_primary_paused(),
        mongo::mongo_primary_blackholed(),
        mongo::mongo_restarts_empty(),
        mongo::mongo_store_killed(),
        mongo::mongo_redis_partition(),
    ]
}

/// The canaries (opt-in: they must fail).
pub fn canaries() -> Vec<Scenario> {
    vec![
        canary_dropped_writes(),
        canary_stale_caches(),
        mongo::canary_partition_poll(),
    ]
}

/// Everything: embedded, real-backend, canaries.
pub fn all() -> Vec<Scenario> {
    let mut all = embedded();
    all.extend(real());
    all.extend(canaries());
    all
}

#[cfg(test)]
mod tests;
