//! # storestack-session-core
//!
//! What the storestack session adapters share, whatever the web framework:
//! `storestack-sessions` (tower-sessions, for axum) and `storestack-actix`
//! (actix-session) both build on it.
//!
//! * [`codec`]: the stored form of a session (MessagePack map, absolute
//!   expiry), decode failures and unreadable (`Corrupt`) records as *no
//!   session*, logged with a keyed hash of the ID, never the ID; time
//!   conversions; error chains rendered for frameworks that keep strings.
//! * [`degrade`]: graceful degradation. [`Degraded`] wraps a session
//!   stack and, inside a request's [`degrade::scoped`] block, rides out a
//!   store outage with a bounded temporary session; the adapters' layers
//!   mark such responses `X-Session-Degraded: true`.
//!
//! The rules both adapters keep:
//!
//! * a new session is created with `create` (insert only if absent): an ID
//!   collision draws a fresh ID and never overwrites another user's
//!   session;
//! * the session's expiry is the record's **absolute** expiry, so a copy
//!   made by a fallback repair or a migration keeps its remaining life;
//! * a value that fails to decode or to authenticate is no session (the
//!   user gets a fresh one), while an outage (`Unavailable`, `Timeout`,
//!   `CircuitOpen`) is an error, or a degraded request under
//!   [`Degraded`]: an outage must never silently log anyone out.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

pub mod codec;
pub mod degrade;

pub use degrade::{DegradeConfig, DegradeLayer, Degraded};
