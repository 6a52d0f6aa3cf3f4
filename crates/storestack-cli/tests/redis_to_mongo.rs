//! `storestack migrate` from Redis to MongoDB against the real servers
//! (`STORESTACK_REDIS_URL`, `STORESTACK_MONGODB_URL`; skipped loudly when
//! absent, failing under `CI=true`): 100 000 records, the process killed
//! midway, resumed with `--resume`, every record checked.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::TryStreamExt as _;
use storestack::layers::migration::bulk::{Checkpoint as _, CheckpointState, FileCheckpoint};
use storestack::Store as _;
use storestack_mongodb::mongodb::bson::{doc, RawBsonRef, RawDocumentBuf};
use storestack_redis::fred::interfaces::KeysInterface as _;
use storestack_redis::fred::types::{Expiration, Value};
use storestack_tests::{mongo, redis};

const RECORDS: u64 = 100_000;
/// Scanned keys after which the first run is killed.
const KILL_AFTER: u64 = 20_000;

/// Record `i`: a value of 40 to 295 bytes (not UTF-8), and an expiry two
/// to three hours away in whole milliseconds, or none for one in five.
fn record(i: u64, base_ms: i64) -> (Vec<u8>, Option<i64>) {
    let len = 40 + (i % 256) as usize;
    let value = (0..len)
        .map(|j| (i as usize).wrapping_mul(7).wrapping_add(j * 131) as u8 | 0x80)
        .collect();
    let expiry = (i % 5 != 0).then(|| base_ms + 2 * 3_600_000 + (i % 3_600_000) as i64);
    (value, expiry)
}

fn key(i: u64) -> String {
    format!("k{i:06}")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The Redis URL of the store, its prefix percent-encoded.
fn redis_url(prefix: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(prefix.as_bytes()).collect();
    // byte_serialize writes spaces as `+`, which the CLI keeps literally.
    assert!(!prefix.contains(' '));
    format!(
        "{}?prefix={encoded}",
        redis::redis_url().trim_end_matches('/')
    )
}

/// The MongoDB URL of the collection: the server URL with
/// `/DATABASE/COLLECTION` as its path.
fn mongo_url(collection: &str) -> String {
    let server = mongo::url();
    let (base, query) = server.split_once('?').unwrap_or((&server, ""));
    let scheme_end = base.find("://").unwrap() + 3;
    let hosts_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut url = format!("{}/{}/{collection}", &base[..hosts_end], mongo::DATABASE);
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    url
}

fn storestack(args: &[String]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_storestack"));
    command.arg("migrate").args(args);
    command
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Kills `child` once the checkpoint shows `KILL_AFTER` keys scanned;
/// returns the checkpoint as the killed process left it.
async fn kill_midway(mut child: Child, checkpoint: &FileCheckpoint) -> CheckpointState {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Polling another process: real time is the only clock there is.
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let (stdout, stderr) = text(&out);
            panic!("the first run ended ({status}) before it was interrupted:\n{stdout}\n{stderr}");
        }
        let scanned = checkpoint
            .load()
            .await
            .unwrap()
            .map_or(0, |s| s.counts.scanned);
        if scanned >= KILL_AFTER {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no progress after 60 s: {scanned} keys"
        );
    }
    child.kill().unwrap(); // SIGKILL: no chance to save anything more
    child.wait().unwrap();
    checkpoint.load().await.unwrap().expect("a checkpoint")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrates_100k_records_from_redis_to_mongo_across_a_kill() {
    let test_started = Instant::now();
    let Some(source) = redis::shared_store("cli-migrate", |c| c.pool_size(2)).await else {
        return;
    };
    let Some(dest) = mongo::connect_or_skip(mongo::config("cli_migrate")).await else {
        return;
    };
    let collection = dest.config().collection.clone();
    let prefix = source.key_prefix().to_owned();

    // Seed with pipelines of 5000 SET … PXAT.
    let base_ms = now_ms();
    let client = source.pool().next().clone();
    for chunk in (0..RECORDS).collect::<Vec<_>>().chunks(5000) {
        let pipe = client.pipeline();
        for &i in chunk {
            let (value, expiry) = record(i, base_ms);
            let full = format!("{prefix}{}", key(i));
            let () = pipe
                .set(
                    full,
                    value.as_slice(),
                    expiry.map(Expiration::PXAT),
                    None,
                    false,
                )
                .await
                .unwrap();
        }
        let _: Vec<Value> = pipe.all().await.unwrap();
    }
    assert_eq!(source.len().await.unwrap(), RECORDS);
    let seeded = test_started.elapsed();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("redis-to-mongo.ckpt");
    let checkpoint = FileCheckpoint::new(&path);
    let args: Vec<String> = [
        "--from",
        &redis_url(&prefix),
        "--to",
        &mongo_url(&collection),
        "--checkpoint",
        path.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .into();

    // First run, limited so that it cannot finish before it is killed.
    let first_started = Instant::now();
    let child = storestack(&args)
        .args(["--rate", "25000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let killed = kill_midway(child, &checkpoint).await;
    let first = first_started.elapsed();
    assert!(!killed.done, "{killed:?}");
    assert!(
        (KILL_AFTER..RECORDS).contains(&killed.counts.scanned),
        "{killed:?}"
    );

    // Second run: resumes.
    let second_started = Instant::now();
    let out = storestack(&args).arg("--resume").output().unwrap();
    let second = second_started.elapsed();
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "resumed run failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let figure = |name: &str| -> String {
        stdout
            .lines()
            .find_map(|l| {
                l.trim_start()
                    .strip_prefix(name)
                    .map(|v| v.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no {name} line in:\n{stdout}"))
    };
    assert!(
        figure("elapsed").contains(&format!(
            "resumed from a checkpoint after {} keys",
            killed.counts.scanned
        )),
        "{stdout}"
    );
    // This run scanned only what the first had not (plus a page or so of
    // SCAN's repeats), not everything from zero.
    let rate_line = figure("rate");
    let run_scanned: u64 = rate_line
        .split_once('(')
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{rate_line}"));
    assert!(
        run_scanned + killed.counts.scanned >= RECORDS && run_scanned <= RECORDS - KILL_AFTER / 2,
        "resumed run scanned {run_scanned} after {}",
        killed.counts.scanned
    );
    let copied: u64 = figure("copied").parse().unwrap();
    assert!((RECORDS - 1000..=RECORDS).contains(&copied), "{stdout}");
    assert_eq!(figure("failed"), "0");
    assert!(figure("verify").starts_with("ok: "), "{stdout}");
    assert!(stdout.ends_with("result: OK\n"), "{stdout}");
    assert!(!path.exists(), "a finished run removes its checkpoint");

    // Every record in MongoDB, byte for byte, expiry within 1 s.
    let mut docs = dest.collection().find(doc! {}).await.unwrap();
    let mut seen = vec![false; RECORDS as usize];
    while let Some(doc) = docs.try_next().await.unwrap() {
        let doc: RawDocumentBuf = doc;
        let id = doc.get_str("_id").unwrap();
        let i: u64 = id.strip_prefix('k').unwrap().parse().unwrap();
        assert!(
            !std::mem::replace(&mut seen[i as usize], true),
            "{id} twice"
        );
        let (value, expiry) = record(i, base_ms);
        assert_eq!(doc.get_binary("value").unwrap().bytes, value, "{id}");
        let stored = match doc.get("expires_at").unwrap() {
            Some(RawBsonRef::DateTime(at)) => Some(at.timestamp_millis()),
            Some(RawBsonRef::Null) | None => None,
            other => panic!("{id}: expiry {other:?}"),
        };
        match (stored, expiry) {
            (Some(a), Some(b)) => assert!((a - b).abs() <= 1000, "{id}: {a} vs {b}"),
            (a, b) => assert_eq!(a, b, "{id}"),
        }
    }
    let missing = seen.iter().filter(|s| !**s).count();
    assert_eq!(missing, 0, "records missing from MongoDB");

    source.clear().await.unwrap();
    dest.collection().drop().await.unwrap();
    eprintln!(
        "redis -> mongo, {RECORDS} records: seeded in {seeded:.1?}, first run killed after \
         {} keys at {first:.1?}, resumed run {second:.1?} ({rate_line}), whole test {:.1?}",
        killed.counts.scanned,
        test_started.elapsed()
    );
}
