//! The session server of [`session_server`](crate::session_server) on
//! actix-web: the same view counter, `/logout`, `/health` and `/metrics`,
//! over the same stack ([`SessionStack`]), through `storestack-actix`.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | increments the session's view counter; answers `views: <n>` |
//! | `GET /logout` | deletes the session (from both stores) and its cookie |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /health` | JSON [`Health`](crate::session_server::Health); 503 when both stores are down |
//!
//! The session cookie (`id`) is encrypted with a cookie key (actix-session's
//! private cookies); the session data is encrypted by the stack. Both
//! stores down: served degraded (`X-Session-Degraded: true`) unless
//! [`ServerConfig::degrade`] is `None` (then actix-session answers 500).

use std::io;
use std::net::SocketAddr;

use actix_session::config::PersistentSession;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::Key;
use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpResponse, HttpServer};
use metrics_exporter_prometheus::PrometheusHandle;
use storestack_actix::{Degradation, SessionStore};
use tokio::task::JoinHandle;

use crate::session_server::{prometheus, ServerConfig, SessionStack, StartError, Verdict, VIEWS};

/// A running actix-web session server.
pub struct ActixServer {
    addr: SocketAddr,
    stack: SessionStack,
    handle: ServerHandle,
    task: JoinHandle<io::Result<()>>,
}

impl std::fmt::Debug for ActixServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActixServer")
            .field("addr", &self.addr)
            .field("stack", &self.stack)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct AppState {
    stack: SessionStack,
    prometheus: PrometheusHandle,
}

impl ActixServer {
    /// Installs the metrics recorder, connects the stores (in the
    /// background if they are unreachable), binds `config.listen` and
    /// serves with one worker. `cookie_key` encrypts the session cookies.
    pub async fn start(config: ServerConfig, cookie_key: Key) -> Result<Self, StartError> {
        let prometheus = prometheus()?;
        let stack = SessionStack::connect(&config).await?;
        let store = SessionStore::new(stack.session_store(&config));
        let idle = time::Duration::try_from(config.session_idle).unwrap_or(time::Duration::DAY);
        let state = web::Data::new(AppState {
            stack: stack.clone(),
            prometheus,
        });
        let listener = std::net::TcpListener::bind(config.listen).map_err(StartError::Bind)?;
        let addr = listener.local_addr().map_err(StartError::Bind)?;
        let server = HttpServer::new(move || {
            let sessions = SessionMiddleware::builder(store.clone(), cookie_key.clone())
                .cookie_name("id".to_owned())
                .cookie_secure(false)
                .session_lifecycle(PersistentSession::default().session_ttl(idle))
                .build();
            App::new()
                .app_data(state.clone())
                .route("/metrics", web::get().to(metrics))
                .route("/health", web::get().to(health))
                .service(
                    web::scope("")
                        .wrap(sessions)
                        .wrap(Degradation::new())
                        .route("/", web::get().to(count))
                        .route("/logout", web::get().to(logout)),
                )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .map_err(StartError::Bind)?
        .run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        Ok(ActixServer {
            addr,
            stack,
            handle,
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
    pub async fn shutdown(self) -> io::Result<()> {
        self.handle.stop(true).await;
        self.task.await.map_err(io::Error::other)?
    }
}

async fn count(session: Session) -> actix_web::Result<String> {
    let views = session.get::<u64>(VIEWS)?.unwrap_or(0) + 1;
    session.insert(VIEWS, views)?;
    Ok(format!("views: {views}\n"))
}

async fn logout(session: Session) -> &'static str {
    session.purge();
    "logged out\n"
}

async fn metrics(state: web::Data<AppState>) -> String {
    state.prometheus.render()
}

async fn health(state: web::Data<AppState>) -> HttpResponse {
    let report = state.stack.health();
    let code = match report.status {
        Verdict::Down => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    HttpResponse::build(code).json(report)
}

/// The cookie key from `SESSION_COOKIE_KEY` (at least 32 bytes, stretched
/// with HKDF), or a random one (with a warning on stderr: cookies then do
/// not survive a restart).
pub fn cookie_key_from_env() -> Result<Key, String> {
    match std::env::var("SESSION_COOKIE_KEY") {
        Ok(master) if master.len() >= 32 => Ok(Key::derive_from(master.as_bytes())),
        Ok(_) => Err("SESSION_COOKIE_KEY must be at least 32 bytes".to_owned()),
        Err(_) => {
            eprintln!(
                "WARNING: SESSION_COOKIE_KEY is not set: session cookies are encrypted with a \
                 random key and do not survive a restart."
            );
            Ok(Key::generate())
        }
    }
}
