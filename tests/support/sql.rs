//! SQL helpers: stores on the shared PostgreSQL and MariaDB servers and on
//! SQLite files, each on a table of its own; the sweep of tables that
//! interrupted runs left behind.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use storestack::clock::MockClock;
use storestack::limits::{Limits, MAX_KEY_LEN};
use storestack::StoreExt;
use storestack_sql::sqlx;
use storestack_sql::{Backend, MySqlStore, PgStore, SqlConfig, SqlStore, SqliteStore};
use storestack_testkit::{server_missing, Fixture, TimeControl};

/// The variable naming the PostgreSQL server under test.
pub const PG_URL_VAR: &str = "STORESTACK_POSTGRES_URL";
/// The variable naming the MySQL / MariaDB server under test.
pub const MYSQL_URL_VAR: &str = "STORESTACK_MYSQL_URL";

/// Every table a test creates starts with this.
pub const TABLE_PREFIX: &str = "sst_";

/// Test tables older than this are dropped at the start of a run.
const STALE_AFTER: Duration = Duration::from_secs(600);

/// Small enough that the oversized-value case stays fast, large enough
/// for the 1 MiB case.
pub const MAX_VALUE: usize = 2 * 1024 * 1024;

/// The PostgreSQL server: `STORESTACK_POSTGRES_URL`, by default the
/// machine's (`postgres://postgres@127.0.0.1:5432/test`, trust auth).
pub fn pg_url() -> String {
    std::env::var(PG_URL_VAR).unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The MariaDB server: `STORESTACK_MYSQL_URL`, by default the machine's
/// (`mysql://root@127.0.0.1:3306/test`).
pub fn mysql_url() -> String {
    std::env::var(MYSQL_URL_VAR).unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A table name no other test (of this or a concurrent run) uses:
/// `sst_<unix secs>_<pid>_<n>`; the time lets a later run sweep it.
pub fn unique_table() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{TABLE_PREFIX}{}_{}_{n}", unix_secs(), std::process::id())
}

/// A configuration on a fresh table, with a test's timeouts.
pub fn config(url: String) -> SqlConfig {
    SqlConfig::new(url)
        .table(unique_table())
        .max_value_len(MAX_VALUE)
        .acquire_timeout(Duration::from_secs(2))
        .statement_timeout(Duration::from_secs(5))
        .max_connections(4)
        .prune_interval(None)
}

/// Connects `config`, or reports the server missing (skips locally, panics
/// under `CI=true`). Sweeps stale test tables on the first connection of a
/// process.
pub async fn connect_or_skip<B: Backend>(config: SqlConfig) -> Option<SqlStore<B>> {
    match SqlStore::<B>::connect(config.clone()).await {
        Ok(store) => {
            sweep(&store).await;
            Some(store)
        }
        Err(err) if err.is_transient() => {
            let what = format!("{} at {}", err.store(), config.redacted_url());
            server_missing(&what, &err);
            None
        }
        Err(err) => panic!("bad test configuration: {err:?}"),
    }
}

/// A PostgreSQL store on a fresh table.
pub async fn pg(config: impl FnOnce(SqlConfig) -> SqlConfig) -> Option<PgStore> {
    connect_or_skip(config(self::config(pg_url()))).await
}

/// A MariaDB store on a fresh table.
pub async fn mysql(config: impl FnOnce(SqlConfig) -> SqlConfig) -> Option<MySqlStore> {
    connect_or_skip(config(self::config(mysql_url()))).await
}

/// A SQLite store on a fresh file (removed with the returned directory).
pub async fn sqlite_file(
    config: impl FnOnce(SqlConfig) -> SqlConfig,
) -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = SqlConfig::sqlite_file(dir.path().join("sessions.db"));
    let base = base
        .table("sessions")
        .max_value_len(MAX_VALUE)
        .prune_interval(None);
    let store = SqliteStore::connect(config(base))
        .await
        .expect("sqlite file");
    (store, dir)
}

/// A conformance fixture on `store`, whose clock is `clock`.
pub fn fixture(store: impl storestack::Store, clock: MockClock) -> Fixture {
    Fixture {
        store: store.shared(),
        time: TimeControl::Mock(clock),
        limits: Limits::default().max_value_len(MAX_VALUE),
        max_key_len: MAX_KEY_LEN,
    }
}

/// Drops the test tables older than [`STALE_AFTER`] (runs that were
/// interrupted, and every fixture's table, which no test drops), once per
/// process and database.
async fn sweep<B: Backend>(store: &SqlStore<B>) {
    use std::any::Any;
    use std::collections::HashSet;
    use std::sync::Mutex;
    static SWEPT: Mutex<Option<HashSet<std::any::TypeId>>> = Mutex::new(None);
    let first = SWEPT
        .lock()
        .unwrap()
        .get_or_insert_with(HashSet::new)
        .insert(store.pool().type_id());
    if !first {
        return;
    }
    let cutoff = unix_secs().saturating_sub(STALE_AFTER.as_secs());
    let pool: &dyn Any = store.pool();
    if let Some(pool) = pool.downcast_ref::<sqlx::PgPool>() {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() \
             AND tablename LIKE 'sst\\_%'",
        )
        .fetch_all(pool)
        .await
        .unwrap_or_default();
        for name in stale(names, cutoff) {
            let _ = sqlx::raw_sql(&format!("DROP TABLE IF EXISTS \"{name}\""))
                .execute(pool)
                .await;
        }
    } else if let Some(pool) = pool.downcast_ref::<sqlx::MySqlPool>() {
        let names: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT CAST(table_name AS BINARY) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name LIKE 'sst\\_%'",
        )
        .fetch_all(pool)
        .await
        .unwrap_or_default();
        let names = names
            .into_iter()
            .filter_map(|n| String::from_utf8(n).ok())
            .collect();
        for name in stale(names, cutoff) {
            let _ = sqlx::raw_sql(&format!("DROP TABLE IF EXISTS `{name}`"))
                .execute(pool)
                .await;
        }
    }
}

/// The names among `names` made before `cutoff` (unix seconds).
fn stale(names: Vec<String>, cutoff: u64) -> Vec<String> {
    names
        .into_iter()
        .filter(|name| {
            let secs = name
                .strip_prefix(TABLE_PREFIX)
                .and_then(|rest| rest.split('_').next());
            secs.and_then(|s| s.parse::<u64>().ok())
                .is_some_and(|s| s < cutoff)
        })
        .collect()
}

/// A PostgreSQL server a test owns: a fresh cluster (`initdb`) in a
/// temporary directory, on a free port, run with `pg_ctl` as the
/// `postgres` user when the tests run as root (PostgreSQL refuses root).
/// Killed and removed on drop.
#[derive(Debug)]
pub struct OwnPostgres {
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl OwnPostgres {
    /// The directory of `initdb` and `pg_ctl`: `$PG_BIN`, else the newest
    /// `/usr/lib/postgresql/*/bin`.
    pub fn bin_dir() -> Option<std::path::PathBuf> {
        if let Some(dir) = std::env::var_os("PG_BIN") {
            return Some(dir.into());
        }
        let mut dirs: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("pg_ctl").is_file() && p.join("initdb").is_file())
            .collect();
        dirs.sort_by_key(|p| {
            let version = p.parent().and_then(|v| v.file_name());
            version
                .and_then(|v| v.to_str()?.parse::<u32>().ok())
                .unwrap_or(0)
        });
        dirs.pop()
    }

    /// Creates and starts a cluster; `Err` says why it could not.
    pub fn start() -> Result<Self, String> {
        let bin = Self::bin_dir().ok_or("no initdb/pg_ctl under /usr/lib/postgresql")?;
        let dir = tempfile::Builder::new()
            .prefix("storestack-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let server = OwnPostgres {
            bin,
            dir,
            port: crate::redis::free_port(),
        };
        if is_root() {
            let chown = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(server.dir.path())
                .status()
                .map_err(|e| e.to_string())?;
            if !chown.success() {
                return Err("chown to the postgres user failed".into());
            }
        }
        server.run(
            "initdb",
            &[
                "-D",
                &server.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        server.pg_ctl_start()?;
        Ok(server)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Its URL (database `postgres`).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let exe = self.bin.join(tool);
        let mut cmd = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            std::process::Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .map_err(|e| format!("{tool}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{tool} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=16MB",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "start",
                "-w",
                "-t",
                "30",
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
            ],
        )
    }

    /// The postmaster's pid (first line of `postmaster.pid`).
    fn pid(&self) -> Option<i32> {
        let file = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid")).ok()?;
        file.lines().next()?.trim().parse().ok()
    }

    /// SIGKILLs the postmaster and every process it started, and waits
    /// until they are gone.
    pub fn kill(&self) {
        let Some(pid) = self.pid() else { return };
        let mut victims = children_of(pid);
        victims.push(pid);
        signal(&victims, "-KILL");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while victims
            .iter()
            .any(|p| std::path::Path::new(&format!("/proc/{p}")).exists() && !is_zombie(*p))
        {
            assert!(std::time::Instant::now() < deadline, "postgres did not die");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Freezes the server (SIGSTOP to the postmaster and its children):
    /// connections stay open, nothing answers.
    pub fn pause(&self) {
        signal(&self.processes(), "-STOP");
    }

    /// Thaws it (SIGCONT).
    pub fn resume(&self) {
        signal(&self.processes(), "-CONT");
    }

    fn processes(&self) -> Vec<i32> {
        let pid = self.pid().expect("server running");
        let mut all = children_of(pid);
        all.push(pid);
        all
    }

    /// Starts it again on the same port and data (crash recovery runs).
    pub fn restart(&self) -> Result<(), String> {
        let _ = std::fs::remove_file(self.dir.path().join("data/postmaster.pid"));
        self.pg_ctl_start()
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends `sig` to each of `pids` (already gone is fine).
fn signal(pids: &[i32], sig: &str) {
    for p in pids {
        let _ = std::process::Command::new("kill")
            .args([sig, &p.to_string()])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The pids whose parent is `pid`.
fn children_of(pid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s.rsplit_once(") ")?.1.to_owned();
                    rest.split_whitespace().nth(1)?.parse::<i32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
        .unwrap_or(true)
}
