//! Real processes: `redis-server` and `secantusd-rs`. When a binary is
//! missing, `storestack_testkit::server_missing` skips loudly (or fails
//! under CI=true).

use std::io::ErrorKind;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::proxy::{FaultProxy, Latency};

const QUICK: Duration = Duration::from_millis(300);

async fn redis() -> Option<RedisServer> {
    match RedisServer::start().await {
        Ok(r) => Some(r),
        Err(e) => {
            storestack_testkit::server_missing("redis-server", &e);
            None
        }
    }
}

async fn mongo() -> Option<MongoServer> {
    match MongoServer::start().await {
        Ok(m) => Some(m),
        Err(e) => {
            storestack_testkit::server_missing("secantusd-rs", &e);
            None
        }
    }
}

/// Sends one RESP command and returns the first reply line.
async fn resp(addr: SocketAddr, args: &[&str]) -> String {
    let mut cmd = format!("*{}\r\n", args.len());
    for a in args {
        cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(cmd.as_bytes()).await.unwrap();
    let mut buf = vec![0; 64];
    let n = tokio::time::timeout(QUICK, s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).trim_end().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pause_resume_kill_restart() {
    let Some(redis) = redis().await else { return };
    let addr = redis.addr();
    assert!(redis.url().starts_with("redis://127.0.0.1:"));
    redis_ping(addr, QUICK).await.unwrap();
    assert_eq!(resp(addr, &["SET", "k", "v"]).await, "+OK");
    assert_eq!(resp(addr, &["DBSIZE"]).await, ":1");

    // Paused: the kernel still accepts, nobody answers.
    redis.pause().unwrap();
    assert!(redis.is_paused());
    let err = redis_ping(addr, QUICK).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    redis.resume().unwrap();
    redis_ping(addr, QUICK).await.unwrap();

    // Killed: refused.
    redis.kill().await.unwrap();
    assert!(!redis.is_running().await);
    assert_eq!(
        redis_ping(addr, QUICK).await.unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
    assert!(matches!(redis.pause(), Err(ChaosError::NotRunning { .. })));

    // Restarted on the same port, empty.
    redis.restart(DataOnRestart::Wipe).await.unwrap();
    assert_eq!(redis.addr(), addr);
    redis_ping(addr, QUICK).await.unwrap();
    assert_eq!(resp(addr, &["DBSIZE"]).await, ":0");

    // Restart of a paused server works too (SIGKILL reaches it).
    redis.pause().unwrap();
    redis.restart(DataOnRestart::Keep).await.unwrap();
    redis_ping(addr, QUICK).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_server_kills_it() {
    let Some(redis) = redis().await else { return };
    let addr = redis.addr();
    let dir = redis.data_dir().to_path_buf();
    assert!(dir.is_dir());
    drop(redis);
    let gone = tokio::time::timeout(Duration::from_secs(5), async {
        while redis_ping(addr, QUICK).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "redis still answers after drop");
    assert!(!dir.exists(), "data directory removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_in_front_of_redis() {
    let Some(redis) = redis().await else { return };
    let proxy = FaultProxy::start(redis.addr()).await.unwrap();
    let handle = proxy.handle();
    redis_ping(proxy.addr(), QUICK).await.unwrap();

    handle.latency(Some(Latency::new(Duration::from_millis(60))));
    let t = Instant::now();
    redis_ping(proxy.addr(), Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(60),
        "{:?}",
        t.elapsed()
    );

    handle.blackhole(true);
    assert_eq!(
        redis_ping(proxy.addr(), QUICK).await.unwrap_err().kind(),
        ErrorKind::TimedOut
    );
    handle.clear().await.unwrap();
    redis_ping(proxy.addr(), QUICK).await.unwrap();

    // The server dies behind the proxy: the client is reset.
    redis.kill().await.unwrap();
    let err = redis_ping(proxy.addr(), QUICK).await.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_pause_resume_kill_restart() {
    let Some(mongo) = mongo().await else { return };
    let addr = mongo.addr();
    assert_ne!(addr.port(), 0, "the chosen port was read from its output");
    assert!(mongo.url().ends_with("/?directConnection=true"));
    mongo_ping(addr, QUICK).await.unwrap();

    mongo.pause().unwrap();
    assert_eq!(
        mongo_ping(addr, QUICK).await.unwrap_err().kind(),
        ErrorKind::TimedOut
    );
    mongo.resume().unwrap();
    mongo_ping(addr, Duration::from_secs(2)).await.unwrap();

    mongo.kill().await.unwrap();
    assert_eq!(
        mongo_ping(addr, QUICK).await.unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );

    mongo.restart(DataOnRestart::Keep).await.unwrap();
    assert_eq!(mongo.addr(), addr, "same port after restart");
    mongo_ping(addr, QUICK).await.unwrap();

    mongo.restart(DataOnRestart::Wipe).await.unwrap();
    mongo_ping(addr, QUICK).await.unwrap();
}

#[tokio::test]
async fn a_missing_binary_is_a_clear_error() {
    let err = RedisServer::start_program(Some("/nonexistent/redis-server".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, ChaosError::Spawn { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot start"), "{err}");
    let err = locate(Kind::Mongo, None);
    // Either installed (found) or a clear BinaryMissing error.
    if let Err(e) = err {
        assert!(matches!(e, ChaosError::BinaryMissing { .. }));
        assert!(e.to_string().contains("secantusd-rs is not installed"));
    }
}
