//! Randomized model test of Fallback(Memory, Memory).
//!
//! Per seed: a concurrent session-like workload (get / set / create /
//! delete / touch over a few keys, unique values) runs against one or two
//! Fallback instances ("processes") over the same two memory stores, while
//! a chaos task takes either side down and up at random points. Every
//! operation is recorded in a `storestack_testkit::model::History`. After
//! the last recovery and a repair pass, every key is read once more through
//! every instance and directly on each store (no journal entry may be
//! left), and the checker must find zero stale reads, lost writes,
//! resurrected deletes and unknown values. With one process both stores must
//! hold the same records; with two, concurrent writes of one key from both
//! processes may leave each side with a different one of them (documented),
//! which the checker accepts only if both are allowed final values.
//!
//! Deterministic per seed: a current-thread runtime with paused time, and
//! the switches yield a seeded number of times around every call and add a
//! seeded virtual latency to some, which is what interleaves the operations. A failure prints its seed; replay it
//! with `STORESTACK_MODEL_SEED=<seed>`. `STORESTACK_MODEL_SEEDS=<n>` runs
//! `n` seeds per scenario (default 60).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use storestack::clock::{Clock, TokioClock};
use storestack::layers::fallback::JournalCheck;
use storestack::{
    async_trait, Condition, ErrorKind, Expiry, Fallback, FallbackConfig, MemoryConfig, MemoryStore,
    Op, Record, Result, ScanCursor, ScanPage, Store, StoreError, Versioned,
};
use storestack_testkit::model::History;

const KEYS: [&str; 6] = ["s0", "s1", "s2", "s3", "s4", "s5"];
const CLIENTS: usize = 4;
const JOURNAL: &str = "__fallback:j:";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A memory store that can be switched down, and that yields a seeded
/// number of times before and after every call.
#[derive(Clone)]
struct Switch {
    inner: MemoryStore,
    name: &'static str,
    down: Arc<AtomicBool>,
    rng: Arc<Mutex<StdRng>>,
}

impl Switch {
    fn new(name: &'static str, clock: TokioClock, rng: Arc<Mutex<StdRng>>) -> Self {
        let inner =
            MemoryStore::with_config(MemoryConfig::default().clock(clock).sweep_interval(None));
        Switch {
            inner,
            name,
            down: Arc::default(),
            rng,
        }
    }

    fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Lets other tasks run: a few yields, sometimes a few milliseconds of
    /// (virtual) latency.
    async fn pause(&self) {
        let (yields, latency) = {
            let mut rng = self.rng.lock().unwrap();
            let latency = rng.gen_bool(0.125).then(|| ms(rng.gen_range(1..=3)));
            (rng.gen_range(0..3), latency)
        };
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
        if let Some(d) = latency {
            tokio::time::sleep(d).await;
        }
    }

    async fn gate(&self, op: Op) -> Result<()> {
        self.pause().await;
        if self.is_down() {
            return Err(StoreError::unavailable(op).with_store(self.name));
        }
        Ok(())
    }

    /// Journal entries held (reads the memory store directly).
    async fn journal_len(&self) -> usize {
        let mut n = 0;
        let mut cursor = ScanCursor::start();
        loop {
            let page = self.inner.scan(JOURNAL, cursor, 1000).await.unwrap();
            n += page.keys.len();
            match page.next {
                Some(next) => cursor = next,
                None => return n,
            }
        }
    }
}

macro_rules! switched {
    ($self:ident, $op:expr, $call:expr) => {{
        $self.gate($op).await?;
        let out = $call.await;
        $self.pause().await;
        out
    }};
}

#[async_trait]
impl Store for Switch {
    fn name(&self) -> &str {
        self.name
    }
    async fn get(&self, key: &str) -> Result<Option<Record>> {
        switched!(self, Op::Get, self.inner.get(key))
    }
    async fn set(&self, key: &str, record: Record) -> Result<()> {
        switched!(self, Op::Set, self.inner.set(key, record))
    }
    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        switched!(self, Op::Create, self.inner.create(key, record))
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        switched!(self, Op::Delete, self.inner.delete(key))
    }
    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        switched!(self, Op::Touch, self.inner.touch(key, expires_at))
    }
    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        switched!(self, Op::Scan, self.inner.scan(prefix, cursor, limit))
    }
    async fn len(&self) -> Result<u64> {
        switched!(self, Op::Len, self.inner.len())
    }
    async fn clear(&self) -> Result<()> {
        switched!(self, Op::Clear, self.inner.clear())
    }
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        switched!(self, Op::GetVersioned, self.inner.get_versioned(key))
    }
    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        switched!(self, Op::SetIf, self.inner.set_if(key, record, condition))
    }
}

type Fb = Fallback<Switch, Switch>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Faults {
    /// At most one side down, each outage separated from the next by more
    /// than the longest operation; a side holding journal entries goes down
    /// only after they are repaired (the documented precondition).
    Single,
    /// Any side, any time, both at once included.
    Double,
}

#[derive(Debug, Clone, Copy)]
struct Scenario {
    processes: usize,
    faults: Faults,
    check: JournalCheck,
    ops_per_client: usize,
    /// Whether stale reads (and reads of deleted values) are expected: a
    /// process in `Poll` mode may read what another process journaled
    /// during an outage shorter than its poll interval.
    stale_allowed: bool,
    /// Refusals allowed with one fault at a time: a create or touch that
    /// raced another process's journals a weak entry, which the chaos task
    /// may not see repaired before it takes that side down; the key is then
    /// refused (an error, never stale data).
    refusals_allowed: bool,
}

#[derive(Debug, Default)]
struct Totals {
    ops: u64,
    stale_reads: u64,
    resurrected: u64,
    outages: u64,
    degraded_writes: u64,
    repaired: u64,
    failover_reads: u64,
    errors: u64,
}

fn verbose() -> bool {
    std::env::var_os("STORESTACK_MODEL_VERBOSE").is_some()
}

fn seeds() -> Vec<u64> {
    if let Some(seed) = std::env::var("STORESTACK_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return vec![seed];
    }
    let n = std::env::var("STORESTACK_MODEL_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    (0..n).collect()
}

fn run_scenario(name: &str, scenario: Scenario) -> Totals {
    let mut totals = Totals::default();
    for seed in seeds() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        match rt.block_on(run(seed, scenario, &mut totals)) {
            Ok(()) => {}
            Err(msg) => panic!(
                "{name}: seed {seed} failed (replay: STORESTACK_MODEL_SEED={seed} \
                 cargo test --test fallback_model {name}):\n{msg}"
            ),
        }
    }
    eprintln!("{name}: {totals:?}");
    assert!(totals.outages > 0 && totals.degraded_writes > 0 && totals.repaired > 0);
    totals
}

async fn run(
    seed: u64,
    scenario: Scenario,
    totals: &mut Totals,
) -> std::result::Result<(), String> {
    let clock = TokioClock::new();
    let yields = Arc::new(Mutex::new(StdRng::seed_from_u64(seed ^ 0x5eed)));
    let p = Switch::new("p", clock, yields.clone());
    let s = Switch::new("s", clock, yields);
    let config = FallbackConfig::default()
        .journal_check(scenario.check)
        .poll_interval(ms(20))
        // Above the longest write: 2 calls of up to 3 ms each, plus yields.
        .settle(ms(25))
        .lease(ms(2000))
        // Well under the 40 ms both sides stay up between outages: the first
        // write of an outage waits it out.
        .read_lease(ms(10))
        .clock(clock);
    let instances: Vec<Fb> = (0..scenario.processes)
        .map(|_| Fallback::with_config(p.clone(), s.clone(), config.clone()))
        .collect();
    let history = History::new();
    let done = Arc::new(AtomicBool::new(false));
    let outages = Arc::new(AtomicU64::new(0));

    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let store = instances[id % instances.len()].clone();
            let rng = StdRng::seed_from_u64(seed.wrapping_mul(1000).wrapping_add(id as u64));
            tokio::spawn(client(
                id,
                store,
                history.clone(),
                rng,
                scenario.ops_per_client,
                clock,
            ))
        })
        .collect();
    let chaos = tokio::spawn(chaos(
        p.clone(),
        s.clone(),
        instances.clone(),
        scenario.faults,
        StdRng::seed_from_u64(seed.wrapping_mul(7919).wrapping_add(1)),
        done.clone(),
        outages.clone(),
    ));
    for c in clients {
        c.await.map_err(|e| e.to_string())?;
    }
    done.store(true, Ordering::SeqCst);
    chaos.await.map_err(|e| e.to_string())?;

    p.set_down(false);
    s.set_down(false);
    converge(&instances, &p, &s).await?;
    for f in &instances {
        for key in KEYS {
            history
                .final_get(f, key)
                .await
                .map_err(|e| format!("final read failed: {e}"))?;
        }
    }
    if verbose() {
        for e in history.events() {
            eprintln!("{e}");
        }
    }
    // Each side on its own must hold an allowed final value of every key
    // (checked as final reads); with one process, the same one.
    for key in KEYS {
        for side in [&p.inner, &s.inner] {
            history.final_get(side, key).await.unwrap();
        }
        let (a, b) = (
            p.inner.get(key).await.unwrap(),
            s.inner.get(key).await.unwrap(),
        );
        if scenario.processes == 1 && a != b {
            let text =
                |r: Option<Record>| r.map(|r| String::from_utf8_lossy(&r.value).into_owned());
            return Err(format!(
                "sides differ on {key}: {:?} vs {:?}",
                text(a),
                text(b)
            ));
        }
    }

    let report = history.check();
    totals.ops += report.ops;
    totals.outages += outages.load(Ordering::SeqCst);
    totals.errors += report.errors_total();
    totals.stale_reads += report.stale_reads;
    totals.resurrected += report.resurrected;
    for f in &instances {
        let st = f.status();
        totals.degraded_writes += st.degraded_writes;
        totals.repaired += st.repaired;
        totals.failover_reads += st.failover_reads;
    }
    let clean = if scenario.stale_allowed {
        report.lost_writes == 0 && report.unknown_values == 0 && report.duplicate_values == 0
    } else {
        report.is_clean()
    };
    if !clean {
        return Err(report.to_string());
    }
    if scenario.faults == Faults::Single && !scenario.refusals_allowed && report.errors_total() > 0
    {
        return Err(format!("errors with one fault at a time: {report}"));
    }
    Ok(())
}

async fn client(
    id: usize,
    store: Fb,
    history: History,
    mut rng: StdRng,
    ops: usize,
    clock: TokioClock,
) {
    let ttl = Expiry::after(Duration::from_secs(3600));
    for seq in 0..ops {
        let key = KEYS[rng.gen_range(0..KEYS.len())];
        let value = format!("{key}:{id}:{seq}");
        let r = match rng.gen_range(0..100) {
            0..=44 => history.get(&store, key).await.map(drop),
            45..=64 => history.set(&store, key, &value, ttl).await,
            65..=74 => history.create(&store, key, &value, ttl).await.map(drop),
            75..=84 => history.delete(&store, key).await.map(drop),
            _ => {
                let at = clock.now() + Duration::from_secs(7200);
                history.touch(&store, key, Some(at)).await.map(drop)
            }
        };
        if verbose() {
            let last = history.events().pop().map(|e| e.to_string());
            match r {
                Err(e) => eprintln!("client {id} op {seq} on {key}: {e}"),
                Ok(()) => eprintln!("client {id}: {}", last.unwrap_or_default()),
            }
        }
        let pause = rng.gen_range(0..4);
        if pause > 0 {
            tokio::time::sleep(ms(pause)).await;
        }
    }
}

/// Repairs until both journals and every instance's view are empty.
async fn converge(instances: &[Fb], p: &Switch, s: &Switch) -> std::result::Result<(), String> {
    for _ in 0..30 {
        for f in instances {
            f.handle().repair_now().await;
        }
        if clean(instances, p, s).await {
            return Ok(());
        }
        tokio::time::sleep(ms(100)).await;
    }
    let views: Vec<_> = instances.iter().map(|f| f.status()).collect();
    Err(format!(
        "no convergence: journal entries {} on p, {} on s; {views:?}",
        p.journal_len().await,
        s.journal_len().await
    ))
}

async fn clean(instances: &[Fb], p: &Switch, s: &Switch) -> bool {
    p.journal_len().await == 0
        && s.journal_len().await == 0
        && instances.iter().all(|f| f.status().journaled_keys == 0)
}

async fn chaos(
    p: Switch,
    s: Switch,
    instances: Vec<Fb>,
    faults: Faults,
    mut rng: StdRng,
    done: Arc<AtomicBool>,
    outages: Arc<AtomicU64>,
) {
    while !done.load(Ordering::SeqCst) {
        tokio::time::sleep(ms(rng.gen_range(1..12))).await;
        match faults {
            Faults::Double => {
                let side = if rng.gen_bool(0.5) { &p } else { &s };
                let down = !side.is_down();
                if verbose() {
                    eprintln!("chaos: {} {}", side.name, if down { "down" } else { "up" });
                }
                if down {
                    outages.fetch_add(1, Ordering::SeqCst);
                }
                side.set_down(down);
            }
            Faults::Single if p.is_down() || s.is_down() => {
                if rng.gen_bool(0.6) {
                    if verbose() {
                        eprintln!("chaos: both up");
                    }
                    p.set_down(false);
                    s.set_down(false);
                    // No operation may span two outages (then it saw both
                    // sides fail): stay up longer than the longest one.
                    tokio::time::sleep(ms(40)).await;
                }
            }
            Faults::Single => {
                if rng.gen_bool(0.5) {
                    continue;
                }
                let side = if rng.gen_bool(0.5) { &p } else { &s };
                if side.journal_len().await > 0 || !clean(&instances, &p, &s).await {
                    // Repair first: the journal holder must not fail before.
                    if converge(&instances, &p, &s).await.is_err() {
                        continue;
                    }
                }
                // Checked with no await in between the check and the switch.
                if side.journal_len().await == 0
                    && instances.iter().all(|f| f.status().journaled_keys == 0)
                {
                    outages.fetch_add(1, Ordering::SeqCst);
                    if verbose() {
                        eprintln!("chaos: {} down", side.name);
                    }
                    side.set_down(true);
                }
            }
        }
    }
}

#[test]
fn one_process_single_faults() {
    run_scenario(
        "one_process_single_faults",
        Scenario {
            processes: 1,
            faults: Faults::Single,
            check: JournalCheck::PerRead,
            ops_per_client: 80,
            stale_allowed: false,
            refusals_allowed: false,
        },
    );
}

#[test]
fn two_processes_single_faults() {
    run_scenario(
        "two_processes_single_faults",
        Scenario {
            processes: 2,
            faults: Faults::Single,
            check: JournalCheck::PerRead,
            ops_per_client: 80,
            stale_allowed: false,
            refusals_allowed: false,
        },
    );
}

#[test]
fn one_process_double_faults() {
    let totals = run_scenario(
        "one_process_double_faults",
        Scenario {
            processes: 1,
            faults: Faults::Double,
            check: JournalCheck::PerRead,
            ops_per_client: 80,
            stale_allowed: false,
            refusals_allowed: false,
        },
    );
    assert!(totals.errors > 0, "both sides were never down at once?");
}

#[test]
fn one_process_poll_mode_single_faults() {
    run_scenario(
        "one_process_poll_mode_single_faults",
        Scenario {
            processes: 1,
            faults: Faults::Single,
            check: JournalCheck::Poll,
            ops_per_client: 80,
            stale_allowed: false,
            refusals_allowed: false,
        },
    );
}

/// The documented window of `Poll` mode: another process's journal entries
/// are unknown until the next poll, so stale reads may happen; writes are
/// never lost.
#[test]
fn two_processes_poll_mode_loses_no_write() {
    run_scenario(
        "two_processes_poll_mode_loses_no_write",
        Scenario {
            processes: 2,
            faults: Faults::Single,
            check: JournalCheck::Poll,
            ops_per_client: 80,
            stale_allowed: true,
            refusals_allowed: false,
        },
    );
}

/// Lease mode (opt-in): reads of the primary alone while the read lease
/// holds; the first write an outage sends to the secondary alone waits out
/// the lease. One process: with two, a run found a stale read after a
/// racing `create` (seed 35, not deterministic), an open bug of the mode,
/// which is why it is not the default.
#[test]
fn one_process_lease_mode_single_faults() {
    run_scenario(
        "one_process_lease_mode_single_faults",
        Scenario {
            processes: 1,
            faults: Faults::Single,
            check: JournalCheck::Lease,
            ops_per_client: 80,
            stale_allowed: false,
            refusals_allowed: true,
        },
    );
}

#[test]
fn the_switch_fails_transiently() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let rng = Arc::new(Mutex::new(StdRng::seed_from_u64(1)));
        let sw = Switch::new("p", TokioClock::new(), rng);
        sw.set_down(true);
        let err = sw.get("k").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
    });
}
