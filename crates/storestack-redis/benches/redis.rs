//! RedisStore get / set / create / set_if of 2 KiB values, side by side with raw
//! fred calls that do the same work on the same connection pool (so the
//! same client settings), against the server at `STORESTACK_REDIS_URL`
//! (default `redis://127.0.0.1:6379`). One request at a time: the figures
//! are latencies, and the difference is what the backend adds.
//!
//! On a shared, busy machine the separate criterion figures drift with the
//! load between one benchmark and the next, so the bench also prints a
//! *paired* ratio per operation: raw and backend calls interleaved one by
//! one, each timed, compared by median latency (preemptions hit both
//! alike and stay out of the median) and by mean.
//!
//! `redis_save_2KiB` compares a session save (`set_if` on the version
//! read; `set_if(Exists)`) with an unconditional `set`, in the same run.
//!
//! `get` also shows two alternatives to the backend's one-round-trip
//! script: a pipelined `GET` + `PEXPIRETIME` (not atomic) and a plain
//! `GET` (which cannot return the expiry), as reference points.
//!
//! ```sh
//! cargo bench -p storestack-redis -- --warm-up-time 1 --measurement-time 3
//! ```
#![allow(missing_docs)]

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use storestack::{limits, Condition, Record, Store, Version};
use storestack_redis::fred::interfaces::{KeysInterface, LuaInterface};
use storestack_redis::fred::types::{Expiration, SetOptions, Value};
use storestack_redis::fred::util::NONE;
use storestack_redis::{RedisConfig, RedisStore};

const KEYS: usize = 1000;
const VALUE_LEN: usize = 2048;

/// The same script as the store's `get`.
const GET_SCRIPT: &str = "local v = redis.call('GET', KEYS[1])\n\
                          if not v then return false end\n\
                          return {v, redis.call('PEXPIRETIME', KEYS[1])}";

/// The design not taken for `set_if(Matches)`: compare `redis.sha1hex`
/// of the stored value with a SHA-1 the client computed (40 bytes sent
/// instead of the value), for the paired comparison.
const SET_IF_SHA1_SCRIPT: &str = "if redis.sha1hex(redis.call('GET', KEYS[1]) or '') ~= ARGV[1] \
                                  then return 0 end\n\
                                  redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])\n\
                                  return 1";

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = std::env::var("STORESTACK_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let config = RedisConfig::new(url).key_prefix(format!("ssbench:{}:", std::process::id()));
    let store = match rt.block_on(RedisStore::connect(config)) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("*** SKIPPED: redis is not reachable ({e}); no redis benchmark ran ***");
            return;
        }
    };
    let pool = store.pool().clone();
    let keys: Vec<String> = (0..KEYS).map(|i| format!("sess:{i:016x}")).collect();
    let full: Vec<String> = keys
        .iter()
        .map(|k| format!("{}{k}", store.key_prefix()))
        .collect();
    let value = Bytes::from(vec![0x5a; VALUE_LEN]);
    let expires_at = SystemTime::now() + Duration::from_secs(3600);
    let ms = limits::unix_millis(expires_at);
    let sha: String = rt.block_on(async {
        for k in &keys {
            let record = Record::expiring_at(value.clone(), expires_at);
            store.set(k, record).await.unwrap();
        }
        pool.script_load(GET_SCRIPT).await.unwrap()
    });
    let sha1_script: String = rt.block_on(pool.script_load(SET_IF_SHA1_SCRIPT)).unwrap();
    let value_sha1 = storestack_redis::fred::util::sha1_hash(std::str::from_utf8(&value).unwrap());

    let (store, pool, keys, full, value) = (&store, &pool, &keys, &full, &value);
    let mut group = c.benchmark_group("redis_get_2KiB");
    let mut i = 0usize;
    group.bench_function("storestack", |b| {
        b.to_async(&rt).iter(|| {
            i += 1;
            let key = &keys[i % KEYS];
            async move { store.get(key).await.unwrap().unwrap() }
        })
    });
    group.bench_function("fred_evalsha_same_script", |b| {
        b.to_async(&rt).iter(|| {
            i += 1;
            let key = full[i % KEYS].as_str();
            let sha = sha.as_str();
            async move {
                pool.evalsha::<Value, _, _, _>(sha, key, NONE)
                    .await
                    .unwrap()
            }
        })
    });
    group.bench_function("fred_pipeline_get_pexpiretime", |b| {
        b.to_async(&rt).iter(|| {
            i += 1;
            let key = full[i % KEYS].as_str();
            async move {
                let pipe = pool.next().pipeline();
                let () = pipe.get(key).await.unwrap();
                let () = pipe.pexpire_time(key).await.unwrap();
                pipe.all::<(Bytes, i64)>().await.unwrap()
            }
        })
    });
    group.bench_function("fred_get_value_only", |b| {
        b.to_async(&rt).iter(|| {
            i += 1;
            let key = full[i % KEYS].as_str();
            async move { pool.get::<Bytes, _>(key).await.unwrap() }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("redis_set_2KiB");
    group.bench_function("storestack", |b| {
        b.to_async(&rt).iter(|| {
            i += 1;
            let key = &keys[i % KEYS];
            let record = Record::expiring_at(value.clone(), expires_at);
            async move { store.set(key, record).await.unwrap() }
        })
    });
    group.bench_function("fred_set_pxat", |b| {
        b.to_async(&rt).iter(|| {
            i += 1;
            let key = full[i % KEYS].as_str();
            let value = value.clone();
            async move {
                pool.set::<(), _, _>(key, value, Some(Expiration::PXAT(ms)), None, false)
                    .await
                    .unwrap()
            }
        })
    });
    group.finish();

    // On present keys: the NX fails and the value stays, so every
    // iteration does the same work.
    let mut group = c.benchmark_group("redis_create_2KiB_present");
    group.bench_function("storestack", |b| {
        b.to_async(&rt).iter(|| {
            i += 1;
            let key = &keys[i % KEYS];
            let record = Record::expiring_at(value.clone(), expires_at);
            async move { assert!(!store.create(key, record).await.unwrap()) }
        })
    });
    group.bench_function("fred_set_nx_pxat", |b| {
        b.to_async(&rt).iter(|| {
            i += 1;
            let key = full[i % KEYS].as_str();
            let value = value.clone();
            async move {
                let reply: Value = pool
                    .set(
                        key,
                        value,
                        Some(Expiration::PXAT(ms)),
                        Some(SetOptions::NX),
                        false,
                    )
                    .await
                    .unwrap();
                assert!(reply.is_null());
            }
        })
    });
    group.finish();

    // A session save: a conditional write on the version read, against an
    // unconditional `set`. The value written is the value stored, so the
    // version stays valid and every iteration does the full compare (2 KiB)
    // and write.
    let version = Condition::Matches(Version::of_stored(value.clone()));
    let version = &version;
    let mut group = c.benchmark_group("redis_save_2KiB");
    group.bench_function("set", |b| {
        b.to_async(&rt).iter(|| {
            i += 1;
            let key = &keys[i % KEYS];
            let record = Record::expiring_at(value.clone(), expires_at);
            async move { store.set(key, record).await.unwrap() }
        })
    });
    group.bench_function("set_if_matches", |b| {
        b.to_async(&rt).iter(|| {
            i += 1;
            let key = &keys[i % KEYS];
            let record = Record::expiring_at(value.clone(), expires_at);
            async move { assert!(store.set_if(key, record, version.clone()).await.unwrap()) }
        })
    });
    group.bench_function("set_if_exists", |b| {
        b.to_async(&rt).iter(|| {
            i += 1;
            let key = &keys[i % KEYS];
            let record = Record::expiring_at(value.clone(), expires_at);
            async move { assert!(store.set_if(key, record, Condition::Exists).await.unwrap()) }
        })
    });
    group.finish();

    // `cargo test --all-targets` runs benches once as a smoke test
    // (without `--bench`): skip the long paired run there.
    if !std::env::args().any(|a| a == "--bench") {
        rt.block_on(store.clear()).unwrap();
        return;
    }
    let sha = sha.as_str();
    let (sha1_script, value_sha1) = (sha1_script.as_str(), &value_sha1);
    let report = [
        paired(
            &rt,
            ("get", "fred", "storestack"),
            |i| async move {
                let key = full[i % KEYS].as_str();
                pool.evalsha::<Value, _, _, _>(sha, key, NONE)
                    .await
                    .unwrap();
            },
            |i| async move {
                store.get(&keys[i % KEYS]).await.unwrap().unwrap();
            },
        ),
        paired(
            &rt,
            ("set", "fred", "storestack"),
            |i| async move {
                let key = full[i % KEYS].as_str();
                pool.set::<(), _, _>(key, value.clone(), Some(Expiration::PXAT(ms)), None, false)
                    .await
                    .unwrap();
            },
            |i| async move {
                let record = Record::expiring_at(value.clone(), expires_at);
                store.set(&keys[i % KEYS], record).await.unwrap();
            },
        ),
        paired(
            &rt,
            ("create (present key)", "fred", "storestack"),
            |i| async move {
                let key = full[i % KEYS].as_str();
                let reply: Value = pool
                    .set(
                        key,
                        value.clone(),
                        Some(Expiration::PXAT(ms)),
                        Some(SetOptions::NX),
                        false,
                    )
                    .await
                    .unwrap();
                assert!(reply.is_null());
            },
            |i| async move {
                let record = Record::expiring_at(value.clone(), expires_at);
                assert!(!store.create(&keys[i % KEYS], record).await.unwrap());
            },
        ),
        paired(
            &rt,
            ("session save", "set", "set_if(Matches)"),
            |i| async move {
                let record = Record::expiring_at(value.clone(), expires_at);
                store.set(&keys[i % KEYS], record).await.unwrap();
            },
            |i| async move {
                let record = Record::expiring_at(value.clone(), expires_at);
                let saved = store.set_if(&keys[i % KEYS], record, version.clone());
                assert!(saved.await.unwrap());
            },
        ),
        paired(
            &rt,
            ("session save", "set", "set_if(Exists)"),
            |i| async move {
                let record = Record::expiring_at(value.clone(), expires_at);
                store.set(&keys[i % KEYS], record).await.unwrap();
            },
            |i| async move {
                let record = Record::expiring_at(value.clone(), expires_at);
                let saved = store.set_if(&keys[i % KEYS], record, Condition::Exists);
                assert!(saved.await.unwrap());
            },
        ),
        // The design choice for `set_if(Matches)`: the stored bytes sent
        // and compared, or their SHA-1 sent and the stored value hashed.
        paired(
            &rt,
            ("set_if design", "bytes", "sha1hex"),
            |i| async move {
                let record = Record::expiring_at(value.clone(), expires_at);
                let saved = store.set_if(&keys[i % KEYS], record, version.clone());
                assert!(saved.await.unwrap());
            },
            |i| async move {
                let key = full[i % KEYS].as_str();
                let args = vec![
                    Value::from(value_sha1.as_str()),
                    Value::Bytes(value.clone()),
                    Value::Integer(ms),
                ];
                let n: i64 = pool.evalsha(sha1_script, key, args).await.unwrap();
                assert_eq!(n, 1);
            },
        ),
        // The design choice for `get`: one script vs a two-command pipeline
        // (both one round trip), and what reading the expiry costs.
        paired(
            &rt,
            ("get design", "pipeline", "evalsha"),
            |i| async move {
                let key = full[i % KEYS].as_str();
                let pipe = pool.next().pipeline();
                let () = pipe.get(key).await.unwrap();
                let () = pipe.pexpire_time(key).await.unwrap();
                pipe.all::<(Bytes, i64)>().await.unwrap();
            },
            |i| async move {
                let key = full[i % KEYS].as_str();
                pool.evalsha::<Value, _, _, _>(sha, key, NONE)
                    .await
                    .unwrap();
            },
        ),
        paired(
            &rt,
            ("get design", "GET only", "evalsha"),
            |i| async move {
                pool.get::<Bytes, _>(full[i % KEYS].as_str()).await.unwrap();
            },
            |i| async move {
                let key = full[i % KEYS].as_str();
                pool.evalsha::<Value, _, _, _>(sha, key, NONE)
                    .await
                    .unwrap();
            },
        ),
    ];
    println!(
        "\npaired comparison (2 KiB values, one call at a time, {PAIRS} + {PAIRS} calls \
         interleaved; latency median [p25..p75]):"
    );
    for line in report {
        println!("  {line}");
    }

    rt.block_on(store.clear()).unwrap();
}

const PAIRS: usize = 10_000;

/// Runs `PAIRS` raw calls and `PAIRS` backend calls interleaved one by
/// one (alternating which goes first), timing each call; returns a line
/// with the ratio of the median latencies (robust to the preemptions of a
/// loaded machine, which hit raw and backend calls alike) and of the
/// means.
fn paired<A, FA, B, FB>(
    rt: &tokio::runtime::Runtime,
    (name, raw_name, our_name): (&str, &str, &str),
    mut raw: A,
    mut ours: B,
) -> String
where
    A: FnMut(usize) -> FA,
    FA: Future<Output = ()>,
    B: FnMut(usize) -> FB,
    FB: Future<Output = ()>,
{
    let mut t_raw = Vec::with_capacity(PAIRS);
    let mut t_ours = Vec::with_capacity(PAIRS);
    rt.block_on(async {
        for i in 0..PAIRS {
            for pass in 0..2 {
                let started = Instant::now();
                if (i + pass) % 2 == 0 {
                    raw(i).await;
                    t_raw.push(started.elapsed());
                } else {
                    ours(i).await;
                    t_ours.push(started.elapsed());
                }
            }
        }
    });
    let summary = |t: &mut Vec<Duration>| {
        t.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let mean = t.iter().map(|d| us(*d)).sum::<f64>() / t.len() as f64;
        (
            us(t[t.len() / 2]),
            us(t[t.len() / 4]),
            us(t[t.len() * 3 / 4]),
            mean,
        )
    };
    let (raw_med, raw_p25, raw_p75, raw_mean) = summary(&mut t_raw);
    let (our_med, our_p25, our_p75, our_mean) = summary(&mut t_ours);
    format!(
        "{name:<21} {our_name} / {raw_name}: median {:.3} ({raw_name} {raw_med:.1} µs \
         [{raw_p25:.1}..{raw_p75:.1}], {our_name} {our_med:.1} µs [{our_p25:.1}..{our_p75:.1}]); \
         mean {:.3} ({raw_mean:.1} µs, {our_mean:.1} µs)",
        our_med / raw_med,
        our_mean / raw_mean,
    )
}

criterion_group!(benches, bench);
criterion_main!(benches);
