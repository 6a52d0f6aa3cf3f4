//! What differs between the databases: connection options, how keys are
//! bound and read, how the table is created. Everything else is generic in
//! [`SqlStore`](crate::SqlStore).
//!
//! sqlx's generic executor bounds would have to be repeated on every item
//! of a generic store; instead each database implements a handful of
//! primitive calls (one macro body, so they cannot drift apart), and the
//! store calls those.

use std::future::Future;
use std::time::Duration;

use sqlx::pool::{PoolConnectionMetadata, PoolOptions};
use sqlx::{Database, Pool};

use crate::config::SqlConfig;
use crate::sql::Dialect;

/// A pooled connection idle for longer than this is pinged before use, so
/// connections broken by an outage are replaced instead of failing one
/// call each. Busier connections skip the round trip (sqlx also pings every
/// connection when it goes back to the pool).
pub(crate) const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// A statement argument.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    /// A key (bound as text, or as bytes where the key column is binary).
    Key(&'a str),
    /// A value.
    Bytes(&'a [u8]),
    /// An expiry, a time or a count.
    Int(Option<i64>),
}

/// The databases a [`SqlStore`](crate::SqlStore) runs on: sqlx's
/// `Postgres`, `MySql` and `Sqlite`, each behind its cargo feature.
/// Sealed: its items are this crate's business.
pub trait Backend: sealed::Primitives {}

pub(crate) mod sealed {
    use super::*;

    /// The primitive calls of one database.
    pub trait Primitives: Database + Sized {
        /// The dialect.
        const DIALECT: Dialect;

        /// A pool on `config`, with one connection opened (so an
        /// unreachable server fails here).
        fn open(config: &SqlConfig) -> impl Future<Output = sqlx::Result<Pool<Self>>> + Send;

        /// The first row's value and expiry.
        fn fetch_record<'a>(
            pool: &'a Pool<Self>,
            sql: &'a str,
            args: &'a [Arg<'a>],
        ) -> impl Future<Output = sqlx::Result<Option<(Vec<u8>, Option<i64>)>>> + Send + 'a;

        /// The number of rows affected (matched, for MySQL's `UPDATE`).
        fn execute<'a>(
            pool: &'a Pool<Self>,
            sql: &'a str,
            args: &'a [Arg<'a>],
        ) -> impl Future<Output = sqlx::Result<u64>> + Send + 'a;

        /// The keys of every row.
        fn fetch_keys<'a>(
            pool: &'a Pool<Self>,
            sql: &'a str,
            args: &'a [Arg<'a>],
        ) -> impl Future<Output = sqlx::Result<Vec<String>>> + Send + 'a;

        /// The one integer of the one row.
        fn fetch_count<'a>(
            pool: &'a Pool<Self>,
            sql: &'a str,
            args: &'a [Arg<'a>],
        ) -> impl Future<Output = sqlx::Result<i64>> + Send + 'a;

        /// Runs statements separated by `;`, unprepared, in one round
        /// trip (PostgreSQL runs them in one implicit transaction).
        fn execute_script<'a>(
            pool: &'a Pool<Self>,
            script: &'a str,
        ) -> impl Future<Output = sqlx::Result<()>> + Send + 'a;
    }
}

/// The pool options every database shares.
fn pool_options<DB: Database>(config: &SqlConfig) -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(config.max_connections.max(1))
        .min_connections(config.min_connections)
        .acquire_timeout(config.acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta: PoolConnectionMetadata| {
            Box::pin(async move {
                if meta.idle_for > PING_IF_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

macro_rules! primitives {
    ($db:ty, $dialect:expr, key_as_bytes = $key_as_bytes:expr) => {
        fn fetch_record<'a>(
            pool: &'a Pool<Self>,
            sql: &'a str,
            args: &'a [Arg<'a>],
        ) -> impl Future<Output = sqlx::Result<Option<(Vec<u8>, Option<i64>)>>> + Send + 'a {
            let query = sqlx::query_as::<$db, (Vec<u8>, Option<i64>)>(sql);
            primitives!(@bind query, args, $key_as_bytes).fetch_optional(pool)
        }

        fn execute<'a>(
            pool: &'a Pool<Self>,
            sql: &'a str,
            args: &'a [Arg<'a>],
        ) -> impl Future<Output = sqlx::Result<u64>> + Send + 'a {
            let query = primitives!(@bind sqlx::query::<$db>(sql), args, $key_as_bytes);
            async move { Ok(query.execute(pool).await?.rows_affected()) }
        }

        fn fetch_keys<'a>(
            pool: &'a Pool<Self>,
            sql: &'a str,
            args: &'a [Arg<'a>],
        ) -> impl Future<Output = sqlx::Result<Vec<String>>> + Send + 'a {
            async move {
                if $key_as_bytes {
                    let query = sqlx::query_scalar::<$db, Vec<u8>>(sql);
                    let raw = primitives!(@bind query, args, true).fetch_all(pool).await?;
                    raw.into_iter()
                        .map(|k| String::from_utf8(k).map_err(|e| sqlx::Error::Decode(e.into())))
                        .collect()
                } else {
                    let query = sqlx::query_scalar::<$db, String>(sql);
                    primitives!(@bind query, args, false).fetch_all(pool).await
                }
            }
        }

        fn execute_script<'a>(
            pool: &'a Pool<Self>,
            script: &'a str,
        ) -> impl Future<Output = sqlx::Result<()>> + Send + 'a {
            async move {
                sqlx::raw_sql(script).execute(pool).await?;
                Ok(())
            }
        }

        fn fetch_count<'a>(
            pool: &'a Pool<Self>,
            sql: &'a str,
            args: &'a [Arg<'a>],
        ) -> impl Future<Output = sqlx::Result<i64>> + Send + 'a {
            let query = sqlx::query_scalar::<$db, i64>(sql);
            primitives!(@bind query, args, $key_as_bytes).fetch_one(pool)
        }
    };
    (@bind $query:expr, $args:expr, $key_as_bytes:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match *arg {
                Arg::Key(k) if $key_as_bytes => query.bind(k.as_bytes()),
                Arg::Key(k) => query.bind(k),
                Arg::Bytes(b) => query.bind(b),
                Arg::Int(i) => query.bind(i),
            };
        }
        query
    }};
}

#[cfg(feature = "postgres")]
mod postgres {
    use std::str::FromStr;

    use sqlx::postgres::{PgConnectOptions, Postgres};

    use super::*;

    impl Backend for Postgres {}

    impl sealed::Primitives for Postgres {
        const DIALECT: Dialect = Dialect::Postgres;

        fn open(config: &SqlConfig) -> impl Future<Output = sqlx::Result<Pool<Self>>> + Send {
            let options = PgConnectOptions::from_str(&config.url).map(|o| {
                let timeout = config.statement_timeout.as_millis().to_string();
                o.application_name("storestack")
                    .options([("statement_timeout", timeout)])
            });
            let pool = pool_options::<Postgres>(config);
            async move { pool.connect_with(options?).await }
        }

        primitives!(Postgres, Dialect::Postgres, key_as_bytes = false);
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use std::str::FromStr;

    use sqlx::mysql::{MySql, MySqlConnectOptions};

    use super::*;

    impl Backend for MySql {}

    impl sealed::Primitives for MySql {
        const DIALECT: Dialect = Dialect::MySql;

        fn open(config: &SqlConfig) -> impl Future<Output = sqlx::Result<Pool<Self>>> + Send {
            let options = MySqlConnectOptions::from_str(&config.url);
            let pool = pool_options::<MySql>(config);
            async move { pool.connect_with(options?).await }
        }

        primitives!(MySql, Dialect::MySql, key_as_bytes = true);
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::str::FromStr;

    use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

    use super::*;

    /// Whether a URL names an in-memory database.
    pub(crate) fn in_memory(url: &str) -> bool {
        url.contains(":memory:") || url.contains("mode=memory")
    }

    impl Backend for Sqlite {}

    impl sealed::Primitives for Sqlite {
        const DIALECT: Dialect = Dialect::Sqlite;

        fn open(config: &SqlConfig) -> impl Future<Output = sqlx::Result<Pool<Self>>> + Send {
            let memory = in_memory(&config.url);
            let options = SqliteConnectOptions::from_str(&config.url).map(|o| {
                let o = o
                    .create_if_missing(true)
                    .busy_timeout(config.statement_timeout);
                if memory {
                    o
                } else {
                    o.journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal)
                }
            });
            let mut pool = pool_options::<Sqlite>(config);
            if memory {
                // The database lives as long as one connection to it: keep
                // exactly one, forever.
                pool = pool
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None);
            }
            async move { pool.connect_with(options?).await }
        }

        primitives!(Sqlite, Dialect::Sqlite, key_as_bytes = false);
    }
}
