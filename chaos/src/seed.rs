//! Seeds: every random choice of the suite comes from a seed printed at the
//! start of a run, so a run replays.

/// A seed for stream `stream` of a run seeded `seed` (SplitMix64 of both),
/// so neighbouring seeds and streams get unrelated sequences.
///
/// ```
/// use storestack_chaos::seed::derive;
///
/// assert_eq!(derive(1, 0), derive(1, 0));
/// assert_ne!(derive(1, 0), derive(1, 1));
/// assert_ne!(derive(1, 0), derive(2, 0));
/// ```
pub fn derive(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A fresh random seed (for runs not given one; print it).
pub fn random() -> u64 {
    rand::random()
}
