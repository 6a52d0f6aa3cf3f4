use super::Namespaced;
use crate::layer::Layer;
use crate::store::Store;

/// Builds [`Namespaced`] stores: holds the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespacedLayer {
    prefix: String,
}

impl NamespacedLayer {
    /// A layer prefixing every key with `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        NamespacedLayer {
            prefix: prefix.into(),
        }
    }
}

impl<S: Store> Layer<S> for NamespacedLayer {
    type Store = Namespaced<S>;

    fn layer(&self, inner: S) -> Namespaced<S> {
        Namespaced::new(inner, self.prefix.clone())
    }
}
