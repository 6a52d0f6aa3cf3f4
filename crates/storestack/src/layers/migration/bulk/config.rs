//! [`BulkConfig`]: the settings of a bulk migration.

use std::time::Duration;

use super::verify::VerifyConfig;

/// Settings of a [`BulkMigrator`](super::BulkMigrator).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BulkConfig {
    /// Keys per scan page (and per checkpoint). Default 500.
    pub page_size: usize,
    /// Copies in flight. Default 32.
    pub concurrency: usize,
    /// Most records per second; `None` (default) for no limit.
    pub rate_limit: Option<u32>,
    /// Count what would be copied, write nothing. Default off.
    pub dry_run: bool,
    /// Ignore a saved checkpoint and start from the beginning. Default off.
    pub restart: bool,
    /// Attempts per record (and per scan page) on transient errors.
    /// Default 3.
    pub max_attempts: u32,
    /// Delay before the first retry, doubled after each. Default 100 ms.
    pub retry_delay: Duration,
    /// Abort once more records than this have failed. Default 1000.
    pub max_failed: u64,
    /// The final check; `None` skips it. Default [`VerifyConfig::default`].
    pub verify: Option<VerifyConfig>,
    /// Copy only keys starting with this prefix. Default `""`.
    pub prefix: String,
    /// Read old again after each copy (the copy protocol). Turn it off
    /// only when nothing else writes either store. Default on.
    pub recheck: bool,
    /// Ask old for its live count at the start (for ETA). Default on.
    pub estimate_total: bool,
}

impl Default for BulkConfig {
    fn default() -> Self {
        BulkConfig {
            page_size: 500,
            concurrency: 32,
            rate_limit: None,
            dry_run: false,
            restart: false,
            max_attempts: 3,
            retry_delay: Duration::from_millis(100),
            max_failed: 1000,
            verify: Some(VerifyConfig::default()),
            prefix: String::new(),
            recheck: true,
            estimate_total: true,
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        impl BulkConfig {
            $($(#[$doc])* pub fn $name(mut self, v: $ty) -> Self {
                self.$name = v;
                self
            })*
        }
    };
}

setters! {
    /// Sets [`page_size`](Self::page_size) (at least 1).
    page_size: usize,
    /// Sets [`concurrency`](Self::concurrency) (at least 1).
    concurrency: usize,
    /// Sets [`rate_limit`](Self::rate_limit).
    rate_limit: Option<u32>,
    /// Sets [`dry_run`](Self::dry_run).
    dry_run: bool,
    /// Sets [`restart`](Self::restart).
    restart: bool,
    /// Sets [`max_attempts`](Self::max_attempts) (at least 1).
    max_attempts: u32,
    /// Sets [`retry_delay`](Self::retry_delay).
    retry_delay: Duration,
    /// Sets [`max_failed`](Self::max_failed).
    max_failed: u64,
    /// Sets [`verify`](Self::verify).
    verify: Option<VerifyConfig>,
    /// Sets [`prefix`](Self::prefix).
    prefix: String,
    /// Sets [`recheck`](Self::recheck).
    recheck: bool,
    /// Sets [`estimate_total`](Self::estimate_total).
    estimate_total: bool,
}
