//! [`RedisStore`]: the [`Store`] contract on Redis commands.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use fred::bytes_utils::Str;
use fred::clients::{Pool, WithOptions};
use fred::interfaces::{ClientLike, ClusterInterface, KeysInterface};
use fred::types::config::{Options, Server};
use fred::types::{ClusterHash, CustomCommand, Expiration, Key, SetOptions, Value};
use storestack::limits::{self, Limits};
use storestack::{
    Condition, ErrorKind, Op, Record, Result, ScanCursor, ScanPage, Store, StoreError, Versioned,
};

use crate::config::RedisConfig;
use crate::error::{self, STORE_NAME};
use crate::scan::{self, Position};

/// Keys examined per `SCAN` call by `len` and `clear`.
const WALK_COUNT: u32 = 1000;

/// The largest `COUNT` a `scan` page asks for.
const MAX_SCAN_COUNT: usize = 10_000;

/// A Lua script run with `EVALSHA`, falling back to `EVAL` when the server
/// does not know it (after a restart or `SCRIPT FLUSH`).
struct Script {
    body: &'static str,
    sha: Str,
}

impl Script {
    fn new(body: &'static str) -> Self {
        Script {
            body,
            sha: fred::util::sha1_hash(body).into(),
        }
    }
}

/// The value and absolute expiry (ms since the epoch, -1 for none) of a
/// key, read atomically in one round trip; nil for a missing key.
static GET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local v = redis.call('GET', KEYS[1])\n\
         if not v then return false end\n\
         return {v, redis.call('PEXPIRETIME', KEYS[1])}",
    )
});

/// Removes a key's expiry and says whether the key exists (`PERSIST`
/// alone says 0 both for a missing key and for one without expiry).
static PERSIST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('PERSIST', KEYS[1]) == 1 then return 1 end\n\
         return redis.call('EXISTS', KEYS[1])",
    )
});

/// A compare-and-set on one key: writes `ARGV[2]` if the key holds exactly
/// the bytes `ARGV[1]`, with expiry `ARGV[3]` (`PXAT` ms; `-1`: none; `0`:
/// already expired, so the key is removed); says whether it wrote. The
/// stored bytes are compared as they are, not hashed (see the crate docs).
static SET_IF_MATCHES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n\
         local at = tonumber(ARGV[3])\n\
         if at == 0 then redis.call('DEL', KEYS[1])\n\
         elseif at < 0 then redis.call('SET', KEYS[1], ARGV[2])\n\
         else redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3]) end\n\
         return 1",
    )
});

/// What a record's expiry means for Redis at the time of a write.
enum Ttl {
    Never,
    /// `PXAT` / `PEXPIREAT` milliseconds.
    At(i64),
    /// Already expired: the write removes the key.
    Past,
}

impl Ttl {
    fn of(expires_at: Option<SystemTime>) -> Ttl {
        match expires_at {
            None => Ttl::Never,
            Some(at) if storestack::store::is_expired(Some(at), SystemTime::now()) => Ttl::Past,
            Some(at) => Ttl::At(limits::unix_millis(at)),
        }
    }
}

/// A [`Store`] on Redis. See the [crate docs](crate).
///
/// Cheap to clone: clones share the connections, which close when the
/// last clone is dropped.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// The pool with fail-fast options on every command.
    client: WithOptions<Pool>,
    prefix: String,
    limits: Limits,
    clustered: bool,
    config: RedisConfig,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Close the connections and stop fred's routing tasks, which
        // would otherwise live as long as the runtime.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let pool = self.pool.clone();
            rt.spawn(async move {
                let _ = pool.quit().await;
            });
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.inner.config)
            .field("connected", &self.is_connected())
            .finish()
    }
}

fn fail_fast_options(node: Option<Server>) -> Options {
    Options {
        // Never queue a command while disconnected, and never replay one
        // that was in flight when its connection died: the caller gets an
        // error at once and decides (Retry, Fallback) what to do.
        fail_fast: true,
        cluster_node: node,
        ..Options::default()
    }
}

impl RedisStore {
    /// Connects to Redis as `config` says.
    ///
    /// Fails with `InvalidInput` for a bad configuration, with
    /// `Unavailable` / `Timeout` if the server cannot be reached (unless
    /// [`lazy_connect`](RedisConfig::lazy_connect) is set), with
    /// `PermissionDenied` for credentials the server refuses, and with
    /// `Misconfigured` for a failed TLS handshake or a server older than
    /// Redis 7.0 (see the [error mapping](crate::error)). After that the
    /// store reconnects by itself whenever a connection is lost.
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        let builder = crate::connect::builder(&config)?;
        let pool = builder
            .build_pool(config.pool_size)
            .map_err(|e| error::map(Op::Connect, e))?;
        if config.lazy_connect {
            pool.connect();
        } else {
            crate::connect::init(&pool, &config).await?;
        }
        // `get` needs PEXPIRETIME (7.0). fred reads the version on
        // connect; a lazy store learns it too late to refuse here.
        if let Some(version) = pool.next().server_version() {
            if version.major < 7 {
                let _ = pool.quit().await;
                return Err(StoreError::new(ErrorKind::Misconfigured, Op::Connect)
                    .with_store(STORE_NAME)
                    .with_message(format!(
                        "redis {version} is too old: storestack-redis needs 7.0 or later"
                    )));
            }
        }
        let client = pool.with_options(&fail_fast_options(None));
        Ok(RedisStore {
            inner: Arc::new(Inner {
                clustered: builder
                    .get_config()
                    .is_some_and(|c| c.server.is_clustered()),
                client,
                pool,
                prefix: config.key_prefix.clone(),
                limits: config.value_limits(),
                config,
            }),
        })
    }

    /// The fred connection pool, for what the `Store` trait does not
    /// cover (pub/sub, health checks). Keys of this store carry
    /// [`key_prefix`](Self::key_prefix).
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The prefix of every key of this store.
    pub fn key_prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The value size limit.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// The configuration the store was built from.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// Whether at least one pooled connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.inner.pool.clients().iter().any(|c| c.is_connected())
    }

    fn key(&self, op: Op, key: &str) -> Result<Key> {
        limits::check_key(op, key)?;
        let mut full = String::with_capacity(self.inner.prefix.len() + key.len());
        full.push_str(&self.inner.prefix);
        full.push_str(key);
        Ok(full.into())
    }

    async fn eval(&self, op: Op, script: &Script, key: Key) -> Result<Value> {
        self.eval_args(op, script, key, Vec::new()).await
    }

    /// [`eval`](Self::eval) with arguments after the key.
    async fn eval_args(
        &self,
        op: Op,
        script: &Script,
        key: Key,
        argv: Vec<Value>,
    ) -> Result<Value> {
        // Sent as custom commands: fred's `WithOptions` does not implement
        // `LuaInterface`, so `evalsha` on it would reach the pool through
        // `Deref` and silently drop the fail-fast option. The key is
        // argument 2 (`EVALSHA sha 1 key`): route by its slot.
        static EVALSHA: LazyLock<CustomCommand> =
            LazyLock::new(|| CustomCommand::new_static("EVALSHA", ClusterHash::Offset(2), false));
        static EVAL: LazyLock<CustomCommand> =
            LazyLock::new(|| CustomCommand::new_static("EVAL", ClusterHash::Offset(2), false));
        let client = &self.inner.client;
        let args = |first: Value| {
            let mut args = Vec::with_capacity(3 + argv.len());
            args.extend([first, Value::Integer(1), Value::Bytes(key.inner().clone())]);
            args.extend(argv.iter().cloned());
            args
        };
        let reply = client
            .custom::<Value, Value>(EVALSHA.clone(), args(script.sha.clone().into()))
            .await;
        match reply {
            Err(e) if e.details().starts_with("NOSCRIPT") => {
                client
                    .custom::<Value, Value>(EVAL.clone(), args(Value::from_static_str(script.body)))
                    .await
            }
            reply => reply,
        }
        .map_err(|e| error::map(op, e))
    }

    async fn unlink(&self, op: Op, key: Key) -> Result<bool> {
        let n: i64 = self
            .inner
            .client
            .unlink(key)
            .await
            .map_err(|e| error::map(op, e))?;
        Ok(n > 0)
    }

    /// The primaries of the cluster, in scan order.
    fn primaries(&self, op: Op) -> Result<Vec<Server>> {
        let mut nodes = self
            .inner
            .pool
            .next()
            .cached_cluster_state()
            .map(|state| state.unique_primary_nodes())
            .unwrap_or_default();
        if nodes.is_empty() {
            return Err(StoreError::unavailable(op)
                .with_store(STORE_NAME)
                .with_message("the cluster layout is not known yet"));
        }
        scan::sort_nodes(&mut nodes);
        Ok(nodes)
    }

    /// One `SCAN` page from `position` (`None`: the start). Returns the
    /// full keys found and where the next page starts (`None`: done).
    async fn scan_page(
        &self,
        op: Op,
        pattern: &str,
        position: Option<Position>,
        count: u32,
    ) -> Result<(Vec<Bytes>, Option<Position>)> {
        let (node, cursor, nodes) = if self.inner.clustered {
            let nodes = self.primaries(op)?;
            let (node, cursor) = match position {
                None => (nodes[0].clone(), 0),
                Some(Position { node, cursor }) => {
                    let (host, port) = node.ok_or_else(|| error::unexpected_reply(op))?;
                    match scan::node_at(&nodes, &host, port) {
                        Some((n, true)) => (n.clone(), cursor),
                        Some((n, false)) => (n.clone(), 0),
                        None => return Ok((Vec::new(), None)),
                    }
                }
            };
            (Some(node), cursor, nodes)
        } else {
            (None, position.map_or(0, |p| p.cursor), Vec::new())
        };
        let reply: Value = self
            .inner
            .pool
            .with_options(&fail_fast_options(node.clone()))
            .scan_page(cursor.to_string(), pattern, Some(count), None)
            .await
            .map_err(|e| error::map(op, e))?;
        let (next, keys) = parse_scan_reply(reply).ok_or_else(|| error::unexpected_reply(op))?;
        let next = match (next, node) {
            (0, None) => None,
            (c, None) => Some(Position {
                node: None,
                cursor: c,
            }),
            (0, Some(node)) => scan::node_after(&nodes, &node).map(|n| Position {
                node: Some((n.host.to_string(), n.port)),
                cursor: 0,
            }),
            (c, Some(node)) => Some(Position {
                node: Some((node.host.to_string(), node.port)),
                cursor: c,
            }),
        };
        Ok((keys, next))
    }

    /// Calls `f` with every page of this store's full keys.
    async fn walk<F, Fut>(&self, op: Op, mut f: F) -> Result<()>
    where
        F: FnMut(Vec<Bytes>) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let pattern = scan::match_pattern(&self.inner.prefix);
        let mut position = None;
        loop {
            let (keys, next) = self.scan_page(op, &pattern, position, WALK_COUNT).await?;
            if !keys.is_empty() {
                f(keys).await?;
            }
            match next {
                Some(next) => position = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// Removes full keys in one round trip (one `UNLINK` per hash slot in
    /// a cluster, pipelined).
    async fn unlink_batch(&self, keys: Vec<Bytes>) -> Result<()> {
        let op = Op::Clear;
        let map = |e| error::map(op, e);
        if !self.inner.clustered {
            let _: i64 = self.inner.client.unlink(keys).await.map_err(map)?;
            return Ok(());
        }
        let groups = fred::util::group_by_hash_slot(keys).map_err(map)?;
        let pipeline = self.inner.pool.next().pipeline();
        let pipeline = pipeline.with_options(&fail_fast_options(None));
        for keys in groups.into_values() {
            let () = pipeline.unlink(Vec::from(keys)).await.map_err(map)?;
        }
        let replies: Vec<Value> = pipeline.all().await.map_err(map)?;
        debug_assert!(!replies.is_empty());
        Ok(())
    }
}

/// `[cursor, [key, …]]` → `(cursor, keys)`.
fn parse_scan_reply(reply: Value) -> Option<(u64, Vec<Bytes>)> {
    let Value::Array(mut parts) = reply else {
        return None;
    };
    if parts.len() != 2 {
        return None;
    }
    let keys = parts.pop()?;
    let cursor = parts.pop()?.as_string()?.parse().ok()?;
    let keys = match keys {
        Value::Array(keys) => keys
            .into_iter()
            .map(Value::into_bytes)
            .collect::<Option<Vec<_>>>()?,
        _ => return None,
    };
    Some((cursor, keys))
}

/// `nil` → `None`; `[value, pexpiretime]` → the record.
fn parse_get_reply(reply: Value) -> Option<Option<Record>> {
    let mut parts = match reply {
        Value::Null => return Some(None),
        Value::Array(parts) if parts.len() == 2 => parts,
        _ => return None,
    };
    let ms = parts.pop()?.as_i64()?;
    let value = parts.pop()?.into_bytes()?;
    let expires_at = match ms {
        // -1: no expiry.
        -1 => None,
        // -2: the key vanished between GET and PEXPIRETIME, which a
        // script rules out; treat it as absent all the same.
        ms if ms < 0 => return Some(None),
        ms => Some(UNIX_EPOCH + Duration::from_millis(ms as u64)),
    };
    Some(Some(Record { value, expires_at }))
}

#[async_trait]
impl Store for RedisStore {
    fn name(&self) -> &str {
        STORE_NAME
    }

    async fn get(&self, key: &str) -> Result<Option<Record>> {
        let key = self.key(Op::Get, key)?;
        let reply = self.eval(Op::Get, &GET, key).await?;
        let record = parse_get_reply(reply).ok_or_else(|| error::unexpected_reply(Op::Get))?;
        // Redis expires keys by its own clock; the contract speaks of the
        // caller's. Never hand out a record the caller sees as expired.
        Ok(record.filter(|r| !r.is_expired_at(SystemTime::now())))
    }

    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.inner.limits.check_write(Op::Set, key, &record)?;
        let key = self.key(Op::Set, key)?;
        let expire = match Ttl::of(record.expires_at) {
            Ttl::Past => return self.unlink(Op::Set, key).await.map(drop),
            Ttl::Never => None,
            Ttl::At(ms) => Some(Expiration::PXAT(ms)),
        };
        self.inner
            .client
            .set::<(), _, _>(key, record.value, expire, None, false)
            .await
            .map_err(|e| error::map(Op::Set, e))
    }

    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.inner.limits.check_write(Op::Create, key, &record)?;
        let key = self.key(Op::Create, key)?;
        let expire = match Ttl::of(record.expires_at) {
            Ttl::Past => {
                // Stores nothing; "created" iff no live record was there.
                let n: i64 = self
                    .inner
                    .client
                    .exists(key)
                    .await
                    .map_err(|e| error::map(Op::Create, e))?;
                return Ok(n == 0);
            }
            Ttl::Never => None,
            Ttl::At(ms) => Some(Expiration::PXAT(ms)),
        };
        let reply: Value = self
            .inner
            .client
            .set(key, record.value, expire, Some(SetOptions::NX), false)
            .await
            .map_err(|e| error::map(Op::Create, e))?;
        Ok(!reply.is_null())
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let key = self.key(Op::Delete, key)?;
        self.unlink(Op::Delete, key).await
    }

    async fn touch(&self, key: &str, expires_at: Option<SystemTime>) -> Result<bool> {
        let key = self.key(Op::Touch, key)?;
        limits::check_expiry(Op::Touch, expires_at)?;
        let n = match Ttl::of(expires_at) {
            Ttl::Past => return self.unlink(Op::Touch, key).await,
            Ttl::Never => self
                .eval(Op::Touch, &PERSIST, key)
                .await?
                .as_i64()
                .ok_or_else(|| error::unexpected_reply(Op::Touch))?,
            Ttl::At(ms) => self
                .inner
                .client
                .pexpire_at::<i64, _>(key, ms, None)
                .await
                .map_err(|e| error::map(Op::Touch, e))?,
        };
        Ok(n == 1)
    }

    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        let position = Position::decode(&cursor, self.inner.clustered)?;
        let mut full_prefix = String::with_capacity(self.inner.prefix.len() + prefix.len());
        full_prefix.push_str(&self.inner.prefix);
        full_prefix.push_str(prefix);
        let pattern = scan::match_pattern(&full_prefix);
        let count = limit.clamp(1, MAX_SCAN_COUNT) as u32;
        let (raw, next) = self.scan_page(Op::Scan, &pattern, position, count).await?;
        let strip = self.inner.prefix.len();
        let keys = raw
            .into_iter()
            // This store writes UTF-8 keys only: skip a foreign key that
            // happens to match the pattern.
            .filter_map(|k| String::from_utf8(k.to_vec()).ok())
            .filter(|k| k.starts_with(&full_prefix))
            .map(|mut k| {
                k.drain(..strip);
                k
            })
            .collect();
        Ok(ScanPage {
            keys,
            next: next.map(|p| p.encode()),
        })
    }

    async fn len(&self) -> Result<u64> {
        let mut n = 0u64;
        self.walk(Op::Len, |keys| {
            n += keys
                .iter()
                .filter(|k| std::str::from_utf8(k).is_ok())
                .count() as u64;
            std::future::ready(Ok(()))
        })
        .await?;
        Ok(n)
    }

    async fn clear(&self) -> Result<()> {
        self.walk(Op::Clear, |keys| self.unlink_batch(keys)).await
    }

    /// `get`'s one script call; the version is the value read.
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        let op = Op::GetVersioned;
        let key = self.key(op, key)?;
        let reply = self.eval(op, &GET, key).await?;
        let record = parse_get_reply(reply).ok_or_else(|| error::unexpected_reply(op))?;
        let record = record.filter(|r| !r.is_expired_at(SystemTime::now()));
        Ok(record.map(Versioned::stored))
    }

    /// `Exists` is `SET … XX` (or `UNLINK` for an expired record);
    /// `Matches` is one script call that compares the stored bytes.
    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        let op = Op::SetIf;
        self.inner.limits.check_write(op, key, &record)?;
        let key = self.key(op, key)?;
        let ttl = Ttl::of(record.expires_at);
        let version = match condition {
            Condition::Exists => {
                let expire = match ttl {
                    Ttl::Past => return self.unlink(op, key).await,
                    Ttl::Never => None,
                    Ttl::At(ms) => Some(Expiration::PXAT(ms)),
                };
                let reply: Value = self
                    .inner
                    .client
                    .set(key, record.value, expire, Some(SetOptions::XX), false)
                    .await
                    .map_err(|e| error::map(op, e))?;
                return Ok(!reply.is_null());
            }
            Condition::Matches(version) => version,
        };
        let at = match ttl {
            Ttl::Past => 0,
            Ttl::Never => -1,
            Ttl::At(ms) => ms,
        };
        let argv = vec![
            Value::Bytes(version.stored().clone()),
            Value::Bytes(record.value),
            Value::Integer(at),
        ];
        let reply = self.eval_args(op, &SET_IF_MATCHES, key, argv).await?;
        reply
            .as_i64()
            .map(|n| n == 1)
            .ok_or_else(|| error::unexpected_reply(op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_hashes_are_sha1_hex() {
        assert_eq!(GET.sha.len(), 40);
        assert_ne!(GET.sha, PERSIST.sha);
        assert_ne!(GET.sha, SET_IF_MATCHES.sha);
    }

    #[test]
    fn get_replies() {
        assert_eq!(parse_get_reply(Value::Null), Some(None));
        let reply = Value::Array(vec![Value::Bytes("v".into()), Value::Integer(-1)]);
        let record = parse_get_reply(reply).unwrap().unwrap();
        assert_eq!(
            (record.value.as_ref(), record.expires_at),
            (&b"v"[..], None)
        );
        let reply = Value::Array(vec![Value::String("v".into()), Value::Integer(1500)]);
        let record = parse_get_reply(reply).unwrap().unwrap();
        assert_eq!(
            record.expires_at,
            Some(UNIX_EPOCH + Duration::from_millis(1500))
        );
        let gone = Value::Array(vec![Value::Bytes("v".into()), Value::Integer(-2)]);
        assert_eq!(parse_get_reply(gone), Some(None));
        assert_eq!(parse_get_reply(Value::Integer(3)), None);
    }

    #[test]
    fn scan_replies() {
        let reply = Value::Array(vec![
            Value::String("42".into()),
            Value::Array(vec![Value::Bytes("a".into()), Value::String("b".into())]),
        ]);
        let (cursor, keys) = parse_scan_reply(reply).unwrap();
        assert_eq!(cursor, 42);
        assert_eq!(keys, [Bytes::from("a"), Bytes::from("b")]);
        assert_eq!(parse_scan_reply(Value::Null), None);
    }

    #[test]
    fn ttl_of_past_present_and_never() {
        assert!(matches!(Ttl::of(None), Ttl::Never));
        let past = SystemTime::now() - Duration::from_secs(1);
        assert!(matches!(Ttl::of(Some(past)), Ttl::Past));
        let later = UNIX_EPOCH + Duration::from_millis(32_503_680_000_000);
        assert!(matches!(Ttl::of(Some(later)), Ttl::At(32_503_680_000_000)));
    }
}
