//! Conformance cases of the conditional write: `get_versioned` and
//! `set_if`.

use std::sync::Arc;
use std::time::Duration;

use storestack::{Condition, Record};
use tokio::sync::Barrier;

use super::{assert_expiry_close, rec};
use crate::Fixture;

async fn version(fx: &Fixture, key: &str) -> Condition {
    let found = fx.store.get_versioned(key).await.unwrap();
    Condition::Matches(found.expect("a record to version").version)
}

async fn value(fx: &Fixture, key: &str) -> Option<String> {
    let found = fx.store.get(key).await.unwrap()?;
    Some(String::from_utf8(found.value.to_vec()).unwrap())
}

/// `get_versioned` reads what `get` reads, and nothing for a missing key.
pub async fn get_versioned_reads_like_get(fx: Fixture) {
    assert_eq!(fx.store.get_versioned("k").await.unwrap(), None);
    let record = Record::expiring_at(&b"\x00bin\xff"[..], fx.now() + fx.long_ttl());
    fx.store.set("k", record.clone()).await.unwrap();
    let got = fx.store.get_versioned("k").await.unwrap().unwrap();
    assert_eq!(got.record.value, record.value);
    assert_expiry_close(got.record.expires_at, record.expires_at);
    let again = fx.store.get_versioned("k").await.unwrap().unwrap();
    assert_eq!(again.version, got.version, "two reads of one record");
}

/// `set_if(Matches)` writes while the record is the one read, and only
/// then; a version goes stale with every write of other bytes.
pub async fn set_if_matches_only_the_version_read(fx: Fixture) {
    fx.store.set("k", rec(&fx, "one")).await.unwrap();
    let v1 = version(&fx, "k").await;
    assert!(fx
        .store
        .set_if("k", rec(&fx, "two"), v1.clone())
        .await
        .unwrap());
    assert_eq!(value(&fx, "k").await.as_deref(), Some("two"));
    assert!(
        !fx.store.set_if("k", rec(&fx, "three"), v1).await.unwrap(),
        "a stale version won"
    );
    assert_eq!(value(&fx, "k").await.as_deref(), Some("two"));
    let v2 = version(&fx, "k").await;
    fx.store.set("k", rec(&fx, "other")).await.unwrap();
    assert!(!fx.store.set_if("k", rec(&fx, "mine"), v2).await.unwrap());
    assert_eq!(value(&fx, "k").await.as_deref(), Some("other"));
}

/// No condition holds for a missing or deleted key: `set_if` never
/// re-creates a record (a session saved after its logout stays deleted).
pub async fn set_if_never_creates(fx: Fixture) {
    assert!(!fx
        .store
        .set_if("k", rec(&fx, "v"), Condition::Exists)
        .await
        .unwrap());
    assert_eq!(fx.store.get("k").await.unwrap(), None);
    fx.store.set("k", rec(&fx, "v")).await.unwrap();
    let v = version(&fx, "k").await;
    assert!(fx.store.delete("k").await.unwrap());
    assert!(!fx.store.set_if("k", rec(&fx, "w"), v).await.unwrap());
    assert!(!fx
        .store
        .set_if("k", rec(&fx, "w"), Condition::Exists)
        .await
        .unwrap());
    assert_eq!(fx.store.get("k").await.unwrap(), None);
    assert_eq!(fx.store.len().await.unwrap(), 0);
}

/// An expired record counts as absent for every condition.
pub async fn set_if_treats_expired_as_absent(fx: Fixture) {
    let r = Record::expiring_at("v", fx.now() + fx.short_ttl());
    fx.store.set("k", r).await.unwrap();
    let v = version(&fx, "k").await;
    fx.expire_short().await;
    assert!(!fx.store.set_if("k", rec(&fx, "w"), v).await.unwrap());
    assert!(!fx
        .store
        .set_if("k", rec(&fx, "w"), Condition::Exists)
        .await
        .unwrap());
    assert_eq!(fx.store.get("k").await.unwrap(), None);
}

/// `set_if(Exists)` replaces value and expiry of whatever record is there.
pub async fn set_if_exists_replaces_value_and_expiry(fx: Fixture) {
    fx.store.set("k", rec(&fx, "one")).await.unwrap();
    let forever = Record::never_expiring("two");
    assert!(fx
        .store
        .set_if("k", forever, Condition::Exists)
        .await
        .unwrap());
    let got = fx.store.get("k").await.unwrap().unwrap();
    assert_eq!(got.value, "two");
    assert_eq!(got.expires_at, None);
}

/// A `touch` changes no version; a `set_if` of an expired record whose
/// condition holds removes the key.
pub async fn touch_keeps_version_and_past_set_if_removes(fx: Fixture) {
    fx.store.set("k", rec(&fx, "v")).await.unwrap();
    let v = version(&fx, "k").await;
    let later = fx.now() + fx.long_ttl() + Duration::from_secs(60);
    assert!(fx.store.touch("k", Some(later)).await.unwrap());
    let past = Record::expiring_at("w", fx.now() - Duration::from_secs(10));
    assert!(
        fx.store.set_if("k", past, v).await.unwrap(),
        "touch changed the version"
    );
    assert_eq!(fx.store.get("k").await.unwrap(), None);
    assert_eq!(fx.store.len().await.unwrap(), 0);
}

/// Many tasks read one key's version, then all race `set_if` with it:
/// exactly one wins each round, and its value is the one stored.
pub async fn concurrent_set_ifs_admit_one_per_round(fx: Fixture) {
    const TASKS: usize = 12;
    const ROUNDS: usize = 15;
    let fx = Arc::new(fx);
    fx.store.set("hot", rec(&fx, "start")).await.unwrap();
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (fx, barrier) = (fx.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for round in 0..ROUNDS {
                let v = version(&fx, "hot").await;
                barrier.wait().await;
                let mine = Record::expiring_at(format!("{round}:{t}"), fx.now() + fx.long_ttl());
                if fx.store.set_if("hot", mine, v).await.unwrap() {
                    won.push(round);
                }
                barrier.wait().await;
            }
            (t, won)
        }));
    }
    let mut winners = vec![Vec::new(); ROUNDS];
    for task in tasks {
        let (t, won) = task.await.unwrap();
        for round in won {
            winners[round].push(t);
        }
    }
    for (round, w) in winners.iter().enumerate() {
        assert_eq!(w.len(), 1, "round {round}: winners {w:?}");
    }
    let last = winners[ROUNDS - 1][0];
    let want = format!("{}:{last}", ROUNDS - 1);
    assert_eq!(value(&fx, "hot").await, Some(want));
}

/// Read-modify-write loops on one key with `set_if`, retried on conflict,
/// lose no increment. Each write names its writer, so that no two writers
/// ever write identical bytes (see Retry's docs on why that matters after a
/// lost reply).
pub async fn set_if_loops_lose_no_update(fx: Fixture) {
    const TASKS: usize = 8;
    const EACH: usize = 10;
    let fx = Arc::new(fx);
    fx.store.set("n", rec(&fx, "0:start")).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let fx = fx.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..EACH {
                loop {
                    let found = fx.store.get_versioned("n").await.unwrap().unwrap();
                    let n = count(std::str::from_utf8(&found.record.value).unwrap());
                    let next = format!("{}:{t}", n + 1);
                    let next = Record::expiring_at(next, fx.now() + fx.long_ttl());
                    let cond = Condition::Matches(found.version);
                    if fx.store.set_if("n", next, cond).await.unwrap() {
                        break;
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let last = value(&fx, "n").await.unwrap();
    assert_eq!(count(&last), TASKS * EACH, "increments lost: {last}");
}

/// The count of a `"{count}:{writer}"` value.
fn count(value: &str) -> usize {
    value.split(':').next().unwrap().parse().unwrap()
}
