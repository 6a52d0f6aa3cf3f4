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
//!
//! `inner-calls` is the work a fallback cannot avoid, done by hand on two
//! memory stores: a get reads the key on one and (as `PerRead` does) the
//! key's journal entry on the other, concurrently; a set writes both, one
//! after the other. A fallback's own cost is its figure minus this one
//! (minus `memory` for a `Poll` get, which reads one side only).

use std::time::Duration;

use std::time::SystemTime;

use storestack::layers::fallback::JournalCheck;
use storestack::{
    async_trait, Condition, Fallback, FallbackConfig, MemoryStore, Record, Result, ScanCursor,
    ScanPage, Store, Versioned,
};

/// The calls a healthy fallback makes, without the fallback.
struct InnerCalls(MemoryStore, MemoryStore);

#[async_trait]
impl Store for InnerCalls {
    fn name(&self) -> &str {
        "inner-calls"
    }
    async fn get(&self, key: &str) -> Result<Option<Record>> {
        let journal = format!("__fallback:j:{key}");
        let (v, j) = tokio::join!(self.0.get(key), self.1.get(&journal));
        j?;
        v
    }
    async fn set(&self, key: &str, record: Record) -> Result<()> {
        self.0.set(key, record.clone()).await?;
        self.1.set(key, record).await
    }
    async fn create(&self, key: &str, record: Record) -> Result<bool> {
        self.0.create(key, record).await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.0.delete(key).await
    }
    async fn touch(&self, key: &str, at: Option<SystemTime>) -> Result<bool> {
        self.0.touch(key, at).await
    }
    async fn scan(&self, prefix: &str, cursor: ScanCursor, limit: usize) -> Result<ScanPage> {
        self.0.scan(prefix, cursor, limit).await
    }
    async fn len(&self) -> Result<u64> {
        self.0.len().await
    }
    async fn clear(&self) -> Result<()> {
        self.0.clear().await
    }
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.0.get_versioned(key).await
    }
    async fn set_if(&self, key: &str, record: Record, condition: Condition) -> Result<bool> {
        self.0.set_if(key, record, condition).await
    }
}

const KEYS: usize = 1_000;
const OPS: usize = 200_000;

fn record() -> Record {
    Record::expiring_after(vec![0u8; 128], Duration::from_secs(3600))
}

fn main() {
    // Under `cargo test` (no `--bench`), a smoke run: the code runs, the
    // figures mean nothing.
    let bench = std::env::args().any(|a| a == "--bench");
    let rounds: usize = match bench {
        true => std::env::var("STORESTACK_AB_ROUNDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(25),
        false => 1,
    };
    let ops = if bench { OPS } else { 1_000 };
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
            "inner-calls",
            Box::new(InnerCalls(MemoryStore::new(), MemoryStore::new())),
        ),
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
                    for j in 0..ops {
                        let key = &keys[(j * 7919) % KEYS];
                        if op == "get" {
                            std::hint::black_box(store.get(key).await.unwrap());
                        } else {
                            store.set(key, record()).await.unwrap();
                        }
                    }
                });
                let ns = start.elapsed().as_nanos() as f64 / ops as f64;
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
