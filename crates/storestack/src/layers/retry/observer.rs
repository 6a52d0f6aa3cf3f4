use std::fmt;
use std::time::Duration;

use crate::error::{Op, StoreError};

/// Watches a [`Retry`](super::Retry) decide: called after every failed
/// attempt that will be retried, and once when it gives up.
///
/// Closures `Fn(&RetryEvent<'_>)` implement it:
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use storestack::layers::retry::{RetryConfig, RetryEvent};
///
/// let retries = Arc::new(AtomicU32::new(0));
/// let seen = retries.clone();
/// let config = RetryConfig::default().observer(move |event: &RetryEvent<'_>| {
///     if event.next_delay.is_some() {
///         seen.fetch_add(1, Ordering::Relaxed);
///     }
/// });
/// # drop(config);
/// ```
///
/// Observers run inline on the retrying task: keep them short and never
/// block.
pub trait RetryObserver: Send + Sync + 'static {
    /// Called with each event.
    fn on_event(&self, event: &RetryEvent<'_>);
}

impl<F> RetryObserver for F
where
    F: Fn(&RetryEvent<'_>) + Send + Sync + 'static,
{
    fn on_event(&self, event: &RetryEvent<'_>) {
        self(event)
    }
}

// Observers are stored boxed: the trait must stay object safe.
fn _assert_object_safe(_: Box<dyn RetryObserver>) {}

/// What a [`RetryObserver`] is told.
#[derive(Debug)]
#[non_exhaustive]
pub struct RetryEvent<'a> {
    /// The name of the store being retried.
    pub store: &'a str,
    /// The operation.
    pub op: Op,
    /// The attempt that just failed, from 1.
    pub attempt: u32,
    /// Its error. Never contains a key.
    pub error: &'a StoreError,
    /// How long until the next attempt; `None` when the retry gives up
    /// (the error is then returned to the caller, marked exhausted).
    pub next_delay: Option<Duration>,
}

/// An optional boxed observer with a `Debug` that does not need one.
#[derive(Clone, Default)]
pub(super) struct Observer(pub(super) Option<std::sync::Arc<dyn RetryObserver>>);

impl Observer {
    pub(super) fn emit(&self, event: &RetryEvent<'_>) {
        if let Some(o) = &self.0 {
            o.on_event(event);
        }
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Some(..)" } else { "None" })
    }
}
