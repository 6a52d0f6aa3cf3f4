//! [`MongoConfig`]: where the store connects and how long it waits.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use storestack::clock::{self, SharedClock};
use storestack::limits::DEFAULT_MAX_VALUE_LEN;

/// The largest value a document can hold: MongoDB's 16 MiB document limit
/// less room for the `_id` (a key of up to 1 KiB), the field names and the
/// expiry.
pub const MAX_VALUE_LEN: usize = 16 * 1024 * 1024 - 4096;

/// Default [`MongoConfig::server_selection_timeout`]: 1 s (the driver's own
/// default, 30 s, would make every call hang that long during an outage).
pub const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// Default [`MongoConfig::connect_timeout`]: 1 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Default [`MongoConfig::operation_timeout`]: 2 s.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(2);

/// Configuration of a [`MongoStore`](crate::MongoStore).
///
/// Built with [`MongoConfig::new`] and the builder methods, or
/// deserialized (serde; durations are whole milliseconds, fields left out
/// take their defaults):
///
/// ```
/// use std::time::Duration;
/// use storestack_mongodb::MongoConfig;
///
/// let config = MongoConfig::new("mongodb://app:s3cret@db.internal:27017/?replicaSet=rs0")
///     .database("web")
///     .collection("sessions")
///     .max_pool_size(20)
///     .operation_timeout(Duration::from_millis(500));
/// // Debug never shows the credentials of the URI.
/// let shown = format!("{config:?}");
/// assert!(!shown.contains("s3cret"), "{shown}");
/// assert!(shown.contains("db.internal:27017"));
///
/// let from_json: MongoConfig = serde_json::from_str(
///     r#"{ "uri": "mongodb://127.0.0.1:27017", "collection": "s", "operation_timeout_ms": 250 }"#,
/// ).unwrap();
/// assert_eq!(from_json.operation_timeout, Duration::from_millis(250));
/// assert_eq!(from_json.database, "storestack");
/// ```
///
/// The pool sizes and the connect and server selection timeouts are taken,
/// in this order, from the field, from the URI's own option
/// (`maxPoolSize`, `connectTimeoutMS`, `serverSelectionTimeoutMS`, …) and
/// finally from storestack's default. Every other driver option (TLS,
/// credentials, read and write concerns, `retryWrites`, …) is set in the URI.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MongoConfig {
    /// A MongoDB connection string (`mongodb://` or `mongodb+srv://`).
    /// Default: `mongodb://127.0.0.1:27017`.
    pub uri: String,
    /// The database. Default: `storestack`.
    pub database: String,
    /// The collection holding this store's documents; the store owns it
    /// (`clear` empties it). Default: `sessions`.
    pub collection: String,
    /// Connections kept open per server even when idle. Default: the URI's
    /// `minPoolSize`, else 0.
    pub min_pool_size: Option<u32>,
    /// Most connections per server. Default: the URI's `maxPoolSize`, else
    /// the driver's 10.
    pub max_pool_size: Option<u32>,
    /// How long opening a connection may take. Default: the URI's
    /// `connectTimeoutMS`, else [`DEFAULT_CONNECT_TIMEOUT`].
    #[serde(rename = "connect_timeout_ms", with = "storestack::serde_millis::opt")]
    pub connect_timeout: Option<Duration>,
    /// How long an operation waits for a usable server before failing with
    /// `Unavailable`. Default: the URI's `serverSelectionTimeoutMS`, else
    /// [`DEFAULT_SERVER_SELECTION_TIMEOUT`].
    #[serde(
        rename = "server_selection_timeout_ms",
        with = "storestack::serde_millis::opt"
    )]
    pub server_selection_timeout: Option<Duration>,
    /// Deadline of every operation, end to end (server selection,
    /// connection, the driver's own single retry, the round trip); past it
    /// the operation fails with `Timeout`. Default:
    /// [`DEFAULT_OPERATION_TIMEOUT`].
    #[serde(rename = "operation_timeout_ms", with = "storestack::serde_millis")]
    pub operation_timeout: Duration,
    /// The largest value accepted, in bytes; at most [`MAX_VALUE_LEN`].
    /// Default: 8 MiB.
    pub max_value_len: usize,
    /// The clock deciding what is expired. Default: the system clock. Not
    /// serialized.
    #[serde(skip, default = "clock::system")]
    pub clock: SharedClock,
}

impl Default for MongoConfig {
    fn default() -> Self {
        MongoConfig {
            uri: "mongodb://127.0.0.1:27017".to_owned(),
            database: "storestack".to_owned(),
            collection: "sessions".to_owned(),
            min_pool_size: None,
            max_pool_size: None,
            connect_timeout: None,
            server_selection_timeout: None,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            max_value_len: DEFAULT_MAX_VALUE_LEN,
            clock: clock::system(),
        }
    }
}

impl MongoConfig {
    /// The defaults, connecting to `uri`.
    pub fn new(uri: impl Into<String>) -> Self {
        MongoConfig {
            uri: uri.into(),
            ..Self::default()
        }
    }

    /// Sets the database.
    pub fn database(mut self, name: impl Into<String>) -> Self {
        self.database = name.into();
        self
    }

    /// Sets the collection.
    pub fn collection(mut self, name: impl Into<String>) -> Self {
        self.collection = name.into();
        self
    }

    /// Sets the number of connections kept open when idle.
    pub fn min_pool_size(mut self, n: u32) -> Self {
        self.min_pool_size = Some(n);
        self
    }

    /// Sets the most connections per server.
    pub fn max_pool_size(mut self, n: u32) -> Self {
        self.max_pool_size = Some(n);
        self
    }

    /// Sets how long opening a connection may take.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = Some(d);
        self
    }

    /// Sets how long an operation waits for a usable server.
    pub fn server_selection_timeout(mut self, d: Duration) -> Self {
        self.server_selection_timeout = Some(d);
        self
    }

    /// Sets the deadline of every operation.
    pub fn operation_timeout(mut self, d: Duration) -> Self {
        self.operation_timeout = d;
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

    /// The URI with its credentials and secret options replaced by `***`.
    pub fn redacted_uri(&self) -> String {
        redact_uri(&self.uri)
    }
}

impl fmt::Debug for MongoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoConfig")
            .field("uri", &self.redacted_uri())
            .field("database", &self.database)
            .field("collection", &self.collection)
            .field("min_pool_size", &self.min_pool_size)
            .field("max_pool_size", &self.max_pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("server_selection_timeout", &self.server_selection_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("max_value_len", &self.max_value_len)
            .field("clock", &self.clock)
            .finish()
    }
}

/// Query options whose values are secrets (compared case-insensitively;
/// any option whose name mentions a password, secret or token is hidden
/// too).
const SECRET_OPTIONS: &[&str] = &["authmechanismproperties"];

/// Hides the user information and secret query options of a connection
/// string. Errs on the side of hiding: everything between the scheme and
/// the last `@` goes, even if that `@` was in the query.
fn redact_uri(uri: &str) -> String {
    let (scheme, rest) = match uri.find("://") {
        Some(i) => uri.split_at(i + 3),
        None => ("", uri),
    };
    let rest = match rest.rfind('@') {
        Some(at) => format!("***@{}", &rest[at + 1..]),
        None => rest.to_owned(),
    };
    let Some((head, query)) = rest.split_once('?') else {
        return format!("{scheme}{rest}");
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_option(name) => format!("{name}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{scheme}{head}?{}", query.join("&"))
}

fn is_secret_option(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_OPTIONS.contains(&name.as_str())
        || ["password", "secret", "token"]
            .iter()
            .any(|s| name.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_hidden() {
        let cases = [
            (
                "mongodb://user:p%40ss@h1:27017,h2:27018/db?authSource=admin",
                "mongodb://***@h1:27017,h2:27018/db?authSource=admin",
            ),
            ("mongodb://h:1/?appName=x", "mongodb://h:1/?appName=x"),
            (
                "mongodb+srv://u:pw@cluster.example/?authMechanismProperties=AWS_SESSION_TOKEN:abc&tls=true",
                "mongodb+srv://***@cluster.example/?authMechanismProperties=***&tls=true",
            ),
            (
                "mongodb://h/?tlsCertificateKeyFilePassword=hunter2",
                "mongodb://h/?tlsCertificateKeyFilePassword=***",
            ),
            // An unencoded '/' or '?' in a password must not leak either.
            ("mongodb://u:a/b?c@h/", "mongodb://***@h/"),
        ];
        for (uri, want) in cases {
            assert_eq!(redact_uri(uri), want);
            let shown = format!("{:?}", MongoConfig::new(uri));
            assert!(shown.contains(want), "{shown}");
        }
    }

    #[test]
    fn serde_round_trip_uses_millis() {
        let config = MongoConfig::new("mongodb://h")
            .connect_timeout(Duration::from_millis(1500))
            .operation_timeout(Duration::from_millis(300))
            .min_pool_size(2);
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(json["connect_timeout_ms"], 1500);
        assert_eq!(json["server_selection_timeout_ms"], serde_json::Value::Null);
        assert_eq!(json["operation_timeout_ms"], 300);
        let back: MongoConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back.connect_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(back.min_pool_size, Some(2));
        assert!(serde_json::from_str::<MongoConfig>(r#"{"colection": "typo"}"#).is_err());
    }
}
