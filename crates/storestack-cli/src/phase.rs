//! `storestack phase`: reads or switches the migration phase that running
//! processes follow through a
//! [`PhaseControl`](storestack::layers::migration::PhaseControl) record.

use std::time::Duration;

use storestack::layers::migration::{Phase, PhaseControl};

use crate::address::StoreUrl;
use crate::cli::PhaseArgs;
use crate::migrate::{describe, scrub, EXIT_OK, EXIT_STORE, EXIT_USAGE};
use crate::open::{open, OpenOptions};

/// Runs `storestack phase` and returns the exit status.
pub async fn phase(args: PhaseArgs) -> u8 {
    let url: StoreUrl = match args.store.parse() {
        Ok(url) => url,
        Err(e) => {
            eprintln!("error: --store: {e}");
            return EXIT_USAGE;
        }
    };
    let secrets = url.secrets();
    let target = match args.set.as_deref().map(str::parse::<Phase>).transpose() {
        Ok(target) => target,
        Err(e) => {
            eprintln!("error: --set: {e}");
            return EXIT_USAGE;
        }
    };
    let options = OpenOptions {
        connect_timeout: Duration::from_secs(args.connect_timeout.max(1)),
        connections: 2,
        ..OpenOptions::default()
    };
    let store = match open(&url, &options).await {
        Ok(store) => store,
        Err(e) => {
            let message = format!("cannot connect to the store {url}: {}", describe(&e));
            eprintln!("error: {}", scrub(message, &secrets));
            return EXIT_STORE;
        }
    };
    let control = PhaseControl::new(store, args.key.clone());
    let result = match target {
        None => control.read().await,
        Some(phase) => control
            .publish_staged(phase, args.force, Duration::from_secs(args.settle))
            .await
            .map(Some),
    };
    match result {
        Ok(Some(state)) => {
            println!("phase {} (high-water {}%)", state.phase, state.high_water);
            EXIT_OK
        }
        Ok(None) => {
            println!("phase old-only (nothing published yet)");
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {}", scrub(describe(&e), &secrets));
            if e.kind() == storestack::ErrorKind::InvalidInput {
                EXIT_USAGE
            } else {
                EXIT_STORE
            }
        }
    }
}
