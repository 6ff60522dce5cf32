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

use crate::error::{Error, Result};

/// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
pub const DEFAULT_MEMORY_KIB: u32 = 19_456;
pub const DEFAULT_ITERATIONS: u32 = 2;
pub const DEFAULT_PARALLELISM: u32 = 1;

/// Hashes and verifies passwords on a fixed set of threads, one per hash
/// allowed at once (the cores, by default). A burst of sign-ins queues here
/// instead of starving everything else, and each thread reuses its own
/// 19 MiB of argon2 memory, so memory stays flat however many sign-ins come.
#[derive(Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    jobs: std::sync::mpsc::Sender<Job>,
}

type Job = Box<dyn FnOnce() + Send>;

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
        let concurrency = concurrency.max(1);
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for n in 0..concurrency {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    loop {
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // every Hasher was dropped
                        }
                    }
                })
                .map_err(|e| Error::Internal(format!("starting a hashing thread: {e}")))?;
        }
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(concurrency)),
            jobs,
        })
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
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(span.in_scope(|| work(params)));
            }))
            .map_err(|_| Error::Unavailable("the hashing threads stopped".into()))?;
        result
            .await
            .map_err(|_| Error::Internal("a hashing thread failed".into()))
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
