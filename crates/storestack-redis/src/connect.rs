//! From a [`RedisConfig`] to a fred client builder: URL parsing and the
//! client settings that make outages fail fast.

use std::borrow::Cow;
use std::time::Duration;

use fred::interfaces::ClientLike;
use fred::types::config::{
    ClusterDiscoveryPolicy, Config, ConnectionConfig, PerformanceConfig, ReconnectPolicy, Server,
    ServerConfig, TcpConfig, UnresponsiveConfig,
};
use fred::types::Builder;
use percent_encoding::percent_decode_str;
use storestack::{Op, StoreError};

use crate::config::{RedisConfig, Topology};
use crate::error::{self, STORE_NAME};

/// The parts of one URL.
#[derive(Debug, PartialEq, Eq)]
struct ParsedUrl {
    host: String,
    port: u16,
    username: Option<String>,
    password: Option<String>,
    database: Option<u8>,
    tls: bool,
}

fn invalid(message: impl Into<Cow<'static, str>>) -> StoreError {
    StoreError::invalid_input(Op::Connect)
        .with_store(STORE_NAME)
        .with_message(message)
}

fn decode(part: &str, what: &str, index: usize) -> Result<String, StoreError> {
    percent_decode_str(part)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| invalid(format!("url #{index}: {what} is not utf-8")))
}

/// Parses URL number `index` (1-based, for messages: a URL may hold a
/// password, so it is never quoted).
fn parse_url(raw: &str, index: usize, default_port: u16) -> Result<ParsedUrl, StoreError> {
    let url = url::Url::parse(raw)
        .map_err(|e| invalid(format!("url #{index} is malformed")).with_source(e))?;
    let tls = match url.scheme() {
        "redis" | "valkey" => false,
        "rediss" | "valkeys" => true,
        _ => {
            return Err(invalid(format!(
                "url #{index}: scheme must be redis or rediss"
            )))
        }
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid(format!("url #{index} has no host")))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(format!(
            "url #{index}: query parameters are not supported, use the config fields"
        )));
    }
    let username = match url.username() {
        "" => None,
        u => Some(decode(u, "user name", index)?),
    };
    let password = url
        .password()
        .map(|p| decode(p, "password", index))
        .transpose()?;
    let database = match url.path().trim_start_matches('/') {
        "" => None,
        db => Some(
            db.parse::<u8>()
                .map_err(|_| invalid(format!("url #{index}: database must be 0 to 255")))?,
        ),
    };
    Ok(ParsedUrl {
        host,
        port: url.port().unwrap_or(default_port),
        username,
        password,
        database,
        tls,
    })
}

#[cfg_attr(
    not(any(feature = "tls", feature = "native-tls")),
    allow(unused_variables)
)]
fn server(url: &ParsedUrl, tls: bool) -> Server {
    #[cfg(any(feature = "tls", feature = "native-tls"))]
    if tls {
        return Server::new_with_tls(url.host.clone(), url.port, Some(url.host.clone()));
    }
    Server::new(url.host.clone(), url.port)
}

#[cfg(any(feature = "tls", feature = "native-tls"))]
fn with_tls(mut config: Config) -> Result<Config, StoreError> {
    use fred::types::config::TlsConnector;
    #[cfg(feature = "native-tls")]
    let connector = TlsConnector::default_native_tls();
    #[cfg(not(feature = "native-tls"))]
    let connector = TlsConnector::default_rustls();
    let connector = connector.map_err(|e| invalid("cannot set up tls").with_source(e))?;
    config.tls = Some(connector.into());
    Ok(config)
}

#[cfg(not(any(feature = "tls", feature = "native-tls")))]
fn with_tls(_: Config) -> Result<Config, StoreError> {
    Err(invalid(
        "tls needs the `tls` or `native-tls` feature of storestack-redis",
    ))
}

/// Checks `config` and turns it into a fred builder.
pub(crate) fn builder(config: &RedisConfig) -> Result<Builder, StoreError> {
    if config.urls.is_empty() {
        return Err(invalid("no url given"));
    }
    if config.pool_size == 0 {
        return Err(invalid("pool size must be at least 1"));
    }
    if config.command_timeout.is_zero() {
        return Err(invalid("command timeout must not be zero"));
    }
    if config.connect_timeout.is_zero() {
        return Err(invalid("connect timeout must not be zero"));
    }
    if config.key_prefix.is_empty() {
        return Err(invalid(
            "key prefix is empty: give the store a prefix such as \"storestack:\"",
        ));
    }
    let default_port = match config.topology {
        Topology::Sentinel { .. } => 26379,
        _ => 6379,
    };
    let urls = config
        .urls
        .iter()
        .enumerate()
        .map(|(i, raw)| parse_url(raw, i + 1, default_port))
        .collect::<Result<Vec<_>, _>>()?;
    let first = &urls[0];
    let tls = config.tls || urls.iter().any(|u| u.tls);
    let servers: Vec<Server> = urls.iter().map(|u| server(u, tls)).collect();
    let database = config.database.or(first.database);

    let server = match &config.topology {
        Topology::Standalone => {
            if urls.len() != 1 {
                return Err(invalid("a standalone store takes exactly one url"));
            }
            ServerConfig::Centralized {
                server: servers[0].clone(),
            }
        }
        Topology::Cluster => {
            if database.is_some_and(|db| db != 0) {
                return Err(invalid("redis cluster has no databases other than 0"));
            }
            ServerConfig::Clustered {
                hosts: servers,
                policy: ClusterDiscoveryPolicy::default(),
            }
        }
        Topology::Sentinel { service_name } => ServerConfig::Sentinel {
            hosts: servers,
            service_name: service_name.clone(),
        },
    };

    let fred_config = Config {
        server,
        username: config.username.clone().or_else(|| first.username.clone()),
        password: config.password.clone().or_else(|| first.password.clone()),
        database: database.filter(|_| !matches!(config.topology, Topology::Cluster)),
        // `connect` reports a first failed connection (unless lazy).
        fail_fast: !config.lazy_connect,
        ..Config::default()
    };
    let fred_config = if tls {
        with_tls(fred_config)?
    } else {
        fred_config
    };

    let mut builder = Builder::from_config(fred_config);
    builder.set_policy(reconnect_policy(config));
    builder.set_connection_config(connection_config(config));
    builder.set_performance_config(PerformanceConfig {
        // Every command, queueing included, is bounded.
        default_command_timeout: config.command_timeout,
        ..PerformanceConfig::default()
    });
    Ok(builder)
}

/// Connects `client` now (not lazily), within a bound on the whole
/// (fred bounds each step by the connect timeout; a cluster connects to
/// every primary). A client that did not connect is stopped.
pub(crate) async fn init<C: ClientLike>(
    client: &C,
    config: &RedisConfig,
) -> Result<(), StoreError> {
    let deadline = config.connect_timeout * 3 + Duration::from_millis(500);
    match tokio::time::timeout(deadline, client.init()).await {
        Ok(Ok(_task)) => Ok(()),
        // fred has stopped the client already.
        Ok(Err(e)) => Err(error::map(Op::Connect, e)),
        Err(_) => {
            let _ = client.quit().await;
            Err(StoreError::timeout(Op::Connect)
                .with_store(STORE_NAME)
                .with_message("could not connect within the connect timeout"))
        }
    }
}

fn millis_u32(d: Duration) -> u32 {
    d.as_millis().clamp(1, u32::MAX as u128) as u32
}

/// Reconnect forever, backing off exponentially between the configured
/// delays: the same store recovers by itself however long the outage.
fn reconnect_policy(config: &RedisConfig) -> ReconnectPolicy {
    let min = millis_u32(config.reconnect_min_delay);
    let max = millis_u32(config.reconnect_max_delay).max(min);
    let mut policy = ReconnectPolicy::new_exponential(0, min, max, 2);
    // Jitter spreads the reconnects of many clients; keep it below the
    // first delay so short outages stay short.
    policy.set_jitter(min.min(100));
    policy
}

fn connection_config(config: &RedisConfig) -> ConnectionConfig {
    let unresponsive = match config.unresponsive_timeout {
        Some(max) => UnresponsiveConfig {
            max_timeout: Some(max),
            interval: (max / 4).max(Duration::from_millis(10)),
        },
        None => UnresponsiveConfig::default(),
    };
    ConnectionConfig {
        connection_timeout: config.connect_timeout,
        internal_command_timeout: config.connect_timeout,
        unresponsive,
        tcp: TcpConfig {
            nodelay: Some(true),
            ..TcpConfig::default()
        },
        ..ConnectionConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storestack::ErrorKind;

    #[test]
    fn parses_credentials_database_and_port() {
        let u = parse_url("redis://al%40ice:p%3Ass@example.com:7000/3", 1, 6379).unwrap();
        assert_eq!(
            u,
            ParsedUrl {
                host: "example.com".into(),
                port: 7000,
                username: Some("al@ice".into()),
                password: Some("p:ss".into()),
                database: Some(3),
                tls: false,
            }
        );
        let u = parse_url("rediss://[::1]", 1, 26379).unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls), ("::1", 26379, true));
    }

    #[test]
    fn bad_urls_are_invalid_input_without_the_url() {
        for bad in [
            "http://h",
            "redis://:secret@h/999",
            "redis://:secret@h?x=1",
            "nonsense secret",
        ] {
            let err = parse_url(bad, 2, 6379).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
            assert!(err.to_string().contains("url #2"), "{err}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    #[test]
    fn config_checks() {
        let bad = [
            RedisConfig::default().key_prefix(""),
            RedisConfig::default().pool_size(0),
            RedisConfig::default().command_timeout(Duration::ZERO),
            RedisConfig::default().url("redis://second"),
            RedisConfig::cluster(["redis://h:1/2"]),
        ];
        for config in bad {
            let err = builder(&config).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{config:?}");
        }
        assert!(builder(&RedisConfig::default()).is_ok());
    }

    #[cfg(not(any(feature = "tls", feature = "native-tls")))]
    #[test]
    fn tls_without_feature_is_refused() {
        let err = builder(&RedisConfig::new("rediss://h")).unwrap_err();
        assert!(err.message().contains("feature"), "{err}");
    }

    #[test]
    fn settings_bound_every_wait() {
        let config = RedisConfig::cluster(["redis://a:1", "redis://b:2"])
            .command_timeout(Duration::from_millis(300))
            .reconnect_delay(Duration::from_millis(20), Duration::from_millis(500));
        let b = builder(&config).unwrap();
        assert_eq!(
            b.get_performance_config().default_command_timeout,
            Duration::from_millis(300)
        );
        let conn = b.get_connection_config();
        assert_eq!(conn.connection_timeout, config.connect_timeout);
        assert_eq!(conn.unresponsive.max_timeout, Some(Duration::from_secs(3)));
        assert_eq!(b.get_policy().map(|p| p.max_attempts()), Some(0));
        let server = &b.get_config().unwrap().server;
        assert_eq!(server.hosts().len(), 2);
        assert!(server.is_clustered());
    }
}
