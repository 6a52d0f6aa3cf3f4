//! Runnable examples of storestack: see `examples/*.rs`.
//!
//! The library holds what an example and the tests share: the session
//! server of `examples/session_server.rs` ([`session_server`]), which the
//! end-to-end test (`tests/session_server.rs`) starts in-process, and its
//! actix-web twin of `examples/actix_server.rs` ([`actix_server`],
//! `tests/actix_server.rs`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

pub mod actix_server;
pub mod session_server;
