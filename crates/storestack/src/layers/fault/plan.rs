//! What happens to each operation, drawn from the seeded generator.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config::{FaultConfig, OutageMode};
use super::handle::FaultHandle;
use crate::error::{ErrorKind, Op};

/// What happens to one operation.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub(super) outage: Option<OutageMode>,
    pub(super) delay: Duration,
    pub(super) hang: bool,
    pub(super) error: Option<ErrorKind>,
    pub(super) lose_reply: Option<ErrorKind>,
    /// For `get`: the byte index (modulo the length) and the mask to flip.
    pub(super) corrupt: Option<(u64, u8)>,
}

fn rate(r: f64) -> f64 {
    if r.is_nan() {
        0.0
    } else {
        r.clamp(0.0, 1.0)
    }
}

impl FaultHandle {
    /// Decides the fate of the next operation; `None` leaves it alone.
    pub(super) fn plan(&self, op: Op) -> Option<Plan> {
        let n = self.shared.seq.fetch_add(1, Ordering::Relaxed);
        if !self.shared.active.load(Ordering::Acquire) {
            return None;
        }
        let state = self.shared.state.read();
        let c = &state.config;
        if !c.ops.contains(op) {
            return None;
        }
        if is_down(c, state.start.elapsed()) {
            return Some(Plan {
                outage: Some(c.outage_mode),
                ..Plan::default()
            });
        }
        if !c.draws() {
            return None;
        }
        // Every operation draws the same values in the same order, whatever
        // is switched on, so the n-th operation's fate depends only on the
        // seed, n and the configuration.
        let mut rng =
            StdRng::seed_from_u64(self.shared.seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let (e, l, h, j, k): (f64, f64, f64, f64, f64) = rng.gen();
        let (at, mask) = (rng.gen::<u64>(), rng.gen_range(1..=u8::MAX));
        Some(Plan {
            outage: None,
            delay: c.latency + c.latency_jitter.mul_f64(j),
            hang: h < rate(c.hang_rate),
            error: (e < rate(c.error_rate)).then_some(c.error_kind),
            lose_reply: (l < rate(c.reply_loss_rate)).then_some(c.error_kind),
            corrupt: (matches!(op, Op::Get | Op::GetVersioned) && k < rate(c.corrupt_rate))
                .then_some((at, mask)),
        })
    }
}

pub(super) fn is_active(c: &FaultConfig) -> bool {
    c.down || !c.outages.is_empty() || c.flapping.is_some() || c.draws()
}

pub(super) fn is_down(c: &FaultConfig, elapsed: Duration) -> bool {
    c.down
        || c.outages.iter().any(|o| o.covers(elapsed))
        || c.flapping.is_some_and(|f| f.is_down(elapsed))
}
