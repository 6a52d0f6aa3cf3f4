use std::fmt;
use std::time::{Duration, SystemTime};

use storestack::clock::MockClock;
use storestack::limits::{Limits, MAX_KEY_LEN};
use storestack::{SharedStore, Store, StoreExt};

/// How a fixture's time passes.
#[derive(Debug, Clone)]
pub enum TimeControl {
    /// The store reads this clock; the suite advances it.
    Mock(MockClock),
    /// The store lives in real time; the suite sleeps.
    Real,
}

/// A fresh, empty store under test and what the suite needs to know about
/// it.
pub struct Fixture {
    /// The store under test.
    pub store: SharedStore,
    /// How time passes for it.
    pub time: TimeControl,
    /// The value size limit it enforces.
    pub limits: Limits,
    /// The longest key it accepts: [`MAX_KEY_LEN`] for a backend, less for
    /// a store that adds a prefix.
    pub max_key_len: usize,
}

impl fmt::Debug for Fixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fixture")
            .field("store", &self.store.name())
            .field("time", &self.time)
            .field("limits", &self.limits)
            .field("max_key_len", &self.max_key_len)
            .finish()
    }
}

impl Fixture {
    /// A fixture whose store reads the given mock clock.
    pub fn with_mock_clock<S: Store>(make: impl FnOnce(MockClock) -> S) -> Self {
        let clock = MockClock::new();
        Fixture {
            store: make(clock.clone()).shared(),
            time: TimeControl::Mock(clock),
            limits: Limits::default(),
            max_key_len: MAX_KEY_LEN,
        }
    }

    /// A fixture in real time (a server with its own clock).
    pub fn real_time(store: impl Store) -> Self {
        Fixture {
            store: store.shared(),
            time: TimeControl::Real,
            limits: Limits::default(),
            max_key_len: MAX_KEY_LEN,
        }
    }

    /// Sets the value size limit the store enforces.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the longest key the store accepts.
    pub fn max_key_len(mut self, len: usize) -> Self {
        self.max_key_len = len;
        self
    }

    /// The time the store believes it is.
    pub fn now(&self) -> SystemTime {
        match &self.time {
            TimeControl::Mock(clock) => storestack::clock::Clock::now(clock),
            TimeControl::Real => SystemTime::now(),
        }
    }

    /// A lifetime short enough to wait out: 60 s of mock time, 400 ms of
    /// real time.
    pub fn short_ttl(&self) -> Duration {
        match self.time {
            TimeControl::Mock(_) => Duration::from_secs(60),
            TimeControl::Real => Duration::from_millis(400),
        }
    }

    /// A lifetime nothing in a test outlives.
    pub fn long_ttl(&self) -> Duration {
        Duration::from_secs(3600)
    }

    /// Lets `d` pass for the store.
    pub async fn pass(&self, d: Duration) {
        match &self.time {
            TimeControl::Mock(clock) => clock.advance(d),
            TimeControl::Real => tokio::time::sleep(d).await,
        }
    }

    /// Lets a [`short_ttl`](Self::short_ttl) record expire, with margin.
    pub async fn expire_short(&self) {
        let margin = match self.time {
            TimeControl::Mock(_) => Duration::from_secs(1),
            TimeControl::Real => Duration::from_millis(150),
        };
        self.pass(self.short_ttl() + margin).await;
    }
}

/// What a fixture factory does when its server is not reachable: under
/// `CI=true` it panics (a missing server must fail CI); otherwise it prints
/// a loud notice and returns `None`, which skips the case.
pub fn server_missing(what: &str, why: &dyn fmt::Display) -> Option<Fixture> {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{what} is required under CI=true but is not reachable: {why}");
    }
    eprintln!("\n*** SKIPPED: {what} is not reachable ({why}); this case did not run ***\n");
    None
}
