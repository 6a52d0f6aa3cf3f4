//! PgStore through an outage of a PostgreSQL the test starts itself
//! (`initdb` / `pg_ctl` in a temporary directory, a free port): killed
//! with SIGKILL under a running store, every call fails transiently within
//! its deadline; restarted, the same store works again by itself, with the
//! committed rows of a logged table and none of an `UNLOGGED` one (crash
//! recovery empties those: the documented trade-off). Frozen with
//! SIGSTOP, calls time out at the statement deadline.

use std::time::{Duration, Instant};

use storestack::{Record, Store};
use storestack_sql::{PgStore, SqlConfig};
use storestack_testkit::server_missing;
use storestack_tests::sql::OwnPostgres;

const ACQUIRE: Duration = Duration::from_millis(500);
const STATEMENT: Duration = Duration::from_secs(1);

async fn store(url: &str, table: &str, unlogged: bool) -> PgStore {
    let config = SqlConfig::new(url)
        .table(table)
        .unlogged(unlogged)
        .acquire_timeout(ACQUIRE)
        .statement_timeout(STATEMENT)
        .max_connections(4)
        .prune_interval(None);
    PgStore::connect(config).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_fails_calls_fast_and_the_same_store_recovers() {
    let server = match OwnPostgres::start() {
        Ok(server) => server,
        Err(why) => {
            server_missing("a PostgreSQL of the test's own (initdb, pg_ctl)", &why);
            return;
        }
    };
    let logged = store(&server.url(), "sessions", false).await;
    let unlogged = store(&server.url(), "sessions_unlogged", true).await;
    for s in [&logged, &unlogged] {
        s.set("before", Record::never_expiring("v")).await.unwrap();
    }

    server.kill();
    for i in 0..5 {
        let started = Instant::now();
        let err = logged.get("before").await.unwrap_err();
        let took = started.elapsed();
        assert!(err.is_transient(), "call {i}: {err:?}");
        assert!(
            took < STATEMENT + Duration::from_millis(500),
            "call {i} took {took:?}"
        );
        let err = logged
            .set("during", Record::never_expiring("v"))
            .await
            .unwrap_err();
        assert!(err.is_transient(), "call {i}: {err:?}");
    }

    server.restart().expect("restart");
    let restarted = Instant::now();
    let deadline = restarted + Duration::from_secs(10);
    let recovered = loop {
        match logged.get("before").await {
            Ok(found) => break found,
            Err(e) if e.is_transient() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no recovery within 10 s: {e:?}"),
        }
    };
    eprintln!("recovered {:?} after the restart", restarted.elapsed());
    assert_eq!(
        recovered.map(|r| r.value),
        Some("v".into()),
        "a committed row was lost"
    );
    logged
        .set("after", Record::never_expiring("w"))
        .await
        .unwrap();
    assert_eq!(logged.len().await.unwrap(), 2);
    // Crash recovery resets unlogged tables to empty.
    assert_eq!(unlogged.get("before").await.unwrap(), None);
    assert_eq!(unlogged.len().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_times_calls_out_at_the_deadline() {
    let server = match OwnPostgres::start() {
        Ok(server) => server,
        Err(why) => {
            server_missing("a PostgreSQL of the test's own (initdb, pg_ctl)", &why);
            return;
        }
    };
    let store = store(&server.url(), "sessions", false).await;
    store.set("k", Record::never_expiring("v")).await.unwrap();
    server.pause();
    for i in 0..3 {
        let started = Instant::now();
        let err = store.get("k").await.unwrap_err();
        let took = started.elapsed();
        assert!(err.is_transient(), "call {i}: {err:?}");
        assert!(
            took < STATEMENT + Duration::from_millis(500),
            "call {i} took {took:?}"
        );
    }
    server.resume();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.get("k").await {
            Ok(found) => {
                assert_eq!(found.map(|r| r.value), Some("v".into()));
                break;
            }
            Err(e) if e.is_transient() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no recovery within 10 s: {e:?}"),
        }
    }
}
