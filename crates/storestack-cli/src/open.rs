//! Opening the store a [`StoreUrl`] names, within a deadline.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use storestack::{MemoryStore, Op, Record, Store, StoreError};
use storestack_mongodb::{MongoConfig, MongoStore};
use storestack_redis::{RedisConfig, RedisStore};
use storestack_sql::{MySqlStore, PgStore, SqlConfig, SqliteStore};

use crate::address::{SqlDatabase, StoreUrl};

/// How stores are opened.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OpenOptions {
    /// The longest time connecting may take (a server that cannot be
    /// reached fails within it). Default 5 s.
    pub connect_timeout: Duration,
    /// The deadline of every operation once connected. Default 10 s (a
    /// bulk copy prefers waiting to failing).
    pub operation_timeout: Duration,
    /// Connections to open (MongoDB: the pool's maximum, unless the URL
    /// sets `maxPoolSize`). Default 32.
    pub connections: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            connect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(10),
            connections: 32,
        }
    }
}

/// The demo records of `memory://?demo=N`: `demo:00000000` …, values of
/// 64 to 319 bytes, three in four expiring between one and two hours from
/// now, one in four never.
pub async fn seed_demo(store: &dyn Store, n: u64) -> storestack::Result<()> {
    let now = SystemTime::now();
    for i in 0..n {
        let len = 64 + (i % 256) as usize;
        let value: Vec<u8> = (0..len).map(|j| (i as usize + j * 31) as u8).collect();
        let expires_at = (i % 4 != 0).then(|| now + Duration::from_secs(3600 + i % 3600));
        let record = Record {
            value: value.into(),
            expires_at,
        };
        store.set(&format!("demo:{i:08}"), record).await?;
    }
    Ok(())
}

/// Opens the store `url` names (seeding demo records for
/// `memory://?demo=N`). Fails within [`OpenOptions::connect_timeout`]
/// when the server cannot be reached.
pub async fn open(url: &StoreUrl, options: &OpenOptions) -> storestack::Result<Arc<dyn Store>> {
    let deadline = options.connect_timeout;
    let connecting = async {
        Ok::<Arc<dyn Store>, StoreError>(match url {
            StoreUrl::Memory { demo } => {
                let store = MemoryStore::new();
                seed_demo(&store, *demo).await?;
                Arc::new(store)
            }
            StoreUrl::Redis { url, prefix } => {
                // fred bounds each connection step by the connect timeout
                // and the whole by three of them: stay inside the deadline.
                let step = (deadline / 4).max(Duration::from_millis(100));
                let config = RedisConfig::new(url.clone())
                    .key_prefix(prefix.clone())
                    .connect_timeout(step)
                    .command_timeout(options.operation_timeout)
                    .pool_size((options.connections as usize / 8).clamp(2, 8));
                Arc::new(RedisStore::connect(config).await?)
            }
            StoreUrl::Mongo {
                uri,
                database,
                collection,
            } => {
                let mut config = MongoConfig::new(uri.clone())
                    .database(database.clone())
                    .collection(collection.clone())
                    .connect_timeout(deadline)
                    .server_selection_timeout(deadline)
                    .operation_timeout(options.operation_timeout);
                if !uri.to_ascii_lowercase().contains("maxpoolsize=") {
                    config = config.max_pool_size(options.connections.max(1));
                }
                Arc::new(MongoStore::connect(config).await?)
            }
            StoreUrl::Sql {
                database,
                url,
                table,
            } => {
                // No prune task: pruning is the applications' business.
                let config = SqlConfig::new(url.clone())
                    .table(table.clone())
                    .acquire_timeout(deadline)
                    .statement_timeout(options.operation_timeout)
                    .max_connections(options.connections.max(1))
                    .prune_interval(None);
                match database {
                    SqlDatabase::Postgres => Arc::new(PgStore::connect(config).await?),
                    SqlDatabase::MySql => Arc::new(MySqlStore::connect(config).await?),
                    SqlDatabase::Sqlite => Arc::new(SqliteStore::connect(config).await?),
                }
            }
        })
    };
    // A little slack over the stores' own bounds, which come first and
    // give the better message.
    match tokio::time::timeout(deadline + Duration::from_secs(1), connecting).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::timeout(Op::Connect)
            .with_store(url.kind())
            .with_message(format!("no connection within {deadline:?}"))),
    }
}
