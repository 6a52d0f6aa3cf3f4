//! One proxied connection: two flows (client → server, server → client),
//! each a reader and a writer joined by a queue of timestamped chunks, and a
//! control future that closes or resets the connection when the toxics say
//! so.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{Counters, Direction, Toxics};

/// Largest chunk read at once.
const CHUNK: usize = 16 * 1024;
/// Chunks queued per flow (held by latency or a blackhole) before the
/// reader stops reading and TCP flow control pushes back.
const QUEUE: usize = 64;
/// A bandwidth limit writes slices of this fraction of a second.
const SLICES_PER_SEC: u64 = 50;

pub(super) struct Conn {
    pub(super) upstream: SocketAddr,
    pub(super) toxics: watch::Receiver<Toxics>,
    pub(super) counters: Arc<Counters>,
    pub(super) seed: u64,
}

/// Why a connection ended.
enum End {
    /// Both sides closed.
    Done,
    /// The proxy went down: close.
    Close,
    /// Reset the client (toxic, or the server side failed).
    Reset,
}

/// Counts the connection as open while it lives (also when aborted).
struct OpenGuard(Arc<Counters>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Conn {
    pub(super) async fn serve(self, mut client: TcpStream) {
        self.counters.open.fetch_add(1, Ordering::Relaxed);
        let _open = OpenGuard(self.counters.clone());
        let _ = client.set_nodelay(true);
        let end = tokio::select! {
            piped = pipe(&mut client, &self) => match piped {
                Ok(()) => End::Done,
                // The server refused or failed: the client sees a reset, as
                // it would talking to the server directly.
                Err(_) => End::Reset,
            },
            end = control(self.toxics.clone()) => end,
        };
        match end {
            End::Reset => {
                Counters::bump(&self.counters.resets, 1);
                // SO_LINGER 0: closing sends RST instead of FIN.
                if let Err(e) = client.set_zero_linger() {
                    tracing::warn!(error = %e, "proxy cannot set SO_LINGER 0");
                }
            }
            End::Done | End::Close => {}
        }
        drop(client);
    }
}

/// Resolves when the toxics say the connection must end.
async fn control(mut toxics: watch::Receiver<Toxics>) -> End {
    let mut reset_at: Option<Instant> = None;
    loop {
        let (down, reset_after) = {
            let t = toxics.borrow_and_update();
            (t.down, t.reset_peer)
        };
        if down {
            return End::Close;
        }
        reset_at = reset_after.map(|after| *reset_at.get_or_insert(Instant::now() + after));
        let reset = async {
            match reset_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = reset => return End::Reset,
            changed = toxics.changed() => {
                if changed.is_err() {
                    // The proxy is gone.
                    return End::Close;
                }
            }
        }
    }
}

/// Waits while a blackhole is in force.
async fn wait_clear(toxics: &mut watch::Receiver<Toxics>) {
    // An error means the proxy is gone; `control` ends the connection.
    let _ = toxics.wait_for(|t| !t.blackhole).await;
}

async fn pipe(client: &mut TcpStream, conn: &Conn) -> io::Result<()> {
    wait_clear(&mut conn.toxics.clone()).await;
    let mut server = match TcpStream::connect(conn.upstream).await {
        Ok(s) => s,
        Err(e) => {
            Counters::bump(&conn.counters.upstream_failures, 1);
            return Err(e);
        }
    };
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.split();
    let (server_read, server_write) = server.split();
    let up = flow(
        client_read,
        server_write,
        Direction::Upstream,
        conn.toxics.clone(),
        &conn.counters.bytes_up,
        crate::seed::derive(conn.seed, 0),
    );
    let down = flow(
        server_read,
        client_write,
        Direction::Downstream,
        conn.toxics.clone(),
        &conn.counters.bytes_down,
        crate::seed::derive(conn.seed, 1),
    );
    tokio::try_join!(up, down).map(|_| ())
}

/// Forwards one way until `from` ends, applying latency, blackhole,
/// bandwidth and slow close; then shuts `to` down.
async fn flow<R, W>(
    mut from: R,
    mut to: W,
    dir: Direction,
    toxics: watch::Receiver<Toxics>,
    bytes: &AtomicU64,
    seed: u64,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, mut queue) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE);
    let mut read_toxics = toxics.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let reader = async move {
        let mut buf = vec![0u8; CHUNK];
        let mut last_due = Instant::now();
        loop {
            wait_clear(&mut read_toxics).await;
            let n = from.read(&mut buf).await?;
            if n == 0 {
                // Dropping `tx` tells the writer.
                return Ok::<_, io::Error>(());
            }
            let latency = read_toxics
                .borrow()
                .latency
                .filter(|l| l.direction.covers(dir));
            let delay = latency.map_or(Duration::ZERO, |l| l.sample(&mut rng));
            // Never before the previous chunk: bytes stay in order.
            let due = (Instant::now() + delay).max(last_due);
            last_due = due;
            if tx.send((due, buf[..n].to_vec())).await.is_err() {
                return Ok(());
            }
        }
    };
    let mut write_toxics = toxics;
    let writer = async move {
        while let Some((due, chunk)) = queue.recv().await {
            tokio::time::sleep_until(due).await;
            wait_clear(&mut write_toxics).await;
            write_limited(&mut to, &chunk, &write_toxics, dir).await?;
            bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        let slow_close = write_toxics.borrow().slow_close;
        if let Some(delay) = slow_close {
            tokio::time::sleep(delay).await;
        }
        to.shutdown().await
    };
    tokio::try_join!(reader, writer).map(|_| ())
}

/// Writes `chunk`, in slices paced to the bandwidth limit if one applies.
async fn write_limited<W: AsyncWrite + Unpin>(
    to: &mut W,
    chunk: &[u8],
    toxics: &watch::Receiver<Toxics>,
    dir: Direction,
) -> io::Result<()> {
    let mut rest = chunk;
    while !rest.is_empty() {
        let limit = toxics
            .borrow()
            .bandwidth
            .filter(|b| b.direction.covers(dir));
        let Some(limit) = limit else {
            return to.write_all(rest).await;
        };
        let rate = limit.bytes_per_sec.max(1);
        let slice = usize::try_from(rate / SLICES_PER_SEC)
            .unwrap_or(usize::MAX)
            .clamp(1, rest.len());
        to.write_all(&rest[..slice]).await?;
        rest = &rest[slice..];
        tokio::time::sleep(Duration::from_secs_f64(slice as f64 / rate as f64)).await;
    }
    Ok(())
}
