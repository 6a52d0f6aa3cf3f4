//! # storestack
//!
//! Fault-tolerant composite key-value stores, born from web session storage.
//!
//! One small async [`Store`] trait; backends implement it ([`MemoryStore`]
//! here, Redis and MongoDB in their own crates); decorators implement it
//! around another `Store`, so stacks are built like tower middleware with
//! [`StoreExt`]. The contract every store keeps is on [`Store`]; the rules
//! for keys and values are in [`limits`]; errors are [`StoreError`]s with an
//! [`ErrorKind`].
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use storestack::{Expiry, MemoryStore, Record, Store, StoreExt};
//!
//! let store = MemoryStore::new().namespaced("sess:");
//! store.set("abc", Record::new("payload", Expiry::after(Duration::from_secs(3600)))).await?;
//! assert!(!store.create("abc", Record::new("other", Expiry::Never)).await?);
//! assert_eq!(store.get("abc").await?.unwrap().value, "payload");
//! # Ok::<_, storestack::StoreError>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

pub mod clock;
pub mod error;
pub mod layer;
pub mod layers;
pub mod limits;
pub mod memory;
pub mod observe;
pub mod redact;
pub mod serde_millis;
pub mod store;
pub mod typed;

pub use error::{ErrorKind, Op, Result, StoreError};
pub use layer::{Identity, Layer, Stack, StoreExt};
#[cfg(feature = "cache")]
pub use layers::cached::{
    CacheConfig, Cached, CachedLayer, Invalidator, LocalInvalidator, Notice, Subscriber,
};
#[cfg(feature = "circuit-breaker")]
pub use layers::circuit_breaker::{
    BreakerConfig, BreakerHandle, BreakerState, CircuitBreaker, CircuitBreakerLayer,
};
#[cfg(any(feature = "zstd", feature = "lz4", feature = "gzip"))]
pub use layers::compressed::{Codec, Compressed, CompressedLayer};
#[cfg(feature = "encryption")]
pub use layers::encrypted::{Algorithm, Encrypted, EncryptedLayer, Key, KeyError, Keyring};
pub use layers::fallback::{Fallback, FallbackConfig, FallbackHandle, FallbackLayer};
#[cfg(feature = "fault")]
pub use layers::fault::{FaultConfig, FaultHandle, FaultInjection, FaultInjectionLayer};
pub use layers::instrumented::{InstrumentConfig, Instrumented, InstrumentedLayer};
pub use layers::migration::{Migration, MigrationHandle, MigrationLayer, Phase};
pub use layers::namespaced::{Namespaced, NamespacedLayer};
#[cfg(feature = "retry")]
pub use layers::retry::{Retry, RetryConfig, RetryLayer};
pub use layers::timeout::{Timeout, TimeoutConfig, TimeoutLayer};
pub use memory::{MemoryConfig, MemoryStats, MemoryStore};
pub use store::{
    BoxStore, Condition, Expiry, Record, ScanCursor, ScanPage, SharedStore, Store, Version,
    Versioned,
};

/// Re-exported so that users implementing [`Store`] use the same version.
pub use async_trait::async_trait;
/// Re-exported: record values are [`Bytes`](bytes::Bytes).
pub use bytes;
