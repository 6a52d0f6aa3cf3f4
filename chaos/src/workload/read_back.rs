//! The final reads of a run: after the workload stopped and the faults
//! were lifted, every key the workload wrote is read once through every
//! process, and the results go to [`History::final_reads`], which is what
//! lost writes are judged by.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use storestack::SharedStore;
use tokio::time::Instant;

use super::RunStart;
use crate::history::{History, OpRecord, Outcome, ReadValue, ValueId, WorkOp};

/// How the final reads are made.
///
/// # Default
///
/// A 2 s deadline per read, failed reads retried for up to 5 s (a breaker
/// may still be open, a client still reconnecting), 16 reads at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadBack {
    /// Deadline of one read; past it the read counts as hung.
    pub hang_deadline: Duration,
    /// How long failed reads are retried before their failure is final.
    pub patience: Duration,
    /// Reads in flight at once.
    pub concurrency: usize,
}

impl Default for ReadBack {
    fn default() -> Self {
        ReadBack {
            hang_deadline: Duration::from_secs(2),
            patience: Duration::from_secs(5),
            concurrency: 16,
        }
    }
}

impl ReadBack {
    /// Sets the deadline of one read.
    pub fn hang_deadline(mut self, deadline: Duration) -> Self {
        self.hang_deadline = deadline;
        self
    }

    /// Sets how long failed reads are retried.
    pub fn patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }
}

/// Reads every key `history` wrote (set, create, delete or touch) through
/// each of `processes` and appends the reads to
/// [`history.final_reads`](History::final_reads); a read that fails is
/// retried until it succeeds or `config.patience` has passed, and only its
/// last attempt is recorded. Times are offsets from `start`.
pub async fn read_back(
    history: &mut History,
    processes: &[SharedStore],
    start: RunStart,
    config: ReadBack,
) {
    let keys: BTreeSet<u32> = history
        .ops
        .iter()
        .filter(|op| op.op != WorkOp::Get)
        .map(|op| op.key)
        .collect();
    let mut pending: Vec<(u32, u32)> = (0..processes.len() as u32)
        .flat_map(|p| keys.iter().map(move |&k| (p, k)))
        .collect();
    let give_up = Instant::now() + config.patience;
    let mut attempt = 0;
    while !pending.is_empty() {
        let prefix = history.key_prefix.clone();
        let reads = pending.iter().map(|&(process, key)| {
            let store = processes[process as usize].clone();
            let name = crate::history::key_name(&prefix, key);
            async move {
                let started = Instant::now();
                let read = tokio::time::timeout(config.hang_deadline, store.get(&name)).await;
                let outcome = match read {
                    Ok(Ok(None)) => Outcome::Read(ReadValue::Absent),
                    Ok(Ok(Some(r))) => Outcome::Read(ValueId::decode(&r.value, key)),
                    Ok(Err(e)) => Outcome::Failed(e.kind().into()),
                    Err(_) => Outcome::Hung,
                };
                OpRecord {
                    worker: process,
                    seq: attempt,
                    op: WorkOp::Get,
                    key,
                    start: started.saturating_duration_since(start.instant),
                    end: Instant::now().saturating_duration_since(start.instant),
                    write: None,
                    expires_at: None,
                    outcome,
                }
            }
        });
        let done: Vec<OpRecord> = stream::iter(reads)
            .buffer_unordered(config.concurrency.max(1))
            .collect()
            .await;
        let last_chance = Instant::now() >= give_up;
        pending.clear();
        for read in done {
            if read.outcome.is_ok() || last_chance {
                history.final_reads.push(read);
            } else {
                pending.push((read.worker, read.key));
            }
        }
        attempt += 1;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    history
        .final_reads
        .sort_by_key(|op| (op.start, op.worker, op.key));
}
