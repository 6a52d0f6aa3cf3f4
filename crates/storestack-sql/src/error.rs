//! sqlx errors as [`StoreError`]s.
//!
//! | sqlx error | kind |
//! |---|---|
//! | `Io`, `Tls`, `Protocol`, `PoolTimedOut` (no connection within the acquire timeout), `PoolClosed`, `WorkerCrashed` | `Unavailable` |
//! | a server error meaning "try later" (below) | `Unavailable` |
//! | a server error meaning "too slow" (below) | `Timeout` |
//! | `Decode`, `ColumnDecode` (a row this store did not write) | `Corrupt` |
//! | `Configuration` (a bad URL or option) | `InvalidInput` |
//! | anything else: constraint violations, syntax errors, a missing table | `Internal` |
//!
//! | server | `Unavailable` | `Timeout` | `TooLarge` |
//! |---|---|---|---|
//! | PostgreSQL (SQLSTATE) | class `08` (connection), `28` (authentication), `53` (resources), `57P01`-`57P05` (shutdown, recovery), `40001`, `40P01` (serialization, deadlock), `55006` | `57014` (statement timeout), `55P03` (lock timeout) | `54000` |
//! | MySQL / MariaDB (error number) | 1040, 1042, 1043, 1044, 1045, 1053, 1077-1081, 1129, 1130, 1152, 1158-1161, 1184, 1203, 1213, 1290 (read-only), 1836, 1927, 2002-2013 | 1205 (lock wait), 1907, 1969 (MariaDB statement time), 3024 (MySQL execution time) | 1153 (packet), 1406 (data too long) |
//! | SQLite (primary result code) | `BUSY`, `LOCKED`, `IOERR`, `CANTOPEN`, `FULL`, `PROTOCOL`, `READONLY` | — | `TOOBIG` |
//!
//! SQLite's `CORRUPT` and `NOTADB` are `Corrupt`. The sqlx error is kept as
//! the `source`, except for constraint violations, whose messages may quote
//! the key.

use storestack::{ErrorKind, Op, StoreError};

use crate::sql::Dialect;

/// The store name of a dialect, in errors and in
/// [`Store::name`](storestack::Store::name).
pub(crate) fn name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "postgres",
        Dialect::MySql => "mysql",
        Dialect::Sqlite => "sqlite",
    }
}

/// The [`StoreError`] of a failed sqlx call.
pub(crate) fn from_sqlx(dialect: Dialect, op: Op, err: sqlx::Error) -> StoreError {
    let (kind, message) = classify(dialect, &err);
    let store_err = StoreError::new(kind, op)
        .with_store(name(dialect))
        .with_message(message);
    let quotes_key = matches!(&err, sqlx::Error::Database(db)
        if !matches!(db.kind(), sqlx::error::ErrorKind::Other));
    if quotes_key {
        return store_err;
    }
    store_err.with_source(err)
}

fn classify(dialect: Dialect, err: &sqlx::Error) -> (ErrorKind, &'static str) {
    use sqlx::Error as E;
    match err {
        E::Io(_) | E::Tls(_) | E::Protocol(_) | E::WorkerCrashed => {
            (ErrorKind::Unavailable, "connection failed")
        }
        E::PoolTimedOut => (
            ErrorKind::Unavailable,
            "no connection within the acquire timeout",
        ),
        E::PoolClosed => (ErrorKind::Unavailable, "the connection pool is closed"),
        E::Decode(_) | E::ColumnDecode { .. } => (
            ErrorKind::Corrupt,
            "a stored row is not what this store writes",
        ),
        E::Configuration(_) => (ErrorKind::InvalidInput, "invalid connection options"),
        E::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or("");
            match dialect {
                Dialect::Postgres => postgres(code),
                Dialect::MySql => mysql(mysql_number(db.as_ref())),
                Dialect::Sqlite => sqlite(code.parse().unwrap_or(0)),
            }
        }
        _ => (ErrorKind::Internal, "unexpected sqlx error"),
    }
}

const SERVER_BUSY: (ErrorKind, &str) = (ErrorKind::Unavailable, "server temporarily unavailable");
const SERVER_SLOW: (ErrorKind, &str) = (ErrorKind::Timeout, "server deadline passed");
const TOO_LARGE: (ErrorKind, &str) = (ErrorKind::TooLarge, "value too large for the server");
const REFUSED: (ErrorKind, &str) = (ErrorKind::Internal, "server refused the statement");

/// By SQLSTATE.
fn postgres(code: &str) -> (ErrorKind, &'static str) {
    match code {
        "57014" | "55P03" => SERVER_SLOW,
        "54000" => TOO_LARGE,
        "40001" | "40P01" | "55006" => SERVER_BUSY,
        c if c.starts_with("08") || c.starts_with("28") || c.starts_with("53") => SERVER_BUSY,
        c if c.starts_with("57P") => SERVER_BUSY,
        _ => REFUSED,
    }
}

/// By error number.
fn mysql(number: u16) -> (ErrorKind, &'static str) {
    match number {
        1205 | 1907 | 1969 | 3024 => SERVER_SLOW,
        1153 | 1406 => TOO_LARGE,
        1040
        | 1042..=1045
        | 1053
        | 1077..=1081
        | 1129
        | 1130
        | 1152
        | 1158..=1161
        | 1184
        | 1203
        | 1213
        | 1290
        | 1836
        | 1927
        | 2002..=2013 => SERVER_BUSY,
        _ => REFUSED,
    }
}

fn mysql_number(db: &dyn sqlx::error::DatabaseError) -> u16 {
    #[cfg(feature = "mysql")]
    if let Some(e) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return e.number();
    }
    let _ = db;
    0
}

/// By SQLite's primary result code (the low byte of the extended code).
fn sqlite(extended: i32) -> (ErrorKind, &'static str) {
    match extended & 0xff {
        // BUSY, LOCKED, IOERR, CANTOPEN, FULL, PROTOCOL, READONLY
        5 | 6 | 10 | 13 | 14 | 15 | 8 => SERVER_BUSY,
        18 => TOO_LARGE,
        // CORRUPT, NOTADB
        11 | 26 => (ErrorKind::Corrupt, "the database file is corrupt"),
        _ => REFUSED,
    }
}

/// The error of an operation past its deadline.
pub(crate) fn timed_out(dialect: Dialect, op: Op, limit: std::time::Duration) -> StoreError {
    StoreError::timeout(op)
        .with_store(name(dialect))
        .with_message(format!("no answer within {} ms", limit.as_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_errors_are_transient_and_keep_their_source() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let err = from_sqlx(Dialect::Postgres, Op::Get, io);
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(err.store(), "postgres");
        assert!(std::error::Error::source(&err).is_some());
        let err = from_sqlx(Dialect::MySql, Op::Set, sqlx::Error::PoolTimedOut);
        assert!(err.is_transient());
    }

    #[test]
    fn server_codes_map_to_kinds() {
        assert_eq!(postgres("57014").0, ErrorKind::Timeout);
        assert_eq!(postgres("08006").0, ErrorKind::Unavailable);
        assert_eq!(postgres("57P01").0, ErrorKind::Unavailable);
        assert_eq!(postgres("42601").0, ErrorKind::Internal); // syntax
        assert_eq!(postgres("23505").0, ErrorKind::Internal); // unique
        assert_eq!(mysql(1969).0, ErrorKind::Timeout);
        assert_eq!(mysql(2013).0, ErrorKind::Unavailable);
        assert_eq!(mysql(1064).0, ErrorKind::Internal); // syntax
        assert_eq!(mysql(1146).0, ErrorKind::Internal); // no such table
        assert_eq!(mysql(1153).0, ErrorKind::TooLarge);
        assert_eq!(sqlite(5).0, ErrorKind::Unavailable);
        assert_eq!(sqlite(5 | (2 << 8)).0, ErrorKind::Unavailable); // BUSY_SNAPSHOT
        assert_eq!(sqlite(11).0, ErrorKind::Corrupt);
        assert_eq!(sqlite(19).0, ErrorKind::Internal); // constraint
        assert_eq!(sqlite(1).0, ErrorKind::Internal); // SQL error
    }
}
