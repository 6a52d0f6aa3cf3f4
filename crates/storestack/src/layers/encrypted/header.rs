//! The envelope of an encrypted value.
//!
//! ```text
//! byte 0       0xC1          magic (never starts UTF-8 text or MessagePack)
//! byte 1       0x45 ('E')    magic: Encrypted
//! byte 2       version       1
//! byte 3       algorithm     1 AES-256-GCM, 2 XChaCha20-Poly1305
//! byte 4       id length     1 to 64
//! then         key id        ASCII letters, digits, `-`, `_`, `.`
//! then         nonce         12 bytes (AES-256-GCM) or 24 (XChaCha20-Poly1305)
//! then         ciphertext    as long as the plaintext
//! last 16      tag
//! ```
//!
//! The associated data is the header up to the key id, followed by the
//! store key.

use super::key::{check_id, Algorithm, TAG_LEN};
use crate::error::{ErrorKind, Op, Result, StoreError};

pub(super) const MAGIC: [u8; 2] = [0xC1, b'E'];
pub(super) const VERSION: u8 = 1;

/// A parsed envelope, borrowing from the stored value.
#[derive(Debug)]
pub(super) struct Envelope<'a> {
    pub(super) algorithm: Algorithm,
    pub(super) key_id: &'a str,
    /// Magic to key id: the authenticated part of the header.
    pub(super) header: &'a [u8],
    pub(super) nonce: &'a [u8],
    pub(super) ciphertext: &'a [u8],
    pub(super) tag: &'a [u8],
}

pub(super) fn is_headed(value: &[u8]) -> bool {
    value.starts_with(&MAGIC)
}

/// Appends the header up to the key id; returns its length.
pub(super) fn write(out: &mut Vec<u8>, algorithm: Algorithm, key_id: &str) -> usize {
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(algorithm.id());
    // Key ids are checked to be 1 to 64 bytes when keys are made.
    out.push(key_id.len() as u8);
    out.extend_from_slice(key_id.as_bytes());
    5 + key_id.len()
}

fn corrupt(message: &'static str) -> StoreError {
    StoreError::corrupt(Op::Get)
        .with_store("encrypted")
        .with_message(message)
}

/// Parses a value that [`is_headed`].
pub(super) fn parse(value: &[u8]) -> Result<Envelope<'_>> {
    let [_, _, version, algorithm, id_len, rest @ ..] = value else {
        return Err(corrupt("encryption header is truncated"));
    };
    if !is_headed(value) {
        return Err(corrupt("encryption header has no magic"));
    }
    match *version {
        VERSION => {}
        0 => return Err(corrupt("encryption header has version 0")),
        _ => {
            return Err(StoreError::new(ErrorKind::Unsupported, Op::Get)
                .with_store("encrypted")
                .with_message(format!(
                    "encryption header version {version} is newer than this build reads"
                )))
        }
    }
    let algorithm =
        Algorithm::from_id(*algorithm).ok_or_else(|| corrupt("unknown encryption algorithm"))?;
    let id_len = usize::from(*id_len);
    let nonce_len = algorithm.nonce_len();
    if rest.len() < id_len + nonce_len + TAG_LEN {
        return Err(corrupt("encrypted value is truncated"));
    }
    let (id, rest) = rest.split_at(id_len);
    let key_id = std::str::from_utf8(id)
        .ok()
        .filter(|id| check_id(id).is_ok())
        .ok_or_else(|| corrupt("encryption header has a malformed key id"))?;
    let (nonce, rest) = rest.split_at(nonce_len);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    Ok(Envelope {
        algorithm,
        key_id,
        header: &value[..5 + id_len],
        nonce,
        ciphertext,
        tag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_writes() {
        for alg in [Algorithm::Aes256Gcm, Algorithm::XChaCha20Poly1305] {
            let mut v = Vec::new();
            let n = write(&mut v, alg, "k-1");
            v.extend(std::iter::repeat_n(7, alg.nonce_len()));
            v.extend_from_slice(b"cipher");
            v.extend_from_slice(&[9; TAG_LEN]);
            let e = parse(&v).unwrap();
            assert_eq!((e.algorithm, e.key_id, e.header), (alg, "k-1", &v[..n]));
            assert_eq!(
                (e.nonce.len(), e.ciphertext, e.tag),
                (alg.nonce_len(), &b"cipher"[..], &[9; TAG_LEN][..])
            );
        }
    }

    #[test]
    fn malformed_envelopes_are_refused() {
        let kind = |v: &[u8]| parse(v).unwrap_err().kind();
        let ok_tail = [0u8; 12 + TAG_LEN];
        let with = |head: &[u8]| [head, &ok_tail[..]].concat();
        assert_eq!(kind(&[0xC1, b'E', 1, 1]), ErrorKind::Corrupt);
        assert_eq!(
            kind(&with(&[0xC1, b'E', 0, 1, 1, b'k'])),
            ErrorKind::Corrupt
        );
        assert_eq!(
            kind(&with(&[0xC1, b'E', 7, 1, 1, b'k'])),
            ErrorKind::Unsupported
        );
        assert_eq!(
            kind(&with(&[0xC1, b'E', 1, 3, 1, b'k'])),
            ErrorKind::Corrupt
        );
        assert_eq!(kind(&with(&[0xC1, b'E', 1, 1, 0])), ErrorKind::Corrupt);
        assert_eq!(
            kind(&with(&[0xC1, b'E', 1, 1, 1, 0xff])),
            ErrorKind::Corrupt
        );
        assert_eq!(kind(&[0xC1, b'E', 1, 1, 1, b'k', 0, 0]), ErrorKind::Corrupt);
        assert!(parse(&with(&[0xC1, b'E', 1, 1, 1, b'k'])).is_ok());
    }
}
