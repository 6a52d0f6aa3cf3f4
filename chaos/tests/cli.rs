//! The binary, end to end: `storestack-chaos` as a user runs it.

use std::process::Command;

fn chaos() -> Command {
    Command::new(env!("CARGO_BIN_EXE_storestack-chaos"))
}

#[test]
fn lists_the_scenarios() {
    let out = chaos().arg("--list").output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.lines().any(|l| l.starts_with("baseline ")));
    assert!(stdout.lines().any(|l| l.starts_with("store-down ")));
}

#[test]
fn runs_a_short_suite_and_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("report");
    let out = chaos()
        .args(["--seed", "123", "--duration", "0.3", "--out"])
        .arg(&out_dir)
        .args(["--redis", "redis://127.0.0.1:1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("seed 123 (replay with --seed 123)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 scenarios: 2 passed, 0 failed, 0 skipped"),
        "{stdout}"
    );
    // Without a terminal, one plain line per scenario on stderr.
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("store-down  PASS"), "{stderr}");
    let json = std::fs::read_to_string(out_dir.join("report.json")).unwrap();
    let report = storestack_chaos::report::SuiteReport::from_json(&json).unwrap();
    assert_eq!(report.seed, 123);
    assert_eq!(report.scenarios.len(), 2);
    assert!(out_dir.join("store-down.svg").is_file());
}

#[test]
fn bad_arguments_fail_with_code_2() {
    let out = chaos().args(["--scenario", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("no scenario named \"nope\""), "{stderr}");

    let out = chaos().args(["--duration", "-1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
