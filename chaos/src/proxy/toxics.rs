//! The faults a [`FaultProxy`](super::FaultProxy) can apply, like
//! toxiproxy's toxics.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Which way bytes flow through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Client to server (requests).
    Upstream,
    /// Server to client (responses). The default, as in toxiproxy.
    #[default]
    Downstream,
    /// Both ways.
    Both,
}

impl Direction {
    /// Whether a toxic on `self` applies to bytes flowing `flow`.
    pub fn covers(self, flow: Direction) -> bool {
        self == Direction::Both || self == flow
    }
}

/// Delay added to every chunk of bytes: `base` ± up to `jitter`
/// (uniform), drawn from the proxy's seeded RNG. Bytes stay in order: a
/// chunk is never delivered before the one read before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    /// The mean delay.
    pub base: Duration,
    /// The largest deviation from `base`, either way.
    pub jitter: Duration,
    /// Which way it applies.
    pub direction: Direction,
}

impl Latency {
    /// `base` on responses, no jitter.
    pub fn new(base: Duration) -> Self {
        Latency {
            base,
            jitter: Duration::ZERO,
            direction: Direction::Downstream,
        }
    }

    /// Sets the jitter.
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the direction.
    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }

    /// One delay drawn from `rng`.
    pub fn sample(&self, rng: &mut impl Rng) -> Duration {
        if self.jitter.is_zero() {
            return self.base;
        }
        let jitter = self.jitter.as_micros() as i64;
        let offset = rng.gen_range(-jitter..=jitter);
        let micros = (self.base.as_micros() as i64 + offset).max(0);
        Duration::from_micros(micros as u64)
    }
}

/// A bandwidth limit per connection and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bandwidth {
    /// Bytes per second (at least 1).
    pub bytes_per_sec: u64,
    /// Which way it applies.
    pub direction: Direction,
}

impl Bandwidth {
    /// `bytes_per_sec` on responses.
    pub fn new(bytes_per_sec: u64) -> Self {
        Bandwidth {
            bytes_per_sec: bytes_per_sec.max(1),
            direction: Direction::Downstream,
        }
    }

    /// Sets the direction.
    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }
}

/// The faults in force. `Toxics::default()` is a clean pipe.
///
/// Every field can change at any time through a
/// [`ProxyHandle`](super::ProxyHandle); connections already open pick the
/// change up at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Toxics {
    /// The proxy is down: its listening socket is closed (new connections
    /// are refused: `ECONNREFUSED`) and every open connection is closed.
    pub down: bool,
    /// Every connection is reset (`ECONNRESET`: `SO_LINGER` 0, then close)
    /// this long after it opened or after the toxic was set, whichever is
    /// later. `Some(ZERO)`: at once.
    pub reset_peer: Option<Duration>,
    /// Nothing gets through either way; connections are accepted and held
    /// open. Bytes are held, not dropped, like a network partition that
    /// TCP rides out: when the blackhole lifts, they flow.
    pub blackhole: bool,
    /// Delay on every chunk.
    pub latency: Option<Latency>,
    /// Throughput limit.
    pub bandwidth: Option<Bandwidth>,
    /// When one side closes, the close reaches the other side this much
    /// later.
    pub slow_close: Option<Duration>,
}

impl Toxics {
    /// A clean pipe.
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether no toxic is in force.
    pub fn is_clean(&self) -> bool {
        *self == Self::default()
    }
}
