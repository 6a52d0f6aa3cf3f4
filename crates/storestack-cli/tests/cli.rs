//! The `storestack` binary without servers: bad URLs, unreachable stores,
//! checkpoint rules, exit statuses, and a demo migration between memory
//! stores.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use storestack::layers::migration::bulk::{Checkpoint as _, CheckpointState, FileCheckpoint};
use storestack_cli::{EXIT_OK, EXIT_STORE, EXIT_USAGE};
use storestack_tests::redis::free_port;

const SECRET: &str = "hunter2";

fn storestack(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_storestack"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run storestack")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `migrate` with `args`, expects `code`, returns (stdout, stderr),
/// and checks that no output shows the password.
fn migrate(dir: &Path, args: &[&str], code: u8) -> (String, String) {
    let mut all = vec!["migrate"];
    all.extend_from_slice(args);
    let out = storestack(dir, &all);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(i32::from(code)),
        "storestack {all:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "the password leaked:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

/// The value of a summary line `  name   value`.
fn figure<'a>(summary: &'a str, name: &str) -> &'a str {
    summary
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(name).map(str::trim))
        .unwrap_or_else(|| panic!("no {name} line in:\n{summary}"))
}

#[test]
fn bad_urls_are_usage_errors_that_never_quote_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let to = "memory://";
    for (from, expected) in [
        ("ftp://u:hunter2@h/db", "unknown scheme \"ftp\""),
        ("postgres://u:hunter2@/db", "empty host"),
        ("mysql://u:hunter2@h/db?table=", "table must not be empty"),
        ("localhost:6379", "not a url"),
        (
            "redis://:hunter2@h:6379?pool=3",
            "take no \"pool\" parameter",
        ),
        ("redis://:hunter2@h:6379/zero", "database number"),
        ("mongodb://u:hunter2@h:27017/app", "names no collection"),
        ("mongodb://u:hunter2@h:27017", "names no database"),
        ("memory://?demo=lots", "demo must be a number"),
    ] {
        let (_, stderr) = migrate(d, &["--from", from, "--to", to], EXIT_USAGE);
        assert!(stderr.contains("--from: "), "{from}: {stderr}");
        assert!(stderr.contains(expected), "{from}: {stderr}");
    }
    let (_, stderr) = migrate(d, &["--from", "memory://", "--to", "ftp://x"], EXIT_USAGE);
    assert!(stderr.contains("--to: unknown scheme"), "{stderr}");
    // clap's own usage errors share the status.
    let out = storestack(d, &["migrate", "--from", "memory://"]);
    assert_eq!(out.status.code(), Some(i32::from(EXIT_USAGE)));
    let same = "redis://:hunter2@h:1?prefix=a:";
    let (_, stderr) = migrate(d, &["--from", same, "--to", same], EXIT_USAGE);
    assert!(stderr.contains("the same store"), "{stderr}");
    assert!(
        std::fs::read_dir(d).unwrap().next().is_none(),
        "wrote a file"
    );
}

#[test]
fn unreachable_stores_fail_fast_and_are_named_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let redis = format!("redis://:{SECRET}@127.0.0.1:{port}?prefix=app:");
    let mongo = format!("mongodb://admin:{SECRET}@127.0.0.1:{port}/app/sessions");
    for (args, named) in [
        (
            vec!["--from", &redis, "--to", "memory://"],
            format!("cannot connect to the source store redis://:***@127.0.0.1:{port}"),
        ),
        (
            vec!["--from", "memory://?demo=3", "--to", &mongo, "--connect-timeout", "2"],
            format!("cannot connect to the destination store mongodb://***@127.0.0.1:{port}/app/sessions"),
        ),
    ] {
        let started = Instant::now();
        let (stdout, stderr) = migrate(dir.path(), &args, EXIT_STORE);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(8), "took {took:?}: {stderr}");
        assert!(stderr.contains(&named), "{stderr}");
        assert!(stdout.is_empty(), "{stdout}");
    }
}

#[test]
fn demo_migration_between_memory_stores_prints_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = ["--from", "memory://?demo=5000", "--to", "memory://"];

    let (stdout, stderr) = migrate(d, &[&args[..], &["--dry-run"]].concat(), EXIT_OK);
    assert!(stdout.starts_with("dry run (nothing written) memory://?demo=5000 -> memory://"));
    assert_eq!(figure(&stdout, "would copy"), "5000", "{stdout}");
    assert_eq!(figure(&stdout, "verify"), "skipped (dry run)");
    assert!(stderr.contains("dry run: nothing is written"), "{stderr}");
    assert!(
        std::fs::read_dir(d).unwrap().next().is_none(),
        "dry run wrote a file"
    );

    let (stdout, stderr) = migrate(d, &[&args[..], &["--batch", "700"]].concat(), EXIT_OK);
    assert_eq!(figure(&stdout, "scanned"), "5000", "{stdout}");
    assert_eq!(figure(&stdout, "copied"), "5000", "{stdout}");
    assert_eq!(figure(&stdout, "failed"), "0", "{stdout}");
    assert!(
        figure(&stdout, "verify").starts_with(
            "ok: 1000 of 1000 sampled records equal (0 gone from both); 5000 live records in each store"
        ),
        "{stdout}"
    );
    assert!(
        figure(&stdout, "rate").contains("keys/s (5000 keys in"),
        "{stdout}"
    );
    assert!(stdout.ends_with("result: OK\n"), "{stdout}");
    assert!(
        stderr.contains("checkpoint storestack-migrate-memory-to-memory-"),
        "{stderr}"
    );
    // Not a terminal: no bar drawn; quick runs print no progress line.
    assert!(!stderr.contains('\r'), "{stderr:?}");
    // A finished run removes its checkpoint.
    assert!(
        std::fs::read_dir(d).unwrap().next().is_none(),
        "checkpoint left"
    );

    let (stdout, stderr) = migrate(
        d,
        &[&args[..], &["--quiet", "--no-verify"]].concat(),
        EXIT_OK,
    );
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(figure(&stdout, "verify"), "skipped (--no-verify)");
}

#[tokio::test]
async fn checkpoint_rules_refuse_what_would_silently_restart_or_mix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = d.join("run.ckpt");
    let ckpt = path.to_str().unwrap();
    let args = [
        "--from",
        "memory://?demo=10",
        "--to",
        "memory://",
        "--checkpoint",
        ckpt,
    ];

    let (_, stderr) = migrate(d, &[&args[..], &["--resume"]].concat(), EXIT_USAGE);
    assert!(
        stderr.contains("--resume: there is no checkpoint at"),
        "{stderr}"
    );

    FileCheckpoint::new(&path)
        .save(&CheckpointState::new("redis://elsewhere -> memory://"))
        .await
        .unwrap();
    for extra in [&[][..], &["--resume"]] {
        let (_, stderr) = migrate(d, &[&args[..], extra].concat(), EXIT_USAGE);
        assert!(stderr.contains("belongs to another migration"), "{stderr}");
    }
    // --restart replaces it, and success removes it.
    migrate(d, &[&args[..], &["--restart"]].concat(), EXIT_OK);
    assert!(!path.exists());

    // This migration's own checkpoint: refused without --resume, resumed
    // with it.
    let mut state = CheckpointState::new("memory://?demo=10 -> memory://?demo=0");
    state.counts.scanned = 4;
    FileCheckpoint::new(&path).save(&state).await.unwrap();
    let (_, stderr) = migrate(d, &args, EXIT_USAGE);
    assert!(
        stderr.contains("left a checkpoint in")
            && stderr.contains("(4 keys scanned): pass --resume"),
        "{stderr}"
    );
    let (stdout, _) = migrate(d, &[&args[..], &["--resume"]].concat(), EXIT_OK);
    assert!(
        figure(&stdout, "elapsed").contains("resumed from a checkpoint after 4 keys"),
        "{stdout}"
    );
    assert!(!path.exists());
}
