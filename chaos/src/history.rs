//! The recorded history of a run: every operation the workload issued, when
//! it started and ended (relative to the start of the run), what it wrote or
//! read, and how it ended. Checkers read nothing else.
//!
//! Every written value is unique and self-identifying (see [`ValueId`]), so a
//! checker can tell which write a read observed.

use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use storestack::{ErrorKind, Op};

/// An operation the workload issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkOp {
    /// [`Store::get`](storestack::Store::get)
    Get,
    /// [`Store::set`](storestack::Store::set)
    Set,
    /// [`Store::create`](storestack::Store::create)
    Create,
    /// [`Store::delete`](storestack::Store::delete)
    Delete,
    /// [`Store::touch`](storestack::Store::touch)
    Touch,
}

impl WorkOp {
    /// Every operation, in declaration order.
    pub const ALL: [WorkOp; 5] = [
        WorkOp::Get,
        WorkOp::Set,
        WorkOp::Create,
        WorkOp::Delete,
        WorkOp::Touch,
    ];

    /// The matching [`Op`] of the store contract.
    pub fn op(self) -> Op {
        match self {
            WorkOp::Get => Op::Get,
            WorkOp::Set => Op::Set,
            WorkOp::Create => Op::Create,
            WorkOp::Delete => Op::Delete,
            WorkOp::Touch => Op::Touch,
        }
    }

    /// Whether the operation writes a value (`set`, `create`).
    pub fn writes_value(self) -> bool {
        matches!(self, WorkOp::Set | WorkOp::Create)
    }
}

impl fmt::Display for WorkOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.op().as_str())
    }
}

/// The identity of a written value: the worker that wrote it and that
/// worker's operation sequence number. Unique within a run.
///
/// A value is encoded as `cv1|<worker>|<seq>|<key>|` followed by `.`
/// padding up to the requested size, so it also names the key it was
/// written to: a value read under another key is [`ReadValue::Misplaced`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ValueId {
    /// The worker that wrote the value.
    pub worker: u32,
    /// The worker's operation sequence number of the write.
    pub seq: u64,
}

const VALUE_TAG: &str = "cv1";

impl ValueId {
    /// The bytes written for this value at key index `key`, padded to at
    /// least `size` bytes.
    pub fn encode(self, key: u32, size: usize) -> Bytes {
        let header = format!("{VALUE_TAG}|{}|{}|{key}|", self.worker, self.seq);
        let mut buf = BytesMut::with_capacity(size.max(header.len()));
        buf.put_slice(header.as_bytes());
        buf.resize(size.max(header.len()), b'.');
        buf.freeze()
    }

    /// What a read of key index `key` returned, given its bytes.
    pub fn decode(bytes: &[u8], key: u32) -> ReadValue {
        let unrecognized = ReadValue::Unrecognized { len: bytes.len() };
        let Some(rest) = bytes
            .strip_prefix(VALUE_TAG.as_bytes())
            .and_then(|r| r.strip_prefix(b"|"))
        else {
            return unrecognized;
        };
        let mut fields = rest.splitn(4, |&b| b == b'|');
        let mut number = || {
            fields
                .next()
                .and_then(|f| std::str::from_utf8(f).ok())
                .and_then(|f| f.parse::<u64>().ok())
        };
        let (Some(worker), Some(seq), Some(k)) = (number(), number(), number()) else {
            return unrecognized;
        };
        let (Ok(worker), Ok(k)) = (u32::try_from(worker), u32::try_from(k)) else {
            return unrecognized;
        };
        // The padding must be intact: a flipped byte is corruption.
        let Some(padding) = fields.next() else {
            return unrecognized;
        };
        if padding.iter().any(|&b| b != b'.') {
            return unrecognized;
        }
        let id = ValueId { worker, seq };
        if k == key {
            ReadValue::Value(id)
        } else {
            ReadValue::Misplaced(id)
        }
    }
}

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "w{}#{}", self.worker, self.seq)
    }
}

/// What a successful `get` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadValue {
    /// No live record.
    Absent,
    /// A value the workload wrote to this key.
    Value(ValueId),
    /// A value the workload wrote to another key.
    Misplaced(ValueId),
    /// Bytes the workload never wrote (corruption, or data from elsewhere).
    Unrecognized {
        /// Their length.
        len: usize,
    },
}

/// An [`ErrorKind`] as recorded (serializable; unknown future kinds are
/// `Other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// [`ErrorKind::Unavailable`]
    Unavailable,
    /// [`ErrorKind::Timeout`]
    Timeout,
    /// [`ErrorKind::CircuitOpen`]
    CircuitOpen,
    /// [`ErrorKind::Corrupt`]
    Corrupt,
    /// [`ErrorKind::InvalidInput`]
    InvalidInput,
    /// [`ErrorKind::TooLarge`]
    TooLarge,
    /// [`ErrorKind::Unsupported`]
    Unsupported,
    /// [`ErrorKind::Internal`]
    Internal,
    /// [`ErrorKind::PermissionDenied`]
    PermissionDenied,
    /// [`ErrorKind::Misconfigured`]
    Misconfigured,
    /// A kind added to [`ErrorKind`] after this suite was written.
    Other,
}

impl ErrorClass {
    /// A stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Unavailable => "unavailable",
            ErrorClass::Timeout => "timeout",
            ErrorClass::CircuitOpen => "circuit_open",
            ErrorClass::Corrupt => "corrupt",
            ErrorClass::InvalidInput => "invalid_input",
            ErrorClass::TooLarge => "too_large",
            ErrorClass::Unsupported => "unsupported",
            ErrorClass::Internal => "internal",
            ErrorClass::PermissionDenied => "permission_denied",
            ErrorClass::Misconfigured => "misconfigured",
            ErrorClass::Other => "other",
        }
    }

    /// The matching [`ErrorKind`] (`Internal` for `Other`).
    pub fn kind(self) -> ErrorKind {
        match self {
            ErrorClass::Unavailable => ErrorKind::Unavailable,
            ErrorClass::Timeout => ErrorKind::Timeout,
            ErrorClass::CircuitOpen => ErrorKind::CircuitOpen,
            ErrorClass::Corrupt => ErrorKind::Corrupt,
            ErrorClass::InvalidInput => ErrorKind::InvalidInput,
            ErrorClass::TooLarge => ErrorKind::TooLarge,
            ErrorClass::Unsupported => ErrorKind::Unsupported,
            ErrorClass::PermissionDenied => ErrorKind::PermissionDenied,
            ErrorClass::Misconfigured => ErrorKind::Misconfigured,
            ErrorClass::Internal | ErrorClass::Other => ErrorKind::Internal,
        }
    }
}

impl From<ErrorKind> for ErrorClass {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::Unavailable => ErrorClass::Unavailable,
            ErrorKind::Timeout => ErrorClass::Timeout,
            ErrorKind::CircuitOpen => ErrorClass::CircuitOpen,
            ErrorKind::Corrupt => ErrorClass::Corrupt,
            ErrorKind::InvalidInput => ErrorClass::InvalidInput,
            ErrorKind::TooLarge => ErrorClass::TooLarge,
            ErrorKind::Unsupported => ErrorClass::Unsupported,
            ErrorKind::Internal => ErrorClass::Internal,
            ErrorKind::PermissionDenied => ErrorClass::PermissionDenied,
            ErrorKind::Misconfigured => ErrorClass::Misconfigured,
            _ => ErrorClass::Other,
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A `get` succeeded and returned this.
    Read(ReadValue),
    /// A `set` succeeded.
    Written,
    /// A `create`, `delete` or `touch` succeeded and returned this
    /// (inserted / was there / was there).
    Applied(bool),
    /// The operation failed with an error of this kind; whether a write
    /// took effect is unknown.
    Failed(ErrorClass),
    /// The operation did not finish within the hang deadline and was
    /// abandoned; whether a write took effect is unknown.
    Hung,
}

impl Outcome {
    /// Whether the operation succeeded.
    pub fn is_ok(&self) -> bool {
        matches!(
            self,
            Outcome::Read(_) | Outcome::Written | Outcome::Applied(_)
        )
    }

    /// The error kind, for a failed operation.
    pub fn error(&self) -> Option<ErrorClass> {
        match self {
            Outcome::Failed(class) => Some(*class),
            _ => None,
        }
    }
}

/// One operation of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRecord {
    /// The worker that issued it.
    pub worker: u32,
    /// The worker's sequence number for it (0, 1, 2, …).
    pub seq: u64,
    /// The operation.
    pub op: WorkOp,
    /// The key index; the key is [`History::key`]`(key)`.
    pub key: u32,
    /// When it was issued, since the start of the run.
    pub start: Duration,
    /// When it returned (or was abandoned as hung), since the start of the run.
    pub end: Duration,
    /// The value a `set` or `create` wrote.
    pub write: Option<ValueId>,
    /// The expiry a `set`, `create` or `touch` asked for (`None`: never, or
    /// not a write).
    pub expires_at: Option<SystemTime>,
    /// How it ended.
    pub outcome: Outcome,
}

impl OpRecord {
    /// How long it took (the hang deadline for a hung operation).
    pub fn latency(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }
}

/// The span of a run during which faults are active, relative to the start
/// of the run. Used to split a history into [`Phase`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultWindow {
    /// When the first fault starts.
    pub start: Duration,
    /// When the last fault is lifted.
    pub end: Duration,
}

impl FaultWindow {
    /// A window from `start` to `end`.
    pub fn new(start: Duration, end: Duration) -> Self {
        FaultWindow {
            start,
            end: end.max(start),
        }
    }

    /// The phase of an operation that ran from `start` to `end`: `During`
    /// if it overlaps the window at all, else `Before` or `After`.
    pub fn phase_of(&self, start: Duration, end: Duration) -> Phase {
        if end < self.start {
            Phase::Before
        } else if start > self.end {
            Phase::After
        } else {
            Phase::During
        }
    }
}

/// The part of a run an operation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Before the fault window.
    Before,
    /// Overlapping the fault window.
    During,
    /// After the fault window.
    After,
}

impl Phase {
    /// The three phases in order.
    pub const ALL: [Phase; 3] = [Phase::Before, Phase::During, Phase::After];

    /// A stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Before => "before",
            Phase::During => "during",
            Phase::After => "after",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a run recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The seed of the workload.
    pub seed: u64,
    /// The wall-clock time at the start of the run (the clock expiries were
    /// computed with); operation times are offsets from it.
    pub started_at: SystemTime,
    /// How long the run took.
    pub elapsed: Duration,
    /// The deadline past which an operation counted as hung.
    pub hang_deadline: Duration,
    /// The prefix of every key.
    pub key_prefix: String,
    /// The fault window, if the scenario had faults.
    pub window: Option<FaultWindow>,
    /// Every operation of the workload, ordered by start time.
    pub ops: Vec<OpRecord>,
    /// The final reads: one `get` of every written key through every
    /// process, made after the workload stopped, the faults were lifted
    /// and the stack was given time to converge. They are what lost
    /// writes are judged by, and are not counted in the statistics.
    #[serde(default)]
    pub final_reads: Vec<OpRecord>,
}

impl History {
    /// An empty history of a run seeded `seed` that started at
    /// `started_at`, with a 2 s hang deadline and keys under `key_prefix`.
    pub fn new(seed: u64, started_at: SystemTime, key_prefix: impl Into<String>) -> Self {
        History {
            seed,
            started_at,
            elapsed: Duration::ZERO,
            hang_deadline: Duration::from_secs(2),
            key_prefix: key_prefix.into(),
            window: None,
            ops: Vec::new(),
            final_reads: Vec::new(),
        }
    }

    /// The same history restricted to the operations on the keys `keep`
    /// accepts (final reads included).
    pub fn filter_keys(&self, keep: impl Fn(u32) -> bool) -> History {
        History {
            ops: self.ops.iter().filter(|op| keep(op.key)).cloned().collect(),
            final_reads: self
                .final_reads
                .iter()
                .filter(|op| keep(op.key))
                .cloned()
                .collect(),
            ..self.clone()
        }
    }

    /// The key with index `index`.
    pub fn key(&self, index: u32) -> String {
        key_name(&self.key_prefix, index)
    }

    /// The phase of an operation (`Before` for every operation of a run
    /// without a fault window).
    pub fn phase(&self, op: &OpRecord) -> Phase {
        self.window
            .map_or(Phase::Before, |w| w.phase_of(op.start, op.end))
    }

    /// The wall-clock time of an offset from the start of the run.
    pub fn wall_time(&self, offset: Duration) -> SystemTime {
        self.started_at + offset
    }
}

/// The key with index `index` under `prefix`.
pub fn key_name(prefix: &str, index: u32) -> String {
    format!("{prefix}{index:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_name_their_key() {
        let id = ValueId {
            worker: 3,
            seq: 1234,
        };
        let bytes = id.encode(42, 100);
        assert_eq!(bytes.len(), 100);
        assert_eq!(ValueId::decode(&bytes, 42), ReadValue::Value(id));
        assert_eq!(ValueId::decode(&bytes, 43), ReadValue::Misplaced(id));
        // Smaller than the header: the header alone.
        let short = id.encode(42, 1);
        assert_eq!(ValueId::decode(&short, 42), ReadValue::Value(id));
    }

    #[test]
    fn foreign_or_damaged_bytes_are_unrecognized() {
        let id = ValueId { worker: 0, seq: 1 };
        let mut bytes = id.encode(7, 64).to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x20;
        assert_eq!(
            ValueId::decode(&bytes, 7),
            ReadValue::Unrecognized { len: 64 }
        );
        for junk in [&b""[..], b"cv1|", b"cv1|x|1|7|", b"hello", b"cv1|1|2|3"] {
            assert!(
                matches!(ValueId::decode(junk, 7), ReadValue::Unrecognized { .. }),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn phases_by_overlap() {
        let w = FaultWindow::new(Duration::from_secs(2), Duration::from_secs(4));
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert_eq!(w.phase_of(s(1), ms(1999)), Phase::Before);
        assert_eq!(w.phase_of(s(1), ms(2001)), Phase::During);
        assert_eq!(w.phase_of(s(3), s(3)), Phase::During);
        assert_eq!(w.phase_of(ms(3999), s(5)), Phase::During);
        assert_eq!(w.phase_of(ms(4001), s(5)), Phase::After);
    }
}
