//! Shared helpers of the integration tests.
#![allow(missing_docs)]

#[path = "support/mongo.rs"]
pub mod mongo;
