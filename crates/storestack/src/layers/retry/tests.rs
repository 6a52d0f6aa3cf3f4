use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use tokio::time::Instant;

use super::create::same_write;
use super::*;
use crate::layers::testing::{Scripted, Step};
use crate::StoreExt;

const MS: Duration = Duration::from_millis(1);

/// What an observer saw: (attempt, next delay, error kind).
type Seen = Arc<Mutex<Vec<(u32, Option<Duration>, ErrorKind)>>>;

fn watched(config: RetryConfig) -> (RetryConfig, Seen) {
    let seen = Seen::default();
    let log = seen.clone();
    let config = config.observer(move |e: &RetryEvent<'_>| {
        assert_eq!(e.store, "scripted");
        log.lock().push((e.attempt, e.next_delay, e.error.kind()));
    });
    (config, seen)
}

fn fixed(delay: Duration) -> RetryConfig {
    RetryConfig::default()
        .backoff(delay, delay)
        .jitter(0.0)
        .max_elapsed(None)
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_until_success() {
    let inner = Scripted::new();
    inner
        .data()
        .set("k", Record::never_expiring("v"))
        .await
        .unwrap();
    inner.then([
        Step::Fail(ErrorKind::Unavailable),
        Step::Fail(ErrorKind::Timeout),
    ]);
    let (config, seen) = watched(fixed(10 * MS).max_attempts(3));
    let store = inner.clone().retry(config);
    let t0 = Instant::now();
    assert_eq!(store.get("k").await.unwrap().unwrap().value, "v");
    assert_eq!(inner.entered(), 3);
    assert_eq!(t0.elapsed(), 20 * MS);
    let seen = seen.lock().clone();
    assert_eq!(
        seen,
        [
            (1, Some(10 * MS), ErrorKind::Unavailable),
            (2, Some(10 * MS), ErrorKind::Timeout)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_max_attempts_marked_exhausted() {
    let inner = Scripted::new();
    inner.then([Step::Fail(ErrorKind::Unavailable); 10]);
    let (config, seen) = watched(fixed(10 * MS).max_attempts(4));
    let err = inner
        .clone()
        .retry(config)
        .set("k", Record::never_expiring("v"))
        .await
        .unwrap_err();
    assert_eq!((err.kind(), err.op()), (ErrorKind::Unavailable, Op::Set));
    assert!(err.is_exhausted());
    assert!(err.to_string().contains("after retries"), "{err}");
    assert_eq!(inner.entered(), 4);
    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[3], (4, None, ErrorKind::Unavailable));
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_circuit_open_and_exhausted_fail_at_once() {
    for step in [
        Step::Fail(ErrorKind::Corrupt),
        Step::Fail(ErrorKind::InvalidInput),
        Step::Fail(ErrorKind::PermissionDenied),
        Step::Fail(ErrorKind::Misconfigured),
        Step::Fail(ErrorKind::CircuitOpen),
    ] {
        let inner = Scripted::new();
        inner.then([step, Step::Pass]);
        let err = inner.clone().retry(fixed(MS)).get("k").await.unwrap_err();
        assert!(!err.is_exhausted(), "{err}");
        assert_eq!(inner.entered(), 1, "{step:?}");
    }
    // An error a retry further down gave up on is not retried again.
    let inner = Scripted::new();
    inner.then([Step::Fail(ErrorKind::Timeout); 9]);
    let store = inner
        .clone()
        .retry(fixed(MS).max_attempts(3))
        .retry(fixed(MS).max_attempts(3));
    let err = store.len().await.unwrap_err();
    assert!(err.is_exhausted());
    assert_eq!(inner.entered(), 3);
}

#[tokio::test(start_paused = true)]
async fn backoff_delays_stay_within_bounds() {
    let inner = Scripted::new();
    let (config, seen) = watched(
        RetryConfig::default()
            .max_attempts(6)
            .backoff(100 * MS, 400 * MS)
            .multiplier(2.0)
            .jitter(0.5)
            .max_elapsed(None),
    );
    let store = inner.clone().retry(config);
    let base = [100u64, 200, 400, 400, 400];
    for round in 1..=20 {
        seen.lock().clear();
        inner.then([Step::Fail(ErrorKind::Timeout); 6]);
        let t0 = Instant::now();
        assert!(store.get("k").await.unwrap_err().is_exhausted());
        assert_eq!(inner.entered(), 6 * round);
        let seen = seen.lock().clone();
        let delays: Vec<Duration> = seen.iter().filter_map(|s| s.1).collect();
        assert_eq!(delays.len(), 5);
        for (d, b) in delays.iter().zip(base) {
            let (lo, hi) = (
                Duration::from_millis(b / 2),
                Duration::from_millis(b * 3 / 2) + MS,
            );
            assert!(*d >= lo && *d <= hi, "delay {d:?} outside [{lo:?}, {hi:?}]");
        }
        // The sleeps really took those delays (tokio rounds timers up to
        // the millisecond).
        let total: Duration = delays.iter().sum();
        let elapsed = t0.elapsed();
        assert!(
            elapsed >= total && elapsed <= total + 5 * MS,
            "{elapsed:?} vs {total:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_time_budget_stops_retries() {
    let inner = Scripted::new();
    inner.then([Step::Fail(ErrorKind::Unavailable); 100]);
    let config = fixed(100 * MS)
        .max_attempts(100)
        .max_elapsed(Some(350 * MS));
    let t0 = Instant::now();
    let err = inner.clone().retry(config).delete("k").await.unwrap_err();
    assert!(err.is_exhausted());
    // Attempts at 0, 100, 200 and 300 ms; a fifth would start at 400.
    assert_eq!(inner.entered(), 4);
    assert_eq!(t0.elapsed(), 300 * MS);
}

#[tokio::test(start_paused = true)]
async fn create_whose_reply_was_lost_reports_its_own_write() {
    let inner = Scripted::new();
    inner.then([Step::FailAfter(ErrorKind::Timeout)]);
    let store = inner.clone().retry(fixed(10 * MS));
    let record = Record::expiring_after("mine", Duration::from_secs(60));
    assert!(store.create("k", record.clone()).await.unwrap());
    // create (applied, reply lost), create (false), get (ours).
    assert_eq!(inner.entered(), 3);
    assert_eq!(inner.data().get("k").await.unwrap(), Some(record));
    // Now the key is really taken: a plain false, no read-back.
    assert!(!store
        .create("k", Record::never_expiring("x"))
        .await
        .unwrap());
    assert_eq!(inner.entered(), 4);
}

#[tokio::test(start_paused = true)]
async fn create_after_an_unknown_outcome_sees_someone_elses_record() {
    let inner = Scripted::new();
    inner
        .data()
        .set("k", Record::never_expiring("theirs"))
        .await
        .unwrap();
    inner.then([Step::Fail(ErrorKind::Unavailable)]);
    let store = inner.clone().retry(fixed(10 * MS));
    assert!(!store
        .create("k", Record::never_expiring("mine"))
        .await
        .unwrap());
    assert_eq!(inner.entered(), 3);
    // Same bytes but another expiry is not ours either.
    inner.then([Step::Fail(ErrorKind::Timeout)]);
    let other_expiry = Record::expiring_after("theirs", Duration::from_secs(5));
    assert!(!store.create("k", other_expiry).await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn create_retries_once_more_when_the_record_vanished() {
    let inner = Scripted::new();
    // create: applied, reply lost; create: false; get: slow, and the key is
    // deleted meanwhile; create: inserts again.
    inner.then([
        Step::FailAfter(ErrorKind::Timeout),
        Step::Pass,
        Step::Sleep(10 * MS),
    ]);
    let data = inner.data().clone();
    let deleter = tokio::spawn(async move {
        tokio::time::sleep(105 * MS).await;
        assert!(data.delete("k").await.unwrap());
    });
    let store = inner.clone().retry(fixed(100 * MS));
    assert!(store
        .create("k", Record::never_expiring("mine"))
        .await
        .unwrap());
    deleter.await.unwrap();
    assert_eq!(inner.entered(), 4);
    assert_eq!(inner.data().get("k").await.unwrap().unwrap().value, "mine");
}

/// A `set_if` on the version of "v1", from a store holding "v1".
async fn versioned(inner: &Scripted) -> Condition {
    let v1 = Record::never_expiring("v1");
    inner.data().set("k", v1).await.unwrap();
    let found = inner.data().get_versioned("k").await.unwrap().unwrap();
    Condition::Matches(found.version)
}

#[tokio::test(start_paused = true)]
async fn set_if_whose_reply_was_lost_reports_its_own_write() {
    let inner = Scripted::new();
    let v1 = versioned(&inner).await;
    inner.then([Step::FailAfter(ErrorKind::Timeout)]);
    let store = inner.clone().retry(fixed(10 * MS));
    let mine = Record::expiring_after("mine", Duration::from_secs(60));
    assert!(store.set_if("k", mine.clone(), v1.clone()).await.unwrap());
    // set_if (applied, reply lost), set_if (false: the version moved), get
    // (ours).
    assert_eq!(inner.entered(), 3);
    assert_eq!(inner.data().get("k").await.unwrap(), Some(mine));
    // The version is stale now: a plain false, no read-back.
    let other = Record::never_expiring("x");
    assert!(!store.set_if("k", other, v1).await.unwrap());
    assert_eq!(inner.entered(), 4);
}

#[tokio::test(start_paused = true)]
async fn set_if_after_an_unknown_outcome_sees_someone_elses_write() {
    let inner = Scripted::new();
    let v1 = versioned(&inner).await;
    // The first attempt fails before reaching the data; someone else
    // writes meanwhile; the second attempt is refused and the read-back
    // finds their record.
    inner.then([Step::Fail(ErrorKind::Unavailable)]);
    let data = inner.data().clone();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(5 * MS).await;
        data.set("k", Record::never_expiring("theirs"))
            .await
            .unwrap();
    });
    let store = inner.clone().retry(fixed(10 * MS));
    let mine = Record::never_expiring("mine");
    assert!(!store.set_if("k", mine, v1).await.unwrap());
    writer.await.unwrap();
    assert_eq!(inner.entered(), 3);
    assert_eq!(
        inner.data().get("k").await.unwrap().unwrap().value,
        "theirs"
    );
}

#[tokio::test(start_paused = true)]
async fn set_if_of_an_expired_record_whose_reply_was_lost_removed_the_key() {
    let inner = Scripted::new();
    let v1 = versioned(&inner).await;
    inner.then([Step::FailAfter(ErrorKind::Timeout)]);
    let store = inner.clone().retry(fixed(MS));
    let past = Record::expiring_at("gone", SystemTime::now() - Duration::from_secs(1));
    assert!(store.set_if("k", past, v1).await.unwrap());
    assert_eq!(inner.data().get("k").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn set_if_exists_never_recreates_through_retries() {
    let inner = Scripted::new();
    inner.then([Step::Fail(ErrorKind::Timeout)]);
    let store = inner.clone().retry(fixed(MS));
    let mine = Record::never_expiring("mine");
    assert!(!store.set_if("k", mine, Condition::Exists).await.unwrap());
    assert_eq!(inner.data().get("k").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn delete_with_a_lost_reply_is_repeated() {
    let inner = Scripted::new();
    inner
        .data()
        .set("k", Record::never_expiring("v"))
        .await
        .unwrap();
    inner.then([Step::FailAfter(ErrorKind::Timeout)]);
    let store = inner.clone().retry(fixed(MS));
    // Documented: the repeat finds nothing; the key is gone either way.
    assert!(!store.delete("k").await.unwrap());
    assert_eq!(inner.data().get("k").await.unwrap(), None);
}

#[test]
fn same_write_compares_bytes_and_millisecond_expiry() {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let mine = Record::expiring_at("v", at);
    assert!(same_write(
        &Record::expiring_at("v", at + Duration::from_micros(900)),
        &mine
    ));
    assert!(same_write(
        &Record::expiring_at("v", at - Duration::from_micros(900)),
        &mine
    ));
    assert!(!same_write(&Record::expiring_at("v", at + 2 * MS), &mine));
    assert!(!same_write(&Record::expiring_at("w", at), &mine));
    assert!(!same_write(&Record::never_expiring("v"), &mine));
    assert!(same_write(
        &Record::never_expiring("v"),
        &Record::never_expiring("v")
    ));
}

#[tokio::test(start_paused = true)]
async fn the_layer_builds_a_retry() {
    let store = crate::layer::Layer::layer(&RetryLayer::new(fixed(MS)), Scripted::new());
    assert_eq!(store.name(), "retry(scripted)");
    assert_eq!(store.config().max_attempts, 3);
    store.get_ref().then([Step::Fail(ErrorKind::Timeout)]);
    store.scan("", ScanCursor::start(), 10).await.unwrap();
    assert_eq!(store.get_ref().entered(), 2);
}
