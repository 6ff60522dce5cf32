//! The server's secret key (`ONRAMP_SECRET_KEY`), parsed once at start-up,
//! and what it does: seal second-factor secrets at rest, and key the hashes
//! of values too guessable to store as a plain hash (six-digit codes).

use std::fmt;

use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit,
    aead::{Aead, AeadCore, OsRng},
};
use hmac::{Hmac, Mac};

use crate::error::{Error, Result};

/// The 32 bytes of `ONRAMP_SECRET_KEY`; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(hidden)")
    }
}

impl SecretKey {
    /// The key is 32 bytes, given as base64 or as 64 hex digits; the error
    /// follows the setting's name in a sentence.
    pub fn parse(text: &str) -> std::result::Result<SecretKey, String> {
        use base64::{Engine, engine::general_purpose::STANDARD};
        let text = text.trim();
        let bytes = if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap_or(0))
                .collect::<Vec<u8>>()
        } else {
            STANDARD
                .decode(text)
                .map_err(|_| "is neither base64 nor 64 hex digits".to_owned())?
        };
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "must be 32 bytes (for example: openssl rand -base64 32)".to_owned())?;
        Ok(SecretKey(key))
    }
}

/// Seals and keys with the secret key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
    key: [u8; 32],
}

impl SecretBox {
    pub fn new(key: &SecretKey) -> SecretBox {
        SecretBox {
            cipher: ChaCha20Poly1305::new(&key.0.into()),
            key: key.0,
        }
    }

    /// Nonce and ciphertext.
    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, plain)
            .map_err(|_| Error::Internal("encrypting a secret failed".into()))?;
        Ok(nonce.iter().copied().chain(sealed).collect())
    }

    pub fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 12 {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(12);
        self.cipher.decrypt(nonce.into(), ciphertext).ok()
    }

    /// A keyed hash of `parts`.
    pub fn mac(&self, parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = <Hmac<sha2::Sha256> as hmac::KeyInit>::new(&block_key(&self.key).into());
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }
}

/// HMAC pads a short key with zeros to the block size; doing it here gives
/// the fixed-size key `KeyInit::new` takes, so no fallible constructor is
/// needed. Keys here are at most 64 bytes.
fn block_key(key: &[u8]) -> [u8; 64] {
    let mut block = [0u8; 64];
    let n = key.len().min(64);
    block[..n].copy_from_slice(&key[..n]);
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_parses_once_and_the_box_round_trips() {
        let key = SecretKey::parse(&"ab".repeat(32));
        assert!(key.is_ok(), "a hex key is accepted");
        let Ok(key) = key else { return };
        assert_eq!(format!("{key:?}"), "SecretKey(hidden)");
        let secrets = SecretBox::new(&key);
        let sealed = secrets.seal(b"top secret").unwrap_or_default();
        assert_eq!(secrets.open(&sealed).as_deref(), Some(&b"top secret"[..]));
        assert!(!sealed.windows(10).any(|w| w == b"top secret"));
        assert!(SecretKey::parse("short").is_err());
        assert!(SecretKey::parse(&"q".repeat(44)).is_err(), "not 32 bytes");
    }
}
