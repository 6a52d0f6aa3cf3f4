//! Stacking decorators: [`Layer`] and the fluent [`StoreExt`].
//!
//! A [`Layer`] turns a store into a decorated store; every decorator has
//! one (`NamespacedLayer`, …). [`StoreExt`] adds a fluent method per
//! decorator to every store, so stacks read top to bottom from the backend
//! outwards:
//!
//! ```
//! use storestack::{MemoryStore, Store, StoreExt};
//!
//! let store = MemoryStore::new().namespaced("sess:");
//! assert_eq!(store.name(), "namespaced(memory)");
//! ```
//!
//! # Order
//!
//! Each method wraps what came before, so the last call is the outermost
//! layer and sees a caller's request first. The order the design relies
//! on, from the backend outwards:
//!
//! 1. `timeout` (inside retry, so each attempt has its own deadline),
//! 2. `retry`,
//! 3. `circuit_breaker` (inside fallback, so an open breaker fails over
//!    in microseconds),
//! 4. `with_fallback` / migration,
//! 5. `encrypted` then `compressed`: Compressed is outside, so a write is
//!    compressed while it is still plaintext and then encrypted (encrypted
//!    bytes do not compress; see below),
//! 6. `cached` (caches plaintext, above encryption),
//! 7. `instrumented` (outermost: measures what callers see),
//! 8. `namespaced` anywhere above the backend.
//!
//! Any other order can be built with [`StoreExt::layer`].
//!
//! ## Compress before encrypt
//!
//! In the natural order a 20 KiB session is compressed, then sealed:
//!
//! ```
//! # #[cfg(all(feature = "zstd", feature = "encryption"))]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use storestack::{CompressedLayer, Key, MemoryStore, Record, Store, StoreExt};
//!
//! let backend = MemoryStore::new();
//! let store = backend
//!     .clone()
//!     .encrypted(Key::generate("k1")?)
//!     .compressed(CompressedLayer::zstd(3));
//! let session: String = (0..400).map(|i| format!(r#"{{"item":{i},"qty":1}},"#)).collect();
//! store.set("sess:1", Record::never_expiring(session.clone())).await?;
//!
//! let stored = backend.get("sess:1").await?.unwrap().value.len();
//! assert!(stored < session.len() / 5, "{stored} of {}", session.len());
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! Swapped, Compressed receives ciphertext, finds it does not shrink and
//! stores it raw: the backend holds the full size plus the envelope.
//!
//! ```
//! # #[cfg(all(feature = "zstd", feature = "encryption"))]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use storestack::{CompressedLayer, Key, MemoryStore, Record, Store, StoreExt};
//!
//! let backend = MemoryStore::new();
//! let store = backend
//!     .clone()
//!     .compressed(CompressedLayer::zstd(3))
//!     .encrypted(Key::generate("k1")?);
//! let session: String = (0..400).map(|i| format!(r#"{{"item":{i},"qty":1}},"#)).collect();
//! store.set("sess:1", Record::never_expiring(session.clone())).await?;
//!
//! let stored = backend.get("sess:1").await?.unwrap().value.len();
//! assert!(stored > session.len(), "{stored} of {}", session.len());
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use crate::layers::fallback::Fallback;
use crate::layers::instrumented::{InstrumentConfig, Instrumented};
use crate::layers::migration::Migration;
use crate::layers::namespaced::Namespaced;
use crate::store::Store;

/// Wraps a store in a decorator.
pub trait Layer<S> {
    /// The decorated store.
    type Store: Store;

    /// Wraps `inner`.
    fn layer(&self, inner: S) -> Self::Store;
}

/// The layer that does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

impl<S: Store> Layer<S> for Identity {
    type Store = S;

    fn layer(&self, inner: S) -> S {
        inner
    }
}

/// Two layers in sequence: `inner` is applied first, then `outer`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stack<Inner, Outer> {
    inner: Inner,
    outer: Outer,
}

impl<Inner, Outer> Stack<Inner, Outer> {
    /// `outer` around `inner`.
    pub fn new(inner: Inner, outer: Outer) -> Self {
        Stack { inner, outer }
    }
}

impl<S, Inner, Outer> Layer<S> for Stack<Inner, Outer>
where
    Inner: Layer<S>,
    Outer: Layer<Inner::Store>,
{
    type Store = Outer::Store;

    fn layer(&self, store: S) -> Self::Store {
        self.outer.layer(self.inner.layer(store))
    }
}

/// Fluent stacking for every [`Store`].
pub trait StoreExt: Store + Sized {
    /// Wraps `self` in `layer`.
    fn layer<L: Layer<Self>>(self, layer: L) -> L::Store {
        layer.layer(self)
    }

    /// Prefixes every key with `prefix` (see [`Namespaced`]).
    fn namespaced(self, prefix: impl Into<String>) -> Namespaced<Self> {
        Namespaced::new(self, prefix)
    }

    /// Fails every operation that outlives its deadline with `Timeout`
    /// (see [`Timeout`](crate::layers::timeout::Timeout)). Takes a
    /// `Duration` or a [`TimeoutConfig`](crate::layers::timeout::TimeoutConfig).
    fn timeout(
        self,
        deadlines: impl Into<crate::layers::timeout::TimeoutConfig>,
    ) -> crate::layers::timeout::Timeout<Self> {
        crate::layers::timeout::Timeout::new(self, deadlines)
    }

    /// Retries transient failures with exponential backoff (see
    /// [`Retry`](crate::layers::retry::Retry)).
    #[cfg(feature = "retry")]
    fn retry(self, config: crate::layers::retry::RetryConfig) -> crate::layers::retry::Retry<Self> {
        crate::layers::retry::Retry::new(self, config)
    }

    /// Fails fast while the store keeps failing (see
    /// [`CircuitBreaker`](crate::layers::circuit_breaker::CircuitBreaker)).
    #[cfg(feature = "circuit-breaker")]
    fn circuit_breaker(
        self,
        config: crate::layers::circuit_breaker::BreakerConfig,
    ) -> crate::layers::circuit_breaker::CircuitBreaker<Self> {
        crate::layers::circuit_breaker::CircuitBreaker::new(self, config)
    }

    /// Injects seeded, replayable faults (see
    /// [`FaultInjection`](crate::layers::fault::FaultInjection)).
    #[cfg(feature = "fault")]
    fn fault_injection(
        self,
        config: crate::layers::fault::FaultConfig,
    ) -> crate::layers::fault::FaultInjection<Self> {
        crate::layers::fault::FaultInjection::new(self, config)
    }

    /// Falls over to `secondary` when `self` (the primary) is unreachable,
    /// journaling and repairing what either side missed (see [`Fallback`];
    /// [`Fallback::with_config`] takes a configuration).
    fn with_fallback<S2: Store>(self, secondary: S2) -> Fallback<Self, S2> {
        Fallback::new(self, secondary)
    }

    /// Serves reads from a local cache in front of `self` (see
    /// [`Cached`](crate::layers::cached::Cached)).
    #[cfg(feature = "cache")]
    fn cached(
        self,
        config: crate::layers::cached::CacheConfig,
    ) -> crate::layers::cached::Cached<Self> {
        crate::layers::cached::Cached::new(self, config)
    }

    /// Traces and measures every operation under `config`'s name (see
    /// [`Instrumented`]).
    fn instrumented(self, config: impl Into<InstrumentConfig>) -> Instrumented<Self> {
        Instrumented::new(self, config)
    }

    /// Compresses values (see [`Compressed`](crate::Compressed)). Takes a
    /// [`CompressedLayer`](crate::CompressedLayer) or a
    /// [`Codec`](crate::Codec). Call it *after* `encrypted`, so values are
    /// compressed before they are encrypted (see [Order](self#order)).
    #[cfg(any(feature = "zstd", feature = "lz4", feature = "gzip"))]
    fn compressed(self, layer: impl Into<crate::CompressedLayer>) -> crate::Compressed<Self> {
        crate::Compressed::with_layer(self, layer.into())
    }

    /// Encrypts values (see [`Encrypted`](crate::Encrypted)). Takes an
    /// [`EncryptedLayer`](crate::EncryptedLayer) or a
    /// [`Keyring`](crate::Keyring) or a single [`Key`](crate::Key). Call it
    /// *before* `compressed` (see [Order](self#order)).
    #[cfg(feature = "encryption")]
    fn encrypted(self, layer: impl Into<crate::EncryptedLayer>) -> crate::Encrypted<Self> {
        crate::Encrypted::with_layer(self, layer.into())
    }

    /// Migrates from `self` (old) to `new`, starting in `OldOnly`; switch
    /// phases through [`Migration::handle`] (see [`Migration`]).
    fn migrating_to<N: Store>(self, new: N) -> Migration<Self, N> {
        Migration::new(self, new)
    }

    /// Typed access to serde values, JSON-encoded (see [`Typed`](crate::typed::Typed)).
    #[cfg(feature = "json")]
    fn typed<T>(self) -> crate::typed::Typed<Self, T, crate::typed::Json> {
        crate::typed::Typed::new(self)
    }

    /// Typed access with a chosen codec (see [`Typed`](crate::typed::Typed)).
    fn typed_with<T, C: crate::typed::Codec>(self) -> crate::typed::Typed<Self, T, C> {
        crate::typed::Typed::new(self)
    }

    /// Boxes the stack, erasing its type.
    fn boxed(self) -> crate::BoxStore {
        Box::new(self)
    }

    /// Puts the stack behind an `Arc`, erasing its type.
    fn shared(self) -> crate::SharedStore {
        std::sync::Arc::new(self)
    }
}

impl<S: Store> StoreExt for S {}
