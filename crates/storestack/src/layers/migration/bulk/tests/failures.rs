//! The bulk migrator when things go wrong: transient and permanent
//! errors, races with the application, foreign checkpoints, verification.

use super::*;
use crate::layers::testing::Step;

#[tokio::test(start_paused = true)]
async fn transient_errors_are_retried_then_counted() {
    let (clock, old, new) = stores();
    fill(&old, &clock, 100).await;
    new.then([Step::Fail(ErrorKind::Unavailable); 20]);
    let report = migrator(&old, &new, &clock).run().await.unwrap();
    assert_eq!(
        report.progress.counts.copied, 100,
        "retries absorbed the blips"
    );

    let (clock, old, new) = stores();
    fill(&old, &clock, 100).await;
    new.down();
    let run = migrator(&old, &new, &clock).config(
        BulkConfig::default()
            .verify(None)
            .max_attempts(3)
            .retry_delay(Duration::from_millis(1)),
    );
    let report = run.run().await.unwrap();
    assert_eq!(report.progress.counts.failed, 100);
    assert!(!report.is_success());
    assert_eq!(new.calls(Op::Create), 300, "three attempts each");

    let strict = migrator(&old, &new, &clock).config(BulkConfig::default().max_failed(5));
    let err = strict.run().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("records failed"), "{err}");
}

#[tokio::test]
async fn a_non_transient_error_aborts_with_its_cause() {
    let (clock, old, _) = stores();
    fill(&old, &clock, 10).await;
    let small = MemoryStore::with_config(MemoryConfig::default().max_value_len(4));
    let new = Scripted::with_data(small).named("new");
    let checkpoint = MemoryCheckpoint::new();
    let err = migrator(&old, &new, &clock)
        .checkpoint(checkpoint.clone())
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge);
    assert!(err.to_string().contains("bulk migration stopped"), "{err}");
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("larger than the maximum"), "{cause}");
    assert_eq!(
        checkpoint.state(),
        None,
        "the failed page is not checkpointed"
    );
}

#[tokio::test]
async fn a_delete_racing_the_copy_is_not_resurrected() {
    for recheck in [true, false] {
        let (clock, old, new) = stores();
        old.data()
            .set("k", Record::never_expiring("v"))
            .await
            .unwrap();
        let app = Migration::new(old.clone(), new.clone())
            .with_handle(MigrationHandle::new(Phase::ReadNew))
            .clock(clock.clone());
        let gate = old.pause(Op::Get, 0);
        let cfg = BulkConfig::default()
            .recheck(recheck)
            .verify(None)
            .estimate_total(false);
        let bulk = migrator(&old, &new, &clock).config(cfg);
        let run = bulk.run();
        let deleted = async {
            gate.reached().await; // the migrator read "v" and paused
            let deleted = app.delete("k").await.unwrap();
            gate.release();
            deleted
        };
        let (report, deleted) = tokio::join!(run, deleted);
        assert!(deleted);
        let report = report.unwrap();
        let resurrected = new.data().get("k").await.unwrap().is_some();
        // Without the check the copy outlives the delete: the race is real.
        assert_eq!(resurrected, !recheck, "recheck {recheck}");
        if recheck {
            assert_eq!(report.progress.counts.vanished, 1);
        }
    }
}

#[tokio::test]
async fn a_checkpoint_of_another_migration_is_refused() {
    let (clock, old, new) = stores();
    let checkpoint = MemoryCheckpoint::new();
    checkpoint
        .save(&CheckpointState::new("redis -> mongodb"))
        .await
        .unwrap();
    let err = migrator(&old, &new, &clock)
        .checkpoint(checkpoint)
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("another migration"), "{err}");
}

#[tokio::test]
async fn verify_finds_missing_changed_and_late_records() {
    let (clock, old, new) = stores();
    fill(&old, &clock, 100).await;
    migrator(&old, &new, &clock).run().await.unwrap();
    new.data().delete("k00001").await.unwrap();
    new.data()
        .set(
            "k00002",
            Record::expiring_after("changed", Duration::from_secs(9)),
        )
        .await
        .unwrap();
    let r4 = old.data().get("k00004").await.unwrap().unwrap();
    let later = r4.expires_at.unwrap() + Duration::from_secs(5);
    new.data()
        .set("k00004", Record::expiring_at(r4.value.clone(), later))
        .await
        .unwrap();
    let r5 = old.data().get("k00005").await.unwrap().unwrap();
    let close = r5.expires_at.unwrap() + Duration::from_millis(500);
    new.data()
        .set("k00005", Record::expiring_at(r5.value, close))
        .await
        .unwrap();

    let check = migrator(&old, &new, &clock)
        .config(BulkConfig::default().verify(Some(VerifyConfig::default().samples(100).seed(7))));
    let v = check.verify().await.unwrap();
    assert_eq!((v.missing, v.value_mismatch, v.expiry_mismatch), (1, 1, 1));
    assert_eq!(v.matched, 97, "500 ms apart is within tolerance");
    assert_eq!((v.old_len, v.new_len, v.seed), (100, 99, 7));
    assert!(!v.counts_match() && !v.is_ok());
    let _ = clock.now();
}
