//! Secrets (tokens, keys, passwords, the database URL) and where unguessable
//! values come from.
//!
//! A [`Secret`] never shows itself: its `Debug` and its `Serialize` (what
//! `babelcast config` prints) both say `[redacted]`, so neither a `-v` log of the
//! configuration nor an error that formats it can leak one; it is read only
//! through [`Secret::expose`], which a reader can find. It is wiped from memory
//! when dropped (`secrecy`).
//!
//! [`random_hex`] is the one source of tokens, keys and ids: the operating
//! system's generator (`getrandom`), never a seeded one (a few observed outputs of
//! a fast generator reveal its state, and with it the next ids and links). This is
//! the crate's one call out of the process.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a [`Secret`] shows instead of itself.
pub const REDACTED: &str = "[redacted]";

/// A secret string; see the module notes.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(SecretString::from(value.into()))
    }

    /// The secret itself, for the one place that must use it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

/// `bytes` bytes from the operating system's random generator, as hex.
pub fn random_hex(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer)?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_shows_itself_nowhere_but_expose() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), REDACTED);
        assert_eq!(serde_json::to_string(&secret).expect("json"), format!("\"{REDACTED}\""));
        let read: Secret = serde_json::from_str("\"hunter2\"").expect("reads");
        assert_eq!((read.expose(), read == secret), ("hunter2", true));
    }

    #[test]
    fn random_values_are_long_and_differ() {
        let (a, b) = (random_hex(16).expect("os"), random_hex(16).expect("os"));
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()) && a != b);
    }
}
