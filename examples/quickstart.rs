//! Quickstart: a namespaced, typed session store over the embedded memory
//! backend. Run with `cargo run -p storestack-examples --example quickstart`;
//! add `-- --sqlite sessions.db` to keep the sessions in a SQLite file
//! instead, where they survive the process (run it twice).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::{Deserialize, Serialize};
use storestack::{Expiry, MemoryConfig, MemoryStore, SharedStore, Store, StoreExt};
use storestack_sql::{SqlConfig, SqliteStore};

#[derive(Parser)]
struct Args {
    /// Keep the sessions in this SQLite file (created if missing) rather
    /// than in memory: they survive restarts.
    #[arg(long, value_name = "PATH")]
    sqlite: Option<PathBuf>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Session {
    user: String,
    views: u32,
}

#[tokio::main]
async fn main() -> Result<(), storestack::StoreError> {
    let args = Args::parse();
    let memory = MemoryStore::with_config(MemoryConfig::default().max_entries(100_000));
    let backend: SharedStore = match &args.sqlite {
        Some(path) => SqliteStore::connect(SqlConfig::sqlite_file(path))
            .await?
            .shared(),
        None => memory.clone().shared(),
    };
    let store = backend.namespaced("sess:");
    let sessions = store.clone().typed::<Session>();
    let ttl = Expiry::after(Duration::from_secs(30 * 60));

    // create never overwrites: a colliding session ID is detected, not reused.
    let fresh = Session {
        user: "ada".into(),
        views: 0,
    };
    if !sessions.create("8f14e45f", &fresh, ttl).await? {
        // Only a persistent backend has it already: an earlier run wrote it.
        println!("session 8f14e45f is still there from an earlier run");
    }
    assert!(!sessions.create("8f14e45f", &fresh, ttl).await?);

    for _ in 0..3 {
        let mut s = sessions.get("8f14e45f").await?.expect("session exists");
        s.views += 1;
        sessions.set("8f14e45f", &s, ttl).await?;
    }
    let s = sessions.get("8f14e45f").await?.expect("session exists");
    println!("{} viewed {} pages", s.user, s.views);

    // Sessions that expire are gone, and their memory is reclaimed.
    store
        .set(
            "short",
            storestack::Record::expiring_after("x", Duration::from_millis(50)),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(60)).await;
    println!(
        "live sessions: {} (the short one expired)",
        store.len().await?
    );
    if args.sqlite.is_none() {
        println!("backend stats: {:?}", memory.stats());
    }

    // Bad input is an error, never a panic.
    let err = store.get("").await.unwrap_err();
    println!("empty key: {err}");
    Ok(())
}
