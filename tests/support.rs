//! Shared helpers of the integration tests.
#![allow(missing_docs)]

// The crate root sits in `tests/`, beside the test files: keep helper
// modules in `tests/support/`.
#[path = "support/mongo.rs"]
pub mod mongo;
#[path = "support/redis.rs"]
pub mod redis;
