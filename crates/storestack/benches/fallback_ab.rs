#![allow(missing_docs)]
//! An A/B companion to the `fallback` criterion bench, robust on a busy
//! machine: runs the same get / set loops on MemoryStore and on
//! Fallback(Memory, Memory) in both journal-check modes, alternating the
//! stores, for many rounds, and prints the *minimum* thread CPU time per
//! operation of each (the round least disturbed by other processes) and
//! its difference to MemoryStore.
//!
//! `cargo bench -p storestack --bench fallback_ab` (1 000 keys in cache,
//! 25 rounds of 200 000 operations; `STORESTACK_AB_ROUNDS` changes the
//! rounds).

use std::time::Duration;

use storestack::layers::fallback::JournalCheck;
use storestack::{Fallback, FallbackConfig, MemoryStore, Record, Store};

const KEYS: usize = 1_000;
const OPS: usize = 200_000;

fn record() -> Record {
    Record::expiring_after(vec![0u8; 128], Duration::from_secs(3600))
}

fn main() {
    let rounds: usize = std::env::var("STORESTACK_AB_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(25);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let keys: Vec<String> = (0..KEYS).map(|i| format!("sess:{i:016x}")).collect();
    let fallback = |check| {
        let config = FallbackConfig::default()
            .journal_check(check)
            .background(false);
        Fallback::with_config(MemoryStore::new(), MemoryStore::new(), config)
    };
    let stores: Vec<(&str, Box<dyn Store>)> = vec![
        ("memory", Box::new(MemoryStore::new())),
        (
            "fallback-per-read",
            Box::new(fallback(JournalCheck::PerRead)),
        ),
        ("fallback-poll", Box::new(fallback(JournalCheck::Poll))),
    ];
    rt.block_on(async {
        for (_, store) in &stores {
            for k in &keys {
                store.set(k, record()).await.unwrap();
            }
        }
    });
    for op in ["get", "set"] {
        let mut best = vec![f64::MAX; stores.len()];
        for _ in 0..rounds {
            for (i, (_, store)) in stores.iter().enumerate() {
                let start = cpu_time::ThreadTime::now();
                rt.block_on(async {
                    for j in 0..OPS {
                        let key = &keys[(j * 7919) % KEYS];
                        if op == "get" {
                            std::hint::black_box(store.get(key).await.unwrap());
                        } else {
                            store.set(key, record()).await.unwrap();
                        }
                    }
                });
                let ns = start.elapsed().as_nanos() as f64 / OPS as f64;
                best[i] = best[i].min(ns);
            }
        }
        for (i, (name, _)) in stores.iter().enumerate() {
            println!(
                "{op:<4} {name:<18} {:>7.1} ns/op   overhead {:>+7.1} ns",
                best[i],
                best[i] - best[0]
            );
        }
    }
}
