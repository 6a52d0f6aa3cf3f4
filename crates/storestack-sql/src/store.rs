//! [`SqlStore`]: the `Store` impl, generic over the database.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use sqlx::Pool;
use storestack::limits::{self, Limits};
use storestack::store::is_expired;
use storestack::{
    Condition, Op, Record, Result, ScanCursor, ScanPage, Store, StoreError, Versioned,
};

use crate::backend::{Arg, Backend};
use crate::config::SqlConfig;
use crate::error::{from_sqlx, name, timed_out};
use crate::sql::{Dialect, Statements, Table};

/// The most keys one scan page returns, whatever the limit asked.
const MAX_SCAN_PAGE: usize = 10_000;

/// How many times MySQL's `create` goes round insert / replace-if-expired
/// when the row keeps changing under it.
const MYSQL_CREATE_ROUNDS: usize = 3;

/// A [`Store`] on one table of a SQL database, one row per key. See the
/// [crate docs](crate) for the table layout and the guarantees; use it as
/// [`PgStore`](crate::PgStore), [`MySqlStore`](crate::MySqlStore) or
/// [`SqliteStore`](crate::SqliteStore).
///
/// Cheap to clone: clones share the pool and the prune task, which stops
/// when the last clone is dropped.
pub struct SqlStore<B: Backend> {
    pub(crate) inner: Arc<Inner<B>>,
}

impl<B: Backend> Clone for SqlStore<B> {
    fn clone(&self) -> Self {
        SqlStore {
            inner: self.inner.clone(),
        }
    }
}

pub(crate) struct Inner<B: Backend> {
    pub(crate) pool: Pool<B>,
    pub(crate) sql: Statements,
    pub(crate) config: SqlConfig,
    pub(crate) limits: Limits,
    pub(crate) prune_task: OnceLock<tokio::task::AbortHandle>,
}

impl<B: Backend> Drop for Inner<B> {
    fn drop(&mut self) {
        if let Some(task) = self.prune_task.get() {
            task.abort();
        }
    }
}

impl<B: Backend> fmt::Debug for SqlStore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("database", &name(B::DIALECT))
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> SqlStore<B> {
    /// Connects, and creates the table and its expiry index if they are
    /// missing (unless [`SqlConfig::create_table`] is off); safe to run from
    /// many processes at once. Starts the prune task (see
    /// [`SqlConfig::prune_interval`]); needs a tokio runtime.
    ///
    /// Fails with `Unavailable` when no connection opens within
    /// [`SqlConfig::acquire_timeout`], `Timeout` when creating the table
    /// takes longer than [`SqlConfig::statement_timeout`], and
    /// `InvalidInput` for a bad configuration.
    pub async fn connect(config: SqlConfig) -> Result<Self> {
        let dialect = B::DIALECT;
        let invalid = |message: &'static str| {
            StoreError::invalid_input(Op::Connect)
                .with_store(name(dialect))
                .with_message(message)
        };
        let table = Table::parse(dialect, &config.table)?;
        if config.unlogged && dialect != Dialect::Postgres {
            return Err(invalid("unlogged tables are a PostgreSQL option"));
        }
        if config.prune_batch == 0 {
            return Err(invalid("prune_batch must be at least 1"));
        }
        if config.prune_interval.is_some_and(|d| d.is_zero()) {
            return Err(invalid("prune_interval must not be zero"));
        }
        let sql = Statements::new(dialect, &table, &config);
        let pool = B::open(&config)
            .await
            .map_err(|e| from_sqlx(dialect, Op::Connect, e))?;
        let store = SqlStore {
            inner: Arc::new(Inner {
                pool,
                sql,
                limits: Limits::default().max_value_len(config.max_value_len),
                config,
                prune_task: OnceLock::new(),
            }),
        };
        if store.inner.config.create_table {
            let ddl = &store.inner.sql.create_table;
            store
                .timed(Op::Connect, B::execute_script(store.pool(), ddl))
                .await?;
        }
        if let Some(every) = store.inner.config.prune_interval {
            crate::prune::spawn(&store, every);
        }
        Ok(store)
    }

    /// The sqlx pool (shared by clones of this store).
    pub fn pool(&self) -> &Pool<B> {
        &self.inner.pool
    }

    /// The configuration the store was connected with.
    pub fn config(&self) -> &SqlConfig {
        &self.inner.config
    }

    /// Deletes every expired row now, in batches of
    /// [`SqlConfig::prune_batch`]; returns how many it deleted. What the
    /// prune task runs; expired rows are invisible whether or not it ran.
    pub async fn prune_expired(&self) -> Result<u64> {
        let batch = i64::from(self.inner.config.prune_batch);
        let mut total = 0;
        loop {
            let now = Arg::Int(Some(self.now_millis()));
            let args = [now, Arg::Int(Some(batch)), now];
            let args = match B::DIALECT {
                Dialect::MySql => &args[..2],
                Dialect::Postgres | Dialect::Sqlite => &args[..],
            };
            let deleted = self.execute(Op::Clear, &self.inner.sql.prune, args).await?;
            total += deleted;
            if deleted < batch as u64 {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }

    /// Runs `fut` within the statement timeout.
    async fn timed<T>(&self, op: Op, fut: impl Future<Output = sqlx::Result<T>>) -> Result<T> {
        self.timed_raw(op, fut)
            .await?
            .map_err(|e| from_sqlx(B::DIALECT, op, e))
    }

    /// Runs `fut` within the statement timeout, leaving its own error as it
    /// is.
    async fn timed_raw<T>(
        &self,
        op: Op,
        fut: impl Future<Output = sqlx::Result<T>>,
    ) -> Result<sqlx::Result<T>> {
        let limit = self.inner.config.statement_timeout;
        tokio::time::timeout(limit, fut)
            .await
            .map_err(|_| timed_out(B::DIALECT, op, limit))
    }

    async fn execute(&self, op: Op, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        self.timed(op, B::execute(self.pool(), sql, args)).await
    }

    fn now(&self) -> SystemTime {
        self.inner.config.clock.now()
    }

    fn now_millis(&self) -> i64 {
        limits::unix_millis(self.now())
    }

    /// Removes the live row of `key`; whether there was one.
    async fn remove(&self, op: Op, key: &str) -> Result<bool> {
        let args = [Arg::Key(key), Arg::Int(Some(self.now_millis()))];
        Ok(self.execute(op, &self.inner.sql.delete, &args).await? > 0)
    }

    /// MySQL's `create`: an insert, and on a duplicate key a replacement
    /// that only applies to a row still expired. Neither alone can be
    /// fooled into writing over a live row; a row that vanishes between the
    /// two sends it round again.
    async fn create_mysql(&self, key: &str, value: &[u8], expires: Option<i64>) -> Result<bool> {
        let sql = &self.inner.sql;
        for _ in 0..MYSQL_CREATE_ROUNDS {
            let insert = [Arg::Key(key), Arg::Bytes(value), Arg::Int(expires)];
            let inserted = B::execute(self.pool(), &sql.insert, &insert);
            match self.timed_raw(Op::Create, inserted).await? {
                Ok(_) => return Ok(true),
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
                Err(e) => return Err(from_sqlx(B::DIALECT, Op::Create, e)),
            }
            let now = Arg::Int(Some(self.now_millis()));
            let replace = [Arg::Bytes(value), Arg::Int(expires), Arg::Key(key), now];
            if self
                .execute(Op::Create, &sql.replace_expired, &replace)
                .await?
                > 0
            {
                return Ok(true);
            }
            // No expired row matched: a live one is there (the answer), or
            // the row was deleted meanwhile (insert again).
            let live = [Arg::Key(key), now];
            let found = self
                .timed(Op::Create, B::fetch_record(self.pool(), &sql.get, &live))
                .await?;
            if found.is_some() {
                return Ok(false);
            }
        }
        Err(StoreError::unavailable(Op::Create)
            .with_store(name(B::DIALECT))
            .with_message("the row kept changing under create; try again"))
    }
}

fn to_millis(at: Option<SystemTime>) -> Option<i64> {
    at.map(limits::unix_millis)
}

fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64)
}

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    fn name(&self) -> &str {
        name(B::DIALECT)
    }

    async fn get(&self, key: &str) -> Result<Option<Record>> {
        limits::check_key(Op::Get, key)?;
        let args = [Arg::Key(key), Arg::Int(Some(self.now_millis()))];
        let row = self
            .timed(
                Op::Get,
                B::fetch_record(self.pool(), &self.inner.sql.get, &args),
            )
            .await?;
        Ok(row.map(|(value, expires)| Record {
            value: Bytes::from(value),
            expires_at: expires.map(from_millis),
        }))
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        // The version is the stored bytes: what `get` reads.
        Ok(self.get(key).await?.map(Versioned::stored))
    }

    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        self.inner.limits.check_write(Op::SetIf, key, &record)?;
        let now = Some(self.now_millis());
        let sql = &self.inner.sql;
        if record.is_expired_at(self.now()) {
            // Writing an expired record removes the key, if the condition
            // holds.
            return Ok(match &condition {
                Condition::Exists => self.remove(Op::SetIf, key).await?,
                Condition::Matches(version) => {
                    let args = [Arg::Key(key), Arg::Bytes(version.stored()), Arg::Int(now)];
                    self.execute(Op::SetIf, &sql.delete_matching, &args).await? > 0
                }
            });
        }
        let expires = Arg::Int(to_millis(record.expires_at));
        let written = match &condition {
            Condition::Exists => {
                let args = [
                    Arg::Bytes(&record.value),
                    expires,
                    Arg::Key(key),
                    Arg::Int(now),
                ];
                self.execute(Op::SetIf, &sql.update_live, &args).await?
            }
            Condition::Matches(version) => {
                let args = [
                    Arg::Bytes(&record.value),
                    expires,
                    Arg::Key(key),
                    Arg::Bytes(version.stored()),
                    Arg::Int(now),
                ];
                self.execute(Op::SetIf, &sql.update_matching, &args).await?
            }
        };
        Ok(written > 0)
    }

    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.inner.limits.check_write(Op::Set, key, &record)?;
        if record.is_expired_at(self.now()) {
            self.remove(Op::Set, key).await?;
            return Ok(());
        }
        let args = [
            Arg::Key(key),
            Arg::Bytes(&record.value),
            Arg::Int(to_millis(record.expires_at)),
        ];
        self.execute(Op::Set, &self.inner.sql.set, &args).await?;
        Ok(())
    }

    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.inner.limits.check_write(Op::Create, key, &record)?;
        if record.is_expired_at(self.now()) {
            // Stores nothing; succeeds unless a live record is there.
            let args = [Arg::Key(key), Arg::Int(Some(self.now_millis()))];
            let sql = &self.inner.sql.get;
            let live = self
                .timed(Op::Create, B::fetch_record(self.pool(), sql, &args))
                .await?;
            return Ok(live.is_none());
        }
        let expires = to_millis(record.expires_at);
        let Some(create) = &self.inner.sql.create else {
            return self.create_mysql(key, &record.value, expires).await;
        };
        let args = [
            Arg::Key(key),
            Arg::Bytes(&record.value),
            Arg::Int(expires),
            Arg::Int(Some(self.now_millis())),
        ];
        Ok(self.execute(Op::Create, create, &args).await? > 0)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        limits::check_key(Op::Delete, key)?;
        self.remove(Op::Delete, key).await
    }

    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        limits::check_key(Op::Touch, key)?;
        limits::check_expiry(Op::Touch, expires_at)?;
        if is_expired(expires_at, self.now()) {
            return self.remove(Op::Touch, key).await;
        }
        let args = [
            Arg::Int(to_millis(expires_at)),
            Arg::Key(key),
            Arg::Int(Some(self.now_millis())),
        ];
        Ok(self
            .execute(Op::Touch, &self.inner.sql.touch, &args)
            .await?
            > 0)
    }

    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        let limit = limit.clamp(1, MAX_SCAN_PAGE);
        let upper = storestack::store::prefix_successor(prefix);
        let after = cursor.token();
        let mut args = Vec::with_capacity(5);
        args.push(Arg::Key(prefix));
        if let Some(upper) = &upper {
            args.push(Arg::Key(upper));
        }
        if let Some(after) = after {
            args.push(Arg::Key(after));
        }
        args.push(Arg::Int(Some(self.now_millis())));
        // One more than the page, to know whether another page follows.
        args.push(Arg::Int(Some(limit as i64 + 1)));
        let sql = self.inner.sql.scan(upper.is_some(), after.is_some());
        let mut keys = self
            .timed(Op::Scan, B::fetch_keys(self.pool(), sql, &args))
            .await?;
        let next = (keys.len() > limit).then(|| {
            keys.truncate(limit);
            ScanCursor::from_token(keys[limit - 1].clone())
        });
        Ok(ScanPage { keys, next })
    }

    async fn len(&self) -> Result<u64> {
        let args = [Arg::Int(Some(self.now_millis()))];
        let n = self
            .timed(
                Op::Len,
                B::fetch_count(self.pool(), &self.inner.sql.len, &args),
            )
            .await?;
        Ok(n.max(0) as u64)
    }

    async fn clear(&self) -> Result<()> {
        self.execute(Op::Clear, &self.inner.sql.clear, &[]).await?;
        Ok(())
    }
}
