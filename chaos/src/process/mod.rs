//! Real server processes the suite owns: a `redis-server` ([`RedisServer`])
//! and the MongoDB stand-in `secantusd-rs` ([`MongoServer`]), each on a free
//! loopback port with its own temporary data directory, and the faults a
//! process can suffer: kill -9, SIGSTOP / SIGCONT, restart on the same port
//! (with its data or empty).
//!
//! Both binaries are optional: starting one that is not installed is
//! [`ChaosError::BinaryMissing`]. Dropping the server kills the process
//! (SIGKILL) and removes its data directory once the last
//! [`ProcessHandle`] is gone.
//!
//! ```no_run
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use storestack_chaos::process::{redis_ping, DataOnRestart, RedisServer};
//!
//! let redis = RedisServer::start().await?;
//! let control = redis.handle(); // cloneable: give it to a fault schedule
//! control.pause()?; // SIGSTOP: connections hang
//! assert!(redis_ping(redis.addr(), Duration::from_millis(100)).await.is_err());
//! control.resume()?;
//! control.restart(DataOnRestart::Wipe).await?; // same port, empty
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # });
//! ```

mod wire;

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use parking_lot::Mutex;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::error::{ChaosError, Result};

pub use wire::{find_binary, free_port, mongo_ping, redis_ping};

/// How long a server may take to become ready.
const READY_PATIENCE: Duration = Duration::from_secs(20);
/// How long SIGTERM may take before SIGKILL.
const TERM_PATIENCE: Duration = Duration::from_secs(10);
/// Lines of output kept for error messages.
const LOG_LINES: usize = 40;

/// What a restart does with the server's data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataOnRestart {
    /// Keep it (MongoDB comes back with its data; Redis, which runs without
    /// persistence here, comes back empty either way).
    Keep,
    /// Empty it first: the server comes back with no data.
    Wipe,
}

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Redis,
    Mongo,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Redis => "redis-server",
            Kind::Mongo => "secantusd-rs",
        }
    }
}

/// The last lines a server printed, and the port it said it listens on.
#[derive(Debug, Default)]
struct Log {
    lines: Mutex<VecDeque<String>>,
    listening_port: Mutex<Option<u16>>,
}

impl Log {
    fn push(&self, line: String) {
        if let Some(rest) = line.split("listening on ").nth(1) {
            let port = rest
                .trim()
                .rsplit(':')
                .next()
                .and_then(|p| p.trim().parse().ok());
            if port.is_some() {
                *self.listening_port.lock() = port;
            }
        }
        let mut lines = self.lines.lock();
        if lines.len() == LOG_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    fn tail(&self) -> String {
        let lines = self.lines.lock();
        let start = lines.len().saturating_sub(5);
        lines
            .iter()
            .skip(start)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

async fn read_lines(from: impl AsyncRead + Unpin, log: Arc<Log>) {
    let mut lines = BufReader::new(from).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        log.push(line);
    }
}

struct Inner {
    kind: Kind,
    program: PathBuf,
    port: AtomicU16,
    data_dir: tempfile::TempDir,
    child: tokio::sync::Mutex<Option<Child>>,
    pid: AtomicI32,
    paused: AtomicBool,
    log: Arc<Log>,
    /// Redis only: append-only file, fsync on every write.
    durable: bool,
}

impl Inner {
    fn args(&self) -> Vec<OsString> {
        let port = self.port.load(Ordering::SeqCst).to_string();
        let dir = self.data_dir.path().as_os_str().to_owned();
        let strs = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        match self.kind {
            Kind::Redis => {
                let mut args = strs(&["--port", &port, "--bind", "127.0.0.1"]);
                args.extend(strs(&["--save", ""]));
                if self.durable {
                    args.extend(strs(&["--appendonly", "yes", "--appendfsync", "always"]));
                } else {
                    args.extend(strs(&["--appendonly", "no"]));
                }
                args.extend(strs(&["--daemonize", "no", "--dir"]));
                args.push(dir);
                args
            }
            Kind::Mongo => {
                let mut args = strs(&["--host", "127.0.0.1", "--port", &port]);
                args.extend(strs(&["--log-file-max", "1MB", "--cache-size", "64M"]));
                args.push("--storage-path".into());
                args.push(dir);
                args
            }
        }
    }

    fn kill_now(&self) {
        let pid = self.pid.swap(0, Ordering::SeqCst);
        if pid > 0 {
            // The child is still ours (not reaped), so the pid is too.
            let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.kill_now();
        if let Some(child) = self.child.get_mut().as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// Controls a server process; cheap to clone. Every operation that needs a
/// running process fails with [`ChaosError::NotRunning`] when it is not.
#[derive(Clone)]
pub struct ProcessHandle {
    inner: Arc<Inner>,
}

impl fmt::Debug for ProcessHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessHandle")
            .field("program", &self.inner.kind.name())
            .field("port", &self.port())
            .field("pid", &self.pid())
            .field("paused", &self.is_paused())
            .finish()
    }
}

impl ProcessHandle {
    async fn launch(kind: Kind, program: PathBuf, port: u16, durable: bool) -> Result<Self> {
        let data_dir = tempfile::Builder::new()
            .prefix("storestack-chaos-")
            .tempdir()
            .map_err(|e| ChaosError::io("cannot create a data directory", e))?;
        let handle = ProcessHandle {
            inner: Arc::new(Inner {
                kind,
                program,
                port: AtomicU16::new(port),
                data_dir,
                child: tokio::sync::Mutex::new(None),
                pid: AtomicI32::new(0),
                paused: AtomicBool::new(false),
                log: Arc::new(Log::default()),
                durable,
            }),
        };
        let mut child = handle.inner.child.lock().await;
        handle.spawn(&mut child).await?;
        drop(child);
        Ok(handle)
    }

    /// The server's program name.
    pub fn program(&self) -> &'static str {
        self.inner.kind.name()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.inner.port.load(Ordering::SeqCst)
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port()))
    }

    /// Its data directory.
    pub fn data_dir(&self) -> &Path {
        self.inner.data_dir.path()
    }

    /// Its process id, if it runs.
    pub fn pid(&self) -> Option<u32> {
        u32::try_from(self.inner.pid.load(Ordering::SeqCst))
            .ok()
            .filter(|&p| p > 0)
    }

    /// Whether it was paused (SIGSTOP) and not resumed.
    pub fn is_paused(&self) -> bool {
        self.inner.paused.load(Ordering::SeqCst)
    }

    /// The last lines it printed.
    pub fn log_tail(&self) -> String {
        self.inner.log.tail()
    }

    /// Whether the process runs (it may be paused).
    pub async fn is_running(&self) -> bool {
        let mut child = self.inner.child.lock().await;
        match child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                *child = None;
                self.inner.pid.store(0, Ordering::SeqCst);
                false
            }
            None => false,
        }
    }

    fn signal(&self, sig: Signal) -> Result<()> {
        let Some(pid) = self.pid() else {
            return Err(ChaosError::NotRunning {
                program: self.program().into(),
            });
        };
        signal::kill(Pid::from_raw(pid as i32), sig).map_err(|source| ChaosError::Signal {
            program: self.program().into(),
            signal: sig.as_str(),
            source,
        })
    }

    /// SIGSTOP: the process freezes; its connections stay open and every
    /// request hangs.
    pub fn pause(&self) -> Result<()> {
        self.signal(Signal::SIGSTOP)?;
        self.inner.paused.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// SIGCONT: a paused process carries on.
    pub fn resume(&self) -> Result<()> {
        self.signal(Signal::SIGCONT)?;
        self.inner.paused.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// kill -9, and waits until the process is gone. Does nothing if it is
    /// not running.
    pub async fn kill(&self) -> Result<()> {
        let mut child = self.inner.child.lock().await;
        self.kill_locked(&mut child).await
    }

    async fn kill_locked(&self, child: &mut Option<Child>) -> Result<()> {
        if let Some(mut c) = child.take() {
            self.inner.pid.store(0, Ordering::SeqCst);
            let _ = c.start_kill();
            c.wait()
                .await
                .map_err(|e| ChaosError::io(format!("cannot reap {}", self.program()), e))?;
        }
        self.inner.paused.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// SIGTERM, and waits until the process exits (SIGKILL after 10 s).
    pub async fn terminate(&self) -> Result<()> {
        let mut child = self.inner.child.lock().await;
        if let Some(c) = child.as_mut() {
            if self.is_paused() {
                self.signal(Signal::SIGCONT)?;
            }
            self.signal(Signal::SIGTERM)?;
            if tokio::time::timeout(TERM_PATIENCE, c.wait()).await.is_ok() {
                *child = None;
                self.inner.pid.store(0, Ordering::SeqCst);
            }
        }
        self.kill_locked(&mut child).await
    }

    /// Kills the process if it runs, then starts it again on the same port
    /// and waits until it answers.
    pub async fn restart(&self, data: DataOnRestart) -> Result<()> {
        let mut child = self.inner.child.lock().await;
        self.kill_locked(&mut child).await?;
        if data == DataOnRestart::Wipe {
            wipe(self.data_dir())?;
        }
        self.spawn(&mut child).await
    }

    async fn spawn(&self, slot: &mut Option<Child>) -> Result<()> {
        let inner = &self.inner;
        *inner.log.listening_port.lock() = None;
        let mut child = Command::new(&inner.program)
            .args(inner.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ChaosError::Spawn {
                program: inner.program.clone(),
                source,
            })?;
        if let Some(out) = child.stdout.take() {
            tokio::spawn(read_lines(out, inner.log.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(read_lines(err, inner.log.clone()));
        }
        let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
        inner.pid.store(pid, Ordering::SeqCst);
        inner.paused.store(false, Ordering::SeqCst);
        let ready = self.wait_ready(&mut child).await;
        *slot = Some(child);
        if ready.is_err() {
            self.kill_locked(slot).await?;
        }
        ready
    }

    async fn wait_ready(&self, child: &mut Child) -> Result<()> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                // Let the log readers catch the last words.
                tokio::time::sleep(Duration::from_millis(20)).await;
                return Err(ChaosError::Exited {
                    program: self.program().into(),
                    status: status.to_string(),
                    log_tail: self.log_tail(),
                });
            }
            let probe = Duration::from_millis(250);
            let answered = match self.inner.kind {
                Kind::Redis => redis_ping(self.addr(), probe).await.is_ok(),
                Kind::Mongo => {
                    let announced = *self.inner.log.listening_port.lock();
                    match announced {
                        Some(port) => {
                            self.inner.port.store(port, Ordering::SeqCst);
                            mongo_ping(self.addr(), probe).await.is_ok()
                        }
                        None => false,
                    }
                }
            };
            if answered {
                return Ok(());
            }
            if started.elapsed() > READY_PATIENCE {
                return Err(ChaosError::NotReady {
                    program: self.program().into(),
                    waited: started.elapsed(),
                    log_tail: self.log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn wipe(dir: &Path) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| ChaosError::io("cannot read the data directory", e))?;
    for entry in entries {
        let path = entry
            .map_err(|e| ChaosError::io("cannot read the data directory", e))?
            .path();
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(|e| ChaosError::io("cannot empty the data directory", e))?;
    }
    Ok(())
}

fn locate(kind: Kind, program: Option<PathBuf>) -> Result<PathBuf> {
    program
        .or_else(|| find_binary(kind.name()))
        .ok_or_else(|| ChaosError::BinaryMissing {
            program: kind.name().into(),
        })
}

/// A `redis-server` the suite owns: loopback only, a temporary `--dir`,
/// no persistence (`--save "" --appendonly no`), or, started with
/// [`start_durable`](Self::start_durable), an append-only file synced on
/// every write, so that a kill -9 loses no acknowledged write. Derefs to
/// its [`ProcessHandle`]; dropping it kills the process.
pub struct RedisServer {
    handle: ProcessHandle,
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedisServer").field(&self.handle).finish()
    }
}

impl RedisServer {
    /// Starts `redis-server` from `PATH` (or `~/.cargo/bin`) on a free port
    /// and waits until it answers PING.
    pub async fn start() -> Result<Self> {
        Self::start_program(None).await
    }

    /// Like [`start`](Self::start), with an append-only file synced on
    /// every write (`--appendonly yes --appendfsync always`): a restart
    /// with [`DataOnRestart::Keep`] comes back with every acknowledged
    /// write, even after kill -9.
    pub async fn start_durable() -> Result<Self> {
        Self::launch(None, true).await
    }

    /// Like [`start`](Self::start), with an explicit binary.
    pub async fn start_program(program: Option<PathBuf>) -> Result<Self> {
        Self::launch(program, false).await
    }

    async fn launch(program: Option<PathBuf>, durable: bool) -> Result<Self> {
        let program = locate(Kind::Redis, program)?;
        // The port was free when we looked; if another process takes it
        // before Redis binds, Redis exits and we try another.
        let mut last = None;
        for _ in 0..3 {
            let port = free_port().map_err(|e| ChaosError::io("cannot find a free port", e))?;
            match ProcessHandle::launch(Kind::Redis, program.clone(), port, durable).await {
                Ok(handle) => return Ok(RedisServer { handle }),
                Err(e @ ChaosError::Exited { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(ChaosError::NotRunning {
            program: Kind::Redis.name().into(),
        }))
    }

    /// A `redis://` URL for it.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr())
    }

    /// A handle that controls it.
    pub fn handle(&self) -> ProcessHandle {
        self.handle.clone()
    }
}

impl Deref for RedisServer {
    type Target = ProcessHandle;

    fn deref(&self) -> &ProcessHandle {
        &self.handle
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.handle.inner.kill_now();
    }
}

/// A `secantusd-rs` (MongoDB wire-compatible) the suite owns, on a port it
/// picks itself (`--port 0`), with a temporary storage path. Derefs to its
/// [`ProcessHandle`]; dropping it kills the process.
pub struct MongoServer {
    handle: ProcessHandle,
}

impl fmt::Debug for MongoServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MongoServer").field(&self.handle).finish()
    }
}

impl MongoServer {
    /// Starts `secantusd-rs` from `PATH` (or `~/.cargo/bin`) and waits until
    /// it prints that it listens and answers `ping`.
    pub async fn start() -> Result<Self> {
        Self::start_program(None).await
    }

    /// Like [`start`](Self::start), with an explicit binary.
    pub async fn start_program(program: Option<PathBuf>) -> Result<Self> {
        let program = locate(Kind::Mongo, program)?;
        let handle = ProcessHandle::launch(Kind::Mongo, program, 0, false).await?;
        Ok(MongoServer { handle })
    }

    /// A `mongodb://` URL for it (direct connection).
    pub fn url(&self) -> String {
        format!("mongodb://{}/?directConnection=true", self.addr())
    }

    /// A handle that controls it.
    pub fn handle(&self) -> ProcessHandle {
        self.handle.clone()
    }
}

impl Deref for MongoServer {
    type Target = ProcessHandle;

    fn deref(&self) -> &ProcessHandle {
        &self.handle
    }
}

impl Drop for MongoServer {
    fn drop(&mut self) {
        self.handle.inner.kill_now();
    }
}

#[cfg(test)]
mod tests;
