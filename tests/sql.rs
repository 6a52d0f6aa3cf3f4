//! The SQL stores: the conformance suite on the shared PostgreSQL
//! (`STORESTACK_POSTGRES_URL`) and MariaDB (`STORESTACK_MYSQL_URL`) servers,
//! on a SQLite file and in memory; then what is particular to SQL (expired
//! rows the prune task has not deleted, the prune task, the table layout,
//! table creation racing with itself, errors).
//!
//! Every store has a table of its own and a mock clock: expiry is decided
//! by the store's clock, never the server's, so the expiry cases run
//! instantly.

use std::time::{Duration, Instant};

use storestack::clock::{Clock, MockClock};
use storestack::{ErrorKind, Record, Store};
use storestack_sql::sqlx;
use storestack_sql::{Backend, MySqlStore, PgStore, SqlConfig, SqlStore, SqliteStore};
use storestack_testkit::{conformance_suite, Fixture};
use storestack_tests::sql;

async fn pg_fixture() -> Option<Fixture> {
    let clock = MockClock::new();
    let store = sql::pg(|c| c.clock(clock.clone())).await?;
    Some(sql::fixture(store, clock))
}

async fn mysql_fixture() -> Option<Fixture> {
    let clock = MockClock::new();
    let store = sql::mysql(|c| c.clock(clock.clone())).await?;
    Some(sql::fixture(store, clock))
}

async fn sqlite_file_fixture() -> Option<Fixture> {
    let clock = MockClock::new();
    let (store, dir) = sql::sqlite_file(|c| c.clock(clock.clone())).await;
    // The file must outlive the case; the OS temp dir is cleaned for us.
    std::mem::forget(dir);
    Some(sql::fixture(store, clock))
}

async fn sqlite_memory_fixture() -> Option<Fixture> {
    let clock = MockClock::new();
    let config = SqlConfig::sqlite_memory()
        .max_value_len(sql::MAX_VALUE)
        .clock(clock.clone());
    let store = SqliteStore::connect(config)
        .await
        .expect("in-memory sqlite");
    Some(sql::fixture(store, clock))
}

conformance_suite!(postgres_conformance, pg_fixture());
conformance_suite!(mysql_conformance, mysql_fixture());
conformance_suite!(sqlite_file_conformance, sqlite_file_fixture());
conformance_suite!(sqlite_memory_conformance, sqlite_memory_fixture());

/// The three stores of one test, each with its own clock; SQLite's file
/// directory rides along.
struct Three {
    pg: Option<(PgStore, MockClock)>,
    mysql: Option<(MySqlStore, MockClock)>,
    sqlite: (SqliteStore, MockClock),
    _dir: tempfile::TempDir,
}

async fn three(config: impl Fn(SqlConfig) -> SqlConfig) -> Three {
    let (c1, c2, c3) = (MockClock::new(), MockClock::new(), MockClock::new());
    let pg = sql::pg(|c| config(c).clock(c1.clone())).await;
    let mysql = sql::mysql(|c| config(c).clock(c2.clone())).await;
    let (sqlite, dir) = sql::sqlite_file(|c| config(c).clock(c3.clone())).await;
    Three {
        pg: pg.map(|s| (s, c1)),
        mysql: mysql.map(|s| (s, c2)),
        sqlite: (sqlite, c3),
        _dir: dir,
    }
}

/// Runs `check` on each store that is there.
macro_rules! on_each {
    ($three:expr, |$store:ident, $clock:ident| $body:block) => {{
        let three = $three;
        if let Some(($store, $clock)) = &three.pg {
            $body
        }
        if let Some(($store, $clock)) = &three.mysql {
            $body
        }
        {
            let ($store, $clock) = &three.sqlite;
            $body
        }
    }};
}

fn now_plus(clock: &MockClock, d: Duration) -> std::time::SystemTime {
    clock.now() + d
}

async fn rows<B: Backend>(store: &SqlStore<B>) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {}", quoted(store));
    raw_count(store, &sql).await
}

fn quoted<B: Backend>(store: &SqlStore<B>) -> String {
    if store.name() == "mysql" {
        format!("`{}`", store.config().table)
    } else {
        format!("\"{}\"", store.config().table)
    }
}

async fn raw_count<B: Backend>(store: &SqlStore<B>, sql: &str) -> i64 {
    use std::any::Any;
    let pool: &dyn Any = store.pool();
    if let Some(p) = pool.downcast_ref::<sqlx::PgPool>() {
        sqlx::query_scalar(sql).fetch_one(p).await.unwrap()
    } else if let Some(p) = pool.downcast_ref::<sqlx::MySqlPool>() {
        sqlx::query_scalar(sql).fetch_one(p).await.unwrap()
    } else if let Some(p) = pool.downcast_ref::<sqlx::SqlitePool>() {
        sqlx::query_scalar(sql).fetch_one(p).await.unwrap()
    } else {
        unreachable!()
    }
}

async fn scan_all(store: &dyn Store, prefix: &str) -> Vec<String> {
    storestack_testkit::cases::scan_all(store, prefix, 3).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_unpruned_rows_are_invisible_and_do_not_block_create() {
    on_each!(three(|c| c).await, |store, clock| {
        let ttl = Duration::from_secs(60);
        store
            .set("old", Record::expiring_at("stale", now_plus(clock, ttl)))
            .await
            .unwrap();
        store
            .set("keep", Record::never_expiring("live"))
            .await
            .unwrap();
        clock.advance(ttl * 3);
        assert_eq!(rows(store).await, 2, "{}: nothing pruned yet", store.name());

        assert_eq!(store.get("old").await.unwrap(), None);
        assert_eq!(store.len().await.unwrap(), 1);
        assert_eq!(scan_all(store, "").await, ["keep"]);
        assert!(!store.touch("old", None).await.unwrap(), "touch revived it");
        assert!(
            !store.delete("old").await.unwrap(),
            "delete of an expired row"
        );
        assert!(store
            .create("old", Record::expiring_at("fresh", now_plus(clock, ttl)))
            .await
            .unwrap());
        assert_eq!(store.get("old").await.unwrap().unwrap().value, "fresh");
        assert!(!store
            .create("old", Record::never_expiring("again"))
            .await
            .unwrap());
        assert!(!store
            .create("keep", Record::never_expiring("again"))
            .await
            .unwrap());
        assert_eq!(store.get("keep").await.unwrap().unwrap().value, "live");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_over_an_expired_row_admit_one() {
    on_each!(three(|c| c).await, |store, clock| {
        let shared: storestack::SharedStore = std::sync::Arc::new(store.clone());
        storestack_tests::creates_over_an_expired_record_admit_one(shared, clock).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_have_the_documented_layout() {
    let at_ms: i64 = 4_102_444_800_123;
    let at = std::time::UNIX_EPOCH + Duration::from_millis(at_ms as u64);
    on_each!(three(|c| c).await, |store, _clock| {
        store
            .set("dated", Record::expiring_at(&b"\x00\xff"[..], at))
            .await
            .unwrap();
        store
            .set("forever", Record::never_expiring("v"))
            .await
            .unwrap();
        let t = quoted(store);
        let (e, k) = if store.name() == "mysql" {
            ("`expires_at`", "`key`")
        } else {
            ("\"expires_at\"", "\"key\"")
        };
        let dated = format!("SELECT COUNT(*) FROM {t} WHERE {k} = 'dated' AND {e} = {at_ms}");
        assert_eq!(raw_count(store, &dated).await, 1, "{}", store.name());
        let forever = format!("SELECT COUNT(*) FROM {t} WHERE {k} = 'forever' AND {e} IS NULL");
        assert_eq!(raw_count(store, &forever).await, 1, "{}", store.name());
        let got = store.get("dated").await.unwrap().unwrap();
        assert_eq!(&got.value[..], b"\x00\xff");
        assert_eq!(got.expires_at, Some(at));
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_deletes_expired_rows_in_batches_and_nothing_else() {
    on_each!(three(|c| c.prune_batch(3)).await, |store, clock| {
        let ttl = Duration::from_secs(60);
        for i in 0..10 {
            let r = Record::expiring_at("x", now_plus(clock, ttl));
            store.set(&format!("short:{i}"), r).await.unwrap();
        }
        store
            .set("long", Record::expiring_at("y", now_plus(clock, ttl * 10)))
            .await
            .unwrap();
        store
            .set("never", Record::never_expiring("z"))
            .await
            .unwrap();
        assert_eq!(
            store.prune_expired().await.unwrap(),
            0,
            "nothing expired yet"
        );
        clock.advance(ttl * 2);
        assert_eq!(store.prune_expired().await.unwrap(), 10, "{}", store.name());
        assert_eq!(rows(store).await, 2);
        assert_eq!(store.len().await.unwrap(), 2);
        assert!(store.get("long").await.unwrap().is_some());
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prune_task_runs_on_its_interval_and_stops_with_the_store() {
    let every = Duration::from_millis(100);
    let (store, _dir) = sql::sqlite_file(|c| c.prune_interval(Some(every))).await;
    let raw = store.pool().clone();
    let table = quoted(&store);
    let insert_expired = format!(
        "INSERT INTO {table} (\"key\", \"value\", \"expires_at\") VALUES ('gone', x'00', 1)"
    );
    let count = format!("SELECT COUNT(*) FROM {table}");
    sqlx::query(&insert_expired).execute(&raw).await.unwrap();
    store
        .set("kept", Record::never_expiring("v"))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n: i64 = sqlx::query_scalar(&count).fetch_one(&raw).await.unwrap();
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the prune task never ran");
        tokio::time::sleep(every / 4).await;
    }
    // Dropped, it prunes no more: an expired row stays through several
    // intervals.
    drop(store);
    sqlx::query(&insert_expired).execute(&raw).await.unwrap();
    tokio::time::sleep(every * 4).await;
    let n: i64 = sqlx::query_scalar(&count).fetch_one(&raw).await.unwrap();
    assert_eq!(n, 2, "the prune task outlived its store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_connects_create_one_table_at_once() {
    async fn race<B: Backend>(url: String) -> Option<()> {
        let config = sql::config(url);
        // One probe, so a missing server skips rather than failing 8 times.
        let probe = SqlStore::<B>::connect(config.clone().create_table(false)).await;
        if let Err(e) = probe {
            storestack_testkit::server_missing(e.store(), &e)?;
        }
        let connects: Vec<_> = (0..8)
            .map(|_| tokio::spawn(SqlStore::<B>::connect(config.clone())))
            .collect();
        let mut stores = Vec::new();
        for c in connects {
            stores.push(c.await.unwrap().expect("concurrent connect"));
        }
        stores[0]
            .set("k", Record::never_expiring("v"))
            .await
            .unwrap();
        assert!(stores[7].get("k").await.unwrap().is_some());
        Some(())
    }
    race::<sqlx::Postgres>(sql::pg_url()).await;
    race::<sqlx::MySql>(sql::mysql_url()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = SqlConfig::sqlite_file(dir.path().join("s.db"));
    race::<sqlx::Sqlite>(file.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlogged_tables_are_postgres_only() {
    if let Some(store) = sql::pg(|c| c.unlogged(true)).await {
        let persistence = format!(
            "SELECT COUNT(*) FROM pg_class WHERE relname = '{}' AND relpersistence = 'u'",
            store.config().table
        );
        assert_eq!(raw_count(&store, &persistence).await, 1);
        store.set("k", Record::never_expiring("v")).await.unwrap();
    }
    let err = MySqlStore::connect(sql::config(sql::mysql_url()).unlogged(true))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = SqliteStore::connect(SqlConfig::sqlite_memory().unlogged(true))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_keeps_records_across_restarts_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let config = SqlConfig::sqlite_file(dir.path().join("sessions.db")).prune_interval(None);
    let store = SqliteStore::connect(config.clone()).await.unwrap();
    store
        .set(
            "sess:1",
            Record::expiring_after("kept", Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    store.pool().close().await;
    drop(store);
    let reopened = SqliteStore::connect(config).await.unwrap();
    assert_eq!(reopened.get("sess:1").await.unwrap().unwrap().value, "kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configurations_are_refused_before_connecting() {
    for table in ["", "a-b", "x;drop table y", "a.b.c", "1st"] {
        let config = SqlConfig::new("postgres://127.0.0.1:1/db").table(table);
        let err = PgStore::connect(config).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{table:?}");
    }
    let err = SqliteStore::connect(SqlConfig::sqlite_memory().prune_batch(0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = PgStore::connect(SqlConfig::new("postgres://h:notaport/db"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_fails_fast_and_transiently() {
    let started = Instant::now();
    let config = SqlConfig::new("postgres://postgres@127.0.0.1:1/test")
        .acquire_timeout(Duration::from_millis(300));
    let err = PgStore::connect(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let config =
        SqlConfig::new("mysql://root@127.0.0.1:1/test").acquire_timeout(Duration::from_millis(300));
    let err = MySqlStore::connect(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_an_error_that_is_not_transient() {
    on_each!(three(|c| c.create_table(false)).await, |store, _clock| {
        let err = store.get("k").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal, "{}: {err}", store.name());
        assert!(!err.is_transient());
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_prefixes_scan_exactly_their_keys() {
    on_each!(three(|c| c).await, |store, _clock| {
        storestack_tests::unicode_prefixes_scan_exactly_their_keys(store).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_leaves_other_tables_alone() {
    let Some(a) = sql::pg(|c| c).await else {
        return;
    };
    let b = PgStore::connect(sql::config(sql::pg_url())).await.unwrap();
    a.set("k", Record::never_expiring("a")).await.unwrap();
    b.set("k", Record::never_expiring("b")).await.unwrap();
    a.clear().await.unwrap();
    assert_eq!(a.len().await.unwrap(), 0);
    assert_eq!(b.get("k").await.unwrap().unwrap().value, "b");
}
