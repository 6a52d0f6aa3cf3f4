//! [`ChaosError`]: what can go wrong while setting up or running the suite
//! (not what the store under test does: that is recorded in the history).

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// A `Result` whose error is a [`ChaosError`].
pub type Result<T, E = ChaosError> = std::result::Result<T, E>;

/// An error of the chaos suite itself: a server that cannot be started, a
/// proxy that cannot bind, a report that cannot be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChaosError {
    /// A server binary is not installed.
    #[error("{program} is not installed (looked in PATH and ~/.cargo/bin)")]
    BinaryMissing {
        /// The program looked for.
        program: String,
    },
    /// A server process could not be spawned.
    #[error("cannot start {program}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A server started but did not become ready in time.
    #[error("{program} did not become ready within {waited:?}; last output: {log_tail}")]
    NotReady {
        /// The program.
        program: String,
        /// How long the suite waited.
        waited: Duration,
        /// The last lines it printed.
        log_tail: String,
    },
    /// A server exited while the suite expected it to run.
    #[error("{program} exited unexpectedly ({status}); last output: {log_tail}")]
    Exited {
        /// The program.
        program: String,
        /// Its exit status.
        status: String,
        /// The last lines it printed.
        log_tail: String,
    },
    /// An operation needs a running server process and there is none.
    #[error("{program} is not running")]
    NotRunning {
        /// The program.
        program: String,
    },
    /// Sending a signal to a server process failed.
    #[error("cannot send {signal} to {program}")]
    Signal {
        /// The program.
        program: String,
        /// The signal's name.
        signal: &'static str,
        /// Why.
        #[source]
        source: nix::Error,
    },
    /// A socket, file or directory operation failed.
    #[error("{what}")]
    Io {
        /// What the suite was doing.
        what: String,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// A scenario could not build its stack or run a fault action.
    #[error("scenario {scenario}: {what}")]
    Scenario {
        /// The scenario.
        scenario: String,
        /// What failed.
        what: String,
        /// Why, if known.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// No scenario has this name.
    #[error("no scenario named {0:?} (see --list)")]
    UnknownScenario(String),
    /// The report could not be rendered.
    #[error("cannot render {what}: {message}")]
    Render {
        /// What was being rendered.
        what: String,
        /// The renderer's message.
        message: String,
    },
    /// The JSON report could not be encoded or decoded.
    #[error("json report")]
    Json(#[from] serde_json::Error),
}

impl ChaosError {
    /// An I/O error while doing `what`.
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        ChaosError::Io {
            what: what.into(),
            source,
        }
    }

    /// A scenario failure with an optional cause.
    pub fn scenario(
        scenario: impl Into<String>,
        what: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        ChaosError::Scenario {
            scenario: scenario.into(),
            what: what.into(),
            source,
        }
    }
}
