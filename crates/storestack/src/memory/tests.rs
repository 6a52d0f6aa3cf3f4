use std::collections::HashSet;
use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::clock::{Clock, MockClock};

fn store_with(clock: &MockClock, config: MemoryConfig) -> MemoryStore {
    MemoryStore::with_config(config.clock(clock.clone()).sweep_interval(None))
}

fn at(clock: &MockClock, secs: u64) -> SystemTime {
    clock.now() + Duration::from_secs(secs)
}

#[tokio::test]
async fn one_million_expired_records_are_reclaimed() {
    let clock = MockClock::new();
    let store = store_with(&clock, MemoryConfig::default());
    let value = bytes::Bytes::from_static(b"session-payload-of-some-length");
    for i in 0..1_000_000u32 {
        let expires = clock.now() + Duration::from_millis(100 + (i % 1000) as u64);
        store
            .set(
                &format!("sess:{i:08}"),
                Record::expiring_at(value.clone(), expires),
            )
            .await
            .unwrap();
    }
    let full = store.stats();
    assert_eq!(full.entries, 1_000_000);
    assert!(full.bytes > 100_000_000, "tracked {} bytes", full.bytes);

    clock.advance(Duration::from_secs(2));
    assert_eq!(store.len().await.unwrap(), 0);
    let after = store.stats();
    assert_eq!(after.entries, 0);
    assert_eq!(after.bytes, 0);
    assert_eq!(after.expired, 1_000_000);
}

#[tokio::test]
async fn writes_reclaim_expired_records_without_len() {
    let clock = MockClock::new();
    let store = store_with(&clock, MemoryConfig::default().shards(1));
    for i in 0..100 {
        store
            .set(&format!("old{i}"), Record::expiring_at("v", at(&clock, 1)))
            .await
            .unwrap();
    }
    clock.advance(Duration::from_secs(2));
    for i in 0..20 {
        store
            .set(&format!("new{i}"), Record::never_expiring("v"))
            .await
            .unwrap();
    }
    // Each write purges up to PURGE_PER_WRITE expired entries.
    assert_eq!(store.stats().entries, 20);
    assert_eq!(store.stats().expired, 100);
}

#[tokio::test(start_paused = true)]
async fn background_sweeper_reclaims() {
    let clock = crate::clock::TokioClock::new();
    let store = MemoryStore::with_config(
        MemoryConfig::default()
            .clock(clock)
            .sweep_interval(Some(Duration::from_secs(1))),
    );
    store
        .set(
            "a",
            Record::expiring_at("v", clock.now() + Duration::from_millis(500)),
        )
        .await
        .unwrap();
    assert_eq!(store.stats().entries, 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(store.stats().entries, 0);
}

#[tokio::test]
async fn entry_bound_evicts_soonest_expiring_first() {
    let clock = MockClock::new();
    let store = store_with(&clock, MemoryConfig::default().max_entries(3).shards(1));
    store
        .set("forever", Record::never_expiring("v"))
        .await
        .unwrap();
    store
        .set("late", Record::expiring_at("v", at(&clock, 300)))
        .await
        .unwrap();
    store
        .set("soon", Record::expiring_at("v", at(&clock, 10)))
        .await
        .unwrap();
    store
        .set("mid", Record::expiring_at("v", at(&clock, 100)))
        .await
        .unwrap();
    assert!(store.get("soon").await.unwrap().is_none());
    for k in ["forever", "late", "mid"] {
        assert!(store.get(k).await.unwrap().is_some(), "{k}");
    }
    assert_eq!(store.stats().evicted, 1);
    assert_eq!(store.len().await.unwrap(), 3);
}

#[tokio::test]
async fn byte_bound_holds_across_shards() {
    let clock = MockClock::new();
    let bound = 64 * 1024;
    let store = store_with(&clock, MemoryConfig::default().max_bytes(Some(bound)));
    let value = bytes::Bytes::from(vec![7u8; 1000]);
    for i in 0..1000 {
        store
            .set(&format!("k{i}"), Record::never_expiring(value.clone()))
            .await
            .unwrap();
        assert!(store.stats().bytes <= bound);
    }
    assert!(store.stats().evicted > 900);
    // A record larger than the whole bound is refused, not evicting everything.
    let huge = Record::never_expiring(vec![0u8; bound as usize]);
    let err = store.set("huge", huge).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge);
}

#[tokio::test]
async fn expired_writes_and_touches_remove() {
    let clock = MockClock::starting_at(UNIX_EPOCH + Duration::from_secs(1_000_000));
    let store = store_with(&clock, MemoryConfig::default());
    let past = clock.now() - Duration::from_secs(1);
    store.set("k", Record::never_expiring("v")).await.unwrap();
    store
        .set("k", Record::expiring_at("v", past))
        .await
        .unwrap();
    assert!(store.get("k").await.unwrap().is_none());
    assert!(store
        .create("k", Record::expiring_at("v", past))
        .await
        .unwrap());
    assert_eq!(store.stats().entries, 0);
    store.set("k", Record::never_expiring("v")).await.unwrap();
    assert!(store.touch("k", Some(past)).await.unwrap());
    assert!(!store.delete("k").await.unwrap());
}

#[tokio::test]
async fn scan_is_exact_under_concurrent_writes_to_other_keys() {
    let clock = MockClock::new();
    let store = store_with(&clock, MemoryConfig::default().shards(8));
    let stable: HashSet<String> = (0..500).map(|i| format!("stable:{i}")).collect();
    for k in &stable {
        store.set(k, Record::never_expiring("v")).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor = ScanCursor::start();
    let mut n = 0;
    loop {
        // Churn: keys come and go between pages.
        store
            .set(&format!("churn:{n}"), Record::never_expiring("v"))
            .await
            .unwrap();
        if n > 0 {
            store.delete(&format!("churn:{}", n - 1)).await.unwrap();
        }
        n += 1;
        let page = store.scan("stable:", cursor, 7).await.unwrap();
        assert!(page.keys.len() <= 7);
        seen.extend(page.keys);
        match page.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    assert_eq!(seen.len(), stable.len(), "every stable key exactly once");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), stable);
}

#[tokio::test]
async fn malformed_cursor_is_invalid_input() {
    let store = MemoryStore::new();
    for token in ["garbage", "x:>a", ""] {
        let err = store
            .scan("", ScanCursor::from_token(token), 10)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{token:?}");
    }
}

#[tokio::test]
async fn sparse_prefix_scan_pages_are_bounded_and_finish() {
    let store = MemoryStore::with_config(MemoryConfig::default().shards(2).sweep_interval(None));
    for i in 0..20_000 {
        store
            .set(&format!("noise:{i}"), Record::never_expiring("v"))
            .await
            .unwrap();
    }
    store
        .set("needle", Record::never_expiring("v"))
        .await
        .unwrap();
    let mut cursor = ScanCursor::start();
    let (mut pages, mut found) = (0, Vec::new());
    loop {
        let page = store.scan("needle", cursor, 10).await.unwrap();
        pages += 1;
        found.extend(page.keys);
        match page.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    assert_eq!(found, ["needle"]);
    // 20 001 entries examined at most SCAN_BUDGET per page.
    assert!(pages >= 20_001 / SCAN_BUDGET, "{pages} pages");
}
