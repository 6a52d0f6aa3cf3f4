use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use storestack::clock::MockClock;
use storestack::{ErrorKind, FaultConfig, FaultHandle, FaultInjection, MemoryStore, StoreExt};

use super::*;

const REAL: &[u8] = b"\x81\xa5views\x05";
const TEMPORARY: &[u8] = b"\x81\xa5views\x01";

struct Fixture {
    backend: MemoryStore,
    faults: FaultHandle,
    store: Degraded<FaultInjection<MemoryStore>>,
}

fn fixture(config: DegradeConfig) -> Fixture {
    let backend = MemoryStore::new();
    let faulty = backend.clone().fault_injection(FaultConfig::default());
    let faults = faulty.handle();
    let store = faulty.layer(DegradeLayer::new(config));
    Fixture {
        backend,
        faults,
        store,
    }
}

fn session(value: &'static [u8]) -> Record {
    Record::expiring_after(value, Duration::from_secs(3600))
}

#[tokio::test]
async fn outside_a_request_scope_errors_pass_through() {
    let f = fixture(DegradeConfig::default());
    f.faults.set_down(true);
    let err = f.store.get("s").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(f.store.set("s", session(REAL)).await.is_err());
    assert!(f.store.create("s", session(REAL)).await.is_err());
    assert!(f.store.delete("s").await.is_err());
    assert_eq!(f.store.temporary_sessions(), 0);
}

#[tokio::test]
async fn an_outage_serves_a_temporary_session_and_never_writes_it_back() {
    let f = fixture(DegradeConfig::default());
    f.store.set("s", session(REAL)).await.unwrap();
    f.faults.set_down(true);

    // First request of the outage: an empty session under the same ID,
    // then its change kept aside.
    let (saved, degraded) = scoped(async {
        let loaded = f
            .store
            .get("s")
            .await
            .unwrap()
            .expect("a temporary session");
        assert_eq!(loaded.value, EMPTY_SESSION);
        assert!(loaded.expires_at.is_some(), "temporary sessions expire");
        f.store.set("s", session(TEMPORARY)).await
    })
    .await;
    saved.unwrap();
    assert_eq!(
        degraded,
        Some(Degradation {
            reason: ErrorKind::Unavailable
        })
    );

    // Second request: the temporary session, not an empty one.
    let (loaded, degraded) = scoped(async { f.store.get("s").await }).await;
    assert_eq!(loaded.unwrap().unwrap().value, TEMPORARY);
    assert!(degraded.is_some());

    // The store returns: the real session, untouched, and the temporary
    // one dropped.
    f.faults.set_down(false);
    assert_eq!(f.backend.get("s").await.unwrap().unwrap().value, REAL);
    let (loaded, degraded) = scoped(async { f.store.get("s").await }).await;
    assert_eq!(loaded.unwrap().unwrap().value, REAL);
    assert_eq!(degraded, None);
    assert_eq!(f.store.temporary_sessions(), 0);
}

#[tokio::test]
async fn a_degraded_load_is_never_saved_over_a_store_that_came_back() {
    let f = fixture(DegradeConfig::default());
    f.store.set("s", session(REAL)).await.unwrap();
    f.faults.set_down(true);
    let (saved, degraded) = scoped(async {
        let loaded = f.store.get("s").await.unwrap().unwrap();
        assert_eq!(loaded.value, EMPTY_SESSION);
        // The store is back before the handler saves.
        f.faults.set_down(false);
        f.store.set("s", session(TEMPORARY)).await
    })
    .await;
    saved.unwrap();
    assert!(degraded.is_some());
    assert_eq!(f.backend.get("s").await.unwrap().unwrap().value, REAL);
}

#[tokio::test]
async fn new_sessions_during_an_outage_are_temporary() {
    let f = fixture(DegradeConfig::default());
    f.faults.set_down(true);
    let (created, degraded) =
        scoped(async { f.store.create("new", session(TEMPORARY)).await }).await;
    assert!(created.unwrap());
    assert!(degraded.is_some());
    let (again, _) = scoped(async { f.store.create("new", session(REAL)).await }).await;
    assert!(
        !again.unwrap(),
        "create-if-absent holds for temporary sessions"
    );
    f.faults.set_down(false);
    assert!(
        f.backend.get("new").await.unwrap().is_none(),
        "never written back"
    );
    assert!(f.store.get("new").await.unwrap().is_none());
}

#[tokio::test]
async fn delete_and_touch_during_an_outage() {
    let f = fixture(DegradeConfig::default());
    f.store.set("s", session(REAL)).await.unwrap();
    f.faults.set_down(true);
    let (touched, _) = scoped(async {
        f.store.set("s", session(TEMPORARY)).await.unwrap();
        f.store.touch("s", None).await
    })
    .await;
    assert!(touched.unwrap(), "the temporary session was extended");
    let (deleted, degraded) = scoped(async { f.store.delete("s").await }).await;
    assert!(deleted.unwrap(), "the temporary session is gone");
    assert!(degraded.is_some());
    assert_eq!(f.store.temporary_sessions(), 0);
    f.faults.set_down(false);
    // The documented limit: the stored session outlives a logout made
    // while the store was down.
    assert_eq!(f.backend.get("s").await.unwrap().unwrap().value, REAL);
}

#[tokio::test]
async fn bad_data_and_bad_requests_are_not_outages() {
    let f = fixture(DegradeConfig::default());
    for kind in [
        ErrorKind::Corrupt,
        ErrorKind::InvalidInput,
        ErrorKind::TooLarge,
    ] {
        f.faults.set_error_kind(kind);
        f.faults.set_error_rate(1.0);
        let (found, degraded) = scoped(async { f.store.get("s").await }).await;
        assert_eq!(found.unwrap_err().kind(), kind);
        assert_eq!(degraded, None, "{kind:?} is not degraded");
        let (saved, _) = scoped(async { f.store.set("s", session(REAL)).await }).await;
        assert!(saved.is_err());
    }
    for kind in [ErrorKind::Timeout, ErrorKind::CircuitOpen] {
        f.faults.set_error_kind(kind);
        let (found, degraded) = scoped(async { f.store.get("s").await }).await;
        assert!(found.unwrap().is_some());
        assert_eq!(degraded.map(|d| d.reason), Some(kind));
    }
}

#[tokio::test]
async fn temporary_sessions_are_bounded() {
    let clock = MockClock::new();
    let config = DegradeConfig::default()
        .max_sessions(3)
        .max_session_bytes(64)
        .ttl(Duration::from_secs(60))
        .clock(clock.clone());
    let f = fixture(config);
    f.faults.set_down(true);
    // Too large: dropped, and the request still served.
    let (saved, degraded) = scoped(f.store.set("big", session(&[0x80; 200]))).await;
    saved.unwrap();
    assert!(degraded.is_some());
    assert_eq!(f.store.temporary_sessions(), 0);
    // Count: never more than the bound.
    for i in 0..10 {
        let key = format!("s{i}");
        let (created, _) = scoped(f.store.create(&key, session(TEMPORARY))).await;
        assert!(created.unwrap());
    }
    assert!(f.store.temporary_sessions() <= 3);
    // Which ones the bounded store evicted is its choice (shard by shard):
    // take one that is kept.
    let mut kept = None;
    for i in 0..10 {
        let key = format!("s{i}");
        let (found, _) = scoped(f.store.get(&key)).await;
        if found.unwrap().unwrap().value == TEMPORARY {
            kept = Some(key);
        }
    }
    let kept = kept.expect("some temporary session is kept");
    // Lifetime: capped at the ttl, though the session asked for an hour.
    clock.advance(Duration::from_secs(61));
    let (found, _) = scoped(f.store.get(&kept)).await;
    assert_eq!(found.unwrap().unwrap().value, EMPTY_SESSION, "expired");
}

#[test]
fn degraded_requests_are_counted_by_reason() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let f = fixture(DegradeConfig::default());
            let _ = scoped(f.store.get("s")).await;
            f.faults.set_down(true);
            let _ = scoped(f.store.get("s")).await;
            let _ = scoped(f.store.get("s")).await;
        });
    });
    let counted: Vec<_> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == DEGRADED_REQUESTS_TOTAL)
        .map(|(key, _, _, value)| {
            let labels: Vec<_> = key
                .key()
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            (labels, value)
        })
        .collect();
    assert_eq!(
        counted,
        vec![(
            vec!["reason=unavailable".to_owned()],
            DebugValue::Counter(2)
        )]
    );
}

#[test]
fn name_and_debug() {
    let store = MemoryStore::new().layer(DegradeLayer::default());
    assert_eq!(store.name(), "degraded(memory)");
    assert!(format!("{store:?}").contains("max_sessions: 10000"));
}
