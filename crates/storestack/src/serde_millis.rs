//! Durations as whole milliseconds in serde, for backend configurations
//! (fields named `…_ms`): `#[serde(with = "storestack::serde_millis")]` on
//! a `Duration`, `#[serde(with = "storestack::serde_millis::opt")]` on an
//! `Option<Duration>` (null for `None`). Longer than `u64::MAX` ms saturates.
//!
//! ```
//! use std::time::Duration;
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Config {
//!     #[serde(rename = "timeout_ms", with = "storestack::serde_millis")]
//!     timeout: Duration,
//!     #[serde(rename = "every_ms", with = "storestack::serde_millis::opt")]
//!     every: Option<Duration>,
//! }
//!
//! let c: Config = serde_json::from_str(r#"{ "timeout_ms": 250, "every_ms": null }"#).unwrap();
//! assert_eq!(c.timeout, Duration::from_millis(250));
//! assert_eq!(c.every, None);
//! ```

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

fn millis(d: &Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Serializes a `Duration` as whole milliseconds.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(millis(d))
}

/// Deserializes whole milliseconds as a `Duration`.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

/// `Option<Duration>` as whole milliseconds or null.
pub mod opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes `Some(d)` as whole milliseconds, `None` as null.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&super::millis(d)),
            None => s.serialize_none(),
        }
    }

    /// Deserializes whole milliseconds or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|ms| ms.map(Duration::from_millis))
    }
}
