//! Key, value and expiry rules: the one place they live.
//!
//! Every backend calls these checks before talking to its server, and every
//! decorator that rewrites keys (Namespaced) checks the caller's key first,
//! so a bad input is refused the same way everywhere: with a
//! [`StoreError`] of kind `InvalidInput` or `TooLarge`, never a panic.
//!
//! | rule | limit | error |
//! |---|---|---|
//! | key is empty | — | `InvalidInput` |
//! | key length | [`MAX_KEY_LEN`] bytes (UTF-8) | `InvalidInput` |
//! | key contains a control character (`\0`, `\n`, …) | — | `InvalidInput` |
//! | value length | [`Limits::max_value_len`], default [`DEFAULT_MAX_VALUE_LEN`] | `TooLarge` |
//! | expiry before 1970 or after [`max_expiry`] (year 9999) | — | `InvalidInput` |

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{ErrorKind, Op, Result, StoreError};
use crate::store::Record;

/// The longest key, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// The default largest value, in bytes (8 MiB).
pub const DEFAULT_MAX_VALUE_LEN: usize = 8 * 1024 * 1024;

/// The latest representable expiry, in seconds since the Unix epoch:
/// 9999-12-31T23:59:59Z.
pub const MAX_EXPIRY_SECS: u64 = 253_402_300_799;

/// The latest representable expiry as a [`SystemTime`].
pub fn max_expiry() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(MAX_EXPIRY_SECS)
}

/// Checks a key against the rules above.
///
/// ```
/// use storestack::{limits, ErrorKind, Op};
///
/// assert!(limits::check_key(Op::Get, "sess:0f3a").is_ok());
/// assert!(limits::check_key(Op::Get, "ünïcødé-🔑").is_ok());
/// let err = limits::check_key(Op::Get, "").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidInput);
/// let err = limits::check_key(Op::Set, &"k".repeat(limits::MAX_KEY_LEN + 1)).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidInput);
/// ```
pub fn check_key(op: Op, key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(StoreError::invalid_input(op).with_message("key is empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(StoreError::invalid_input(op).with_message(format!(
            "key is {} bytes, longer than the maximum of {MAX_KEY_LEN}",
            key.len()
        )));
    }
    if key.chars().any(char::is_control) {
        return Err(StoreError::invalid_input(op).with_message("key contains a control character"));
    }
    Ok(())
}

/// Checks that an expiry is representable by every backend.
pub fn check_expiry(op: Op, expires_at: Option<SystemTime>) -> Result<()> {
    match expires_at {
        Some(at) if at < UNIX_EPOCH => {
            Err(StoreError::invalid_input(op).with_message("expiry is before 1970-01-01"))
        }
        Some(at) if at > max_expiry() => {
            Err(StoreError::invalid_input(op).with_message("expiry is after 9999-12-31"))
        }
        _ => Ok(()),
    }
}

/// Milliseconds since the Unix epoch of a checked expiry (what Redis and
/// MongoDB store).
pub fn unix_millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}

/// Per-store size limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest value accepted, in bytes.
    pub max_value_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_value_len: DEFAULT_MAX_VALUE_LEN,
        }
    }
}

impl Limits {
    /// Sets the largest value accepted, in bytes.
    pub fn max_value_len(mut self, bytes: usize) -> Self {
        self.max_value_len = bytes;
        self
    }

    /// Checks a value length.
    pub fn check_value(&self, op: Op, len: usize) -> Result<()> {
        if len > self.max_value_len {
            return Err(
                StoreError::new(ErrorKind::TooLarge, op).with_message(format!(
                    "value is {len} bytes, larger than the maximum of {}",
                    self.max_value_len
                )),
            );
        }
        Ok(())
    }

    /// Checks the key, value and expiry of a write.
    pub fn check_write(&self, op: Op, key: &str, record: &Record) -> Result<()> {
        check_key(op, key)?;
        self.check_value(op, record.value.len())?;
        check_expiry(op, record.expires_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_rejected() {
        for bad in ["a\0b", "line\nbreak", "tab\there", "\u{7f}"] {
            let err = check_key(Op::Set, bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn max_key_len_is_inclusive() {
        assert!(check_key(Op::Set, &"k".repeat(MAX_KEY_LEN)).is_ok());
    }

    #[test]
    fn value_and_expiry_limits() {
        let limits = Limits::default().max_value_len(4);
        assert!(limits.check_value(Op::Set, 4).is_ok());
        assert_eq!(
            limits.check_value(Op::Set, 5).unwrap_err().kind(),
            ErrorKind::TooLarge
        );
        let before_epoch = UNIX_EPOCH - Duration::from_secs(1);
        assert!(check_expiry(Op::Set, Some(before_epoch)).is_err());
        assert!(check_expiry(Op::Set, Some(max_expiry())).is_ok());
        assert!(check_expiry(Op::Set, Some(max_expiry() + Duration::from_secs(1))).is_err());
        assert_eq!(unix_millis(UNIX_EPOCH + Duration::from_millis(1234)), 1234);
    }
}
