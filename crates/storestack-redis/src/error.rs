//! fred errors as [`StoreError`]s.
//!
//! | fred error | kind |
//! |---|---|
//! | `Timeout` | `Timeout` |
//! | `IO`, `Canceled` (the fail-fast refusal while disconnected), `Routing`, `Cluster` (`CLUSTERDOWN`, redirections), `Sentinel`, `Backpressure`, `Tls`, `Auth` | `Unavailable` |
//! | server replies `LOADING`, `BUSY`, `MASTERDOWN`, `READONLY`, `TRYAGAIN`, `NOREPLICAS`, `OOM`, `ERR max number of clients` | `Unavailable` |
//! | client-side `Unknown` errors (no server error code: "failed to route", "too many attempts", "client is not initialized") | `Unavailable` |
//! | server reply `WRONGTYPE` (a key of this store holds a non-string) | `Corrupt` |
//! | `Config`, `Url` | `InvalidInput` |
//! | anything else (`ERR …` replies to our own commands, protocol and parse errors) | `Internal` |
//!
//! The fred error is always kept as the `source`.

use fred::error::{Error as FredError, ErrorKind as FredKind};
use storestack::{ErrorKind, Op, StoreError};

/// The name of the store in errors and in [`Store::name`](storestack::Store::name).
pub(crate) const STORE_NAME: &str = "redis";

/// Server error codes that mean "try again later".
const TRANSIENT_CODES: &[&str] = &[
    "LOADING",
    "BUSY",
    "MASTERDOWN",
    "READONLY",
    "TRYAGAIN",
    "NOREPLICAS",
    "CLUSTERDOWN",
    "OOM",
];

/// The error code of a server reply (`WRONGTYPE …` → `WRONGTYPE`); `None`
/// for fred's own messages, which start with a capitalized word.
fn server_code(details: &str) -> Option<&str> {
    let code = details.split_whitespace().next()?;
    (code.len() >= 2 && code.bytes().all(|b| b.is_ascii_uppercase())).then_some(code)
}

/// The storestack kind of a fred error.
pub(crate) fn kind_of(err: &FredError) -> ErrorKind {
    match err.kind() {
        FredKind::Timeout => ErrorKind::Timeout,
        FredKind::IO
        | FredKind::Canceled
        | FredKind::Routing
        | FredKind::Cluster
        | FredKind::Sentinel
        | FredKind::Backpressure
        | FredKind::Auth => ErrorKind::Unavailable,
        #[cfg(any(feature = "tls", feature = "native-tls"))]
        FredKind::Tls => ErrorKind::Unavailable,
        FredKind::Config | FredKind::Url => ErrorKind::InvalidInput,
        FredKind::Unknown | FredKind::InvalidArgument => match server_code(err.details()) {
            Some(code) if TRANSIENT_CODES.contains(&code) => ErrorKind::Unavailable,
            Some("ERR") if err.details().contains("max number of clients") => {
                ErrorKind::Unavailable
            }
            Some("WRONGTYPE") => ErrorKind::Corrupt,
            Some(_) => ErrorKind::Internal,
            None if *err.kind() == FredKind::Unknown => ErrorKind::Unavailable,
            None => ErrorKind::Internal,
        },
        _ => ErrorKind::Internal,
    }
}

/// A fred error as a [`StoreError`] of `op`, with the fred error as source.
pub(crate) fn map(op: Op, err: FredError) -> StoreError {
    let message = match kind_of(&err) {
        ErrorKind::Timeout => "no reply within the command timeout",
        ErrorKind::Unavailable => "redis is unreachable or not ready",
        ErrorKind::Corrupt => "a key of this store holds a value that is not a string",
        ErrorKind::InvalidInput => "invalid redis configuration",
        _ => "unexpected redis error",
    };
    StoreError::new(kind_of(&err), op)
        .with_store(STORE_NAME)
        .with_message(message)
        .with_source(err)
}

/// A reply of an unexpected shape.
pub(crate) fn unexpected_reply(op: Op) -> StoreError {
    StoreError::internal(op)
        .with_store(STORE_NAME)
        .with_message("unexpected reply shape from redis")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(k: FredKind, details: &'static str) -> ErrorKind {
        kind_of(&FredError::new(k, details))
    }

    #[test]
    fn outage_errors_are_transient() {
        assert_eq!(
            kind(FredKind::Timeout, "Request timed out."),
            ErrorKind::Timeout
        );
        for (k, d) in [
            (FredKind::IO, "Connection reset by peer"),
            (FredKind::Canceled, "Connection closed unexpectedly."),
            (FredKind::Unknown, "Failed to route command."),
            (FredKind::Unknown, "Too many failed write attempts."),
            (
                FredKind::Unknown,
                "LOADING Redis is loading the dataset in memory",
            ),
            (FredKind::Cluster, "CLUSTERDOWN The cluster is down"),
            (FredKind::Unknown, "ERR max number of clients reached"),
            (
                FredKind::Unknown,
                "READONLY You can't write against a read only replica.",
            ),
        ] {
            assert_eq!(kind(k.clone(), d), ErrorKind::Unavailable, "{d}");
            assert!(map(Op::Get, FredError::new(k, d)).is_transient());
        }
    }

    #[test]
    fn bugs_and_bad_data_are_not_transient() {
        assert_eq!(
            kind(
                FredKind::InvalidArgument,
                "WRONGTYPE Operation against a key"
            ),
            ErrorKind::Corrupt
        );
        assert_eq!(
            kind(FredKind::Unknown, "ERR syntax error"),
            ErrorKind::Internal
        );
        assert_eq!(kind(FredKind::Protocol, "bad frame"), ErrorKind::Internal);
        assert_eq!(kind(FredKind::Config, "x"), ErrorKind::InvalidInput);
    }

    #[test]
    fn source_is_kept() {
        let err = map(Op::Set, FredError::new(FredKind::IO, "reset"));
        let source = std::error::Error::source(&err).expect("source");
        assert!(source.downcast_ref::<FredError>().is_some());
        assert_eq!(err.store(), "redis");
    }
}
