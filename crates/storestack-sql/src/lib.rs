#![doc = include_str!("docs.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]
// The crate docs link the three stores, which exist only with their features.
#![cfg_attr(
    not(all(feature = "postgres", feature = "mysql", feature = "sqlite")),
    allow(rustdoc::broken_intra_doc_links)
)]

mod backend;
mod config;
mod error;
mod prune;
mod sql;
mod store;

pub use backend::Backend;
pub use config::{
    SqlConfig, DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_PRUNE_BATCH,
    DEFAULT_PRUNE_INTERVAL, DEFAULT_STATEMENT_TIMEOUT, DEFAULT_TABLE,
};
pub use store::SqlStore;

/// A [`SqlStore`] on PostgreSQL.
#[cfg(feature = "postgres")]
pub type PgStore = SqlStore<sqlx::Postgres>;

/// A [`SqlStore`] on MySQL or MariaDB.
#[cfg(feature = "mysql")]
pub type MySqlStore = SqlStore<sqlx::MySql>;

/// A [`SqlStore`] on an embedded SQLite database.
#[cfg(feature = "sqlite")]
pub type SqliteStore = SqlStore<sqlx::Sqlite>;

/// sqlx, re-exported so that users name the same version.
pub use sqlx;
