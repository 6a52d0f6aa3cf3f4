#![allow(missing_docs)]
//! Failover, measured: the full stack under a steady session load while a
//! fault proxy blackholes the Redis primary (connections stay open, bytes
//! vanish), then lets it through again.
//!
//! Prints latency percentiles and errors per phase (before, during, after
//! the blackhole) and per 100 ms bucket, measures the fail-fast latency of
//! the primary's open circuit breaker, and draws the timeline to an SVG
//! (`STORESTACK_FAILOVER_SVG`, default `target/failover.svg`).
//!
//! ```sh
//! eval "$(scripts/mongo.sh start)"
//! cargo bench -p storestack-bench --bench failover
//! scripts/mongo.sh stop
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use plotters::prelude::*;
use storestack::layers::fallback::JournalCheck;
use storestack::{ErrorKind, Fallback, FallbackConfig, Store, StoreExt};
use storestack_bench::{breaker, key, mongo, record, redis_url, session_value};
use storestack_chaos::proxy::FaultProxy;
use storestack_redis::{RedisConfig, RedisStore};

const BEFORE: Duration = Duration::from_secs(3);
const DURING: Duration = Duration::from_secs(4);
const AFTER: Duration = Duration::from_secs(4);
const BUCKET: Duration = Duration::from_millis(100);
const KEYS: u64 = 1_000;
const WORKERS: u64 = 4;
/// The primary's per-call deadline: the longest a call waits on a
/// blackholed Redis before the breaker opens.
const PRIMARY_DEADLINE: Duration = Duration::from_millis(50);

/// One call: when it started (since the run began), how long it took,
/// whether it succeeded.
#[derive(Clone, Copy)]
struct Sample {
    at: Duration,
    took: Duration,
    ok: bool,
}

fn main() {
    let Some((rt, mongo_url)) = storestack_bench::start("failover") else {
        return;
    };
    rt.block_on(run(mongo_url));
}

async fn run(mongo_url: String) {
    let upstream: SocketAddr = redis_url()
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .parse()
        .expect("STORESTACK_REDIS_URL must be redis://IP:PORT for the failover bench");
    let proxy = FaultProxy::start(upstream).await.expect("proxy");
    let pid = std::process::id();
    let redis = RedisStore::connect(
        RedisConfig::new(format!("redis://{}", proxy.addr()))
            .key_prefix(format!("ssb:{pid}:failover:"))
            .command_timeout(Duration::from_secs(1)),
    )
    .await
    .expect("redis through the proxy");
    let primary = Arc::new(redis.timeout(PRIMARY_DEADLINE).circuit_breaker(breaker()));
    let secondary = mongo(&mongo_url, &format!("failover_{pid}"))
        .await
        .expect("mongo");
    let stack = Arc::new(
        Fallback::with_config(
            primary.clone(),
            secondary
                .timeout(Duration::from_millis(500))
                .circuit_breaker(breaker()),
            FallbackConfig::default().journal_check(JournalCheck::PerRead),
        )
        .encrypted(storestack_bench::keyring())
        .compressed(storestack::Codec::Zstd { level: 3 })
        .instrumented("failover"),
    );
    let value = session_value(2048, 3);
    for i in 0..KEYS {
        stack.set(&key(i), record(&value)).await.expect("preload");
    }

    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let begin = Instant::now();
    let total = BEFORE + DURING + AFTER;
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (stack, samples, value) = (stack.clone(), samples.clone(), value.clone());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                let mut i = w;
                while begin.elapsed() < total {
                    let k = key((i * 7919) % KEYS);
                    let start = Instant::now();
                    let ok = if i % 10 == 0 {
                        stack.set(&k, record(&value)).await.is_ok()
                    } else {
                        matches!(stack.get(&k).await, Ok(Some(_)))
                    };
                    mine.push(Sample {
                        at: start - begin,
                        took: start.elapsed(),
                        ok,
                    });
                    i += WORKERS;
                }
                samples.lock().unwrap().extend(mine);
            })
        })
        .collect();

    tokio::time::sleep(BEFORE).await;
    proxy.handle().blackhole(true);
    // While the breaker is open, its rejections, timed one by one.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut rejected = Histogram::<u64>::new(3).unwrap();
    let probe_until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < probe_until {
        let start = Instant::now();
        let r = primary.get(&key(1)).await;
        let ns = start.elapsed().as_nanos() as u64;
        if matches!(&r, Err(e) if e.kind() == ErrorKind::CircuitOpen) {
            rejected.record(ns).unwrap();
        }
    }
    tokio::time::sleep_until((begin + BEFORE + DURING).into()).await;
    proxy.handle().blackhole(false);
    for w in workers {
        w.await.unwrap();
    }
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    let _ = stack.clear().await;

    println!("failover: full stack, {WORKERS} tasks, 90 % get / 10 % set, 2 KiB values");
    println!(
        "primary blackholed from {BEFORE:?} to {:?}\n",
        BEFORE + DURING
    );
    println!("| phase | calls | errors | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    for (name, from, to) in [
        ("before", Duration::ZERO, BEFORE),
        ("blackholed", BEFORE, BEFORE + DURING),
        ("after", BEFORE + DURING, total),
    ] {
        let (calls, errors, h) = summary(&samples, from, to);
        println!(
            "| {name} | {calls} | {errors} | {} | {} | {} |",
            us(h.value_at_quantile(0.5)),
            us(h.value_at_quantile(0.99)),
            us(h.max())
        );
    }
    println!(
        "\nopen breaker, fail-fast ({} calls): p50 {} ns, p99 {} ns, max {} ns",
        rejected.len(),
        rejected.value_at_quantile(0.5),
        rejected.value_at_quantile(0.99),
        rejected.max()
    );
    let path = std::env::var("STORESTACK_FAILOVER_SVG").unwrap_or_else(|_| {
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "../../target".into());
        format!("{target}/failover.svg")
    });
    draw(&samples, total, &path).expect("draw the timeline");
    println!("timeline: {path}");
}

fn summary(samples: &[Sample], from: Duration, to: Duration) -> (u64, u64, Histogram<u64>) {
    let mut h = Histogram::<u64>::new(3).unwrap();
    let (mut calls, mut errors) = (0, 0);
    for s in samples.iter().filter(|s| s.at >= from && s.at < to) {
        calls += 1;
        errors += u64::from(!s.ok);
        h.record(s.took.as_nanos() as u64).unwrap();
    }
    (calls, errors, h)
}

fn us(ns: u64) -> String {
    format!("{:.0} µs", ns as f64 / 1000.0)
}

/// Latency p50 / p99 per bucket (log scale, ms) and the fault window.
fn draw(samples: &[Sample], total: Duration, path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let buckets = (total.as_millis() / BUCKET.as_millis()) as u32;
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    let mut errors = Vec::new();
    for b in 0..buckets {
        let from = BUCKET * b;
        let (calls, errs, h) = summary(samples, from, from + BUCKET);
        if calls == 0 {
            continue;
        }
        let mid = (from + BUCKET / 2).as_secs_f64();
        let ms = |ns: u64| (ns as f64 / 1e6).max(0.001);
        p50.push((mid, ms(h.value_at_quantile(0.5))));
        p99.push((mid, ms(h.value_at_quantile(0.99))));
        errors.push((mid, errs as f64 / calls as f64 * 100.0));
    }
    let root = SVGBackend::new(path, (960, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = p99.iter().map(|p| p.1).fold(1.0, f64::max) * 2.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "full stack while the Redis primary is blackholed (latency per 100 ms)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..total.as_secs_f64(), (0.01..max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("latency (ms)")
        .draw()?;
    let (a, b) = (BEFORE.as_secs_f64(), (BEFORE + DURING).as_secs_f64());
    chart.draw_series(std::iter::once(Rectangle::new(
        [(a, 0.01), (b, max)],
        RGBColor(220, 50, 47).mix(0.12).filled(),
    )))?;
    chart
        .draw_series(LineSeries::new(p50, RGBColor(38, 139, 210).stroke_width(2)))?
        .label("p50")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RGBColor(38, 139, 210)));
    chart
        .draw_series(LineSeries::new(p99, RGBColor(203, 75, 22).stroke_width(2)))?
        .label("p99")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RGBColor(203, 75, 22)));
    let failed: Vec<_> = errors.into_iter().filter(|e| e.1 > 0.0).collect();
    chart
        .draw_series(
            failed
                .iter()
                .map(|(x, _)| Circle::new((*x, 0.02), 3, RED.filled())),
        )?
        .label("bucket with errors")
        .legend(|(x, y)| Circle::new((x + 8, y), 3, RED.filled()));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
