use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::*;
use crate::{ErrorKind, MemoryStore, StoreExt};

fn key(id: &str, byte: u8) -> Key {
    Key::from_bytes(id, &[byte; KEY_LEN]).unwrap()
}

fn ring(keys: impl IntoIterator<Item = Key>) -> Keyring {
    Keyring::from_keys(keys).unwrap()
}

const ALGORITHMS: [Algorithm; 2] = [Algorithm::Aes256Gcm, Algorithm::XChaCha20Poly1305];

#[tokio::test]
async fn round_trips_and_hides_the_plaintext() {
    for alg in ALGORITHMS {
        let backend = MemoryStore::new();
        let layer = EncryptedLayer::new(ring([key("k1", 1)])).algorithm(alg);
        let store = backend.clone().encrypted(layer);
        let value = Bytes::from_static(br#"{"user":"ada","csrf":"t0k3n"}"#);
        for v in [value.clone(), Bytes::new()] {
            store
                .set("sess:1", Record::never_expiring(v.clone()))
                .await
                .unwrap();
            let stored = backend.get("sess:1").await.unwrap().unwrap().value;
            assert_eq!(stored.len(), v.len() + 5 + 2 + alg.nonce_len() + 16);
            assert!(!stored.windows(5).any(|w| w == b"t0k3n"));
            assert_eq!(store.get("sess:1").await.unwrap().unwrap().value, v);
        }
    }
}

#[tokio::test]
async fn nonces_are_fresh_per_write() {
    let backend = MemoryStore::new();
    let store = backend.clone().encrypted(ring([key("k1", 1)]));
    store
        .set("a", Record::never_expiring("same"))
        .await
        .unwrap();
    store
        .set("b", Record::never_expiring("same"))
        .await
        .unwrap();
    let a = backend.get("a").await.unwrap().unwrap().value;
    let b = backend.get("b").await.unwrap().unwrap().value;
    assert_ne!(a[7..19], b[7..19]);
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_key_does_not_decrypt() {
    for alg in ALGORITHMS {
        let backend = MemoryStore::new();
        let layer = EncryptedLayer::new(ring([key("k1", 1)])).algorithm(alg);
        let store = backend.clone().encrypted(layer);
        store
            .set("sess:victim", Record::never_expiring("victim"))
            .await
            .unwrap();
        store
            .set("sess:attacker", Record::never_expiring("attacker"))
            .await
            .unwrap();
        let attacker = backend.get("sess:attacker").await.unwrap().unwrap();
        backend.set("sess:victim", attacker).await.unwrap();
        let err = store.get("sess:victim").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        assert_eq!(err.message(), "value failed authentication");
        assert_eq!(err.store(), "encrypted(memory)");
    }
}

#[test]
fn every_tampered_byte_is_corrupt() {
    for alg in ALGORITHMS {
        let layer = EncryptedLayer::new(ring([key("k1", 1), key("k2", 2)])).algorithm(alg);
        let sealed = layer.encode_value("k", b"session payload").unwrap();
        for i in 0..sealed.len() {
            for flip in [0x01, 0x80] {
                let mut bad = sealed.to_vec();
                bad[i] ^= flip;
                let err = layer.decode_value("k", bad.into()).unwrap_err();
                assert!(
                    matches!(err.kind(), ErrorKind::Corrupt | ErrorKind::Unsupported),
                    "{alg:?} byte {i}: {err}"
                );
            }
        }
        for cut in 0..sealed.len() {
            let err = layer.decode_value("k", sealed.slice(..cut)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Corrupt, "{alg:?} cut {cut}");
        }
        let mut longer = sealed.to_vec();
        longer.push(0);
        assert!(layer.decode_value("k", longer.into()).is_err());
        // The header names the algorithm and is authenticated.
        let mut other_alg = sealed.to_vec();
        other_alg[3] = if alg == Algorithm::Aes256Gcm { 2 } else { 1 };
        assert!(layer.decode_value("k", other_alg.into()).is_err());
    }
}

#[tokio::test]
async fn keys_rotate_without_downtime_and_reencrypt_keeps_expiry() {
    let backend = MemoryStore::new();
    let at = SystemTime::now() + Duration::from_secs(600);
    let old = backend.clone().encrypted(ring([key("old", 1)]));
    old.set("s", Record::expiring_at("data", at)).await.unwrap();

    // Step 1: every instance learns the new key (still writing with old).
    let step1 = backend
        .clone()
        .encrypted(ring([key("old", 1), key("new", 2)]));
    assert_eq!(step1.get("s").await.unwrap().unwrap().value, "data");
    // Step 2: the new key becomes current.
    let step2 = backend
        .clone()
        .encrypted(ring([key("new", 2), key("old", 1)]));
    assert_eq!(step2.get("s").await.unwrap().unwrap().value, "data");
    step2
        .set("fresh", Record::never_expiring("x"))
        .await
        .unwrap();
    assert_eq!(step1.get("fresh").await.unwrap().unwrap().value, "x");
    // Without the old key, old values are unreadable until rewritten.
    let step3 = backend.clone().encrypted(ring([key("new", 2)]));
    let err = step3.get("s").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(err.message().contains("`old`"), "{}", err.message());
    assert!(step2.reencrypt("s").await.unwrap());
    assert!(!step2.reencrypt("s").await.unwrap());
    assert!(!step2.reencrypt("missing").await.unwrap());
    let got = step3.get("s").await.unwrap().unwrap();
    assert_eq!((got.value, got.expires_at), (Bytes::from("data"), Some(at)));
}

#[tokio::test]
async fn switching_algorithm_keeps_old_values_readable() {
    let backend = MemoryStore::new();
    let aes = EncryptedLayer::new(ring([key("k", 1)]));
    let xchacha = aes.clone().algorithm(Algorithm::XChaCha20Poly1305);
    backend
        .clone()
        .encrypted(aes.clone())
        .set("a", Record::never_expiring("1"))
        .await
        .unwrap();
    let store = backend.clone().encrypted(xchacha);
    assert_eq!(store.get("a").await.unwrap().unwrap().value, "1");
    assert!(store.reencrypt("a").await.unwrap());
    assert_eq!(backend.get("a").await.unwrap().unwrap().value[3], 2);
    assert_eq!(
        backend
            .encrypted(aes)
            .get("a")
            .await
            .unwrap()
            .unwrap()
            .value,
        "1"
    );
}

#[tokio::test]
async fn plaintext_reads_are_off_by_default() {
    let backend = MemoryStore::new();
    backend
        .set("legacy", Record::never_expiring(r#"{"user":"old"}"#))
        .await
        .unwrap();
    let strict = backend.clone().encrypted(ring([key("k", 1)]));
    let err = strict.get("legacy").await.unwrap_err();
    assert_eq!(
        (err.kind(), err.message()),
        (ErrorKind::Corrupt, "value is not encrypted")
    );
    assert!(strict.reencrypt("legacy").await.is_err());

    let lenient = backend
        .clone()
        .encrypted(EncryptedLayer::new(ring([key("k", 1)])).allow_plaintext_reads(true));
    assert_eq!(
        lenient.get("legacy").await.unwrap().unwrap().value,
        r#"{"user":"old"}"#
    );
    assert!(lenient.reencrypt("legacy").await.unwrap());
    assert_eq!(
        strict.get("legacy").await.unwrap().unwrap().value,
        r#"{"user":"old"}"#
    );
    // A forged "encrypted" value still fails, even in lenient mode.
    backend
        .set(
            "forged",
            Record::never_expiring(&[0xC1, b'E', 1, 1, 1, b'k'][..]),
        )
        .await
        .unwrap();
    assert_eq!(
        lenient.get("forged").await.unwrap_err().kind(),
        ErrorKind::Corrupt
    );
}

#[tokio::test]
async fn create_stays_create_and_touch_keeps_the_value() {
    let backend = MemoryStore::new();
    let store = backend.clone().encrypted(ring([key("k", 1)]));
    assert!(store
        .create("s", Record::never_expiring("first"))
        .await
        .unwrap());
    let sealed = backend.get("s").await.unwrap().unwrap().value;
    assert!(!store
        .create("s", Record::never_expiring("second"))
        .await
        .unwrap());
    let at = SystemTime::now() + Duration::from_secs(60);
    assert!(store.touch("s", Some(at)).await.unwrap());
    let raw = backend.get("s").await.unwrap().unwrap();
    assert_eq!((raw.value, raw.expires_at), (sealed, Some(at)));
    assert_eq!(store.get("s").await.unwrap().unwrap().value, "first");
    assert_eq!(store.name(), "encrypted(memory)");
}

#[test]
fn debug_never_prints_key_material() {
    let material = [0xABu8; KEY_LEN];
    let k = Key::from_bytes("k1", &material).unwrap();
    let layer = EncryptedLayer::new(Keyring::new(k));
    let store = MemoryStore::new().encrypted(layer.clone());
    let shown = format!("{layer:?} {store:?} {:#?}", layer.keyring());
    for needle in ["abab", "ABAB", "171, 171", "q6ur"] {
        assert!(!shown.contains(needle), "{needle} in {shown}");
    }
    assert!(shown.contains("k1"));
}

/// The bulk migrator between two `Encrypted` stores is the re-encrypt
/// path of a store move: every value arrives sealed under the current key
/// (a ring without the old keys reads all of them), with its expiry.
#[tokio::test]
async fn bulk_migration_between_encrypted_stores_reencrypts_under_the_current_key() {
    use crate::layers::migration::bulk::BulkMigrator;

    let (old_backend, new_backend) = (MemoryStore::new(), MemoryStore::new());
    let at = SystemTime::now() + Duration::from_secs(600);
    // Written over time under two retired keys and both algorithms.
    for (i, (id, byte)) in [("2023", 1), ("2024", 2)].into_iter().enumerate() {
        for alg in ALGORITHMS {
            let layer = EncryptedLayer::new(ring([key(id, byte)])).algorithm(alg);
            let writer = old_backend.clone().encrypted(layer);
            writer
                .set(&format!("s:{i}:{alg:?}"), Record::expiring_at("data", at))
                .await
                .unwrap();
        }
    }
    let all = || ring([key("2025", 3), key("2024", 2), key("2023", 1)]);
    let old = old_backend.clone().encrypted(all());
    let new = new_backend.clone().encrypted(all());
    let report = BulkMigrator::new(&old, &new).run().await.unwrap();
    assert_eq!(report.progress.counts.copied, 4);

    let current_only = new_backend.clone().encrypted(ring([key("2025", 3)]));
    let page = new_backend
        .scan("", crate::ScanCursor::start(), 100)
        .await
        .unwrap();
    assert_eq!((page.keys.len(), page.next), (4, None));
    for k in page.keys {
        let got = current_only.get(&k).await.unwrap().unwrap();
        assert_eq!((got.value, got.expires_at), (Bytes::from("data"), Some(at)));
        // The backend holds ciphertext, never the plaintext.
        let raw = new_backend.get(&k).await.unwrap().unwrap();
        assert!(!raw.value.windows(4).any(|w| w == b"data"));
    }
    // The old store is untouched: still sealed under the retired keys.
    let err = old_backend
        .clone()
        .encrypted(ring([key("2025", 3)]))
        .get("s:0:Aes256Gcm")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
}
