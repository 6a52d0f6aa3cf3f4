//! Shared helpers of the integration tests.
#![allow(missing_docs)]
