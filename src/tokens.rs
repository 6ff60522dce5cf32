//! High-entropy secrets (API keys, link tokens): random, shown once, stored
//! only as SHA-256 hashes. A slow hash adds nothing for 256 random bits.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

const TOKEN_BYTES: usize = 32;

/// A secret in plaintext. It does not print, so it cannot reach a log by
/// accident.
pub struct PlainToken(String);

impl PlainToken {
    /// A new random token with a readable prefix (such as `onr_`).
    pub fn generate(prefix: &str) -> Self {
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        PlainToken(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    pub fn from_presented(value: &str) -> Self {
        PlainToken(value.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> HashedToken {
        HashedToken(Sha256::digest(self.0.as_bytes()).to_vec())
    }
}

impl fmt::Debug for PlainToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainToken(…)")
    }
}

/// What is stored of a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashedToken(pub Vec<u8>);

#[cfg(test)]
mod tests {
    use super::PlainToken;

    #[test]
    fn tokens_are_long_distinct_and_hash_stably() {
        let a = PlainToken::generate("onr_");
        let b = PlainToken::generate("onr_");
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().len() >= 4 + 43, "{} is short", a.expose().len());
        assert_eq!(a.hash(), PlainToken::from_presented(a.expose()).hash());
        assert_eq!(a.hash().0.len(), 32);
        assert_eq!(format!("{a:?}"), "PlainToken(…)");
    }
}
