//! The one error type of every store and decorator.
//!
//! A [`StoreError`] carries an [`ErrorKind`] (what went wrong, in terms a
//! decorator can act on), the [`Op`] that failed, the name of the store that
//! produced it, a short static-or-owned message and an optional `source`
//! chain. It is never flattened into a string: a circuit breaker must be able
//! to tell a timeout from a decoding bug.
//!
//! [`StoreError::is_transient`] is what Retry, CircuitBreaker and Fallback
//! read. `Corrupt`, `InvalidInput`, `TooLarge`, `Unsupported` and `Internal`
//! are not backend outages: they must not trip a breaker or trigger failover.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;

/// A `Result` whose error is a [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What went wrong, in terms a decorator can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The backend could not be reached or refused the operation for a
    /// reason that may go away (connection refused, reset, server loading).
    Unavailable,
    /// The operation did not finish within its deadline; its outcome is
    /// unknown.
    Timeout,
    /// A circuit breaker is open and failed the call without trying it.
    CircuitOpen,
    /// The stored bytes could not be decoded: bad header, failed
    /// decryption or authentication, decompression error, bad serde data.
    Corrupt,
    /// The caller passed something the contract forbids (an empty key, a
    /// key that is too long, an expiry outside the representable range).
    InvalidInput,
    /// A value (or a decompressed value) is larger than the configured limit.
    TooLarge,
    /// The store does not support this operation.
    Unsupported,
    /// A bug or an unexpected state in a store or decorator.
    Internal,
}

impl ErrorKind {
    /// Whether an error of this kind may succeed if tried again later or
    /// against another store: `Unavailable`, `Timeout` and `CircuitOpen`.
    pub const fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::CircuitOpen
        )
    }

    /// A stable lower-case name, used in messages and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::CircuitOpen => "circuit_open",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operations of the [`Store`](crate::Store) trait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// [`Store::get`](crate::Store::get)
    Get,
    /// [`Store::set`](crate::Store::set)
    Set,
    /// [`Store::create`](crate::Store::create)
    Create,
    /// [`Store::delete`](crate::Store::delete)
    Delete,
    /// [`Store::touch`](crate::Store::touch)
    Touch,
    /// [`Store::scan`](crate::Store::scan)
    Scan,
    /// [`Store::len`](crate::Store::len)
    Len,
    /// [`Store::clear`](crate::Store::clear)
    Clear,
    /// [`Store::get_versioned`](crate::Store::get_versioned)
    GetVersioned,
    /// [`Store::set_if`](crate::Store::set_if)
    SetIf,
    /// Establishing a connection or preparing a backend.
    Connect,
}

impl Op {
    /// Every operation of the `Store` trait, in declaration order.
    pub const ALL: [Op; 10] = [
        Op::Get,
        Op::Set,
        Op::Create,
        Op::Delete,
        Op::Touch,
        Op::Scan,
        Op::Len,
        Op::Clear,
        Op::GetVersioned,
        Op::SetIf,
    ];

    /// A stable lower-case name, used in messages and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Set => "set",
            Op::Create => "create",
            Op::Delete => "delete",
            Op::Touch => "touch",
            Op::Scan => "scan",
            Op::Len => "len",
            Op::Clear => "clear",
            Op::GetVersioned => "get_versioned",
            Op::SetIf => "set_if",
            Op::Connect => "connect",
        }
    }

    /// Whether repeating the operation after an unknown outcome leaves the
    /// store as if it ran once. Everything but `create` and `set_if` is;
    /// both are made safe to retry by the Retry decorator (see its docs).
    pub const fn is_idempotent(self) -> bool {
        !matches!(self, Op::Create | Op::SetIf)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every [`Store`](crate::Store) operation.
///
/// ```
/// use storestack::{ErrorKind, Op, StoreError};
///
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
/// let err = StoreError::new(ErrorKind::Unavailable, Op::Get)
///     .with_store("redis")
///     .with_message("connection failed")
///     .with_source(io);
/// assert!(err.is_transient());
/// assert_eq!(err.to_string(), "get on redis failed (unavailable): connection failed");
/// assert!(std::error::Error::source(&err).is_some());
/// ```
pub struct StoreError {
    kind: ErrorKind,
    op: Op,
    store: Cow<'static, str>,
    message: Cow<'static, str>,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
    exhausted: bool,
}

impl StoreError {
    /// A new error of `kind` for `op`, with no store name, message or source.
    pub fn new(kind: ErrorKind, op: Op) -> Self {
        StoreError {
            kind,
            op,
            store: Cow::Borrowed(""),
            message: Cow::Borrowed(""),
            source: None,
            exhausted: false,
        }
    }

    /// Sets the name of the store that produced the error.
    pub fn with_store(mut self, store: impl Into<Cow<'static, str>>) -> Self {
        self.store = store.into();
        self
    }

    /// Sets a short human-readable message (lower case, no final period,
    /// never a raw key).
    pub fn with_message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.message = message.into();
        self
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Marks the error as the last of a series of retries.
    pub fn exhausted(mut self) -> Self {
        self.exhausted = true;
        self
    }

    /// Replaces the operation (used by decorators that run one operation to
    /// serve another, e.g. a read repair).
    pub fn with_op(mut self, op: Op) -> Self {
        self.op = op;
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The operation that failed.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The name of the store that produced the error (empty if unknown).
    pub fn store(&self) -> &str {
        &self.store
    }

    /// The message, possibly empty.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether a Retry decorator gave up after this error.
    pub fn is_exhausted(&self) -> bool {
        self.exhausted
    }

    /// Whether the error may go away if tried later or elsewhere: see
    /// [`ErrorKind::is_transient`].
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }

    /// Shorthand for an `Unavailable` error.
    pub fn unavailable(op: Op) -> Self {
        Self::new(ErrorKind::Unavailable, op)
    }

    /// Shorthand for a `Timeout` error.
    pub fn timeout(op: Op) -> Self {
        Self::new(ErrorKind::Timeout, op)
    }

    /// Shorthand for a `Corrupt` error.
    pub fn corrupt(op: Op) -> Self {
        Self::new(ErrorKind::Corrupt, op)
    }

    /// Shorthand for an `InvalidInput` error.
    pub fn invalid_input(op: Op) -> Self {
        Self::new(ErrorKind::InvalidInput, op)
    }

    /// Shorthand for an `Internal` error.
    pub fn internal(op: Op) -> Self {
        Self::new(ErrorKind::Internal, op)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.op)?;
        if !self.store.is_empty() {
            write!(f, " on {}", self.store)?;
        }
        write!(f, " failed ({})", self.kind)?;
        if self.exhausted {
            f.write_str(" after retries")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("StoreError");
        d.field("kind", &self.kind)
            .field("op", &self.op)
            .field("store", &self.store);
        if !self.message.is_empty() {
            d.field("message", &self.message);
        }
        if self.exhausted {
            d.field("exhausted", &true);
        }
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_kinds() {
        let transient = [
            ErrorKind::Unavailable,
            ErrorKind::Timeout,
            ErrorKind::CircuitOpen,
        ];
        let permanent = [
            ErrorKind::Corrupt,
            ErrorKind::InvalidInput,
            ErrorKind::TooLarge,
            ErrorKind::Unsupported,
            ErrorKind::Internal,
        ];
        assert!(transient.iter().all(|k| k.is_transient()));
        assert!(permanent.iter().all(|k| !k.is_transient()));
    }

    #[test]
    fn display_is_lowercase_without_period() {
        let err = StoreError::timeout(Op::Set)
            .with_store("memory")
            .exhausted();
        assert_eq!(
            err.to_string(),
            "set on memory failed (timeout) after retries"
        );
        let bare = StoreError::new(ErrorKind::Internal, Op::Len);
        assert_eq!(bare.to_string(), "len failed (internal)");
    }

    #[test]
    fn source_chain_is_kept() {
        let inner = StoreError::unavailable(Op::Get).with_store("redis");
        let outer = StoreError::corrupt(Op::Get)
            .with_store("encrypted")
            .with_source(inner);
        let src = StdError::source(&outer).expect("source");
        let inner = src.downcast_ref::<StoreError>().expect("store error");
        assert_eq!(inner.kind(), ErrorKind::Unavailable);
    }
}
