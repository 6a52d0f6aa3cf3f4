use super::{Timeout, TimeoutConfig};
use crate::layer::Layer;
use crate::store::Store;

/// Builds [`Timeout`] stores: holds the deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeoutLayer {
    config: TimeoutConfig,
}

impl TimeoutLayer {
    /// A layer with these deadlines (a [`Duration`](std::time::Duration)
    /// for the same deadline on every operation).
    pub fn new(config: impl Into<TimeoutConfig>) -> Self {
        TimeoutLayer {
            config: config.into(),
        }
    }
}

impl<S: Store> Layer<S> for TimeoutLayer {
    type Store = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout::new(inner, self.config)
    }
}
