use super::{CacheConfig, Cached};
use crate::layer::Layer;
use crate::store::Store;

/// Builds [`Cached`] stores: holds the configuration. Each store it builds
/// has its own cache.
#[derive(Debug, Clone, Default)]
pub struct CachedLayer {
    config: CacheConfig,
}

impl CachedLayer {
    /// A layer caching with `config`.
    pub fn new(config: CacheConfig) -> Self {
        CachedLayer { config }
    }
}

impl<S: Store> Layer<S> for CachedLayer {
    type Store = Cached<S>;

    fn layer(&self, inner: S) -> Cached<S> {
        Cached::new(inner, self.config.clone())
    }
}
