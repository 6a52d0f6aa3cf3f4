use super::{InstrumentConfig, Instrumented};
use crate::layer::Layer;
use crate::store::Store;

/// Builds [`Instrumented`] stores: holds the configuration.
#[derive(Debug, Clone)]
pub struct InstrumentedLayer {
    config: InstrumentConfig,
}

impl InstrumentedLayer {
    /// A layer instrumenting stores with `config` (or just a name).
    pub fn new(config: impl Into<InstrumentConfig>) -> Self {
        InstrumentedLayer {
            config: config.into(),
        }
    }
}

impl<S: Store> Layer<S> for InstrumentedLayer {
    type Store = Instrumented<S>;

    fn layer(&self, inner: S) -> Instrumented<S> {
        Instrumented::new(inner, self.config.clone())
    }
}
