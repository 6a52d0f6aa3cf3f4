#![allow(missing_docs)] // criterion_group! generates undocumented items
//! get / set / create of 2 KiB values through the SQL stores and through
//! the same statements sent with sqlx directly on the store's own pool, side
//! by side: the difference is what the store adds (argument checks, the
//! deadline, the boxed trait call, building the record).
//!
//! ```sh
//! cargo bench -p storestack-sql --all-features -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! PostgreSQL and MariaDB are the machine's (`STORESTACK_POSTGRES_URL`,
//! `STORESTACK_MYSQL_URL`, defaults as in the tests); a server that does not
//! answer is skipped with a notice. SQLite runs on a temporary file.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion};
use storestack::bytes::Bytes;
use storestack::{Record, Store};
use storestack_sql::{sqlx, SqlConfig, SqlStore};

const VALUE_LEN: usize = 2048;
const KEYS: u64 = 1000;
const TTL: Duration = Duration::from_secs(3600);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The raw statements of one database, as the store writes them.
struct Raw {
    get: String,
    set: String,
    create: String,
}

fn raw(db: &str, table: &str) -> Raw {
    let (q, p): (&str, fn(usize) -> String) = match db {
        "postgres" => ("\"", |n| format!("${n}")),
        "mysql" => ("`", |_| "?".to_owned()),
        _ => ("\"", |n| format!("?{n}")),
    };
    let (t, k, v, e) = (
        format!("{q}{table}{q}"),
        format!("{q}key{q}"),
        format!("{q}value{q}"),
        format!("{q}expires_at{q}"),
    );
    let insert = format!(
        "INSERT INTO {t} ({k}, {v}, {e}) VALUES ({}, {}, {})",
        p(1),
        p(2),
        p(3)
    );
    let (set, create) = if db == "mysql" {
        (
            format!("{insert} ON DUPLICATE KEY UPDATE {v} = VALUES({v}), {e} = VALUES({e})"),
            insert.clone(),
        )
    } else {
        let upsert = format!(
            "INSERT INTO {t} AS cur ({k}, {v}, {e}) VALUES ({}, {}, {}) \
             ON CONFLICT ({k}) DO UPDATE SET {v} = excluded.{v}, {e} = excluded.{e}",
            p(1),
            p(2),
            p(3)
        );
        (
            upsert.clone(),
            format!("{upsert} WHERE cur.{e} <= {}", p(4)),
        )
    };
    Raw {
        get: format!(
            "SELECT {v}, {e} FROM {t} WHERE {k} = {} AND ({e} IS NULL OR {e} > {})",
            p(1),
            p(2)
        ),
        set,
        create,
    }
}

/// Runs the three ops through the store and raw, for one database.
macro_rules! bench_db {
    ($c:expr, $db:ty, $name:literal, $config:expr, key_as_bytes = $kb:literal) => {{
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let config: SqlConfig = $config;
        match rt.block_on(SqlStore::<$db>::connect(config.clone())) {
            Err(e) => eprintln!("{}: skipped ({e})", $name),
            Ok(store) => {
                let value: Bytes = (0..VALUE_LEN).map(|i| (i * 131 % 251) as u8).collect();
                let sql = raw($name, &config.table);
                let pool = store.pool().clone();
                rt.block_on(async {
                    for side in ["r", "s"] {
                        for n in 0..KEYS {
                            let r = Record::expiring_after(value.clone(), TTL);
                            store.set(&format!("{side}:{n}"), r).await.unwrap();
                        }
                    }
                });
                let next = AtomicU64::new(0);
                let key =
                    |side: &str| format!("{side}:{}", next.fetch_add(1, Ordering::Relaxed) % KEYS);
                let fresh = AtomicU64::new(0);
                let new_key =
                    |side: &str| format!("{side}:new:{}", fresh.fetch_add(1, Ordering::Relaxed));
                // MySQL's key column is binary: bind bytes, as the store does.
                macro_rules! bind_key {
                    ($q:expr, $key:expr) => {{
                        let key: String = $key;
                        if $kb {
                            $q.bind(key.into_bytes())
                        } else {
                            $q.bind(key)
                        }
                    }};
                }
                let mut group = $c.benchmark_group(concat!($name, " 2KiB"));
                group.bench_function("get/raw", |b| {
                    b.to_async(&rt).iter(|| async {
                        let q = sqlx::query_as::<_, (Vec<u8>, Option<i64>)>(&sql.get);
                        let q = bind_key!(q, key("r"));
                        let (v, _) = q.bind(now_ms()).fetch_one(&pool).await.unwrap();
                        assert_eq!(v.len(), VALUE_LEN);
                    })
                });
                group.bench_function("get/store", |b| {
                    b.to_async(&rt).iter(|| async {
                        let r = store.get(&key("s")).await.unwrap().unwrap();
                        assert_eq!(r.value.len(), VALUE_LEN);
                    })
                });
                group.bench_function("set/raw", |b| {
                    b.to_async(&rt).iter(|| async {
                        let q = sqlx::query(&sql.set);
                        let q = bind_key!(q, key("r"));
                        let at = now_ms() + TTL.as_millis() as i64;
                        q.bind(&value[..])
                            .bind(Some(at))
                            .execute(&pool)
                            .await
                            .unwrap();
                    })
                });
                group.bench_function("set/store", |b| {
                    b.to_async(&rt).iter(|| async {
                        let r = Record::expiring_after(value.clone(), TTL);
                        store.set(&key("s"), r).await.unwrap();
                    })
                });
                group.bench_function("create/raw", |b| {
                    b.to_async(&rt).iter(|| async {
                        let q = sqlx::query(&sql.create);
                        let q = bind_key!(q, new_key("r"));
                        let now = now_ms();
                        let q = q.bind(&value[..]).bind(Some(now + TTL.as_millis() as i64));
                        let q = if $name == "mysql" { q } else { q.bind(now) };
                        assert_eq!(q.execute(&pool).await.unwrap().rows_affected(), 1);
                    })
                });
                group.bench_function("create/store", |b| {
                    b.to_async(&rt).iter(|| async {
                        let r = Record::expiring_after(value.clone(), TTL);
                        assert!(store.create(&new_key("s"), r).await.unwrap());
                    })
                });
                group.finish();
                rt.block_on(async {
                    let q = if $kb { "`" } else { "\"" };
                    let drop = format!("DROP TABLE {q}{}{q}", config.table);
                    let _ = sqlx::raw_sql(&drop).execute(&pool).await;
                });
            }
        }
    }};
}

fn bench_config(url: String) -> SqlConfig {
    SqlConfig::new(url)
        .table(format!("bench_{}", std::process::id()))
        .prune_interval(None)
        .max_connections(2)
}

fn benches(c: &mut Criterion) {
    let pg = std::env::var("STORESTACK_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let my = std::env::var("STORESTACK_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
    bench_db!(
        c,
        sqlx::Postgres,
        "postgres",
        bench_config(pg),
        key_as_bytes = false
    );
    bench_db!(
        c,
        sqlx::MySql,
        "mysql",
        bench_config(my),
        key_as_bytes = true
    );
    let dir = tempfile::tempdir().unwrap();
    let file = SqlConfig::sqlite_file(dir.path().join("bench.db")).url;
    bench_db!(
        c,
        sqlx::Sqlite,
        "sqlite",
        bench_config(file),
        key_as_bytes = false
    );
}

criterion_group!(sql, benches);
criterion_main!(sql);
