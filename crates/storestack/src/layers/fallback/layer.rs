use super::{Fallback, FallbackConfig};
use crate::layer::Layer;
use crate::store::Store;

/// Builds [`Fallback`] stores around a primary: holds the secondary (cloned
/// for every store built, so it is typically a cheap handle such as
/// [`MemoryStore`](crate::MemoryStore) or an `Arc`) and the configuration.
#[derive(Debug, Clone)]
pub struct FallbackLayer<S> {
    secondary: S,
    config: FallbackConfig,
}

impl<S> FallbackLayer<S> {
    /// A layer falling over to `secondary`, with the default configuration.
    pub fn new(secondary: S) -> Self {
        FallbackLayer {
            secondary,
            config: FallbackConfig::default(),
        }
    }

    /// Sets the configuration.
    pub fn config(mut self, config: FallbackConfig) -> Self {
        self.config = config;
        self
    }
}

impl<P: Store, S: Store + Clone> Layer<P> for FallbackLayer<S> {
    type Store = Fallback<P, S>;

    fn layer(&self, primary: P) -> Fallback<P, S> {
        Fallback::with_config(primary, self.secondary.clone(), self.config.clone())
    }
}
