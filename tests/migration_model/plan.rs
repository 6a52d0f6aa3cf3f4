//! The controller: steps through every phase and back as the workload
//! progresses, with outages on either store and a bulk migration, and
//! switches either one instance directly or a fleet through a control
//! record.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use storestack::layers::migration::bulk::{BulkConfig, BulkMigrator};
use storestack::layers::migration::{Phase, PhaseControl};
use storestack::MemoryStore;

use crate::faulty::{Faulty, Mode};
use crate::{Bulk, Mig};
use storestack::clock::MockClock;

/// Switches one instance directly, or a fleet through a control record:
/// the high-water mark first (applied everywhere), then the phase, which
/// the second instance applies 100 operations after the first.
pub(crate) struct Switcher<'a> {
    fleet: Vec<Mig>,
    control: PhaseControl<MemoryStore>,
    ops: &'a AtomicUsize,
}

impl<'a> Switcher<'a> {
    pub(crate) async fn new(fleet: &[Mig], ops: &'a AtomicUsize) -> Self {
        let control = PhaseControl::new(MemoryStore::new(), "storestack:migration");
        Switcher {
            fleet: fleet.to_vec(),
            control,
            ops,
        }
    }

    async fn switch(&self, phase: Phase) {
        if let [only] = &self.fleet[..] {
            only.handle().set(phase).expect("allowed switch");
            return;
        }
        self.control
            .raise_high_water(phase.write_percent())
            .await
            .unwrap();
        for m in &self.fleet {
            self.control.apply(m.handle()).await.unwrap();
        }
        self.control
            .publish(phase, false)
            .await
            .expect("allowed switch");
        let lag_until = self.ops.load(Ordering::SeqCst) + 100;
        for (i, m) in self.fleet.iter().enumerate() {
            if i > 0 {
                while self.ops.load(Ordering::SeqCst) < lag_until {
                    tokio::task::yield_now().await;
                }
            }
            self.control.apply(m.handle()).await.unwrap();
        }
    }
}

/// Steps through the phases as the workload progresses; returns the
/// phases visited.
pub(crate) async fn plan(
    switcher: &Switcher<'_>,
    m: &Mig,
    old: &Faulty,
    new: &Faulty,
    clock: &MockClock,
    ops: &AtomicUsize,
    bulk: Bulk,
) -> Vec<Phase> {
    use Mode::*;
    let mut visited = vec![m.handle().phase()];
    let step = |at: usize| async move {
        while ops.load(Ordering::SeqCst) < at {
            tokio::task::yield_now().await;
        }
        clock.advance(Duration::from_secs(15));
    };
    macro_rules! switch {
        ($p:expr) => {{
            let p = $p;
            switcher.switch(p).await;
            visited.push(p);
        }};
    }
    step(500).await;
    switch!(Phase::write_both(10));
    step(1000).await;
    new.set_mode(Down);
    step(1500).await;
    new.set_mode(Up);
    switch!(Phase::write_both(50));
    step(2000).await;
    old.set_mode(LoseAnswers);
    step(2500).await;
    old.set_mode(Up);
    switch!(Phase::write_both(100));
    step(3000).await;
    switch!(Phase::ReadNew);
    step(3500).await;
    new.set_mode(Down);
    step(4000).await;
    new.set_mode(LoseAnswers);
    step(4500).await;
    new.set_mode(Up);
    switch!(Phase::write_both(30)); // back
    step(5000).await;
    old.set_mode(Down);
    step(5500).await;
    old.set_mode(Up);
    switch!(Phase::ReadNew);
    step(6000).await;
    switch!(Phase::OldOnly); // all the way back
    new.set_mode(LoseAnswers);
    step(6500).await;
    new.set_mode(Up);
    switch!(Phase::write_both(100));
    step(7000).await;
    switch!(Phase::ReadNew);
    // Bulk migration alongside the workload.
    let config = BulkConfig::default()
        .page_size(32)
        .concurrency(8)
        .verify(None);
    let report = match bulk {
        Bulk::InProcess => m.bulk().config(config).run().await,
        Bulk::Separate => {
            BulkMigrator::new(old, new)
                .clock(Arc::new(clock.clone()))
                .config(config)
                .run()
                .await
        }
    }
    .expect("bulk migration");
    let c = report.progress.counts;
    assert_eq!((c.failed, c.raced), (0, 0), "{report:?}");
    assert!(c.scanned > 0);
    step(8000).await;
    switch!(Phase::NewOnly);
    step(9000).await;
    old.set_mode(Down); // no longer matters
    step(10_000).await;
    new.set_mode(LoseAnswers);
    step(10_500).await;
    new.set_mode(Up);
    visited
}
