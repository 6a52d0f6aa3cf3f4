//! fred errors as [`StoreError`]s.
//!
//! | fred error | kind |
//! |---|---|
//! | `Timeout` | `Timeout` |
//! | `IO`, `Canceled` (the fail-fast refusal while disconnected), `Routing`, `Cluster` (`CLUSTERDOWN`, redirections), `Sentinel`, `Backpressure` | `Unavailable` |
//! | server replies `LOADING`, `BUSY`, `MASTERDOWN`, `READONLY`, `TRYAGAIN`, `NOREPLICAS`, `OOM`, `ERR max number of clients` | `Unavailable` |
//! | client-side `Unknown` errors (no server error code: "failed to route", "too many attempts", "client is not initialized") | `Unavailable` |
//! | `Auth`; server replies `WRONGPASS`, `NOAUTH` (a wrong or missing password), `NOPERM` (an ACL user without the right to a command or a key) | `PermissionDenied` |
//! | `Tls`, and `IO` errors of kind `InvalidData` (a TLS handshake that failed: a certificate not trusted, a server that does not speak TLS); server replies `ERR unknown command` / `unknown subcommand` (a server too old for a command this store sends, or a command renamed or disabled), `ERR AUTH … without any password configured` (a password given to a server that has none), `ERR DB index is out of range`, `MISCONF` (writes refused until an operator fixes persistence); `Config` (e.g. a cluster client against a server without cluster support) | `Misconfigured` |
//! | `Url` | `InvalidInput` (like the configuration checks `connect` makes before any I/O) |
//! | server reply `WRONGTYPE` (a key of this store holds a non-string) | `Corrupt` |
//! | anything else (`ERR …` replies to our own commands, protocol and parse errors) | `Internal` |
//!
//! `PermissionDenied` and `Misconfigured` are permanent (see
//! [`storestack::error`]): Retry does not retry them, a breaker does not
//! count them and a Fallback does not fail over on them, so a wrong password
//! fails loudly instead of looking like an outage. A password that stops
//! working while the store runs (rotated on the server only) is noticed when
//! a connection is re-established: fred's reconnect loop meets the refusal,
//! and the operations waiting on it fail as `Unavailable` (the refusal is in
//! fred's log).
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

/// Server error codes of refused credentials or rights.
const PERMISSION_CODES: &[&str] = &["NOAUTH", "WRONGPASS", "NOPERM"];

/// Beginnings of `ERR` replies that mean the deployment does not match the
/// configuration (lower-cased).
const MISCONFIGURED_ERRS: &[&str] = &[
    "err unknown command",
    "err unknown subcommand",
    "err auth",
    "err client sent auth",
    "err db index is out of range",
    "err select is not allowed in cluster mode",
];

/// The error code of a server reply (`WRONGTYPE …` → `WRONGTYPE`); `None`
/// for fred's own messages, which start with a capitalized word.
fn server_code(details: &str) -> Option<&str> {
    let code = details.split_whitespace().next()?;
    (code.len() >= 2 && code.bytes().all(|b| b.is_ascii_uppercase())).then_some(code)
}

/// Whether an `ERR` reply says the deployment is wrong: it starts with one
/// of [`MISCONFIGURED_ERRS`], or a script met a command the server does not
/// know (Redis before 7.0 has no `PEXPIRETIME`).
fn misconfigured_err(details: &str) -> bool {
    let head = details.get(..200).unwrap_or(details).to_ascii_lowercase();
    MISCONFIGURED_ERRS.iter().any(|m| head.starts_with(m))
        || head.contains("unknown redis command called from script")
}

/// Whether an IO error is a TLS handshake's: the TLS layer reports a failed
/// handshake (a bad certificate, a peer that does not speak TLS) as
/// `InvalidData`, which a plain TCP socket never does. fred keeps only the
/// `Debug` rendering of the IO error.
fn tls_failure(details: &str) -> bool {
    details.contains("kind: InvalidData")
}

/// The storestack kind of a fred error.
pub(crate) fn kind_of(err: &FredError) -> ErrorKind {
    match err.kind() {
        FredKind::Timeout => ErrorKind::Timeout,
        FredKind::IO if tls_failure(err.details()) => ErrorKind::Misconfigured,
        FredKind::IO
        | FredKind::Canceled
        | FredKind::Routing
        | FredKind::Cluster
        | FredKind::Sentinel
        | FredKind::Backpressure => ErrorKind::Unavailable,
        FredKind::Auth => ErrorKind::PermissionDenied,
        #[cfg(any(feature = "tls", feature = "native-tls"))]
        FredKind::Tls => ErrorKind::Misconfigured,
        FredKind::Config => ErrorKind::Misconfigured,
        FredKind::Url => ErrorKind::InvalidInput,
        FredKind::Unknown | FredKind::InvalidArgument => match server_code(err.details()) {
            Some(code) if TRANSIENT_CODES.contains(&code) => ErrorKind::Unavailable,
            Some(code) if PERMISSION_CODES.contains(&code) => ErrorKind::PermissionDenied,
            Some("MISCONF") => ErrorKind::Misconfigured,
            Some("ERR") if err.details().contains("max number of clients") => {
                ErrorKind::Unavailable
            }
            Some("ERR") if misconfigured_err(err.details()) => ErrorKind::Misconfigured,
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
        ErrorKind::PermissionDenied => {
            "redis refused the credentials or a command (check the user name, password and acl rules)"
        }
        ErrorKind::Misconfigured => {
            "the redis deployment does not match the configuration (tls, server version, settings)"
        }
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
        assert_eq!(kind(FredKind::Url, "x"), ErrorKind::InvalidInput);
        assert_eq!(
            kind(FredKind::Unknown, "ERR unknown key in AUTH"),
            ErrorKind::Internal,
            "only the beginning of a reply counts"
        );
    }

    #[test]
    fn a_broken_deployment_is_permanent() {
        for (k, d, expected) in [
            (
                FredKind::Auth,
                "WRONGPASS invalid username-password pair or user is disabled.",
                ErrorKind::PermissionDenied,
            ),
            (
                FredKind::Auth,
                "NOAUTH Authentication required.",
                ErrorKind::PermissionDenied,
            ),
            (
                FredKind::Unknown,
                "NOPERM User u has no permissions to run the 'evalsha' command",
                ErrorKind::PermissionDenied,
            ),
            (
                FredKind::Unknown,
                "ERR unknown command 'PEXPIRETIME', with args beginning with: ",
                ErrorKind::Misconfigured,
            ),
            (
                FredKind::Unknown,
                "ERR AUTH <password> called without any password configured for the default user.",
                ErrorKind::Misconfigured,
            ),
            (
                FredKind::Unknown,
                "ERR DB index is out of range",
                ErrorKind::Misconfigured,
            ),
            (
                FredKind::Unknown,
                "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.",
                ErrorKind::Misconfigured,
            ),
            (
                FredKind::Unknown,
                "ERR user_script:1: Unknown Redis command called from script script: 1f2e, on @user_script:1.",
                ErrorKind::Misconfigured,
            ),
            (
                FredKind::IO,
                "Custom { kind: InvalidData, error: InvalidCertificate(UnknownIssuer) }",
                ErrorKind::Misconfigured,
            ),
            (FredKind::Config, "x", ErrorKind::Misconfigured),
        ] {
            assert_eq!(kind(k.clone(), d), expected, "{d}");
            let err = map(Op::Get, FredError::new(k, d));
            assert!(!err.is_transient() && err.needs_operator(), "{d}");
        }
    }

    #[test]
    fn source_is_kept() {
        let err = map(Op::Set, FredError::new(FredKind::IO, "reset"));
        let source = std::error::Error::source(&err).expect("source");
        assert!(source.downcast_ref::<FredError>().is_some());
        assert_eq!(err.store(), "redis");
    }
}
