//! [`SqlConfig`]: where the store connects, which table it owns, how long
//! it waits and how it prunes.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use storestack::clock::{self, SharedClock};
use storestack::limits::DEFAULT_MAX_VALUE_LEN;

/// The default table: `storestack_sessions`.
pub const DEFAULT_TABLE: &str = "storestack_sessions";

/// Default [`SqlConfig::acquire_timeout`]: 1 s (sqlx's own default, 30 s,
/// would make every call hang that long while the server is gone).
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

/// Default [`SqlConfig::statement_timeout`]: 2 s.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);

/// Default [`SqlConfig::prune_interval`]: 60 s.
pub const DEFAULT_PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// Default [`SqlConfig::prune_batch`]: 1 000 rows per `DELETE`.
pub const DEFAULT_PRUNE_BATCH: u32 = 1000;

/// Default [`SqlConfig::max_connections`]: 10.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

/// Configuration of a [`SqlStore`](crate::SqlStore): the same for
/// PostgreSQL, MySQL/MariaDB and SQLite.
///
/// Built with [`SqlConfig::new`] (or [`SqlConfig::sqlite_file`],
/// [`SqlConfig::sqlite_memory`]) and the builder methods, or deserialized
/// (serde; durations are whole milliseconds in fields ending in `_ms`,
/// fields left out take their defaults):
///
/// ```
/// use std::time::Duration;
/// use storestack_sql::SqlConfig;
///
/// let config = SqlConfig::new("postgres://app:s3cret@db.internal:5432/web")
///     .table("sessions")
///     .unlogged(true)
///     .max_connections(20)
///     .statement_timeout(Duration::from_millis(500));
/// // Debug never shows the password.
/// let shown = format!("{config:?}");
/// assert!(!shown.contains("s3cret"), "{shown}");
/// assert!(shown.contains("db.internal:5432"));
///
/// let from_json: SqlConfig = serde_json::from_str(
///     r#"{ "url": "mysql://root@127.0.0.1:3306/test", "table": "s", "prune_interval_ms": null }"#,
/// ).unwrap();
/// assert_eq!(from_json.prune_interval, None);
/// assert_eq!(from_json.statement_timeout, Duration::from_secs(2));
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SqlConfig {
    /// A sqlx connection URL: `postgres://…`, `mysql://…`, `sqlite://PATH`
    /// or `sqlite::memory:`. Options the driver understands (`sslmode`,
    /// `statement-cache-capacity`, …) go in its query string. Default:
    /// `sqlite::memory:`.
    pub url: String,
    /// The table holding this store's rows, optionally qualified by a
    /// schema (PostgreSQL) or database (MySQL): `sessions`,
    /// `web.sessions`. ASCII letters, digits and `_`, not starting with a
    /// digit, at most 48 characters per part. The store owns the table
    /// (`clear` empties it). Default: [`DEFAULT_TABLE`].
    pub table: String,
    /// Whether [`connect`](crate::SqlStore::connect) creates the table and
    /// its expiry index when they are missing. Default: `true`.
    pub create_table: bool,
    /// PostgreSQL only: create the table `UNLOGGED` (see the crate docs for
    /// the trade-off). Refused by the other databases. Default: `false`.
    pub unlogged: bool,
    /// Most connections in the pool. Default: [`DEFAULT_MAX_CONNECTIONS`];
    /// an in-memory SQLite database always uses one.
    pub max_connections: u32,
    /// Connections kept open even when idle. Default: 0.
    pub min_connections: u32,
    /// How long getting a connection may take, opening a new one included;
    /// past it the call fails with `Unavailable`. Default:
    /// [`DEFAULT_ACQUIRE_TIMEOUT`].
    #[serde(rename = "acquire_timeout_ms", with = "storestack::serde_millis")]
    pub acquire_timeout: Duration,
    /// Deadline of every operation, end to end (getting a connection
    /// included); past it the operation fails with `Timeout`. PostgreSQL
    /// also gets it as its `statement_timeout`, SQLite as its busy timeout.
    /// Default: [`DEFAULT_STATEMENT_TIMEOUT`].
    #[serde(rename = "statement_timeout_ms", with = "storestack::serde_millis")]
    pub statement_timeout: Duration,
    /// How often the background task deletes expired rows; `None` runs no
    /// task (call [`prune_expired`](crate::SqlStore::prune_expired)
    /// yourself, or let rows stay: they are invisible either way). Default:
    /// [`DEFAULT_PRUNE_INTERVAL`].
    #[serde(rename = "prune_interval_ms", with = "storestack::serde_millis::opt")]
    pub prune_interval: Option<Duration>,
    /// Most rows one pruning `DELETE` removes. Default:
    /// [`DEFAULT_PRUNE_BATCH`].
    pub prune_batch: u32,
    /// The largest value accepted, in bytes. Default: 8 MiB.
    pub max_value_len: usize,
    /// The clock deciding what is expired. Default: the system clock. Not
    /// serialized.
    #[serde(skip, default = "clock::system")]
    pub clock: SharedClock,
}

impl Default for SqlConfig {
    fn default() -> Self {
        SqlConfig {
            url: "sqlite::memory:".to_owned(),
            table: DEFAULT_TABLE.to_owned(),
            create_table: true,
            unlogged: false,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            min_connections: 0,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            prune_interval: Some(DEFAULT_PRUNE_INTERVAL),
            prune_batch: DEFAULT_PRUNE_BATCH,
            max_value_len: DEFAULT_MAX_VALUE_LEN,
            clock: clock::system(),
        }
    }
}

impl SqlConfig {
    /// The defaults, connecting to `url`.
    pub fn new(url: impl Into<String>) -> Self {
        SqlConfig {
            url: url.into(),
            ..Self::default()
        }
    }

    /// The defaults on a SQLite database file, created if missing.
    ///
    /// ```
    /// let config = storestack_sql::SqlConfig::sqlite_file("/var/lib/app/sessions.db");
    /// assert_eq!(config.url, "sqlite:///var/lib/app/sessions.db");
    /// ```
    pub fn sqlite_file(path: impl AsRef<Path>) -> Self {
        // sqlx percent-decodes the path: encode what it would misread.
        let path = path.as_ref().to_string_lossy();
        let mut encoded = String::with_capacity(path.len());
        for c in path.chars() {
            match c {
                '%' => encoded.push_str("%25"),
                '?' => encoded.push_str("%3F"),
                '#' => encoded.push_str("%23"),
                c => encoded.push(c),
            }
        }
        Self::new(format!("sqlite://{encoded}"))
    }

    /// The defaults on a private in-memory SQLite database (gone when the
    /// store is dropped).
    pub fn sqlite_memory() -> Self {
        Self::new("sqlite::memory:")
    }

    /// Sets the table.
    pub fn table(mut self, name: impl Into<String>) -> Self {
        self.table = name.into();
        self
    }

    /// Sets whether `connect` creates the table.
    pub fn create_table(mut self, yes: bool) -> Self {
        self.create_table = yes;
        self
    }

    /// Sets whether a PostgreSQL table is created `UNLOGGED`.
    pub fn unlogged(mut self, yes: bool) -> Self {
        self.unlogged = yes;
        self
    }

    /// Sets the most connections in the pool.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Sets the connections kept open when idle.
    pub fn min_connections(mut self, n: u32) -> Self {
        self.min_connections = n;
        self
    }

    /// Sets how long getting a connection may take.
    pub fn acquire_timeout(mut self, d: Duration) -> Self {
        self.acquire_timeout = d;
        self
    }

    /// Sets the deadline of every operation.
    pub fn statement_timeout(mut self, d: Duration) -> Self {
        self.statement_timeout = d;
        self
    }

    /// Sets how often expired rows are deleted (`None`: never, by the store).
    pub fn prune_interval(mut self, every: Option<Duration>) -> Self {
        self.prune_interval = every;
        self
    }

    /// Sets the most rows one pruning `DELETE` removes.
    pub fn prune_batch(mut self, rows: u32) -> Self {
        self.prune_batch = rows;
        self
    }

    /// Sets the largest value accepted, in bytes.
    pub fn max_value_len(mut self, bytes: usize) -> Self {
        self.max_value_len = bytes;
        self
    }

    /// Sets the clock deciding expiry (a
    /// [`MockClock`](storestack::clock::MockClock) in tests).
    pub fn clock(mut self, clock: impl storestack::clock::Clock) -> Self {
        self.clock = std::sync::Arc::new(clock);
        self
    }

    /// The URL with its password and secret query options replaced by
    /// `***`.
    ///
    /// ```
    /// let config = storestack_sql::SqlConfig::new("mysql://app:pw@db:3306/web?sslmode=required");
    /// assert_eq!(config.redacted_url(), "mysql://app:***@db:3306/web?sslmode=required");
    /// ```
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

impl fmt::Debug for SqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlConfig")
            .field("url", &self.redacted_url())
            .field("table", &self.table)
            .field("create_table", &self.create_table)
            .field("unlogged", &self.unlogged)
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("prune_interval", &self.prune_interval)
            .field("prune_batch", &self.prune_batch)
            .field("max_value_len", &self.max_value_len)
            .field("clock", &self.clock)
            .finish()
    }
}

/// Hides the password of a URL (everything between the first `:` of the
/// user information and the last `@` before the path), and the values of
/// query options whose names mention a password, secret or token.
fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let (authority_and_path, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let mut out = scheme.to_owned();
    match authority_and_path.rfind('@') {
        Some(at) => {
            let user_info = &authority_and_path[..at];
            match user_info.split_once(':') {
                Some((user, _)) => out.push_str(&format!("{user}:***")),
                None => out.push_str(user_info),
            }
            out.push_str(&authority_and_path[at..]);
        }
        None => out.push_str(authority_and_path),
    }
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_secret_option(name) => format!("{name}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

fn is_secret_option(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "secret", "token"]
        .iter()
        .any(|s| name.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        let cases = [
            (
                "postgres://app:p%40ss@h1:5432/db?sslmode=require",
                "postgres://app:***@h1:5432/db?sslmode=require",
            ),
            ("postgres://h/db", "postgres://h/db"),
            (
                "mysql://root@127.0.0.1:3306/test",
                "mysql://root@127.0.0.1:3306/test",
            ),
            (
                "postgres://h/db?password=hunter2&sslpassword=x",
                "postgres://h/db?password=***&sslpassword=***",
            ),
            // An unencoded '@' or '/' in a password must not leak either.
            ("mysql://u:a/b@c@h/db", "mysql://u:***@h/db"),
            ("sqlite::memory:", "sqlite::memory:"),
            ("sqlite:///tmp/s.db", "sqlite:///tmp/s.db"),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
            let shown = format!("{:?}", SqlConfig::new(url));
            assert!(shown.contains(want), "{shown}");
        }
    }

    #[test]
    fn serde_round_trip_uses_millis() {
        let config = SqlConfig::new("postgres://h/db")
            .acquire_timeout(Duration::from_millis(1500))
            .prune_interval(Some(Duration::from_secs(5)))
            .min_connections(2);
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(json["acquire_timeout_ms"], 1500);
        assert_eq!(json["prune_interval_ms"], 5000);
        assert_eq!(json["statement_timeout_ms"], 2000);
        let back: SqlConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back.acquire_timeout, Duration::from_millis(1500));
        assert_eq!(back.min_connections, 2);
        assert!(serde_json::from_str::<SqlConfig>(r#"{"tabel": "typo"}"#).is_err());
    }

    #[test]
    fn sqlite_paths_survive_the_url() {
        assert_eq!(
            SqlConfig::sqlite_file("a?b#c%d.db").url,
            "sqlite://a%3Fb%23c%25d.db"
        );
    }
}
