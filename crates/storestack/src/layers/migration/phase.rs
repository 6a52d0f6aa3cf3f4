//! Phases, the stable per-key percentage, and how each operation is
//! routed.

use std::fmt;
use std::hash::Hasher;
use std::str::FromStr;

use siphasher::sip::SipHasher13;

/// Where a [`Migration`](super::Migration) stands. See the
/// [module docs](super) for what each phase does with every operation.
///
/// Phases print and parse as `old-only`, `write-both:50`, `read-new` and
/// `new-only` (what a CLI or a control record uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Only the old store is used.
    OldOnly,
    /// Reads from old; keys whose [bucket](bucket) is below `percent` are
    /// written to both stores (new first), the others to old only. Deletes
    /// go to both. `percent` above 100 counts as 100.
    WriteBoth {
        /// Share of keys (by stable hash) written to both stores, 0–100.
        percent: u8,
    },
    /// Reads from new, falling back to old on a miss (and copying the
    /// record to new); every write goes to both stores (new first).
    ReadNew,
    /// Only the new store is used; the old one no longer sees writes.
    NewOnly,
}

impl Phase {
    /// `WriteBoth` with `percent` clamped to 0–100.
    pub const fn write_both(percent: u8) -> Self {
        Phase::WriteBoth {
            percent: if percent > 100 { 100 } else { percent },
        }
    }

    /// The number the `storestack_migration_phase` gauge shows: 0 old
    /// only, 1 write both, 2 read new, 3 new only.
    pub const fn ordinal(self) -> u8 {
        match self {
            Phase::OldOnly => 0,
            Phase::WriteBoth { .. } => 1,
            Phase::ReadNew => 2,
            Phase::NewOnly => 3,
        }
    }

    /// The share of keys written to the new store, 0–100.
    pub const fn write_percent(self) -> u8 {
        match self {
            Phase::OldOnly => 0,
            Phase::WriteBoth { percent } => {
                if percent > 100 {
                    100
                } else {
                    percent
                }
            }
            Phase::ReadNew | Phase::NewOnly => 100,
        }
    }

    pub(crate) fn normalized(self) -> Self {
        match self {
            Phase::WriteBoth { percent } => Phase::write_both(percent),
            p => p,
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::OldOnly => f.write_str("old-only"),
            Phase::WriteBoth { percent } => write!(f, "write-both:{percent}"),
            Phase::ReadNew => f.write_str("read-new"),
            Phase::NewOnly => f.write_str("new-only"),
        }
    }
}

/// A string that is not a phase (see [`Phase`] for the forms).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown migration phase (expected old-only, write-both:<0-100>, read-new or new-only)")]
pub struct ParsePhaseError;

impl FromStr for Phase {
    type Err = ParsePhaseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "old-only" => Ok(Phase::OldOnly),
            "read-new" => Ok(Phase::ReadNew),
            "new-only" => Ok(Phase::NewOnly),
            other => {
                let pct = other.strip_prefix("write-both:").ok_or(ParsePhaseError)?;
                match pct.parse::<u8>() {
                    Ok(p) if p <= 100 => Ok(Phase::WriteBoth { percent: p }),
                    _ => Err(ParsePhaseError),
                }
            }
        }
    }
}

/// The fixed SipHash keys of [`bucket`]: part of the on-the-wire contract
/// between processes, never to change.
const BUCKET_KEYS: (u64, u64) = (0x7374_6f72_6573_7461, 0x636b_2d6d_6967_7274);

/// The stable 64-bit hash of a key: SipHash-1-3 with fixed keys over the
/// key's UTF-8 bytes. Every process, every restart and every version of
/// storestack computes the same value.
pub(crate) fn key_hash(key: &str) -> u64 {
    let mut h = SipHasher13::new_with_keys(BUCKET_KEYS.0, BUCKET_KEYS.1);
    h.write(key.as_bytes());
    h.finish()
}

/// The percentage bucket (0–99) of a key: [`WriteBoth`](Phase::WriteBoth)
/// writes a key to both stores when its bucket is below the percentage.
///
/// Stable: the same key always lands in the same bucket, in every process
/// and after restarts (SipHash-1-3 with fixed keys, modulo 100), so one
/// key's reads and writes never go to different stores. Raising the
/// percentage only adds keys.
///
/// ```
/// use storestack::layers::migration::bucket;
///
/// assert_eq!(bucket("sess:abc"), bucket("sess:abc"));
/// assert!(bucket("sess:abc") < 100);
/// ```
pub fn bucket(key: &str) -> u8 {
    bucket_of_hash(key_hash(key))
}

/// The bucket of a [`key_hash`].
pub(crate) fn bucket_of_hash(hash: u64) -> u8 {
    (hash % 100) as u8
}

/// A snapshot of a handle: the phase and the high-water mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PhaseState {
    /// The current phase.
    pub phase: Phase,
    /// The highest share of keys (0–100) that may hold a copy in the new
    /// store: the largest write-both percentage reached, or 100 once
    /// `ReadNew` or `NewOnly` was entered. Writes to keys below it that do
    /// not go to both stores remove the key from the new store, so a copy
    /// there never goes stale after a switch back.
    pub high_water: u8,
}

impl PhaseState {
    pub(crate) fn pack(self) -> u32 {
        let (tag, pct) = match self.phase {
            Phase::OldOnly => (0, 0),
            Phase::WriteBoth { percent } => (1, percent as u32),
            Phase::ReadNew => (2, 0),
            Phase::NewOnly => (3, 0),
        };
        tag | (pct << 8) | ((self.high_water as u32) << 16)
    }

    pub(crate) fn unpack(v: u32) -> Self {
        let phase = match v & 0xff {
            0 => Phase::OldOnly,
            1 => Phase::WriteBoth {
                percent: ((v >> 8) & 0xff) as u8,
            },
            2 => Phase::ReadNew,
            _ => Phase::NewOnly,
        };
        PhaseState {
            phase,
            high_water: ((v >> 16) & 0xff) as u8,
        }
    }

    /// What a write to a key in `bucket` does in this state.
    pub(crate) fn write_route(self, bucket: u8) -> Route {
        match self.phase {
            Phase::NewOnly => Route::New,
            Phase::ReadNew => Route::ReadNew,
            Phase::WriteBoth { percent } if bucket < percent => Route::Mirror,
            _ if bucket < self.high_water => Route::Invalidate,
            _ => Route::Old,
        }
    }

    /// What a delete of a key in `bucket` does: like a write, except that
    /// every write-both phase deletes from both stores.
    pub(crate) fn delete_route(self, bucket: u8) -> Route {
        match (self.phase, self.write_route(bucket)) {
            (Phase::WriteBoth { .. }, Route::Old) => Route::Mirror,
            (_, route) => route,
        }
    }
}

/// How one operation on one key is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Old store only.
    Old,
    /// Remove the key from new, write old, remove from new again.
    Invalidate,
    /// Both stores, new first; old serves reads.
    Mirror,
    /// Both stores, new first; new serves reads, old is the fallback.
    ReadNew,
    /// New store only.
    New,
}
