//! `storestack migrate` between the SQL stores: a demo memory store into a
//! SQLite file, the file into PostgreSQL, PostgreSQL into MariaDB, each
//! run verified and every record of the last store checked against the
//! first. The servers are the shared ones (`STORESTACK_POSTGRES_URL`,
//! `STORESTACK_MYSQL_URL`); absent, the test skips loudly, or fails under
//! `CI=true`.

use std::path::Path;
use std::process::Command;

use storestack::Store as _;
use storestack_cli::EXIT_OK;
use storestack_sql::{MySqlStore, PgStore, SqlConfig, SqliteStore};
use storestack_tests::sql;

const RECORDS: u64 = 600;

fn migrate(dir: &Path, from: &str, to: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_storestack"))
        .current_dir(dir)
        .args(["migrate", "--from", from, "--to", to, "--quiet"])
        .output()
        .expect("run storestack");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(i32::from(EXIT_OK)),
        "{from} -> {to}\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("copied             {RECORDS}")),
        "{stdout}"
    );
    assert!(stdout.contains("verify             ok"), "{stdout}");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_to_sqlite_to_postgres_to_mariadb() {
    // The servers are reachable, or the test says so (and fails under CI).
    let Some(pg) = sql::pg(|c| c).await else {
        return;
    };
    let Some(my) = sql::mysql(|c| c).await else {
        return;
    };
    let (pg_table, my_table) = (pg.config().table.clone(), my.config().table.clone());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sessions.db");
    let sqlite_url = format!("sqlite://{}?table=web_sessions", file.display());
    let pg_url = format!("{}?table={pg_table}", sql::pg_url());
    let my_url = format!("{}?table={my_table}", sql::mysql_url());

    migrate(
        dir.path(),
        &format!("memory://?demo={RECORDS}"),
        &sqlite_url,
    );
    let summary = migrate(dir.path(), &sqlite_url, &pg_url);
    assert!(summary.starts_with("migrated sqlite://"), "{summary}");
    migrate(dir.path(), &pg_url, &my_url);

    let lite = SqliteStore::connect(SqlConfig::sqlite_file(&file).table("web_sessions"))
        .await
        .unwrap();
    let reread = |c: SqlConfig| c.prune_interval(None);
    let pg = PgStore::connect(reread(pg.config().clone())).await.unwrap();
    let my = MySqlStore::connect(reread(my.config().clone()))
        .await
        .unwrap();
    assert_eq!(my.len().await.unwrap(), RECORDS);
    for i in (0..RECORDS).step_by(97) {
        let key = format!("demo:{i:08}");
        let want = lite.get(&key).await.unwrap().expect("in sqlite");
        assert_eq!(pg.get(&key).await.unwrap(), Some(want.clone()), "{key}");
        assert_eq!(my.get(&key).await.unwrap(), Some(want), "{key}");
    }
}
