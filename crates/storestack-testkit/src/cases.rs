//! The conformance cases: one async function per clause of the
//! [`Store`] contract. Each takes a fresh [`Fixture`]
//! and panics on a violation.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use storestack::{ErrorKind, Record, ScanCursor, Store};

use crate::Fixture;

mod conditional;
pub use conditional::*;

fn rec(fx: &Fixture, value: &'static str) -> Record {
    Record::expiring_at(value, fx.now() + fx.long_ttl())
}

fn assert_expiry_close(got: Option<SystemTime>, want: Option<SystemTime>) {
    match (got, want) {
        (None, None) => {}
        (Some(g), Some(w)) => {
            let diff = g.duration_since(w).unwrap_or_else(|e| e.duration());
            assert!(diff <= Duration::from_millis(1), "expiry off by {diff:?}");
        }
        _ => panic!("expiry {got:?}, expected {want:?}"),
    }
}

/// Every key a full scan of `store` under `prefix` returns, page by page
/// (`limit` keys a page); panics on an error or a scan that does not end.
pub async fn scan_all(store: &dyn Store, prefix: &str, limit: usize) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = ScanCursor::start();
    for _ in 0..100_000 {
        let page = store.scan(prefix, cursor, limit).await.expect("scan");
        keys.extend(page.keys);
        match page.next {
            Some(next) => cursor = next,
            None => return keys,
        }
    }
    panic!("scan did not finish within 100 000 pages");
}

/// `get` of a key never written is `None`.
pub async fn get_missing_is_none(fx: Fixture) {
    assert_eq!(fx.store.get("never-written").await.unwrap(), None);
}

/// A written record reads back with its value and expiry.
pub async fn set_then_get_round_trips(fx: Fixture) {
    let record = Record::expiring_at(&b"\x00binary\xffvalue"[..], fx.now() + fx.long_ttl());
    fx.store.set("k", record.clone()).await.unwrap();
    let got = fx.store.get("k").await.unwrap().expect("record");
    assert_eq!(got.value, record.value);
    assert_expiry_close(got.expires_at, record.expires_at);
}

/// `set` replaces value and expiry.
pub async fn set_overwrites(fx: Fixture) {
    fx.store.set("k", rec(&fx, "one")).await.unwrap();
    fx.store
        .set("k", Record::never_expiring("two"))
        .await
        .unwrap();
    let got = fx.store.get("k").await.unwrap().unwrap();
    assert_eq!(got.value, "two");
    assert_eq!(got.expires_at, None);
}

/// A record without expiry outlives any TTL.
pub async fn set_never_expiring(fx: Fixture) {
    fx.store
        .set("k", Record::never_expiring("v"))
        .await
        .unwrap();
    fx.expire_short().await;
    assert_eq!(fx.store.get("k").await.unwrap().unwrap().expires_at, None);
}

/// An expired record is never returned, by any read.
pub async fn expired_record_is_never_returned(fx: Fixture) {
    let ttl = fx.short_ttl();
    fx.store
        .set("short", Record::expiring_at("v", fx.now() + ttl))
        .await
        .unwrap();
    assert!(fx.store.get("short").await.unwrap().is_some());
    fx.expire_short().await;
    assert_eq!(fx.store.get("short").await.unwrap(), None);
    assert!(
        !fx.store.delete("short").await.unwrap(),
        "delete saw an expired record"
    );
    assert!(
        !fx.store.touch("short", None).await.unwrap(),
        "touch revived an expired record"
    );
    assert_eq!(fx.store.get("short").await.unwrap(), None);
}

/// Writing an already-expired record leaves the key absent.
pub async fn set_with_past_expiry_removes(fx: Fixture) {
    fx.store
        .set("k", Record::never_expiring("v"))
        .await
        .unwrap();
    let past = fx.now() - Duration::from_secs(10);
    fx.store
        .set("k", Record::expiring_at("v", past))
        .await
        .unwrap();
    assert_eq!(fx.store.get("k").await.unwrap(), None);
    assert_eq!(fx.store.len().await.unwrap(), 0);
}

/// `touch` extends a record's life.
pub async fn touch_extends(fx: Fixture) {
    let ttl = fx.short_ttl();
    fx.store
        .set("k", Record::expiring_at("v", fx.now() + ttl))
        .await
        .unwrap();
    let later = fx.now() + fx.long_ttl();
    assert!(fx.store.touch("k", Some(later)).await.unwrap());
    fx.expire_short().await;
    let got = fx.store.get("k").await.unwrap().expect("touched record");
    assert_expiry_close(got.expires_at, Some(later));
}

/// `touch` shortens a record's life.
pub async fn touch_shortens(fx: Fixture) {
    fx.store.set("k", rec(&fx, "v")).await.unwrap();
    assert!(fx
        .store
        .touch("k", Some(fx.now() + fx.short_ttl()))
        .await
        .unwrap());
    fx.expire_short().await;
    assert_eq!(fx.store.get("k").await.unwrap(), None);
}

/// `touch` with `None` makes a record permanent.
pub async fn touch_to_never_persists(fx: Fixture) {
    fx.store
        .set("k", Record::expiring_at("v", fx.now() + fx.short_ttl()))
        .await
        .unwrap();
    assert!(fx.store.touch("k", None).await.unwrap());
    fx.expire_short().await;
    assert_eq!(fx.store.get("k").await.unwrap().unwrap().expires_at, None);
}

/// `touch` of a missing key is `false` and creates nothing.
pub async fn touch_missing_is_false(fx: Fixture) {
    assert!(!fx.store.touch("missing", None).await.unwrap());
    assert_eq!(fx.store.get("missing").await.unwrap(), None);
}

/// `touch` leaves the value as it was.
pub async fn touch_keeps_value(fx: Fixture) {
    fx.store.set("k", rec(&fx, "value")).await.unwrap();
    fx.store
        .touch("k", Some(fx.now() + fx.long_ttl() * 2))
        .await
        .unwrap();
    assert_eq!(fx.store.get("k").await.unwrap().unwrap().value, "value");
}

/// `create` on an absent key inserts and says so.
pub async fn create_inserts_when_absent(fx: Fixture) {
    assert!(fx.store.create("k", rec(&fx, "v")).await.unwrap());
    assert_eq!(fx.store.get("k").await.unwrap().unwrap().value, "v");
}

/// `create` on a live key says no and leaves the record alone.
pub async fn create_on_existing_key_keeps_value(fx: Fixture) {
    fx.store.set("k", rec(&fx, "first")).await.unwrap();
    assert!(!fx.store.create("k", rec(&fx, "second")).await.unwrap());
    assert_eq!(fx.store.get("k").await.unwrap().unwrap().value, "first");
}

/// An expired record does not block `create`.
pub async fn create_over_expired_record_inserts(fx: Fixture) {
    fx.store
        .set("k", Record::expiring_at("old", fx.now() + fx.short_ttl()))
        .await
        .unwrap();
    fx.expire_short().await;
    assert!(fx.store.create("k", rec(&fx, "new")).await.unwrap());
    assert_eq!(fx.store.get("k").await.unwrap().unwrap().value, "new");
}

/// `delete` reports whether the key was there.
pub async fn delete_existing_and_missing(fx: Fixture) {
    fx.store.set("k", rec(&fx, "v")).await.unwrap();
    assert!(fx.store.delete("k").await.unwrap());
    assert_eq!(fx.store.get("k").await.unwrap(), None);
    assert!(!fx.store.delete("k").await.unwrap());
    assert!(!fx.store.delete("never").await.unwrap());
}

/// Scanning page by page returns every key exactly once, whatever the page
/// size.
pub async fn scan_pages_cover_every_key_once(fx: Fixture) {
    let expected: HashSet<String> = (0..237).map(|i| format!("key:{i:04}")).collect();
    for k in &expected {
        fx.store.set(k, rec(&fx, "v")).await.unwrap();
    }
    for limit in [1, 10, 50, 1000] {
        let keys = scan_all(&*fx.store, "", limit).await;
        let unique: HashSet<String> = keys.iter().cloned().collect();
        assert_eq!(
            keys.len(),
            unique.len(),
            "duplicate keys with limit {limit}"
        );
        assert_eq!(unique, expected, "wrong keys with limit {limit}");
    }
}

/// `scan` returns only keys with the given prefix.
pub async fn scan_filters_by_prefix(fx: Fixture) {
    for k in ["a:1", "a:2", "a:3", "b:1", "ab", "*glob?[x]"] {
        fx.store.set(k, rec(&fx, "v")).await.unwrap();
    }
    let mut a = scan_all(&*fx.store, "a:", 2).await;
    a.sort();
    assert_eq!(a, ["a:1", "a:2", "a:3"]);
    // Prefixes are literal, not glob patterns.
    assert_eq!(scan_all(&*fx.store, "*", 10).await, ["*glob?[x]"]);
    assert!(scan_all(&*fx.store, "zzz", 10).await.is_empty());
}

/// `scan` skips expired records.
pub async fn scan_skips_expired(fx: Fixture) {
    fx.store.set("live", rec(&fx, "v")).await.unwrap();
    fx.store
        .set("dying", Record::expiring_at("v", fx.now() + fx.short_ttl()))
        .await
        .unwrap();
    fx.expire_short().await;
    assert_eq!(scan_all(&*fx.store, "", 10).await, ["live"]);
}

/// `len` counts live records only.
pub async fn len_ignores_expired(fx: Fixture) {
    assert_eq!(fx.store.len().await.unwrap(), 0);
    for i in 0..5 {
        fx.store
            .set(&format!("live{i}"), rec(&fx, "v"))
            .await
            .unwrap();
    }
    for i in 0..3 {
        let r = Record::expiring_at("v", fx.now() + fx.short_ttl());
        fx.store.set(&format!("dying{i}"), r).await.unwrap();
    }
    assert_eq!(fx.store.len().await.unwrap(), 8);
    fx.expire_short().await;
    assert_eq!(fx.store.len().await.unwrap(), 5);
}

/// `clear` leaves an empty store that still works.
pub async fn clear_removes_everything(fx: Fixture) {
    for i in 0..25 {
        fx.store.set(&format!("k{i}"), rec(&fx, "v")).await.unwrap();
    }
    fx.store.clear().await.unwrap();
    assert_eq!(fx.store.len().await.unwrap(), 0);
    assert_eq!(fx.store.get("k3").await.unwrap(), None);
    assert!(scan_all(&*fx.store, "", 100).await.is_empty());
    fx.store.set("after", rec(&fx, "v")).await.unwrap();
    assert_eq!(fx.store.len().await.unwrap(), 1);
}

/// An empty value is a value, not an absence.
pub async fn empty_value(fx: Fixture) {
    fx.store.set("empty", rec(&fx, "")).await.unwrap();
    let got = fx
        .store
        .get("empty")
        .await
        .unwrap()
        .expect("empty record exists");
    assert!(got.value.is_empty());
    assert!(!fx.store.create("empty", rec(&fx, "x")).await.unwrap());
}

/// A 1 MiB value round-trips byte for byte.
pub async fn one_mib_value(fx: Fixture) {
    let value: Vec<u8> = (0..1024 * 1024).map(|i| (i * 31 % 251) as u8).collect();
    let record = Record::expiring_at(value.clone(), fx.now() + fx.long_ttl());
    fx.store.set("big", record).await.unwrap();
    assert_eq!(fx.store.get("big").await.unwrap().unwrap().value, value);
}

/// Non-ASCII keys are ordinary keys, in every operation.
pub async fn unicode_keys(fx: Fixture) {
    let keys = ["ключ", "キー", "🔑:session", "clé-ü"];
    for k in keys {
        assert!(fx.store.create(k, rec(&fx, "v")).await.unwrap(), "{k}");
    }
    for k in keys {
        assert_eq!(fx.store.get(k).await.unwrap().unwrap().value, "v", "{k}");
    }
    let mut scanned = scan_all(&*fx.store, "", 10).await;
    scanned.sort();
    let mut expected: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    expected.sort();
    assert_eq!(scanned, expected);
    assert!(fx.store.delete("🔑:session").await.unwrap());
}

/// A key of exactly the maximum length works.
pub async fn longest_key_is_accepted(fx: Fixture) {
    let key = "k".repeat(fx.max_key_len);
    fx.store.set(&key, rec(&fx, "v")).await.unwrap();
    assert!(fx.store.get(&key).await.unwrap().is_some());
}

/// Empty, over-long and control-character keys are `InvalidInput` for
/// every keyed operation.
pub async fn invalid_keys_are_refused(fx: Fixture) {
    let too_long = "k".repeat(fx.max_key_len + 1);
    for key in ["", too_long.as_str(), "new\nline", "nul\0byte"] {
        let r = rec(&fx, "v");
        let kinds = [
            fx.store.get(key).await.map(|_| ()).map_err(|e| e.kind()),
            fx.store.set(key, r.clone()).await.map_err(|e| e.kind()),
            fx.store
                .create(key, r)
                .await
                .map(|_| ())
                .map_err(|e| e.kind()),
            fx.store.delete(key).await.map(|_| ()).map_err(|e| e.kind()),
            fx.store
                .touch(key, None)
                .await
                .map(|_| ())
                .map_err(|e| e.kind()),
        ];
        for (op, kind) in ["get", "set", "create", "delete", "touch"]
            .iter()
            .zip(kinds)
        {
            assert_eq!(
                kind,
                Err(ErrorKind::InvalidInput),
                "{op} with key of {} bytes",
                key.len()
            );
        }
    }
    assert_eq!(fx.store.len().await.unwrap(), 0);
}

/// A value over the store's limit is `TooLarge` and writes nothing.
pub async fn oversized_value_is_too_large(fx: Fixture) {
    let value = vec![1u8; fx.limits.max_value_len + 1];
    let r = Record::expiring_at(value, fx.now() + fx.long_ttl());
    let err = fx.store.set("big", r.clone()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge);
    let err = fx.store.create("big", r).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge);
    assert_eq!(fx.store.get("big").await.unwrap(), None);
}

/// Many tasks writing distinct keys lose nothing.
pub async fn concurrent_writers_on_distinct_keys(fx: Fixture) {
    let fx = Arc::new(fx);
    let mut tasks = Vec::new();
    for t in 0..16 {
        let fx = fx.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let r = Record::expiring_at(format!("{t}-{i}"), fx.now() + fx.long_ttl());
                fx.store.set(&format!("w{t}:{i}"), r).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(fx.store.len().await.unwrap(), 16 * 25);
    for t in 0..16 {
        for i in 0..25 {
            let got = fx.store.get(&format!("w{t}:{i}")).await.unwrap().unwrap();
            assert_eq!(got.value, format!("{t}-{i}"));
        }
    }
}

/// Many tasks writing one key leave exactly one of their values.
pub async fn concurrent_writers_on_one_key(fx: Fixture) {
    let fx = Arc::new(fx);
    let mut tasks = Vec::new();
    for t in 0..16 {
        let fx = fx.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let r = Record::expiring_at(format!("{t}-{i}"), fx.now() + fx.long_ttl());
                fx.store.set("hot", r).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let got = fx.store.get("hot").await.unwrap().unwrap();
    let value = String::from_utf8(got.value.to_vec()).unwrap();
    assert!(
        value.ends_with("-9"),
        "final value {value} is not a last write"
    );
    assert_eq!(fx.store.len().await.unwrap(), 1);
}

/// Of many concurrent `create`s on one key exactly one succeeds, and its
/// value is the one stored.
pub async fn concurrent_creates_on_one_key_admit_one(fx: Fixture) {
    let fx = Arc::new(fx);
    let mut tasks = Vec::new();
    for t in 0..16 {
        let fx = fx.clone();
        tasks.push(tokio::spawn(async move {
            let r = Record::expiring_at(format!("{t}"), fx.now() + fx.long_ttl());
            (t, fx.store.create("id", r).await.unwrap())
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (t, won) = t.await.unwrap();
        if won {
            winners.push(t);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let got = fx.store.get("id").await.unwrap().unwrap();
    assert_eq!(got.value, format!("{}", winners[0]));
}
