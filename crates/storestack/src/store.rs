//! The [`Store`] trait and the types it speaks: [`Record`], [`Expiry`],
//! [`ScanCursor`], [`ScanPage`], and for conditional writes [`Version`],
//! [`Versioned`] and [`Condition`].

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Result;

/// A value and its absolute expiry.
///
/// Expiry is absolute so that copying a record from one store to another
/// (fallback repair, migration) keeps its remaining lifetime.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// The stored bytes.
    pub value: Bytes,
    /// When the record stops existing; `None` means never.
    pub expires_at: Option<SystemTime>,
}

impl Record {
    /// A record with the given expiry, resolved against the system clock.
    ///
    /// ```
    /// use std::time::Duration;
    /// use storestack::{Expiry, Record};
    ///
    /// let r = Record::new("hello", Expiry::after(Duration::from_secs(60)));
    /// assert!(r.expires_at.is_some());
    /// let forever = Record::new("hello", Expiry::Never);
    /// assert_eq!(forever.expires_at, None);
    /// ```
    pub fn new(value: impl Into<Bytes>, expiry: Expiry) -> Self {
        Record {
            value: value.into(),
            expires_at: expiry.resolve(SystemTime::now()),
        }
    }

    /// A record that expires `ttl` from now (system clock).
    pub fn expiring_after(value: impl Into<Bytes>, ttl: Duration) -> Self {
        Self::new(value, Expiry::After(ttl))
    }

    /// A record that expires at `at`.
    pub fn expiring_at(value: impl Into<Bytes>, at: SystemTime) -> Self {
        Record {
            value: value.into(),
            expires_at: Some(at),
        }
    }

    /// A record that never expires.
    pub fn never_expiring(value: impl Into<Bytes>) -> Self {
        Record {
            value: value.into(),
            expires_at: None,
        }
    }

    /// Whether the record is expired at `now` (an expiry equal to `now`
    /// counts as expired).
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        is_expired(self.expires_at, now)
    }

    /// The lifetime left at `now`: `None` for a record that never expires,
    /// `Some(ZERO)` for an expired one.
    pub fn remaining_at(&self, now: SystemTime) -> Option<Duration> {
        self.expires_at
            .map(|at| at.duration_since(now).unwrap_or(Duration::ZERO))
    }
}

/// Whether an expiry of `expires_at` has passed at `now`.
pub fn is_expired(expires_at: Option<SystemTime>, now: SystemTime) -> bool {
    matches!(expires_at, Some(at) if at <= now)
}

/// The smallest string greater than every string that starts with
/// `prefix`, or `None` if there is none (empty prefix, or a prefix of only
/// `U+10FFFF`s): `prefix` with its last character replaced by the next
/// code point, after dropping trailing `U+10FFFF`s.
///
/// Byte order of UTF-8 is code point order, so in any store that compares
/// keys byte by byte (MongoDB's `_id`, SQL with a binary collation) the
/// keys starting with `prefix` are exactly those in
/// `[prefix, successor)`: a range an index serves, with nothing to escape.
///
/// ```
/// use storestack::store::prefix_successor;
///
/// assert_eq!(prefix_successor("sess:").as_deref(), Some("sess;"));
/// assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
/// assert_eq!(prefix_successor(""), None);
/// ```
pub fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            char::MAX => None,
            c => char::from_u32(c as u32 + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl fmt::Debug for Record {
    // The value may be a credential-bearing session: show only its length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("value_len", &self.value.len())
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// When a record expires, as callers like to say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// The record never expires.
    Never,
    /// The record expires at this instant.
    At(SystemTime),
    /// The record expires this long after it is created.
    After(Duration),
}

impl Expiry {
    /// Expires `ttl` after creation.
    pub const fn after(ttl: Duration) -> Self {
        Expiry::After(ttl)
    }

    /// Expires at `at`.
    pub const fn at(at: SystemTime) -> Self {
        Expiry::At(at)
    }

    /// The absolute expiry this means at `now`.
    pub fn resolve(self, now: SystemTime) -> Option<SystemTime> {
        match self {
            Expiry::Never => None,
            Expiry::At(at) => Some(at),
            Expiry::After(ttl) => Some(now.checked_add(ttl).unwrap_or(crate::limits::max_expiry())),
        }
    }
}

impl From<Option<SystemTime>> for Expiry {
    fn from(at: Option<SystemTime>) -> Self {
        at.map_or(Expiry::Never, Expiry::At)
    }
}

/// Which record a [`Store::get_versioned`] read, as a token that
/// [`Store::set_if`] can compare with what is stored when it writes.
///
/// A version is the stored bytes themselves (a cheap [`Bytes`] clone of
/// what the read returned), not a counter kept beside the value:
///
/// * nothing else is stored, so every backend and every value already
///   written (by an older storestack, or by Node's connect-redis /
///   connect-mongo next to a Rust service) has a version, with no schema
///   change and no migration;
/// * the two sides of a [`Fallback`](crate::Fallback) or a
///   [`Migration`](crate::Migration) hold the same bytes for the same
///   record (repair and copy move bytes), so a version read on one side
///   means the same on the other, which a per-store counter would not;
/// * [`Encrypted`](crate::Encrypted) writes a fresh nonce on every write,
///   so two writes of the same plaintext still have different versions.
///
/// The price is that a version is as large as the value it stands for
/// (shared, not copied, in memory), and that two writes of identical bytes
/// have the same version: a write that puts back exactly the bytes a
/// reader saw does not conflict with that reader. That is the one case in
/// which the reader's write cannot lose anything the other wrote, since
/// the stored state is byte for byte what the reader started from.
///
/// Decorators that transform values ([`Compressed`](crate::Compressed),
/// [`Encrypted`](crate::Encrypted)) hand out the version of the bytes
/// their inner store holds. A version is opaque to callers: compare it
/// only with `==` (equal versions mean equal stored bytes), and pass it
/// back to the store that handed it out.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Version(Bytes);

impl Version {
    /// The version of the stored bytes `stored`. For backends: what a
    /// store holds for a key is its version.
    pub fn of_stored(stored: Bytes) -> Self {
        Version(stored)
    }

    /// The stored bytes this version stands for. For backends, which
    /// compare them with what they hold (or hash them).
    pub fn stored(&self) -> &Bytes {
        &self.0
    }

    /// Whether `stored` is the stored bytes of this version.
    pub fn matches(&self, stored: &[u8]) -> bool {
        self.0.as_ref() == stored
    }
}

impl fmt::Debug for Version {
    // The bytes are a stored value, which may be a credential-bearing
    // session: show only their length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version(<{} bytes>)", self.0.len())
    }
}

/// A record and the [`Version`] of its stored bytes, as
/// [`Store::get_versioned`] returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The record, as [`Store::get`] would return it.
    pub record: Record,
    /// The version of the stored bytes it was read from.
    pub version: Version,
}

impl Versioned {
    /// A record read from a backend, whose version is its value.
    pub fn stored(record: Record) -> Self {
        Versioned {
            version: Version::of_stored(record.value.clone()),
            record,
        }
    }
}

/// When a [`Store::set_if`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Only if a live record is at the key, whatever it holds: a write
    /// that never re-creates a deleted (or expired) record, e.g. the save
    /// of an existing session after a logout.
    Exists,
    /// Only if a live record is at the key and its stored bytes are still
    /// those of this version: a compare-and-swap against what a
    /// [`Store::get_versioned`] returned.
    Matches(Version),
}

/// Where a [`Store::scan`] resumes. Opaque: each store encodes its own
/// position; pass back exactly what the previous page returned.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct ScanCursor(Option<String>);

impl ScanCursor {
    /// The start of a scan.
    pub const fn start() -> Self {
        ScanCursor(None)
    }

    /// A cursor from a store's own token.
    pub fn from_token(token: impl Into<String>) -> Self {
        ScanCursor(Some(token.into()))
    }

    /// The store's token, or `None` at the start.
    pub fn token(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Whether this is the start of a scan.
    pub fn is_start(&self) -> bool {
        self.0.is_none()
    }
}

impl fmt::Debug for ScanCursor {
    // A token may embed a key (e.g. the last `_id` seen): do not print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("ScanCursor(start)"),
            Some(t) => write!(f, "ScanCursor(<{} bytes>)", t.len()),
        }
    }
}

/// One page of a [`Store::scan`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanPage {
    /// Keys on this page; possibly empty even when `next` is `Some`.
    pub keys: Vec<String>,
    /// Where the next page starts; `None` when the scan is complete.
    pub next: Option<ScanCursor>,
}

/// An async key-value store with absolute expiry: the one trait of storestack.
///
/// Backends implement it; decorators implement it around another `Store`.
///
/// # Contract
///
/// * **Keys** are non-empty UTF-8 strings of at most
///   [`MAX_KEY_LEN`](crate::limits::MAX_KEY_LEN) bytes without control
///   characters; anything else is `InvalidInput` (see [`crate::limits`]).
///   Keys are session IDs, i.e. credentials: stores never log them.
/// * **Values** are bytes, possibly empty, up to a per-store limit;
///   larger is `TooLarge`.
/// * **Expiry** is absolute. A record whose `expires_at` is at or before
///   *now* does not exist: no operation returns or counts it, even when
///   the backend's own sweeper lags. Writing a record that is already
///   expired removes the key (`set`), stores nothing (`create`), or
///   removes it (`touch`).
/// * `set` is an upsert; `create` inserts only if the key is absent (or
///   expired) and says whether it inserted. Decorators keep the two
///   distinct: session-fixation safety depends on it.
/// * `delete` and `touch` say whether a live record was there.
/// * `get_versioned` is `get` plus the [`Version`] of the stored bytes.
///   `set_if` writes like `set` but only if its [`Condition`] holds for
///   the live record at the key, decided atomically with the write, and
///   says whether it wrote; an absent or expired record fails every
///   condition. When many callers race `set_if` with the version they all
///   read, exactly one wins. A `set_if` of an already expired record whose
///   condition holds removes the key. A `touch` changes no version.
///   Every decorator forwards both (none has a default that could answer
///   them wrongly); how each keeps the guarantee is in its docs.
/// * `scan` pages through live keys starting with `prefix`. Pages hold
///   about `limit` keys (a hint; a page may be empty while more follow).
///   A key that is live for the whole scan is returned exactly once; keys
///   written or deleted during the scan may or may not appear.
/// * `len` counts live records only; `clear` removes every record of this
///   store (and only this store's: a store scoped to a prefix of a shared
///   database clears that prefix).
/// * Errors are [`StoreError`](crate::StoreError)s; their kind says
///   whether they are transient.
// `len` is a backend round trip; an `is_empty` would cost the same.
#[allow(clippy::len_without_is_empty)]
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short description: `"memory"`, `"fallback(redis, mongodb)"`, ….
    fn name(&self) -> &str;

    /// The live record at `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Record>>;

    /// Writes `record` at `key`, replacing any previous record.
    async fn set(&self, key: &str, record: Record) -> Result<()>;

    /// Writes `record` at `key` only if no live record is there; returns
    /// whether it wrote.
    async fn create(&self, key: &str, record: Record) -> Result<bool>;

    /// Removes the record at `key`; returns whether a live one was there.
    async fn delete(&self, key: &str) -> Result<bool>;

    /// Sets the expiry of the live record at `key` without rewriting its
    /// value; returns whether there was one.
    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool>;

    /// One page of the live keys that start with `prefix` (`""` for all).
    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage>;

    /// The number of live records.
    async fn len(&self) -> Result<u64>;

    /// Removes every record of this store.
    async fn clear(&self) -> Result<()>;

    /// The live record at `key`, if any, with the [`Version`] of its stored
    /// bytes, for a later [`set_if`](Store::set_if).
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>>;

    /// Writes `record` at `key`, replacing the live record there, only if
    /// `condition` holds for it (checked and written atomically); returns
    /// whether it wrote. `false` means the precondition failed: the key is
    /// absent or expired, or (for [`Condition::Matches`]) another write
    /// changed its bytes since the version was read.
    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool>;
}

macro_rules! forward_store {
    ($ptr:ident) => {
        #[async_trait]
        impl<S: Store + ?Sized> Store for $ptr<S> {
            fn name(&self) -> &str {
                (**self).name()
            }
            async fn get(&self, key: &str) -> Result<Option<Record>> {
                (**self).get(key).await
            }
            async fn set(&self, key: &str, record: Record) -> Result<()> {
                (**self).set(key, record).await
            }
            async fn create(&self, key: &str, record: Record) -> Result<bool> {
                (**self).create(key, record).await
            }
            async fn delete(&self, key: &str) -> Result<bool> {
                (**self).delete(key).await
            }
            async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
                (**self).touch(key, expires_at).await
            }
            async fn scan(
                &self,
                prefix: &str,
                cursor: ScanCursor,
                limit: usize,
            ) -> Result<ScanPage> {
                (**self).scan(prefix, cursor, limit).await
            }
            async fn len(&self) -> Result<u64> {
                (**self).len().await
            }
            async fn clear(&self) -> Result<()> {
                (**self).clear().await
            }
            async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
                (**self).get_versioned(key).await
            }
            async fn set_if(
                &self,
                key: &str,
                record: Record,
                condition: Condition,
            ) -> Result<bool> {
                (**self).set_if(key, record, condition).await
            }
        }
    };
}

forward_store!(Arc);
forward_store!(Box);

/// A boxed, type-erased store.
pub type BoxStore = Box<dyn Store>;

/// A shared, type-erased store.
pub type SharedStore = Arc<dyn Store>;

// `Store` must stay object safe: stacks are routinely type-erased.
fn _assert_object_safe(_: &dyn Store) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn prefix_successor_bounds_exactly_the_prefixed_keys() {
        assert_eq!(prefix_successor("a:").as_deref(), Some("a;"));
        assert_eq!(prefix_successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_successor("ab\u{10FFFF}").as_deref(), Some("ac"));
        assert_eq!(prefix_successor("\u{10FFFF}\u{10FFFF}"), None);
        let keys = [
            "",
            "a",
            "a:",
            "a:0",
            "a:\u{10FFFF}",
            "a;",
            "a9",
            "ключ",
            "ключи",
            "ключ\u{10FFFF}x",
            "клюя",
            "🔑",
            "🔑:1",
            "\u{10FFFF}",
        ];
        for prefix in keys {
            let end = prefix_successor(prefix);
            for key in keys {
                let in_range = key.as_bytes() >= prefix.as_bytes()
                    && end.as_ref().is_none_or(|e| key.as_bytes() < e.as_bytes());
                assert_eq!(in_range, key.starts_with(prefix), "{prefix:?} {key:?}");
            }
        }
    }

    #[test]
    fn expiry_boundary_counts_as_expired() {
        let t = UNIX_EPOCH + Duration::from_secs(100);
        let r = Record::expiring_at("v", t);
        assert!(r.is_expired_at(t));
        assert!(!r.is_expired_at(t - Duration::from_millis(1)));
        assert_eq!(
            r.remaining_at(t + Duration::from_secs(1)),
            Some(Duration::ZERO)
        );
        assert_eq!(Record::never_expiring("v").remaining_at(t), None);
    }

    #[test]
    fn debug_hides_value() {
        let r = Record::never_expiring("secret-session-data");
        let s = format!("{r:?}");
        assert!(!s.contains("secret"), "{s}");
        let c = ScanCursor::from_token("sess:abc");
        assert!(!format!("{c:?}").contains("abc"));
    }

    #[test]
    fn huge_ttl_saturates() {
        let at = Expiry::after(Duration::MAX).resolve(SystemTime::now());
        assert_eq!(at, Some(crate::limits::max_expiry()));
    }
}
