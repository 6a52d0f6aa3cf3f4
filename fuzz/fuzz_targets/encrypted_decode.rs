//! The Encrypted decoder: arbitrary stored bytes never decrypt (no
//! forgery), any change to a sealed value or to its store key is
//! `Corrupt`, round trips and re-encryption return the plaintext, and
//! nothing panics.
#![no_main]

use std::sync::LazyLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use storestack::{Algorithm, EncryptedLayer, ErrorKind, Key, Keyring};

fn ring(first: (&str, u8), second: (&str, u8)) -> Keyring {
    Keyring::from_keys([
        Key::from_bytes(first.0, &[first.1; 32]).unwrap(),
        Key::from_bytes(second.0, &[second.1; 32]).unwrap(),
    ])
    .unwrap()
}

static LAYERS: LazyLock<[EncryptedLayer; 2]> = LazyLock::new(|| {
    [
        EncryptedLayer::new(ring(("k1", 1), ("k2", 2))),
        EncryptedLayer::new(ring(("k2", 2), ("k1", 1))).algorithm(Algorithm::XChaCha20Poly1305),
    ]
});

const KEY: &str = "sess:fuzz";

fn refused(layer: &EncryptedLayer, key: &str, stored: Vec<u8>) {
    let err = layer.decode_value(key, stored.into()).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Corrupt | ErrorKind::Unsupported), "{err}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let layer = &LAYERS[usize::from(mode >> 7)];
    let other = &LAYERS[1 - usize::from(mode >> 7)];
    match mode & 3 {
        // Arbitrary bytes, bare and behind the magic: never accepted
        // (plaintext reads are off).
        0 => refused(layer, KEY, rest.to_vec()),
        1 => refused(layer, KEY, [&[0xC1, b'E', 1][..], rest].concat()),
        // A sealed value with one byte changed, cut, or moved to another key.
        2 => {
            let [p0, p1, flip, how, value @ ..] = rest else {
                return;
            };
            let mut stored = layer.encode_value(KEY, value).unwrap().to_vec();
            let at = usize::from(u16::from_le_bytes([*p0, *p1])) % stored.len();
            match how % 3 {
                0 => {
                    stored[at] ^= flip | 1;
                    refused(layer, KEY, stored);
                }
                1 => {
                    stored.truncate(at);
                    refused(layer, KEY, stored);
                }
                _ => {
                    let moved = format!("sess:{}", String::from_utf8_lossy(&value[..value.len().min(8)]));
                    if moved != KEY {
                        refused(layer, &moved, stored);
                    }
                }
            }
        }
        // Round trip, and re-encryption under the other ring and algorithm.
        _ => {
            let stored = layer.encode_value(KEY, rest).unwrap();
            assert_eq!(layer.decode_value(KEY, stored.clone()).unwrap(), rest);
            let moved = other.reencrypt_value(KEY, stored).unwrap().expect("rewritten");
            assert_eq!(other.decode_value(KEY, moved.clone()).unwrap(), rest);
            assert_eq!(layer.decode_value(KEY, moved).unwrap(), Bytes::copy_from_slice(rest));
        }
    }
});
