//! Moving live sessions from Redis to MongoDB without logging anyone out.
//!
//! ```sh
//! eval "$(scripts/mongo.sh start)"   # or set STORESTACK_MONGODB_URL
//! cargo run -p storestack-examples --example migrate_sessions
//! ```
//!
//! Seeds sessions in Redis, then walks a `Migration(old = Redis,
//! new = MongoDB)` through its phases with the migration handle
//! (old-only → write-both:10 → write-both:100 + bulk copy → read-new →
//! new-only) while worker tasks keep reading and incrementing sessions and
//! creating new ones. Each worker knows what every one of its sessions must
//! hold; a read that finds a session missing or behind counts as lost. At
//! the end every session is looked up in MongoDB directly. The exit code is
//! 1 if any session was lost.
//!
//! It owns the Redis prefix `migrate_sessions:` and the MongoDB collection
//! `storestack_examples.migrate_sessions`, and empties both at the start
//! and at the end.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::Rng;
use storestack::layers::migration::bulk::{BulkConfig, Progress};
use storestack::{Migration, MigrationHandle, Phase, Record, Store, StoreExt};
use storestack_mongodb::{MongoConfig, MongoStore};
use storestack_redis::{RedisConfig, RedisStore};

/// How long a seeded or created session lives.
const SESSION_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Parser)]
#[command(about = "Migrate live sessions from Redis to MongoDB, phase by phase, under load")]
struct Args {
    /// The old store.
    #[arg(
        long,
        env = "STORESTACK_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: String,
    /// The new store (required; `eval "$(scripts/mongo.sh start)"` sets it).
    #[arg(long, env = "STORESTACK_MONGODB_URL")]
    mongo_url: Option<String>,
    /// Sessions seeded in Redis before the migration.
    #[arg(long, default_value_t = 2000)]
    sessions: usize,
    /// Concurrent worker tasks.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// How long the load runs in each phase, in seconds.
    #[arg(long, default_value_t = 1.0)]
    phase_secs: f64,
}

type Stack = Migration<RedisStore, MongoStore>;

/// What the workers saw.
#[derive(Debug, Default)]
struct Tally {
    ops: AtomicU64,
    created: AtomicU64,
    /// A session missing, or holding fewer views than its last write.
    lost: AtomicU64,
    errors: AtomicU64,
}

/// A worker's sessions: the key and the views it last wrote.
type Owned = HashMap<String, u64>;

fn views(record: &Record) -> Option<u64> {
    std::str::from_utf8(&record.value).ok()?.parse().ok()
}

fn session(views: u64) -> Record {
    Record::expiring_after(views.to_string(), SESSION_TTL)
}

fn new_key() -> String {
    format!("sess:{:032x}", rand::thread_rng().gen::<u128>())
}

/// Reads a random one of its sessions, checks it, writes it back
/// incremented; now and then creates a session instead.
async fn worker(
    store: Arc<Stack>,
    mut owned: Owned,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Owned {
    let keys: Vec<String> = owned.keys().cloned().collect();
    let mut keys = keys;
    while !stop.load(Ordering::Relaxed) {
        tally.ops.fetch_add(1, Ordering::Relaxed);
        if rand::thread_rng().gen_ratio(1, 10) {
            let key = new_key();
            match store.create(&key, session(1)).await {
                Ok(true) => {
                    owned.insert(key.clone(), 1);
                    keys.push(key);
                    tally.created.fetch_add(1, Ordering::Relaxed);
                }
                Ok(false) => {}
                Err(e) => {
                    eprintln!("  create failed: {e}");
                    tally.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            continue;
        }
        let key = &keys[rand::thread_rng().gen_range(0..keys.len())];
        let expected = owned[key];
        let found = match store.get(key).await {
            Ok(found) => found.as_ref().and_then(views),
            Err(e) => {
                eprintln!("  get failed: {e}");
                tally.errors.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        if found.is_none_or(|v| v < expected) {
            tally.lost.fetch_add(1, Ordering::Relaxed);
        }
        let next = found.unwrap_or(expected).max(expected) + 1;
        match store.set(key, session(next)).await {
            Ok(()) => {
                owned.insert(key.clone(), next);
            }
            Err(e) => {
                eprintln!("  set failed: {e}");
                tally.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    owned
}

async fn counts(redis: &RedisStore, mongo: &MongoStore) -> String {
    let show =
        |r: storestack::Result<u64>| r.map_or_else(|e| format!("error ({e})"), |n| n.to_string());
    format!(
        "redis {}, mongodb {}",
        show(redis.len().await),
        show(mongo.len().await)
    )
}

/// Lets the load run for `secs` and prints what it did.
async fn run_phase(name: &str, secs: f64, tally: &Tally, redis: &RedisStore, mongo: &MongoStore) {
    let before = (
        tally.ops.load(Ordering::Relaxed),
        tally.lost.load(Ordering::Relaxed),
        tally.errors.load(Ordering::Relaxed),
    );
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    println!(
        "{name:<16} {:>6} ops, {} lost, {} errors; live sessions: {}",
        tally.ops.load(Ordering::Relaxed) - before.0,
        tally.lost.load(Ordering::Relaxed) - before.1,
        tally.errors.load(Ordering::Relaxed) - before.2,
        counts(redis, mongo).await
    );
}

fn switch(handle: &MigrationHandle, phase: Phase) {
    handle
        .set(phase)
        .expect("the phases go forward one at a time");
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let Some(mongo_url) = args.mongo_url.clone() else {
        eprintln!(
            "error: no MongoDB to migrate to. Set STORESTACK_MONGODB_URL or pass --mongo-url \
             (for a local test server: eval \"$(scripts/mongo.sh start)\")"
        );
        return ExitCode::from(2);
    };
    match run(args, mongo_url).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args, mongo_url: String) -> Result<bool, String> {
    let redis =
        RedisStore::connect(RedisConfig::new(&args.redis_url).key_prefix("migrate_sessions:"))
            .await
            .map_err(|e| format!("cannot reach Redis at {}: {e}", args.redis_url))?;
    let mongo_config = MongoConfig::new(mongo_url)
        .database("storestack_examples")
        .collection("migrate_sessions")
        .server_selection_timeout(Duration::from_secs(2));
    let shown = mongo_config.redacted_uri();
    let mongo = MongoStore::connect(mongo_config).await.map_err(|e| {
        format!(
            "cannot reach MongoDB at {shown}: {e} \
             (for a local test server: eval \"$(scripts/mongo.sh start)\")"
        )
    })?;
    let clear = |e: storestack::StoreError| format!("cannot empty the demo stores: {e}");
    redis.clear().await.map_err(clear)?;
    mongo.clear().await.map_err(clear)?;

    let workers = args.workers.max(1);
    let mut owned: Vec<Owned> = vec![Owned::new(); workers];
    for i in 0..args.sessions.max(workers) {
        let key = new_key();
        redis
            .set(&key, session(0))
            .await
            .map_err(|e| format!("seeding failed: {e}"))?;
        owned[i % workers].insert(key, 0);
    }
    println!(
        "seeded {} sessions in redis; {}",
        args.sessions.max(workers),
        counts(&redis, &mongo).await
    );

    let handle = MigrationHandle::new(Phase::OldOnly).labeled("sessions");
    let stack = Arc::new(
        redis
            .clone()
            .migrating_to(mongo.clone())
            .with_handle(handle.clone()),
    );
    let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Tally::default()));
    let tasks: Vec<_> = owned
        .into_iter()
        .map(|o| tokio::spawn(worker(stack.clone(), o, stop.clone(), tally.clone())))
        .collect();
    let secs = args.phase_secs;

    run_phase("old-only", secs, &tally, &redis, &mongo).await;
    switch(&handle, Phase::write_both(10));
    run_phase("write-both:10", secs, &tally, &redis, &mongo).await;
    switch(&handle, Phase::write_both(100));
    run_phase("write-both:100", secs, &tally, &redis, &mongo).await;

    println!("bulk copy (under load) ...");
    let started = Instant::now();
    let report = stack
        .bulk()
        .label("sessions")
        .config(BulkConfig::default().page_size(500))
        .on_progress(|p: &Progress| {
            if !p.done {
                println!(
                    "  {} scanned, {} copied, {:.0} keys/s",
                    p.counts.scanned, p.counts.copied, p.rate
                );
            }
        })
        .run()
        .await
        .map_err(|e| format!("bulk copy failed: {e}"))?;
    let c = report.progress.counts;
    println!(
        "  done in {:.1?}: {} scanned, {} copied, {} already there, {} raced, {} failed",
        started.elapsed(),
        c.scanned,
        c.copied,
        c.skipped_existing,
        c.raced,
        c.failed,
    );
    // The check runs under load: a session written between its read in
    // Redis and its read in MongoDB compares unequal (a race, not a loss),
    // and the live counts move. A key in Redis but not in MongoDB is never
    // a race here (every write goes to MongoDB first): that would be a loss.
    let verify = report.verify.unwrap_or_default();
    println!(
        "  verification: {} sampled, {} equal, {} missing in mongodb, {} differing (written meanwhile); \
         live: redis {}, mongodb {}",
        verify.sampled,
        verify.matched,
        verify.missing,
        verify.value_mismatch + verify.expiry_mismatch,
        verify.old_len,
        verify.new_len
    );
    if c.failed > 0 || c.raced > 0 || verify.missing > 0 {
        return Err("the bulk copy is incomplete; run it again before read-new".into());
    }

    switch(&handle, Phase::ReadNew);
    run_phase("read-new", secs, &tally, &redis, &mongo).await;
    switch(&handle, Phase::NewOnly);
    run_phase("new-only", secs, &tally, &redis, &mongo).await;

    stop.store(true, Ordering::Relaxed);
    let mut expected = Owned::new();
    for task in tasks {
        expected.extend(task.await.map_err(|e| format!("a worker panicked: {e}"))?);
    }

    // Every session, read from MongoDB alone: present, and holding the last
    // count its worker wrote.
    let (mut present, mut missing, mut behind) = (0u64, 0u64, 0u64);
    for (key, views_written) in &expected {
        match mongo
            .get(key)
            .await
            .map_err(|e| format!("final check failed: {e}"))?
        {
            Some(r) if views(&r) == Some(*views_written) => present += 1,
            Some(_) => behind += 1,
            None => missing += 1,
        }
    }
    let lost_during = tally.lost.load(Ordering::Relaxed);
    println!(
        "\n{} sessions ({} seeded + {} created under load): {present} in mongodb with their last count, \
         {missing} missing, {behind} behind; {lost_during} lost reads during the migration, {} errors, {} ops",
        expected.len(),
        args.sessions.max(workers),
        tally.created.load(Ordering::Relaxed),
        tally.errors.load(Ordering::Relaxed),
        tally.ops.load(Ordering::Relaxed),
    );
    // The demo's sessions would otherwise linger for their hour.
    redis.clear().await.map_err(clear)?;
    mongo.clear().await.map_err(clear)?;
    let ok = missing == 0 && behind == 0 && lost_during == 0;
    println!(
        "{}",
        if ok {
            "no session lost"
        } else {
            "SESSIONS LOST"
        }
    );
    Ok(ok)
}
