//! `storestack phase` against the shared Redis server (skipped loudly when
//! absent, failing under `CI=true`).

use std::process::Command;

use storestack::Store as _;
use storestack_cli::{EXIT_OK, EXIT_USAGE};
use storestack_tests::redis;

fn phase(store: &str, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_storestack"))
        .args(["phase", "--store", store, "--key", "ctl:phase"])
        .args(extra)
        .output()
        .expect("run storestack");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn phase_is_shown_switched_and_refused_like_the_handles_do() {
    let Some(store) = redis::shared_store("cli-phase", |c| c).await else {
        return;
    };
    let prefix: String =
        url::form_urlencoded::byte_serialize(store.key_prefix().as_bytes()).collect();
    let url = format!(
        "{}?prefix={prefix}",
        redis::redis_url().trim_end_matches('/')
    );
    let ok = i32::from(EXIT_OK);
    let usage = i32::from(EXIT_USAGE);

    assert_eq!(
        phase(&url, &[]),
        (
            ok,
            "phase old-only (nothing published yet)\n".into(),
            String::new()
        )
    );
    let set = phase(&url, &["--set", "write-both:50", "--settle", "0"]);
    assert_eq!(set.0, ok, "{set:?}");
    assert_eq!(set.1, "phase write-both:50 (high-water 50%)\n");
    assert_eq!(phase(&url, &[]).1, "phase write-both:50 (high-water 50%)\n");

    let (code, _, stderr) = phase(&url, &["--set", "new-only"]);
    assert_eq!(code, usage, "{stderr}");
    let (code, _, stderr) = phase(&url, &["--set", "half"]);
    assert_eq!(code, usage);
    assert!(stderr.contains("unknown migration phase"), "{stderr}");
    assert_eq!(phase(&url, &[]).1, "phase write-both:50 (high-water 50%)\n");

    let forced = phase(&url, &["--set", "new-only", "--force", "--settle", "0"]);
    assert_eq!(forced.1, "phase new-only (high-water 100%)\n", "{forced:?}");
    store.clear().await.unwrap();
}
