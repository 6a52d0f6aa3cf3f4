//! The Compressed decoder: arbitrary stored bytes, valid encodings with
//! flipped bytes or cut short, and round trips, for every codec. Decoding
//! never panics, never returns more than the limit, and fails only with
//! `Corrupt`, `TooLarge` or `Unsupported`.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use storestack::{CompressedLayer, ErrorKind};

const MAX: usize = 1 << 20;

fn check_decode(layer: &CompressedLayer, stored: Bytes) {
    match layer.decode_value(stored) {
        Ok(value) => assert!(value.len() <= MAX),
        Err(e) => assert!(
            matches!(
                e.kind(),
                ErrorKind::Corrupt | ErrorKind::TooLarge | ErrorKind::Unsupported
            ),
            "{e}"
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let layer = match (mode >> 2) % 3 {
        0 => CompressedLayer::zstd(1),
        1 => CompressedLayer::lz4(),
        _ => CompressedLayer::gzip(1),
    }
    .min_size(0)
    .max_value_len(MAX);
    match mode & 3 {
        // Arbitrary stored bytes, with the magic prepended half the time
        // so the fuzzer spends its time inside the codecs.
        0 => check_decode(&layer, Bytes::copy_from_slice(rest)),
        1 => check_decode(&layer, [&[0xC1, b'C', 1][..], rest].concat().into()),
        // A valid encoding, one byte flipped and possibly cut short.
        2 => {
            let [p0, p1, flip, cut, value @ ..] = rest else {
                return;
            };
            let mut stored = layer.encode_value(Bytes::copy_from_slice(value)).unwrap().to_vec();
            if stored.is_empty() {
                return;
            }
            let at = usize::from(u16::from_le_bytes([*p0, *p1])) % stored.len();
            stored[at] ^= flip | 1;
            if cut & 1 == 1 {
                stored.truncate(at);
            }
            check_decode(&layer, stored.into());
        }
        // Round trip.
        _ => {
            let stored = layer.encode_value(Bytes::copy_from_slice(rest)).unwrap();
            assert!(stored.len() <= rest.len() + 9);
            assert_eq!(layer.decode_value(stored).unwrap(), rest);
        }
    }
});
