//! Phase changes are observable: a minimal metrics recorder records what
//! the handle emits.

use std::collections::HashMap;
use std::sync::Arc;

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    Unit,
};
use parking_lot::Mutex;

use super::*;

#[derive(Default)]
struct Recorded {
    values: Mutex<HashMap<String, f64>>,
}

struct Handle {
    key: String,
    into: Arc<Recorded>,
}

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        *self.into.values.lock().entry(self.key.clone()).or_default() += value as f64;
    }
    fn absolute(&self, value: u64) {
        self.into
            .values
            .lock()
            .insert(self.key.clone(), value as f64);
    }
}

impl GaugeFn for Handle {
    fn increment(&self, value: f64) {
        *self.into.values.lock().entry(self.key.clone()).or_default() += value;
    }
    fn decrement(&self, value: f64) {
        *self.into.values.lock().entry(self.key.clone()).or_default() -= value;
    }
    fn set(&self, value: f64) {
        self.into.values.lock().insert(self.key.clone(), value);
    }
}

struct TestRecorder(Arc<Recorded>);

impl TestRecorder {
    fn handle(&self, key: &Key) -> Arc<Handle> {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        Arc::new(Handle {
            key: format!("{}{{{}}}", key.name(), labels.join(",")),
            into: self.0.clone(),
        })
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.handle(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.handle(key))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn every_switch_is_counted_and_gauged() {
    let recorded = Arc::new(Recorded::default());
    let recorder = TestRecorder(recorded.clone());
    metrics::with_local_recorder(&recorder, || {
        let h = MigrationHandle::new(Phase::OldOnly).labeled("sessions");
        h.set(Phase::write_both(25)).unwrap();
        h.set(Phase::write_both(25)).unwrap(); // no change: not counted
        h.set(Phase::ReadNew).unwrap();
        h.set(Phase::write_both(50)).unwrap();
    });
    let v = recorded.values.lock();
    let get = |k: &str| v.get(k).copied();
    let changes = "storestack_migration_phase_changes_total";
    assert_eq!(
        get(&format!(
            "{changes}{{from=old-only,migration=sessions,to=write-both}}"
        )),
        Some(1.0)
    );
    assert_eq!(
        get(&format!(
            "{changes}{{from=write-both,migration=sessions,to=read-new}}"
        )),
        Some(1.0)
    );
    assert_eq!(
        get(&format!(
            "{changes}{{from=read-new,migration=sessions,to=write-both}}"
        )),
        Some(1.0)
    );
    assert_eq!(
        get("storestack_migration_phase{migration=sessions}"),
        Some(1.0)
    );
    assert_eq!(
        get("storestack_migration_write_percent{migration=sessions}"),
        Some(50.0)
    );
}
