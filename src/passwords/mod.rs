//! Passwords: argon2id hashing off the async runtime, and the policy a new
//! password must meet.

mod policy;

pub use policy::{MAX_PASSWORD_LENGTH, PasswordPolicy, check_password};

use std::sync::Arc;

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::SaltString,
};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::error::{Error, Result};

/// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
pub const DEFAULT_MEMORY_KIB: u32 = 19_456;
pub const DEFAULT_ITERATIONS: u32 = 2;
pub const DEFAULT_PARALLELISM: u32 = 1;

/// Hashes and verifies passwords on the blocking pool. The semaphore keeps
/// the number of hashes in flight at the number of cores, so a burst of
/// sign-ins queues here instead of starving everything else.
#[derive(Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    Mismatch,
    Match,
    /// Correct, but hashed with other parameters: store a fresh hash.
    MatchNeedsRehash,
}

impl Hasher {
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32, concurrency: usize) -> Result<Self> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        })
    }

    /// OWASP parameters, one hash in flight per core.
    pub fn with_defaults() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let params = Params::new(DEFAULT_MEMORY_KIB, DEFAULT_ITERATIONS, DEFAULT_PARALLELISM, None)
            .unwrap_or_default();
        Self {
            params,
            permits: Arc::new(Semaphore::new(cores)),
        }
    }

    fn argon2(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce(Params) -> T + Send + 'static) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Unavailable("the server is shutting down".into()))?;
        let params = self.params.clone();
        let span = tracing::info_span!("argon2");
        tokio::task::spawn_blocking(move || span.in_scope(|| work(params)))
            .in_current_span()
            .await
            .map_err(|e| Error::Internal(format!("hashing task: {e}")))
    }

    /// An argon2id PHC string for `password`.
    pub async fn hash(&self, password: String) -> Result<String> {
        self.run(move |params| {
            let mut salt_bytes = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt_bytes);
            let salt =
                SaltString::encode_b64(&salt_bytes).map_err(|e| Error::Internal(format!("salt: {e}")))?;
            Self::argon2(params)
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| Error::Internal(format!("argon2: {e}")))
        })
        .await?
    }

    pub async fn verify(&self, password: String, stored: String) -> Result<Verification> {
        self.run(move |params| {
            let Ok(parsed) = PasswordHash::new(&stored) else {
                return Verification::Mismatch;
            };
            if Self::argon2(params.clone())
                .verify_password(password.as_bytes(), &parsed)
                .is_err()
            {
                return Verification::Mismatch;
            }
            let current = parsed.algorithm == Algorithm::Argon2id.ident()
                && Params::try_from(&parsed).is_ok_and(|p| {
                    p.m_cost() == params.m_cost()
                        && p.t_cost() == params.t_cost()
                        && p.p_cost() == params.p_cost()
                });
            if current {
                Verification::Match
            } else {
                Verification::MatchNeedsRehash
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_older_parameters_ask_for_a_rehash() -> Result<()> {
        let old = Hasher::new(8 * 1024, 1, 1, 2)?;
        let current = Hasher::new(16 * 1024, 2, 1, 2)?;
        let stored = old.hash("correct horse battery".into()).await?;
        assert!(stored.starts_with("$argon2id$"));
        assert!(!stored.contains("correct horse"));
        assert_eq!(
            old.verify("correct horse battery".into(), stored.clone()).await?,
            Verification::Match
        );
        assert_eq!(
            old.verify("wrong".into(), stored.clone()).await?,
            Verification::Mismatch
        );
        assert_eq!(
            current.verify("correct horse battery".into(), stored).await?,
            Verification::MatchNeedsRehash
        );
        Ok(())
    }
}
