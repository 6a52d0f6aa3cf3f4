//! Runnable examples of storestack: see `examples/*.rs`.
