//! [`StoreUrl`]: which store a URL names, parsed without ever quoting the
//! URL back (it may hold a password).

use std::fmt;
use std::str::FromStr;

use percent_encoding::percent_decode_str;

mod sql;
pub use sql::{SqlDatabase, DEFAULT_SQL_TABLE};

/// The key prefix of a Redis store whose URL names none.
pub const DEFAULT_REDIS_PREFIX: &str = storestack_redis::DEFAULT_KEY_PREFIX;

/// A store named on the command line.
///
/// | URL | store |
/// |---|---|
/// | `memory://` | an empty in-process store |
/// | `memory://?demo=N` | an in-process store seeded with `N` demo records |
/// | `redis://[user:password@]host[:port][/db][?prefix=P]` | Redis (`rediss://` for TLS); keys under `P` (default `storestack:`) |
/// | `mongodb://[user:password@]host[:port][,host…]/DB/COLLECTION[?options]` | MongoDB (also `mongodb+srv://`) |
/// | `mongodb://host[:port]/DB?collection=COLLECTION[&options]` | the same |
/// | `postgres://[user[:password]@]host[:port]/DB[?table=T&options]` | PostgreSQL (also `postgresql://`); rows in table `T` (default `storestack_sessions`) |
/// | `mysql://[user[:password]@]host[:port]/DB[?table=T&options]` | MySQL or MariaDB |
/// | `sqlite://PATH[?table=T]` | a SQLite file (`sqlite:///abs/path.db`, `sqlite://relative.db`), created if missing |
///
/// Query values are percent-decoded (`?prefix=sess%3A` is `sess:`). MongoDB
/// options other than `collection`, and SQL options other than `table`, go
/// to the driver unchanged.
///
/// `Display` and `Debug` show the URL with its credentials replaced by
/// `***`; errors never quote it.
///
/// ```
/// use storestack_cli::StoreUrl;
///
/// let url: StoreUrl = "redis://:s3cret@10.0.0.5:6380/2?prefix=sess%3A".parse()?;
/// assert_eq!(url.to_string(), "redis://:***@10.0.0.5:6380/2?prefix=sess:");
///
/// let url: StoreUrl = "mongodb://app:s3cret@db1:27017,db2:27017/web/sessions?replicaSet=rs0".parse()?;
/// assert_eq!(url.to_string(), "mongodb://***@db1:27017,db2:27017/web/sessions?replicaSet=rs0");
///
/// let err = "mongodb://app:s3cret@db1:27017/web".parse::<StoreUrl>().unwrap_err();
/// assert!(err.to_string().contains("no collection"));
/// assert!(!err.to_string().contains("s3cret"));
/// # Ok::<_, storestack_cli::UrlError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreUrl {
    /// An in-process [`MemoryStore`](storestack::MemoryStore).
    Memory {
        /// Demo records to seed it with.
        demo: u64,
    },
    /// A [`RedisStore`](storestack_redis::RedisStore).
    Redis {
        /// The server URL without the query (what `RedisConfig` takes).
        url: String,
        /// The key prefix.
        prefix: String,
    },
    /// A [`MongoStore`](storestack_mongodb::MongoStore).
    Mongo {
        /// The connection string without the collection (what
        /// `MongoConfig` takes).
        uri: String,
        /// The database.
        database: String,
        /// The collection.
        collection: String,
    },
    /// A [`SqlStore`](storestack_sql::SqlStore).
    Sql {
        /// Which database.
        database: SqlDatabase,
        /// The connection URL without the table (what `SqlConfig` takes).
        url: String,
        /// The table.
        table: String,
    },
}

/// Why a URL names no store. Messages never quote the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// No `scheme://`.
    #[error("not a url: expected memory://, redis://, rediss://, mongodb://, postgres://, mysql:// or sqlite://")]
    NoScheme,
    /// A scheme this command does not know.
    #[error("unknown scheme {0:?}: expected memory://, redis://, rediss://, mongodb://, mongodb+srv://, postgres://, postgresql://, mysql:// or sqlite://")]
    UnknownScheme(String),
    /// The URL could not be parsed.
    #[error("malformed {scheme} url: {reason}")]
    Malformed {
        /// The scheme.
        scheme: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A query parameter this scheme does not take.
    #[error("{scheme} urls take no {name:?} parameter (accepted: {accepted})")]
    UnknownParameter {
        /// The scheme.
        scheme: &'static str,
        /// The parameter.
        name: String,
        /// What is accepted.
        accepted: &'static str,
    },
    /// A MongoDB URL without a database.
    #[error("mongodb url names no database: use mongodb://host:port/DATABASE/COLLECTION")]
    NoDatabase,
    /// A MongoDB URL without a collection.
    #[error("mongodb url names no collection: use mongodb://host:port/DATABASE/COLLECTION or ?collection=NAME")]
    NoCollection,
}

fn malformed(scheme: &'static str, reason: impl Into<String>) -> UrlError {
    UrlError::Malformed {
        scheme,
        reason: reason.into(),
    }
}

fn decode(scheme: &'static str, what: &str, raw: &str) -> Result<String, UrlError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| malformed(scheme, format!("{what} is not utf-8 once percent-decoded")))
}

/// `name=value` pairs of a query, percent-decoded (`+` stays `+`: a key
/// prefix may hold one).
fn pairs(scheme: &'static str, query: &str) -> Result<Vec<(String, String)>, UrlError> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((
                decode(scheme, "a parameter name", name)?,
                decode(scheme, "a parameter value", value)?,
            ))
        })
        .collect()
}

/// Hands `take` the value of every pair of `query` named `accepted` (the
/// one parameter this scheme takes), in order; any other name is an
/// [`UrlError::UnknownParameter`].
fn each_param(
    scheme: &'static str,
    query: &str,
    accepted: &'static str,
    mut take: impl FnMut(String) -> Result<(), UrlError>,
) -> Result<(), UrlError> {
    for (name, value) in pairs(scheme, query)? {
        if name != accepted {
            return Err(UrlError::UnknownParameter {
                scheme,
                name,
                accepted,
            });
        }
        take(value)?;
    }
    Ok(())
}

impl FromStr for StoreUrl {
    type Err = UrlError;

    fn from_str(raw: &str) -> Result<Self, UrlError> {
        let (scheme, _) = raw.split_once("://").ok_or(UrlError::NoScheme)?;
        match scheme.to_ascii_lowercase().as_str() {
            "memory" => parse_memory(raw),
            "redis" | "rediss" => parse_redis(raw),
            "mongodb" | "mongodb+srv" => parse_mongo(raw),
            "postgres" | "postgresql" => sql::parse(SqlDatabase::Postgres, raw),
            "mysql" => sql::parse(SqlDatabase::MySql, raw),
            "sqlite" => sql::parse(SqlDatabase::Sqlite, raw),
            // The scheme holds no secret (it precedes `://`), but keep the
            // message short for a very long one.
            _ => Err(UrlError::UnknownScheme(scheme.chars().take(32).collect())),
        }
    }
}

fn parse_memory(raw: &str) -> Result<StoreUrl, UrlError> {
    const SCHEME: &str = "memory";
    let rest = &raw[raw.find("://").map_or(0, |i| i + 3)..];
    let (place, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !place.is_empty() && place != "/" {
        return Err(malformed(SCHEME, "memory:// takes no host or path"));
    }
    let mut demo = 0;
    each_param(SCHEME, query, "demo", |value| {
        demo = value
            .parse()
            .map_err(|_| malformed(SCHEME, "demo must be a number of records"))?;
        Ok(())
    })?;
    Ok(StoreUrl::Memory { demo })
}

fn parse_redis(raw: &str) -> Result<StoreUrl, UrlError> {
    const SCHEME: &str = "redis";
    // The url crate's messages never quote the input.
    let mut url =
        url::Url::parse(raw).map_err(|e| malformed(SCHEME, e.to_string().to_lowercase()))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(malformed(SCHEME, "no host"));
    }
    if url.fragment().is_some() {
        return Err(malformed(SCHEME, "a fragment (#…) is not allowed"));
    }
    let db = url.path().trim_start_matches('/');
    if !db.is_empty() && db.parse::<u8>().is_err() {
        return Err(malformed(
            SCHEME,
            "the path must be a database number (0 to 255)",
        ));
    }
    let mut prefix = DEFAULT_REDIS_PREFIX.to_owned();
    each_param(SCHEME, url.query().unwrap_or(""), "prefix", |value| {
        if value.is_empty() {
            return Err(malformed(SCHEME, "the key prefix must not be empty"));
        }
        prefix = value;
        Ok(())
    })?;
    url.set_query(None);
    Ok(StoreUrl::Redis {
        url: url.into(),
        prefix,
    })
}

/// The parts of a MongoDB connection string (which may list several hosts,
/// so the url crate cannot parse it).
struct MongoParts<'a> {
    scheme: &'a str,
    userinfo: Option<&'a str>,
    hosts: &'a str,
    path: &'a str,
    query: &'a str,
}

fn split_mongo(raw: &str) -> Result<MongoParts<'_>, UrlError> {
    const SCHEME: &str = "mongodb";
    let (scheme, rest) = raw.split_once("://").ok_or(UrlError::NoScheme)?;
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    // Credentials end at the last `@` (a password may hold `/` only
    // percent-encoded, per the connection string spec).
    let (userinfo, after) = match before_query.rfind('@') {
        Some(at) => (Some(&before_query[..at]), &before_query[at + 1..]),
        None => (None, before_query),
    };
    let (hosts, path) = after.split_once('/').unwrap_or((after, ""));
    if hosts.is_empty() {
        return Err(malformed(SCHEME, "no host"));
    }
    if raw.contains('#') {
        return Err(malformed(SCHEME, "a fragment (#…) is not allowed"));
    }
    Ok(MongoParts {
        scheme,
        userinfo,
        hosts,
        path,
        query,
    })
}

fn parse_mongo(raw: &str) -> Result<StoreUrl, UrlError> {
    const SCHEME: &str = "mongodb";
    let parts = split_mongo(raw)?;
    let mut segments = parts.path.split('/');
    let database = decode(SCHEME, "the database", segments.next().unwrap_or(""))?;
    let mut collection = decode(SCHEME, "the collection", segments.next().unwrap_or(""))?;
    if segments.next().is_some() {
        return Err(malformed(SCHEME, "the path must be /DATABASE/COLLECTION"));
    }
    let mut options = Vec::new();
    for pair in parts.query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name.eq_ignore_ascii_case("collection") {
            if !collection.is_empty() {
                return Err(malformed(
                    SCHEME,
                    "the collection is given both in the path and as ?collection=",
                ));
            }
            collection = decode(SCHEME, "the collection", value)?;
        } else {
            options.push(pair);
        }
    }
    if database.is_empty() {
        return Err(UrlError::NoDatabase);
    }
    if collection.is_empty() {
        return Err(UrlError::NoCollection);
    }
    let mut uri = format!("{}://", parts.scheme);
    if let Some(userinfo) = parts.userinfo {
        uri.push_str(userinfo);
        uri.push('@');
    }
    uri.push_str(parts.hosts);
    uri.push('/');
    // The database stays in the path: it is the default authSource.
    uri.push_str(parts.path.split('/').next().unwrap_or(""));
    if !options.is_empty() {
        uri.push('?');
        uri.push_str(&options.join("&"));
    }
    Ok(StoreUrl::Mongo {
        uri,
        database,
        collection,
    })
}

impl StoreUrl {
    /// The kind of store: `memory`, `redis`, `mongodb`, `postgres`, `mysql`
    /// or `sqlite`.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreUrl::Memory { .. } => "memory",
            StoreUrl::Redis { .. } => "redis",
            StoreUrl::Mongo { .. } => "mongodb",
            StoreUrl::Sql { database, .. } => database.as_str(),
        }
    }

    /// What identifies the data: server, database and key space, without
    /// credentials or connection options. Two URLs with the same identity
    /// name the same records; a checkpoint is tied to the identities of
    /// its two stores.
    pub fn identity(&self) -> String {
        match self {
            StoreUrl::Memory { demo } => format!("memory://?demo={demo}"),
            StoreUrl::Redis { url, prefix } => {
                let mut url = url::Url::parse(url).expect("checked when parsed");
                let _ = url.set_username("");
                let _ = url.set_password(None);
                let db = url.path().trim_start_matches('/');
                let db = if db.is_empty() { "0" } else { db }.to_owned();
                url.set_path(&db);
                format!("{url}?prefix={prefix}")
            }
            StoreUrl::Mongo {
                uri,
                database,
                collection,
            } => {
                let parts = split_mongo(uri).expect("checked when parsed");
                format!(
                    "{}://{}/{database}/{collection}",
                    parts.scheme,
                    parts.hosts.to_ascii_lowercase()
                )
            }
            StoreUrl::Sql {
                database,
                url,
                table,
            } => sql::identity(*database, url, table),
        }
    }

    /// Passwords in the URL (percent-decoded and raw), to scrub from any
    /// message that might quote them.
    pub fn secrets(&self) -> Vec<String> {
        let password = match self {
            StoreUrl::Memory { .. } => None,
            StoreUrl::Redis { url, .. } => url::Url::parse(url)
                .ok()
                .and_then(|u| u.password().map(str::to_owned)),
            StoreUrl::Mongo { uri, .. } => split_mongo(uri)
                .ok()
                .and_then(|p| p.userinfo)
                .and_then(|u| u.split_once(':'))
                .map(|(_, p)| p.to_owned()),
            StoreUrl::Sql { url, .. } => sql::password(url),
        };
        let mut out = Vec::new();
        if let Some(raw) = password.filter(|p| !p.is_empty()) {
            if let Ok(decoded) = percent_decode_str(&raw).decode_utf8() {
                if decoded != raw {
                    out.push(decoded.into_owned());
                }
            }
            out.push(raw);
        }
        out
    }

    fn redacted(&self) -> String {
        match self {
            StoreUrl::Memory { demo: 0 } => "memory://".to_owned(),
            StoreUrl::Memory { demo } => format!("memory://?demo={demo}"),
            StoreUrl::Redis { url, prefix } => {
                let mut url = url::Url::parse(url).expect("checked when parsed");
                if url.password().is_some() {
                    let _ = url.set_password(Some("***"));
                }
                let mut shown = url.to_string();
                if prefix != DEFAULT_REDIS_PREFIX {
                    shown.push_str("?prefix=");
                    shown.push_str(prefix);
                }
                shown
            }
            StoreUrl::Mongo {
                uri,
                database,
                collection,
            } => {
                let parts = split_mongo(uri).expect("checked when parsed");
                let mut shown = format!("{}://", parts.scheme);
                if parts.userinfo.is_some() {
                    shown.push_str("***@");
                }
                shown.push_str(&format!("{}/{database}/{collection}", parts.hosts));
                if !parts.query.is_empty() {
                    // The store's own redaction knows the secret options.
                    let options = storestack_mongodb::MongoConfig::new(format!(
                        "mongodb://h/?{}",
                        parts.query
                    ))
                    .redacted_uri();
                    if let Some((_, query)) = options.split_once('?') {
                        shown.push('?');
                        shown.push_str(query);
                    }
                }
                shown
            }
            StoreUrl::Sql { url, table, .. } => sql::redacted(url, table),
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> StoreUrl {
        raw.parse().unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    #[test]
    fn memory_urls() {
        assert_eq!(parse("memory://"), StoreUrl::Memory { demo: 0 });
        assert_eq!(parse("memory://?demo=250"), StoreUrl::Memory { demo: 250 });
        assert!(matches!(
            "memory://host".parse::<StoreUrl>(),
            Err(UrlError::Malformed { .. })
        ));
        assert!(matches!(
            "memory://?demo=x".parse::<StoreUrl>(),
            Err(UrlError::Malformed { .. })
        ));
        assert!(matches!(
            "memory://?size=3".parse::<StoreUrl>(),
            Err(UrlError::UnknownParameter { .. })
        ));
    }

    #[test]
    fn redis_urls_take_a_prefix_and_hide_the_password() {
        let url = parse("redis://user:p%40ss@h:7000/3?prefix=sess%3A%5B");
        assert_eq!(
            url,
            StoreUrl::Redis {
                url: "redis://user:p%40ss@h:7000/3".to_owned(),
                prefix: "sess:[".to_owned(),
            }
        );
        assert_eq!(url.to_string(), "redis://user:***@h:7000/3?prefix=sess:[");
        assert_eq!(url.identity(), "redis://h:7000/3?prefix=sess:[");
        assert_eq!(url.secrets(), vec!["p@ss".to_owned(), "p%40ss".to_owned()]);
        let plain = parse("rediss://h");
        assert_eq!(plain.to_string(), "rediss://h");
        assert_eq!(plain.identity(), "rediss://h/0?prefix=storestack:");
        for (bad, what) in [
            ("redis://h?pool=3", "pool"),
            ("redis://h/x", "database number"),
            ("redis://h?prefix=", "empty"),
            ("redis://:pw@/", "host"),
        ] {
            let err = bad.parse::<StoreUrl>().unwrap_err().to_string();
            assert!(err.contains(what), "{bad}: {err}");
            assert!(!err.contains("pw"), "{err}");
        }
    }

    #[test]
    fn mongo_urls_name_database_and_collection() {
        let url = parse("mongodb://u:pw@a:1,b:2/web/sessions?replicaSet=rs0&password=x");
        assert_eq!(
            url,
            StoreUrl::Mongo {
                uri: "mongodb://u:pw@a:1,b:2/web?replicaSet=rs0&password=x".to_owned(),
                database: "web".to_owned(),
                collection: "sessions".to_owned(),
            }
        );
        let shown = url.to_string();
        assert!(!shown.contains("pw") && !shown.contains("=x"), "{shown}");
        assert!(
            shown.starts_with("mongodb://***@a:1,b:2/web/sessions?"),
            "{shown}"
        );
        assert_eq!(url.identity(), "mongodb://a:1,b:2/web/sessions");
        let by_query = parse("mongodb+srv://cluster.example/web?collection=s&w=1");
        assert_eq!(by_query.identity(), "mongodb+srv://cluster.example/web/s");
        assert_eq!(
            by_query.to_string(),
            "mongodb+srv://cluster.example/web/s?w=1"
        );
        assert_eq!(
            "mongodb://h:1/".parse::<StoreUrl>(),
            Err(UrlError::NoDatabase)
        );
        assert_eq!(
            "mongodb://h:1/db".parse::<StoreUrl>(),
            Err(UrlError::NoCollection)
        );
        assert!(matches!(
            "mongodb://h/db/c?collection=d".parse::<StoreUrl>(),
            Err(UrlError::Malformed { .. })
        ));
        assert!(matches!(
            "mongodb://h/db/c/x".parse::<StoreUrl>(),
            Err(UrlError::Malformed { .. })
        ));
    }

    #[test]
    fn parameters_are_checked_in_order_and_the_last_one_wins() {
        assert_eq!(
            parse("memory://?demo=1&demo=2"),
            StoreUrl::Memory { demo: 2 }
        );
        assert_eq!(
            parse("redis://h?prefix=a:&prefix=b:"),
            StoreUrl::Redis {
                url: "redis://h".to_owned(),
                prefix: "b:".to_owned(),
            }
        );
        for (bad, what) in [
            ("memory://?demo=x&demo=2", "demo must be a number"),
            ("memory://?demo=x&size=3", "demo must be a number"),
            (
                "memory://?demo=1&size=3",
                "take no \"size\" parameter (accepted: demo)",
            ),
            ("redis://h?prefix=a:&prefix=", "must not be empty"),
            ("redis://h?prefix=&pool=3", "must not be empty"),
            (
                "redis://h?prefix=a:&pool=3",
                "take no \"pool\" parameter (accepted: prefix)",
            ),
        ] {
            let err = bad.parse::<StoreUrl>().unwrap_err().to_string();
            assert!(err.contains(what), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_schemes_and_non_urls() {
        assert_eq!(
            "ftp://u:pw@h/db".parse::<StoreUrl>(),
            Err(UrlError::UnknownScheme("ftp".to_owned()))
        );
        assert_eq!(
            "localhost:6379".parse::<StoreUrl>(),
            Err(UrlError::NoScheme)
        );
    }
}
