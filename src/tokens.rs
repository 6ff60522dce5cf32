//! High-entropy secrets (API keys, link tokens): random, shown once, stored
//! only as SHA-256 hashes. A slow hash adds nothing for 256 random bits.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

const TOKEN_BYTES: usize = 32;
const ID_BYTES: usize = 16;

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

    /// A new token that names its row: the row's id, then as many random
    /// bytes as any other token. The row is found by its id and the token
    /// checked against the stored hash, so no index has to hold the hash.
    pub fn naming(id: Uuid) -> Self {
        let mut bytes = [0u8; ID_BYTES + TOKEN_BYTES];
        bytes[..ID_BYTES].copy_from_slice(id.as_bytes());
        rand::rng().fill_bytes(&mut bytes[ID_BYTES..]);
        PlainToken(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The row a presented token names, if it is a token made by `naming`.
    pub fn named(&self) -> Option<Uuid> {
        let bytes = URL_SAFE_NO_PAD.decode(self.0.as_bytes()).ok()?;
        if bytes.len() != ID_BYTES + TOKEN_BYTES {
            return None;
        }
        Uuid::from_slice(&bytes[..ID_BYTES]).ok()
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

    #[test]
    fn a_naming_token_names_its_row_and_hides_as_much_randomness_as_any_other() {
        let id = uuid::Uuid::now_v7();
        let a = PlainToken::naming(id);
        let b = PlainToken::naming(id);
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.hash(), b.hash());
        assert_eq!(PlainToken::from_presented(a.expose()).named(), Some(id));
        // 16 bytes of id and 32 random, in base64 without padding.
        assert_eq!(a.expose().len(), 64);
        assert!(
            a.expose()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
            "{} does not fit a link unescaped",
            a.expose()
        );
        // Other tokens and anything else presented name nothing.
        assert_eq!(PlainToken::generate("").named(), None);
        assert_eq!(PlainToken::generate("onr_").named(), None);
        assert_eq!(PlainToken::from_presented("not a token").named(), None);
        assert_eq!(PlainToken::from_presented("").named(), None);
    }
}
