//! The per-request scope that lets [`Degraded`](super::Degraded) serve a
//! temporary session and tells the framework layer that it did.

use std::cell::Cell;
use std::future::Future;

use storestack::ErrorKind;

/// Name of the response header that marks a degraded response (value
/// `true`), lower case as HTTP/2 wants it.
pub const HEADER: &str = "x-session-degraded";

/// Counter: requests served with a temporary session because the session
/// store failed with a transient error, by `reason` (the first error's
/// [`ErrorKind::as_str`]: `unavailable`, `timeout` or `circuit_open`).
pub const DEGRADED_REQUESTS_TOTAL: &str = "storestack_session_degraded_requests_total";

tokio::task_local! {
    static SCOPE: Cell<Option<ErrorKind>>;
}

/// How a request was degraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Degradation {
    /// The kind of the first transient error the session store returned.
    pub reason: ErrorKind,
}

/// Runs `request` (the session middleware and the handler) in a
/// degradation scope, and returns its output with what the scope saw:
/// `Some` when [`Degraded`](super::Degraded) served a temporary session
/// in it. Counts degraded requests in [`DEGRADED_REQUESTS_TOTAL`].
///
/// Outside such a scope [`Degraded`](super::Degraded) degrades nothing:
/// store errors reach the session framework as before. The framework
/// layers (`storestack_sessions::DegradedLayer`,
/// `storestack_actix::Degradation`) call this around the session
/// middleware.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use storestack_session_core::degrade::{scoped, is_scoped};
///
/// let (inside, seen) = scoped(async { is_scoped() }).await;
/// assert!(inside && !is_scoped());
/// assert_eq!(seen, None, "nothing was degraded");
/// # });
/// ```
pub async fn scoped<F: Future>(request: F) -> (F::Output, Option<Degradation>) {
    let (output, reason) = SCOPE
        .scope(Cell::new(None), async {
            let output = request.await;
            (output, SCOPE.with(Cell::get))
        })
        .await;
    let seen = reason.map(|reason| Degradation { reason });
    if let Some(d) = seen {
        metrics::counter!(DEGRADED_REQUESTS_TOTAL, "reason" => d.reason.as_str()).increment(1);
    }
    (output, seen)
}

/// Whether the caller runs inside [`scoped`].
pub fn is_scoped() -> bool {
    SCOPE.try_with(|_| ()).is_ok()
}

/// The degradation of the current request so far (`None` outside a scope
/// or while nothing was degraded): a handler can tell API clients in its
/// body too.
pub fn current() -> Option<Degradation> {
    SCOPE
        .try_with(Cell::get)
        .ok()
        .flatten()
        .map(|reason| Degradation { reason })
}

/// Marks the current request degraded (the first reason stays). False
/// outside a scope.
pub(crate) fn mark(reason: ErrorKind) -> bool {
    SCOPE
        .try_with(|cell| {
            if cell.get().is_none() {
                cell.set(Some(reason));
            }
        })
        .is_ok()
}
