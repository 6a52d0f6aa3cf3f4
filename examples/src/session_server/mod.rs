//! A session server: the classic view counter, on a whole storestack
//! stack behind tower-sessions.
//!
//! The stack, from the callers inwards:
//!
//! ```text
//! Instrumented → Cached → Compressed → Encrypted → Fallback(
//!     CircuitBreaker(Timeout(Redis)),        primary
//!     CircuitBreaker(Timeout(MongoDB)))      secondary
//! ```
//!
//! built from the backends outwards with [`StoreExt`]
//! (see [`SessionStack::connect`]): a session is compressed while it is
//! plaintext, then encrypted, and the same ciphertext goes to both stores.
//!
//! Routes:
//!
//! | route | what |
//! |---|---|
//! | `GET /` | increments the session's view counter; answers `views: <n>` |
//! | `GET /logout` | deletes the session (from both stores) and its cookie |
//! | `GET /metrics` | Prometheus text format: the Instrumented and Cached metrics |
//! | `GET /health` | JSON [`Health`]: breaker states and fallback status; 503 when both stores are down |
//!
//! An unreadable session (a tampered cookie, or stored bytes that fail
//! authentication) gives a fresh session, not an error page. A store
//! outage that the fallback cannot hide (both stores down) is served
//! degraded: the request goes on with a temporary session and the
//! response carries `X-Session-Degraded: true`
//! ([`ServerConfig::degrade`]; without it, 503). The server starts while
//! the stores are unreachable (it connects in the background) and
//! recovers by itself when they return.

mod config;
mod health;
mod lazy;

use std::io;
use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use storestack::layers::fallback::FallbackLayer;
use storestack::{BreakerHandle, FallbackHandle, SharedStore, StoreError, StoreExt};
use storestack_mongodb::MongoStore;
use storestack_redis::RedisStore;
use storestack_session_core::DegradeLayer;
use storestack_sessions::{DegradedLayer, SessionStore};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

pub use config::{dev_key, keyring_from_env, Args, ServerConfig, KEYS_VAR};
pub use health::{BreakerReport, Breakers, FallbackReport, Health, SideReport, Verdict};

/// The session field holding the view count.
pub const VIEWS: &str = "views";

/// Why the server did not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// Another metrics recorder was installed in this process.
    Metrics(String),
    /// Redis could not be reached.
    Redis(StoreError),
    /// MongoDB could not be reached.
    Mongo(StoreError),
    /// The listen address could not be bound.
    Bind(io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Metrics(e) => write!(f, "cannot install the metrics recorder: {e}"),
            StartError::Redis(e) => write!(f, "cannot connect to redis: {e}"),
            StartError::Mongo(e) => write!(f, "cannot connect to mongodb: {e}"),
            StartError::Bind(e) => write!(f, "cannot listen: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Metrics(_) => None,
            StartError::Redis(e) | StartError::Mongo(e) => Some(e),
            StartError::Bind(e) => Some(e),
        }
    }
}

/// The process-wide Prometheus recorder, installed on first use. The
/// Instrumented and Cached layers register their metrics when they are
/// built, so this runs before the stack is.
pub fn prometheus() -> Result<PrometheusHandle, StartError> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(StartError::Metrics)
}

/// The store stack of the server and the handles that report its health.
#[derive(Clone)]
pub struct SessionStack {
    /// The whole stack.
    pub store: SharedStore,
    /// The breaker around Redis.
    pub redis_breaker: BreakerHandle,
    /// The breaker around MongoDB.
    pub mongo_breaker: BreakerHandle,
    /// The fallback between them.
    pub fallback: FallbackHandle,
}

impl std::fmt::Debug for SessionStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStack")
            .field("store", &self.store.name())
            .field("health", &self.health())
            .finish()
    }
}

impl SessionStack {
    /// Connects both stores and builds the stack. A store unreachable at
    /// start is connected in the background (its calls fail with
    /// `Unavailable` meanwhile); only a bad configuration fails here.
    pub async fn connect(config: &ServerConfig) -> Result<Self, StartError> {
        let redis = match RedisStore::connect(config.redis.clone()).await {
            Err(err) if err.is_transient() => {
                tracing::warn!(error = %err, "redis unreachable at start: connecting in the background");
                RedisStore::connect(config.redis.clone().lazy_connect(true)).await
            }
            connected => connected,
        };
        let redis = redis
            .map_err(StartError::Redis)?
            .timeout(config.redis_deadline)
            .circuit_breaker(config.breaker.clone());
        let mongo_config = config.mongo.clone();
        let connect_mongo = move || MongoStore::connect(mongo_config.clone());
        let mongo = lazy::Reconnecting::connect("mongodb", config.reconnect_every, connect_mongo)
            .await
            .map_err(StartError::Mongo)?
            .timeout(config.mongo_deadline)
            .circuit_breaker(config.breaker.clone());
        let (redis_breaker, mongo_breaker) = (redis.handle(), mongo.handle());
        let fallback = redis.layer(FallbackLayer::new(mongo).config(config.fallback.clone()));
        let fallback_handle = fallback.handle();
        // Each call wraps the previous one: Compressed ends up outside
        // Encrypted, so plaintext is compressed, then sealed.
        let store = fallback
            .encrypted(config.keyring.clone())
            .compressed(config.compression.clone())
            .cached(config.cache.clone())
            .instrumented("sessions")
            .shared();
        Ok(SessionStack {
            store,
            redis_breaker,
            mongo_breaker,
            fallback: fallback_handle,
        })
    }

    /// The store the session framework sees: the stack, wrapped in
    /// [`Degraded`](storestack_session_core::Degraded) when
    /// [`ServerConfig::degrade`] is set.
    pub fn session_store(&self, config: &ServerConfig) -> SharedStore {
        match &config.degrade {
            Some(degrade) => self
                .store
                .clone()
                .layer(DegradeLayer::new(degrade.clone()))
                .shared(),
            None => self.store.clone(),
        }
    }

    /// The health report now.
    pub fn health(&self) -> Health {
        Health::collect(&self.redis_breaker, &self.mongo_breaker, &self.fallback)
    }
}

#[derive(Clone)]
struct AppState {
    stack: SessionStack,
    prometheus: PrometheusHandle,
}

/// The routes, over `stack`, with the session layer.
pub fn router(stack: SessionStack, prometheus: PrometheusHandle, config: &ServerConfig) -> Router {
    let idle = time::Duration::try_from(config.session_idle).unwrap_or(time::Duration::DAY);
    let sessions = SessionManagerLayer::new(SessionStore::new(stack.session_store(config)))
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(idle));
    let state = AppState { stack, prometheus };
    Router::new()
        .route("/", get(count))
        .route("/logout", get(logout))
        .layer(sessions)
        .layer(DegradedLayer::new())
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(state)
}

/// A running server.
#[derive(Debug)]
pub struct SessionServer {
    addr: SocketAddr,
    stack: SessionStack,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

impl SessionServer {
    /// Installs the metrics recorder, connects the stores, binds
    /// `config.listen` and serves in a background task.
    pub async fn start(config: ServerConfig) -> Result<Self, StartError> {
        let prometheus = prometheus()?;
        let stack = SessionStack::connect(&config).await?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(StartError::Bind)?;
        let addr = listener.local_addr().map_err(StartError::Bind)?;
        let app = router(stack.clone(), prometheus, &config);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        Ok(SessionServer {
            addr,
            stack,
            shutdown: Some(tx),
            task,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The stack it serves sessions from.
    pub fn stack(&self) -> &SessionStack {
        &self.stack
    }

    /// Stops accepting connections, lets requests in flight finish, and
    /// returns how serving ended.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.map_err(io::Error::other)?
    }
}

/// A session-store failure the fallback could not hide (both stores down).
struct Unavailable(tower_sessions::session::Error);

impl IntoResponse for Unavailable {
    fn into_response(self) -> Response {
        tracing::error!(error = %self.0, "session store failed");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "session store unavailable\n",
        )
            .into_response()
    }
}

impl From<tower_sessions::session::Error> for Unavailable {
    fn from(e: tower_sessions::session::Error) -> Self {
        Unavailable(e)
    }
}

async fn count(session: Session) -> Result<String, Unavailable> {
    let views = session.get::<u64>(VIEWS).await?.unwrap_or(0) + 1;
    session.insert(VIEWS, views).await?;
    Ok(format!("views: {views}\n"))
}

async fn logout(session: Session) -> Result<&'static str, Unavailable> {
    session.flush().await?;
    Ok("logged out\n")
}

async fn metrics(State(state): State<AppState>) -> String {
    state.prometheus.render()
}

async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let report = state.stack.health();
    let code = match report.status {
        Verdict::Down => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    (code, Json(report))
}
