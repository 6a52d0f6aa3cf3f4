//! A TCP fault proxy, in the manner of toxiproxy: it sits between a client
//! (fred, the MongoDB driver) and a real server on loopback, forwards bytes
//! both ways, and applies [`Toxics`] that can be changed at runtime through
//! a cloneable [`ProxyHandle`]: down, reset_peer, blackhole, latency with
//! jitter, bandwidth, slow_close.
//!
//! The proxy listens on `127.0.0.1:0` by default; point the client at
//! [`FaultProxy::addr`]. Dropping the [`FaultProxy`] closes the listener and
//! every connection.
//!
//! Jitter is drawn from an RNG seeded from [`ProxyConfig::seed`] and the
//! connection's number, so delays replay for a seed (the bytes in a chunk,
//! and so the number of chunks, still depend on the kernel).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use storestack_chaos::proxy::{FaultProxy, Latency};
//!
//! // Any TCP server will do; here the proxy fronts another proxy's port.
//! let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let proxy = FaultProxy::start(upstream.local_addr()?).await?;
//! let handle = proxy.handle();
//! handle.latency(Some(Latency::new(Duration::from_millis(50))));
//! handle.down().await?; // new connections are now refused
//! assert!(tokio::net::TcpStream::connect(proxy.addr()).await.is_err());
//! handle.clear().await?; // every toxic off, listening again
//! assert!(tokio::net::TcpStream::connect(proxy.addr()).await.is_ok());
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod conn;
mod toxics;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::error::{ChaosError, Result};

pub use toxics::{Bandwidth, Direction, Latency, Toxics};

/// How long [`ProxyHandle::up`] tries to bind the listening port again.
const REBIND_PATIENCE: Duration = Duration::from_secs(5);

/// Where a proxy listens, where it forwards, and its seed.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ProxyConfig {
    /// The server to forward to.
    pub upstream: SocketAddr,
    /// Where to listen; port 0 picks a free port. Default `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// Seed of the jitter RNG. Default 0.
    pub seed: u64,
}

impl ProxyConfig {
    /// A proxy to `upstream`, on a free loopback port.
    pub fn new(upstream: SocketAddr) -> Self {
        ProxyConfig {
            upstream,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 0,
        }
    }

    /// Sets where to listen.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Sets the jitter seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// Counters of a proxy, since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections open now.
    pub open: u64,
    /// Connections the proxy reset.
    pub resets: u64,
    /// Connections the proxy could not open to the server.
    pub upstream_failures: u64,
    /// Bytes forwarded client to server.
    pub bytes_up: u64,
    /// Bytes forwarded server to client.
    pub bytes_down: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    open: AtomicU64,
    resets: AtomicU64,
    upstream_failures: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }
}

/// Changes a proxy's toxics at runtime; cheap to clone.
#[derive(Clone)]
pub struct ProxyHandle {
    addr: SocketAddr,
    upstream: SocketAddr,
    toxics: watch::Sender<Toxics>,
    listening: watch::Receiver<bool>,
    counters: Arc<Counters>,
}

impl fmt::Debug for ProxyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyHandle")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream)
            .field("toxics", &*self.toxics.borrow())
            .finish()
    }
}

impl ProxyHandle {
    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where it forwards.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// The toxics in force.
    pub fn toxics(&self) -> Toxics {
        self.toxics.borrow().clone()
    }

    /// Its counters.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ProxyStats {
            accepted: get(&c.accepted),
            open: get(&c.open),
            resets: get(&c.resets),
            upstream_failures: get(&c.upstream_failures),
            bytes_up: get(&c.bytes_up),
            bytes_down: get(&c.bytes_down),
        }
    }

    /// Changes the toxics with `f`. Open connections see the change at
    /// once; a change of [`Toxics::down`] reaches the listener shortly
    /// after: use [`apply`](Self::apply) to wait for it.
    pub fn update(&self, f: impl FnOnce(&mut Toxics)) {
        self.toxics.send_modify(f);
    }

    /// Replaces the toxics and waits until the listener is closed or
    /// listening again, as `toxics.down` says.
    pub async fn apply(&self, toxics: Toxics) -> Result<()> {
        let down = toxics.down;
        self.toxics.send_replace(toxics);
        self.wait_listening(!down).await
    }

    /// Closes the listener and every connection; returns once new
    /// connections are refused.
    pub async fn down(&self) -> Result<()> {
        self.update(|t| t.down = true);
        self.wait_listening(false).await
    }

    /// Listens again on the same address; returns once it does.
    pub async fn up(&self) -> Result<()> {
        self.update(|t| t.down = false);
        self.wait_listening(true).await
    }

    /// Removes every toxic and waits until the proxy listens.
    pub async fn clear(&self) -> Result<()> {
        self.apply(Toxics::none()).await
    }

    /// Holds every byte (or lets them flow again).
    pub fn blackhole(&self, on: bool) {
        self.update(|t| t.blackhole = on);
    }

    /// Resets every connection `after` it opens (or from now), or stops
    /// doing so.
    pub fn reset_peer(&self, after: Option<Duration>) {
        self.update(|t| t.reset_peer = after);
    }

    /// Sets or removes the latency toxic.
    pub fn latency(&self, latency: Option<Latency>) {
        self.update(|t| t.latency = latency);
    }

    /// Sets or removes the bandwidth limit.
    pub fn bandwidth(&self, bandwidth: Option<Bandwidth>) {
        self.update(|t| t.bandwidth = bandwidth);
    }

    /// Sets or removes the close delay.
    pub fn slow_close(&self, delay: Option<Duration>) {
        self.update(|t| t.slow_close = delay);
    }

    async fn wait_listening(&self, want: bool) -> Result<()> {
        let mut listening = self.listening.clone();
        let waited =
            tokio::time::timeout(REBIND_PATIENCE, listening.wait_for(|&l| l == want)).await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            // The accept loop is gone: the proxy was dropped, nothing listens.
            Ok(Err(_)) if !want => Ok(()),
            Ok(Err(_)) => Err(ChaosError::io(
                format!("proxy on {} was dropped", self.addr),
                std::io::Error::from(std::io::ErrorKind::NotConnected),
            )),
            Err(_) => Err(ChaosError::io(
                format!("proxy could not listen on {} again", self.addr),
                std::io::Error::from(std::io::ErrorKind::AddrInUse),
            )),
        }
    }
}

/// A running proxy; see the [module docs](self). Dropping it stops it.
#[derive(Debug)]
pub struct FaultProxy {
    handle: ProxyHandle,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// A clean proxy to `upstream` on a free loopback port.
    pub async fn start(upstream: SocketAddr) -> Result<Self> {
        Self::start_with(ProxyConfig::new(upstream)).await
    }

    /// A clean proxy as configured.
    pub async fn start_with(config: ProxyConfig) -> Result<Self> {
        let listener = bind(config.listen)
            .map_err(|e| ChaosError::io(format!("proxy cannot listen on {}", config.listen), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ChaosError::io("proxy has no local address", e))?;
        let (toxics_tx, toxics_rx) = watch::channel(Toxics::none());
        let (listening_tx, listening_rx) = watch::channel(true);
        let counters = Arc::new(Counters::default());
        let accept = AcceptLoop {
            addr,
            upstream: config.upstream,
            seed: config.seed,
            toxics: toxics_rx,
            listening: listening_tx,
            counters: counters.clone(),
        };
        let task = tokio::spawn(accept.run(listener));
        Ok(FaultProxy {
            handle: ProxyHandle {
                addr,
                upstream: config.upstream,
                toxics: toxics_tx,
                listening: listening_rx,
                counters,
            },
            task,
        })
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.handle.addr
    }

    /// A handle that changes its toxics.
    pub fn handle(&self) -> ProxyHandle {
        self.handle.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every
        // connection task; their sockets close.
        self.task.abort();
    }
}

/// A listener that can be bound again at once on the same port after
/// `down` (SO_REUSEADDR, so connections in TIME_WAIT do not block it).
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

struct AcceptLoop {
    addr: SocketAddr,
    upstream: SocketAddr,
    seed: u64,
    toxics: watch::Receiver<Toxics>,
    listening: watch::Sender<bool>,
    counters: Arc<Counters>,
}

impl AcceptLoop {
    async fn run(mut self, listener: TcpListener) {
        let mut listener = Some(listener);
        let mut conns = JoinSet::new();
        let mut next_conn: u64 = 0;
        loop {
            let down = self.toxics.borrow_and_update().down;
            if down {
                // Refuse: close the listening socket. Open connections see
                // `down` themselves and close.
                listener = None;
                self.listening.send_replace(false);
                if self.toxics.changed().await.is_err() {
                    return;
                }
                continue;
            }
            let Some(current) = listener.as_ref() else {
                match bind(self.addr) {
                    Ok(l) => {
                        listener = Some(l);
                        self.listening.send_replace(true);
                    }
                    Err(e) => {
                        tracing::warn!(addr = %self.addr, error = %e, "proxy cannot listen again, retrying");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                continue;
            };
            tokio::select! {
                accepted = current.accept() => match accepted {
                    Ok((client, _)) => {
                        Counters::bump(&self.counters.accepted, 1);
                        let conn = conn::Conn {
                            upstream: self.upstream,
                            toxics: self.toxics.clone(),
                            counters: self.counters.clone(),
                            seed: crate::seed::derive(self.seed, next_conn),
                        };
                        next_conn += 1;
                        conns.spawn(conn.serve(client));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "proxy accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                changed = self.toxics.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                // Reap finished connections so the set does not grow.
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
