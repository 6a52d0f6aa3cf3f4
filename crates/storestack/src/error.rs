//! The one error type of every store and decorator.
//!
//! A [`StoreError`] carries an [`ErrorKind`] (what went wrong, in terms a
//! decorator can act on), the [`Op`] that failed, the name of the store that
//! produced it, a short static-or-owned message and an optional `source`
//! chain. It is never flattened into a string: a circuit breaker must be able
//! to tell a timeout from a decoding bug.
//!
//! # What each kind makes the decorators do
//!
//! The kind alone decides, through two questions asked of it:
//! [`ErrorKind::is_transient`] (may this go away by itself, later or on
//! another store?) and [`ErrorKind::needs_operator`] (is the deployment
//! wrong, so that every call will fail the same way until someone fixes
//! it?). This table is the one place the answers are decided; the
//! decorators' docs refer to it.
//!
//! | kind | transient | Retry | CircuitBreaker | Fallback | Cached (stale on error) | Instrumented |
//! |---|---|---|---|---|---|---|
//! | `Unavailable`, `Timeout` | yes | retries | counts a failure | fails over | may serve stale | `debug` |
//! | `CircuitOpen` | yes | returns it at once (fast by design) | counts a failure (from a breaker below) | fails over | may serve stale | `debug` |
//! | `PermissionDenied`, `Misconfigured` | **no, permanent** | never retries | neutral: not a failure, not a success | returns it, no failover | no | `error` |
//! | `Corrupt`, `Internal` | no | never retries | neutral | returns it, no failover | no | `warn` |
//! | `InvalidInput`, `TooLarge`, `Unsupported` | no | never retries | neutral | returns it, no failover | no | `debug` |
//!
//! # Permanent failures fail loudly
//!
//! A wrong password, a user without the rights an operation needs, a TLS
//! handshake that fails (a bad or unknown certificate, TLS spoken to a plain
//! port), a command the server does not know (too old a server, a renamed
//! or disabled command) and settings the server refuses are
//! [`PermissionDenied`](ErrorKind::PermissionDenied) and
//! [`Misconfigured`](ErrorKind::Misconfigured). Every backend maps its
//! client's errors to them (see each backend's error module). Waiting does
//! not fix them, so:
//!
//! * **Retry never retries them**: another attempt meets the same refusal
//!   and only delays the error.
//! * **The CircuitBreaker does not count them.** Opening would turn a
//!   permanent error into `CircuitOpen`, which is transient: Retry and
//!   Fallback above would then treat a wrong password as an outage, and the
//!   breaker's half-open trials would keep "recovering" it. Neutral, every
//!   call reaches the backend and fails with the real cause; the refusal is
//!   cheap (the server answers at once, or the client refuses before
//!   sending).
//! * **The Fallback does not fail over** on them, as on every non-transient
//!   error. Failing over would keep the application running on the
//!   secondary while the primary is broken for good, so that a
//!   misconfiguration looks like a flaky network for as long as nobody reads
//!   the logs (the finding that made these kinds); and the writes journaled
//!   meanwhile would wait for a repair that cannot happen until an operator
//!   acts, with the secondary holding the only copy. A misconfigured
//!   deployment must fail at its first request (or at start-up, where
//!   backends connect eagerly), where whoever deployed it sees it. A write
//!   that the first side took and the second refused permanently is
//!   journaled for repair, like any write the second side missed, and the
//!   refusal is returned.
//! * **Instrumented logs them at `error`** and counts them under their own
//!   `outcome` label (`permission_denied`, `misconfigured`) for alerts.
//!
//! A connection that is lost and then re-established with credentials the
//! server no longer accepts (a password rotated on the server only) fails
//! inside the client's reconnect loop, where the operations waiting on it
//! see an unreachable server (`Unavailable`) rather than the refusal: the
//! clients give operations no access to a reconnection's cause. The
//! refusal is in the client's log; a store created afresh (a restart)
//! reports it as `PermissionDenied`.
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
    /// key that is too long, an expiry outside the representable range), or
    /// a configuration that a backend's `connect` refuses before any I/O.
    InvalidInput,
    /// A value (or a decompressed value) is larger than the configured limit.
    TooLarge,
    /// The store does not support this operation.
    Unsupported,
    /// A bug or an unexpected state in a store or decorator.
    Internal,
    /// The backend refused the store's credentials, or the rights they
    /// carry: a wrong user name or password (Redis `WRONGPASS`, `NOAUTH`;
    /// MongoDB `AuthenticationFailed`), or a user without a right an
    /// operation needs (Redis `NOPERM`, MongoDB `Unauthorized`). Permanent:
    /// it lasts until an operator fixes the credentials or the grants (see
    /// the [module docs](self#permanent-failures-fail-loudly)).
    PermissionDenied,
    /// The deployment does not match what the store needs: a TLS handshake
    /// that failed (certificate, protocol), a command the server does not
    /// know (the server is too old, or the command is renamed or disabled),
    /// settings the server refuses (a database it does not have, cluster
    /// mode against a server without it). Permanent, like
    /// [`PermissionDenied`](Self::PermissionDenied).
    Misconfigured,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::Unavailable,
        ErrorKind::Timeout,
        ErrorKind::CircuitOpen,
        ErrorKind::Corrupt,
        ErrorKind::InvalidInput,
        ErrorKind::TooLarge,
        ErrorKind::Unsupported,
        ErrorKind::Internal,
        ErrorKind::PermissionDenied,
        ErrorKind::Misconfigured,
    ];

    /// Whether an error of this kind may succeed if tried again later or
    /// against another store: `Unavailable`, `Timeout` and `CircuitOpen`.
    /// What Retry, CircuitBreaker and Fallback read (see the table in the
    /// [module docs](self)).
    pub const fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::CircuitOpen
        )
    }

    /// Whether only an operator can make the error go away: the deployment
    /// is wrong (credentials, grants, TLS, server version, configuration)
    /// and every call will fail the same way until it is fixed:
    /// `PermissionDenied` and `Misconfigured`. Never transient.
    ///
    /// ```
    /// use storestack::ErrorKind;
    ///
    /// assert!(ErrorKind::PermissionDenied.needs_operator());
    /// assert!(!ErrorKind::PermissionDenied.is_transient());
    /// assert!(!ErrorKind::Unavailable.needs_operator());
    /// ```
    pub const fn needs_operator(self) -> bool {
        matches!(self, ErrorKind::PermissionDenied | ErrorKind::Misconfigured)
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
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Misconfigured => "misconfigured",
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

    /// Whether only an operator can make the error go away: see
    /// [`ErrorKind::needs_operator`].
    pub fn needs_operator(&self) -> bool {
        self.kind.needs_operator()
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

    /// Shorthand for a `PermissionDenied` error.
    pub fn permission_denied(op: Op) -> Self {
        Self::new(ErrorKind::PermissionDenied, op)
    }

    /// Shorthand for a `Misconfigured` error.
    pub fn misconfigured(op: Op) -> Self {
        Self::new(ErrorKind::Misconfigured, op)
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
        for kind in ErrorKind::ALL {
            assert_eq!(kind.is_transient(), transient.contains(&kind), "{kind}");
        }
    }

    #[test]
    fn operator_kinds_are_permanent() {
        let operator = [ErrorKind::PermissionDenied, ErrorKind::Misconfigured];
        for kind in ErrorKind::ALL {
            assert_eq!(kind.needs_operator(), operator.contains(&kind), "{kind}");
            assert!(!(kind.needs_operator() && kind.is_transient()), "{kind}");
        }
    }

    #[test]
    fn names_are_distinct() {
        let names: std::collections::HashSet<_> =
            ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
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
