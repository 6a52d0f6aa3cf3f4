//! The command line (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// storestack: operate storestack stores.
#[derive(Debug, Parser)]
#[command(name = "storestack", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy every record of one store to another, resumably: expiries are
    /// kept, records already in the destination are never overwritten,
    /// and the result is verified.
    Migrate(MigrateArgs),
    /// Show or switch the migration phase that running processes follow
    /// (a control record in a store they all reach).
    Phase(PhaseArgs),
}

/// `storestack phase`.
#[derive(Debug, Clone, Args)]
pub struct PhaseArgs {
    /// The store holding the control record.
    #[arg(long, value_name = "URL")]
    pub store: String,

    /// The control record's key (the one the processes follow).
    #[arg(long, value_name = "KEY")]
    pub key: String,

    /// Publish this phase: old-only, write-both:<0-100>, read-new or
    /// new-only. Without it, show the published phase.
    #[arg(long, value_name = "PHASE")]
    pub set: Option<String>,

    /// Publish a switch the processes would refuse (e.g. straight to
    /// new-only).
    #[arg(long, requires = "set")]
    pub force: bool,

    /// Seconds to wait between raising the high-water mark and publishing
    /// a phase that writes more keys to the new store: longer than the
    /// processes' follow interval plus their longest operation.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub settle: u64,

    /// Seconds allowed to connect to the store.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub connect_timeout: u64,
}

/// `storestack migrate`.
#[derive(Debug, Clone, Args)]
#[command(after_help = AFTER_HELP)]
pub struct MigrateArgs {
    /// The store to copy from (memory://, redis://, rediss://, mongodb://).
    #[arg(long, value_name = "URL")]
    pub from: String,

    /// The store to copy to.
    #[arg(long, value_name = "URL")]
    pub to: String,

    /// Copy at most N records per second (default: no limit).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: Option<u32>,

    /// Continue the run saved in the checkpoint file (required when one
    /// exists; refused when none does).
    #[arg(long, conflicts_with = "restart")]
    pub resume: bool,

    /// Start from the beginning, replacing an existing checkpoint (records
    /// already copied are found in the destination and skipped).
    #[arg(long)]
    pub restart: bool,

    /// Scan both stores and count what would be copied; write nothing
    /// (neither records nor the checkpoint). Connecting to MongoDB still
    /// creates the collection's TTL index if it is missing.
    #[arg(long)]
    pub dry_run: bool,

    /// Where progress is saved after every batch [default:
    /// ./storestack-migrate-FROM-to-TO-HASH.ckpt, the hash taken over
    /// both stores' hosts, databases and key spaces, never credentials].
    #[arg(long, value_name = "PATH")]
    pub checkpoint: Option<PathBuf>,

    /// Keys per scan batch (and per checkpoint).
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub batch: u64,

    /// Records copied concurrently.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub concurrency: u64,

    /// Skip the final verification.
    #[arg(long, conflicts_with = "verify_sample")]
    pub no_verify: bool,

    /// Records compared byte for byte (value, expiry within 1 s) by the
    /// final verification, sampled at random from the source.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub verify_sample: usize,

    /// Accept this difference between the two stores' live record counts
    /// in the verification (when applications write during the run).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub count_tolerance: u64,

    /// Skip re-reading the source after each copy. Only when nothing else
    /// writes to either store during the run (faster).
    #[arg(long)]
    pub offline: bool,

    /// Seconds allowed to connect to each store.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub connect_timeout: u64,

    /// No progress output; the summary is still printed.
    #[arg(short, long)]
    pub quiet: bool,
}

const AFTER_HELP: &str = "\
URLs:
  memory://                      an empty in-process store
  memory://?demo=N               an in-process store seeded with N demo records
  redis://[user:pass@]host[:port][/db][?prefix=P]
                                 Redis (rediss:// for TLS), keys under P (default storestack:)
  mongodb://[user:pass@]host[:port][,host...]/DB/COLLECTION[?options]
  mongodb://host[:port]/DB?collection=COLLECTION[&options]

Exit status:
  0  every record copied (or skipped as expired or already present) and verified
  1  the run finished but is incomplete: records failed or kept changing, or the verification found differences
  2  bad command line or URL, or a checkpoint problem (--resume without one, one without --resume)
  3  a store could not be reached, or failed during the run (the checkpoint is kept: --resume)
  130 interrupted (Ctrl-C; the checkpoint is kept: --resume)";
