//! The `/health` report: the breaker of each side and the fallback's
//! status, as JSON.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use storestack::layers::circuit_breaker::BreakerStats;
use storestack::layers::fallback::{FallbackStatus, SideStatus};
use storestack::{BreakerHandle, BreakerState, FallbackHandle};

/// Overall verdict of a [`Health`] report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Both stores reachable, both breakers closed, nothing awaiting repair.
    Ok,
    /// Serving, but a store is unreachable, a breaker is not closed, or
    /// keys await repair.
    Degraded,
    /// Both stores unreachable: sessions cannot be served.
    Down,
}

/// The `/health` report.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Health {
    /// The verdict (`/health` answers 503 when it is `down`).
    pub status: Verdict,
    /// The breakers guarding each store.
    pub breakers: Breakers,
    /// The fallback between them.
    pub fallback: FallbackReport,
}

/// The breaker of each side.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Breakers {
    /// Around Redis (the primary).
    pub redis: BreakerReport,
    /// Around MongoDB (the secondary).
    pub mongodb: BreakerReport,
}

/// One breaker.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BreakerReport {
    /// `closed`, `open`, `half_open`, `forced_open` or `forced_closed`.
    pub state: &'static str,
    /// Calls failed fast so far.
    pub rejected: u64,
    /// Times it opened so far.
    pub opened: u64,
    /// While open: milliseconds before trial calls are let through.
    pub open_remaining_ms: Option<u64>,
}

/// The fallback's status ([`FallbackStatus`]).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct FallbackReport {
    /// A side is unreachable or keys await repair.
    pub degraded: bool,
    /// Redis.
    pub primary: SideReport,
    /// MongoDB.
    pub secondary: SideReport,
    /// Keys written to one side only, awaiting repair.
    pub journaled_keys: usize,
    /// Of those, keys whose newest write is in Redis only.
    pub newest_on_primary: usize,
    /// Of those, keys whose newest write is in MongoDB only (read from
    /// there until Redis is repaired).
    pub newest_on_secondary: usize,
    /// Keys repaired so far.
    pub repaired: u64,
    /// Repair attempts that failed (retried).
    pub repair_failures: u64,
    /// Reads served by MongoDB because Redis failed.
    pub failover_reads: u64,
    /// Writes that reached one side only.
    pub degraded_writes: u64,
    /// Operations refused rather than served from a stale side.
    pub refused: u64,
    /// Operations failed because both sides failed.
    pub both_failed: u64,
    /// Reads Redis answered absent and MongoDB served (Redis had lost them).
    pub read_through: u64,
    /// The resync of a store that came back empty or with old data, if one
    /// is in progress.
    pub resync: Option<ResyncReport>,
}

/// A whole-store resync in progress ([`storestack::layers::fallback::ResyncStatus`]).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ResyncReport {
    /// `primary` (Redis) or `secondary` (MongoDB): the store being made whole.
    pub side: &'static str,
    /// Whether this process runs it.
    pub running_here: bool,
    /// Keys compared so far by this process.
    pub keys_checked: u64,
    /// Keys copied (or removed) so far by this process.
    pub keys_copied: u64,
    /// `healthy` (scanning the store copied from) or `resynced`.
    pub phase: &'static str,
}

/// One side of the fallback.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct SideReport {
    /// The store's name (its decorators included).
    pub name: String,
    /// Whether its last operation did not fail with a transient error.
    pub reachable: bool,
    /// Since when it is unreachable (Unix milliseconds).
    pub unreachable_since_ms: Option<u64>,
    /// The kind of the last transient error it returned.
    pub last_error: Option<&'static str>,
    /// Transient errors so far.
    pub failures: u64,
}

impl Health {
    /// A report from the breakers' and the fallback's handles.
    pub fn collect(
        redis: &BreakerHandle,
        mongodb: &BreakerHandle,
        fallback: &FallbackHandle,
    ) -> Self {
        let status = fallback.status();
        let breakers = Breakers {
            redis: BreakerReport::from(redis.stats()),
            mongodb: BreakerReport::from(mongodb.stats()),
        };
        let verdict = if !status.primary.reachable && !status.secondary.reachable {
            Verdict::Down
        } else if status.is_degraded()
            || redis.state() != BreakerState::Closed
            || mongodb.state() != BreakerState::Closed
        {
            Verdict::Degraded
        } else {
            Verdict::Ok
        };
        Health {
            status: verdict,
            breakers,
            fallback: FallbackReport::from(&status),
        }
    }
}

impl From<BreakerStats> for BreakerReport {
    fn from(s: BreakerStats) -> Self {
        BreakerReport {
            state: s.state.as_str(),
            rejected: s.rejected,
            opened: s.opened,
            open_remaining_ms: s.open_remaining.map(|d| d.as_millis() as u64),
        }
    }
}

impl From<&FallbackStatus> for FallbackReport {
    fn from(s: &FallbackStatus) -> Self {
        FallbackReport {
            degraded: s.is_degraded(),
            primary: SideReport::from(&s.primary),
            secondary: SideReport::from(&s.secondary),
            journaled_keys: s.journaled_keys,
            newest_on_primary: s.newest_on_primary,
            newest_on_secondary: s.newest_on_secondary,
            repaired: s.repaired,
            repair_failures: s.repair_failures,
            failover_reads: s.failover_reads,
            degraded_writes: s.degraded_writes,
            refused: s.refused,
            both_failed: s.both_failed,
            read_through: s.read_through,
            resync: s.resync.as_ref().map(|r| ResyncReport {
                side: r.side.as_str(),
                running_here: r.running_here,
                keys_checked: r.keys_checked,
                keys_copied: r.keys_copied,
                phase: r.phase,
            }),
        }
    }
}

impl From<&SideStatus> for SideReport {
    fn from(s: &SideStatus) -> Self {
        SideReport {
            name: s.name.clone(),
            reachable: s.reachable,
            unreachable_since_ms: s.unreachable_since.map(unix_millis),
            last_error: s.last_error.map(|k| k.as_str()),
            failures: s.failures,
        }
    }
}

fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use storestack::{
        BreakerConfig, FallbackConfig, FallbackLayer, FaultConfig, MemoryStore, Store, StoreExt,
    };

    use super::{Health, Verdict};

    #[tokio::test]
    async fn the_verdict_follows_the_sides_and_the_breakers() {
        let side = || {
            MemoryStore::new()
                .fault_injection(FaultConfig::default())
                .circuit_breaker(BreakerConfig::default().consecutive_failures(100))
        };
        let (primary, secondary) = (side(), side());
        let (p_faults, s_faults) = (primary.get_ref().handle(), secondary.get_ref().handle());
        let (p_breaker, s_breaker) = (primary.handle(), secondary.handle());
        let store = primary.layer(
            FallbackLayer::new(secondary).config(FallbackConfig::default().background(false)),
        );
        let fallback = store.handle();
        let health = || Health::collect(&p_breaker, &s_breaker, &fallback);

        assert!(store.get("k").await.unwrap().is_none());
        assert_eq!(health().status, Verdict::Ok);

        p_breaker.force_open();
        let report = health();
        assert_eq!(report.status, Verdict::Degraded);
        assert_eq!(report.breakers.redis.state, "forced_open");
        assert_eq!(report.breakers.mongodb.state, "closed");
        p_breaker.reset();

        p_faults.set_down(true);
        assert!(
            store.get("k").await.unwrap().is_none(),
            "served by the secondary"
        );
        let report = health();
        assert_eq!(report.status, Verdict::Degraded);
        assert!(!report.fallback.primary.reachable);
        assert_eq!(report.fallback.primary.last_error, Some("unavailable"));
        assert_eq!(report.fallback.failover_reads, 1);

        s_faults.set_down(true);
        assert!(store.get("k").await.is_err());
        let report = health();
        assert_eq!(report.status, Verdict::Down);
        assert_eq!(report.fallback.both_failed, 1);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["status"], "down");
        assert_eq!(json["fallback"]["secondary"]["reachable"], false);
    }
}
