use bytes::Bytes;

use super::codec::{self, Codec};
use super::header::{self, CodecId};
use super::Compressed;
use crate::error::{ErrorKind, Op, Result, StoreError};
use crate::layer::Layer;
use crate::limits::Limits;
use crate::store::Store;

/// Values shorter than this are stored as they are by default.
pub const DEFAULT_MIN_SIZE: usize = 512;

/// Builds [`Compressed`] stores and holds their settings: the codec, the
/// size threshold and the largest value accepted.
///
/// It is also the codec itself: [`encode_value`](Self::encode_value) and
/// [`decode_value`](Self::decode_value) transform values without a store
/// (a migration tool, a fuzzer).
///
/// ```
/// use storestack::{Codec, CompressedLayer};
///
/// let layer = CompressedLayer::new(Codec::default()).min_size(1024);
/// let json = format!(r#"{{"cart":[{}]}}"#, r#"{"sku":"A-1","qty":1},"#.repeat(100));
/// let stored = layer.encode_value(json.clone().into())?;
/// assert!(stored.len() < json.len() / 4);
/// assert_eq!(layer.decode_value(stored)?, json);
/// # Ok::<_, storestack::StoreError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressedLayer {
    codec: Codec,
    min_size: usize,
    max_len: usize,
}

impl Default for CompressedLayer {
    /// [`Codec::default()`] (zstd level 3), values under
    /// [`DEFAULT_MIN_SIZE`] bytes stored as they are, and the default value
    /// limit ([`DEFAULT_MAX_VALUE_LEN`](crate::limits::DEFAULT_MAX_VALUE_LEN)).
    fn default() -> Self {
        CompressedLayer::new(Codec::default())
    }
}

impl From<Codec> for CompressedLayer {
    fn from(codec: Codec) -> Self {
        CompressedLayer::new(codec)
    }
}

impl CompressedLayer {
    /// A layer compressing with `codec`, other settings at their defaults.
    pub fn new(codec: Codec) -> Self {
        CompressedLayer {
            codec,
            min_size: DEFAULT_MIN_SIZE,
            max_len: Limits::default().max_value_len,
        }
    }

    /// zstd at `level` (see [`Codec::Zstd`]).
    #[cfg(feature = "zstd")]
    pub fn zstd(level: i32) -> Self {
        Self::new(Codec::Zstd { level })
    }

    /// LZ4 (see [`Codec::Lz4`]).
    #[cfg(feature = "lz4")]
    pub fn lz4() -> Self {
        Self::new(Codec::Lz4)
    }

    /// gzip at `level` (see [`Codec::Gzip`]).
    #[cfg(feature = "gzip")]
    pub fn gzip(level: u32) -> Self {
        Self::new(Codec::Gzip { level })
    }

    /// Values shorter than `bytes` are stored as they are.
    pub fn min_size(mut self, bytes: usize) -> Self {
        self.min_size = bytes;
        self
    }

    /// The largest value, before compression, that is written or
    /// decompressed (at most `u32::MAX`). Writing a larger value is
    /// `TooLarge`; reading a value whose header declares a larger one is
    /// `TooLarge` too, before anything is allocated, so a crafted value
    /// cannot exhaust memory.
    pub fn max_value_len(mut self, bytes: usize) -> Self {
        self.max_len = bytes.min(u32::MAX as usize);
        self
    }

    /// Takes the value limit from `limits`.
    pub fn limits(self, limits: Limits) -> Self {
        self.max_value_len(limits.max_value_len)
    }

    /// The codec used for writes.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The form of `value` to store: compressed behind a header, or the
    /// value itself when it is shorter than the threshold or does not
    /// shrink. Errors (with [`Op::Set`]): `TooLarge` over the limit,
    /// `Internal` if the codec fails.
    pub fn encode_value(&self, value: Bytes) -> Result<Bytes> {
        Limits::default()
            .max_value_len(self.max_len)
            .check_value(Op::Set, value.len())
            .map_err(|e| e.with_store("compressed"))?;
        if value.len() >= self.min_size {
            let mut out = Vec::with_capacity(header::MAX_LEN + self.codec.bound(value.len()));
            header::write(&mut out, self.codec.id(), value.len());
            self.codec.compress(&value, &mut out).map_err(|e| {
                StoreError::internal(Op::Set)
                    .with_store("compressed")
                    .with_message("compression failed")
                    .with_source(e)
            })?;
            if out.len() < value.len() {
                // A store may keep the buffer as it is (MemoryStore does):
                // give back the worst-case room.
                if out.capacity() - out.len() > out.len() / 8 + 64 {
                    out.shrink_to_fit();
                }
                return Ok(out.into());
            }
        }
        if header::is_headed(&value) {
            // A raw value that looks headed is escaped, so it reads back
            // as itself.
            let mut out = Vec::with_capacity(header::MAX_LEN + value.len());
            header::write(&mut out, CodecId::Stored, value.len());
            out.extend_from_slice(&value);
            return Ok(out.into());
        }
        Ok(value)
    }

    /// The value `stored` stands for: decompressed if it has a header,
    /// itself if it has none (written before compression was switched on).
    /// Errors (with [`Op::Get`]): `Corrupt` for a bad header or data,
    /// `TooLarge` when the header declares more than the limit,
    /// `Unsupported` for a codec this build lacks or a newer format.
    pub fn decode_value(&self, stored: Bytes) -> Result<Bytes> {
        if !header::is_headed(&stored) {
            return Ok(stored);
        }
        let (h, payload) = header::parse(&stored)?;
        if h.len > self.max_len {
            return Err(StoreError::new(ErrorKind::TooLarge, Op::Get)
                .with_store("compressed")
                .with_message(format!(
                    "value would decompress to {} bytes, more than the maximum of {}",
                    h.len, self.max_len
                )));
        }
        if h.codec == CodecId::Stored {
            let start = stored.len() - payload.len();
            return match payload.len() == h.len {
                true => Ok(stored.slice(start..)),
                false => Err(StoreError::corrupt(Op::Get)
                    .with_store("compressed")
                    .with_message("stored value does not have its declared length")),
            };
        }
        codec::decompress(h.codec, payload, h.len).map(Bytes::from)
    }
}

impl<S: Store> Layer<S> for CompressedLayer {
    type Store = Compressed<S>;

    fn layer(&self, inner: S) -> Compressed<S> {
        Compressed::with_layer(inner, self.clone())
    }
}
