#![allow(missing_docs)]
//! Where a cache-miss `get` of the full stack spends its time: the stack
//! built up one layer at a time, each step timed over the same keys, one
//! call at a time, interleaved round by round so that every step sees the
//! same machine load. The difference between two steps is what the added
//! layer costs on a read.
//!
//! ```sh
//! eval "$(scripts/mongo.sh start)"
//! cargo bench -p storestack-bench --bench attribution
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use storestack::layers::fallback::JournalCheck;
use storestack::{Codec, Fallback, FallbackConfig, Store, StoreExt};
use storestack_bench::{
    breaker, journal_key, key, keyring, mongo, record, redis, session_value, DynStore, Raw,
    RawBoth, RawFred,
};

const KEYS: u64 = 1_000;
const ROUNDS: usize = 20;
const PER_ROUND: u64 = 200;

enum Step {
    Raw(Raw),
    RawMongoAbsent(RawBoth),
    Store(DynStore),
    StoreAbsent(DynStore),
}

impl Step {
    async fn get(&self, key: &str) {
        let found = match self {
            Step::Raw(r) => r.get(key).await.is_some(),
            Step::Store(s) => s.get(key).await.expect("get").is_some(),
            Step::RawMongoAbsent(r) => return r.find_absent(key).await,
            Step::StoreAbsent(s) => {
                return assert!(s.get(&journal_key(key)).await.expect("get").is_none());
            }
        };
        assert!(found, "a preloaded key");
    }
}

fn main() {
    let Some((rt, url)) = storestack_bench::start("attribution") else {
        return;
    };
    rt.block_on(run(url));
}

fn fallback<P: Store, S: Store>(p: P, s: S, check: JournalCheck) -> Fallback<P, S> {
    Fallback::with_config(p, s, FallbackConfig::default().journal_check(check))
}

/// Fallback(CircuitBreaker(Timeout(p)), CircuitBreaker(Timeout(s))), the
/// full stack's deadlines.
fn guarded<P: Store, S: Store>(
    p: P,
    s: S,
    check: JournalCheck,
) -> Fallback<impl Store, impl Store> {
    fallback(
        p.timeout(Duration::from_millis(250))
            .circuit_breaker(breaker()),
        s.timeout(Duration::from_millis(500))
            .circuit_breaker(breaker()),
        check,
    )
}

/// A short tag of the journal-check mode, for key prefixes.
fn tag(check: JournalCheck) -> &'static str {
    if check == JournalCheck::Poll {
        "p"
    } else {
        "r"
    }
}

async fn run(url: String) {
    let pid = std::process::id();
    let value = session_value(2048, 1);
    let sides = |name: String| {
        let url = url.clone();
        async move {
            let r = redis(&format!("ssa:{pid}:{name}:")).await.expect("redis");
            let m = mongo(&url, &format!("attr_{pid}_{name}"))
                .await
                .expect("mongo");
            (r, m)
        }
    };
    let mut steps: Vec<(String, Step)> = Vec::new();
    let raw_store = redis(&format!("ssa:{pid}:raw:")).await.expect("redis");
    steps.push((
        "raw fred GET".into(),
        Step::Raw(Raw::Fred(
            RawFred::connect(&raw_store).await.expect("redis"),
        )),
    ));
    let (r, m) = sides("both".into()).await;
    steps.push((
        "raw fred GET || raw mongo find_one".into(),
        Step::Raw(Raw::Both(RawBoth::new(
            RawFred::connect(&r).await.expect("redis"),
            m,
        ))),
    ));
    steps.push(("RedisStore".into(), Step::Store(Arc::new(r))));
    let (r, m) = sides("mongo".into()).await;
    steps.push((
        "raw mongo find_one (absent)".into(),
        Step::RawMongoAbsent(RawBoth::new(RawFred::connect(&r).await.expect("redis"), m)),
    ));
    let (_, m) = sides("mongo-store".into()).await;
    steps.push((
        "MongoStore get (absent)".into(),
        Step::StoreAbsent(Arc::new(m)),
    ));
    for check in [JournalCheck::Poll, JournalCheck::PerRead] {
        let (r, m) = sides(format!("f{}", tag(check))).await;
        steps.push((
            format!("Fallback(Redis, Mongo) {check:?}"),
            Step::Store(Arc::new(fallback(r, m, check))),
        ));
        let (r, m) = sides(format!("b{}", tag(check))).await;
        steps.push((
            format!("+ Timeout, CircuitBreaker {check:?}"),
            Step::Store(Arc::new(guarded(r, m, check))),
        ));
        let (r, m) = sides(format!("e{}", tag(check))).await;
        let coded = guarded(r, m, check)
            .encrypted(keyring())
            .compressed(Codec::Zstd { level: 3 });
        steps.push((
            format!("+ Encrypted, Compressed {check:?}"),
            Step::Store(Arc::new(coded)),
        ));
        let (r, m) = sides(format!("c{}", tag(check))).await;
        let full = storestack_bench::full_stack(
            r,
            m,
            storestack_bench::CacheMode::AlwaysMiss,
            check,
            Duration::from_millis(250),
        );
        steps.push((
            format!("+ Cached (miss), Instrumented {check:?}"),
            Step::Store(full),
        ));
    }
    // Preload through each step (raw steps share keys with their stores).
    for (_, step) in &steps {
        for i in 0..KEYS {
            match step {
                Step::Raw(r) => r.set(&key(i), value.clone()).await,
                Step::RawMongoAbsent(_) | Step::StoreAbsent(_) => {}
                Step::Store(s) => s.set(&key(i), record(&value)).await.expect("set"),
            }
        }
    }
    let mut totals = vec![Duration::ZERO; steps.len()];
    let mut n = 0u64;
    for round in 0..ROUNDS {
        for (i, (_, step)) in steps.iter().enumerate() {
            let start = Instant::now();
            for j in 0..PER_ROUND {
                step.get(&key((round as u64 * PER_ROUND + j) % KEYS)).await;
            }
            if round > 0 {
                totals[i] += start.elapsed();
            }
        }
        if round > 0 {
            n += PER_ROUND;
        }
    }
    println!("cache-miss get of 2 KiB, one call at a time, mean over {n} calls per step\n");
    println!("| step | µs/get | vs raw fred |");
    println!("|---|---|---|");
    let base = totals[0].as_secs_f64() / n as f64;
    for ((name, _), t) in steps.iter().zip(&totals) {
        let us = t.as_secs_f64() / n as f64;
        println!("| {name} | {:.1} | {:.2}× |", us * 1e6, base / us);
    }
    for (_, step) in &steps {
        if let Step::Store(s) | Step::StoreAbsent(s) = step {
            let _ = s.clear().await;
        }
    }
}
