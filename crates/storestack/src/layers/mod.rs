//! The decorators: each implements [`Store`](crate::Store) around another
//! store, lives in its own module with a `*Layer` and a wrapper type, and
//! documents `# Default`, `# Ordering` and `# Examples`.

pub mod migration;
pub mod namespaced;
