use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::header::{self, CodecId};
use super::*;
use crate::{ErrorKind, MemoryStore, StoreExt};

/// A JSON-like value that compresses well.
fn session(len: usize) -> Bytes {
    let mut s = String::from(r#"{"user":"ada","cart":["#);
    let mut i = 0;
    while s.len() < len {
        s.push_str(&format!(
            r#"{{"sku":"SKU-{:04}","qty":{}}},"#,
            i % 97,
            i % 5
        ));
        i += 1;
    }
    s.truncate(len);
    Bytes::from(s)
}

/// Bytes that do not compress (a xorshift stream).
fn noise(len: usize) -> Bytes {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn layers() -> Vec<CompressedLayer> {
    vec![
        CompressedLayer::zstd(3),
        CompressedLayer::zstd(19),
        CompressedLayer::zstd(-5),
        CompressedLayer::lz4(),
        CompressedLayer::gzip(6),
    ]
}

fn headed(layer: &CompressedLayer, value: &[u8], len: usize) -> Bytes {
    let mut out = Vec::new();
    header::write(&mut out, layer.codec().id(), len);
    layer.codec().compress(value, &mut out).unwrap();
    out.into()
}

#[tokio::test]
async fn every_codec_round_trips_and_shrinks() {
    for layer in layers() {
        let backend = MemoryStore::new();
        let store = backend.clone().compressed(layer.clone());
        let value = session(20 * 1024);
        store
            .set("k", Record::never_expiring(value.clone()))
            .await
            .unwrap();
        let stored = backend.get("k").await.unwrap().unwrap().value;
        assert!(
            stored.len() < value.len() / 3,
            "{layer:?}: {}",
            stored.len()
        );
        let (h, _) = header::parse(&stored).unwrap();
        assert_eq!((h.codec, h.len), (layer.codec().id(), value.len()));
        assert_eq!(store.get("k").await.unwrap().unwrap().value, value);
    }
}

#[tokio::test]
async fn small_and_incompressible_values_are_stored_raw() {
    let backend = MemoryStore::new();
    let store = backend.clone().compressed(CompressedLayer::default());
    let small = session(DEFAULT_MIN_SIZE - 1);
    let random = noise(4096);
    for (k, v) in [("small", &small), ("random", &random)] {
        store
            .set(k, Record::never_expiring(v.clone()))
            .await
            .unwrap();
        assert_eq!(&backend.get(k).await.unwrap().unwrap().value, v, "{k}");
        assert_eq!(&store.get(k).await.unwrap().unwrap().value, v, "{k}");
    }
    // At the threshold, compression starts.
    let at = session(DEFAULT_MIN_SIZE);
    store.set("at", Record::never_expiring(at)).await.unwrap();
    assert!(header::is_headed(
        &backend.get("at").await.unwrap().unwrap().value
    ));
}

#[tokio::test]
async fn raw_values_that_look_headed_are_escaped() {
    let backend = MemoryStore::new();
    let store = backend.clone().compressed(CompressedLayer::default());
    let mut looks_headed = vec![0xC1, b'C', 1, 1, 5];
    looks_headed.extend_from_slice(&noise(2000));
    for v in [Bytes::from_static(&[0xC1, b'C']), Bytes::from(looks_headed)] {
        store
            .set("k", Record::never_expiring(v.clone()))
            .await
            .unwrap();
        let stored = backend.get("k").await.unwrap().unwrap().value;
        assert_eq!(header::parse(&stored).unwrap().0.codec, CodecId::Stored);
        assert_eq!(store.get("k").await.unwrap().unwrap().value, v);
    }
}

#[tokio::test]
async fn values_stay_readable_when_the_setting_changes() {
    let backend = MemoryStore::new();
    let value = session(4096);
    for (i, writer) in layers().into_iter().enumerate() {
        let store = backend.clone().compressed(writer);
        store
            .set(&format!("k{i}"), Record::never_expiring(value.clone()))
            .await
            .unwrap();
    }
    backend
        .set("legacy", Record::never_expiring(value.clone()))
        .await
        .unwrap();
    for reader in layers() {
        let store = backend.clone().compressed(reader.min_size(1 << 20));
        for i in 0..layers().len() {
            let got = store.get(&format!("k{i}")).await.unwrap().unwrap();
            assert_eq!(got.value, value);
        }
        assert_eq!(store.get("legacy").await.unwrap().unwrap().value, value);
    }
}

#[test]
fn decompression_bombs_are_refused() {
    let layer_max = 1 << 20;
    let zeros = vec![0u8; 4 << 20];
    for layer in layers() {
        let layer = layer.max_value_len(layer_max);
        // The header tells the truth: refused before decompressing.
        let honest = headed(&layer, &zeros, zeros.len());
        assert!(honest.len() < 1 << 20, "{layer:?}: {}", honest.len());
        let err = layer.decode_value(honest.clone()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TooLarge, "{layer:?}");
        // The header lies: the data inflates past it and is refused.
        let (_, payload) = header::parse(&honest).unwrap();
        let mut lying = Vec::new();
        header::write(&mut lying, layer.codec().id(), 1024);
        lying.extend_from_slice(payload);
        let err = layer.decode_value(lying.into()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{layer:?}");
    }
    // A header declaring 4 GiB over a tiny payload allocates nothing.
    let mut huge = Vec::new();
    header::write(&mut huge, CodecId::Zstd, u32::MAX as usize);
    let err = CompressedLayer::default()
        .decode_value(huge.into())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge);
}

#[test]
fn truncated_and_garbled_values_are_corrupt_not_panics() {
    let value = session(8192);
    for layer in layers() {
        let good = layer.encode_value(value.clone()).unwrap();
        for cut in [5, good.len() / 2, good.len() - 1] {
            let err = layer.decode_value(good.slice(..cut)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Corrupt, "{layer:?} cut at {cut}");
        }
        let mut garbled = good.to_vec();
        for b in garbled.iter_mut().skip(8).step_by(7) {
            *b ^= 0x5a;
        }
        // Compression is not authentication: garbled data may decode to
        // other bytes of the declared length, but never panics or
        // exceeds it.
        if let Ok(v) = layer.decode_value(garbled.into()) {
            assert_eq!(v.len(), value.len());
        }
    }
}

#[tokio::test]
async fn oversized_writes_are_too_large_and_store_nothing() {
    let backend = MemoryStore::new();
    let store = backend
        .clone()
        .compressed(CompressedLayer::default().max_value_len(1000));
    let value = session(1001);
    let err = store
        .set("k", Record::never_expiring(value.clone()))
        .await
        .unwrap_err();
    assert_eq!((err.kind(), err.op()), (ErrorKind::TooLarge, Op::Set));
    assert_eq!(err.store(), "compressed(memory)");
    let err = store
        .create("k", Record::never_expiring(value))
        .await
        .unwrap_err();
    assert_eq!((err.kind(), err.op()), (ErrorKind::TooLarge, Op::Create));
    assert_eq!(backend.len().await.unwrap(), 0);
}

#[tokio::test]
async fn create_stays_create_and_expiry_passes_through() {
    let store = MemoryStore::new().compressed(CompressedLayer::default().min_size(0));
    let at = SystemTime::now() + Duration::from_secs(600);
    let first = session(2048);
    assert!(store
        .create("k", Record::expiring_at(first.clone(), at))
        .await
        .unwrap());
    assert!(!store
        .create("k", Record::expiring_at(session(4096), at))
        .await
        .unwrap());
    let got = store.get("k").await.unwrap().unwrap();
    assert_eq!((got.value, got.expires_at), (first, Some(at)));
    let later = at + Duration::from_secs(60);
    assert!(store.touch("k", Some(later)).await.unwrap());
    assert_eq!(
        store.get("k").await.unwrap().unwrap().expires_at,
        Some(later)
    );
    assert_eq!(store.name(), "compressed(memory)");
}
