//! One test per rule of the fallback, on memory stores behind a switch.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use parking_lot::Mutex;

use super::*;
use crate::error::{ErrorKind, Op, StoreError};
use crate::{MemoryStore, StoreExt};

/// A memory store that can be switched down (every call fails with a chosen
/// kind) or made to hang; counts the calls on user keys.
#[derive(Clone)]
struct Switch {
    inner: MemoryStore,
    name: &'static str,
    down: Arc<AtomicBool>,
    hang: Arc<AtomicBool>,
    kind: Arc<Mutex<ErrorKind>>,
    user_calls: Arc<AtomicU64>,
    gate: Arc<Mutex<Option<Gate>>>,
}

/// Holds the next call of `op` on `key` until released.
struct Gate {
    op: Op,
    key: String,
    reached: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
}

/// The two ends of a [`Gate`], for the test.
struct GateHandle {
    reached: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
}

impl Switch {
    fn new(name: &'static str) -> Self {
        Switch {
            inner: MemoryStore::new(),
            name,
            down: Arc::default(),
            hang: Arc::default(),
            kind: Arc::new(Mutex::new(ErrorKind::Unavailable)),
            user_calls: Arc::default(),
            gate: Arc::default(),
        }
    }

    fn hold_next(&self, op: Op, key: &str) -> GateHandle {
        let reached = Arc::new(tokio::sync::Notify::new());
        let release = Arc::new(tokio::sync::Notify::new());
        *self.gate.lock() = Some(Gate {
            op,
            key: key.to_owned(),
            reached: reached.clone(),
            release: release.clone(),
        });
        GateHandle { reached, release }
    }

    fn down(&self) {
        self.fail_with(ErrorKind::Unavailable);
    }

    fn fail_with(&self, kind: ErrorKind) {
        *self.kind.lock() = kind;
        self.down.store(true, Ordering::SeqCst);
    }

    fn up(&self) {
        self.down.store(false, Ordering::SeqCst);
        self.hang.store(false, Ordering::SeqCst);
    }

    fn calls(&self) -> u64 {
        self.user_calls.load(Ordering::SeqCst)
    }

    async fn gate(&self, op: Op, key: &str) -> Result<()> {
        let held = {
            let mut gate = self.gate.lock();
            match gate.as_ref() {
                Some(g) if g.op == op && g.key == key => gate.take(),
                _ => None,
            }
        };
        if let Some(g) = held {
            g.reached.notify_one();
            g.release.notified().await;
        }
        if !key.starts_with("__fallback:") {
            self.user_calls.fetch_add(1, Ordering::SeqCst);
        }
        if self.hang.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::new(*self.kind.lock(), op).with_store(self.name));
        }
        Ok(())
    }

    /// The value held, bypassing the switch.
    async fn raw(&self, key: &str) -> Option<String> {
        let r = self.inner.get(key).await.unwrap();
        r.map(|r| String::from_utf8(r.value.to_vec()).unwrap())
    }

    async fn journaled(&self, key: &str) -> bool {
        self.inner
            .get(&format!("__fallback:j:{key}"))
            .await
            .unwrap()
            .is_some()
    }
}

#[async_trait]
impl Store for Switch {
    fn name(&self) -> &str {
        self.name
    }
    async fn get(&self, key: &str) -> Result<Option<Record>> {
        self.gate(Op::Get, key).await?;
        self.inner.get(key).await
    }
    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.gate(Op::Set, key).await?;
        self.inner.set(key, record).await
    }
    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.gate(Op::Create, key).await?;
        self.inner.create(key, record).await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.gate(Op::Delete, key).await?;
        self.inner.delete(key).await
    }
    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        self.gate(Op::Touch, key).await?;
        self.inner.touch(key, expires_at).await
    }
    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        self.gate(Op::Scan, "").await?;
        self.inner.scan(prefix, cursor, limit).await
    }
    async fn len(&self) -> Result<u64> {
        self.gate(Op::Len, "").await?;
        self.inner.len().await
    }
    async fn clear(&self) -> Result<()> {
        self.gate(Op::Clear, "").await?;
        self.inner.clear().await
    }
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.gate(Op::GetVersioned, key).await?;
        self.inner.get_versioned(key).await
    }
    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        self.gate(Op::SetIf, key).await?;
        self.inner.set_if(key, record, condition).await
    }
}

/// Times out calls to the inner store, like the Timeout decorator does.
struct Deadline<S>(S, Duration);

#[async_trait]
impl<S: Store> Store for Deadline<S> {
    fn name(&self) -> &str {
        self.0.name()
    }
    async fn get(&self, key: &str) -> Result<Option<Record>> {
        tokio::time::timeout(self.1, self.0.get(key))
            .await
            .unwrap_or_else(|_| Err(StoreError::timeout(Op::Get).with_store("deadline")))
    }
    async fn set(&self, key: &str, record: Record) -> Result<()> {
        tokio::time::timeout(self.1, self.0.set(key, record))
            .await
            .unwrap_or_else(|_| Err(StoreError::timeout(Op::Set).with_store("deadline")))
    }
    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.0.create(key, record).await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.0.delete(key).await
    }
    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        self.0.touch(key, expires_at).await
    }
    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        self.0.scan(prefix, cursor, limit).await
    }
    async fn len(&self) -> Result<u64> {
        self.0.len().await
    }
    async fn clear(&self) -> Result<()> {
        self.0.clear().await
    }
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.0.get_versioned(key).await
    }
    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        self.0.set_if(key, record, condition).await
    }
}

fn config() -> FallbackConfig {
    FallbackConfig::default()
        .settle(Duration::from_millis(20))
        .poll_interval(Duration::from_millis(100))
        .background(false)
}

fn stores() -> (Switch, Switch) {
    (Switch::new("alpha"), Switch::new("beta"))
}

fn fallback(p: &Switch, s: &Switch) -> Fallback<Switch, Switch> {
    Fallback::with_config(p.clone(), s.clone(), config())
}

fn rec(v: &str) -> Record {
    Record::never_expiring(v.to_owned())
}

async fn value(store: &dyn Store, key: &str) -> Option<String> {
    let r = store.get(key).await.unwrap();
    r.map(|r| String::from_utf8(r.value.to_vec()).unwrap())
}

#[tokio::test]
async fn healthy_writes_reach_both_sides() {
    let (p, s) = stores();
    let f = fallback(&p, &s);
    f.set("k", rec("v1")).await.unwrap();
    assert!(f.create("n", rec("c")).await.unwrap());
    assert!(!f.create("n", rec("x")).await.unwrap());
    assert!(f.touch("k", None).await.unwrap());
    for side in [&p, &s] {
        assert_eq!(side.raw("k").await.as_deref(), Some("v1"));
        assert_eq!(side.raw("n").await.as_deref(), Some("c"));
    }
    assert!(f.delete("k").await.unwrap());
    assert_eq!((p.raw("k").await, s.raw("k").await), (None, None));
    assert!(!f.status().is_degraded());
}

#[tokio::test]
async fn reads_fail_over_on_transient_errors() {
    for kind in [
        ErrorKind::Unavailable,
        ErrorKind::Timeout,
        ErrorKind::CircuitOpen,
    ] {
        let (p, s) = stores();
        let f = fallback(&p, &s);
        f.set("k", rec("v")).await.unwrap();
        p.fail_with(kind);
        assert_eq!(value(&f, "k").await.as_deref(), Some("v"), "{kind}");
        assert_eq!(f.status().failover_reads, 1);
        assert!(!f.status().primary.reachable);
        assert_eq!(f.status().primary.last_error, Some(kind));
    }
}

#[tokio::test]
async fn reads_do_not_fail_over_on_permanent_errors() {
    for kind in [
        ErrorKind::Corrupt,
        ErrorKind::InvalidInput,
        ErrorKind::TooLarge,
        ErrorKind::Internal,
    ] {
        let (p, s) = stores();
        let f = fallback(&p, &s);
        f.set("k", rec("v")).await.unwrap();
        p.fail_with(kind);
        let before = s.calls();
        let err = f.get("k").await.unwrap_err();
        assert_eq!(err.kind(), kind);
        assert_eq!(s.calls(), before, "the secondary was read for {kind}");
        assert!(
            f.status().primary.reachable,
            "{kind} marked the primary down"
        );
        // Nor do writes fail over: nothing reaches the secondary.
        assert_eq!(f.set("k", rec("w")).await.unwrap_err().kind(), kind);
        assert_eq!(s.raw("k").await.as_deref(), Some("v"));
    }
}

#[tokio::test(start_paused = true)]
async fn write_during_primary_outage_is_journaled_on_the_secondary_and_repaired() {
    let (p, s) = stores();
    let f = fallback(&p, &s);
    f.set("k", rec("v1")).await.unwrap();
    p.down();
    f.set("k", rec("v2")).await.unwrap();
    assert_eq!(p.raw("k").await.as_deref(), Some("v1"));
    assert_eq!(s.raw("k").await.as_deref(), Some("v2"));
    assert!(s.journaled("k").await, "no journal entry on the secondary");
    assert_eq!(value(&f, "k").await.as_deref(), Some("v2"));

    p.up();
    // The primary is back but stale: the journal routes the read.
    assert_eq!(value(&f, "k").await.as_deref(), Some("v2"));
    let status = f.status();
    assert_eq!((status.journaled_keys, status.newest_on_secondary), (1, 1));

    let report = f.handle().repair_now().await;
    assert_eq!((report.repaired, report.remaining), (1, 0), "{report:?}");
    assert_eq!(p.raw("k").await.as_deref(), Some("v2"));
    assert!(!s.journaled("k").await);
    assert_eq!(p.raw("__fallback:dirty").await, None, "marker left behind");
    assert_eq!(s.raw("__fallback:dirty").await, None, "marker left behind");
    assert!(!f.status().is_degraded());
}

#[tokio::test(start_paused = true)]
async fn background_task_repairs_when_the_primary_returns() {
    let (p, s) = stores();
    let f = Fallback::with_config(p.clone(), s.clone(), config().background(true));
    p.down();
    f.set("k", rec("v2")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(p.raw("k").await, None, "repaired while down?");
    p.up();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(p.raw("k").await.as_deref(), Some("v2"));
    assert!(!s.journaled("k").await);
    assert_eq!(f.status().repaired, 1);
}

#[tokio::test(start_paused = true)]
async fn delete_during_primary_outage_never_resurrects() {
    let (p, s) = stores();
    let f = fallback(&p, &s);
    f.set("k", rec("v1")).await.unwrap();
    p.down();
    assert!(f.delete("k").await.unwrap());
    assert_eq!(f.get("k").await.unwrap(), None);
    p.up();
    assert_eq!(p.raw("k").await.as_deref(), Some("v1"), "the stale copy");
    assert_eq!(f.get("k").await.unwrap(), None, "resurrected before repair");
    f.handle().repair_now().await;
    assert_eq!(p.raw("k").await, None, "repair left the stale copy");
    assert_eq!(f.get("k").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn delete_during_secondary_outage_never_resurrects_on_failover() {
    let (p, s) = stores();
    let f = fallback(&p, &s);
    f.set("k", rec("v1")).await.unwrap();
    s.down();
    assert!(f.delete("k").await.unwrap());
    assert!(p.journaled("k").await, "no journal entry on the primary");
    s.up();
    f.handle().repair_now().await;
    assert_eq!(s.raw("k").await, None);
    p.down();
    assert_eq!(f.get("k").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn double_fault_refuses_instead_of_serving_stale_data() {
    let (p, s) = stores();
    let f = fallback(&p, &s);
    f.set("k", rec("v1")).await.unwrap();
    s.down();
    f.set("k", rec("v2")).await.unwrap();
    s.up();
    p.down(); // before any repair: only the primary has v2
    let err = f.get("k").await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("newest write"), "{err}");
    assert_eq!(
        f.touch("k", None).await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    assert!(f.create("k", rec("c")).await.is_err());
    assert_eq!(f.status().refused, 3);
    // A blind write supersedes the stale copy and is allowed.
    f.set("k", rec("v3")).await.unwrap();
    assert_eq!(value(&f, "k").await.as_deref(), Some("v3"));
    p.up();
    f.handle().repair_now().await;
    assert_eq!(p.raw("k").await.as_deref(), Some("v3"));
    assert_eq!(s.raw("k").await.as_deref(), Some("v3"));
}

#[tokio::test]
async fn both_sides_down_is_a_clear_transient_error() {
    let (p, s) = stores();
    let f = fallback(&p, &s);
    p.down();
    s.fail_with(ErrorKind::Timeout);
    for err in [
        f.get("k").await.unwrap_err(),
        f.set("k", rec("v")).await.unwrap_err(),
        f.delete("k").await.unwrap_err(),
        f.len().await.unwrap_err(),
    ] {
        assert!(err.is_transient(), "{err}");
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        let msg = err.to_string();
        for part in ["both sides failed", "primary (alpha)", "secondary (beta)"] {
            assert!(msg.contains(part), "{msg}");
        }
    }
    assert!(f.status().both_failed >= 4);
}

#[tokio::test(start_paused = true)]
async fn both_sides_hanging_fail_within_their_deadlines() {
    let (p, s) = stores();
    let deadline = Duration::from_millis(50);
    let f = Fallback::with_config(
        Deadline(p.clone(), deadline),
        Deadline(s.clone(), deadline),
        config().journal_check(JournalCheck::Poll),
    );
    p.hang.store(true, Ordering::SeqCst);
    s.hang.store(true, Ordering::SeqCst);
    let start = tokio::time::Instant::now();
    let err = f.get("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(start.elapsed() <= deadline * 2, "{:?}", start.elapsed());
    let start = tokio::time::Instant::now();
    assert_eq!(
        f.set("k", rec("v")).await.unwrap_err().kind(),
        ErrorKind::Timeout
    );
    assert!(start.elapsed() <= deadline * 2, "{:?}", start.elapsed());
}

#[tokio::test(start_paused = true)]
async fn journal_survives_a_new_instance() {
    let (p, s) = stores();
    let first = fallback(&p, &s);
    first.set("k", rec("v1")).await.unwrap();
    p.down();
    first.set("k", rec("v2")).await.unwrap();
    first.delete("gone").await.unwrap();
    drop(first); // the process ends
    p.up();

    // A new process: nothing in memory, the journal on the secondary.
    let second = fallback(&p, &s);
    assert!(second.status().journaled_keys == 0);
    assert_eq!(value(&second, "k").await.as_deref(), Some("v2"));
    let report = second.handle().repair_now().await;
    assert_eq!(report.remaining, 0, "{report:?}");
    assert_eq!(p.raw("k").await.as_deref(), Some("v2"));
}

#[tokio::test(start_paused = true)]
async fn poll_mode_instance_learns_the_journal_on_refresh() {
    let (p, s) = stores();
    let first = fallback(&p, &s);
    first.set("k", rec("v1")).await.unwrap();
    p.down();
    first.set("k", rec("v2")).await.unwrap();
    p.up();

    let poll = Fallback::with_config(
        p.clone(),
        s.clone(),
        config().journal_check(JournalCheck::Poll),
    );
    // The documented window: before its first poll, it trusts the primary.
    assert_eq!(value(&poll, "k").await.as_deref(), Some("v1"));
    poll.handle().refresh().await.unwrap();
    assert_eq!(value(&poll, "k").await.as_deref(), Some("v2"));
    // The strict instance never had the window.
    assert_eq!(value(&first, "k").await.as_deref(), Some("v2"));
}

#[tokio::test(start_paused = true)]
async fn copies_keep_the_absolute_expiry() {
    let (p, s) = stores();
    let f = fallback(&p, &s);
    let at = SystemTime::now() + Duration::from_secs(3600);
    p.down();
    f.set("k", Record::expiring_at("v", at)).await.unwrap();
    let later = at + Duration::from_secs(600);
    f.set("t", rec("x")).await.unwrap();
    assert!(f.touch("t", Some(later)).await.unwrap());
    p.up();
    f.handle().repair_now().await;
    let got = p.inner.get("k").await.unwrap().unwrap();
    assert_eq!(got.expires_at, Some(at));
    let got = p.inner.get("t").await.unwrap().unwrap();
    assert_eq!(got.expires_at, Some(later));
}

#[tokio::test(start_paused = true)]
async fn create_is_decided_by_the_side_holding_the_newest_write() {
    let (p, s) = stores();
    let f = fallback(&p, &s);
    p.down();
    assert!(f.create("new", rec("c1")).await.unwrap());
    f.set("old", rec("o1")).await.unwrap();
    p.up();
    // The primary lacks "new" but the key exists: a fresh process must
    // not create it again.
    let other = fallback(&p, &s);
    assert!(!other.create("new", rec("c2")).await.unwrap());
    assert_eq!(value(&other, "new").await.as_deref(), Some("c1"));

    // Deleted while the primary was away: the primary's stale copy must not
    // make create fail.
    f.set("d", rec("d1")).await.unwrap();
    p.down();
    f.delete("d").await.unwrap();
    p.up();
    let other = fallback(&p, &s);
    assert!(other.create("d", rec("d2")).await.unwrap());
    assert_eq!(value(&other, "d").await.as_deref(), Some("d2"));
    other.handle().repair_now().await;
    f.handle().repair_now().await;
    for side in [&p, &s] {
        assert_eq!(side.raw("new").await.as_deref(), Some("c1"));
        assert_eq!(side.raw("d").await.as_deref(), Some("d2"));
    }
}

#[tokio::test(start_paused = true)]
async fn scan_len_and_clear_hide_the_reserved_keys() {
    let (p, s) = stores();
    let f = fallback(&p, &s);
    for k in ["a", "b", "c"] {
        f.set(k, rec("v")).await.unwrap();
    }
    p.down();
    f.set("d", rec("v")).await.unwrap();
    assert_eq!(f.len().await.unwrap(), 4);
    let page = f.scan("", ScanCursor::start(), 100).await.unwrap();
    let mut keys = page.keys;
    keys.sort();
    assert_eq!(keys, ["a", "b", "c", "d"]);
    // A prefix of the reserved prefix shows nothing reserved either.
    let page = f.scan("__", ScanCursor::start(), 100).await.unwrap();
    assert!(page.keys.is_empty());
    p.up();
    assert_eq!(
        f.len().await.unwrap(),
        3,
        "the primary's view before repair"
    );
    assert!(f.clear().await.is_ok());
    assert_eq!(f.len().await.unwrap(), 0);
    assert_eq!(s.inner.len().await.unwrap(), 0);
    assert_eq!(f.status().journaled_keys, 0);
}

#[tokio::test]
async fn scan_continues_on_the_side_it_started_on() {
    let (p, s) = stores();
    let f = fallback(&p, &s);
    for i in 0..30 {
        f.set(&format!("k{i:02}"), rec("v")).await.unwrap();
    }
    let first = f.scan("", ScanCursor::start(), 10).await.unwrap();
    let next = first.next.expect("more pages");
    p.down();
    let err = f.scan("", next, 10).await.unwrap_err();
    assert!(err.is_transient());
    assert_eq!(
        f.scan("", ScanCursor::from_token("x1"), 10)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}

#[tokio::test]
async fn reserved_and_too_long_keys_are_refused() {
    let (p, s) = stores();
    let f = fallback(&p, &s);
    let err = f.set("__fallback:j:x", rec("v")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        f.get("__fallback:dirty").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let long = "k".repeat(f.max_key_len() + 1);
    assert_eq!(
        f.set(&long, rec("v")).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let longest = "k".repeat(f.max_key_len());
    p.down();
    f.set(&longest, rec("v")).await.unwrap();
    assert!(s.journaled(&longest).await);
}

#[tokio::test(start_paused = true)]
async fn writes_racing_a_repair_in_this_process_are_not_lost() {
    let (p, s) = stores();
    let f = fallback(&p, &s);
    p.down();
    f.set("k", rec("v0")).await.unwrap();
    p.up();
    let repair = tokio::spawn({
        let h = f.handle();
        async move { h.repair_now().await }
    });
    for i in 1..=20 {
        f.set("k", rec(&format!("v{i}"))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    repair.await.unwrap();
    f.handle().repair_now().await;
    assert_eq!(p.raw("k").await.as_deref(), Some("v20"));
    assert_eq!(s.raw("k").await.as_deref(), Some("v20"));
    assert_eq!(f.status().journaled_keys, 0);
}

#[tokio::test(start_paused = true)]
async fn secondary_outage_is_journaled_on_the_primary() {
    let (p, s) = stores();
    let f = fallback(&p, &s);
    s.down();
    f.set("k", rec("v")).await.unwrap();
    assert!(p.journaled("k").await);
    let status = f.status();
    assert!(!status.secondary.reachable);
    assert_eq!(status.newest_on_primary, 1);
    assert_eq!(status.degraded_writes, 1);
    s.up();
    f.handle().repair_now().await;
    assert_eq!(s.raw("k").await.as_deref(), Some("v"));
    assert!(!p.journaled("k").await);
}

#[tokio::test(start_paused = true)]
async fn two_instances_share_the_journal() {
    let (p, s) = stores();
    let a = fallback(&p, &s);
    let b = fallback(&p, &s);
    a.set("k", rec("v1")).await.unwrap();
    p.down();
    a.set("k", rec("v2")).await.unwrap();
    p.up();
    // b never saw the outage.
    assert_eq!(value(&b, "k").await.as_deref(), Some("v2"));
    b.set("k", rec("v3")).await.unwrap();
    assert_eq!(value(&a, "k").await.as_deref(), Some("v3"));
    b.handle().repair_now().await;
    a.handle().repair_now().await;
    assert_eq!(p.raw("k").await.as_deref(), Some("v3"));
    assert_eq!(a.status().journaled_keys, 0);
    assert_eq!(b.status().journaled_keys, 0);
}

#[tokio::test]
async fn layer_and_fluent_method_build_the_same_store() {
    use crate::layer::Layer;
    let secondary = MemoryStore::new();
    let a = MemoryStore::new().with_fallback(secondary.clone());
    let b = FallbackLayer::new(secondary)
        .config(config())
        .layer(MemoryStore::new());
    assert_eq!(a.name(), b.name());
    assert_eq!(b.config().settle, Duration::from_millis(20));
    let handle = b.handle();
    assert!(format!("{handle:?}").contains("FallbackStatus"));
}

#[tokio::test(start_paused = true)]
async fn repair_does_not_clobber_a_half_done_write_of_another_process() {
    let (p, s) = stores();
    let repairer = fallback(&p, &s);
    let writer = fallback(&p, &s);
    repairer.set("k", rec("v0")).await.unwrap();
    p.down();
    repairer.set("k", rec("v1")).await.unwrap();
    p.up();

    // The writer's primary half lands; its secondary half is held.
    let gate = s.hold_next(Op::Set, "k");
    let write = tokio::spawn({
        let writer = writer.clone();
        async move { writer.set("k", rec("v2")).await }
    });
    gate.reached.notified().await;
    assert_eq!(p.raw("k").await.as_deref(), Some("v2"));

    // The repair copies the secondary's v1 over the primary's v2...
    let repair = tokio::spawn({
        let h = repairer.handle();
        async move { h.repair_now().await }
    });
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(p.raw("k").await.as_deref(), Some("v1"), "no copy yet?");
    // ...then the write's second half lands within the settle time.
    gate.release.notify_one();
    write.await.unwrap().unwrap();
    repair.await.unwrap();
    repairer.handle().repair_now().await;

    assert_eq!(p.raw("k").await.as_deref(), Some("v2"));
    assert_eq!(s.raw("k").await.as_deref(), Some("v2"));
    assert_eq!(value(&writer, "k").await.as_deref(), Some("v2"));
    assert_eq!(repairer.status().journaled_keys, 0);
}

#[tokio::test(start_paused = true)]
async fn touch_during_a_secondary_outage_does_not_promote_a_stale_primary() {
    let (p, s) = stores();
    let f = fallback(&p, &s);
    f.set("k", rec("v1")).await.unwrap();
    p.down();
    f.set("k", rec("v2")).await.unwrap();
    p.up();
    s.down(); // a double fault: the secondary holds the newest write
              // The touch goes to the side holding the newest write first.
    assert!(f.touch("k", None).await.unwrap_err().is_transient());
    assert!(f.get("k").await.is_err(), "served the primary's stale v1");
    s.up();
    f.handle().repair_now().await;
    assert_eq!(p.raw("k").await.as_deref(), Some("v2"));
    assert_eq!(value(&f, "k").await.as_deref(), Some("v2"));
}

#[tokio::test(start_paused = true)]
async fn a_refused_create_leaves_nothing_on_the_primary() {
    let (p, s) = stores();
    let a = fallback(&p, &s);
    p.down();
    assert!(a.create("k", rec("first")).await.unwrap());
    p.up();
    // Another process, in Poll mode: its reads would trust the primary.
    let b = Fallback::with_config(
        p.clone(),
        s.clone(),
        config().journal_check(JournalCheck::Poll),
    );
    assert!(!b.create("k", rec("second")).await.unwrap());
    assert_eq!(p.raw("k").await, None, "the refused record is visible");
    assert_eq!(s.raw("k").await.as_deref(), Some("first"));
}

#[tokio::test(start_paused = true)]
async fn a_touch_decided_by_a_stale_side_does_not_lose_the_newer_write() {
    let (p, s) = stores();
    let a = fallback(&p, &s);
    a.set("k", rec("v1")).await.unwrap();
    s.down();
    a.set("k", rec("v2")).await.unwrap(); // journaled on the primary
    s.up();
    p.down(); // a double fault, before any repair
              // A process that never saw the journal touches the stale copy.
    let b = fallback(&p, &s);
    assert!(b.touch("k", None).await.unwrap());
    p.up();
    b.handle().repair_now().await;
    a.handle().repair_now().await;
    assert_eq!(p.raw("k").await.as_deref(), Some("v2"));
    assert_eq!(s.raw("k").await.as_deref(), Some("v2"));
}

/// Each operation the secondary serves alone because the primary failed is
/// counted in `storestack_fallbacks_total`, by op and the primary's error
/// kind; healthy operations are not.
#[cfg(feature = "metrics")]
#[test]
fn operations_served_by_the_secondary_are_metrics() {
    use crate::observe::{self, capture, label};
    use metrics_util::debugging::DebugValue;

    let recorded = capture::metrics(false, || async {
        let (p, s) = stores();
        let f = fallback(&p, &s);
        f.set("k", rec("v")).await.unwrap();
        assert_eq!(value(&f, "k").await.as_deref(), Some("v"));
        p.fail_with(ErrorKind::Timeout);
        assert_eq!(value(&f, "k").await.as_deref(), Some("v"));
        assert_eq!(value(&f, "k").await.as_deref(), Some("v"));
        p.fail_with(ErrorKind::CircuitOpen);
        f.set("k2", rec("w")).await.unwrap();
    });
    let mut counted = Vec::new();
    for m in recorded {
        assert_eq!(m.name, observe::FALLBACKS_TOTAL);
        assert_eq!(m.label(label::STORE), "fallback(alpha, beta)");
        let DebugValue::Counter(n) = m.value else {
            panic!("not a counter")
        };
        counted.push((
            m.label(label::OP).to_owned(),
            m.label(label::REASON).to_owned(),
            n,
        ));
    }
    counted.sort();
    assert_eq!(
        counted,
        [
            ("get".to_owned(), "timeout".to_owned(), 2),
            ("set".to_owned(), "circuit_open".to_owned(), 1)
        ]
    );
}
