//! MongoDB helpers: the server URL, fresh stores on unique collections, and
//! a `secantusd-rs` process a test starts, kills and restarts itself.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use storestack_mongodb::{MongoConfig, MongoStore};
use storestack_testkit::{server_missing, Fixture};

/// The variable naming the server under test.
pub const URL_VAR: &str = "STORESTACK_MONGODB_URL";
/// Where the suite looks when the variable is not set.
pub const DEFAULT_URL: &str = "mongodb://127.0.0.1:27017/?directConnection=true";
/// The database the tests write to.
pub const DATABASE: &str = "storestack_tests";

/// The URL of the server under test.
pub fn url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A collection name no other test (in this run or an earlier one) uses.
pub fn unique_collection(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{tag}_{}_{nanos:x}_{n}", std::process::id())
}

/// A configuration for the server under test, on a fresh collection.
pub fn config(tag: &str) -> MongoConfig {
    MongoConfig::new(url())
        .database(DATABASE)
        .collection(unique_collection(tag))
        .server_selection_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
}

/// Connects `config`, or reports the server missing (skips locally, panics
/// under `CI=true`).
pub async fn connect_or_skip(config: MongoConfig) -> Option<MongoStore> {
    match MongoStore::connect(config.clone()).await {
        Ok(store) => Some(store),
        Err(err) => {
            let what = format!("MongoDB at {} (set {URL_VAR})", config.redacted_uri());
            server_missing(&what, &err);
            None
        }
    }
}

/// A conformance fixture: a fresh store on its own collection, in real
/// time.
pub async fn fixture() -> Option<Fixture> {
    let config = config("conformance");
    let limits = storestack::limits::Limits::default().max_value_len(config.max_value_len);
    let store = connect_or_skip(config).await?;
    Some(Fixture::real_time(store).limits(limits))
}

/// The `secantusd-rs` binary: `$SECANTUSD_BIN`, else on `PATH`, else in
/// `~/.cargo/bin`.
pub fn secantusd_bin() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("SECANTUSD_BIN") {
        return Some(PathBuf::from(bin));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("secantusd-rs"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let home = std::env::var_os("HOME")?;
        let p = Path::new(&home).join(".cargo/bin/secantusd-rs");
        p.is_file().then_some(p)
    })
}

/// A `secantusd-rs` process owned by a test, on a data directory that
/// outlives restarts and is removed on drop.
#[derive(Debug)]
pub struct Secantus {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    extra: Vec<String>,
    child: Option<Child>,
}

impl Secantus {
    /// Starts a server on a free port in a fresh data directory.
    pub fn start(bin: PathBuf) -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(unique_collection("storestack-secantus"));
        std::fs::create_dir_all(&dir)?;
        let mut server = Secantus {
            bin,
            dir,
            port: 0,
            extra: Vec::new(),
            child: None,
        };
        server.spawn()?;
        Ok(server)
    }

    /// [`start`](Self::start) on [`secantusd_bin`], or `None` after
    /// reporting the binary missing (a loud skip locally, a failure under
    /// `CI=true`).
    pub fn start_or_skip() -> Option<Self> {
        let Some(bin) = secantusd_bin() else {
            server_missing(
                "the secantusd-rs binary",
                &"not on PATH nor in ~/.cargo/bin",
            );
            return None;
        };
        Some(Self::start(bin).expect("start secantusd-rs"))
    }

    /// The port it listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its connection string.
    pub fn url(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }

    /// Kills it with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes it (SIGSTOP): connections stay open, nothing answers.
    /// Returns once every thread of the server is stopped (the signal
    /// takes effect asynchronously).
    pub fn pause(&self) {
        self.signal("-STOP");
        let pid = self.child.as_ref().expect("server running").id();
        let stopped = || -> std::io::Result<bool> {
            for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
                let stat = std::fs::read_to_string(task?.path().join("stat"))?;
                // The state follows the parenthesised command name.
                let state = stat.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
                if !matches!(state, Some("T" | "t")) {
                    return Ok(false);
                }
            }
            Ok(true)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !stopped().unwrap_or(false) {
            assert!(
                std::time::Instant::now() < deadline,
                "server threads did not stop"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Thaws it (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("server running").id();
        let status = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {sig} {pid} failed");
    }

    /// Starts it again on the same port and data directory.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.kill();
        self.spawn()
    }

    /// Stops it cleanly (SIGTERM, which checkpoints), then starts it again
    /// on the same port and data directory with `extra` arguments from now
    /// on (e.g. `--auth`).
    pub fn restart_with(&mut self, extra: &[&str]) -> std::io::Result<()> {
        self.signal("-TERM");
        if let Some(mut child) = self.child.take() {
            child.wait()?;
        }
        self.extra = extra.iter().map(|a| a.to_string()).collect();
        self.spawn()
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let mut child = Command::new(&self.bin)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--storage-path")
            .arg(self.dir.join("data"))
            .args(["--log-file-max", "1MB", "--cache-size", "128M"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Reads the banner, then keeps draining so the server never blocks
        // on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = line
                    .split_once("listening on ")
                    .and_then(|(_, addr)| addr.rsplit_once(':'))
                    .and_then(|(_, port)| port.trim().parse::<u16>().ok())
                {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(port);
                    }
                }
            }
        });
        self.child = Some(child);
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(port) => {
                self.port = port;
                Ok(())
            }
            Err(_) => {
                self.kill();
                Err(std::io::Error::other(
                    "secantusd-rs did not report listening within 30 s",
                ))
            }
        }
    }
}

impl Drop for Secantus {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
