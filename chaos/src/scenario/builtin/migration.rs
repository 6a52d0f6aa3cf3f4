//! A migration switched from phase to phase while the new store is down.

use std::time::Duration;

use storestack::layers::migration::Phase;
use storestack::{MemoryStore, Migration, StoreExt};

use super::stacks::{breaker, faults, DEADLINE};
use crate::history::{ErrorClass, Phase as RunPhase};
use crate::invariants::{Expect, Invariants};
use crate::scenario::{Action, Scenario, Schedule, Setup};

const PHASES_RAN: &str = "every phase switch was applied";

/// `Migration(old, new)` goes `OldOnly` → `WriteBoth(50)` → (new goes
/// down) → `WriteBoth(100)` → `ReadNew` → (new comes back).
pub fn migration_during_outage() -> Scenario {
    Scenario::new(
        "migration-switch-in-outage",
        "a migration from one memory store to another goes old-only, write-both 50%, then, \
         while the new store refuses every call, write-both 100% and read-new; the new store \
         comes back: writes of keys written to both fail during the outage (the documented \
         price), reads are served from the old store, nothing is lost, stale or resurrected",
    )
    .invariants(
        Invariants::strict()
            .and(Expect::ErrorsIn(RunPhase::During))
            .and(Expect::OnlyErrors(vec![
                ErrorClass::Unavailable,
                ErrorClass::CircuitOpen,
                ErrorClass::Timeout,
            ]))
            .and(Expect::probe(PHASES_RAN)),
    )
    .setup(|ctx| async move {
        let old = MemoryStore::new()
            .fault_injection(faults(&ctx, 1))
            .timeout(DEADLINE)
            .circuit_breaker(breaker());
        let new = MemoryStore::new().fault_injection(faults(&ctx, 2));
        let new_faults = new.handle();
        let new = new.timeout(DEADLINE).circuit_breaker(breaker());
        let migration = Migration::new(old, new);
        let phases = migration.handle().clone();
        let switch = |label: &'static str, phase: Phase| {
            let phases = phases.clone();
            Action::new(label, move || async move {
                phases.set(phase).map(|_| ()).map_err(|e| {
                    crate::ChaosError::scenario("migration", "phase switch", Some(Box::new(e)))
                })
            })
        };
        let schedule = Schedule::new()
            .at(
                ctx.at(0.15),
                switch("write both 50%", Phase::write_both(50)),
            )
            .at(
                ctx.at(0.25),
                Action::faults("new store down", &new_faults, |f| f.set_down(true)),
            )
            .at(
                ctx.at(0.3),
                switch("write both 100%", Phase::write_both(100)),
            )
            .at(ctx.at(0.4), switch("read new", Phase::ReadNew))
            .at(
                ctx.at(0.5),
                Action::faults("new store back", &new_faults, |f| f.set_down(false)),
            );
        let handle = phases.clone();
        let setup = Setup::new(migration.shared())
            .schedule(schedule)
            // The new store's breaker may stay open one period after it.
            .settle(Duration::from_secs(1))
            .probe(PHASES_RAN, move || {
                let phase = handle.phase();
                if phase == Phase::ReadNew {
                    Ok(format!("ended in {phase:?}"))
                } else {
                    Err(format!("ended in {phase:?}, not ReadNew"))
                }
            });
        Ok(setup)
    })
}
