//! # storestack-cli
//!
//! The `storestack` command. `storestack migrate` copies every record of
//! one store to another with storestack's
//! [bulk migrator](storestack::layers::migration::bulk):
//!
//! ```text
//! storestack migrate --from 'redis://127.0.0.1:6379?prefix=sess:' \
//!                    --to mongodb://127.0.0.1:27017/app/sessions
//! ```
//!
//! * **Expiries are kept** (absolute), records that expired meanwhile are
//!   skipped, and a record already in the destination is never
//!   overwritten (it was written there by the application in a write-both
//!   phase, so it is newer).
//! * **Resumable**: progress is saved to a checkpoint file after every
//!   batch. After a crash, a kill or Ctrl-C, run the same command with
//!   `--resume`; it continues at the first unfinished batch. Without
//!   `--resume` an existing checkpoint is refused (pass `--restart` to
//!   start over), and `--resume` without one is refused, so a typo never
//!   silently restarts a long migration. A successful run removes its
//!   checkpoint.
//! * **Rate-limited** with `--rate N` (records per second), with
//!   `--batch` keys per scan page and `--concurrency` copies in flight.
//! * **Verified** at the end: the live counts of both stores and a byte
//!   compare of a random sample (`--verify-sample N`, `--no-verify`).
//! * `--dry-run` scans both stores and counts what would be copied,
//!   writing nothing.
//! * **Progress**: a progress bar on a terminal (keys, copied, skipped,
//!   failed, rate, ETA from the source's record count), a plain line every
//!   5 s otherwise, nothing with `--quiet`; then a summary on stdout.
//!
//! `storestack phase --store URL --key KEY [--set PHASE]` shows or
//! switches the phase that running processes follow through a
//! [`PhaseControl`](storestack::layers::migration::PhaseControl) record
//! (raising the high-water mark first and waiting `--settle` seconds when
//! the new phase writes more keys to the new store).
//!
//! ## URLs
//!
//! See [`StoreUrl`]: `memory://` (with `?demo=N` to seed demo records),
//! `redis://` / `rediss://` with the key prefix as `?prefix=`, and
//! `mongodb://host:port/DATABASE/COLLECTION` (or `?collection=`). Passwords
//! are never printed: URLs are shown with `***`, and every message is
//! scrubbed of them.
//!
//! ## Exit status
//!
//! | status | meaning |
//! |---|---|
//! | 0 | every record copied (or skipped as expired or present) and verified |
//! | 1 | finished but incomplete: records failed or kept changing, or the verification found differences |
//! | 2 | bad command line, URL or checkpoint |
//! | 3 | a store could not be reached (within `--connect-timeout`, default 5 s) or failed during the run |
//! | 130 | interrupted by Ctrl-C (progress saved) |
//!
//! ## Example
//!
//! The library behind the binary can be driven from code, e.g. to migrate
//! between in-process stores:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use storestack_cli::{open, OpenOptions, StoreUrl};
//!
//! let from: StoreUrl = "memory://?demo=1000".parse().unwrap();
//! let old = open(&from, &OpenOptions::default()).await?;
//! assert_eq!(old.len().await?, 1000);
//! # Ok::<_, storestack::StoreError>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod address;
mod cli;
mod migrate;
mod open;
mod output;
mod phase;

pub use address::{SqlDatabase, StoreUrl, UrlError, DEFAULT_REDIS_PREFIX, DEFAULT_SQL_TABLE};
pub use cli::{Cli, Command, MigrateArgs, PhaseArgs};
pub use migrate::{
    default_checkpoint_path, migrate, EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_STORE,
    EXIT_USAGE,
};
pub use open::{open, seed_demo, OpenOptions};
pub use phase::phase;

/// Runs a parsed command line and returns the exit status.
pub async fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Migrate(args) => migrate(args).await,
        Command::Phase(args) => phase(args).await,
    }
}
