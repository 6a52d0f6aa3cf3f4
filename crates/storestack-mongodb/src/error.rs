//! Driver errors as [`StoreError`]s.
//!
//! Refused credentials or rights (the driver's `Authentication` errors,
//! server codes 13 `Unauthorized`, 18 `AuthenticationFailed`, 11
//! `UserNotFound`) are `PermissionDenied`; a TLS setup or handshake that
//! fails, a server too old for the driver and a command the server does
//! not know (59 `CommandNotFound`) are `Misconfigured`. Both are permanent
//! (see [`storestack::error`]): no retry, no breaker trip, no failover. A
//! TLS failure met by the driver's server monitor rather than by an
//! operation surfaces as a server selection timeout (`Unavailable`) whose
//! source says why.

use std::io;

use mongodb::error::{Error, ErrorKind as DriverKind, WriteFailure};
use storestack::{ErrorKind, Op, StoreError};

/// The name every error and [`Store::name`](storestack::Store::name) carry.
pub(crate) const STORE: &str = "mongodb";

/// `E11000`: a document with this `_id` exists.
pub(crate) const DUPLICATE_KEY: i32 = 11000;

/// Server error codes that mean "try again later": the server is shutting
/// down, stepping down, recovering, overloaded, or a write conflicted.
const TRANSIENT_CODES: &[i32] = &[
    6,     // HostUnreachable
    7,     // HostNotFound
    91,    // ShutdownInProgress
    112,   // WriteConflict
    134,   // ReadConcernMajorityNotAvailableYet
    189,   // PrimarySteppedDown
    9001,  // SocketException
    10107, // NotWritablePrimary
    11600, // InterruptedAtShutdown
    11602, // InterruptedDueToReplStateChange
    13435, // NotPrimaryNoSecondaryOk
    13436, // NotPrimaryOrSecondary
    462,   // IngressRequestRateLimitExceeded
];

/// Server error codes of a deadline that passed.
const TIMEOUT_CODES: &[i32] = &[
    50,  // MaxTimeMSExpired
    64,  // WriteConcernFailed (wtimeout)
    89,  // NetworkTimeout
    202, // NetworkInterfaceExceededTimeLimit
    262, // ExceededTimeLimit
];

/// Server error codes of refused credentials or rights.
const PERMISSION_CODES: &[i32] = &[
    11, // UserNotFound
    13, // Unauthorized
    18, // AuthenticationFailed
];

/// Server error codes of a deployment that does not match the store.
const MISCONFIGURED_CODES: &[i32] = &[
    59, // CommandNotFound
];

/// Server error codes of a document over the size limit.
const TOO_LARGE_CODES: &[i32] = &[
    10334, // BSONObjectTooLarge
    17419, // document too large after an update
    17420, // document too large for a capped collection
];

/// Whether `err` is a duplicate key error (what `create` turns into
/// `Ok(false)`).
pub(crate) fn is_duplicate_key(err: &Error) -> bool {
    server_code(err) == Some(DUPLICATE_KEY)
}

fn server_code(err: &Error) -> Option<i32> {
    match &*err.kind {
        DriverKind::Command(e) => Some(e.code),
        DriverKind::Write(WriteFailure::WriteError(e)) => Some(e.code),
        DriverKind::Write(WriteFailure::WriteConcernError(e)) => Some(e.code),
        _ => None,
    }
}

/// What a driver error means to a decorator, and a short message that
/// never includes a key (the driver's own message, which may quote a key,
/// stays in the source).
fn classify(err: &Error) -> (ErrorKind, &'static str) {
    match &*err.kind {
        DriverKind::ServerSelection { .. } => (ErrorKind::Unavailable, "no reachable server"),
        DriverKind::Io(e) if e.kind() == io::ErrorKind::TimedOut => {
            (ErrorKind::Timeout, "network timeout")
        }
        // The TLS layer reports a failed handshake (an untrusted
        // certificate, a peer that does not speak TLS) as `InvalidData`; a
        // plain socket never does.
        DriverKind::Io(e) if e.kind() == io::ErrorKind::InvalidData => {
            (ErrorKind::Misconfigured, "tls handshake failed")
        }
        DriverKind::InvalidTlsConfig { .. } => (ErrorKind::Misconfigured, "invalid tls settings"),
        DriverKind::IncompatibleServer { .. } => (
            ErrorKind::Misconfigured,
            "the server is too old for the driver",
        ),
        DriverKind::Io(_) | DriverKind::ConnectionPoolCleared { .. } | DriverKind::Shutdown => {
            (ErrorKind::Unavailable, "connection failed")
        }
        DriverKind::DnsResolve { .. } => (ErrorKind::Unavailable, "name resolution failed"),
        DriverKind::Authentication { .. } => (ErrorKind::PermissionDenied, "authentication failed"),
        DriverKind::BsonDeserialization(_) => (ErrorKind::Corrupt, "undecodable document"),
        DriverKind::InvalidResponse { .. } => (ErrorKind::Corrupt, "invalid server response"),
        DriverKind::BsonSerialization(_) => (ErrorKind::Internal, "document encoding failed"),
        DriverKind::InvalidArgument { .. } => (ErrorKind::InvalidInput, "invalid argument"),
        _ => match server_code(err) {
            Some(code) if TIMEOUT_CODES.contains(&code) => {
                (ErrorKind::Timeout, "server deadline passed")
            }
            Some(code) if TOO_LARGE_CODES.contains(&code) => {
                (ErrorKind::TooLarge, "document too large")
            }
            Some(code) if PERMISSION_CODES.contains(&code) => (
                ErrorKind::PermissionDenied,
                "the server refused the credentials or a right",
            ),
            Some(code) if MISCONFIGURED_CODES.contains(&code) => (
                ErrorKind::Misconfigured,
                "the server does not know a command this store sends",
            ),
            Some(code) if TRANSIENT_CODES.contains(&code) => {
                (ErrorKind::Unavailable, "server temporarily unavailable")
            }
            _ if err.contains_label(mongodb::error::RETRYABLE_WRITE_ERROR)
                || err.contains_label(mongodb::error::RETRYABLE_ERROR) =>
            {
                (ErrorKind::Unavailable, "server temporarily unavailable")
            }
            Some(_) => (ErrorKind::Internal, "server refused the operation"),
            None => (ErrorKind::Internal, "driver error"),
        },
    }
}

/// The [`StoreError`] of a failed driver call, with the driver error as its
/// source (except for a duplicate key error, whose message holds the key).
pub(crate) fn from_driver(op: Op, err: Error) -> StoreError {
    let (kind, message) = classify(&err);
    let store_err = StoreError::new(kind, op)
        .with_store(STORE)
        .with_message(message);
    // A duplicate key message quotes the key, a credential: keep it out of
    // the error chain.
    if is_duplicate_key(&err) {
        return store_err;
    }
    store_err.with_source(err)
}

/// A stored document that is not what this store writes.
pub(crate) fn corrupt(op: Op, message: &'static str) -> StoreError {
    StoreError::corrupt(op)
        .with_store(STORE)
        .with_message(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: io::ErrorKind) -> Error {
        Error::from(io::Error::from(kind))
    }

    #[test]
    fn network_errors_are_transient() {
        let refused = from_driver(Op::Get, io(io::ErrorKind::ConnectionRefused));
        assert_eq!(refused.kind(), ErrorKind::Unavailable);
        assert!(std::error::Error::source(&refused).is_some());
        let slow = from_driver(Op::Set, io(io::ErrorKind::TimedOut));
        assert_eq!(slow.kind(), ErrorKind::Timeout);
        assert_eq!(slow.store(), "mongodb");
    }

    #[test]
    fn decode_errors_are_corrupt() {
        let bad = mongodb::bson::from_slice::<mongodb::bson::Document>(b"\x05\x00\x00\x00\x01")
            .expect_err("malformed document");
        let err = from_driver(Op::Get, Error::from(bad));
        assert_eq!(err.kind(), ErrorKind::Corrupt);
    }

    fn command(code: i32, name: &str) -> Error {
        let reply = mongodb::bson::doc! { "ok": 0, "code": code, "codeName": name, "errmsg": "x" };
        let command: mongodb::error::CommandError =
            mongodb::bson::from_document(reply).expect("a command error");
        Error::from(DriverKind::Command(command))
    }

    #[test]
    fn a_broken_deployment_is_permanent() {
        for (err, kind) in [
            (command(13, "Unauthorized"), ErrorKind::PermissionDenied),
            (
                command(18, "AuthenticationFailed"),
                ErrorKind::PermissionDenied,
            ),
            (command(59, "CommandNotFound"), ErrorKind::Misconfigured),
            (io(io::ErrorKind::InvalidData), ErrorKind::Misconfigured),
        ] {
            let err = from_driver(Op::Get, err);
            assert_eq!(err.kind(), kind, "{err:?}");
            assert!(!err.is_transient() && err.needs_operator());
        }
        assert_eq!(
            from_driver(Op::Get, command(91, "ShutdownInProgress")).kind(),
            ErrorKind::Unavailable
        );
    }
}
