//! Shared helpers of the integration tests.
#![allow(missing_docs)]

// The crate root sits in `tests/`, beside the test files: keep helper
// modules in `tests/support/`.
#[path = "support/mongo.rs"]
pub mod mongo;
#[path = "support/redis.rs"]
pub mod redis;

/// The password the tests of permanent errors provision.
pub const PASSWORD: &str = "c0rrect-h0rse-battery";
/// A wrong one, distinctive enough to grep for in an error.
pub const WRONG_PASSWORD: &str = "WR0NG-PASSWORD-1234";

/// A store error, its `Debug` and its whole source chain as one string: what
/// a log line or an error page could show of it.
pub fn error_chain(err: &storestack::StoreError) -> String {
    let mut out = format!("{err} {err:?}");
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        out.push_str(&format!(" | {s} {s:?}"));
        source = s.source();
    }
    out
}
#[path = "support/sql.rs"]
pub mod sql;

use std::time::Duration;

use storestack::clock::{Clock, MockClock};
use storestack::{Record, SharedStore};

/// Sixteen concurrent `create`s of one key whose record is expired for the
/// store (its `clock` moved past the expiry) but still stored: exactly one
/// must win, and its value must be what `get` reads.
pub async fn creates_over_an_expired_record_admit_one(store: SharedStore, clock: &MockClock) {
    let ttl = Duration::from_secs(60);
    let record = Record::expiring_at("expired", clock.now() + ttl);
    store.set("id", record).await.unwrap();
    clock.advance(ttl * 2);
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let (store, at) = (store.clone(), clock.now() + ttl);
            tokio::spawn(async move {
                let record = Record::expiring_at(format!("{t}"), at);
                (t, store.create("id", record).await.unwrap())
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (t, won) = task.await.unwrap();
        if won {
            winners.push(t);
        }
    }
    assert_eq!(winners.len(), 1, "{}: winners {winners:?}", store.name());
    let got = store.get("id").await.unwrap().unwrap();
    assert_eq!(got.value, format!("{}", winners[0]));
}

/// Writes keys of many scripts (Cyrillic, an emoji, `U+10FFFF`, LIKE's
/// wildcards) and checks that a scan under each of several prefixes returns
/// exactly the keys that start with it: what a byte-order range on the key
/// must give.
pub async fn unicode_prefixes_scan_exactly_their_keys(store: &dyn storestack::Store) {
    let keys = [
        "ключ",
        "ключ:1",
        "ключи",
        "клюя",
        "🔑",
        "🔑:a",
        "a\u{10FFFF}",
        "a\u{10FFFF}z",
        "b",
        "a%",
        "a_",
        "aX",
    ];
    for k in keys {
        store.set(k, Record::never_expiring("v")).await.unwrap();
    }
    for prefix in ["ключ", "🔑", "a\u{10FFFF}", "клю", "a", "a%", "a_"] {
        let mut got = storestack_testkit::cases::scan_all(store, prefix, 3).await;
        got.sort();
        let mut want: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| k.starts_with(prefix))
            .collect();
        want.sort();
        assert_eq!(got, want, "{}: prefix {prefix:?}", store.name());
    }
}
