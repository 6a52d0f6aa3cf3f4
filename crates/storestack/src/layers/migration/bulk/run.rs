//! The copy pass of a bulk migration: pages, bounded concurrency, rate
//! limit, retries, checkpoints.

use std::future::Future;
use std::task::Poll;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;

use super::progress::Outcome;
use super::rate::RateLimiter;
use super::{BulkMigrator, CheckpointState, Counts, Progress};
use crate::error::{ErrorKind, Op, Result, StoreError};
use crate::layers::migration::copy::{Copier, CopyOutcome};
use crate::layers::migration::phase::key_hash;
use crate::store::{ScanCursor, ScanPage};

impl BulkMigrator<'_> {
    pub(super) async fn copy_all(
        &self,
        state: &mut CheckpointState,
        progress: &mut Progress,
    ) -> Result<()> {
        let started = Instant::now();
        let limiter = self.config.rate_limit.map(RateLimiter::new);
        let mut page = self.scan(state.cursor.clone()).await?;
        loop {
            let next = page.next.clone();
            let prefetch = async {
                match &next {
                    Some(cursor) => Some(self.scan(cursor.clone()).await),
                    None => None,
                }
            };
            let (copied, fetched) =
                tokio::join!(self.copy_page(&page.keys, limiter.as_ref()), prefetch);
            let counts = copied?;
            state.counts += counts;
            if state.counts.failed > self.config.max_failed {
                return Err(StoreError::unavailable(Op::Set)
                    .with_store(self.label.clone())
                    .with_message(format!(
                        "bulk migration stopped: {} records failed after retries",
                        state.counts.failed
                    )));
            }
            state.done = next.is_none();
            state.cursor = next.unwrap_or_default();
            if !self.config.dry_run {
                self.checkpoint.save(state).await?;
            }
            progress.counts = state.counts;
            progress.run_scanned += counts.scanned;
            progress.pages += 1;
            progress.elapsed = started.elapsed();
            let secs = progress.elapsed.as_secs_f64();
            progress.rate = if secs > 0.0 {
                progress.run_scanned as f64 / secs
            } else {
                0.0
            };
            progress.done = state.done;
            self.emit(progress);
            // Let other tasks run between pages, even over a store whose
            // calls never wait.
            tokio::task::yield_now().await;
            match fetched {
                None => return Ok(()),
                Some(fetched) => page = fetched?,
            }
        }
    }

    async fn scan(&self, cursor: ScanCursor) -> Result<ScanPage> {
        let limit = self.config.page_size.max(1);
        self.retrying(|| self.old.scan(&self.config.prefix, cursor.clone(), limit))
            .await
            .map_err(|e| self.abort(e, "could not scan the old store"))
    }

    async fn copy_page(&self, keys: &[String], limiter: Option<&RateLimiter>) -> Result<Counts> {
        let mut counts = Counts {
            scanned: keys.len() as u64,
            ..Counts::default()
        };
        let limit = self.config.concurrency.max(1);
        let mut in_flight = FuturesUnordered::new();
        for key in keys {
            while in_flight.len() >= limit {
                if let Some(outcome) = in_flight.next().await {
                    counts.record(outcome?);
                }
            }
            // A copy that completes on its first poll (an in-process store)
            // never enters the concurrent set: that costs more than the copy.
            let mut copy = Box::pin(self.copy_record(key, limiter));
            match futures::poll!(copy.as_mut()) {
                Poll::Ready(outcome) => counts.record(outcome?),
                Poll::Pending => in_flight.push(copy),
            }
        }
        while let Some(outcome) = in_flight.next().await {
            counts.record(outcome?);
        }
        Ok(counts)
    }

    async fn copy_record(&self, key: &str, limiter: Option<&RateLimiter>) -> Result<Outcome> {
        if let Some(limiter) = limiter {
            limiter.acquire().await;
        }
        let _guard = match self.locks {
            Some(locks) => Some(locks.lock(key_hash(key)).await),
            None => None,
        };
        let first = match self.retrying(|| self.old.get(key)).await {
            Ok(Some(first)) => first,
            Ok(None) => return Ok(Outcome::Vanished),
            Err(e) => return self.failed(e, "could not read a record from the old store"),
        };
        if first.is_expired_at(self.clock.now()) {
            return Ok(Outcome::Expired);
        }
        if self.config.dry_run {
            return match self.retrying(|| self.new.get(key)).await {
                Ok(Some(_)) => Ok(Outcome::Existing),
                Ok(None) => Ok(Outcome::Copied),
                Err(e) => self.failed(e, "could not read the new store"),
            };
        }
        let copier = Copier {
            old: self.old,
            new: self.new,
            clock: &*self.clock,
            label: &self.label,
            recheck: self.config.recheck,
        };
        match self.retrying(|| copier.copy_key(key, first.clone())).await {
            Ok(CopyOutcome::Copied(_)) => Ok(Outcome::Copied),
            Ok(CopyOutcome::Existing) => Ok(Outcome::Existing),
            Ok(CopyOutcome::Expired) => Ok(Outcome::Expired),
            Ok(CopyOutcome::Gone) => Ok(Outcome::Vanished),
            Ok(CopyOutcome::Unstable(_)) => Ok(Outcome::Raced),
            Err(e) => self.failed(e, "could not copy a record to the new store"),
        }
    }

    /// A record's error after retries: transient ones count, others abort.
    fn failed(&self, e: StoreError, what: &'static str) -> Result<Outcome> {
        if e.is_transient() {
            tracing::debug!(migration = %self.label, error = %e, "{what}");
            Ok(Outcome::Failed)
        } else {
            Err(self.abort(e, what))
        }
    }

    pub(super) fn abort(&self, e: StoreError, what: &'static str) -> StoreError {
        let kind: ErrorKind = e.kind();
        StoreError::new(kind, e.op())
            .with_store(self.label.clone())
            .with_message(format!("bulk migration stopped: {what}"))
            .with_source(e)
    }

    async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut delay = self.config.retry_delay;
        let mut tries = 1;
        loop {
            match attempt().await {
                Err(e) if e.is_transient() && tries < self.config.max_attempts => {
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                    tries += 1;
                }
                result => return result,
            }
        }
    }

    pub(super) fn emit(&self, progress: &Progress) {
        if let Some(sink) = &self.progress {
            sink.on_progress(progress);
        }
    }
}
