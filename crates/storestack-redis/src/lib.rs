#![doc = include_str!("docs.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod config;
mod connect;
pub mod error;
#[cfg(feature = "invalidator")]
mod invalidator;
mod scan;
mod store;

pub use config::{RedisConfig, Topology, DEFAULT_KEY_PREFIX};
#[cfg(feature = "invalidator")]
pub use invalidator::{RedisInvalidator, DEFAULT_CHANNEL_SUFFIX};
pub use store::RedisStore;

/// Re-exported: [`RedisStore::pool`] hands out a fred `Pool`.
pub use fred;
