//! Embedded scenarios beyond failover: the control runs, corruption,
//! caches of two processes, a breaker's half-open storm, and the canaries
//! that must fail.

use std::sync::atomic::Ordering;
use std::time::Duration;

use storestack::layers::fault::OutageMode;
use storestack::{
    BreakerConfig, CacheConfig, EncryptedLayer, FaultInjection, Key, Keyring, LocalInvalidator,
    MemoryStore, StoreExt,
};

use super::stacks::{faults, Failover, DEADLINE, REPAIRED};
use super::wrappers::{DropsWrites, TrialGauge};
use crate::history::{ErrorClass, Phase};
use crate::invariants::{Expect, Invariants};
use crate::scenario::{Action, Scenario, Schedule, Setup};
use crate::workload::WorkloadConfig;

/// No fault at all: every operation succeeds, nothing hangs, nothing is
/// lost or stale.
pub fn baseline() -> Scenario {
    Scenario::new(
        "baseline",
        "memory store, no fault: every operation succeeds, nothing is lost or stale",
    )
    .invariants(Invariants::strict().and(Expect::MinAvailability(100.0)))
}

/// The only store refuses every operation from a third to two thirds of
/// the run, with nothing in front of it.
pub fn store_down() -> Scenario {
    Scenario::new(
        "store-down",
        "memory store without fallback refuses every call for a third of the run: \
         unavailable errors during the outage only, nothing hangs, nothing lost",
    )
    .invariants(
        Invariants::strict()
            .and(Expect::ErrorsIn(Phase::During))
            .and(Expect::OnlyErrors(vec![ErrorClass::Unavailable])),
    )
    .setup(|ctx| async move {
        let store = MemoryStore::new().fault_injection(faults(&ctx, 1));
        let f = store.handle();
        let schedule = Schedule::new()
            .at(
                ctx.at(1.0 / 3.0),
                Action::faults("store down", &f, |f| f.set_down(true)),
            )
            .at(
                ctx.at(2.0 / 3.0),
                Action::faults("store up", &f, |f| f.set_down(false)),
            );
        Ok(Setup::new(store.shared()).schedule(schedule))
    })
}

/// The key every corrupted-values run encrypts with, derived from its seed.
fn key(seed: u64) -> Key {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&crate::seed::derive(seed, 100 + i as u64).to_le_bytes());
    }
    Key::from_bytes("chaos", &bytes).expect("a 32-byte key with a valid id")
}

const NO_FAILOVER: &str = "corruption neither failed over nor tripped a breaker";

/// Values read from the primary come back damaged.
pub fn corrupted_values() -> Scenario {
    Scenario::new(
        "corrupted-values",
        "for a third of the run 5% of the values read from the primary have a byte flipped; \
         each side decrypts its own values (Encrypted inside each side), so the damage meets \
         the fallback and the breaker as Corrupt (or Unsupported, when the flip lands on the \
         header's version byte): surfaced to the caller, never served, never \
         a failover, never a panic",
    )
    .invariants(
        Invariants::strict()
            .and(Expect::ErrorsIn(Phase::During))
            // A flipped byte that lands on the encryption header's version
            // reads as a newer format (`Unsupported`): from the bytes alone
            // the two cannot be told apart. Neither is an outage.
            .and(Expect::OnlyErrors(vec![
                ErrorClass::Corrupt,
                ErrorClass::Unsupported,
            ]))
            .and(Expect::probe(NO_FAILOVER))
            .and(Expect::probe(REPAIRED)),
    )
    .setup(|ctx| async move {
        let encryption = EncryptedLayer::new(Keyring::from(key(ctx.seed)));
        let primary = FaultInjection::new(MemoryStore::new(), faults(&ctx, 1));
        let p = primary.handle();
        let stack = Failover::new(
            primary.encrypted(encryption.clone()),
            MemoryStore::new().encrypted(encryption),
            DEADLINE,
        );
        let (fallback, breaker) = (stack.fallback.clone(), stack.primary_breaker.clone());
        let schedule = Schedule::new()
            .at(
                ctx.at(1.0 / 3.0),
                Action::faults("primary reads corrupt", &p, |f| f.set_corrupt_rate(0.05)),
            )
            .at(
                ctx.at(2.0 / 3.0),
                Action::faults("primary reads clean", &p, |f| f.set_corrupt_rate(0.0)),
            );
        let setup = stack
            .setup()
            .schedule(schedule)
            .probe(NO_FAILOVER, move || {
                let s = fallback.status();
                let b = breaker.stats();
                let note = format!(
                    "{} failover reads, primary failed {} times, breaker opened {} times",
                    s.failover_reads, s.primary.failures, b.opened
                );
                if s.failover_reads == 0 && s.primary.failures == 0 && b.opened == 0 {
                    Ok(note)
                } else {
                    Err(note)
                }
            });
        Ok(setup)
    })
}

/// How long another process may serve its cached copy after a write: the
/// delivery of the in-process invalidation message (a task wake-up on a
/// busy 2-core machine).
const PUBLISH_BOUND: Duration = Duration::from_millis(50);

/// Two processes with local caches over one store.
pub fn two_caches() -> Scenario {
    Scenario::new(
        "two-caches",
        "two processes, each with a local cache, over one store kept coherent by invalidation \
         messages; for a third of the run 10% of the store's calls fail, half of them after \
         the write was applied (outcome unknown): no stale read beyond the delivery bound \
         of an invalidation (50 ms), nothing lost",
    )
    .stale_tolerance(PUBLISH_BOUND)
    .invariants(
        Invariants::strict()
            .and(Expect::ErrorsIn(Phase::During))
            .and(Expect::OnlyErrors(vec![ErrorClass::Unavailable])),
    )
    .setup(|ctx| async move {
        let shared = MemoryStore::new().fault_injection(faults(&ctx, 1));
        let f = shared.handle();
        let channel = LocalInvalidator::new();
        let config = CacheConfig::default()
            .max_entries(10_000)
            .ttl(Duration::from_secs(30))
            .invalidator(channel.clone());
        let a = shared.clone().cached(config.clone());
        let b = shared.cached(config);
        let schedule = Schedule::new()
            .at(
                ctx.at(1.0 / 3.0),
                Action::faults("store failing", &f, |f| {
                    f.set_error_rate(0.05);
                    f.set_reply_loss_rate(0.05);
                }),
            )
            .at(
                ctx.at(2.0 / 3.0),
                Action::faults("store healthy", &f, |f| f.heal()),
            );
        Ok(Setup::new(a.shared())
            .process(b.shared())
            .schedule(schedule))
    })
}

/// How many trial calls the storm's breaker admits at once.
const TRIALS: u32 = 2;
const BOUNDED_TRIALS: &str = "at most 2 trial calls at once while half-open";

/// Many concurrent callers hit a breaker as it half-opens.
pub fn half_open_storm() -> Scenario {
    Scenario::new(
        "half-open-storm",
        "32 concurrent callers on a store that hangs for a quarter of the run behind a timeout \
         and a breaker (2 trial calls when half-open): every half-open period admits at most \
         2 calls at once and rejects the rest fast; nothing hangs, nothing lost",
    )
    .workload(WorkloadConfig::default().concurrency(32).rate(Some(4_000)))
    .invariants(
        Invariants::strict()
            .and(Expect::ErrorsIn(Phase::During))
            .and(Expect::OnlyErrors(vec![
                ErrorClass::Timeout,
                ErrorClass::CircuitOpen,
            ]))
            .and(Expect::probe(BOUNDED_TRIALS)),
    )
    .setup(|ctx| async move {
        let faulty = MemoryStore::new().fault_injection(faults(&ctx, 1));
        let f = faulty.handle();
        f.set_outage_mode(OutageMode::Hang);
        let (gauge, trials) = TrialGauge::new(faulty);
        let store = gauge.timeout(DEADLINE).circuit_breaker(
            BreakerConfig::default()
                .consecutive_failures(5)
                .open_for(Duration::from_millis(100), Duration::from_millis(400))
                .half_open(TRIALS, TRIALS),
        );
        let breaker = store.handle();
        let _ = trials.breaker.set(breaker.clone());
        let schedule = Schedule::new()
            .at(
                ctx.at(0.25),
                Action::faults("store hangs", &f, |f| f.set_down(true)),
            )
            .at(
                ctx.at(0.5),
                Action::faults("store answers", &f, |f| f.set_down(false)),
            );
        let setup = Setup::new(store.shared())
            .schedule(schedule)
            // The breaker may stay open for one period after the fault.
            .settle(Duration::from_secs(1))
            .probe(BOUNDED_TRIALS, move || {
                let max = trials.max_in_flight.load(Ordering::SeqCst);
                let note = format!(
                    "{} trial calls, at most {max} at once; breaker opened {} times, \
                     rejected {} calls",
                    trials.trials.load(Ordering::SeqCst),
                    breaker.stats().opened,
                    breaker.stats().rejected,
                );
                if max > u64::from(TRIALS) {
                    Err(note)
                } else if trials.trials.load(Ordering::SeqCst) == 0 {
                    Err(format!("the breaker never half-opened: {note}"))
                } else {
                    Ok(note)
                }
            });
        Ok(setup)
    })
}

/// Canary: a store that acknowledges one write in 20 without making it.
/// Must fail: it proves the checker catches lost writes.
pub fn canary_dropped_writes() -> Scenario {
    Scenario::new(
        "canary-dropped-writes",
        "CANARY, must FAIL: a store that acknowledges one set in 20 without making it; \
         the checker must report lost writes and stale reads",
    )
    .opt_in()
    .invariants(Invariants::strict())
    .setup(|_| async move {
        Ok(Setup::new(
            DropsWrites::new(MemoryStore::new(), 20).shared(),
        ))
    })
}

/// Canary: two processes with local caches and no invalidation between
/// them. Must fail: it proves the checker catches stale reads.
pub fn canary_stale_caches() -> Scenario {
    Scenario::new(
        "canary-stale-caches",
        "CANARY, must FAIL: two processes with local caches over one store and no \
         invalidation between them; the checker must report stale reads",
    )
    .opt_in()
    .invariants(Invariants::strict())
    .setup(|_| async move {
        let shared = MemoryStore::new();
        let config = CacheConfig::default().ttl(Duration::from_secs(30));
        let a = shared.clone().cached(config.clone());
        let b = shared.cached(config);
        Ok(Setup::new(a.shared()).process(b.shared()))
    })
}
