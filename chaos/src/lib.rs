//! # storestack-chaos
//!
//! Runs named scenarios against a store stack, injects faults, records
//! every operation and checks invariants.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

pub mod error;
pub mod checker;
pub mod history;
pub mod invariants;
pub mod process;
pub mod proxy;
pub mod scenario;
pub mod seed;
pub mod switch;
pub mod workload;

pub use error::{ChaosError, Result};
