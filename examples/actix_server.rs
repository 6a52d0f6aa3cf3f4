//! The view counter of `session_server`, on actix-web and actix-session
//! (see `storestack_examples::actix_server`): same stack, routes and
//! options.
//!
//! ```sh
//! eval "$(scripts/mongo.sh start)"      # or set STORESTACK_MONGODB_URL
//! cargo run -p storestack-examples --example actix_server -- --listen 127.0.0.1:3001
//! curl -c jar -b jar localhost:3001/     # views: 1, 2, 3, …
//! curl localhost:3001/health; curl localhost:3001/metrics
//! ```
//!
//! Options and their environment variables: `--help`. The store
//! encryption keys come from `SESSION_KEYS`, the cookie key from
//! `SESSION_COOKIE_KEY`; without them development keys are used (with a
//! warning).

use clap::Parser;
use storestack_examples::actix_server::{cookie_key_from_env, ActixServer};
use storestack_examples::session_server::Args;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let config = Args::parse().into_config()?;
    let server = ActixServer::start(config, cookie_key_from_env()?).await?;
    println!("listening on {}", server.url());
    println!("  GET /  (view counter)   GET /logout   GET /health   GET /metrics");
    tokio::signal::ctrl_c().await?;
    println!("shutting down");
    server.shutdown().await?;
    Ok(())
}
