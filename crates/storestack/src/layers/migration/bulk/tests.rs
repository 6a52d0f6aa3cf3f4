//! The bulk migrator's rules, one test each.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::*;

mod failures;
use crate::clock::{Clock, MockClock};
use crate::error::{ErrorKind, Op};
use crate::layers::migration::{Migration, MigrationHandle, Phase};
use crate::layers::testing::Scripted;
use crate::{MemoryConfig, MemoryStore, Record};

fn stores() -> (MockClock, Scripted, Scripted) {
    let clock = MockClock::new();
    (
        clock.clone(),
        Scripted::on_clock(&clock).named("old"),
        Scripted::on_clock(&clock).named("new"),
    )
}

/// `n` records: every third never expires, the others expire 1–2 h out.
async fn fill(old: &Scripted, clock: &MockClock, n: usize) {
    for i in 0..n {
        let value = format!("value-{i}");
        let rec = if i % 3 == 0 {
            Record::never_expiring(value)
        } else {
            Record::expiring_at(value, clock.now() + Duration::from_secs(3600 + i as u64))
        };
        old.data().set(&format!("k{i:05}"), rec).await.unwrap();
    }
}

fn migrator<'a>(old: &'a Scripted, new: &'a Scripted, clock: &MockClock) -> BulkMigrator<'a> {
    BulkMigrator::new(old, new)
        .clock(Arc::new(clock.clone()))
        .config(
            BulkConfig::default()
                .page_size(100)
                .retry_delay(Duration::from_millis(1)),
        )
}

async fn assert_same(old: &Scripted, new: &Scripted, n: usize) {
    for i in 0..n {
        let key = format!("k{i:05}");
        assert_eq!(
            old.data().get(&key).await.unwrap(),
            new.data().get(&key).await.unwrap(),
            "{key}"
        );
    }
}

#[tokio::test]
async fn copies_every_record_with_its_expiry_and_verifies() {
    let (clock, old, new) = stores();
    fill(&old, &clock, 1000).await;
    let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let sink = seen.clone();
    let report = migrator(&old, &new, &clock)
        .on_progress(move |p: &Progress| sink.lock().push(p.clone()))
        .run()
        .await
        .unwrap();
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.progress.counts.copied, 1000);
    assert_same(&old, &new, 1000).await;
    let v = report.verify.unwrap();
    assert_eq!(
        (v.old_len, v.new_len, v.sampled, v.matched),
        (1000, 1000, 1000, 1000)
    );
    let seen = seen.lock();
    assert_eq!(seen.len(), 11, "one per page and one at the end");
    assert!(seen
        .windows(2)
        .all(|w| w[0].counts.scanned <= w[1].counts.scanned));
    assert_eq!(seen[0].total_estimate, Some(1000));
    assert!(seen.last().unwrap().done && !seen[0].done);
}

#[tokio::test]
async fn skips_records_expired_by_the_time_of_the_copy() {
    let (clock, old, new) = stores();
    fill(&old, &clock, 300).await;
    // The migrator's clock is 2 h ahead: every expiring record is over.
    let ahead = MockClock::starting_at(clock.now() + Duration::from_secs(7200));
    let report = migrator(&old, &new, &ahead)
        .config(BulkConfig::default().verify(None))
        .run()
        .await
        .unwrap();
    let c = report.progress.counts;
    assert_eq!((c.copied, c.skipped_expired), (100, 200));
    assert_eq!(new.data().len().await.unwrap(), 100);
}

#[tokio::test]
async fn never_overwrites_a_record_already_in_new() {
    let (clock, old, new) = stores();
    fill(&old, &clock, 200).await;
    new.data()
        .set("k00007", Record::never_expiring("newer"))
        .await
        .unwrap();
    let report = migrator(&old, &new, &clock).run().await.unwrap();
    assert_eq!(report.progress.counts.skipped_existing, 1);
    assert_eq!(report.progress.counts.copied, 199);
    assert_eq!(
        new.data().get("k00007").await.unwrap().unwrap().value,
        "newer"
    );
    assert!(
        !report.verify.unwrap().is_ok(),
        "the sample compare sees the difference"
    );
}

#[tokio::test]
async fn resumes_after_the_run_is_dropped_mid_page() {
    let (clock, old, new) = stores();
    fill(&old, &clock, 1000).await;
    let dir = std::env::temp_dir().join(format!("storestack-bulk-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("migrate.ckpt");

    // Stop inside the 4th page: pause its 50th create, then drop the run.
    let gate = new.pause(Op::Create, 349);
    let first = migrator(&old, &new, &clock).checkpoint(FileCheckpoint::new(&path));
    tokio::select! {
        r = first.run() => panic!("run finished: {r:?}"),
        _ = gate.reached() => {}
    }
    drop(first);
    gate.release();
    let saved = FileCheckpoint::new(&path).load().await.unwrap().unwrap();
    assert_eq!(saved.counts.scanned, 300, "three whole pages checkpointed");
    assert!(!saved.done);
    let partial = new.data().len().await.unwrap();
    assert!((301..=400).contains(&partial), "{partial}");

    let report = migrator(&old, &new, &clock)
        .checkpoint(FileCheckpoint::new(&path))
        .run()
        .await
        .unwrap();
    assert!(report.resumed);
    assert_eq!(report.progress.run_scanned, 700, "resumed, not restarted");
    let c = report.progress.counts;
    assert_eq!(c.scanned, 1000);
    assert_eq!(c.copied + c.skipped_existing, 1000);
    assert_eq!(
        c.copied,
        1000 - (partial - 300),
        "the interrupted page's copies are found"
    );
    assert!(report.is_success(), "{report:?}");
    assert_same(&old, &new, 1000).await;

    // Resuming a finished run only verifies.
    let again = migrator(&old, &new, &clock).checkpoint(FileCheckpoint::new(&path));
    let report = again.run().await.unwrap();
    assert_eq!(report.progress.run_scanned, 0);
    assert!(report.verify.unwrap().is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let (clock, old, new) = stores();
    fill(&old, &clock, 250).await;
    new.data()
        .set("k00001", Record::never_expiring("x"))
        .await
        .unwrap();
    let checkpoint = MemoryCheckpoint::new();
    let report = migrator(&old, &new, &clock)
        .config(BulkConfig::default().dry_run(true))
        .checkpoint(checkpoint.clone())
        .run()
        .await
        .unwrap();
    let c = report.progress.counts;
    assert_eq!((c.copied, c.skipped_existing), (249, 1));
    assert!(report.progress.dry_run && report.verify.is_none());
    assert_eq!(new.data().len().await.unwrap(), 1);
    assert_eq!(
        new.calls(Op::Create) + new.calls(Op::Set) + new.calls(Op::Delete),
        0
    );
    assert_eq!(checkpoint.state(), None, "not even the checkpoint");
}

#[tokio::test(start_paused = true)]
async fn rate_limit_is_respected() {
    let (clock, old, new) = stores();
    fill(&old, &clock, 1000).await;
    let t0 = tokio::time::Instant::now();
    let report = migrator(&old, &new, &clock)
        .config(BulkConfig::default().rate_limit(Some(200)).verify(None))
        .run()
        .await
        .unwrap();
    let elapsed = t0.elapsed();
    assert_eq!(report.progress.counts.copied, 1000);
    // 1000 records at 200/s, bursts of 2: 998 intervals of 5 ms.
    assert!(elapsed >= Duration::from_millis(4990), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(5100), "{elapsed:?}");
    assert!(
        (report.progress.rate - 200.0).abs() < 5.0,
        "{}",
        report.progress.rate
    );
}
