use std::time::Duration;

use super::*;
use crate::scenario::{builtin, RunConfig, Runner};

async fn short_suite() -> SuiteReport {
    let config = RunConfig::default()
        .seed(5)
        .duration(Duration::from_millis(450));
    let runner = Runner::new(config.clone());
    let scenarios = [
        builtin::baseline(),
        builtin::store_down(),
        // A scenario whose stated limit shows: the canary that drops writes,
        // its lost writes declared a limit.
        builtin::canary_dropped_writes().invariants(crate::invariants::Invariants(vec![
            crate::invariants::Expect::limit(
                crate::invariants::Expect::NoLostWrites,
                "this test's stated limit",
            ),
        ])),
        builtin::baseline().requires(crate::scenario::Requirement::MongoDbUrl),
    ];
    let results = runner.run_all(&scenarios, |_, _| {}, |_| {}).await.unwrap();
    SuiteReport::new(config.seed, config.duration, SystemTime::now(), results)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_round_trips_and_files_are_written() {
    let report = short_suite().await;
    assert!(report.passed(), "{}", report.table());
    let json = report.to_json().unwrap();
    assert_eq!(SuiteReport::from_json(&json).unwrap(), report);
    assert!(SuiteReport::from_json("{\"seed\": 1}").is_err());

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nested/chaos-report");
    let written = report.write(&out).unwrap();
    assert_eq!(written.json, out.join("report.json"));
    let back = std::fs::read_to_string(&written.json).unwrap();
    assert_eq!(SuiteReport::from_json(&back).unwrap(), report);
    // Skipped scenarios get no picture.
    assert_eq!(
        written.pictures,
        vec![
            out.join("baseline.svg"),
            out.join("store-down.svg"),
            out.join("canary-dropped-writes.svg")
        ]
    );
    let svg = std::fs::read_to_string(out.join("store-down.svg")).unwrap();
    assert!(svg.len() > 2_000, "{}", svg.len());
    assert!(svg.starts_with("<svg"), "{}", &svg[..50]);
    // Text is real SVG text, not glyph paths.
    assert!(svg.contains("<text"));
    assert!(svg.contains("store-down - PASS - "));
    assert!(svg.contains("stack: fault(memory); seed "));
    assert!(svg.contains("faults (red lines): "));
    let limit = std::fs::read_to_string(out.join("canary-dropped-writes.svg")).unwrap();
    assert!(limit.contains("canary-dropped-writes - LIMIT - "));
    assert!(limit.contains("stack: "));
    assert!(svg.contains("fault window"));
    assert!(std::fs::read_to_string(&written.table)
        .unwrap()
        .contains("store-down"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_shows_every_scenario_and_the_seed() {
    let report = short_suite().await;
    let table = report.table();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("scenario"));
    assert!(lines[0].contains("during p50/p99/max ms"));
    assert!(lines[2].starts_with("baseline ") && lines[2].contains("PASS"));
    assert!(lines[3].starts_with("store-down ") && lines[3].contains("PASS"));
    assert!(lines[4].starts_with("canary-dropped-writes ") && lines[4].contains("LIMIT"));
    assert!(lines[5].starts_with("baseline ") && lines[5].contains("SKIP"));
    assert!(table.contains("skipped: needs --mongodb URL"));
    assert!(table.contains("store down; "));
    assert!(table.contains("errors by kind: unavailable "));
    assert!(!table.contains("unchecked"));
    assert!(table.contains("known limit: no lost writes showed (measured: "));
    assert!(table.contains("example: lost write: key #"));
    assert!(table.contains("4 scenarios: 3 passed, 0 failed, 1 skipped. seed 5"));
    // Columns line up: every verdict starts under its header.
    let verdict_col = lines[0].find("verdict").unwrap();
    for (row, want) in lines[2..6].iter().zip(["PASS", "PASS", "LIMIT", "SKIP"]) {
        assert_eq!(&row[verdict_col..verdict_col + want.len()], want, "{row}");
    }
}

#[test]
fn milliseconds_format_by_size() {
    assert_eq!(fmt_ms(Duration::ZERO), "0");
    assert_eq!(fmt_ms(Duration::from_micros(25)), "0.025");
    assert_eq!(fmt_ms(Duration::from_micros(12_340)), "12.3");
    assert_eq!(fmt_ms(Duration::from_millis(2_000)), "2000");
    assert_eq!(file_stem("a b/c"), "a_b_c");
}
