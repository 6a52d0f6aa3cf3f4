//! Each toxic against a local echo server, on real sockets (the kernel's
//! clock: these cannot run on paused time), with short delays.

use std::io::ErrorKind;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout, Instant};

use super::*;

/// An echo server on a free loopback port: echoes until EOF, then closes.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

async fn proxied() -> FaultProxy {
    FaultProxy::start(echo_server().await).await.unwrap()
}

/// Writes `msg` and reads the same number of bytes back.
async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    s.write_all(msg).await?;
    let mut buf = vec![0; msg.len()];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}

const PATIENCE: Duration = Duration::from_secs(2);

#[tokio::test]
async fn clean_proxy_forwards_both_ways() {
    let proxy = proxied().await;
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut s, b"hello").await.unwrap(), b"hello");
    let stats = proxy.handle().stats();
    assert_eq!((stats.accepted, stats.open), (1, 1));
    assert_eq!((stats.bytes_up, stats.bytes_down), (5, 5));
    drop(s);
    timeout(PATIENCE, async {
        while proxy.handle().stats().open > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("connection closes after the client leaves");
}

#[tokio::test]
async fn latency_delays_every_response_and_keeps_order() {
    let proxy = proxied().await;
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    round_trip(&mut s, b"warm").await.unwrap();
    proxy.handle().latency(Some(
        Latency::new(Duration::from_millis(80)).jitter(Duration::from_millis(30)),
    ));
    let t = Instant::now();
    round_trip(&mut s, b"ping").await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(50),
        "{:?}",
        t.elapsed()
    );

    // Many small writes, each delayed by a different amount: still in order.
    let msgs: Vec<u8> = (0..200u32).map(|i| (i % 251) as u8).collect();
    for chunk in msgs.chunks(7) {
        s.write_all(chunk).await.unwrap();
        tokio::task::yield_now().await;
    }
    let mut back = vec![0; msgs.len()];
    timeout(PATIENCE, s.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, msgs);

    // Both ways: a round trip pays twice.
    proxy.handle().latency(Some(
        Latency::new(Duration::from_millis(60)).direction(Direction::Both),
    ));
    let t = Instant::now();
    round_trip(&mut s, b"twice").await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(120),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn blackhole_holds_bytes_until_lifted() {
    let proxy = proxied().await;
    let handle = proxy.handle();
    let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
    round_trip(&mut open, b"a").await.unwrap();
    handle.blackhole(true);
    // An open connection: the reply never comes.
    open.write_all(b"held").await.unwrap();
    let mut buf = [0; 4];
    let read = timeout(Duration::from_millis(200), open.read_exact(&mut buf)).await;
    assert!(read.is_err(), "read must time out under a blackhole");
    // A new connection is accepted and held too.
    let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
    fresh.write_all(b"new").await.unwrap();
    let mut buf3 = [0; 3];
    assert!(
        timeout(Duration::from_millis(100), fresh.read_exact(&mut buf3))
            .await
            .is_err()
    );
    // Lifted: what was held arrives; nothing was lost.
    handle.blackhole(false);
    timeout(PATIENCE, open.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"held");
    timeout(PATIENCE, fresh.read_exact(&mut buf3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf3, b"new");
}

async fn expect_reset(s: &mut TcpStream) {
    let mut buf = [0; 16];
    let got = timeout(PATIENCE, async {
        // The proxy may still deliver bytes before the reset.
        loop {
            match s.read(&mut buf).await {
                Ok(0) => return Ok(0),
                Ok(_) => continue,
                Err(e) => return Err(e),
            }
        }
    })
    .await
    .expect("the reset arrives");
    assert_eq!(
        got.map_err(|e| e.kind()),
        Err(ErrorKind::ConnectionReset),
        "expected ECONNRESET"
    );
}

#[tokio::test]
async fn reset_peer_resets_open_and_new_connections() {
    let proxy = proxied().await;
    let handle = proxy.handle();
    let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
    round_trip(&mut open, b"ok").await.unwrap();
    handle.reset_peer(Some(Duration::ZERO));
    expect_reset(&mut open).await;
    let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
    expect_reset(&mut fresh).await;
    assert!(handle.stats().resets >= 2);

    // With a delay: the connection works, then is reset.
    handle.reset_peer(Some(Duration::from_millis(150)));
    let mut delayed = TcpStream::connect(proxy.addr()).await.unwrap();
    let t = Instant::now();
    assert_eq!(round_trip(&mut delayed, b"alive").await.unwrap(), b"alive");
    expect_reset(&mut delayed).await;
    assert!(
        t.elapsed() >= Duration::from_millis(140),
        "{:?}",
        t.elapsed()
    );

    handle.clear().await.unwrap();
    let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut after, b"fine").await.unwrap(), b"fine");
}

#[tokio::test]
async fn down_refuses_and_closes_then_up_restores() {
    let proxy = proxied().await;
    let handle = proxy.handle();
    let addr = proxy.addr();
    let mut open = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut open, b"1").await.unwrap();

    handle.down().await.unwrap();
    let refused = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    // The open connection is closed (EOF or error, never an answer).
    let mut buf = [0; 1];
    let _ = open.write_all(b"2").await;
    let read = timeout(PATIENCE, open.read(&mut buf))
        .await
        .expect("closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

    handle.up().await.unwrap();
    let mut again = TcpStream::connect(addr).await.unwrap();
    assert_eq!(round_trip(&mut again, b"3").await.unwrap(), b"3");
}

#[tokio::test]
async fn bandwidth_paces_throughput() {
    let proxy = proxied().await;
    proxy.handle().bandwidth(Some(Bandwidth::new(50_000)));
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    let data = vec![7u8; 10_000];
    let t = Instant::now();
    assert_eq!(round_trip(&mut s, &data).await.unwrap(), data);
    // 10 kB at 50 kB/s: 200 ms.
    assert!(
        t.elapsed() >= Duration::from_millis(180),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn slow_close_delays_the_close() {
    let proxy = proxied().await;
    proxy.handle().slow_close(Some(Duration::from_millis(150)));
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    s.write_all(b"bye").await.unwrap();
    let t = Instant::now();
    s.shutdown().await.unwrap();
    let mut got = Vec::new();
    timeout(PATIENCE, s.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"bye");
    // Our close reaches the server 150 ms late, and its close reaches us
    // 150 ms after that.
    assert!(
        t.elapsed() >= Duration::from_millis(290),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn unreachable_server_resets_the_client() {
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = dead.local_addr().unwrap();
    drop(dead);
    let proxy = FaultProxy::start(addr).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    expect_reset(&mut s).await;
    assert_eq!(proxy.handle().stats().upstream_failures, 1);
}

#[tokio::test]
async fn dropping_the_proxy_closes_everything() {
    let proxy = proxied().await;
    let addr = proxy.addr();
    let mut s = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut s, b"x").await.unwrap();
    drop(proxy);
    let mut buf = [0; 1];
    let read = timeout(PATIENCE, s.read(&mut buf)).await.expect("closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // Give the runtime a moment to drop the listener.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(TcpStream::connect(addr).await.is_err());
}

#[test]
fn jitter_is_seeded_and_bounded() {
    use rand::SeedableRng;
    let l = Latency::new(Duration::from_millis(50)).jitter(Duration::from_millis(20));
    let draw = |seed| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..100).map(|_| l.sample(&mut rng)).collect::<Vec<_>>()
    };
    assert_eq!(draw(1), draw(1));
    assert_ne!(draw(1), draw(2));
    assert!(draw(3)
        .iter()
        .all(|d| *d >= Duration::from_millis(30) && *d <= Duration::from_millis(70)));
}
