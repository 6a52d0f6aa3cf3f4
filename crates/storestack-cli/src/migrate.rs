//! `storestack migrate`: checks, connects, copies with progress, prints
//! the summary, and says how it went in the exit status.

use std::hash::Hasher as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use storestack::layers::migration::bulk::{
    BulkConfig, BulkMigrator, Checkpoint as _, FileCheckpoint, Progress, VerifyConfig,
};
use storestack::StoreError;

use crate::address::StoreUrl;
use crate::cli::MigrateArgs;
use crate::open::{open, OpenOptions};
use crate::output::{summary, Reporter, RunFacts};

/// Exit status: copied and verified.
pub const EXIT_OK: u8 = 0;
/// Exit status: finished, but records failed or raced, or the
/// verification found differences.
pub const EXIT_INCOMPLETE: u8 = 1;
/// Exit status: bad command line, URL or checkpoint.
pub const EXIT_USAGE: u8 = 2;
/// Exit status: a store could not be reached or failed during the run.
pub const EXIT_STORE: u8 = 3;
/// Exit status: interrupted by Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;

/// A failure to report: the message (already free of credentials) and the
/// exit status.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: EXIT_USAGE,
        message: message.into(),
    }
}

/// Replaces every secret in `text` by `***`.
pub(crate) fn scrub(mut text: String, secrets: &[String]) -> String {
    for secret in secrets {
        text = text.replace(secret.as_str(), "***");
    }
    text
}

/// A store error with its causes, one per line.
pub(crate) fn describe(err: &StoreError) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str("\n  caused by: ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The checkpoint file of a migration when `--checkpoint` is not given:
/// `storestack-migrate-<from kind>-to-<to kind>-<hash>.ckpt` in the current
/// directory, the hash taken over both [identities](StoreUrl::identity)
/// (no credentials).
///
/// ```
/// use storestack_cli::{default_checkpoint_path, StoreUrl};
///
/// let from: StoreUrl = "redis://:pw1@h:6379?prefix=sess:".parse()?;
/// let to: StoreUrl = "mongodb://u:pw2@m:27017/app/sessions".parse()?;
/// let path = default_checkpoint_path(&from, &to);
/// let name = path.file_name().unwrap().to_str().unwrap();
/// assert!(name.starts_with("storestack-migrate-redis-to-mongodb-"), "{name}");
/// // Other credentials, same stores: the same checkpoint.
/// let from_again: StoreUrl = "redis://:other@h:6379/0?prefix=sess:".parse()?;
/// assert_eq!(default_checkpoint_path(&from_again, &to), path);
/// # Ok::<_, storestack_cli::UrlError>(())
/// ```
pub fn default_checkpoint_path(from: &StoreUrl, to: &StoreUrl) -> PathBuf {
    // Fixed keys: the name must not change between runs or builds.
    let mut hasher = siphasher::sip::SipHasher13::new_with_keys(0x5354_4f52, 0x4d49_4752);
    hasher.write(label(from, to).as_bytes());
    PathBuf::from(format!(
        "storestack-migrate-{}-to-{}-{:016x}.ckpt",
        from.kind(),
        to.kind(),
        hasher.finish()
    ))
}

/// The migration's label (kept in the checkpoint, which refuses another
/// migration's label).
fn label(from: &StoreUrl, to: &StoreUrl) -> String {
    format!("{} -> {}", from.identity(), to.identity())
}

fn bulk_config(args: &MigrateArgs) -> BulkConfig {
    let verify = (!args.no_verify).then(|| {
        VerifyConfig::default()
            .samples(args.verify_sample)
            .count_tolerance(args.count_tolerance)
    });
    BulkConfig::default()
        .page_size(args.batch as usize)
        .concurrency(args.concurrency as usize)
        .rate_limit(args.rate)
        .dry_run(args.dry_run)
        // A dry run that does not resume counts from the start and leaves
        // the checkpoint alone.
        .restart(args.restart || (args.dry_run && !args.resume))
        .verify(verify)
        .recheck(!args.offline)
}

/// Runs `storestack migrate` and returns the exit status.
pub async fn migrate(args: MigrateArgs) -> u8 {
    let mut secrets = Vec::new();
    match run(&args, &mut secrets).await {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("error: {}", scrub(failure.message, &secrets));
            failure.code
        }
    }
}

fn parse_url(raw: &str, role: &str) -> Result<StoreUrl, Failure> {
    raw.parse::<StoreUrl>()
        .map_err(|e| usage(format!("--{role}: {e}")))
}

async fn run(args: &MigrateArgs, secrets: &mut Vec<String>) -> Result<u8, Failure> {
    let started = Instant::now();
    let from = parse_url(&args.from, "from")?;
    let to = parse_url(&args.to, "to")?;
    secrets.extend(from.secrets());
    secrets.extend(to.secrets());
    if from.identity() == to.identity() && !matches!(from, StoreUrl::Memory { .. }) {
        return Err(usage(format!(
            "--from and --to name the same store ({from})"
        )));
    }
    let label = label(&from, &to);
    let path = args
        .checkpoint
        .clone()
        .unwrap_or_else(|| default_checkpoint_path(&from, &to));
    let checkpoint = FileCheckpoint::new(&path);
    let resumed_after = check_checkpoint(args, &checkpoint, &label).await?;

    let options = OpenOptions {
        connect_timeout: Duration::from_secs(args.connect_timeout.max(1)),
        connections: args.concurrency.min(u32::MAX as u64) as u32,
        ..OpenOptions::default()
    };
    let (old, new) = tokio::join!(open(&from, &options), open(&to, &options));
    let connect_failed = |role: &str, url: &StoreUrl, e: StoreError| Failure {
        code: EXIT_STORE,
        message: format!("cannot connect to the {role} store {url}: {}", describe(&e)),
    };
    let old = old.map_err(|e| connect_failed("source", &from, e))?;
    let new = new.map_err(|e| connect_failed("destination", &to, e))?;

    let route = format!("{from} -> {to}");
    if !args.quiet {
        eprintln!("migrating {route}");
        match (args.dry_run, resumed_after) {
            (true, _) => eprintln!("dry run: nothing is written"),
            (false, Some(n)) => {
                eprintln!("checkpoint {} (resuming after {n} keys)", path.display())
            }
            (false, None) => eprintln!("checkpoint {}", path.display()),
        }
    }
    let reporter = Reporter::new(args.quiet);
    let migrator = BulkMigrator::new(&*old, &*new)
        .label(label)
        .config(bulk_config(args))
        .checkpoint(checkpoint.clone())
        .on_progress(|p: &Progress| reporter.update(p));
    let outcome = tokio::select! {
        outcome = migrator.run() => outcome,
        _ = tokio::signal::ctrl_c() => {
            reporter.finish();
            eprintln!(
                "interrupted: progress is saved in {}; continue with --resume",
                path.display()
            );
            return Ok(EXIT_INTERRUPTED);
        }
    };
    reporter.finish();
    let report = outcome.map_err(|e| Failure {
        code: EXIT_STORE,
        message: format!(
            "{}\nprogress is saved in {}; continue with --resume",
            describe(&e),
            path.display()
        ),
    })?;
    let facts = RunFacts {
        route,
        resumed_after,
        elapsed: started.elapsed(),
    };
    print!("{}", scrub(summary(&report, &facts), secrets));
    if args.dry_run {
        return Ok(EXIT_OK);
    }
    if report.is_success() {
        // A finished run's checkpoint would only be in the next run's way.
        if let Err(e) = checkpoint.remove().await {
            eprintln!("warning: could not remove {}: {e}", path.display());
        }
        Ok(EXIT_OK)
    } else {
        eprintln!(
            "the checkpoint is kept in {}; run again with --restart to revisit every key \
             (records already copied are skipped)",
            path.display()
        );
        Ok(EXIT_INCOMPLETE)
    }
}

/// Applies the `--resume` / `--restart` rules to the saved checkpoint;
/// returns the keys scanned before when resuming.
async fn check_checkpoint(
    args: &MigrateArgs,
    checkpoint: &FileCheckpoint,
    label: &str,
) -> Result<Option<u64>, Failure> {
    let path = checkpoint.path();
    let saved = checkpoint.load().await.map_err(|e| {
        usage(format!(
            "cannot read the checkpoint {}: {}",
            path.display(),
            describe(&e)
        ))
    })?;
    let ignore = args.restart || (args.dry_run && !args.resume);
    match saved {
        Some(_) if ignore => Ok(None),
        Some(state) if state.label != label => Err(usage(format!(
            "the checkpoint {} belongs to another migration ({}); pass another --checkpoint",
            path.display(),
            state.label
        ))),
        Some(state) if args.resume => Ok(Some(state.counts.scanned)),
        Some(state) => Err(usage(format!(
            "an earlier run of this migration left a checkpoint in {} ({} keys scanned): \
             pass --resume to continue it or --restart to start over",
            path.display(),
            state.counts.scanned
        ))),
        None if args.resume => Err(usage(format!(
            "--resume: there is no checkpoint at {}",
            path.display()
        ))),
        None => Ok(None),
    }
}
