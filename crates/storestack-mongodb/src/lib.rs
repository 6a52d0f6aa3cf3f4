#![doc = include_str!("docs.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod config;
mod connect;
mod document;
mod error;
mod scan;
mod store;

pub use config::{
    MongoConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_OPERATION_TIMEOUT,
    DEFAULT_SERVER_SELECTION_TIMEOUT, MAX_VALUE_LEN,
};
pub use connect::TTL_INDEX_NAME;
pub use document::{EXPIRES_FIELD, VALUE_FIELD};
pub use store::MongoStore;

/// The driver, re-exported so that users name the same version.
pub use mongodb;
