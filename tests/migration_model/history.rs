//! Minimal bookkeeping of what each key may hold, and the anomalies a
//! read can reveal: lost (an acknowledged value is gone), stale (an older
//! value is back), resurrected (a deleted key is back), expiry (a value
//! with an expiry more than 1 s off). Until `storestack_testkit::model`
//! lands, this is the model; the workload reports every operation through
//! [`KeyModel`]'s `on_*` methods, which map one to one onto a history
//! event, so switching to the shared checker replaces this file only.
//!
//! Each key has a single writer (its worker), so a key's history is
//! sequential; concurrency comes from the other workers, the bulk
//! migrator, phase switches and faults. An acknowledged operation fixes
//! the state; a failed one (its outcome unknown) adds its effect as a
//! possibility, kept until the next acknowledged write: a failed write may
//! surface late (the documented shadow-store-ahead behaviour).

use std::time::{Duration, SystemTime};

use storestack::bytes::Bytes;

/// A live value: bytes and absolute expiry.
pub(crate) type Val = (Bytes, Option<SystemTime>);

/// The clock readings just before and just after an operation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) before: SystemTime,
    pub(crate) after: SystemTime,
}

#[derive(Debug, Default)]
pub(crate) struct Anomalies {
    pub(crate) lost: u64,
    pub(crate) stale: u64,
    pub(crate) resurrected: u64,
    pub(crate) expiry: u64,
    pub(crate) create_conflicts: u64,
    pub(crate) examples: Vec<String>,
}

impl Anomalies {
    pub(crate) fn total(&self) -> u64 {
        self.lost + self.stale + self.resurrected + self.expiry + self.create_conflicts
    }

    fn note(&mut self, what: &str, key: &str, detail: String) {
        if self.examples.len() < 20 {
            self.examples.push(format!("{what} {key}: {detail}"));
        }
    }

    fn note_log(&mut self, log: &[String]) {
        if self.examples.len() < 20 {
            let from = log.len().saturating_sub(12);
            self.examples
                .push(format!("  history: {}", log[from..].join("\n    ")));
        }
    }

    pub(crate) fn merge(&mut self, o: Anomalies) {
        self.lost += o.lost;
        self.stale += o.stale;
        self.resurrected += o.resurrected;
        self.expiry += o.expiry;
        self.create_conflicts += o.create_conflicts;
        self.examples.extend(o.examples);
    }
}

const EXPIRY_TOLERANCE: Duration = Duration::from_secs(1);

fn maybe_live(p: &Option<Val>, w: Window) -> bool {
    matches!(p, Some((_, e)) if e.is_none_or(|e| e > w.before))
}

fn maybe_absent(p: &Option<Val>, w: Window) -> bool {
    match p {
        None => true,
        Some((_, e)) => e.is_some_and(|e| e <= w.after),
    }
}

/// What one key may hold.
#[derive(Debug)]
pub(crate) struct KeyModel {
    pub(crate) key: String,
    possible: Vec<Option<Val>>,
    written: Vec<Bytes>,
    /// Recent events, for the report of an anomaly.
    pub(crate) log: Vec<String>,
}

impl KeyModel {
    pub(crate) fn new(key: String, initial: Option<Val>) -> Self {
        let written = initial.iter().map(|(v, _)| v.clone()).collect();
        KeyModel {
            key,
            possible: vec![initial],
            written,
            log: Vec::new(),
        }
    }

    fn settle(&mut self, state: Option<Val>) {
        self.possible = vec![state];
    }

    fn maybe(&mut self, state: Option<Val>) {
        if !self.possible.contains(&state) {
            self.possible.push(state);
        }
    }

    pub(crate) fn on_set(&mut self, v: Val, ok: bool) {
        self.written.push(v.0.clone());
        if ok {
            self.settle(Some(v))
        } else {
            self.maybe(Some(v))
        }
    }

    pub(crate) fn on_create(&mut self, v: Val, res: Option<bool>, w: Window, an: &mut Anomalies) {
        self.written.push(v.0.clone());
        match res {
            Some(true) => {
                if !self.possible.iter().any(|p| maybe_absent(p, w)) {
                    an.create_conflicts += 1;
                    an.note(
                        "create over a live record",
                        &self.key,
                        format!("{:?}", self.possible),
                    );
                    an.note_log(&self.log);
                }
                self.settle(Some(v));
            }
            Some(false) => {
                let live: Vec<_> = self
                    .possible
                    .iter()
                    .filter(|p| maybe_live(p, w))
                    .cloned()
                    .collect();
                if live.is_empty() {
                    an.create_conflicts += 1;
                    an.note("create refused on an absent key", &self.key, String::new());
                    an.note_log(&self.log);
                } else {
                    self.possible = live;
                }
            }
            None => self.maybe(Some(v)),
        }
    }

    pub(crate) fn on_delete(&mut self, ok: bool) {
        if ok {
            self.settle(None)
        } else {
            self.maybe(None)
        }
    }

    pub(crate) fn on_touch(
        &mut self,
        at: Option<SystemTime>,
        res: Option<bool>,
        w: Window,
        an: &mut Anomalies,
    ) {
        let touched: Vec<_> = self
            .possible
            .iter()
            .filter(|p| maybe_live(p, w))
            .map(|p| p.as_ref().map(|(v, _)| (v.clone(), at)))
            .collect();
        match res {
            Some(true) if touched.is_empty() => {
                an.resurrected += 1;
                an.note(
                    "touch found a record that cannot exist",
                    &self.key,
                    String::new(),
                );
            }
            Some(true) => self.possible = touched,
            Some(false) => {
                if !self.possible.iter().any(|p| maybe_absent(p, w)) {
                    an.lost += 1;
                    an.note(
                        "touch missed a live record",
                        &self.key,
                        format!("{:?}", self.possible),
                    );
                }
                self.settle(None);
            }
            None => {
                for t in touched {
                    self.maybe(t);
                }
            }
        }
    }

    pub(crate) fn on_get(&self, read: Option<Val>, w: Window, an: &mut Anomalies) {
        let Some((value, expires_at)) = read else {
            if !self.possible.iter().any(|p| maybe_absent(p, w)) {
                an.lost += 1;
                an.note("lost", &self.key, format!("possible {:?}", self.possible));
                an.note_log(&self.log);
            }
            return;
        };
        let same_value: Vec<_> = self
            .possible
            .iter()
            .flatten()
            .filter(|(v, _)| *v == value)
            .collect();
        let live_match = same_value
            .iter()
            .any(|(_, e)| maybe_live(&Some((value.clone(), *e)), w));
        if !live_match {
            let deleted = self.possible.iter().all(Option::is_none);
            if deleted && self.written.contains(&value) {
                an.resurrected += 1;
                an.note("resurrected", &self.key, format!("{value:?}"));
                an.note_log(&self.log);
            } else {
                an.stale += 1;
                an.note(
                    "stale",
                    &self.key,
                    format!("read {value:?}, possible {:?}", self.possible),
                );
                an.note_log(&self.log);
            }
            return;
        }
        let close = same_value.iter().any(|(_, e)| match (e, expires_at) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                a.duration_since(b)
                    .or_else(|_| b.duration_since(*a))
                    .unwrap_or_default()
                    <= EXPIRY_TOLERANCE
            }
            _ => false,
        });
        if !close {
            an.expiry += 1;
            an.note(
                "expiry",
                &self.key,
                format!("read {expires_at:?}, possible {:?}", self.possible),
            );
        }
    }
}
