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
    for name in [
        "baseline ",
        "primary-killed ",
        "half-open-storm ",
        "redis-blackholed ",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(name)),
            "{name}: {stdout}"
        );
    }
    let canary = stdout
        .lines()
        .find(|l| l.starts_with("canary-dropped-writes "))
        .unwrap();
    assert!(canary.ends_with("(runs only when named)"), "{canary}");
}

#[test]
fn runs_a_short_suite_and_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("report");
    let out = chaos()
        .args(["--seed", "123", "--duration", "0.6", "--out"])
        .arg(&out_dir)
        .args(["--scenario", "baseline", "--scenario", "primary-killed"])
        .args(["--scenario", "redis-blackholed"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("seed 123 (replay with --seed 123)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("3 scenarios: 2 passed, 0 failed, 1 skipped"),
        "{stdout}"
    );
    // Real-backend scenarios without a backend: skipped, with why.
    assert!(
        stdout.contains("skipped: needs --redis URL, or --real with redis-server installed"),
        "{stdout}"
    );
    // Without a terminal, one plain line per scenario on stderr.
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("primary-killed ") && l.contains(" PASS ")),
        "{stderr}"
    );
    let json = std::fs::read_to_string(out_dir.join("report.json")).unwrap();
    let report = storestack_chaos::report::SuiteReport::from_json(&json).unwrap();
    assert_eq!(report.seed, 123);
    assert_eq!(report.scenarios.len(), 3);
    let killed = &report.scenarios[1];
    assert_eq!(killed.verdict.consistency.as_ref().unwrap().lost, 0);
    assert!(out_dir.join("primary-killed.svg").is_file());
}

#[test]
fn a_broken_stack_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = chaos()
        .args(["--seed", "7", "--duration", "0.5", "--out"])
        .arg(dir.path())
        .args(["--scenario", "canary-dropped-writes"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("VIOLATED: no lost writes (measured: "),
        "{stdout}"
    );
    assert!(stdout.contains("VIOLATED: no stale reads"), "{stdout}");
    assert!(stdout.contains("example: lost write: key #"), "{stdout}");
    assert!(
        stdout.contains("1 scenarios: 0 passed, 1 failed, 0 skipped"),
        "{stdout}"
    );
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
