use super::{Retry, RetryConfig};
use crate::layer::Layer;
use crate::store::Store;

/// Builds [`Retry`] stores: holds the configuration.
#[derive(Debug, Clone, Default)]
pub struct RetryLayer {
    config: RetryConfig,
}

impl RetryLayer {
    /// A layer retrying as `config` says.
    pub fn new(config: RetryConfig) -> Self {
        RetryLayer { config }
    }
}

impl<S: Store> Layer<S> for RetryLayer {
    type Store = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry::new(inner, self.config.clone())
    }
}
