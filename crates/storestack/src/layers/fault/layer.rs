use super::{FaultConfig, FaultHandle, FaultInjection};
use crate::layer::Layer;
use crate::store::Store;

/// Builds [`FaultInjection`] stores. Every store it builds shares its one
/// [`FaultHandle`]: the same switches, counters and operation sequence.
#[derive(Debug, Clone)]
pub struct FaultInjectionLayer {
    handle: FaultHandle,
}

impl FaultInjectionLayer {
    /// A layer with faults as `config` says (prints the seed).
    pub fn new(config: FaultConfig) -> Self {
        Self::with_handle(FaultHandle::new(config))
    }

    /// A layer whose faults `handle` controls.
    pub fn with_handle(handle: FaultHandle) -> Self {
        FaultInjectionLayer { handle }
    }

    /// The handle controlling the faults.
    pub fn handle(&self) -> FaultHandle {
        self.handle.clone()
    }
}

impl<S: Store> Layer<S> for FaultInjectionLayer {
    type Store = FaultInjection<S>;

    fn layer(&self, inner: S) -> FaultInjection<S> {
        FaultInjection::with_handle(inner, self.handle.clone())
    }
}
