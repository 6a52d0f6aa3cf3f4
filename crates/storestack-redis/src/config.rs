//! [`RedisConfig`]: where the servers are, how to reach them, and how the
//! store scopes itself inside a shared database.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use storestack::limits::{Limits, DEFAULT_MAX_VALUE_LEN};

/// The default key prefix: every key this store writes starts with it.
pub const DEFAULT_KEY_PREFIX: &str = "storestack:";

/// How the servers are laid out.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Topology {
    /// One server, given by exactly one URL.
    #[default]
    Standalone,
    /// A Redis Cluster; every URL is a seed node, the rest is discovered.
    Cluster,
    /// A primary found through Redis Sentinel; every URL is a sentinel.
    Sentinel {
        /// The name the sentinels monitor the primary under.
        service_name: String,
    },
}

/// Configuration of a [`RedisStore`](crate::RedisStore).
///
/// Build it with [`RedisConfig::new`], [`RedisConfig::cluster`] or
/// [`RedisConfig::sentinel`] and the builder methods, or deserialize it
/// (durations are whole milliseconds in fields ending in `_ms`; every field
/// is optional):
///
/// ```
/// use std::time::Duration;
/// use storestack_redis::{RedisConfig, Topology};
///
/// let json = r#"{
///     "urls": ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"],
///     "topology": "cluster",
///     "password": "hunter2",
///     "command_timeout_ms": 250,
///     "key_prefix": "sess:"
/// }"#;
/// let config: RedisConfig = serde_json::from_str(json).unwrap();
/// assert_eq!(config.topology, Topology::Cluster);
/// assert_eq!(config.command_timeout, Duration::from_millis(250));
/// assert_eq!(config.pool_size, 2); // a default
///
/// // Debug never shows a password, not even one inside a URL.
/// let config = config.url("redis://user:s3cret@10.0.0.3:7000");
/// let shown = format!("{config:?}");
/// assert!(!shown.contains("hunter2") && !shown.contains("s3cret"), "{shown}");
/// ```
///
/// # URLs
///
/// `redis://[[username][:password]@]host[:port][/database]`, or
/// `rediss://…` for TLS (needs the `tls` or `native-tls` cargo feature).
/// The port defaults to 6379 (26379 for a sentinel). Credentials and the
/// database come from the first URL unless set with
/// [`username`](Self::username), [`password`](Self::password) and
/// [`database`](Self::database). Cluster mode has no databases.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfig {
    /// Server URLs: one for standalone, seeds for a cluster, sentinels for
    /// sentinel. Default: `["redis://127.0.0.1:6379"]`.
    pub urls: Vec<String>,
    /// The layout of the servers. Default: standalone.
    pub topology: Topology,
    /// ACL user name; overrides the one in the URL.
    pub username: Option<String>,
    /// Password; overrides the one in the URL. Never shown by `Debug`.
    pub password: Option<String>,
    /// Database index to `SELECT` (standalone and sentinel only);
    /// overrides the one in the URL.
    pub database: Option<u8>,
    /// Use TLS even with a `redis://` URL. Needs the `tls` or `native-tls`
    /// cargo feature. Default: `false`.
    pub tls: bool,
    /// Connections (fred clients), used round-robin; each multiplexes any
    /// number of concurrent commands. Default: 2.
    pub pool_size: usize,
    /// Time allowed to open a connection, including the TLS handshake, and
    /// for the commands run on connect (`AUTH`, `SELECT`, `CLUSTER SLOTS`).
    /// Default: 2 s.
    #[serde(rename = "connect_timeout_ms", with = "storestack::serde_millis")]
    pub connect_timeout: Duration,
    /// Time allowed to every command, queueing included; past it the call
    /// fails with `Timeout`. Must be non-zero. Default: 1 s.
    #[serde(rename = "command_timeout_ms", with = "storestack::serde_millis")]
    pub command_timeout: Duration,
    /// First delay before reconnecting after a connection is lost; it
    /// doubles on every failed attempt. Default: 50 ms.
    #[serde(rename = "reconnect_min_delay_ms", with = "storestack::serde_millis")]
    pub reconnect_min_delay: Duration,
    /// Longest delay between reconnection attempts: bounds how long the
    /// store keeps failing after the server is back. Default: 1 s.
    #[serde(rename = "reconnect_max_delay_ms", with = "storestack::serde_millis")]
    pub reconnect_max_delay: Duration,
    /// A connection with a command waiting this long for its reply is
    /// considered dead and is replaced (a silent network partition sends
    /// no reset). `None` turns the check off. Default: 3 s.
    #[serde(
        rename = "unresponsive_timeout_ms",
        with = "storestack::serde_millis::opt"
    )]
    pub unresponsive_timeout: Option<Duration>,
    /// Prefix of every key of this store; `len`, `scan` and `clear` see
    /// only keys with it. Must not be empty. Default: `"storestack:"`.
    pub key_prefix: String,
    /// The largest value accepted, in bytes. Default:
    /// [`DEFAULT_MAX_VALUE_LEN`] (8 MiB).
    pub max_value_len: usize,
    /// Return from `connect` at once and connect in the background;
    /// until the first connection is up every call fails with
    /// `Unavailable`. Default: `false` (`connect` fails if the server is
    /// unreachable).
    pub lazy_connect: bool,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            urls: vec!["redis://127.0.0.1:6379".to_owned()],
            topology: Topology::Standalone,
            username: None,
            password: None,
            database: None,
            tls: false,
            pool_size: 2,
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(1),
            reconnect_min_delay: Duration::from_millis(50),
            reconnect_max_delay: Duration::from_secs(1),
            unresponsive_timeout: Some(Duration::from_secs(3)),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            max_value_len: DEFAULT_MAX_VALUE_LEN,
            lazy_connect: false,
        }
    }
}

impl RedisConfig {
    /// A standalone server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            urls: vec![url.into()],
            ..RedisConfig::default()
        }
    }

    /// A Redis Cluster reached through the given seed nodes.
    pub fn cluster<I, S>(seeds: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisConfig {
            urls: seeds.into_iter().map(Into::into).collect(),
            topology: Topology::Cluster,
            ..RedisConfig::default()
        }
    }

    /// The primary that the given sentinels monitor as `service_name`.
    pub fn sentinel<I, S>(sentinels: I, service_name: impl Into<String>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisConfig {
            urls: sentinels.into_iter().map(Into::into).collect(),
            topology: Topology::Sentinel {
                service_name: service_name.into(),
            },
            ..RedisConfig::default()
        }
    }

    /// Adds a URL (another seed node or sentinel).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.urls.push(url.into());
        self
    }

    /// Sets the ACL user name.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Sets the password.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Sets the database index.
    pub fn database(mut self, database: u8) -> Self {
        self.database = Some(database);
        self
    }

    /// Uses TLS (needs the `tls` or `native-tls` cargo feature).
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// Sets the number of connections.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// Sets the connection timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the timeout of every command.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Sets the first and the longest delay between reconnection attempts.
    pub fn reconnect_delay(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_min_delay = min;
        self.reconnect_max_delay = max;
        self
    }

    /// Sets (or with `None` turns off) unresponsive-connection detection.
    pub fn unresponsive_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.unresponsive_timeout = timeout;
        self
    }

    /// Sets the key prefix.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets the largest value accepted, in bytes.
    pub fn max_value_len(mut self, bytes: usize) -> Self {
        self.max_value_len = bytes;
        self
    }

    /// Takes the value size limit from `limits`.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.max_value_len = limits.max_value_len;
        self
    }

    /// Connects in the background instead of failing when the server is
    /// unreachable at start.
    pub fn lazy_connect(mut self, lazy: bool) -> Self {
        self.lazy_connect = lazy;
        self
    }

    /// The value size limit as [`Limits`].
    pub fn value_limits(&self) -> Limits {
        Limits::default().max_value_len(self.max_value_len)
    }
}

/// A URL with its password replaced, for `Debug`.
fn redacted_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                // Cannot fail: a URL with a password has a host.
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "<unparsable url>".to_owned(),
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let urls: Vec<String> = self.urls.iter().map(|u| redacted_url(u)).collect();
        f.debug_struct("RedisConfig")
            .field("urls", &urls)
            .field("topology", &self.topology)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("database", &self.database)
            .field("tls", &self.tls)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("reconnect_min_delay", &self.reconnect_min_delay)
            .field("reconnect_max_delay", &self.reconnect_max_delay)
            .field("unresponsive_timeout", &self.unresponsive_timeout)
            .field("key_prefix", &self.key_prefix)
            .field("max_value_len", &self.max_value_len)
            .field("lazy_connect", &self.lazy_connect)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_round_trip_keeps_every_field() {
        let config = RedisConfig::sentinel(["redis://s1:26379", "redis://s2"], "primary")
            .password("pw")
            .database(3)
            .pool_size(5)
            .command_timeout(Duration::from_millis(75))
            .unresponsive_timeout(None)
            .key_prefix("app:")
            .max_value_len(1024);
        let json = serde_json::to_string(&config).unwrap();
        assert!(json.contains(r#""command_timeout_ms":75"#), "{json}");
        let back: RedisConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<RedisConfig>(r#"{"command_timeout": 5}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn debug_hides_passwords() {
        let config = RedisConfig::new("redis://:urlsecret@h:1/2").password("fieldsecret");
        let shown = format!("{config:?}");
        assert!(!shown.contains("urlsecret"), "{shown}");
        assert!(!shown.contains("fieldsecret"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
        let bad = format!("{:?}", RedisConfig::new("not a url with secret"));
        assert!(!bad.contains("secret"), "{bad}");
    }

    #[test]
    fn limits_round_trip() {
        let config = RedisConfig::default().limits(Limits::default().max_value_len(10));
        assert_eq!(config.value_limits().max_value_len, 10);
    }
}
