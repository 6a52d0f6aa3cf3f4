//! Latency and error rate over time, in fixed buckets: what the report
//! draws.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Latencies;
use crate::history::{History, Outcome};

/// One time bucket: the operations that started in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Start of the bucket, since the start of the run.
    pub start: Duration,
    /// Operations started in the bucket.
    pub ops: u64,
    /// Of those, failed.
    pub errors: u64,
    /// Of those, hung.
    pub hangs: u64,
    /// Median latency of those that did not hang (zero if none).
    pub p50: Duration,
    /// 99th percentile latency of those that did not hang (zero if none).
    pub p99: Duration,
}

impl Bucket {
    /// Failed and hung operations as a percentage of all (0 for none).
    pub fn error_rate(&self) -> f64 {
        if self.ops == 0 {
            0.0
        } else {
            100.0 * (self.errors + self.hangs) as f64 / self.ops as f64
        }
    }
}

/// A history cut into equal time buckets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Width of each bucket.
    pub width: Duration,
    /// The buckets, in time order, covering the whole run.
    pub buckets: Vec<Bucket>,
}

impl Timeline {
    /// `history` cut into about `count` buckets (at least 10 ms wide).
    pub fn of(history: &History, count: u32) -> Self {
        let span = history
            .ops
            .iter()
            .map(|op| op.start)
            .max()
            .unwrap_or_default()
            .max(history.elapsed);
        let width = (span / count.max(1)).max(Duration::from_millis(10));
        let n = (span.as_nanos() / width.as_nanos()) as usize + 1;
        let mut acc: Vec<(Bucket, Latencies)> = (0..n)
            .map(|i| {
                let bucket = Bucket {
                    start: width * i as u32,
                    ..Bucket::default()
                };
                (bucket, Latencies::new())
            })
            .collect();
        for op in &history.ops {
            let i = ((op.start.as_nanos() / width.as_nanos()) as usize).min(n - 1);
            let (bucket, latencies) = &mut acc[i];
            bucket.ops += 1;
            match op.outcome {
                Outcome::Hung => bucket.hangs += 1,
                Outcome::Failed(_) => {
                    bucket.errors += 1;
                    latencies.record(op.latency());
                }
                _ => latencies.record(op.latency()),
            }
        }
        let buckets = acc
            .into_iter()
            .map(|(mut bucket, latencies)| {
                let summary = latencies.summary();
                bucket.p50 = summary.p50;
                bucket.p99 = summary.p99;
                bucket
            })
            .collect();
        Timeline { width, buckets }
    }
}
