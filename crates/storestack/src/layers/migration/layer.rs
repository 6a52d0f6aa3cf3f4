use super::{Migration, MigrationHandle};
use crate::layer::Layer;
use crate::store::Store;

/// Builds [`Migration`]s from the store it wraps (old) to a clone of the
/// new store it holds, all switched by one [`MigrationHandle`].
///
/// ```
/// use storestack::layers::migration::{MigrationHandle, MigrationLayer, Phase};
/// use storestack::{MemoryStore, Store, StoreExt};
///
/// let handle = MigrationHandle::new(Phase::OldOnly);
/// let store = MemoryStore::new().layer(MigrationLayer::new(MemoryStore::new()).handle(handle.clone()));
/// assert_eq!(store.name(), "migration(memory, memory)");
/// handle.set(Phase::write_both(5)).unwrap();
/// assert_eq!(store.handle().phase(), Phase::write_both(5));
/// ```
#[derive(Debug, Clone)]
pub struct MigrationLayer<N> {
    new: N,
    handle: MigrationHandle,
    copy_on_read: bool,
}

impl<N> MigrationLayer<N> {
    /// A layer migrating to `new`, starting in `OldOnly` with its own handle.
    pub fn new(new: N) -> Self {
        MigrationLayer {
            new,
            handle: MigrationHandle::default(),
            copy_on_read: true,
        }
    }

    /// Uses `handle` for every migration this layer builds.
    pub fn handle(mut self, handle: MigrationHandle) -> Self {
        self.handle = handle;
        self
    }

    /// See [`Migration::copy_on_read`].
    pub fn copy_on_read(mut self, on: bool) -> Self {
        self.copy_on_read = on;
        self
    }
}

impl<O: Store, N: Store + Clone> Layer<O> for MigrationLayer<N> {
    type Store = Migration<O, N>;

    fn layer(&self, old: O) -> Migration<O, N> {
        Migration::new(old, self.new.clone())
            .with_handle(self.handle.clone())
            .copy_on_read(self.copy_on_read)
    }
}
