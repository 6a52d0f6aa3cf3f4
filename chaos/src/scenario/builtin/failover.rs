//! Embedded failover scenarios: two memory stores under fault injection,
//! behind `Fallback(CircuitBreaker(Timeout(primary)), CircuitBreaker(Timeout(secondary)))`.
//! The fault runs from a third to two thirds of the run.

use storestack::layers::fault::{Flapping, OutageMode};
use storestack::Store;

use super::stacks::{Embedded, BOUNDED, DEADLINE, FAILED_OVER, REPAIRED};
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

/// Why a primary that comes back empty loses data behind a fallback.
pub const EMPTY_PRIMARY_LIMIT: &str =
    "the fallback's journal records the writes a side missed while it was unreachable, not \
     data a side lost: keys last written while both sides were up have no journal entry, so \
     their reads go to the restarted primary, which answers absent (their copies on the \
     secondary are not consulted)";

/// The expectations of a primary that comes back empty.
pub fn empty_primary_invariants() -> Invariants {
    Invariants(vec![
        Expect::limit(Expect::NoLostWrites, EMPTY_PRIMARY_LIMIT),
        Expect::limit(Expect::NoStaleReads, EMPTY_PRIMARY_LIMIT),
        Expect::ConsistentSinceFault,
        Expect::NoResurrectedDeletes,
        Expect::NoCorruptReads,
        Expect::NoHangs,
        Expect::NoErrorsIn(Phase::Before),
        Expect::NoErrorsIn(Phase::During),
        Expect::NoErrorsIn(Phase::After),
        Expect::probe(REPAIRED),
    ])
}

/// The primary dies, loses its data and comes back empty.
pub fn primary_restarts_empty() -> Scenario {
    Scenario::new(
        "primary-restarts-empty",
        "the primary goes down for a third of the run and comes back EMPTY: writes made \
         during the outage are repaired onto it, but keys written only before it are lost \
         to readers (a documented limit: see the notes); keys written since the fault stay \
         consistent",
    )
    .invariants(empty_primary_invariants())
    .setup(|ctx| async move {
        let stack = Embedded::new(&ctx);
        let p = &stack.primary;
        let data = stack.primary_data.clone();
        let schedule = Schedule::new()
            .at(
                ctx.at(1.0 / 3.0),
                Action::faults("primary killed", p, |f| f.set_down(true)),
            )
            .at(
                ctx.at(1.0 / 2.0),
                Action::new("primary data wiped", move || async move {
                    data.clear()
                        .await
                        .map_err(|e| crate::ChaosError::scenario("wipe", "clear", Some(e.into())))
                }),
            )
            .at(
                ctx.at(2.0 / 3.0),
                Action::faults("primary back, empty", p, |f| f.set_down(false)),
            );
        Ok(stack.setup().schedule(schedule))
    })
}
