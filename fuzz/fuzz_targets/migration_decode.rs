//! The migration's stored formats: the published phase record (read by
//! every process through `PhaseControl`) and the bulk migrator's checkpoint
//! file. Arbitrary bytes, and valid encodings cut short or with a flipped
//! byte, decode or fail with `Corrupt`: never a panic, never another kind.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use storestack::layers::migration::bulk::{Checkpoint, CheckpointState, FileCheckpoint};
use storestack::layers::migration::PhaseControl;
use storestack::{ErrorKind, MemoryStore, Phase, Record, Store};

const KEY: &str = "migration:phase";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

/// A valid phase record and a valid checkpoint file, to mutate.
fn seeds() -> &'static (Vec<u8>, Vec<u8>) {
    static SEEDS: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    SEEDS.get_or_init(|| {
        runtime().block_on(async {
            let store = MemoryStore::new();
            let control = PhaseControl::new(store.clone(), KEY);
            control
                .publish(Phase::write_both(40), false)
                .await
                .expect("publish");
            let phase = store.get(KEY).await.unwrap().expect("published").value;
            let file = checkpoint_file();
            let state = CheckpointState::new("fuzz");
            file.save(&state).await.expect("save");
            let saved = std::fs::read(file.path()).expect("read back");
            (phase.to_vec(), saved)
        })
    })
}

fn checkpoint_file() -> FileCheckpoint {
    let path = std::env::temp_dir().join(format!("storestack-fuzz-{}.ckpt", std::process::id()));
    FileCheckpoint::new(path)
}

fn mutate(seed: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    if let [at, xor, cut, ..] = rest {
        if !bytes.is_empty() {
            let i = *at as usize % bytes.len();
            bytes[i] ^= xor.max(&1);
            bytes.truncate(bytes.len() - (*cut as usize % 4).min(bytes.len()));
        }
    }
    bytes
}

fn check<T>(what: &str, result: storestack::Result<T>) {
    if let Err(e) = result {
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{what}: {e}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (phase_seed, file_seed) = seeds();
    let bytes = match mode & 1 {
        0 => rest.to_vec(),
        _ => mutate(if mode & 2 == 0 { phase_seed } else { file_seed }, rest),
    };
    runtime().block_on(async {
        if mode & 4 == 0 {
            let store = MemoryStore::new();
            store
                .set(KEY, Record::never_expiring(bytes))
                .await
                .expect("memory set");
            check("phase", PhaseControl::new(store, KEY).read().await);
        } else {
            let file = checkpoint_file();
            std::fs::write(file.path(), &bytes).expect("write the checkpoint");
            check("checkpoint", file.load().await);
        }
    });
});
