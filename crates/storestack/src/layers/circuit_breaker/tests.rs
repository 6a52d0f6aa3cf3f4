use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::advance;

use super::*;
use crate::layers::testing::{Scripted, Step};
use crate::StoreExt;

const S: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

fn config(failures: u32) -> BreakerConfig {
    BreakerConfig::default()
        .consecutive_failures(failures)
        .open_for(5 * S, 60 * S)
        .open_jitter(0.0)
}

type Changes = Arc<Mutex<Vec<(BreakerState, BreakerState)>>>;

fn watched(config: BreakerConfig) -> (BreakerConfig, Changes) {
    let changes = Changes::default();
    let log = changes.clone();
    let config = config.on_state_change(move |c: &StateChange<'_>| {
        assert_eq!(c.store, "scripted");
        assert_eq!(c.open_for.is_some(), c.to == BreakerState::Open);
        log.lock().push((c.from, c.to));
    });
    (config, changes)
}

use BreakerState::{Closed, ForcedClosed, ForcedOpen, HalfOpen, Open};

#[tokio::test(start_paused = true)]
async fn closed_open_half_open_closed() {
    let inner = Scripted::new();
    let (config, changes) = watched(config(3));
    let store = inner.clone().circuit_breaker(config);
    let breaker = store.handle();

    inner.then([
        Step::Fail(ErrorKind::Unavailable),
        Step::Fail(ErrorKind::Timeout),
        Step::Pass, // a success resets the streak
        Step::Fail(ErrorKind::Timeout),
        Step::Fail(ErrorKind::Unavailable),
        Step::Fail(ErrorKind::Timeout),
    ]);
    for _ in 0..5 {
        let _ = store.get("k").await;
    }
    assert_eq!(breaker.state(), Closed);
    assert!(store.get("k").await.is_err());
    assert_eq!(breaker.state(), Open);
    assert_eq!(inner.entered(), 6);

    // Open: fail fast without touching the inner store.
    for op in [Op::Get, Op::Set, Op::Len] {
        let err = match op {
            Op::Get => store.get("k").await.map(drop),
            Op::Set => store.set("k", Record::never_expiring("v")).await,
            _ => store.len().await.map(drop),
        }
        .unwrap_err();
        assert_eq!(
            (err.kind(), err.op(), err.store()),
            (ErrorKind::CircuitOpen, op, "scripted")
        );
    }
    assert_eq!(inner.entered(), 6);
    assert_eq!(breaker.stats().rejected, 3);
    assert_eq!(breaker.stats().open_remaining, Some(5 * S));

    advance(5 * S - MS).await;
    assert!(store.get("k").await.is_err());
    assert_eq!(inner.entered(), 6);
    advance(MS).await;
    assert_eq!(store.get("k").await.unwrap(), None); // the trial
    assert_eq!(inner.entered(), 7);
    assert_eq!(breaker.state(), Closed);
    assert_eq!(
        *changes.lock(),
        [(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)]
    );
    assert_eq!(breaker.stats().opened, 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_trial_reopens_for_longer() {
    let inner = Scripted::new();
    let (config, changes) = watched(config(1));
    let store = inner.clone().circuit_breaker(config);
    let breaker = store.handle();
    inner.then([
        Step::Fail(ErrorKind::Unavailable),
        Step::Fail(ErrorKind::Timeout),
    ]);
    assert!(store.delete("k").await.is_err());
    advance(5 * S).await;
    assert_eq!(
        store.delete("k").await.unwrap_err().kind(),
        ErrorKind::Timeout
    );
    assert_eq!(breaker.state(), Open);
    assert_eq!(breaker.stats().open_remaining, Some(10 * S));
    advance(10 * S).await;
    assert!(!store.delete("k").await.unwrap());
    assert_eq!(
        *changes.lock(),
        [
            (Closed, Open),
            (Open, HalfOpen),
            (HalfOpen, Open),
            (Open, HalfOpen),
            (HalfOpen, Closed)
        ]
    );
    // Closing forgot the history: the next open period is the first one.
    inner.then([Step::Fail(ErrorKind::Unavailable)]);
    assert!(store.delete("k").await.is_err());
    assert_eq!(breaker.stats().open_remaining, Some(5 * S));
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_never_open_it() {
    let inner = Scripted::new();
    let store = inner.clone().circuit_breaker(config(3));
    let kinds = [
        ErrorKind::Corrupt,
        ErrorKind::InvalidInput,
        ErrorKind::TooLarge,
        ErrorKind::Unsupported,
        ErrorKind::Internal,
        ErrorKind::PermissionDenied,
        ErrorKind::Misconfigured,
    ];
    for _ in 0..20 {
        inner.then(kinds.map(Step::Fail));
        for kind in kinds {
            // The real cause reaches the caller, never a `CircuitOpen`.
            assert_eq!(store.get("k").await.unwrap_err().kind(), kind);
        }
    }
    assert_eq!(store.handle().state(), Closed);
    assert_eq!(inner.entered(), 140);
    // Nor do they break a streak of transient failures: they are neutral.
    inner.then([
        Step::Fail(ErrorKind::Timeout),
        Step::Fail(ErrorKind::Timeout),
        Step::Fail(ErrorKind::Corrupt),
        Step::Fail(ErrorKind::Timeout),
    ]);
    for _ in 0..4 {
        let _ = store.get("k").await;
    }
    assert_eq!(store.handle().state(), Open);
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_a_bounded_number_of_trials_under_a_storm() {
    let inner = Scripted::new();
    let gate = inner.close_gate();
    let store = Arc::new(inner.clone().circuit_breaker(config(1).half_open(3, 3)));
    let breaker = store.handle();
    inner.then([Step::Fail(ErrorKind::Unavailable)]);
    gate.add_permits(1);
    assert!(store.get("k").await.is_err());
    assert_eq!(breaker.state(), Open);
    advance(5 * S).await;

    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let store = store.clone();
        calls.spawn(async move { store.get("k").await });
    }
    while breaker.stats().rejected < 97 {
        tokio::task::yield_now().await;
    }
    assert_eq!(inner.entered(), 1 + 3, "exactly 3 trials reach the store");
    assert_eq!(breaker.state(), HalfOpen);

    gate.add_permits(3);
    let results: Vec<_> = calls.join_all().await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let open = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.kind() == ErrorKind::CircuitOpen))
        .count();
    assert_eq!((ok, open), (3, 97));
    assert_eq!(breaker.state(), Closed);
    assert_eq!(inner.entered(), 4);
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_trial_counts_as_failed() {
    let inner = Scripted::new();
    let store = inner.clone().circuit_breaker(config(1));
    inner.then([Step::Fail(ErrorKind::Unavailable), Step::Hang]);
    assert!(store.get("k").await.is_err());
    advance(5 * S).await;
    let cut = tokio::time::timeout(100 * MS, store.get("k")).await;
    assert!(cut.is_err());
    assert_eq!(inner.dropped(), 1);
    assert_eq!(store.handle().state(), Open);
    // The slot was released: after the next period a trial runs.
    advance(10 * S).await;
    assert_eq!(store.get("k").await.unwrap(), None);
    assert_eq!(store.handle().state(), Closed);
}

#[tokio::test(start_paused = true)]
async fn slow_calls_count_as_failures() {
    let inner = Scripted::new();
    let store = inner.clone().circuit_breaker(config(2).slow_call(100 * MS));
    inner.then([
        Step::Sleep(99 * MS),
        Step::Sleep(150 * MS),
        Step::Sleep(150 * MS),
    ]);
    store.get("k").await.unwrap();
    store.get("k").await.unwrap();
    assert_eq!(store.handle().state(), Closed);
    store.get("k").await.unwrap();
    assert_eq!(store.handle().state(), Open);
}

#[tokio::test(start_paused = true)]
async fn failure_rate_over_a_window() {
    let inner = Scripted::new();
    let store = inner
        .clone()
        .circuit_breaker(config(1).failure_rate(0.5, 4, 10 * S));
    let breaker = store.handle();
    // 1 failure in 4 calls: 25 %.
    inner.then([
        Step::Pass,
        Step::Fail(ErrorKind::Timeout),
        Step::Pass,
        Step::Pass,
    ]);
    for _ in 0..4 {
        let _ = store.get("k").await;
    }
    assert_eq!(breaker.state(), Closed);
    // 3 failures in 6 calls: 50 %.
    inner.then([
        Step::Fail(ErrorKind::Timeout),
        Step::Fail(ErrorKind::Unavailable),
    ]);
    let _ = store.get("k").await;
    assert_eq!(breaker.state(), Closed);
    let _ = store.get("k").await;
    assert_eq!(breaker.state(), Open);
    // After the window, old successes no longer dilute the rate.
    breaker.reset();
    inner.then([Step::Pass; 10]);
    for _ in 0..10 {
        store.get("k").await.unwrap();
    }
    advance(11 * S).await;
    inner.then([Step::Fail(ErrorKind::Timeout); 4]);
    for n in 1..=4 {
        let _ = store.get("k").await;
        assert_eq!(breaker.state() == Open, n == 4, "after {n} failures");
    }
}

#[tokio::test(start_paused = true)]
async fn operators_force_and_reset() {
    let inner = Scripted::new();
    let (config, changes) = watched(config(3));
    let store = inner.clone().circuit_breaker(config);
    let breaker = store.handle();

    breaker.force_open();
    for _ in 0..10 {
        assert_eq!(
            store.len().await.unwrap_err().kind(),
            ErrorKind::CircuitOpen
        );
    }
    advance(3600 * S).await; // forced open does not time out
    assert!(store.len().await.is_err());
    assert_eq!(inner.entered(), 0);
    assert!(breaker.is_failing_fast());

    breaker.force_closed();
    inner.then([Step::Fail(ErrorKind::Unavailable); 10]);
    for _ in 0..10 {
        assert_eq!(
            store.len().await.unwrap_err().kind(),
            ErrorKind::Unavailable
        );
    }
    assert_eq!((breaker.state(), inner.entered()), (ForcedClosed, 10));

    inner.then([Step::Fail(ErrorKind::Unavailable); 2]);
    breaker.reset();
    let _ = store.len().await;
    let _ = store.len().await;
    assert_eq!(
        breaker.state(),
        Closed,
        "forced-closed failures were not counted"
    );
    assert_eq!(breaker.stats().opened, 0);
    assert_eq!(
        *changes.lock(),
        [
            (Closed, ForcedOpen),
            (ForcedOpen, ForcedClosed),
            (ForcedClosed, Closed)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_listener_may_command_the_breaker() {
    let handle: Arc<OnceLock<BreakerHandle>> = Arc::default();
    let h = handle.clone();
    let config = config(1).on_state_change(move |c: &StateChange<'_>| {
        if c.to == Open {
            h.get().unwrap().force_closed();
        }
    });
    let inner = Scripted::new();
    let store = inner.clone().circuit_breaker(config);
    handle.set(store.handle()).unwrap();
    inner.then([Step::Fail(ErrorKind::Timeout)]);
    let _ = store.get("k").await;
    assert_eq!(store.handle().state(), ForcedClosed);
}

#[tokio::test(start_paused = true)]
async fn the_layer_gives_each_store_its_own_breaker() {
    let layer = CircuitBreakerLayer::new(config(1));
    let a = crate::layer::Layer::layer(&layer, Scripted::new());
    let b = crate::layer::Layer::layer(&layer, Scripted::new());
    a.handle().force_open();
    assert_eq!(b.handle().state(), Closed);
    assert_eq!(a.name(), "circuit_breaker(scripted)");
    assert_eq!(a.config().half_open_calls, 1);
}

/// Every transition is counted, and the gauge follows the state, under the
/// names and labels of [`crate::observe`].
#[cfg(feature = "metrics")]
#[test]
fn state_changes_are_metrics() {
    use crate::observe::{self, breaker_state, capture, label};
    use metrics_util::debugging::DebugValue;

    let recorded = capture::metrics(true, || async {
        let inner = Scripted::new();
        let store = inner.clone().circuit_breaker(config(1));
        inner.then([Step::Fail(ErrorKind::Unavailable)]);
        let _ = store.get("k").await; // closed -> open
        advance(6 * S).await;
        store.get("k").await.unwrap(); // open -> half-open -> closed
        store.handle().force_open(); // closed -> forced open
    });
    let mut changes = Vec::new();
    let mut gauge = None;
    for m in recorded {
        assert_eq!(m.label(label::STORE), "scripted");
        match (m.name.as_str(), &m.value) {
            (observe::BREAKER_STATE_CHANGES_TOTAL, DebugValue::Counter(n)) => changes.push((
                m.label(label::FROM).to_owned(),
                m.label(label::TO).to_owned(),
                *n,
            )),
            (observe::BREAKER_STATE, DebugValue::Gauge(v)) => gauge = Some(v.into_inner()),
            other => panic!("unexpected metric {other:?}"),
        }
    }
    changes.sort();
    let expected = [
        (breaker_state::CLOSED, breaker_state::FORCED_OPEN),
        (breaker_state::CLOSED, breaker_state::OPEN),
        (breaker_state::HALF_OPEN, breaker_state::CLOSED),
        (breaker_state::OPEN, breaker_state::HALF_OPEN),
    ]
    .map(|(f, t)| (f.to_owned(), t.to_owned(), 1));
    assert_eq!(changes, expected);
    assert_eq!(gauge, Some(1.0), "forced open counts as open");
}
