//! The stored form of a session, the same for every adapter: the key is
//! the session ID, the value is the session's map encoded as MessagePack,
//! and the session's expiry is the record's absolute expiry.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;
use storestack::redact::KeyHash;
use storestack::{ErrorKind, Record, StoreError};
use time::OffsetDateTime;

/// The stored value of a session with no data: an empty MessagePack map.
/// [`Degraded`](crate::Degraded) serves it as the temporary session of a
/// request whose stored session cannot be read.
pub const EMPTY_SESSION: &[u8] = &[0x80];

/// Encodes a session's data as MessagePack, to expire at `expires_at`.
pub fn encode<T: Serialize + ?Sized>(
    data: &T,
    expires_at: SystemTime,
) -> Result<Record, rmp_serde::encode::Error> {
    let bytes = rmp_serde::to_vec_named(data)?;
    Ok(Record::expiring_at(bytes, expires_at))
}

/// Decodes a stored session; `None`, logged with a keyed hash of `key`
/// (never the key), when the bytes are not a session of this shape.
pub fn decode<T: DeserializeOwned>(key: &str, value: &[u8]) -> Option<T> {
    match rmp_serde::from_slice(value) {
        Ok(data) => Some(data),
        Err(err) => {
            tracing::warn!(session = %KeyHash::of(key), error = %err, "undecodable session ignored");
            None
        }
    }
}

/// What a `get` of a session found, with unreadable bytes (`Corrupt`: a
/// ciphertext that fails authentication, a bad compression header) as no
/// session, logged with a keyed hash of `key`. Every other error is the
/// caller's to report.
pub fn read(
    key: &str,
    found: Result<Option<Record>, StoreError>,
) -> Result<Option<Record>, StoreError> {
    match found {
        Err(err) if err.kind() == ErrorKind::Corrupt => {
            tracing::warn!(session = %KeyHash::of(key), error = %err, "unreadable session ignored");
            Ok(None)
        }
        other => other,
    }
}

/// Reads and decodes a session in one step ([`read`] then [`decode`]).
pub fn load<T: DeserializeOwned>(
    key: &str,
    found: Result<Option<Record>, StoreError>,
) -> Result<Option<(T, Option<SystemTime>)>, StoreError> {
    Ok(read(key, found)?
        .and_then(|record| decode(key, &record.value).map(|data| (data, record.expires_at))))
}

/// A session map of string values (actix-session's state).
pub type StringMap = HashMap<String, String>;

/// `t` as a [`SystemTime`]; instants before 1970 become the epoch (already
/// expired).
pub fn system_time(t: OffsetDateTime) -> SystemTime {
    let nanos = t.unix_timestamp_nanos();
    if nanos <= 0 {
        UNIX_EPOCH
    } else {
        UNIX_EPOCH + Duration::from_nanos(nanos.min(u64::MAX as i128) as u64)
    }
}

/// `t` as an [`OffsetDateTime`]; a record that never expires (`None`, as
/// records written outside a session framework may be) becomes the
/// largest date.
pub fn offset_date_time(t: Option<SystemTime>) -> OffsetDateTime {
    let Some(t) = t else {
        return time::PrimitiveDateTime::MAX.assume_utc();
    };
    let nanos = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as i128;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or(time::PrimitiveDateTime::MAX.assume_utc())
}

/// The absolute expiry of a session that lives `ttl` from `now`: a
/// relative TTL is resolved once, when the session is written, so every
/// store the record is copied to keeps its remaining lifetime. A zero or
/// negative `ttl` expires at `now`.
pub fn expiry_after(now: SystemTime, ttl: time::Duration) -> SystemTime {
    let ttl = Duration::try_from(ttl).unwrap_or(Duration::ZERO);
    now.checked_add(ttl)
        .unwrap_or_else(|| system_time(time::PrimitiveDateTime::MAX.assume_utc()))
}

/// Renders an error with its whole source chain, for frameworks whose
/// error types keep only strings.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use storestack::Op;

    use super::*;

    #[test]
    fn empty_session_is_an_empty_map() {
        let empty: StringMap = rmp_serde::from_slice(EMPTY_SESSION).unwrap();
        assert!(empty.is_empty());
        let at = UNIX_EPOCH + Duration::from_secs(10);
        assert_eq!(encode(&StringMap::new(), at).unwrap().value, EMPTY_SESSION);
    }

    #[test]
    fn round_trip_and_bad_bytes() {
        let mut data = StringMap::new();
        data.insert("views".into(), "3".into());
        let at = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let record = encode(&data, at).unwrap();
        assert_eq!(record.expires_at, Some(at));
        let (back, expiry) = load::<StringMap>("k", Ok(Some(record))).unwrap().unwrap();
        assert_eq!((back, expiry), (data, Some(at)));
        assert!(decode::<StringMap>("k", b"\xc1garbage").is_none());
        let corrupt = Err(StoreError::corrupt(Op::Get));
        assert!(load::<StringMap>("k", corrupt).unwrap().is_none());
        let down = Err(StoreError::unavailable(Op::Get));
        assert!(load::<StringMap>("k", down).is_err());
    }

    #[test]
    fn expiry_is_absolute_and_clamped() {
        let now = UNIX_EPOCH + Duration::from_secs(100);
        assert_eq!(
            expiry_after(now, time::Duration::seconds(60)),
            now + Duration::from_secs(60)
        );
        assert_eq!(expiry_after(now, time::Duration::seconds(-5)), now);
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(offset_date_time(Some(system_time(t))), t);
        assert_eq!(
            offset_date_time(None),
            time::PrimitiveDateTime::MAX.assume_utc()
        );
        assert_eq!(
            system_time(OffsetDateTime::from_unix_timestamp(-5).unwrap()),
            UNIX_EPOCH
        );
    }

    #[test]
    fn chain_keeps_every_source() {
        let err = StoreError::unavailable(Op::Get)
            .with_store("redis")
            .with_source(std::io::Error::other("connection refused"));
        let text = chain(&err);
        assert!(text.contains("unavailable"), "{text}");
        assert!(text.ends_with("connection refused"), "{text}");
    }
}
