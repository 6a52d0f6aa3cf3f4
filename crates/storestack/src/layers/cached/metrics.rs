//! The cache's metric handles, registered once when it is built; names
//! and labels come from [`observe`](crate::observe).

#[cfg(feature = "metrics")]
mod imp {
    use crate::observe::{self, label, scope};
    use metrics::{Counter, SharedString};

    pub(crate) struct CacheMetrics {
        pub(crate) hits: Counter,
        pub(crate) misses: Counter,
        pub(crate) stale_served: Counter,
        pub(crate) invalidated_key: Counter,
        pub(crate) invalidated_all: Counter,
        pub(crate) publish_failures: Counter,
    }

    impl CacheMetrics {
        pub(crate) fn new(store: &str) -> Self {
            let store = SharedString::from(store.to_owned());
            let s = || store.clone();
            CacheMetrics {
                hits: metrics::counter!(observe::CACHE_HITS_TOTAL, label::STORE => s()),
                misses: metrics::counter!(observe::CACHE_MISSES_TOTAL, label::STORE => s()),
                stale_served: metrics::counter!(observe::CACHE_STALE_SERVED_TOTAL, label::STORE => s()),
                invalidated_key: metrics::counter!(observe::CACHE_INVALIDATIONS_TOTAL,
                    label::STORE => s(), label::SCOPE => scope::KEY),
                invalidated_all: metrics::counter!(observe::CACHE_INVALIDATIONS_TOTAL,
                    label::STORE => s(), label::SCOPE => scope::ALL),
                publish_failures: metrics::counter!(observe::CACHE_PUBLISH_FAILURES_TOTAL,
                    label::STORE => s()),
            }
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod imp {
    /// Stands in for a `metrics::Counter` when the feature is off.
    pub(crate) struct Noop;

    impl Noop {
        #[inline]
        pub(crate) fn increment(&self, _: u64) {}
    }

    pub(crate) struct CacheMetrics {
        pub(crate) hits: Noop,
        pub(crate) misses: Noop,
        pub(crate) stale_served: Noop,
        pub(crate) invalidated_key: Noop,
        pub(crate) invalidated_all: Noop,
        pub(crate) publish_failures: Noop,
    }

    impl CacheMetrics {
        pub(crate) fn new(_store: &str) -> Self {
            CacheMetrics {
                hits: Noop,
                misses: Noop,
                stale_served: Noop,
                invalidated_key: Noop,
                invalidated_all: Noop,
                publish_failures: Noop,
            }
        }
    }
}

pub(crate) use imp::CacheMetrics;
