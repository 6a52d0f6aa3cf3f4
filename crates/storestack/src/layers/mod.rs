//! The decorators: each implements [`Store`](crate::Store) around another
//! store, lives in its own module with a `*Layer` and a wrapper type, and
//! documents `# Default`, `# Ordering` and `# Examples`.

#[cfg(any(feature = "zstd", feature = "lz4", feature = "gzip"))]
pub mod compressed;
#[cfg(feature = "encryption")]
pub mod encrypted;
pub mod namespaced;
