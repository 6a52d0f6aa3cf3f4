//! Shared helpers of the integration tests.
#![allow(missing_docs)]

// The crate root sits in `tests/`, beside the test files: keep helper
// modules in `tests/support/`.
#[path = "support/mongo.rs"]
pub mod mongo;
#[path = "support/redis.rs"]
pub mod redis;

/// The password the tests of permanent errors provision.
pub const PASSWORD: &str = "c0rrect-h0rse-battery";
/// A wrong one, distinctive enough to grep for in an error.
pub const WRONG_PASSWORD: &str = "WR0NG-PASSWORD-1234";

/// A store error, its `Debug` and its whole source chain as one string: what
/// a log line or an error page could show of it.
pub fn error_chain(err: &storestack::StoreError) -> String {
    let mut out = format!("{err} {err:?}");
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        out.push_str(&format!(" | {s} {s:?}"));
        source = s.source();
    }
    out
}
