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
//! 5. `compressed` then `encrypted` (encrypted bytes do not compress, so
//!    compression must see the plaintext first),
//! 6. `cached` (caches plaintext, above encryption),
//! 7. `instrumented` (outermost: measures what callers see),
//! 8. `namespaced` anywhere above the backend.
//!
//! Any other order can be built with [`StoreExt::layer`].

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
