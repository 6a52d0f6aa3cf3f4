//! [`Keyring`]: the current key and the keys still accepted for reading.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::key::{Key, KeyError};

/// The keys of an [`Encrypted`](super::Encrypted) store: the first is the
/// *current* key, which encrypts every write; all of them decrypt. To
/// rotate without downtime: deploy a ring with the new key listed *second*
/// everywhere (every instance can now read it), then make it first
/// (instances now write with it), then, once no value is left under the old
/// key ([`Encrypted::reencrypt`](super::Encrypted::reencrypt) or the
/// sessions' own lifetime), remove the old one.
///
/// Cheap to clone (the keys are shared). `Debug` shows key ids only.
///
/// ```
/// use storestack::{Key, Keyring};
///
/// let ring = Keyring::parse(
///     "2024-06:x5BZ3QmbZ5NWJZfkhJ5Z5i3YrXO3r2Ik0m6RbDgPzIk=,\
///      2024-01:7f0c1b4e0a3d5f6a8b9c0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9d0e1f2",
/// )?;
/// assert_eq!(ring.current().id(), "2024-06");
/// assert!(ring.get("2024-01").is_some());
/// assert_eq!(format!("{ring:?}"), r#"Keyring { current: "2024-06", keys: ["2024-06", "2024-01"] }"#);
/// # Ok::<_, storestack::KeyError>(())
/// ```
#[derive(Clone)]
pub struct Keyring {
    keys: Arc<[Key]>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current().id())
            .field("keys", &self.ids().collect::<Vec<_>>())
            .finish()
    }
}

impl From<Key> for Keyring {
    fn from(key: Key) -> Self {
        Keyring::new(key)
    }
}

impl Keyring {
    /// A ring of one key.
    pub fn new(current: Key) -> Self {
        Keyring {
            keys: Arc::from(vec![current]),
        }
    }

    /// A ring of `keys`, the first being the current one. Errors: `Empty`,
    /// `DuplicateId`.
    pub fn from_keys(keys: impl IntoIterator<Item = Key>) -> Result<Self, KeyError> {
        let keys: Vec<Key> = keys.into_iter().collect();
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].iter().any(|k| k.id() == key.id()) {
                return Err(KeyError::DuplicateId {
                    id: key.id().to_owned(),
                });
            }
        }
        Ok(Keyring { keys: keys.into() })
    }

    /// A ring from a specification `id:key,id:key,…`, the first being the
    /// current key. Each key is 64 hex digits or base64 (standard or
    /// URL-safe, padded or not); whitespace around entries is ignored.
    pub fn parse(spec: &str) -> Result<Self, KeyError> {
        Self::parse_from("key ring", spec)
    }

    /// A ring from the environment variable `var`, in the format of
    /// [`parse`](Self::parse), e.g.
    /// `SESSION_KEYS=2024-06:<base64>,2024-01:<base64>`. The variable's
    /// contents are wiped from memory once parsed.
    pub fn from_env(var: &str) -> Result<Self, KeyError> {
        match std::env::var(var) {
            Ok(spec) => Self::parse_from(var, &Zeroizing::new(spec)),
            Err(std::env::VarError::NotPresent) => Err(KeyError::MissingVar {
                var: var.to_owned(),
            }),
            Err(std::env::VarError::NotUnicode(os)) => {
                drop(Zeroizing::new(os.into_encoded_bytes()));
                Err(KeyError::BadFormat {
                    source_name: var.to_owned(),
                    index: 0,
                })
            }
        }
    }

    fn parse_from(source_name: &str, spec: &str) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for (index, entry) in spec.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let Some((id, material)) = entry.split_once(':') else {
                return Err(KeyError::BadFormat {
                    source_name: source_name.to_owned(),
                    index,
                });
            };
            let (id, material) = (id.trim(), material.trim());
            let is_hex = material.len() == 64 && material.bytes().all(|b| b.is_ascii_hexdigit());
            keys.push(match is_hex {
                true => Key::from_hex(id, material)?,
                false => Key::from_base64(id, material)?,
            });
        }
        Self::from_keys(keys)
    }

    /// The key that encrypts writes.
    pub fn current(&self) -> &Key {
        &self.keys[0]
    }

    /// The key with id `id`, if the ring holds it.
    pub fn get(&self, id: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.id() == id)
    }

    /// The ids of the keys, current first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(Key::id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, StoreError};

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn loads_hex_and_every_base64_flavour() {
        assert_eq!(Key::from_hex("a", HEX).unwrap().id(), "a");
        for text in [
            B64,
            B64.trim_end_matches('='),
            "-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_8",
        ] {
            assert!(Key::from_base64("b", text).is_ok(), "{text}");
        }
        assert!(Key::from_bytes("c", &[7; 32]).is_ok());
        assert!(Key::generate("d").is_ok());
    }

    #[test]
    fn clear_errors_that_never_show_key_material() {
        let short = Key::from_hex("k", &HEX[..62]).unwrap_err();
        assert!(matches!(short, KeyError::WrongLength { len: 31, .. }));
        assert_eq!(short.to_string(), "key `k` is 31 bytes, expected 32");
        let err = Key::from_base64("k", "not base64!").unwrap_err();
        assert_eq!(err.to_string(), "key `k` is not valid base64");
        let err = Key::from_hex("k", "zz").unwrap_err();
        assert_eq!(err.to_string(), "key `k` is not valid hex");
        for id in ["", "has space", "ä", &"x".repeat(65), "a:b"] {
            assert!(matches!(
                Key::from_bytes(id, &[0; 32]),
                Err(KeyError::BadId { .. })
            ));
        }
        // A key pasted where the id goes is not echoed.
        let err = Keyring::parse(&format!("{B64}:{B64}")).unwrap_err();
        assert!(!err.to_string().contains("AAEC"), "{err}");
        let err = Keyring::parse(B64).unwrap_err();
        assert_eq!(err.to_string(), "entry 0 of key ring is not `id:key`");
    }

    #[test]
    fn parses_a_ring_with_the_first_key_current() {
        let ring = Keyring::parse(&format!(" new:{B64} , old:{HEX},")).unwrap();
        assert_eq!(ring.current().id(), "new");
        assert_eq!(ring.ids().collect::<Vec<_>>(), ["new", "old"]);
        assert!(ring.get("old").is_some() && ring.get("other").is_none());
        assert!(matches!(
            Keyring::parse(&format!("a:{B64},a:{HEX}")),
            Err(KeyError::DuplicateId { .. })
        ));
        assert!(matches!(Keyring::parse(" , "), Err(KeyError::Empty)));
    }

    #[test]
    fn env_errors_name_the_variable_not_its_contents() {
        let err = Keyring::from_env("STORESTACK_TEST_SURELY_UNSET_VAR").unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable `STORESTACK_TEST_SURELY_UNSET_VAR` is not set"
        );
        // Cargo sets this one for tests; its value is not a key ring.
        let err = Keyring::from_env("CARGO_PKG_NAME").unwrap_err();
        assert_eq!(err.to_string(), "entry 0 of CARGO_PKG_NAME is not `id:key`");
        let store_err = StoreError::from(err);
        assert_eq!(store_err.kind(), ErrorKind::InvalidInput);
        assert!(std::error::Error::source(&store_err).is_some());
    }

    #[test]
    fn debug_shows_ids_only() {
        let key = Key::from_hex("k1", HEX).unwrap();
        let shown = format!("{key:?}");
        let shown = format!("{shown} {:?}", Keyring::new(key));
        assert_eq!(
            shown,
            r#"Key { id: "k1", material: "<redacted>" } Keyring { current: "k1", keys: ["k1"] }"#
        );
    }
}
