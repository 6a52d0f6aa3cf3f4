//! Keys are session IDs, i.e. credentials: nothing in storestack logs or
//! labels a raw key. [`KeyHash`] is what goes into logs instead: a short
//! SipHash-1-3 of the key under a random per-process secret, so the same key
//! shows the same tag within a process (log lines correlate) while the tag
//! reveals nothing and cannot be precomputed from a list of IDs.
//!
//! ```
//! use storestack::redact::KeyHash;
//!
//! let tag = KeyHash::of("sess:0123456789abcdef").to_string();
//! assert_eq!(tag.len(), 12);
//! assert!(!tag.contains("sess"));
//! assert_eq!(tag, KeyHash::of("sess:0123456789abcdef").to_string());
//! ```

use std::fmt;
use std::hash::Hasher;
use std::sync::OnceLock;

use siphasher::sip::SipHasher13;

fn secret() -> &'static (u64, u64) {
    static SECRET: OnceLock<(u64, u64)> = OnceLock::new();
    SECRET.get_or_init(|| (rand::random(), rand::random()))
}

/// A short keyed hash of a key, safe to log. Displays as 12 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(u64);

impl KeyHash {
    /// The tag of `key` under this process's secret.
    pub fn of(key: &str) -> Self {
        let (k0, k1) = *secret();
        let mut h = SipHasher13::new_with_keys(k0, k1);
        h.write(key.as_bytes());
        KeyHash(h.finish() >> 16)
    }
}

impl fmt::Display for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:012x}", self.0)
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({self})")
    }
}
