//! What the session server is told: [`ServerConfig`] (built in code, as the
//! tests do) and [`Args`] (command line and environment, as the example
//! does).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use storestack::{
    BreakerConfig, CacheConfig, CompressedLayer, FallbackConfig, Key, KeyError, Keyring,
};
use storestack_mongodb::MongoConfig;
use storestack_redis::RedisConfig;
use storestack_session_core::DegradeConfig;

/// The environment variable holding the encryption key ring
/// (`id:<base64 or hex key>,…`, the first key encrypts; see
/// [`Keyring::parse`]).
pub const KEYS_VAR: &str = "SESSION_KEYS";

/// The development key used when [`KEYS_VAR`] is not set. It is public
/// (it is in this source file): sessions encrypted with it are readable
/// and forgeable by anyone who can read the stores.
const DEV_KEY: &[u8; 32] = b"storestack session_server dev!!!";

/// Everything the server needs. [`ServerConfig::new`] fills in the
/// defaults; set fields to change them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Where to listen; port 0 picks a free port (see
    /// [`SessionServer::addr`](super::SessionServer::addr)).
    pub listen: SocketAddr,
    /// The primary store.
    pub redis: RedisConfig,
    /// The secondary store.
    pub mongo: MongoConfig,
    /// The keys that encrypt sessions.
    pub keyring: Keyring,
    /// Deadline of every Redis operation (the Timeout inside the breaker).
    /// Default 200 ms.
    pub redis_deadline: Duration,
    /// Deadline of every MongoDB operation. Default 500 ms.
    pub mongo_deadline: Duration,
    /// The breaker of each side. Default: opens after 3 consecutive
    /// failures, for 1 s (doubling up to 30 s), state changes logged.
    pub breaker: BreakerConfig,
    /// The fallback's journal and repair settings. Default:
    /// [`FallbackConfig::default`].
    pub fallback: FallbackConfig,
    /// The local cache tier. Default: 10 000 sessions for 30 s.
    pub cache: CacheConfig,
    /// Compression of the session bytes (before encryption). Default:
    /// zstd level 3 above 512 bytes.
    pub compression: CompressedLayer,
    /// A session untouched for this long expires. Default 1 day.
    pub session_idle: Duration,
    /// Graceful degradation: while both stores are down, requests go on
    /// with temporary sessions and answer `X-Session-Degraded: true`
    /// (see `storestack_session_core::degrade`). `None` turns it off (an
    /// outage then answers 503 from the axum server, 500 from the actix
    /// one). Default: on, with [`DegradeConfig::default`].
    pub degrade: Option<DegradeConfig>,
    /// How often a store unreachable at start is tried again in the
    /// background (the server starts and serves degraded meanwhile).
    /// Default 1 s.
    pub reconnect_every: Duration,
}

impl ServerConfig {
    /// The defaults, on these stores and keys, listening on
    /// `127.0.0.1:3000`.
    pub fn new(redis: RedisConfig, mongo: MongoConfig, keyring: Keyring) -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            redis,
            mongo,
            keyring,
            redis_deadline: Duration::from_millis(200),
            mongo_deadline: Duration::from_millis(500),
            breaker: BreakerConfig::default()
                .consecutive_failures(3)
                .open_for(Duration::from_secs(1), Duration::from_secs(30))
                .on_state_change(|c| {
                    tracing::warn!(store = c.store, from = %c.from, to = %c.to, "circuit breaker")
                }),
            fallback: FallbackConfig::default(),
            cache: CacheConfig::default(),
            compression: CompressedLayer::zstd(3),
            session_idle: Duration::from_secs(24 * 3600),
            degrade: Some(DegradeConfig::default()),
            reconnect_every: Duration::from_secs(1),
        }
    }

    /// Sets the address to listen on.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }
}

/// The command line of `examples/session_server.rs`; every option can also
/// come from the environment variable named in its help.
#[derive(Debug, Clone, Parser)]
#[command(
    about = "A view counter on Redis with MongoDB fallback, encrypted, compressed and cached"
)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "SESSION_SERVER_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// The primary store.
    #[arg(
        long,
        env = "STORESTACK_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
    /// Prefix of every Redis key of the server.
    #[arg(long, default_value = "session_server:")]
    pub redis_prefix: String,
    /// The fallback store.
    #[arg(
        long,
        env = "STORESTACK_MONGODB_URL",
        default_value = "mongodb://127.0.0.1:27017/?directConnection=true"
    )]
    pub mongo_url: String,
    /// MongoDB database.
    #[arg(long, default_value = "storestack_examples")]
    pub mongo_database: String,
    /// MongoDB collection (the server owns it).
    #[arg(long, default_value = "sessions")]
    pub mongo_collection: String,
    /// Answer 503 while both stores are down instead of serving temporary
    /// sessions marked `X-Session-Degraded: true`.
    #[arg(long)]
    pub no_degrade: bool,
}

impl Args {
    /// The configuration these arguments describe. The key ring comes from
    /// [`KEYS_VAR`]; when it is not set, a public development key is used
    /// and a warning printed.
    pub fn into_config(self) -> Result<ServerConfig, KeyError> {
        let redis = RedisConfig::new(self.redis_url).key_prefix(self.redis_prefix);
        let mongo = MongoConfig::new(self.mongo_url)
            .database(self.mongo_database)
            .collection(self.mongo_collection);
        let mut config = ServerConfig::new(redis, mongo, keyring_from_env()?).listen(self.listen);
        if self.no_degrade {
            config.degrade = None;
        }
        Ok(config)
    }
}

/// The key ring of [`KEYS_VAR`], or the development key (with a warning on
/// stderr) when the variable is not set.
pub fn keyring_from_env() -> Result<Keyring, KeyError> {
    match Keyring::from_env(KEYS_VAR) {
        Err(KeyError::MissingVar { .. }) => {
            eprintln!(
                "WARNING: {KEYS_VAR} is not set: sessions are encrypted with a public \
                 development key. Set {KEYS_VAR}=<id>:<32 random bytes, base64> in production."
            );
            Ok(Keyring::new(dev_key()))
        }
        other => other,
    }
}

/// The public development key.
pub fn dev_key() -> Key {
    Key::from_bytes("dev", DEV_KEY).expect("the development key is 32 bytes")
}
