//! A history checker for key-value workloads run through outages.
//!
//! Record every operation of a workload in a [`History`] (start and end on
//! one monotonic logical clock, key, kind, value written or read, result),
//! then [`History::check`] counts what went wrong in a [`Report`]:
//! **stale reads**, **lost acknowledged writes**, **resurrected deletes**,
//! **unknown values**, and errors by kind.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use storestack::{Expiry, MemoryStore};
//! use storestack_testkit::model::History;
//!
//! let store = MemoryStore::new();
//! let history = History::new();
//! history.set(&store, "k", "k:1", Expiry::Never).await.unwrap();
//! history.delete(&store, "k").await.unwrap();
//! history.get(&store, "k").await.unwrap();
//! history.final_get(&store, "k").await.unwrap();
//! let report = history.check();
//! assert!(report.is_clean(), "{report}");
//! assert_eq!(report.reads, 2);
//! # });
//! ```
//!
//! # The model
//!
//! Values must be **unique per write** (for example `"key:sequence"`), so
//! that a value read identifies the write that produced it; every key starts
//! **absent** when the history starts. Expiry is **not** modeled: use
//! lifetimes longer than the run. `touch` is recorded and its errors
//! counted, but it does not change the modeled value.
//!
//! Time is a logical clock shared by every operation of the history: an
//! operation takes a tick when it starts ([`History::begin`]) and another
//! when it ends ([`Pending::finish`]), so "A ended before B started" is
//! exact even under paused tokio time, where every operation happens at the
//! same instant. (Wall-clock offsets are kept too, for latency reports.)
//!
//! For one key:
//!
//! * A **write** is a `set`, a `create` that returned `true`, or a `delete`
//!   (which writes "absent"; so does the implicit initial write at time 0).
//!   It is **acknowledged** if it returned `Ok`. A write that returned an
//!   error (or was dropped unfinished) is **indeterminate**: it may take
//!   effect at any time after it started, so it never ends and never
//!   supersedes anything. A `create` that returned `false` wrote nothing.
//! * Write `w` is **superseded** at time `t` when an acknowledged write `w'`
//!   started after `w` ended and `w'` ended before `t`.
//! * A read `r` returning value `x` is **allowed** when some write `w` of
//!   `x` (for an absent read: the initial write or a delete) started before
//!   `r` ended and is not superseded at `r`'s start. So a read may return
//!   the last write acknowledged before it began, or any write concurrent
//!   with it; two concurrent writes are not ordered with each other.
//!
//! Counted, each bad read once:
//!
//! * **unknown value**: a read returned a value no write wrote, or one whose
//!   write started only after the read ended;
//! * **resurrected delete**: a read returned a value superseded by a
//!   *delete* before the read began (the key was deleted and came back);
//! * **stale read**: any other read that is not allowed;
//! * **lost write**: a *final* read (after quiescence, see
//!   [`History::final_get`]) that is not allowed counts, instead of a stale
//!   read, one lost write for every acknowledged write of the key that
//!   nothing superseded and whose value it did not return (at least one).
//!   Final reads returning a deleted value count as resurrected deletes.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot_like::Mutex;
use storestack::{ErrorKind, Expiry, Record, Store};

/// Violations kept as examples in a [`Report`].
const EXAMPLES: usize = 20;

/// What an operation asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `get`
    Get,
    /// `set` of this (unique) value.
    Set(String),
    /// `create` of this (unique) value.
    Create(String),
    /// `delete`
    Delete,
    /// `touch`
    Touch,
}

impl Call {
    /// A short name: `get`, `set`, ….
    pub fn name(&self) -> &'static str {
        match self {
            Call::Get => "get",
            Call::Set(_) => "set",
            Call::Create(_) => "create",
            Call::Delete => "delete",
            Call::Touch => "touch",
        }
    }
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A `get` returned this value (`None`: absent).
    Read(Option<String>),
    /// A `set` succeeded.
    Written,
    /// A `create`, `delete` or `touch` returned this.
    Flag(bool),
    /// The operation failed with an error of this kind.
    Failed(ErrorKind),
    /// The operation was dropped before it finished.
    Abandoned,
}

/// One recorded operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The key.
    pub key: String,
    /// What was asked.
    pub call: Call,
    /// Logical time the operation started.
    pub start: u64,
    /// Logical time it ended (after `start`).
    pub end: u64,
    /// Wall-clock offset of the start from the history's creation.
    pub started_at: Duration,
    /// Wall-clock offset of the end.
    pub ended_at: Duration,
    /// How it ended.
    pub outcome: Outcome,
    /// Whether this is a final read (see [`History::final_get`]).
    pub final_read: bool,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}..{}] {} {:?}",
            self.start,
            self.end,
            self.call.name(),
            self.key
        )?;
        match &self.call {
            Call::Set(v) | Call::Create(v) => write!(f, " {v:?}")?,
            _ => {}
        }
        write!(f, " -> {:?}", self.outcome)?;
        if self.final_read {
            f.write_str(" (final)")?;
        }
        Ok(())
    }
}

struct Inner {
    clock: AtomicU64,
    origin: Instant,
    events: Mutex<Vec<Event>>,
}

/// A record of operations on a key-value store, shared by every task of a
/// workload (clones share it). See the [module docs](self).
#[derive(Clone)]
pub struct History {
    inner: Arc<Inner>,
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("History")
            .field("events", &self.inner.events.lock().len())
            .finish()
    }
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

/// An operation that started and has not ended yet; finish it with its
/// outcome. Dropping it unfinished records [`Outcome::Abandoned`].
#[derive(Debug)]
pub struct Pending {
    history: History,
    key: String,
    call: Call,
    start: u64,
    started_at: Duration,
    final_read: bool,
    done: bool,
}

impl Pending {
    /// Ends the operation now with `outcome`.
    pub fn finish(mut self, outcome: Outcome) {
        self.record(outcome);
    }

    fn record(&mut self, outcome: Outcome) {
        self.done = true;
        let inner = &self.history.inner;
        let end = inner.clock.fetch_add(1, Ordering::SeqCst);
        let event = Event {
            key: std::mem::take(&mut self.key),
            call: std::mem::replace(&mut self.call, Call::Get),
            start: self.start,
            end,
            started_at: self.started_at,
            ended_at: inner.origin.elapsed(),
            outcome,
            final_read: self.final_read,
        };
        inner.events.lock().push(event);
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            self.record(Outcome::Abandoned);
        }
    }
}

fn text(r: &Record) -> String {
    String::from_utf8_lossy(&r.value).into_owned()
}

fn failed<T>(r: &storestack::Result<T>) -> Option<Outcome> {
    r.as_ref().err().map(|e| Outcome::Failed(e.kind()))
}

impl History {
    /// An empty history; every key starts absent.
    pub fn new() -> Self {
        History {
            inner: Arc::new(Inner {
                // Tick 0 is the implicit initial write of every key.
                clock: AtomicU64::new(1),
                origin: Instant::now(),
                events: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Starts an operation now.
    pub fn begin(&self, key: &str, call: Call) -> Pending {
        self.begin_with(key, call, false)
    }

    /// Starts a final read now: one made after every other operation ended
    /// and the store was given time to converge (e.g. after a repair pass).
    pub fn begin_final_read(&self, key: &str) -> Pending {
        self.begin_with(key, Call::Get, true)
    }

    fn begin_with(&self, key: &str, call: Call, final_read: bool) -> Pending {
        let start = self.inner.clock.fetch_add(1, Ordering::SeqCst);
        Pending {
            history: self.clone(),
            key: key.to_owned(),
            call,
            start,
            started_at: self.inner.origin.elapsed(),
            final_read,
            done: false,
        }
    }

    /// Every finished operation so far, in the order they ended.
    pub fn events(&self) -> Vec<Event> {
        self.inner.events.lock().clone()
    }

    /// Runs and records `store.get(key)`.
    pub async fn get(&self, store: &dyn Store, key: &str) -> storestack::Result<Option<Record>> {
        self.read(store, key, false).await
    }

    /// Runs and records a final `store.get(key)`.
    pub async fn final_get(
        &self,
        store: &dyn Store,
        key: &str,
    ) -> storestack::Result<Option<Record>> {
        self.read(store, key, true).await
    }

    async fn read(
        &self,
        store: &dyn Store,
        key: &str,
        final_read: bool,
    ) -> storestack::Result<Option<Record>> {
        let op = self.begin_with(key, Call::Get, final_read);
        let r = store.get(key).await;
        let outcome = failed(&r)
            .unwrap_or_else(|| Outcome::Read(r.as_ref().ok().and_then(|v| v.as_ref().map(text))));
        op.finish(outcome);
        r
    }

    /// Runs and records `store.set(key, value)`.
    pub async fn set(
        &self,
        store: &dyn Store,
        key: &str,
        value: &str,
        expiry: Expiry,
    ) -> storestack::Result<()> {
        let op = self.begin(key, Call::Set(value.to_owned()));
        let r = store.set(key, Record::new(value.to_owned(), expiry)).await;
        op.finish(failed(&r).unwrap_or(Outcome::Written));
        r
    }

    /// Runs and records `store.create(key, value)`.
    pub async fn create(
        &self,
        store: &dyn Store,
        key: &str,
        value: &str,
        expiry: Expiry,
    ) -> storestack::Result<bool> {
        let op = self.begin(key, Call::Create(value.to_owned()));
        let r = store
            .create(key, Record::new(value.to_owned(), expiry))
            .await;
        op.finish(failed(&r).unwrap_or_else(|| Outcome::Flag(*r.as_ref().unwrap_or(&false))));
        r
    }

    /// Runs and records `store.delete(key)`.
    pub async fn delete(&self, store: &dyn Store, key: &str) -> storestack::Result<bool> {
        let op = self.begin(key, Call::Delete);
        let r = store.delete(key).await;
        op.finish(failed(&r).unwrap_or_else(|| Outcome::Flag(*r.as_ref().unwrap_or(&false))));
        r
    }

    /// Runs and records `store.touch(key, expires_at)`.
    pub async fn touch(
        &self,
        store: &dyn Store,
        key: &str,
        expires_at: Option<SystemTime>,
    ) -> storestack::Result<bool> {
        let op = self.begin(key, Call::Touch);
        let r = store.touch(key, expires_at).await;
        op.finish(failed(&r).unwrap_or_else(|| Outcome::Flag(*r.as_ref().unwrap_or(&false))));
        r
    }

    /// Checks the history so far against the model of the module docs.
    pub fn check(&self) -> Report {
        check(&self.events())
    }
}

/// What a check found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViolationKind {
    /// A read returned a value older than an acknowledged write that ended
    /// before it began.
    StaleRead,
    /// A final read did not reflect an acknowledged write nothing superseded.
    LostWrite,
    /// A read returned a value that a delete, acknowledged before the read
    /// began, had removed.
    ResurrectedDelete,
    /// A read returned a value that was never written (or not yet).
    UnknownValue,
}

/// One bad read, as an example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// What is wrong.
    pub kind: ViolationKind,
    /// The read.
    pub read: Event,
    /// The acknowledged write(s) the read should have reflected.
    pub expected: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}: {} (allowed: {})",
            self.kind, self.read, self.expected
        )
    }
}

/// The result of [`History::check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Operations recorded.
    pub ops: u64,
    /// Reads that returned a value (or absence).
    pub reads: u64,
    /// Acknowledged writes (set, create → true, delete).
    pub writes_acknowledged: u64,
    /// Writes that failed or were dropped (may or may not have happened).
    pub writes_indeterminate: u64,
    /// Stale reads (not counting final reads).
    pub stale_reads: u64,
    /// Lost acknowledged writes (seen by final reads).
    pub lost_writes: u64,
    /// Reads of deleted values.
    pub resurrected: u64,
    /// Reads of values never (or not yet) written.
    pub unknown_values: u64,
    /// Values written more than once (the model needs unique values; reads
    /// of them are checked against their earliest write).
    pub duplicate_values: u64,
    /// Failed operations by error kind (`"unavailable"`, …).
    pub errors: BTreeMap<&'static str, u64>,
    /// Failed operations by operation (`"get"`, …).
    pub errors_by_op: BTreeMap<&'static str, u64>,
    /// Up to 20 examples of violations.
    pub examples: Vec<Violation>,
}

impl Report {
    /// No stale read, lost write, resurrected delete or unknown value (and
    /// every value unique).
    pub fn is_clean(&self) -> bool {
        self.stale_reads == 0
            && self.lost_writes == 0
            && self.resurrected == 0
            && self.unknown_values == 0
            && self.duplicate_values == 0
    }

    /// Failed operations of every kind.
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    fn violation(&mut self, kind: ViolationKind, read: &Event, expected: String, weight: u64) {
        match kind {
            ViolationKind::StaleRead => self.stale_reads += weight,
            ViolationKind::LostWrite => self.lost_writes += weight,
            ViolationKind::ResurrectedDelete => self.resurrected += weight,
            ViolationKind::UnknownValue => self.unknown_values += weight,
        }
        if self.examples.len() < EXAMPLES {
            self.examples.push(Violation {
                kind,
                read: read.clone(),
                expected,
            });
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ops, {} reads, {} acknowledged writes, {} indeterminate; \
             stale reads {}, lost writes {}, resurrected deletes {}, unknown values {}",
            self.ops,
            self.reads,
            self.writes_acknowledged,
            self.writes_indeterminate,
            self.stale_reads,
            self.lost_writes,
            self.resurrected,
            self.unknown_values
        )?;
        if self.duplicate_values > 0 {
            write!(f, ", DUPLICATE VALUES {}", self.duplicate_values)?;
        }
        if !self.errors.is_empty() {
            write!(
                f,
                "; errors {:?} by op {:?}",
                self.errors, self.errors_by_op
            )?;
        }
        for v in &self.examples {
            write!(f, "\n  {v}")?;
        }
        Ok(())
    }
}

/// Logical time of a write that never ends (indeterminate).
const NEVER: u64 = u64::MAX;

#[derive(Debug, Clone)]
struct Write {
    start: u64,
    end: u64,
    value: Option<String>,
    acked: bool,
    delete: bool,
    /// Earliest end of an acknowledged write that started after this one
    /// ended: the write is superseded from then on.
    superseded_at: u64,
    /// The same, counting only deletes.
    deleted_at: u64,
}

fn describe(writes: &[&Write]) -> String {
    if writes.is_empty() {
        return "nothing".to_owned();
    }
    writes
        .iter()
        .map(|w| match &w.value {
            Some(v) => format!("{v:?}@{}", w.start),
            None if w.start == 0 => "absent (initial)".to_owned(),
            None => format!("absent (delete@{})", w.start),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks a list of events (see [`History::check`]).
pub fn check(events: &[Event]) -> Report {
    let mut report = Report {
        ops: events.len() as u64,
        ..Report::default()
    };
    let mut by_key: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    for e in events {
        by_key.entry(e.key.as_str()).or_default().push(e);
        if let Outcome::Failed(kind) = e.outcome {
            *report.errors.entry(kind.as_str()).or_default() += 1;
            *report.errors_by_op.entry(e.call.name()).or_default() += 1;
        }
    }
    for events in by_key.values() {
        check_key(events, &mut report);
    }
    report
}

fn writes_of(events: &[&Event], report: &mut Report) -> Vec<Write> {
    let mut writes = vec![Write {
        start: 0,
        end: 0,
        value: None,
        acked: true,
        delete: true,
        superseded_at: NEVER,
        deleted_at: NEVER,
    }];
    for e in events {
        let (value, delete) = match &e.call {
            Call::Set(v) => (Some(v.clone()), false),
            Call::Create(v) => (Some(v.clone()), false),
            Call::Delete => (None, true),
            Call::Get | Call::Touch => continue,
        };
        let acked = match e.outcome {
            Outcome::Written => true,
            Outcome::Flag(true) => true,
            Outcome::Flag(false) if delete => true,
            Outcome::Flag(false) => continue, // create found the key: no write
            Outcome::Failed(_) | Outcome::Abandoned => false,
            Outcome::Read(_) => continue,
        };
        if acked {
            report.writes_acknowledged += 1;
        } else {
            report.writes_indeterminate += 1;
        }
        writes.push(Write {
            start: e.start,
            end: if acked { e.end } else { NEVER },
            value,
            acked,
            delete,
            superseded_at: NEVER,
            deleted_at: NEVER,
        });
    }
    // superseded_at(w) = min end of acked writes starting after w ends:
    // sort acked writes by start and keep suffix minima of their ends.
    let mut acked: Vec<(u64, u64, bool)> = writes
        .iter()
        .filter(|w| w.acked && w.start > 0)
        .map(|w| (w.start, w.end, w.delete))
        .collect();
    acked.sort_unstable();
    let mut min_end = vec![NEVER; acked.len() + 1];
    let mut min_del = vec![NEVER; acked.len() + 1];
    for i in (0..acked.len()).rev() {
        min_end[i] = min_end[i + 1].min(acked[i].1);
        min_del[i] = min_del[i + 1].min(if acked[i].2 { acked[i].1 } else { NEVER });
    }
    for w in &mut writes {
        if w.end == NEVER {
            continue;
        }
        let i = acked.partition_point(|a| a.0 <= w.end);
        w.superseded_at = min_end[i];
        w.deleted_at = min_del[i];
    }
    writes
}

fn check_key(events: &[&Event], report: &mut Report) {
    let writes = writes_of(events, report);
    let mut by_value: BTreeMap<&str, &Write> = BTreeMap::new();
    for w in &writes {
        if let Some(v) = &w.value {
            if by_value.insert(v.as_str(), w).is_some() {
                report.duplicate_values += 1;
            }
        }
    }
    // With duplicates, check against the earliest write of the value.
    for w in &writes {
        if let Some(v) = &w.value {
            let kept = by_value[v.as_str()];
            if w.start < kept.start {
                by_value.insert(v.as_str(), w);
            }
        }
    }
    let frontier: Vec<&Write> = writes
        .iter()
        .filter(|w| w.acked && w.superseded_at == NEVER)
        .collect();
    for r in events {
        let Outcome::Read(x) = &r.outcome else {
            continue;
        };
        report.reads += 1;
        let live = |w: &Write| w.start < r.end && w.superseded_at > r.start;
        let allowed_now = || -> Vec<&Write> { writes.iter().filter(|w| live(w)).collect() };
        match x {
            Some(v) => {
                let Some(w) = by_value.get(v.as_str()).filter(|w| w.start < r.end) else {
                    report.violation(ViolationKind::UnknownValue, r, describe(&allowed_now()), 1);
                    continue;
                };
                if live(w) {
                    continue;
                }
                if w.deleted_at < r.start {
                    report.violation(
                        ViolationKind::ResurrectedDelete,
                        r,
                        describe(&allowed_now()),
                        1,
                    );
                } else if r.final_read {
                    let lost = frontier
                        .iter()
                        .filter(|f| f.value.as_deref() != Some(v.as_str()))
                        .count()
                        .max(1) as u64;
                    report.violation(ViolationKind::LostWrite, r, describe(&frontier), lost);
                } else {
                    report.violation(ViolationKind::StaleRead, r, describe(&allowed_now()), 1);
                }
            }
            None => {
                if writes.iter().any(|w| w.value.is_none() && live(w)) {
                    continue;
                }
                if r.final_read {
                    let lost = frontier.iter().filter(|f| f.value.is_some()).count().max(1) as u64;
                    report.violation(ViolationKind::LostWrite, r, describe(&frontier), lost);
                } else {
                    report.violation(ViolationKind::StaleRead, r, describe(&allowed_now()), 1);
                }
            }
        }
    }
}

/// The lock of the event list: `std`'s, poison-free.
mod parking_lot_like {
    pub(super) struct Mutex<T>(std::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(super) fn new(value: T) -> Self {
            Mutex(std::sync::Mutex::new(value))
        }

        pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }
}

#[cfg(test)]
mod tests;
