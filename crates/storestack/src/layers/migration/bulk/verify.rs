//! Checking a migration: live counts of both stores, and a byte compare
//! of a random sample of old's keys.

use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::Result;
use crate::store::{Record, ScanCursor, Store};

/// How [`BulkMigrator::verify`](super::BulkMigrator::verify) checks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyConfig {
    /// Keys sampled (uniformly, by a reservoir over a scan of old).
    /// Default 1000.
    pub samples: usize,
    /// Largest accepted difference between the two expiries of a record.
    /// Default 1 s (backends round expiry differently).
    pub expiry_tolerance: Duration,
    /// Largest accepted difference between the live counts. Default 0;
    /// raise it when the application writes during the check.
    pub count_tolerance: u64,
    /// The sampling seed; random when `None` (the report says which).
    pub seed: Option<u64>,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig {
            samples: 1000,
            expiry_tolerance: Duration::from_secs(1),
            count_tolerance: 0,
            seed: None,
        }
    }
}

impl VerifyConfig {
    /// Sets the sample size.
    pub fn samples(mut self, n: usize) -> Self {
        self.samples = n;
        self
    }

    /// Sets the accepted expiry difference.
    pub fn expiry_tolerance(mut self, d: Duration) -> Self {
        self.expiry_tolerance = d;
        self
    }

    /// Sets the accepted count difference.
    pub fn count_tolerance(mut self, n: u64) -> Self {
        self.count_tolerance = n;
        self
    }

    /// Fixes the sampling seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
}

/// What a verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Live records in old.
    pub old_len: u64,
    /// Live records in new.
    pub new_len: u64,
    /// The accepted count difference.
    pub count_tolerance: u64,
    /// Keys compared.
    pub sampled: u64,
    /// Keys with the same value and expiry (within tolerance) in both.
    pub matched: u64,
    /// Keys gone from both stores by the time they were compared.
    pub gone: u64,
    /// Keys in old but not in new.
    pub missing: u64,
    /// Keys in new that old no longer has.
    pub unexpected: u64,
    /// Keys whose values differ.
    pub value_mismatch: u64,
    /// Keys whose expiries differ by more than the tolerance.
    pub expiry_mismatch: u64,
    /// The sampling seed (to replay the same sample).
    pub seed: u64,
}

impl VerifyReport {
    /// Whether the live counts agree within tolerance.
    pub fn counts_match(&self) -> bool {
        self.old_len.abs_diff(self.new_len) <= self.count_tolerance
    }

    /// Counts agree and every sampled key matched (or is gone from both).
    pub fn is_ok(&self) -> bool {
        self.counts_match()
            && self.missing == 0
            && self.unexpected == 0
            && self.value_mismatch == 0
            && self.expiry_mismatch == 0
    }
}

/// Runs a verification.
pub(super) async fn verify(
    old: &dyn Store,
    new: &dyn Store,
    prefix: &str,
    page_size: usize,
    config: &VerifyConfig,
) -> Result<VerifyReport> {
    let seed = config.seed.unwrap_or_else(rand::random);
    let mut report = VerifyReport {
        seed,
        count_tolerance: config.count_tolerance,
        ..VerifyReport::default()
    };
    let sample = reservoir(old, prefix, page_size, config.samples, seed).await?;
    for key in &sample {
        report.sampled += 1;
        // A difference may be a write in flight: look twice.
        let mut verdict = compare(old, new, key, config.expiry_tolerance).await?;
        if verdict != Verdict::Matched && verdict != Verdict::Gone {
            verdict = compare(old, new, key, config.expiry_tolerance).await?;
        }
        *match verdict {
            Verdict::Matched => &mut report.matched,
            Verdict::Gone => &mut report.gone,
            Verdict::Missing => &mut report.missing,
            Verdict::Unexpected => &mut report.unexpected,
            Verdict::Value => &mut report.value_mismatch,
            Verdict::Expiry => &mut report.expiry_mismatch,
        } += 1;
    }
    report.old_len = old.len().await?;
    report.new_len = new.len().await?;
    Ok(report)
}

/// A uniform sample of up to `n` keys of old (Algorithm R).
async fn reservoir(
    old: &dyn Store,
    prefix: &str,
    page_size: usize,
    n: usize,
    seed: u64,
) -> Result<Vec<String>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sample = Vec::with_capacity(n);
    if n == 0 {
        return Ok(sample);
    }
    let mut seen = 0u64;
    let mut cursor = ScanCursor::start();
    loop {
        let page = old.scan(prefix, cursor, page_size).await?;
        for key in page.keys {
            seen += 1;
            if sample.len() < n {
                sample.push(key);
            } else {
                let j = rng.gen_range(0..seen);
                if (j as usize) < n {
                    sample[j as usize] = key;
                }
            }
        }
        match page.next {
            Some(next) => cursor = next,
            None => return Ok(sample),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Matched,
    Gone,
    Missing,
    Unexpected,
    Value,
    Expiry,
}

async fn compare(old: &dyn Store, new: &dyn Store, key: &str, tol: Duration) -> Result<Verdict> {
    let a = old.get(key).await?;
    let b = new.get(key).await?;
    Ok(match (a, b) {
        (None, None) => Verdict::Gone,
        (Some(_), None) => Verdict::Missing,
        (None, Some(_)) => Verdict::Unexpected,
        (Some(a), Some(b)) if a.value != b.value => Verdict::Value,
        (Some(a), Some(b)) if !expiry_close(&a, &b, tol) => Verdict::Expiry,
        _ => Verdict::Matched,
    })
}

fn expiry_close(a: &Record, b: &Record, tol: Duration) -> bool {
    match (a.expires_at, b.expires_at) {
        (None, None) => true,
        (Some(x), Some(y)) => diff(x, y) <= tol,
        _ => false,
    }
}

fn diff(x: SystemTime, y: SystemTime) -> Duration {
    x.duration_since(y)
        .or_else(|_| y.duration_since(x))
        .unwrap_or_default()
}
