use bytes::Bytes;

use super::header;
use super::key::{random_nonce, Algorithm, TAG_LEN};
use super::keyring::Keyring;
use super::Encrypted;
use crate::error::{Op, Result, StoreError};
use crate::layer::Layer;
use crate::store::Store;

/// Builds [`Encrypted`] stores and holds their settings: the key ring, the
/// algorithm for writes, and whether unencrypted values may be read.
///
/// It is also the codec itself: [`encode_value`](Self::encode_value),
/// [`decode_value`](Self::decode_value) and
/// [`reencrypt_value`](Self::reencrypt_value) work without a store (a
/// migration tool, a fuzzer).
///
/// ```
/// use storestack::{Algorithm, EncryptedLayer, ErrorKind, Key, Keyring};
///
/// let layer = EncryptedLayer::new(Keyring::new(Key::generate("k1")?))
///     .algorithm(Algorithm::XChaCha20Poly1305);
/// let sealed = layer.encode_value("sess:1", b"{\"user\":\"ada\"}")?;
/// assert_eq!(layer.decode_value("sess:1", sealed.clone())?, "{\"user\":\"ada\"}");
/// // Bound to its key: the same bytes under another key do not decrypt.
/// let err = layer.decode_value("sess:2", sealed).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Corrupt);
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct EncryptedLayer {
    keyring: Keyring,
    algorithm: Algorithm,
    plaintext_reads: bool,
}

impl From<Keyring> for EncryptedLayer {
    fn from(keyring: Keyring) -> Self {
        EncryptedLayer::new(keyring)
    }
}

impl From<super::Key> for EncryptedLayer {
    fn from(key: super::Key) -> Self {
        EncryptedLayer::new(Keyring::new(key))
    }
}

fn corrupt(message: impl Into<std::borrow::Cow<'static, str>>) -> StoreError {
    StoreError::corrupt(Op::Get)
        .with_store("encrypted")
        .with_message(message)
}

impl EncryptedLayer {
    /// A layer encrypting with the current key of `keyring` under
    /// AES-256-GCM, refusing unencrypted values.
    pub fn new(keyring: Keyring) -> Self {
        EncryptedLayer {
            keyring,
            algorithm: Algorithm::default(),
            plaintext_reads: false,
        }
    }

    /// The algorithm for writes. Reads use whichever algorithm a value's
    /// header names, so switching is as safe as rotating a key.
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Whether a value without the encryption header is returned as it is
    /// (off by default). Turn it on only while switching encryption on over
    /// an existing store, and off again once every value is rewritten
    /// ([`Encrypted::reencrypt`] rewrites legacy values too): while it is
    /// on, anyone who can write to the backend can plant a plaintext value
    /// that is read as genuine, i.e. forge a session.
    pub fn allow_plaintext_reads(mut self, allow: bool) -> Self {
        self.plaintext_reads = allow;
        self
    }

    /// The key ring.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// `value` encrypted under the current key, bound to `key`. Errors
    /// (with [`Op::Set`]): `Internal` if the system random generator or the
    /// cipher fails.
    pub fn encode_value(&self, key: &str, value: &[u8]) -> Result<Bytes> {
        let current = self.keyring.current();
        let nonce_len = self.algorithm.nonce_len();
        let mut out =
            Vec::with_capacity(5 + current.id().len() + nonce_len + value.len() + TAG_LEN);
        let header_len = header::write(&mut out, self.algorithm, current.id());
        let aad = [&out[..header_len], key.as_bytes()].concat();
        out.resize(header_len + nonce_len, 0);
        random_nonce(&mut out[header_len..]).map_err(|e| {
            StoreError::internal(Op::Set)
                .with_store("encrypted")
                .with_message("system random number generator failed")
                .with_source(e)
        })?;
        out.extend_from_slice(value);
        let (head, body) = out.split_at_mut(header_len + nonce_len);
        let tag = current
            .seal(self.algorithm, &head[header_len..], &aad, body)
            .map_err(|_| {
                StoreError::internal(Op::Set)
                    .with_store("encrypted")
                    .with_message("encryption failed")
            })?;
        out.extend_from_slice(&tag);
        Ok(out.into())
    }

    /// The plaintext of `stored`, read at `key`. Errors (with
    /// [`Op::Get`]): `Corrupt` when the value is not encrypted (unless
    /// [plaintext reads](Self::allow_plaintext_reads) are on), names a key
    /// the ring lacks, or fails authentication (tampered, truncated, or
    /// moved from another key); `Unsupported` for a newer format.
    pub fn decode_value(&self, key: &str, stored: Bytes) -> Result<Bytes> {
        if !header::is_headed(&stored) {
            return match self.plaintext_reads {
                true => Ok(stored),
                false => Err(corrupt("value is not encrypted")),
            };
        }
        let envelope = header::parse(&stored)?;
        let Some(k) = self.keyring.get(envelope.key_id) else {
            return Err(corrupt(format!(
                "value is encrypted with key `{}`, which is not in the key ring",
                envelope.key_id
            )));
        };
        let aad = [envelope.header, key.as_bytes()].concat();
        let mut plain = envelope.ciphertext.to_vec();
        k.open(
            envelope.algorithm,
            envelope.nonce,
            &aad,
            &mut plain,
            envelope.tag,
        )
        .map_err(|_| corrupt("value failed authentication"))?;
        Ok(plain.into())
    }

    /// `stored` rewritten under the current key and algorithm, or `None`
    /// when it already is. A legacy plaintext value is encrypted when
    /// plaintext reads are on. Errors as [`decode_value`](Self::decode_value).
    pub fn reencrypt_value(&self, key: &str, stored: Bytes) -> Result<Option<Bytes>> {
        if header::is_headed(&stored) {
            let envelope = header::parse(&stored)?;
            if envelope.key_id == self.keyring.current().id()
                && envelope.algorithm == self.algorithm
            {
                return Ok(None);
            }
        }
        let plain = self.decode_value(key, stored)?;
        self.encode_value(key, &plain).map(Some)
    }
}

impl<S: Store> Layer<S> for EncryptedLayer {
    type Store = Encrypted<S>;

    fn layer(&self, inner: S) -> Encrypted<S> {
        Encrypted::with_layer(inner, self.clone())
    }
}
