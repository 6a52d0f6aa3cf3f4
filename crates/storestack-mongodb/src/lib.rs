#![doc = include_str!("docs.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod config;
mod error;
mod scan;
mod store;

pub use config::{
    MongoConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_OPERATION_TIMEOUT,
    DEFAULT_SERVER_SELECTION_TIMEOUT, MAX_VALUE_LEN,
};
pub use store::{MongoStore, EXPIRES_FIELD, TTL_INDEX_NAME, VALUE_FIELD};

/// The driver, re-exported so that users name the same version.
pub use mongodb;
