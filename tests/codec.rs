//! The conformance suite over Compressed, Encrypted and the two stacked in
//! the natural order (Encrypted inside, Compressed outside), over
//! MemoryStore: the decorators change no semantics.

use storestack::clock::MockClock;
use storestack::limits::Limits;
use storestack::{
    Algorithm, CompressedLayer, EncryptedLayer, Key, Keyring, MemoryConfig, MemoryStore, StoreExt,
};
use storestack_testkit::{conformance_suite, Fixture};

fn memory(clock: MockClock) -> MemoryStore {
    MemoryStore::with_config(MemoryConfig::default().clock(clock))
}

/// The encrypted suites use a 1 MiB + 1 KiB value limit instead of 8 MiB:
/// the oversized-value case then encrypts 1 MiB, not 8 (unoptimized test
/// builds encrypt at a few MB/s).
fn small_limits() -> Limits {
    Limits::default().max_value_len((1 << 20) + 1024)
}

fn small_memory(clock: MockClock) -> MemoryStore {
    MemoryStore::with_config(
        MemoryConfig::default()
            .clock(clock)
            .max_value_len(small_limits().max_value_len),
    )
}

fn keys() -> Keyring {
    Keyring::from_keys([
        Key::generate("current").expect("key"),
        Key::generate("previous").expect("key"),
    ])
    .expect("key ring")
}

async fn compressed(layer: CompressedLayer) -> Option<Fixture> {
    // A zero threshold, so every non-empty value goes through the codec.
    Some(Fixture::with_mock_clock(|clock| {
        memory(clock).compressed(layer.min_size(0))
    }))
}

async fn encrypted(algorithm: Algorithm) -> Option<Fixture> {
    let fixture = Fixture::with_mock_clock(|clock| {
        small_memory(clock).encrypted(EncryptedLayer::new(keys()).algorithm(algorithm))
    });
    Some(fixture.limits(small_limits()))
}

async fn stacked() -> Option<Fixture> {
    let fixture = Fixture::with_mock_clock(|clock| {
        small_memory(clock).encrypted(keys()).compressed(
            CompressedLayer::default()
                .min_size(0)
                .limits(small_limits()),
        )
    });
    Some(fixture.limits(small_limits()))
}

conformance_suite!(compressed_zstd, compressed(CompressedLayer::zstd(3)));
conformance_suite!(compressed_lz4, compressed(CompressedLayer::lz4()));
conformance_suite!(compressed_gzip, compressed(CompressedLayer::gzip(6)));
conformance_suite!(encrypted_aes_gcm, encrypted(Algorithm::Aes256Gcm));
conformance_suite!(encrypted_xchacha, encrypted(Algorithm::XChaCha20Poly1305));
conformance_suite!(compressed_over_encrypted, stacked());
