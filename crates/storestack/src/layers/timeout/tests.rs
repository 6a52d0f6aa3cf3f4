use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::layers::testing::{Scripted, Step};
use crate::{ErrorKind, StoreExt};

const MS: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn expiry_drops_the_inner_future() {
    let inner = Scripted::new();
    inner.then([Step::Hang]);
    let store = inner.clone().timeout(50 * MS);
    let t0 = Instant::now();
    let err = store.get("k").await.unwrap_err();
    assert_eq!(t0.elapsed(), 50 * MS);
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.op(), Op::Get);
    assert_eq!(err.store(), "scripted");
    assert_eq!(
        err.to_string(),
        "get on scripted failed (timeout): no reply within 50ms"
    );
    assert_eq!(
        (inner.entered(), inner.dropped(), inner.completed()),
        (1, 1, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn an_op_in_time_is_untouched() {
    let inner = Scripted::new();
    inner.then([Step::Sleep(49 * MS)]);
    let store = inner.clone().timeout(50 * MS);
    let t0 = Instant::now();
    assert!(store
        .create("k", Record::never_expiring("v"))
        .await
        .unwrap());
    assert_eq!(t0.elapsed(), 49 * MS);
    assert_eq!((inner.completed(), inner.dropped()), (1, 0));
    assert_eq!(store.get("k").await.unwrap().unwrap().value, "v");
}

#[tokio::test(start_paused = true)]
async fn inner_errors_pass_unchanged() {
    let inner = Scripted::new();
    inner.then([Step::Fail(ErrorKind::Corrupt)]);
    let err = inner.timeout(50 * MS).get("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert_eq!(err.message(), "scripted failure");
}

#[tokio::test(start_paused = true)]
async fn deadlines_are_per_operation() {
    let inner = Scripted::new();
    let config = TimeoutConfig::new(50 * MS)
        .op(Op::Scan, 500 * MS)
        .without(Op::Clear);
    let store = inner.clone().timeout(config);

    inner.then([Step::Sleep(200 * MS)]);
    store.scan("", ScanCursor::start(), 10).await.unwrap();

    inner.then([Step::Sleep(200 * MS)]);
    let err = store.len().await.unwrap_err();
    assert_eq!((err.kind(), err.op()), (ErrorKind::Timeout, Op::Len));

    inner.then([Step::Sleep(Duration::from_secs(3600))]);
    let t0 = Instant::now();
    store.clear().await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_secs(3600));
    assert_eq!(inner.dropped(), 1);
}

#[tokio::test(start_paused = true)]
async fn layer_builds_the_same_store() {
    let store = crate::layer::Layer::layer(&TimeoutLayer::new(10 * MS), Scripted::new());
    assert_eq!(store.name(), "timeout(scripted)");
    assert_eq!(store.config().deadline(Op::Touch), Some(10 * MS));
    store.get_ref().then([Step::Hang]);
    let err = store.touch("k", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
}
