//! The header in front of every value the Compressed decorator transforms.
//!
//! ```text
//! byte 0     0xC1          magic: never the first byte of UTF-8 text
//!                          (so never JSON) nor of a MessagePack value
//! byte 1     0x43 ('C')    magic: Compressed
//! byte 2     version       1
//! byte 3     codec         0 stored, 1 zstd, 2 lz4 (block), 3 gzip (RFC 1952)
//! bytes 4..  length        decompressed length, unsigned LEB128, 1 to 5 bytes,
//!                          at most u32::MAX
//! then       payload       the codec's output (for "stored": the value itself)
//! ```
//!
//! A 2 KiB value carries 6 header bytes.

use crate::error::{ErrorKind, Op, Result, StoreError};

/// The two magic bytes.
pub(super) const MAGIC: [u8; 2] = [0xC1, b'C'];
/// The only format version so far.
pub(super) const VERSION: u8 = 1;
/// The longest header: magic, version, codec and a 5-byte length.
pub(super) const MAX_LEN: usize = 9;

/// The codec byte of the header. Ids are fixed whatever features are
/// compiled in, so every build recognizes every value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CodecId {
    Stored = 0,
    Zstd = 1,
    Lz4 = 2,
    Gzip = 3,
}

impl CodecId {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => CodecId::Stored,
            1 => CodecId::Zstd,
            2 => CodecId::Lz4,
            3 => CodecId::Gzip,
            _ => return None,
        })
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            CodecId::Stored => "stored",
            CodecId::Zstd => "zstd",
            CodecId::Lz4 => "lz4",
            CodecId::Gzip => "gzip",
        }
    }
}

/// A parsed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Header {
    pub(super) codec: CodecId,
    /// The decompressed length the writer declared.
    pub(super) len: usize,
}

/// Whether `value` starts with the magic, i.e. must be read as headed.
pub(super) fn is_headed(value: &[u8]) -> bool {
    value.starts_with(&MAGIC)
}

/// Appends the header for `codec` and `len` (at most `u32::MAX`) to `out`.
pub(super) fn write(out: &mut Vec<u8>, codec: CodecId, len: usize) {
    debug_assert!(u32::try_from(len).is_ok());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(codec as u8);
    let mut n = len as u64;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn corrupt(message: &'static str) -> StoreError {
    StoreError::corrupt(Op::Get)
        .with_store("compressed")
        .with_message(message)
}

/// Parses the header of a headed value; returns it and the payload.
pub(super) fn parse(value: &[u8]) -> Result<(Header, &[u8])> {
    let rest = value
        .strip_prefix(&MAGIC[..])
        .ok_or_else(|| corrupt("compression header has no magic"))?;
    let [version, codec, rest @ ..] = rest else {
        return Err(corrupt("compression header is truncated"));
    };
    match *version {
        VERSION => {}
        0 => return Err(corrupt("compression header has version 0")),
        _ => {
            return Err(StoreError::new(ErrorKind::Unsupported, Op::Get)
                .with_store("compressed")
                .with_message(format!(
                    "compression header version {version} is newer than this build reads"
                )))
        }
    }
    let codec = CodecId::from_byte(*codec).ok_or_else(|| corrupt("unknown compression codec"))?;
    let mut len: u64 = 0;
    for (i, &byte) in rest.iter().enumerate().take(5) {
        len |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if len > u64::from(u32::MAX) {
                return Err(corrupt("compression header length is out of range"));
            }
            let header = Header {
                codec,
                len: len as usize,
            };
            return Ok((header, &rest[i + 1..]));
        }
    }
    Err(corrupt("compression header length is malformed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_lengths_at_varint_boundaries() {
        for len in [0usize, 1, 127, 128, 2048, 16_383, 16_384, u32::MAX as usize] {
            let mut buf = Vec::new();
            write(&mut buf, CodecId::Lz4, len);
            assert!(buf.len() <= MAX_LEN);
            buf.extend_from_slice(b"payload");
            let (h, payload) = parse(&buf).unwrap();
            assert_eq!(h.len, len);
            assert_eq!(h.codec, CodecId::Lz4);
            assert_eq!(payload, b"payload");
        }
        let mut two_kib = Vec::new();
        write(&mut two_kib, CodecId::Zstd, 2048);
        assert_eq!(two_kib.len(), 6);
    }

    #[test]
    fn bad_headers_are_refused() {
        let kind = |v: &[u8]| parse(v).unwrap_err().kind();
        assert_eq!(kind(&[0xC1, b'C']), ErrorKind::Corrupt);
        assert_eq!(kind(&[0xC1, b'C', 1]), ErrorKind::Corrupt);
        assert_eq!(kind(&[0xC1, b'C', 0, 1, 0]), ErrorKind::Corrupt);
        assert_eq!(kind(&[0xC1, b'C', 2, 1, 0]), ErrorKind::Unsupported);
        assert_eq!(kind(&[0xC1, b'C', 1, 9, 0]), ErrorKind::Corrupt);
        // Unterminated, too long, and beyond u32.
        assert_eq!(kind(&[0xC1, b'C', 1, 1, 0x80]), ErrorKind::Corrupt);
        assert_eq!(
            kind(&[0xC1, b'C', 1, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 1]),
            ErrorKind::Corrupt
        );
        assert_eq!(
            kind(&[0xC1, b'C', 1, 1, 0xff, 0xff, 0xff, 0xff, 0x1f]),
            ErrorKind::Corrupt
        );
    }

    #[test]
    fn plain_payloads_are_not_headed() {
        assert!(!is_headed(br#"{"user":"ada"}"#));
        assert!(!is_headed(&[0x82, 0xa4])); // a MessagePack map
        assert!(!is_headed(b""));
        assert!(is_headed(&[0xC1, b'C', 1]));
    }
}
