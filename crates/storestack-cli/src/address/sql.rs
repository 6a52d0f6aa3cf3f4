//! `postgres://`, `postgresql://`, `mysql://` and `sqlite://` URLs.

use std::fmt;

use super::{decode, malformed, StoreUrl, UrlError};

/// The table of a SQL store whose URL names none.
pub const DEFAULT_SQL_TABLE: &str = storestack_sql::DEFAULT_TABLE;

/// The database a SQL URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SqlDatabase {
    /// PostgreSQL ([`PgStore`](storestack_sql::PgStore)).
    Postgres,
    /// MySQL or MariaDB ([`MySqlStore`](storestack_sql::MySqlStore)).
    MySql,
    /// A SQLite file ([`SqliteStore`](storestack_sql::SqliteStore)).
    Sqlite,
}

impl SqlDatabase {
    /// The store's name: `postgres`, `mysql` or `sqlite`.
    pub fn as_str(self) -> &'static str {
        match self {
            SqlDatabase::Postgres => "postgres",
            SqlDatabase::MySql => "mysql",
            SqlDatabase::Sqlite => "sqlite",
        }
    }
}

impl fmt::Display for SqlDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a SQL URL: the `table` parameter is taken out, every other one
/// goes to sqlx (`sslmode=require`, …).
pub(super) fn parse(database: SqlDatabase, raw: &str) -> Result<StoreUrl, UrlError> {
    let scheme = database.as_str();
    let (before_query, query) = raw.split_once('?').unwrap_or((raw, ""));
    if raw.contains('#') {
        return Err(malformed(scheme, "a fragment (#…) is not allowed"));
    }
    let mut table = DEFAULT_SQL_TABLE.to_owned();
    let mut options = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name == "table" {
            table = decode(scheme, "the table", value)?;
            if table.is_empty() {
                return Err(malformed(scheme, "the table must not be empty"));
            }
        } else {
            options.push(pair);
        }
    }
    let mut url = match database {
        SqlDatabase::Sqlite => {
            let path = &before_query[before_query.find("://").map_or(0, |i| i + 3)..];
            if path.is_empty() {
                return Err(malformed(scheme, "no file: use sqlite://PATH"));
            }
            format!("sqlite://{path}")
        }
        SqlDatabase::Postgres | SqlDatabase::MySql => {
            // The url crate's messages never quote the input.
            let url = url::Url::parse(before_query)
                .map_err(|e| malformed(scheme, e.to_string().to_lowercase()))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err(malformed(scheme, "no host"));
            }
            before_query.to_owned()
        }
    };
    if !options.is_empty() {
        url.push('?');
        url.push_str(&options.join("&"));
    }
    Ok(StoreUrl::Sql {
        database,
        url,
        table,
    })
}

/// Server, database and table, without credentials or options.
pub(super) fn identity(database: SqlDatabase, url: &str, table: &str) -> String {
    let base = url.split_once('?').map_or(url, |(b, _)| b);
    let place = match database {
        SqlDatabase::Sqlite => base.to_owned(),
        SqlDatabase::Postgres | SqlDatabase::MySql => {
            let mut url = url::Url::parse(base).expect("checked when parsed");
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
    };
    format!("{place}?table={table}")
}

/// The URL with its password hidden, `?table=` shown unless the default.
pub(super) fn redacted(url: &str, table: &str) -> String {
    let mut shown = storestack_sql::SqlConfig::new(url).redacted_url();
    if table != DEFAULT_SQL_TABLE {
        shown.push(if shown.contains('?') { '&' } else { '?' });
        shown.push_str("table=");
        shown.push_str(table);
    }
    shown
}

/// The password of a server URL, as written.
pub(super) fn password(url: &str) -> Option<String> {
    let base = url.split_once('?').map_or(url, |(b, _)| b);
    url::Url::parse(base)
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> StoreUrl {
        raw.parse().unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    #[test]
    fn server_urls_take_a_table_and_hide_the_password() {
        let url = parse("postgres://app:p%40ss@db:5432/web?table=sessions&sslmode=require");
        assert_eq!(
            url,
            StoreUrl::Sql {
                database: SqlDatabase::Postgres,
                url: "postgres://app:p%40ss@db:5432/web?sslmode=require".to_owned(),
                table: "sessions".to_owned(),
            }
        );
        assert_eq!(
            url.to_string(),
            "postgres://app:***@db:5432/web?sslmode=require&table=sessions"
        );
        assert_eq!(url.identity(), "postgres://db:5432/web?table=sessions");
        assert_eq!(url.secrets(), vec!["p@ss".to_owned(), "p%40ss".to_owned()]);
        assert_eq!(url.kind(), "postgres");
        let other = parse("postgresql://h/db");
        assert_eq!(other.kind(), "postgres");
        assert_eq!(other.to_string(), "postgresql://h/db");
        let mysql = parse("mysql://root@127.0.0.1:3306/test?table=s");
        assert_eq!(mysql.kind(), "mysql");
        assert_eq!(mysql.identity(), "mysql://127.0.0.1:3306/test?table=s");
        for (bad, what) in [
            ("postgres://:pw@/db", "host"),
            ("mysql://h/db?table=", "empty"),
            ("postgres://h/db#x", "fragment"),
        ] {
            let err = bad.parse::<StoreUrl>().unwrap_err().to_string();
            assert!(err.contains(what), "{bad}: {err}");
            assert!(!err.contains("pw"), "{err}");
        }
    }

    #[test]
    fn sqlite_urls_name_a_file() {
        let url = parse("sqlite://data/sessions.db?table=web_sessions");
        assert_eq!(
            url,
            StoreUrl::Sql {
                database: SqlDatabase::Sqlite,
                url: "sqlite://data/sessions.db".to_owned(),
                table: "web_sessions".to_owned(),
            }
        );
        assert_eq!(
            url.identity(),
            "sqlite://data/sessions.db?table=web_sessions"
        );
        assert_eq!(
            parse("sqlite:///var/s.db").to_string(),
            "sqlite:///var/s.db"
        );
        assert!(url.secrets().is_empty());
        assert!("sqlite://".parse::<StoreUrl>().is_err());
    }
}
