//! A view counter served from Redis, falling over to MongoDB, through the
//! whole storestack stack (see `storestack_examples::session_server`).
//!
//! ```sh
//! eval "$(scripts/mongo.sh start)"      # or set STORESTACK_MONGODB_URL
//! cargo run -p storestack-examples --example session_server -- --listen 127.0.0.1:3000
//! curl -c jar -b jar localhost:3000/     # views: 1, 2, 3, …
//! curl localhost:3000/health; curl localhost:3000/metrics
//! ```
//!
//! Options and their environment variables: `--help`. The encryption keys
//! come from `SESSION_KEYS`; without it a public development key is used
//! (with a warning).

use clap::Parser;
use storestack_examples::session_server::{Args, SessionServer};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let config = Args::parse().into_config()?;
    let server = SessionServer::start(config).await?;
    println!("session server listening on {}", server.url());
    println!("  GET /  (view counter)   GET /logout   GET /health   GET /metrics");
    tokio::signal::ctrl_c().await?;
    println!("shutting down");
    server.shutdown().await?;
    Ok(())
}
