use std::time::Duration;

use tokio::time::{advance, Instant};

use super::*;
use crate::layers::testing::Scripted;
use crate::{MemoryStore, StoreExt};

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

fn faulty(config: FaultConfig) -> (FaultInjection<Scripted>, Scripted) {
    let inner = Scripted::new();
    (inner.clone().fault_injection(config.seed(1)), inner)
}

#[tokio::test(start_paused = true)]
async fn transparent_by_default() {
    let (store, inner) = faulty(FaultConfig::default());
    store.set("k", Record::never_expiring("v")).await.unwrap();
    assert_eq!(store.get("k").await.unwrap().unwrap().value, "v");
    assert_eq!(store.len().await.unwrap(), 1);
    let stats = store.handle().stats();
    assert_eq!((stats.ops, stats.faults(), stats.delayed), (3, 0, 0));
    assert_eq!(inner.entered(), 3);
    assert_eq!(store.name(), "fault(scripted)");
}

/// One sequential run: what each operation met, and how long it took.
async fn trace(seed: u64) -> Vec<(String, Duration)> {
    let store = MemoryStore::new().fault_injection(
        FaultConfig::default()
            .seed(seed)
            .errors(0.2, ErrorKind::Timeout)
            .reply_loss_rate(0.1)
            .corrupt_rate(0.3)
            .latency(MS, 10 * MS),
    );
    let mut out = Vec::new();
    for i in 0..200 {
        let t0 = Instant::now();
        let what = if i % 2 == 0 {
            format!(
                "{:?}",
                store
                    .set("k", Record::never_expiring("value"))
                    .await
                    .map_err(|e| e.kind())
            )
        } else {
            format!("{:?}", store.get("k").await.map_err(|e| e.kind()))
        };
        out.push((what, t0.elapsed()));
    }
    out
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_replays_the_same_faults() {
    let a = trace(7).await;
    assert_eq!(a, trace(7).await);
    assert_ne!(a, trace(8).await);
    let kinds = |t: &[(String, Duration)], s: &str| t.iter().filter(|(w, _)| w.contains(s)).count();
    assert!(kinds(&a, "Timeout") > 10, "{a:?}");
    assert!(kinds(&a, "Ok(Some") > 10);
}

#[tokio::test(start_paused = true)]
async fn error_rate_is_honoured_and_errors_skip_the_store() {
    let (store, inner) = faulty(FaultConfig::default().errors(0.25, ErrorKind::Unavailable));
    let mut failed = 0;
    for _ in 0..4000 {
        if let Err(e) = store.get("k").await {
            assert_eq!((e.kind(), e.store()), (ErrorKind::Unavailable, "scripted"));
            assert_eq!(e.message(), "injected fault: error");
            failed += 1;
        }
    }
    assert!((800..1200).contains(&failed), "{failed} of 4000");
    assert_eq!(inner.entered(), 4000 - failed);
    assert_eq!(store.handle().stats().errors, failed as u64);
}

#[tokio::test(start_paused = true)]
async fn only_selected_operations_are_affected() {
    let (store, _) = faulty(FaultConfig::default().ops(OpSet::READS).down(true));
    store.set("k", Record::never_expiring("v")).await.unwrap();
    assert_eq!(
        store.get("k").await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    store.handle().set_ops(OpSet::of(&[Op::Set]));
    assert!(store.get("k").await.is_ok());
    assert!(store.set("k", Record::never_expiring("v")).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn latency_is_fixed_plus_bounded_jitter() {
    let (store, _) = faulty(FaultConfig::default().latency(10 * MS, 5 * MS));
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        let t0 = Instant::now();
        store.len().await.unwrap();
        let took = t0.elapsed();
        assert!(took >= 10 * MS && took <= 16 * MS, "{took:?}");
        seen.insert(took);
    }
    assert!(seen.len() > 1, "jitter varies");
    assert_eq!(store.handle().stats().delayed, 50);
}

#[tokio::test(start_paused = true)]
async fn a_hang_lasts_until_a_timeout_above_drops_it() {
    let (store, inner) = faulty(FaultConfig::default().hang_rate(1.0));
    let handle = store.handle();
    let store = store.timeout(Duration::from_secs(2));
    let t0 = Instant::now();
    assert_eq!(store.get("k").await.unwrap_err().kind(), ErrorKind::Timeout);
    assert_eq!(t0.elapsed(), 2 * S);
    assert_eq!((handle.stats().hangs, inner.entered()), (1, 0));
    // An outage can hang too.
    handle.heal();
    handle.set_outage_mode(OutageMode::Hang);
    handle.set_down(true);
    assert_eq!(store.len().await.unwrap_err().kind(), ErrorKind::Timeout);
    assert_eq!(handle.stats().outages, 1);
}

#[tokio::test(start_paused = true)]
async fn scheduled_outages_and_restarting_the_schedule() {
    let (store, _) = faulty(FaultConfig::default().outage(Outage::new(10 * S, 5 * S)));
    let handle = store.handle();
    advance(10 * S - MS).await;
    assert!(store.len().await.is_ok());
    advance(MS).await;
    assert!(handle.is_down_now());
    assert_eq!(
        store.len().await.unwrap_err().message(),
        "injected fault: outage"
    );
    advance(5 * S - MS).await;
    assert!(store.len().await.is_err());
    advance(MS).await;
    assert!(store.len().await.is_ok());
    handle.restart_schedule();
    advance(10 * S).await;
    assert!(
        store.len().await.is_err(),
        "the window is measured from the restart"
    );
    handle.clear_outages();
    assert!(store.len().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn flapping_goes_up_and_down() {
    let (store, _) = faulty(FaultConfig::default().flapping(3 * S, S));
    let mut pattern = Vec::new();
    for _ in 0..8 {
        pattern.push(store.len().await.is_ok());
        advance(S).await;
    }
    assert_eq!(pattern, [true, true, true, false, true, true, true, false]);
    store.handle().set_flapping(None);
    advance(3 * S).await;
    assert!(store.len().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_lost_reply_was_applied() {
    let (store, inner) = faulty(
        FaultConfig::default()
            .errors(0.0, ErrorKind::Timeout)
            .reply_loss_rate(1.0),
    );
    let err = store
        .create("k", Record::never_expiring("v"))
        .await
        .unwrap_err();
    assert_eq!((err.kind(), err.op()), (ErrorKind::Timeout, Op::Create));
    assert!(err.message().contains("applied"));
    assert_eq!(inner.data().get("k").await.unwrap().unwrap().value, "v");
    assert_eq!(store.handle().stats().lost_replies, 1);
}

#[tokio::test(start_paused = true)]
async fn corruption_flips_a_byte_of_returned_values() {
    let (store, inner) = faulty(FaultConfig::default().corrupt_rate(1.0));
    let value = b"session-data-0123456789".to_vec();
    store
        .set("k", Record::never_expiring(value.clone()))
        .await
        .unwrap();
    for _ in 0..20 {
        let got = store.get("k").await.unwrap().unwrap().value;
        let diff = got.iter().zip(&value).filter(|(a, b)| a != b).count();
        assert_eq!((got.len(), diff), (value.len(), 1));
    }
    assert_eq!(
        inner.data().get("k").await.unwrap().unwrap().value,
        value,
        "stored bytes intact"
    );
    store.set("e", Record::never_expiring("")).await.unwrap();
    assert_eq!(store.get("e").await.unwrap().unwrap().value, "");
    assert_eq!(store.handle().stats().corrupted, 20);
}

#[tokio::test(start_paused = true)]
async fn the_handle_switches_faults_at_runtime() {
    let (store, _) = faulty(FaultConfig::default());
    let handle = store.handle();
    assert_eq!(handle.seed(), 1);
    handle.set_down(true);
    assert!(store.len().await.is_err());
    handle.set_down(false);
    handle.set_error_rate(1.0);
    handle.set_error_kind(ErrorKind::Timeout);
    assert_eq!(store.len().await.unwrap_err().kind(), ErrorKind::Timeout);
    handle.update(|c| c.error_kind = ErrorKind::Internal);
    assert_eq!(store.len().await.unwrap_err().kind(), ErrorKind::Internal);
    handle.set_hang_rate(0.5);
    handle.set_corrupt_rate(0.5);
    handle.set_reply_loss_rate(0.5);
    handle.set_latency(S, S);
    handle.add_outage(Outage::new(S, S));
    handle.heal();
    assert_eq!(
        handle.config(),
        FaultConfig::default()
            .seed(1)
            .errors(0.0, ErrorKind::Internal)
    );
    assert!(store.len().await.is_ok());
    assert_eq!(handle.stats().outages + handle.stats().errors, 3);
    handle.reset_stats();
    assert_eq!(handle.stats(), FaultStats::default());
    handle.update(|c| c.seed = Some(99));
    assert_eq!(handle.config().seed, Some(1), "the seed cannot change");
}

#[tokio::test(start_paused = true)]
async fn a_layer_shares_its_handle() {
    let layer = FaultInjectionLayer::new(FaultConfig::default().seed(5));
    let a = crate::layer::Layer::layer(&layer, MemoryStore::new());
    let b = crate::layer::Layer::layer(&layer, MemoryStore::new());
    layer.handle().set_down(true);
    assert!(a.len().await.is_err() && b.len().await.is_err());
    assert_eq!(layer.handle().stats().outages, 2);
    assert_eq!(a.handle().seed(), 5);
}
