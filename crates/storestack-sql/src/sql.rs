//! The SQL text of every operation, per dialect, built once per store.
//!
//! Every statement uses each of its parameters once, in order, so the same
//! argument lists serve PostgreSQL's `$n`, SQLite's `?n` and MySQL's `?`.
//! Expiry is a nullable `BIGINT` of milliseconds since the Unix epoch; the
//! live-row condition is [`Statements::live`] with *now* as a parameter (the
//! store's clock, never the server's).
//!
//! The conditional write (`set_if`) is one statement of the same shape as
//! [`Statements::replace_expired`]:
//! `UPDATE t SET value = p1, expires_at = p2 WHERE key = p3 [AND value = p4]
//! AND <live>`, its answer in the affected-row count (on MySQL the count of
//! *matched* rows: sqlx sets `CLIENT_FOUND_ROWS`, which is what a
//! compare-and-set that writes the same bytes again must count).

use storestack::{Op, Result, StoreError};

use crate::config::SqlConfig;

/// The longest part of a table name (PostgreSQL allows 63 bytes, and the
/// index name adds a suffix).
pub(crate) const MAX_TABLE_PART: usize = 48;

/// The SQL dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)]
pub enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

impl Dialect {
    fn quote(self, ident: &str) -> String {
        match self {
            Dialect::MySql => format!("`{ident}`"),
            Dialect::Postgres | Dialect::Sqlite => format!("\"{ident}\""),
        }
    }

    /// The `n`th (1-based) parameter placeholder.
    fn param(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            Dialect::Sqlite => format!("?{n}"),
            Dialect::MySql => "?".to_owned(),
        }
    }
}

/// The statements of one store.
#[derive(Debug)]
pub(crate) struct Statements {
    /// `(key, now)` → `(value, expires_at)` of the live row.
    pub(crate) get: String,
    /// `(key, value, expires_at)`: an upsert.
    pub(crate) set: String,
    /// `(key, value, expires_at, now)`: insert, or replace an expired row;
    /// affects one row if it wrote. `None` for MySQL, which cannot say
    /// (see [`insert`](Self::insert)).
    pub(crate) create: Option<String>,
    /// `(key, value, expires_at)`: a plain insert (MySQL's `create`, whose
    /// duplicate-key error means "a row is there").
    pub(crate) insert: String,
    /// `(value, expires_at, key, now)`: replace the row only while it is
    /// expired (MySQL's `create` after a duplicate key).
    pub(crate) replace_expired: String,
    /// `(key, now)`: delete the live row.
    pub(crate) delete: String,
    /// `(key, value, now)`: delete the live row if its value is `value`.
    pub(crate) delete_matching: String,
    /// `(value, expires_at, key, now)`: replace the live row.
    pub(crate) update_live: String,
    /// `(value, expires_at, key, expected, now)`: replace the live row if its
    /// value is `expected`.
    pub(crate) update_matching: String,
    /// `(expires_at, key, now)`: set the expiry of the live row.
    pub(crate) touch: String,
    /// Scan pages, by whether they have an upper bound and a cursor:
    /// `(prefix, [successor,] [after,] now, limit)` → keys.
    pub(crate) scan: [String; 4],
    /// `(now)` → the count of live rows.
    pub(crate) len: String,
    /// `()`: every row of the table.
    pub(crate) clear: String,
    /// `(now, batch[, now])`: up to `batch` expired rows.
    pub(crate) prune: String,
    /// What creates the table and its index: one script, safe to run from
    /// many processes at once.
    pub(crate) create_table: String,
}

/// A validated table name: its parts and its quoted form.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    quoted: String,
    /// The unqualified name, for the index name.
    name: String,
}

impl Table {
    pub(crate) fn parse(dialect: Dialect, table: &str) -> Result<Table> {
        let invalid = |message: String| {
            StoreError::invalid_input(Op::Connect)
                .with_store(crate::error::name(dialect))
                .with_message(message)
        };
        let parts: Vec<&str> = table.split('.').collect();
        if parts.len() > 2 || (dialect == Dialect::Sqlite && parts.len() > 1) {
            return Err(invalid(format!(
                "table {table:?} has too many qualifiers for {}",
                crate::error::name(dialect)
            )));
        }
        for part in &parts {
            let valid = !part.is_empty()
                && part.len() <= MAX_TABLE_PART
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !part.as_bytes()[0].is_ascii_digit();
            if !valid {
                return Err(invalid(format!(
                    "table name {table:?}: each part must be 1 to {MAX_TABLE_PART} ASCII \
                     letters, digits or '_', not starting with a digit"
                )));
            }
        }
        let quoted: Vec<String> = parts.iter().map(|p| dialect.quote(p)).collect();
        Ok(Table {
            quoted: quoted.join("."),
            name: (*parts.last().expect("split yields one part")).to_owned(),
        })
    }

    /// The quoted (possibly qualified) name.
    pub(crate) fn quoted(&self) -> &str {
        &self.quoted
    }
}

impl Statements {
    pub(crate) fn new(dialect: Dialect, table: &Table, config: &SqlConfig) -> Statements {
        let d = dialect;
        let t = table.quoted();
        let (k, v, e) = (d.quote("key"), d.quote("value"), d.quote("expires_at"));
        let p = |n| d.param(n);
        let live = |n| format!("({e} IS NULL OR {e} > {})", p(n));
        let insert = format!(
            "INSERT INTO {t} ({k}, {v}, {e}) VALUES ({}, {}, {})",
            p(1),
            p(2),
            p(3)
        );
        let (set, create) = match d {
            Dialect::MySql => (
                format!("{insert} ON DUPLICATE KEY UPDATE {v} = VALUES({v}), {e} = VALUES({e})"),
                None,
            ),
            Dialect::Postgres | Dialect::Sqlite => {
                let head = format!(
                    "INSERT INTO {t} AS cur ({k}, {v}, {e}) VALUES ({}, {}, {}) \
                     ON CONFLICT ({k}) DO UPDATE SET {v} = excluded.{v}, {e} = excluded.{e}",
                    p(1),
                    p(2),
                    p(3)
                );
                // NULL <= now is not true: a row that never expires is live.
                let create = format!("{head} WHERE cur.{e} <= {}", p(4));
                (head, Some(create))
            }
        };
        let scan = |upper: bool, after: bool| {
            let mut n = 1;
            let mut next = || {
                let s = p(n);
                n += 1;
                s
            };
            let mut sql = format!("SELECT {k} FROM {t} WHERE {k} >= {}", next());
            if upper {
                sql.push_str(&format!(" AND {k} < {}", next()));
            }
            if after {
                sql.push_str(&format!(" AND {k} > {}", next()));
            }
            let now = next();
            let limit = next();
            sql.push_str(&format!(
                " AND ({e} IS NULL OR {e} > {now}) ORDER BY {k} LIMIT {limit}"
            ));
            sql
        };
        let prune = match d {
            Dialect::MySql => format!("DELETE FROM {t} WHERE {e} <= ? ORDER BY {e} LIMIT ?"),
            // The outer condition is checked again on the row deleted: a
            // row made live after the subquery read it stays.
            Dialect::Postgres => format!(
                "DELETE FROM {t} WHERE {k} IN (SELECT {k} FROM {t} WHERE {e} <= $1 \
                 ORDER BY {e} LIMIT $2 FOR UPDATE SKIP LOCKED) AND {e} <= $3"
            ),
            Dialect::Sqlite => format!(
                "DELETE FROM {t} WHERE {k} IN (SELECT {k} FROM {t} WHERE {e} <= ?1 \
                 ORDER BY {e} LIMIT ?2) AND {e} <= ?3"
            ),
        };
        Statements {
            get: format!(
                "SELECT {v}, {e} FROM {t} WHERE {k} = {} AND {}",
                p(1),
                live(2)
            ),
            set,
            create,
            replace_expired: format!(
                "UPDATE {t} SET {v} = {}, {e} = {} WHERE {k} = {} AND {e} <= {}",
                p(1),
                p(2),
                p(3),
                p(4)
            ),
            insert,
            delete: format!("DELETE FROM {t} WHERE {k} = {} AND {}", p(1), live(2)),
            delete_matching: format!(
                "DELETE FROM {t} WHERE {k} = {} AND {v} = {} AND {}",
                p(1),
                p(2),
                live(3)
            ),
            update_live: format!(
                "UPDATE {t} SET {v} = {}, {e} = {} WHERE {k} = {} AND {}",
                p(1),
                p(2),
                p(3),
                live(4)
            ),
            update_matching: format!(
                "UPDATE {t} SET {v} = {}, {e} = {} WHERE {k} = {} AND {v} = {} AND {}",
                p(1),
                p(2),
                p(3),
                p(4),
                live(5)
            ),
            touch: format!(
                "UPDATE {t} SET {e} = {} WHERE {k} = {} AND {}",
                p(1),
                p(2),
                live(3)
            ),
            scan: [
                scan(false, false),
                scan(true, false),
                scan(false, true),
                scan(true, true),
            ],
            len: format!("SELECT COUNT(*) FROM {t} WHERE {}", live(1)),
            clear: format!("DELETE FROM {t}"),
            prune,
            create_table: create_table(d, table, config),
        }
    }

    /// The scan statement for a page with or without an upper bound and a
    /// cursor.
    pub(crate) fn scan(&self, upper: bool, after: bool) -> &str {
        &self.scan[usize::from(upper) + 2 * usize::from(after)]
    }
}

fn create_table(d: Dialect, table: &Table, config: &SqlConfig) -> String {
    let t = table.quoted();
    let index = d.quote(&format!("{}_expires_at_idx", table.name));
    let (k, v, e) = (d.quote("key"), d.quote("value"), d.quote("expires_at"));
    match d {
        Dialect::Postgres => {
            let unlogged = if config.unlogged { "UNLOGGED " } else { "" };
            [
                // `CREATE … IF NOT EXISTS` races with itself (both sessions
                // see no table, one fails on the catalog's unique index):
                // serialize on an advisory lock, held until the script's
                // implicit transaction ends.
                format!(
                    "SELECT pg_advisory_xact_lock({})",
                    advisory_lock_id(&table.quoted)
                ),
                // Byte order ("C"): the order scans page in and prefix
                // ranges rely on, whatever the database's collation.
                format!(
                    "CREATE {unlogged}TABLE IF NOT EXISTS {t} ({k} TEXT COLLATE \"C\" PRIMARY KEY, \
                     {v} BYTEA NOT NULL, {e} BIGINT)"
                ),
                format!("CREATE INDEX IF NOT EXISTS {index} ON {t} ({e})"),
            ]
            .join("; ")
        }
        // A binary key: compared byte by byte, and 1 024 bytes fit an
        // InnoDB index (utf8mb4 characters would need 4 096).
        // The index inline: one statement, atomic under the table's
        // metadata lock.
        Dialect::MySql => format!(
            "CREATE TABLE IF NOT EXISTS {t} ({k} VARBINARY(1024) NOT NULL PRIMARY KEY, \
             {v} LONGBLOB NOT NULL, {e} BIGINT NULL, INDEX {index} ({e})) ENGINE=InnoDB"
        ),
        // TEXT compares with the BINARY collation (memcmp of UTF-8).
        // The database's write lock serializes creators.
        Dialect::Sqlite => [
            format!(
                "CREATE TABLE IF NOT EXISTS {t} ({k} TEXT NOT NULL PRIMARY KEY, \
                 {v} BLOB NOT NULL, {e} INTEGER) WITHOUT ROWID"
            ),
            format!("CREATE INDEX IF NOT EXISTS {index} ON {t} ({e})"),
        ]
        .join("; "),
    }
}

/// A stable hash of a table name (FNV-1a: every process, whatever it was
/// built with, must agree).
fn advisory_lock_id(table: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "storestack-sql:".bytes().chain(table.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked_and_quoted() {
        let ok = Table::parse(Dialect::Postgres, "web.sessions_2").unwrap();
        assert_eq!(ok.quoted(), "\"web\".\"sessions_2\"");
        let ok = Table::parse(Dialect::MySql, "s").unwrap();
        assert_eq!(ok.quoted(), "`s`");
        for bad in [
            "",
            "a.b.c",
            "1abc",
            "a-b",
            "a\"b",
            "a;drop",
            "a b",
            &"x".repeat(49),
        ] {
            assert!(Table::parse(Dialect::Postgres, bad).is_err(), "{bad:?}");
        }
        assert!(Table::parse(Dialect::Sqlite, "main.s").is_err());
    }

    #[test]
    fn parameters_are_numbered_in_order() {
        let table = Table::parse(Dialect::Postgres, "s").unwrap();
        let sql = Statements::new(Dialect::Postgres, &table, &SqlConfig::default());
        assert_eq!(
            sql.scan(true, true),
            "SELECT \"key\" FROM \"s\" WHERE \"key\" >= $1 AND \"key\" < $2 AND \"key\" > $3 \
             AND (\"expires_at\" IS NULL OR \"expires_at\" > $4) ORDER BY \"key\" LIMIT $5"
        );
        assert!(sql
            .scan(false, false)
            .contains("> $2) ORDER BY \"key\" LIMIT $3"));
        assert!(sql
            .create
            .as_deref()
            .unwrap()
            .ends_with("WHERE cur.\"expires_at\" <= $4"));
        let unlogged = SqlConfig::default().unlogged(true);
        let ddl = Statements::new(Dialect::Postgres, &table, &unlogged).create_table;
        assert!(
            ddl.contains("; CREATE UNLOGGED TABLE IF NOT EXISTS \"s\""),
            "{ddl}"
        );
    }
}
