//! Embedded failover scenarios: two memory stores under fault injection,
//! behind `Fallback(CircuitBreaker(Timeout(primary)), CircuitBreaker(Timeout(secondary)))`.
//! The fault runs from a third to two thirds of the run.

use storestack::layers::fallback::Side;
use storestack::layers::fault::{Flapping, OutageMode};
use storestack::{MemoryStore, Record, ScanCursor, Store};

use super::stacks::{Embedded, BOUNDED, DEADLINE, FAILED_OVER, REPAIRED, RESYNCED};
use crate::history::{ErrorClass, Phase};
use crate::invariants::{Expect, Invariants};
use crate::scenario::{Action, Scenario, Schedule};

/// The expectations of a fault the fallback must hide: nothing lost, stale
/// or resurrected, no error at all, every operation within [`BOUNDED`], the
/// fault observed and the journal repaired.
fn hidden() -> Invariants {
    Invariants::strict()
        .and(Expect::NoErrorsIn(Phase::During))
        .and(Expect::MaxLatency {
            phase: Phase::During,
            limit: BOUNDED,
        })
        .and(Expect::probe(FAILED_OVER))
        .and(Expect::probe(REPAIRED))
}

/// The primary is killed (refuses every call) and comes back with its data.
pub fn primary_killed() -> Scenario {
    Scenario::new(
        "primary-killed",
        "the primary refuses every call for a third of the run, then returns with its data: \
         the fallback serves from the secondary, journals, repairs; callers see no error",
    )
    .invariants(hidden())
    .setup(|ctx| async move {
        let stack = Embedded::new(&ctx);
        let p = &stack.primary;
        let schedule = Schedule::new()
            .at(
                ctx.at(1.0 / 3.0),
                Action::faults("primary killed", p, |f| f.set_down(true)),
            )
            .at(
                ctx.at(2.0 / 3.0),
                Action::faults("primary back", p, |f| f.set_down(false)),
            );
        Ok(stack.setup().schedule(schedule))
    })
}

/// The primary stops answering (SIGSTOP-like): calls hang until the
/// Timeout cuts them, then the breaker opens and the fallback takes over.
pub fn primary_paused() -> Scenario {
    Scenario::new(
        "primary-paused",
        "the primary hangs on every call for a third of the run: the timeout cuts each call, \
         the breaker opens, the fallback serves; nothing hangs, no error reaches callers",
    )
    .invariants(hidden())
    .setup(|ctx| async move {
        let stack = Embedded::new(&ctx);
        let p = &stack.primary;
        p.set_outage_mode(OutageMode::Hang);
        let schedule = Schedule::new()
            .at(
                ctx.at(1.0 / 3.0),
                Action::faults("primary paused", p, |f| f.set_down(true)),
            )
            .at(
                ctx.at(2.0 / 3.0),
                Action::faults("primary resumed", p, |f| f.set_down(false)),
            );
        Ok(stack.setup().schedule(schedule))
    })
}

/// The primary slows down around its deadline.
pub fn latency_spike() -> Scenario {
    Scenario::new(
        "latency-spike",
        "the primary answers in 20-80 ms (its deadline is 50 ms) for a third of the run: \
         slow calls time out and fail over; latency stays bounded, no error reaches callers",
    )
    .invariants(
        Invariants::strict()
            .and(Expect::NoErrorsIn(Phase::During))
            .and(Expect::MaxLatency {
                phase: Phase::During,
                limit: BOUNDED,
            }),
    )
    .setup(|ctx| async move {
        let stack = Embedded::new(&ctx);
        let p = &stack.primary;
        let (base, jitter) = (DEADLINE * 2 / 5, DEADLINE * 6 / 5);
        let schedule = Schedule::new()
            .at(
                ctx.at(1.0 / 3.0),
                Action::faults("primary slow", p, move |f| f.set_latency(base, jitter)),
            )
            .at(
                ctx.at(2.0 / 3.0),
                Action::faults("primary fast", p, |f| f.heal()),
            );
        Ok(stack.setup().schedule(schedule))
    })
}

/// The primary flaps: up 150 ms, down 100 ms, over and over.
pub fn flapping() -> Scenario {
    Scenario::new(
        "flapping",
        "the primary goes down for 100 ms every 250 ms for a third of the run: \
         repeated failover and repair; nothing lost or stale, no error reaches callers",
    )
    .invariants(hidden())
    .setup(|ctx| async move {
        let stack = Embedded::new(&ctx);
        let p = &stack.primary;
        let flaps = Flapping::new(
            std::time::Duration::from_millis(150),
            std::time::Duration::from_millis(100),
        );
        let schedule = Schedule::new()
            .at(
                ctx.at(1.0 / 3.0),
                Action::faults("primary flapping", p, move |f| {
                    f.restart_schedule();
                    f.set_flapping(Some(flaps));
                }),
            )
            .at(
                ctx.at(2.0 / 3.0),
                Action::faults("primary steady", p, |f| f.set_flapping(None)),
            );
        Ok(stack.setup().schedule(schedule))
    })
}

/// The secondary is down: the primary serves, writes are journaled on it
/// and repaired onto the secondary when it returns.
pub fn secondary_down() -> Scenario {
    Scenario::new(
        "secondary-down",
        "the secondary refuses every call for a third of the run: the primary serves alone, \
         journals what the secondary missed and repairs it; callers see no error",
    )
    .invariants(hidden())
    .setup(|ctx| async move {
        let stack = Embedded::new(&ctx);
        let s = &stack.secondary;
        let schedule = Schedule::new()
            .at(
                ctx.at(1.0 / 3.0),
                Action::faults("secondary down", s, |f| f.set_down(true)),
            )
            .at(
                ctx.at(2.0 / 3.0),
                Action::faults("secondary back", s, |f| f.set_down(false)),
            );
        Ok(stack.setup().schedule(schedule))
    })
}

/// Both sides stop answering: callers get clear, transient errors within
/// the deadline; nothing hangs; everything recovers afterwards.
pub fn both_down() -> Scenario {
    Scenario::new(
        "both-down",
        "both stores hang on every call for a quarter of the run: callers get transient errors \
         (timeout, circuit open, unavailable) within the deadline, nothing hangs, and the \
         stack recovers without losing an acknowledged write",
    )
    .invariants(
        Invariants::strict()
            .and(Expect::ErrorsIn(Phase::During))
            .and(Expect::OnlyErrors(vec![
                ErrorClass::Timeout,
                ErrorClass::CircuitOpen,
                ErrorClass::Unavailable,
            ]))
            .and(Expect::MaxLatency {
                phase: Phase::During,
                limit: BOUNDED,
            })
            .and(Expect::probe(REPAIRED)),
    )
    .setup(|ctx| async move {
        let stack = Embedded::new(&ctx);
        let (p, s) = (&stack.primary, &stack.secondary);
        for side in [p, s] {
            side.set_outage_mode(OutageMode::Hang);
        }
        // From a quarter to half of the run, so that the breakers' last
        // open period (counted as the fault) ends well before the run.
        let schedule = Schedule::new()
            .at(
                ctx.at(0.25),
                Action::faults("primary down", p, |f| f.set_down(true)),
            )
            .at(
                ctx.at(0.25),
                Action::faults("secondary down", s, |f| f.set_down(true)),
            )
            .at(
                ctx.at(0.5),
                Action::faults("secondary back", s, |f| f.set_down(false)),
            )
            .at(
                ctx.at(0.5),
                Action::faults("primary back", p, |f| f.set_down(false)),
            );
        // Breakers opened during the outage fail fast for up to their open
        // period (1 s at most) after it: that is still the fault.
        Ok(stack
            .setup()
            .schedule(schedule)
            .settle(std::time::Duration::from_millis(1200)))
    })
}

/// The expectations of a side that comes back empty or with old data:
/// nothing lost, stale or resurrected, no error, the loss detected and the
/// side resynced.
pub fn empty_primary_invariants() -> Invariants {
    Invariants::strict()
        .and(Expect::NoErrorsIn(Phase::During))
        .and(Expect::probe(REPAIRED))
        .and(Expect::probe(RESYNCED))
}

/// `side`'s data, read under its fault injection.
fn data_of(stack: &Embedded, side: Side) -> MemoryStore {
    match side {
        Side::Primary => stack.primary_data.clone(),
        Side::Secondary => stack.secondary_data.clone(),
    }
}

/// A side dies, loses its data and comes back empty.
fn restarts_empty(name: &'static str, side: Side, about: &'static str) -> Scenario {
    Scenario::new(name, about)
        .invariants(empty_primary_invariants())
        .setup(move |ctx| async move {
            let stack = Embedded::new(&ctx);
            let faults = match side {
                Side::Primary => &stack.primary,
                Side::Secondary => &stack.secondary,
            };
            let data = data_of(&stack, side);
            let schedule = Schedule::new()
                .at(
                    ctx.at(1.0 / 3.0),
                    Action::faults("killed", faults, |f| f.set_down(true)),
                )
                .at(
                    ctx.at(1.0 / 2.0),
                    Action::new("data wiped", move || async move {
                        data.clear().await.map_err(|e| {
                            crate::ChaosError::scenario("wipe", "clear", Some(e.into()))
                        })
                    }),
                )
                .at(
                    ctx.at(2.0 / 3.0),
                    Action::faults("back, empty", faults, |f| f.set_down(false)),
                );
            Ok(stack.setup().schedule(schedule))
        })
}

/// The primary dies, loses its data and comes back empty.
pub fn primary_restarts_empty() -> Scenario {
    restarts_empty(
        "primary-restarts-empty",
        Side::Primary,
        "the primary goes down for a third of the run and comes back EMPTY: reads of keys it \
         lost go through to the secondary, its loss is detected (its identity key is gone) and \
         it is resynced from the secondary; nothing lost, stale or resurrected",
    )
}

/// The secondary dies, loses its data and comes back empty.
pub fn secondary_restarts_empty() -> Scenario {
    restarts_empty(
        "secondary-restarts-empty",
        Side::Secondary,
        "the secondary goes down for a third of the run and comes back EMPTY: the primary \
         serves throughout, the secondary's loss is detected and it is resynced from the \
         primary; nothing lost, stale or resurrected",
    )
}

/// The primary dies and comes back with OLD data: a snapshot taken well
/// before the outage (as a restore from a backup would).
pub fn primary_restarts_old() -> Scenario {
    Scenario::new(
        "primary-restarts-old",
        "a snapshot of the primary is taken at a sixth of the run; the primary goes down at a \
         third and comes back at two thirds holding the snapshot (values since overwritten, \
         keys since deleted, keys since created missing): its heartbeat is older than the \
         secondary's record of it, so it is distrusted and resynced; nothing stale or resurrected",
    )
    .invariants(empty_primary_invariants())
    .setup(|ctx| async move {
        let stack = Embedded::new(&ctx);
        let p = &stack.primary;
        let data = stack.primary_data.clone();
        let snapshot = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let (taken, restored) = (snapshot.clone(), snapshot);
        let (snap_data, restore_data) = (data.clone(), data);
        let schedule = Schedule::new()
            .at(
                ctx.at(1.0 / 6.0),
                Action::new("primary snapshot taken", move || async move {
                    let records = snapshot_of(&snap_data).await?;
                    *taken.lock() = records;
                    Ok(())
                }),
            )
            .at(
                ctx.at(1.0 / 3.0),
                Action::faults("primary killed", p, |f| f.set_down(true)),
            )
            .at(
                ctx.at(1.0 / 2.0),
                Action::new("primary restored from the snapshot", move || async move {
                    let records = restored.lock().clone();
                    let fail = |e: storestack::StoreError| {
                        crate::ChaosError::scenario("restore", "write", Some(e.into()))
                    };
                    restore_data.clear().await.map_err(fail)?;
                    for (key, record) in records {
                        restore_data.set(&key, record).await.map_err(fail)?;
                    }
                    Ok(())
                }),
            )
            .at(
                ctx.at(2.0 / 3.0),
                Action::faults("primary back, old", p, |f| f.set_down(false)),
            );
        Ok(stack.setup().schedule(schedule))
    })
}

/// Every record of `store` (reserved keys included), as a backup holds it.
async fn snapshot_of(store: &MemoryStore) -> Result<Vec<(String, Record)>, crate::ChaosError> {
    let fail =
        |e: storestack::StoreError| crate::ChaosError::scenario("snapshot", "read", Some(e.into()));
    let mut out = Vec::new();
    let mut cursor = ScanCursor::start();
    loop {
        let page = store.scan("", cursor, 1000).await.map_err(fail)?;
        for key in page.keys {
            if let Some(record) = store.get(&key).await.map_err(fail)? {
                out.push((key, record));
            }
        }
        match page.next {
            Some(next) => cursor = next,
            None => return Ok(out),
        }
    }
}
