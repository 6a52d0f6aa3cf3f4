//! The codecs: compression into a buffer that already holds the header,
//! and bounded decompression into exactly the declared length.
//!
//! zstd contexts are expensive to create (a new one per call costs more
//! than compressing a 2 KiB session), so each thread keeps one compression
//! and one decompression context and reuses them. lz4 and gzip keep no
//! state worth reusing.

use super::header::CodecId;
use crate::error::{ErrorKind, Op, Result, StoreError};

/// A compression algorithm and its level.
///
/// Each variant exists when its cargo feature (`zstd`, `lz4`, `gzip`) is
/// on; a value written with a codec this build lacks reads as
/// `Unsupported`, so turn on every codec any writer of the store uses (the
/// `compression` feature turns on all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Codec {
    /// Zstandard at a level from 1 (fastest) to 22 (smallest); negative
    /// levels trade ratio for even more speed. The default is level 3.
    #[cfg(feature = "zstd")]
    Zstd {
        /// The compression level.
        level: i32,
    },
    /// LZ4 block format (no level): the fastest to decompress.
    #[cfg(feature = "lz4")]
    Lz4,
    /// gzip (RFC 1952) at a level from 0 to 9, for values that programs in
    /// other languages read too (see the header format in the
    /// [module docs](super)).
    #[cfg(feature = "gzip")]
    Gzip {
        /// The compression level, 0 to 9 (larger is clamped to 9).
        level: u32,
    },
}

impl Default for Codec {
    /// zstd level 3 when the `zstd` feature is on, else lz4, else gzip
    /// level 6.
    #[allow(unreachable_code)]
    fn default() -> Self {
        #[cfg(feature = "zstd")]
        return Codec::Zstd { level: 3 };
        #[cfg(feature = "lz4")]
        return Codec::Lz4;
        #[cfg(feature = "gzip")]
        return Codec::Gzip { level: 6 };
    }
}

impl Codec {
    pub(super) fn id(self) -> CodecId {
        match self {
            #[cfg(feature = "zstd")]
            Codec::Zstd { .. } => CodecId::Zstd,
            #[cfg(feature = "lz4")]
            Codec::Lz4 => CodecId::Lz4,
            #[cfg(feature = "gzip")]
            Codec::Gzip { .. } => CodecId::Gzip,
        }
    }

    /// The most bytes compressing `len` bytes can produce.
    pub(super) fn bound(self, len: usize) -> usize {
        match self {
            #[cfg(feature = "zstd")]
            Codec::Zstd { .. } => zstd::zstd_safe::compress_bound(len),
            #[cfg(feature = "lz4")]
            Codec::Lz4 => lz4_flex::block::get_maximum_output_size(len),
            // Stored deflate blocks cost 5 bytes per 64 KiB, gzip 18 more.
            #[cfg(feature = "gzip")]
            Codec::Gzip { .. } => len + len / 8192 + 64,
        }
    }

    /// Appends the compressed form of `data` to `out`.
    pub(super) fn compress(self, data: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        match self {
            #[cfg(feature = "zstd")]
            Codec::Zstd { level } => zstd_ctx::compress(level, data, out),
            #[cfg(feature = "lz4")]
            Codec::Lz4 => {
                let start = out.len();
                out.resize(
                    start + lz4_flex::block::get_maximum_output_size(data.len()),
                    0,
                );
                let n = lz4_flex::block::compress_into(data, &mut out[start..])
                    .map_err(std::io::Error::other)?;
                out.truncate(start + n);
                Ok(())
            }
            #[cfg(feature = "gzip")]
            Codec::Gzip { level } => {
                use std::io::Write;
                let level = flate2::Compression::new(level.min(9));
                let mut enc = flate2::write::GzEncoder::new(std::mem::take(out), level);
                enc.write_all(data)?;
                *out = enc.finish()?;
                Ok(())
            }
        }
    }
}

fn corrupt(codec: CodecId, source: Option<std::io::Error>) -> StoreError {
    let err = StoreError::corrupt(Op::Get)
        .with_store("compressed")
        .with_message(format!(
            "{} data does not decompress to its declared length",
            codec.name()
        ));
    match source {
        Some(source) => err.with_source(source),
        None => err,
    }
}

/// Decompresses `payload` written by `codec`, refusing anything that is
/// not exactly `len` bytes. The caller has checked `len` against the
/// limit, so at most `len` bytes are ever allocated.
pub(super) fn decompress(codec: CodecId, payload: &[u8], len: usize) -> Result<Vec<u8>> {
    let out = match codec {
        CodecId::Stored => Ok(payload.to_vec()),
        #[cfg(feature = "zstd")]
        CodecId::Zstd => zstd_ctx::decompress(payload, len),
        #[cfg(feature = "lz4")]
        CodecId::Lz4 => {
            let mut out = vec![0u8; len];
            lz4_flex::block::decompress_into(payload, &mut out)
                .map(|n| {
                    out.truncate(n);
                    out
                })
                .map_err(std::io::Error::other)
        }
        #[cfg(feature = "gzip")]
        CodecId::Gzip => {
            use std::io::Read;
            let mut out = Vec::with_capacity(len);
            flate2::read::GzDecoder::new(payload)
                .take(len as u64 + 1)
                .read_to_end(&mut out)
                .map(|_| out)
        }
        #[allow(unreachable_patterns)]
        other => {
            return Err(StoreError::new(ErrorKind::Unsupported, Op::Get)
                .with_store("compressed")
                .with_message(format!(
                    "value is compressed with {}, which this build does not include (cargo feature `{}`)",
                    other.name(),
                    other.name()
                )))
        }
    };
    match out {
        Ok(out) if out.len() == len => Ok(out),
        Ok(_) => Err(corrupt(codec, None)),
        Err(e) => Err(corrupt(codec, Some(e))),
    }
}

#[cfg(feature = "zstd")]
mod zstd_ctx {
    use std::cell::RefCell;
    use std::io::{Cursor, Result};

    use zstd::bulk::{Compressor, Decompressor};

    thread_local! {
        static COMPRESSOR: RefCell<Option<(i32, Compressor<'static>)>> = const { RefCell::new(None) };
        static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
    }

    pub(super) fn compress(level: i32, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        COMPRESSOR.with_borrow_mut(|slot| {
            let compressor = match slot {
                Some((current, c)) => {
                    if *current != level {
                        c.set_compression_level(level)?;
                        *current = level;
                    }
                    c
                }
                None => &mut slot.insert((level, Compressor::new(level)?)).1,
            };
            let start = out.len();
            out.reserve(zstd::zstd_safe::compress_bound(data.len()));
            // The cursor makes zstd write after the header already in `out`.
            let mut cursor = Cursor::new(std::mem::take(out));
            cursor.set_position(start as u64);
            let written = compressor.compress_to_buffer(data, &mut cursor);
            *out = cursor.into_inner();
            written.map(|_| ())
        })
    }

    pub(super) fn decompress(payload: &[u8], len: usize) -> Result<Vec<u8>> {
        DECOMPRESSOR.with_borrow_mut(|slot| {
            let decompressor = match slot {
                Some(d) => d,
                None => slot.insert(Decompressor::new()?),
            };
            // zstd writes into the capacity only: a frame that inflates
            // past `len` is an error, not an allocation.
            let mut out = Vec::with_capacity(len);
            decompressor.decompress_to_buffer(payload, &mut out)?;
            Ok(out)
        })
    }
}
