//! Keys, algorithms and the errors of loading keys.

use std::fmt;

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{AeadInPlace, KeyInit, OsRng};
use aes_gcm::Aes256Gcm;
use base64::Engine;
use chacha20poly1305::XChaCha20Poly1305;
use zeroize::Zeroizing;

use crate::error::{Op, StoreError};

/// The length of every key, in bytes.
pub const KEY_LEN: usize = 32;
/// The length of every authentication tag, in bytes.
pub(super) const TAG_LEN: usize = 16;
/// The longest key id, in bytes.
pub const MAX_KEY_ID_LEN: usize = 64;

/// An AEAD algorithm. Both take 256-bit keys and 128-bit tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Algorithm {
    /// AES-256-GCM with a random 96-bit nonce: fast wherever the CPU has
    /// AES instructions. Random 96-bit nonces are safe for about 2³²
    /// encryptions per key: rotate keys well before that.
    #[default]
    Aes256Gcm,
    /// XChaCha20-Poly1305 with a random 192-bit nonce: no practical limit
    /// on encryptions per key, and constant-time without AES instructions.
    XChaCha20Poly1305,
}

impl Algorithm {
    pub(super) fn id(self) -> u8 {
        match self {
            Algorithm::Aes256Gcm => 1,
            Algorithm::XChaCha20Poly1305 => 2,
        }
    }

    pub(super) fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Algorithm::Aes256Gcm),
            2 => Some(Algorithm::XChaCha20Poly1305),
            _ => None,
        }
    }

    /// The nonce length in bytes: 12 or 24.
    pub fn nonce_len(self) -> usize {
        match self {
            Algorithm::Aes256Gcm => 12,
            Algorithm::XChaCha20Poly1305 => 24,
        }
    }
}

/// Why a key or a key ring could not be loaded. Messages name key ids and
/// environment variables, never key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is not [`KEY_LEN`] bytes long.
    #[error("key `{id}` is {len} bytes, expected {KEY_LEN}")]
    WrongLength {
        /// The key's id.
        id: String,
        /// Its length in bytes.
        len: usize,
    },
    /// The key text does not decode.
    #[error("key `{id}` is not valid {encoding}")]
    BadEncoding {
        /// The key's id.
        id: String,
        /// `"hex"` or `"base64"`.
        encoding: &'static str,
    },
    /// A key id that is empty, too long or has other characters than
    /// ASCII letters, digits, `-`, `_` and `.` (not shown: it may be a
    /// misplaced key).
    #[error("a key id of {len} bytes is not 1 to {MAX_KEY_ID_LEN} ASCII letters, digits, `-`, `_` or `.`")]
    BadId {
        /// The length of the refused id.
        len: usize,
    },
    /// Two keys of a ring share an id.
    #[error("key id `{id}` appears more than once")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// A ring needs at least one key.
    #[error("key ring is empty")]
    Empty,
    /// The environment variable is not set.
    #[error("environment variable `{var}` is not set")]
    MissingVar {
        /// Its name.
        var: String,
    },
    /// A key ring specification entry is not `id:key` (or the variable is
    /// not Unicode).
    #[error("entry {index} of {source_name} is not `id:key`")]
    BadFormat {
        /// Where the specification came from (`"key ring"`, or the
        /// variable's name).
        source_name: String,
        /// The 0-based index of the bad entry.
        index: usize,
    },
    /// The operating system's random number generator failed.
    #[error("system random number generator failed")]
    Random(#[source] aes_gcm::aead::rand_core::Error),
}

impl From<KeyError> for StoreError {
    /// `InvalidInput` on [`Op::Connect`]: keys are loaded while a stack is
    /// built.
    fn from(err: KeyError) -> Self {
        StoreError::invalid_input(Op::Connect)
            .with_store("encrypted")
            .with_message(err.to_string())
            .with_source(err)
    }
}

/// One 256-bit key and its id. The key material lives only inside the
/// ciphers, which wipe it when the key is dropped; `Debug` shows the id
/// only.
pub struct Key {
    id: String,
    aes: Aes256Gcm,
    xchacha: XChaCha20Poly1305,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("material", &"<redacted>")
            .finish()
    }
}

pub(super) fn check_id(id: &str) -> Result<(), KeyError> {
    let ok = (1..=MAX_KEY_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    match ok {
        true => Ok(()),
        false => Err(KeyError::BadId { len: id.len() }),
    }
}

impl Key {
    /// A key from [`KEY_LEN`] raw bytes. The id (1 to 64 ASCII letters,
    /// digits, `-`, `_`, `.`) is written in front of every value so a
    /// reader knows which key to use.
    pub fn from_bytes(id: impl Into<String>, bytes: &[u8]) -> Result<Key, KeyError> {
        let id = id.into();
        check_id(&id)?;
        if bytes.len() != KEY_LEN {
            return Err(KeyError::WrongLength {
                id,
                len: bytes.len(),
            });
        }
        Ok(Key {
            aes: Aes256Gcm::new_from_slice(bytes).expect("length checked"),
            xchacha: XChaCha20Poly1305::new_from_slice(bytes).expect("length checked"),
            id,
        })
    }

    /// A key from 64 hex digits.
    pub fn from_hex(id: impl Into<String>, hex: &str) -> Result<Key, KeyError> {
        let id = id.into();
        check_id(&id)?;
        match hex::decode(hex.trim()) {
            Ok(bytes) => Self::from_bytes(id, &Zeroizing::new(bytes)),
            Err(_) => Err(KeyError::BadEncoding {
                id,
                encoding: "hex",
            }),
        }
    }

    /// A key from base64, standard or URL-safe alphabet, padded or not
    /// (`openssl rand -base64 32` makes one).
    pub fn from_base64(id: impl Into<String>, text: &str) -> Result<Key, KeyError> {
        use base64::engine::{general_purpose as gp, DecodePaddingMode};
        let id = id.into();
        check_id(&id)?;
        let config = gp::GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent);
        let text = text.trim();
        let decoded = gp::GeneralPurpose::new(&base64::alphabet::STANDARD, config)
            .decode(text)
            .or_else(|_| gp::GeneralPurpose::new(&base64::alphabet::URL_SAFE, config).decode(text));
        match decoded {
            Ok(bytes) => Self::from_bytes(id, &Zeroizing::new(bytes)),
            Err(_) => Err(KeyError::BadEncoding {
                id,
                encoding: "base64",
            }),
        }
    }

    /// A fresh random key from the operating system's generator.
    pub fn generate(id: impl Into<String>) -> Result<Key, KeyError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        OsRng
            .try_fill_bytes(bytes.as_mut())
            .map_err(KeyError::Random)?;
        Self::from_bytes(id, bytes.as_ref())
    }

    /// The key's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Encrypts `buf` in place; returns the tag.
    pub(super) fn seal(
        &self,
        algorithm: Algorithm,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], aes_gcm::aead::Error> {
        let tag = match algorithm {
            Algorithm::Aes256Gcm => self.aes.encrypt_in_place_detached(nonce.into(), aad, buf)?,
            Algorithm::XChaCha20Poly1305 => {
                self.xchacha
                    .encrypt_in_place_detached(nonce.into(), aad, buf)?
            }
        };
        Ok(tag.into())
    }

    /// Decrypts and authenticates `buf` in place.
    pub(super) fn open(
        &self,
        algorithm: Algorithm,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), aes_gcm::aead::Error> {
        match algorithm {
            Algorithm::Aes256Gcm => {
                self.aes
                    .decrypt_in_place_detached(nonce.into(), aad, buf, tag.into())
            }
            Algorithm::XChaCha20Poly1305 => {
                self.xchacha
                    .decrypt_in_place_detached(nonce.into(), aad, buf, tag.into())
            }
        }
    }
}

/// Fills `nonce` from the operating system's generator.
pub(super) fn random_nonce(nonce: &mut [u8]) -> Result<(), aes_gcm::aead::rand_core::Error> {
    OsRng.try_fill_bytes(nonce)
}

// The ciphers wipe their key material on drop (the `zeroize` features of
// `aes`, `polyval` and `chacha20poly1305`); keep it that way.
fn _assert_zeroize_on_drop() {
    fn wipes<T: zeroize::ZeroizeOnDrop>() {}
    wipes::<aes::Aes256>();
    wipes::<XChaCha20Poly1305>();
}
