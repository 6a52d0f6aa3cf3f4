//! The control record through which an operator switches every running
//! process (see [`PhaseControl`]).

use std::time::Duration;

use super::handle::refusal;
use super::{MigrationHandle, Phase, PhaseState};
use crate::error::{Op, Result, StoreError};
use crate::store::{Record, Store};

const MAGIC: &str = "storestack-migration-phase 1";

/// A control record through which an operator switches the phase of every
/// running process at once: the operator (a CLI) [publishes](Self::publish)
/// a phase; each process [follows](Self::follow) the record and
/// applies it to its [`MigrationHandle`].
///
/// The record is one never-expiring key in any store all processes reach
/// (the old store with a key outside the application's key space is the
/// usual choice). It carries the phase and the high-water mark, so a
/// process that restarts mid-migration, or that missed an intermediate
/// step, still protects the keys other processes wrote to the new store.
/// A process [applies](Self::apply) it once before serving, then follows
/// it; the operator switches with [`publish_staged`](Self::publish_staged).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use storestack::layers::migration::{MigrationHandle, Phase, PhaseControl};
/// use storestack::MemoryStore;
///
/// let control = PhaseControl::new(MemoryStore::new(), "storestack:migration:sessions");
/// let handle = MigrationHandle::new(Phase::OldOnly);
/// control.publish(Phase::write_both(50), false).await?;
/// control.apply(&handle).await?;
/// assert_eq!(handle.phase(), Phase::write_both(50));
/// control.publish(Phase::write_both(10), false).await?; // back
/// control.apply(&handle).await?;
/// assert_eq!(handle.state().high_water, 50);
/// assert!(control.publish(Phase::NewOnly, false).await.is_err()); // too early
/// # Ok::<_, storestack::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct PhaseControl<S> {
    store: S,
    key: String,
}

impl<S: Store> PhaseControl<S> {
    /// The control record at `key` in `store`.
    pub fn new(store: S, key: impl Into<String>) -> Self {
        PhaseControl {
            store,
            key: key.into(),
        }
    }

    /// The published state, if any.
    pub async fn read(&self) -> Result<Option<PhaseState>> {
        match self.store.get(&self.key).await? {
            None => Ok(None),
            Some(record) => decode(&record.value).map(Some),
        }
    }

    /// Publishes `phase`. Refuses (with `InvalidInput`) the switches
    /// [`MigrationHandle::set`] refuses, judged against the published
    /// phase, unless `force`. The high-water mark only rises. Two operators
    /// publishing at once race (last write wins): publish from one place.
    pub async fn publish(&self, phase: Phase, force: bool) -> Result<PhaseState> {
        let current = self.read().await?;
        let from = current.map_or(Phase::OldOnly, |s| s.phase);
        if let Some(err) = refusal(from, phase) {
            if !force {
                return Err(StoreError::invalid_input(Op::Set)
                    .with_store(self.store.name().to_owned())
                    .with_message(err.to_string()));
            }
        }
        let high_water = current
            .map_or(0, |s| s.high_water)
            .max(phase.write_percent());
        let state = PhaseState {
            phase: phase.normalized(),
            high_water,
        };
        self.write(state).await?;
        Ok(state)
    }

    /// Raises the published high-water mark to at least `percent`,
    /// keeping the published phase.
    pub async fn raise_high_water(&self, percent: u8) -> Result<PhaseState> {
        let current = self.read().await?;
        let state = PhaseState {
            phase: current.map_or(Phase::OldOnly, |s| s.phase),
            high_water: current.map_or(0, |s| s.high_water).max(percent.min(100)),
        };
        self.write(state).await?;
        Ok(state)
    }

    /// Switches a fleet safely: when `phase` writes a larger share of keys
    /// to new than the published high-water mark covers, publishes the
    /// higher mark first and waits `settle` (longer than the followers'
    /// interval plus the longest operation) before publishing the phase,
    /// so that no process writes a key to old only while another writes it
    /// to both. Refused switches are refused before anything is written.
    pub async fn publish_staged(
        &self,
        phase: Phase,
        force: bool,
        settle: Duration,
    ) -> Result<PhaseState> {
        let current = self.read().await?;
        let from = current.map_or(Phase::OldOnly, |s| s.phase);
        if refusal(from, phase).is_some() && !force {
            return self.publish(phase, force).await;
        }
        if phase.write_percent() > current.map_or(0, |s| s.high_water) {
            self.raise_high_water(phase.write_percent()).await?;
            tokio::time::sleep(settle).await;
        }
        self.publish(phase, force).await
    }

    async fn write(&self, state: PhaseState) -> Result<()> {
        self.store
            .set(&self.key, Record::never_expiring(encode(state)))
            .await
    }

    /// Applies the published state (if any) to `handle` and returns it.
    pub async fn apply(&self, handle: &MigrationHandle) -> Result<Option<PhaseState>> {
        let Some(state) = self.read().await? else {
            return Ok(None);
        };
        handle.raise_high_water(state.high_water);
        if handle.phase() != state.phase {
            // The publisher judged the switch; the follower obeys it.
            handle.force(state.phase);
        }
        Ok(Some(state))
    }

    /// Applies the published state to `handle` now and every `every`
    /// after, in a task (abort the returned handle to stop). A failed read
    /// keeps the current phase and logs a warning.
    pub fn follow(self, handle: MigrationHandle, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = self.apply(&handle).await {
                    tracing::warn!(migration = %handle.label(), error = %e,
                        "could not read the migration control record; keeping the current phase");
                }
            }
        })
    }
}

fn encode(s: PhaseState) -> String {
    format!("{MAGIC}\nphase {}\nhigh_water {}\n", s.phase, s.high_water)
}

fn decode(bytes: &[u8]) -> Result<PhaseState> {
    let bad = || StoreError::corrupt(Op::Get).with_message("migration control record is malformed");
    let text = std::str::from_utf8(bytes).map_err(|_| bad())?;
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(bad());
    }
    let phase = lines
        .next()
        .and_then(|l| l.strip_prefix("phase "))
        .and_then(|p| p.parse::<Phase>().ok())
        .ok_or_else(bad)?;
    let high_water = lines
        .next()
        .and_then(|l| l.strip_prefix("high_water "))
        .and_then(|h| h.parse::<u8>().ok())
        .filter(|h| *h <= 100)
        .ok_or_else(bad)?;
    Ok(PhaseState { phase, high_water })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, MemoryStore};

    #[tokio::test(start_paused = true)]
    async fn followers_switch_together_and_keep_the_high_water() {
        let store = MemoryStore::new();
        let control = PhaseControl::new(store.clone(), "ctl");
        let (a, b) = (MigrationHandle::default(), MigrationHandle::default());
        let fa = control.clone().follow(a.clone(), Duration::from_secs(1));
        let fb = control.clone().follow(b.clone(), Duration::from_secs(1));
        control.publish(Phase::write_both(80), false).await.unwrap();
        control.publish(Phase::write_both(20), false).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for h in [&a, &b] {
            assert_eq!(h.phase(), Phase::write_both(20));
            assert_eq!(
                h.state().high_water,
                80,
                "missed the 80 %, still protects it"
            );
        }
        control.publish(Phase::ReadNew, false).await.unwrap();
        control.publish(Phase::NewOnly, false).await.unwrap();
        let err = control.publish(Phase::ReadNew, false).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!((a.phase(), b.phase()), (Phase::NewOnly, Phase::NewOnly));
        // A forced way back is obeyed.
        control.publish(Phase::ReadNew, true).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(a.phase(), Phase::ReadNew);
        fa.abort();
        fb.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_staged_publish_raises_the_high_water_before_the_phase() {
        let control = PhaseControl::new(MemoryStore::new(), "ctl");
        let h = MigrationHandle::default();
        let follower = control.clone().follow(h.clone(), Duration::from_secs(1));
        let publisher = {
            let control = control.clone();
            tokio::spawn(async move {
                control
                    .publish_staged(Phase::write_both(50), false, Duration::from_secs(3))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(h.state().high_water, 50, "the mark first");
        assert_eq!(h.phase(), Phase::OldOnly, "the phase later");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(h.phase(), Phase::write_both(50));
        publisher.await.unwrap().unwrap();
        // Lowering the share needs no stage; a refused switch writes nothing.
        let t0 = tokio::time::Instant::now();
        let long = Duration::from_secs(60);
        control
            .publish_staged(Phase::write_both(10), false, long)
            .await
            .unwrap();
        assert!(control
            .publish_staged(Phase::NewOnly, false, long)
            .await
            .is_err());
        assert_eq!(t0.elapsed(), Duration::ZERO);
        assert_eq!(
            control.read().await.unwrap().unwrap().phase,
            Phase::write_both(10)
        );
        follower.abort();
    }

    #[tokio::test]
    async fn a_damaged_record_is_corrupt_not_a_phase() {
        let store = MemoryStore::new();
        let control = PhaseControl::new(store.clone(), "ctl");
        assert_eq!(control.read().await.unwrap(), None);
        for bad in [
            "",
            "phase read-new",
            "storestack-migration-phase 1\nphase up\nhigh_water 1\n",
        ] {
            store.set("ctl", Record::never_expiring(bad)).await.unwrap();
            let err = control.read().await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Corrupt, "{bad:?}");
        }
        let h = MigrationHandle::default();
        assert!(control.apply(&h).await.is_err());
        assert_eq!(h.phase(), Phase::OldOnly);
    }
}
