//! Quickstart: a namespaced, typed session store over the embedded memory
//! backend. Run with `cargo run -p storestack-examples --example quickstart`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use storestack::{Expiry, MemoryConfig, MemoryStore, Store, StoreExt};

#[derive(Debug, Serialize, Deserialize)]
struct Session {
    user: String,
    views: u32,
}

#[tokio::main]
async fn main() -> Result<(), storestack::StoreError> {
    let backend = MemoryStore::with_config(MemoryConfig::default().max_entries(100_000));
    let store = backend.clone().namespaced("sess:");
    let sessions = store.clone().typed::<Session>();
    let ttl = Expiry::after(Duration::from_secs(30 * 60));

    // create never overwrites: a colliding session ID is detected, not reused.
    let fresh = Session {
        user: "ada".into(),
        views: 0,
    };
    assert!(sessions.create("8f14e45f", &fresh, ttl).await?);
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
    println!("backend stats: {:?}", backend.stats());

    // Bad input is an error, never a panic.
    let err = store.get("").await.unwrap_err();
    println!("empty key: {err}");
    Ok(())
}
