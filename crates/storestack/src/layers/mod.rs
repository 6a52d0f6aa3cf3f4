//! The decorators: each implements [`Store`](crate::Store) around another
//! store, lives in its own module with a `*Layer` and a wrapper type, and
//! documents `# Default`, `# Ordering` and `# Examples`.

#[cfg(feature = "cache")]
pub mod cached;
#[cfg(feature = "circuit-breaker")]
pub mod circuit_breaker;
#[cfg(any(feature = "zstd", feature = "lz4", feature = "gzip"))]
pub mod compressed;
#[cfg(feature = "encryption")]
pub mod encrypted;
pub mod fallback;
#[cfg(feature = "fault")]
pub mod fault;
pub mod instrumented;
pub mod migration;
pub mod namespaced;
#[cfg(feature = "retry")]
pub mod retry;
pub mod timeout;

#[cfg(test)]
pub(crate) mod testing;
