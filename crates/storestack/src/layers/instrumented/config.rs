use std::time::Duration;

/// Configuration of an [`Instrumented`](super::Instrumented) store.
///
/// ```
/// use std::time::Duration;
/// use storestack::layers::instrumented::InstrumentConfig;
///
/// let config = InstrumentConfig::new("sessions").slow_threshold(Some(Duration::from_millis(20)));
/// assert_eq!(config.name, "sessions");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstrumentConfig {
    /// The `store` label of metrics and the `store` field of spans.
    pub name: String,
    /// Operations at least this slow log a warning and count in
    /// `storestack_slow_operations_total`; `None` disables the warning.
    /// Default 100 ms.
    pub slow_threshold: Option<Duration>,
}

/// The default slow-operation threshold.
pub const DEFAULT_SLOW_THRESHOLD: Duration = Duration::from_millis(100);

impl InstrumentConfig {
    /// A configuration with the given store name and the defaults.
    pub fn new(name: impl Into<String>) -> Self {
        InstrumentConfig {
            name: name.into(),
            slow_threshold: Some(DEFAULT_SLOW_THRESHOLD),
        }
    }

    /// Sets the slow-operation threshold; `None` disables it.
    pub fn slow_threshold(mut self, threshold: Option<Duration>) -> Self {
        self.slow_threshold = threshold;
        self
    }
}

impl From<&str> for InstrumentConfig {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

impl From<String> for InstrumentConfig {
    fn from(name: String) -> Self {
        Self::new(name)
    }
}
