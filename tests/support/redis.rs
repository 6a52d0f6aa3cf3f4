//! Redis helpers: stores on the shared server with unique prefixes, and
//! `redis-server` processes (single servers and a 3-primary cluster) that
//! the tests start themselves and that die with the test process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use storestack::{ErrorKind, ScanCursor, Store};
use storestack_redis::{RedisConfig, RedisStore};

/// The server the conformance suite runs on: `STORESTACK_REDIS_URL`, by
/// default `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    std::env::var("STORESTACK_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Every key a test writes on a shared server starts with this.
pub const TEST_PREFIX: &str = "sst:";

/// Test prefixes older than this are swept at the start of a run.
const STALE_AFTER: Duration = Duration::from_secs(600);

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A prefix no other test (of this or any concurrent run) uses:
/// `sst:<unix secs>:<pid>:<n>:<tag>`. The time lets a later run sweep
/// what an interrupted run left.
pub fn unique_prefix(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!(
        "{TEST_PREFIX}{}:{}:{n}:{tag}",
        unix_secs(),
        std::process::id()
    )
}

/// Connects, or reports the server missing (skip locally, fail under CI).
pub async fn connect_or_skip(config: RedisConfig, what: &str) -> Option<RedisStore> {
    match RedisStore::connect(config).await {
        Ok(store) => Some(store),
        Err(e) if e.is_transient() => {
            storestack_testkit::server_missing(what, &e);
            None
        }
        Err(e) => panic!("bad test configuration: {e:?}"),
    }
}

/// Removes the keys of test prefixes older than ten minutes from the
/// shared server (runs that were interrupted never cleared theirs). Keys
/// of concurrent runs are younger and stay. Once per process.
pub async fn sweep_stale_test_keys() {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            let config = RedisConfig::new(redis_url()).key_prefix(TEST_PREFIX);
            let Ok(store) = RedisStore::connect(config).await else {
                return;
            };
            let cutoff = unix_secs().saturating_sub(STALE_AFTER.as_secs());
            let mut cursor = ScanCursor::start();
            let mut stale = Vec::new();
            loop {
                let Ok(page) = store.scan("", cursor, 1000).await else {
                    return;
                };
                for key in page.keys {
                    let secs = key.split(':').next().and_then(|s| s.parse::<u64>().ok());
                    if secs.is_some_and(|s| s < cutoff) {
                        stale.push(key);
                    }
                }
                match page.next {
                    Some(next) => cursor = next,
                    None => break,
                }
            }
            for key in stale {
                let _ = store.delete(&key).await;
            }
        })
        .await;
}

/// A store on the shared server under a fresh prefix (with glob
/// metacharacters in it, so that prefix escaping is exercised for real).
pub async fn shared_store(
    tag: &str,
    configure: impl FnOnce(RedisConfig) -> RedisConfig,
) -> Option<RedisStore> {
    sweep_stale_test_keys().await;
    let prefix = format!("{}:[*?\\]:", unique_prefix(tag));
    let config = configure(RedisConfig::new(redis_url()).key_prefix(prefix));
    connect_or_skip(config, &format!("redis at {}", redis_url())).await
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `n` distinct free loopback ports.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

/// Whether a Redis server answers `PING` on `port` (`+PONG`, or `-NOAUTH`
/// from a server that wants a password).
pub fn pings(port: u16) -> bool {
    let Ok(mut conn) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
    if conn.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    conn.read_exact(&mut buf).is_ok() && (&buf == b"+PONG\r\n" || buf.starts_with(b"-NOAUTH"))
}

/// A shell script that runs `redis-server "$@"` and obeys one command per
/// line on stdin: `kill` (SIGKILL, then reply `dead`), `start` (start
/// again, reply the pid), `stop` / `cont` (SIGSTOP / SIGCONT, reply `ok`).
/// On end of input (the test process exited, however it exited) it kills
/// the server and removes its directory, so no server outlives its test.
const WRAPPER: &str = r#"
start() { redis-server "$@" >>"$DIR/server.log" 2>&1 & pid=$!; echo "$pid"; }
start "$@"
while read -r cmd; do
  case "$cmd" in
    kill) kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; echo dead ;;
    start) start "$@" ;;
    stop) kill -STOP "$pid"; echo ok ;;
    cont) kill -CONT "$pid"; echo ok ;;
  esac
done
kill -9 "$pid" 2>/dev/null
wait 2>/dev/null
rm -rf "$DIR"
"#;

/// A `redis-server` process of a test, on a port of its own.
pub struct RedisServer {
    /// The port it listens on.
    pub port: u16,
    dir: PathBuf,
    wrapper: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl std::fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .finish()
    }
}

impl RedisServer {
    /// [`start`](Self::start), or `None` after reporting `redis-server`
    /// missing (a loud skip locally, a failure under `CI=true`).
    pub fn start_or_skip(port: u16, extra: &[&str]) -> Option<Self> {
        match Self::start(port, extra) {
            Ok(server) => Some(server),
            Err(e) => {
                storestack_testkit::server_missing("redis-server on PATH", &e);
                None
            }
        }
    }

    /// Starts a server with no persistence on `port`, plus `extra` arguments,
    /// and waits until it answers.
    pub fn start(port: u16, extra: &[&str]) -> std::io::Result<Self> {
        let dir = Self::new_dir()?;
        let port_arg = port.to_string();
        let dir_arg = dir.to_string_lossy().into_owned();
        let mut args = vec![
            "--port",
            &port_arg,
            "--bind",
            "127.0.0.1",
            "--dir",
            &dir_arg,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ];
        args.extend_from_slice(extra);
        Self::spawn(port, dir, &args)
    }

    /// Starts a Redis Sentinel on `port` that monitors the primary at
    /// `primary_port` as `service`.
    pub fn start_sentinel(port: u16, primary_port: u16, service: &str) -> std::io::Result<Self> {
        let dir = Self::new_dir()?;
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor {service} 127.0.0.1 {primary_port} 1\n",
                dir.display()
            ),
        )?;
        let conf = conf.to_string_lossy().into_owned();
        Self::spawn(port, dir, &[&conf, "--sentinel"])
    }

    fn new_dir() -> std::io::Result<PathBuf> {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "storestack-redis-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    fn spawn(port: u16, dir: PathBuf, args: &[&str]) -> std::io::Result<Self> {
        let mut wrapper = Command::new("sh")
            .arg("-c")
            .arg(WRAPPER)
            .arg("sh")
            .args(args)
            .env("DIR", &dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = wrapper.stdin.take();
        let stdout = BufReader::new(wrapper.stdout.take().expect("piped stdout"));
        let mut server = RedisServer {
            port,
            dir,
            wrapper,
            stdin,
            stdout,
        };
        server.read_line()?;
        server.wait_ready()?;
        Ok(server)
    }

    fn read_line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        if line.is_empty() {
            return Err(std::io::Error::other("server wrapper exited"));
        }
        Ok(line.trim().to_owned())
    }

    fn command(&mut self, cmd: &str) -> std::io::Result<String> {
        let stdin = self.stdin.as_mut().expect("wrapper stdin");
        writeln!(stdin, "{cmd}")?;
        stdin.flush()?;
        self.read_line()
    }

    fn wait_ready(&self) -> std::io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if pings(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        Err(std::io::Error::other(format!(
            "redis-server on port {} did not start: {log}",
            self.port
        )))
    }

    /// `kill -9` the server; returns once the process is gone.
    pub fn kill9(&mut self) {
        assert_eq!(self.command("kill").expect("kill"), "dead");
    }

    /// Starts the server again on the same port and waits until it answers.
    pub fn restart(&mut self) {
        self.command("start").expect("restart");
        self.wait_ready().expect("restarted server answers");
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&mut self) {
        assert_eq!(self.command("stop").expect("stop"), "ok");
    }

    /// Thaws a paused server.
    pub fn resume(&mut self) {
        assert_eq!(self.command("cont").expect("cont"), "ok");
    }

    /// The server's directory (logs, cluster config).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // End of input: the wrapper kills the server and cleans up.
        drop(self.stdin.take());
        let _ = self.wrapper.wait();
    }
}

/// Runs `redis-cli` with `args`; its stdout.
pub fn redis_cli(args: &[&str]) -> std::io::Result<String> {
    let out = Command::new("redis-cli")
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "redis-cli {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A 3-primary Redis Cluster of processes started by the test.
#[derive(Debug)]
pub struct Cluster {
    nodes: Vec<RedisServer>,
}

impl Cluster {
    /// Starts 3 cluster-enabled servers on free ports, joins them with
    /// `redis-cli --cluster create` and waits for `cluster_state:ok`.
    pub fn start() -> std::io::Result<Self> {
        let ports = free_ports(6);
        let mut nodes = Vec::new();
        for i in 0..3 {
            let bus = ports[3 + i].to_string();
            nodes.push(RedisServer::start(
                ports[i],
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-port",
                    &bus,
                    "--cluster-node-timeout",
                    "2000",
                ],
            )?);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addrs.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        redis_cli(&args)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &nodes {
            let port = node.port.to_string();
            loop {
                let info = redis_cli(&["-p", &port, "cluster", "info"])?;
                if info.contains("cluster_state:ok") {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(std::io::Error::other(format!(
                        "cluster did not reach state ok: {info}"
                    )));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(Cluster { nodes })
    }

    /// `redis://` URLs of the nodes.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }
}

/// A primary and a sentinel that monitors it as `"primary"`.
#[derive(Debug)]
pub struct Sentinel {
    /// The monitored primary.
    pub primary: RedisServer,
    /// The sentinel.
    pub sentinel: RedisServer,
}

impl Sentinel {
    /// The service name the sentinel knows the primary by.
    pub const SERVICE: &'static str = "primary";

    /// Starts a primary and a sentinel; waits until the sentinel reports
    /// the primary's address.
    pub fn start() -> std::io::Result<Self> {
        let ports = free_ports(2);
        let primary = RedisServer::start(ports[0], &[])?;
        let sentinel = RedisServer::start_sentinel(ports[1], ports[0], Self::SERVICE)?;
        let port = ports[1].to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let addr = redis_cli(&[
                "-p",
                &port,
                "sentinel",
                "get-master-addr-by-name",
                Self::SERVICE,
            ])?;
            if addr.contains(&ports[0].to_string()) {
                return Ok(Sentinel { primary, sentinel });
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::other(format!(
                    "sentinel does not know the primary: {addr}"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One primary + sentinel pair shared by every test of the process.
pub async fn shared_sentinel() -> Result<&'static Sentinel, String> {
    static SENTINEL: OnceLock<Result<Sentinel, String>> = OnceLock::new();
    tokio::task::spawn_blocking(|| {
        SENTINEL
            .get_or_init(|| Sentinel::start().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    })
    .await
    .expect("sentinel start task")
}

/// One cluster shared by every test of the process, started on first use.
/// Its servers die with the process (see [`RedisServer`]).
pub async fn shared_cluster() -> Result<&'static Cluster, String> {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    tokio::task::spawn_blocking(|| {
        CLUSTER
            .get_or_init(|| Cluster::start().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    })
    .await
    .expect("cluster start task")
}

/// Asserts that `result` is a transient error (`Unavailable` or `Timeout`).
pub fn assert_transient<T: std::fmt::Debug>(what: &str, result: &storestack::Result<T>) {
    match result {
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
            "{what}: expected a transient error, got {e:?}"
        ),
        Ok(v) => panic!("{what}: expected a transient error, got Ok({v:?})"),
    }
}
