use std::fmt;

use crate::error::Op;

/// A set of operations: which ones a fault affects.
///
/// ```
/// use storestack::layers::fault::OpSet;
/// use storestack::Op;
///
/// assert!(OpSet::READS.contains(Op::Get));
/// assert!(!OpSet::READS.contains(Op::Set));
/// let writes_but_clear = OpSet::WRITES.without(Op::Clear);
/// assert_eq!(
///     writes_but_clear,
///     OpSet::of(&[Op::Set, Op::Create, Op::Delete, Op::Touch, Op::SetIf])
/// );
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpSet(u16);

const fn bit(op: Op) -> u16 {
    1 << match op {
        Op::Get => 0,
        Op::Set => 1,
        Op::Create => 2,
        Op::Delete => 3,
        Op::Touch => 4,
        Op::Scan => 5,
        Op::Len => 6,
        Op::Clear => 7,
        Op::Connect => 8,
        Op::GetVersioned => 9,
        Op::SetIf => 10,
    }
}

impl OpSet {
    /// Every operation.
    pub const ALL: OpSet = OpSet(u16::MAX);
    /// No operation.
    pub const NONE: OpSet = OpSet(0);
    /// `get`, `scan`, `len`, `get_versioned`.
    pub const READS: OpSet =
        OpSet(bit(Op::Get) | bit(Op::Scan) | bit(Op::Len) | bit(Op::GetVersioned));
    /// `set`, `create`, `delete`, `touch`, `clear`, `set_if`.
    pub const WRITES: OpSet = OpSet(
        bit(Op::Set)
            | bit(Op::Create)
            | bit(Op::Delete)
            | bit(Op::Touch)
            | bit(Op::Clear)
            | bit(Op::SetIf),
    );

    /// The set of these operations.
    pub fn of(ops: &[Op]) -> Self {
        ops.iter().fold(OpSet::NONE, |s, op| s.with(*op))
    }

    /// This set and `op`.
    pub const fn with(self, op: Op) -> Self {
        OpSet(self.0 | bit(op))
    }

    /// This set without `op`.
    pub const fn without(self, op: Op) -> Self {
        OpSet(self.0 & !bit(op))
    }

    /// Whether `op` is in the set.
    pub const fn contains(self, op: Op) -> bool {
        self.0 & bit(op) != 0
    }
}

impl Default for OpSet {
    fn default() -> Self {
        OpSet::ALL
    }
}

impl fmt::Debug for OpSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(
                Op::ALL
                    .iter()
                    .filter(|op| self.contains(**op))
                    .map(|op| op.as_str()),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_sets() {
        assert_eq!(
            format!("{:?}", OpSet::READS),
            r#"{"get", "scan", "len", "get_versioned"}"#
        );
        assert!(OpSet::ALL.contains(Op::Clear) && !OpSet::NONE.contains(Op::Get));
        assert_eq!(
            OpSet::READS.with(Op::Set).without(Op::Get),
            OpSet::of(&[Op::Scan, Op::Len, Op::Set, Op::GetVersioned])
        );
    }
}
