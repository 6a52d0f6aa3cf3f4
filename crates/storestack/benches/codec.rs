#![allow(missing_docs)]
//! Compressed and Encrypted over MemoryStore against the bare library
//! calls they are built on, on 2 KiB and 20 KiB JSON session documents.
//!
//! * `zstd_bare/compress`: `zstd::bulk::Compressor` (level 3, context
//!   reused) on the document; `compressed/set` writes it through
//!   `Compressed` (level 3) into a MemoryStore. Same for decompress / get.
//! * `aes_gcm_bare/encrypt`: a nonce from `OsRng` and `Aes256Gcm::encrypt`
//!   with the key as associated data; `encrypted/set` writes it through
//!   `Encrypted` (AES-256-GCM). Same for decrypt / get.
//! * `memory/*` is the store alone, `stack/*` is Encrypted + Compressed.
//!
//! MemoryStore futures complete at the first poll, so the store calls are
//! polled once without a runtime: the figures are the decorator and the
//! store, nothing else. Times are the bench thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`), so other processes on a busy machine do not
//! inflate them the way they inflate wall time.

use std::future::Future;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::Aes256Gcm;
use base64::Engine;
use cpu_time::ThreadTime;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::{json, Value};
use storestack::{CompressedLayer, Key, MemoryStore, Record, Store, StoreExt};

const KEY: &str = "sess:7f3a9c0e5b2d4f6a8c1e3b5d7f9a2c4e";

/// Runs `f` `iters` times; returns the CPU time this thread spent.
fn cpu<R>(iters: u64, mut f: impl FnMut() -> R) -> Duration {
    let start = ThreadTime::now();
    for _ in 0..iters {
        black_box(f());
    }
    start.elapsed()
}

fn poll_once<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match std::pin::pin!(f).as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("memory store future was pending"),
    }
}

const WORDS: &[&str] = &[
    "merino",
    "wool",
    "socks",
    "organic",
    "cotton",
    "tee",
    "slim",
    "fit",
    "denim",
    "jacket",
    "leather",
    "belt",
    "canvas",
    "sneakers",
    "linen",
    "shirt",
    "waterproof",
    "hiking",
    "boots",
    "recycled",
    "backpack",
    "ceramic",
    "mug",
    "espresso",
    "beans",
    "stainless",
    "bottle",
    "bamboo",
    "toothbrush",
    "wireless",
    "earbuds",
    "charging",
    "cable",
    "desk",
    "lamp",
    "oak",
];
const LEVELS: &[&str] = &["info", "success", "warning"];
const FLASH: &[&str] = &[
    "Your order has shipped and will arrive within 3 business days.",
    "Item added to your cart.",
    "Your password was changed. If this was not you, contact support.",
    "Coupon applied: 10% off your next order.",
    "We could not verify your address; please check the postcode.",
];

fn b64(rng: &mut StdRng, n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn ts(rng: &mut StdRng) -> String {
    let s = 1_717_000_000 + rng.gen_range(0..5_000_000u64);
    format!(
        "2024-06-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        1 + s % 28,
        s / 3600 % 24,
        s / 60 % 60,
        s % 60,
        s % 1000
    )
}

fn name(rng: &mut StdRng, words: usize) -> String {
    (0..words)
        .map(|_| WORDS[rng.gen_range(0..WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

/// A session document of about `target` bytes: user profile, CSRF token,
/// OAuth tokens, flash messages, cart items, history, A/B flags and an
/// opaque base64 state blob; about a quarter of it is random base64.
fn session_json(target: usize, seed: u64) -> Vec<u8> {
    let rng = &mut StdRng::seed_from_u64(seed);
    let user_id = rng.gen_range(10_000..99_999u32);
    let mut doc = json!({
        "id": format!("sess_{:032x}", rng.gen::<u128>()),
        "created_at": ts(rng), "last_seen_at": ts(rng), "expires_at": ts(rng),
        "csrf_token": b64(rng, 32),
        "user": {
            "id": user_id, "email": format!("user{user_id}@example.com"),
            "name": "Ada Lovelace", "locale": "en-GB", "timezone": "Europe/London",
            "roles": ["customer", "beta"],
            "mfa": { "enabled": true, "method": "totp", "verified_at": ts(rng) },
            "avatar_url": format!("https://cdn.example.com/u/{user_id}/avatar-{:08x}.png", rng.gen::<u32>()),
        },
        "oauth": {
            "provider": "github", "access_token": b64(rng, 30), "refresh_token": b64(rng, 45),
            "scope": "read:user user:email", "expires_at": ts(rng),
        },
        "prefs": { "theme": "dark", "currency": "EUR", "newsletter": false, "page_size": 24 },
        "ab_tests": { "checkout_v2": "B", "search_ranking": "control", "free_shipping_banner": "A" },
        "flash": [], "cart": { "currency": "EUR", "coupon": null, "items": [] },
        "recently_viewed": [], "state": b64(rng, target / 16),
    });
    while serde_json::to_vec(&doc).unwrap().len() < target {
        let sku = rng.gen_range(10_000..99_999u32);
        let size = ["S", "M", "L", "XL"][rng.gen_range(0..4)];
        let item = json!({
            "sku": format!("SKU-{sku}"), "name": name(rng, 3), "qty": rng.gen_range(1..4),
            "unit_price_cents": rng.gen_range(199..25_000), "added_at": ts(rng),
            "options": { "size": size, "color": name(rng, 1) },
        });
        push(&mut doc["cart"]["items"], item);
        push(
            &mut doc["recently_viewed"],
            json!(format!(
                "/products/{sku}-{}",
                name(rng, 2).replace(' ', "-")
            )),
        );
        if rng.gen_ratio(1, 4) {
            let flash = json!({
                "level": LEVELS[rng.gen_range(0..LEVELS.len())],
                "message": FLASH[rng.gen_range(0..FLASH.len())], "at": ts(rng),
            });
            push(&mut doc["flash"], flash);
        }
    }
    serde_json::to_vec(&doc).unwrap()
}

fn push(array: &mut Value, v: Value) {
    array.as_array_mut().expect("array").push(v);
}

fn bench_store(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    store: &dyn Store,
    doc: &bytes::Bytes,
    set: bool,
) {
    match set {
        true => group.bench_function(BenchmarkId::new(name, "set"), |b| {
            b.iter_custom(|n| {
                cpu(n, || {
                    poll_once(store.set(KEY, Record::never_expiring(doc.clone()))).unwrap()
                })
            })
        }),
        false => group.bench_function(BenchmarkId::new(name, "get"), |b| {
            b.iter_custom(|n| cpu(n, || poll_once(store.get(KEY)).unwrap()))
        }),
    };
}

fn bench(c: &mut Criterion) {
    let key_bytes = [0x42u8; 32];
    let cipher = Aes256Gcm::new_from_slice(&key_bytes).unwrap();
    let mut zc = zstd::bulk::Compressor::new(3).unwrap();
    let mut zd = zstd::bulk::Decompressor::new().unwrap();

    for (label, target) in [("2KiB", 2048), ("20KiB", 20 * 1024)] {
        let doc = bytes::Bytes::from(session_json(target, 7));
        let compressed_len = zc.compress(&doc).unwrap().len();
        eprintln!(
            "{label}: document {} bytes, zstd-3 {compressed_len} bytes",
            doc.len()
        );
        let mut group = c.benchmark_group(label);
        group.throughput(Throughput::Bytes(doc.len() as u64));

        let memory = MemoryStore::new();
        let compressed = MemoryStore::new().compressed(CompressedLayer::zstd(3));
        let key = || Key::from_bytes("k1", &key_bytes).unwrap();
        let encrypted = MemoryStore::new().encrypted(key());
        let stack = MemoryStore::new()
            .encrypted(key())
            .compressed(CompressedLayer::zstd(3));
        let aad = KEY.as_bytes();
        let z = zc.compress(&doc).unwrap();
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ct = cipher.encrypt(&nonce, Payload { msg: &doc, aad }).unwrap();

        // Each decorator runs right after its baseline, so both see the
        // same machine load.
        bench_store(&mut group, "memory", &memory, &doc, true);
        bench_store(&mut group, "memory", &memory, &doc, false);

        group.bench_function(BenchmarkId::new("zstd_bare", "compress"), |b| {
            b.iter_custom(|n| cpu(n, || zc.compress(&doc).unwrap()))
        });
        bench_store(&mut group, "compressed", &compressed, &doc, true);
        group.bench_function(BenchmarkId::new("zstd_bare", "decompress"), |b| {
            b.iter_custom(|n| cpu(n, || zd.decompress(&z, doc.len()).unwrap()))
        });
        bench_store(&mut group, "compressed", &compressed, &doc, false);
        group.bench_function(BenchmarkId::new("aes_gcm_bare", "encrypt"), |b| {
            b.iter_custom(|n| {
                cpu(n, || {
                    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
                    let ct = cipher.encrypt(&nonce, Payload { msg: &doc, aad }).unwrap();
                    (nonce, ct)
                })
            })
        });
        bench_store(&mut group, "encrypted", &encrypted, &doc, true);
        group.bench_function(BenchmarkId::new("aes_gcm_bare", "decrypt"), |b| {
            b.iter_custom(|n| {
                cpu(n, || {
                    cipher.decrypt(&nonce, Payload { msg: &ct, aad }).unwrap()
                })
            })
        });
        bench_store(&mut group, "encrypted", &encrypted, &doc, false);
        bench_store(&mut group, "stack", &stack, &doc, true);
        bench_store(&mut group, "stack", &stack, &doc, false);
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
