use super::{BreakerConfig, CircuitBreaker};
use crate::layer::Layer;
use crate::store::Store;

/// Builds [`CircuitBreaker`] stores: holds the configuration. Each store
/// it builds gets a breaker of its own.
#[derive(Debug, Clone, Default)]
pub struct CircuitBreakerLayer {
    config: BreakerConfig,
}

impl CircuitBreakerLayer {
    /// A layer with this configuration.
    pub fn new(config: BreakerConfig) -> Self {
        CircuitBreakerLayer { config }
    }
}

impl<S: Store> Layer<S> for CircuitBreakerLayer {
    type Store = CircuitBreaker<S>;

    fn layer(&self, inner: S) -> CircuitBreaker<S> {
        CircuitBreaker::new(inner, self.config.clone())
    }
}
