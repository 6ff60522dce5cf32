//! Passwords: argon2id hashing off the async runtime, and the policy a new
//! password must meet.

mod policy;

pub use policy::{MAX_PASSWORD_LENGTH, PasswordPolicy, check_password};

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::{Output, ParamsString, SaltString},
};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
pub const DEFAULT_MEMORY_KIB: u32 = 19_456;
pub const DEFAULT_ITERATIONS: u32 = 2;
pub const DEFAULT_PARALLELISM: u32 = 1;

const SALT_LEN: usize = 16;
const OUTPUT_LEN: usize = 32;

/// Hashes and verifies passwords on a fixed set of threads, one per hash
/// allowed at once (the cores, by default). A burst of sign-ins queues here
/// instead of starving everything else, and each thread reuses its own
/// argon2 memory, so memory stays flat however many sign-ins come and no
/// hash pays for faulting in and zeroing 19 MiB of fresh pages.
#[derive(Clone)]
pub struct Hasher {
    params: Params,
    /// Two per thread: one job hashing and one queued behind it, so a thread
    /// that finishes a hash starts the next at once instead of idling until
    /// the async runtime gets round to handing it over.
    permits: Arc<Semaphore>,
    jobs: std::sync::mpsc::Sender<Job>,
    /// Hashes computed, verifications included: what a caller's timing
    /// depends on, so tests can show two paths cost the same.
    computed: Arc<AtomicU64>,
}

type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    Mismatch,
    Match,
    /// Correct, but hashed with other parameters: store a fresh hash.
    MatchNeedsRehash,
}

/// One hashing thread's argon2 memory, kept between hashes.
pub struct Memory {
    blocks: Vec<Block>,
    /// What the configured parameters need; a stored hash that needs more
    /// borrows a buffer of its own, so one odd hash cannot pin its memory.
    keep: usize,
}

impl Memory {
    pub fn new(params: &Params) -> Self {
        Memory {
            blocks: Vec::new(),
            keep: params.block_count(),
        }
    }

    /// argon2id of `password` and `salt` under `params` into `out`.
    pub fn hash_into(&mut self, params: &Params, password: &[u8], salt: &[u8], out: &mut [u8]) -> Result<()> {
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        self.compute(&argon2, params, password, salt, out)
    }

    fn compute(
        &mut self,
        argon2: &Argon2,
        params: &Params,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<()> {
        let needed = params.block_count();
        let result = if needed <= self.keep {
            if self.blocks.len() < needed {
                self.blocks.resize(needed, Block::default());
            }
            argon2.hash_password_into_with_memory(password, salt, out, &mut self.blocks[..needed])
        } else {
            argon2.hash_password_into_with_memory(password, salt, out, vec![Block::default(); needed])
        };
        result.map_err(|e| Error::Internal(format!("argon2: {e}")))
    }

    /// A new argon2id PHC string for `password`, with a random salt.
    pub fn hash(&mut self, params: &Params, password: &[u8]) -> Result<String> {
        let mut salt = [0u8; SALT_LEN];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
        let mut out = [0u8; OUTPUT_LEN];
        self.hash_into(params, password, &salt, &mut out)?;
        let phc = |e| Error::Internal(format!("argon2 hash string: {e}"));
        let salt = SaltString::encode_b64(&salt).map_err(phc)?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(params).map_err(phc)?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(phc)?),
        };
        Ok(hash.to_string())
    }

    /// Checks `password` against the PHC string `stored` (any argon2
    /// variant), comparing in constant time. A string that does not parse is
    /// a mismatch.
    pub fn verify(&mut self, current: &Params, password: &[u8], stored: &str) -> Verification {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return Verification::Mismatch;
        };
        let (Ok(algorithm), Ok(version)) = (
            Algorithm::try_from(parsed.algorithm),
            parsed.version.map_or(Ok(Version::V0x13), Version::try_from),
        ) else {
            return Verification::Mismatch;
        };
        let (Ok(params), Some(salt), Some(expected)) = (Params::try_from(&parsed), parsed.salt, parsed.hash)
        else {
            return Verification::Mismatch;
        };
        let argon2 = Argon2::new(algorithm, version, params.clone());
        let mut salt_bytes = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
            return Verification::Mismatch;
        };
        let mut out = [0u8; Output::MAX_LENGTH];
        let out = &mut out[..expected.len()];
        if self.compute(&argon2, &params, password, salt, out).is_err() {
            return Verification::Mismatch;
        }
        if Output::new(out).ok() != Some(expected) {
            return Verification::Mismatch;
        }
        let same = algorithm == Algorithm::Argon2id
            && version == Version::V0x13
            && params.m_cost() == current.m_cost()
            && params.t_cost() == current.t_cost()
            && params.p_cost() == current.p_cost()
            && expected.len() == OUTPUT_LEN;
        if same {
            Verification::Match
        } else {
            Verification::MatchNeedsRehash
        }
    }
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
            let mut memory = Memory::new(&params);
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    loop {
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut memory),
                            Err(_) => return, // every Hasher was dropped
                        }
                    }
                })
                .map_err(|e| Error::Internal(format!("starting a hashing thread: {e}")))?;
        }
        crate::metrics::get().hash_threads.record(concurrency as u64, &[]);
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(concurrency * 2)),
            jobs,
            computed: Arc::default(),
        })
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Hashes computed so far, verifications included.
    pub fn computed(&self) -> u64 {
        self.computed.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory, &Params) -> T + Send + 'static,
    ) -> Result<T> {
        let asked = std::time::Instant::now();
        // Counted from the ask until the thread is done, or the caller went
        // away.
        let queued = crate::metrics::Held::new(&crate::metrics::get().hash_jobs);
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Unavailable("the server is shutting down".into()))?;
        let params = self.params.clone();
        let span = tracing::info_span!("argon2");
        let (done, result) = tokio::sync::oneshot::channel();
        let computed = self.computed.clone();
        self.jobs
            .send(Box::new(move |memory: &mut Memory| {
                // The permit goes with the job, and is released by the thread
                // that ran it, so the queue's bound holds even when the
                // caller has gone; a caller gone before its turn costs no hash.
                let _permit = permit;
                let _queued = queued;
                if !done.is_closed() {
                    let metrics = crate::metrics::get();
                    metrics.hash_wait.record(asked.elapsed().as_secs_f64(), &[]);
                    metrics.hashes.add(1, &[]);
                    computed.fetch_add(1, Ordering::Relaxed);
                    let _ = done.send(span.in_scope(|| work(memory, &params)));
                }
            }))
            .map_err(|_| Error::Unavailable("the hashing threads stopped".into()))?;
        result
            .await
            .map_err(|_| Error::Internal("a hashing thread failed".into()))
    }

    /// An argon2id PHC string for `password`.
    pub async fn hash(&self, password: String) -> Result<String> {
        self.run(move |memory, params| memory.hash(params, password.as_bytes()))
            .await?
    }

    pub async fn verify(&self, password: String, stored: String) -> Result<Verification> {
        self.run(move |memory, params| memory.verify(params, password.as_bytes(), &stored))
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

    #[tokio::test]
    async fn a_caller_gone_before_its_turn_costs_no_hash() -> Result<()> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::task::{Context, Poll, Waker};
        let hasher = Hasher::new(8 * 1024, 1, 1, 1)?;
        let (open_gate, gate) = std::sync::mpsc::channel::<()>();
        let (started, busy_started) = tokio::sync::oneshot::channel::<()>();
        let busy = {
            let hasher = hasher.clone();
            tokio::spawn(async move {
                hasher
                    .run(move |_, _| {
                        let _ = started.send(());
                        let _ = gate.recv();
                    })
                    .await
            })
        };
        busy_started.await.map_err(|e| Error::Internal(e.to_string()))?;
        let ran = Arc::new(AtomicUsize::new(0));
        {
            let ran = ran.clone();
            let mut abandoned = std::pin::pin!(hasher.run(move |_, _| {
                ran.fetch_add(1, Ordering::SeqCst);
            }));
            // One poll queues the job behind the busy one; then the caller goes.
            let polled = abandoned.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            assert!(matches!(polled, Poll::Pending));
        }
        let _ = open_gate.send(());
        busy.await.map_err(|e| Error::Internal(e.to_string()))??;
        // The one thread takes jobs in order, so the abandoned one has had its turn.
        hasher.run(|_, _| ()).await?;
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        Ok(())
    }

    #[test]
    fn hashes_agree_with_the_argon2_crates_own_phc_strings() -> Result<()> {
        use argon2::{PasswordHasher, PasswordVerifier};
        let params = Params::new(8 * 1024, 2, 1, None).map_err(|e| Error::Internal(e.to_string()))?;
        let mut memory = Memory::new(&params);
        let ours = memory.hash(&params, b"correct horse battery")?;
        let crate_hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let parsed = PasswordHash::new(&ours).map_err(|e| Error::Internal(e.to_string()))?;
        assert!(
            crate_hasher
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );

        let salt =
            SaltString::encode_b64(b"sixteen byte salt").map_err(|e| Error::Internal(e.to_string()))?;
        let theirs = crate_hasher
            .hash_password(b"correct horse battery", &salt)
            .map_err(|e| Error::Internal(e.to_string()))?
            .to_string();
        assert_eq!(
            memory.verify(&params, b"correct horse battery", &theirs),
            Verification::Match
        );
        assert_eq!(
            memory.verify(&params, b"correct horse batterz", &theirs),
            Verification::Mismatch
        );

        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, params.clone())
            .hash_password(b"correct horse battery", &salt)
            .map_err(|e| Error::Internal(e.to_string()))?
            .to_string();
        assert_eq!(
            memory.verify(&params, b"correct horse battery", &argon2i),
            Verification::MatchNeedsRehash
        );
        assert_eq!(memory.verify(&params, b"x", "not a hash"), Verification::Mismatch);
        Ok(())
    }

    #[test]
    fn a_stored_hash_needing_more_memory_borrows_it_for_one_call() -> Result<()> {
        let small = Params::new(8 * 1024, 1, 1, None).map_err(|e| Error::Internal(e.to_string()))?;
        let large = Params::new(16 * 1024, 1, 1, None).map_err(|e| Error::Internal(e.to_string()))?;
        let stored = Memory::new(&large).hash(&large, b"correct horse battery")?;
        let mut memory = Memory::new(&small);
        assert_eq!(
            memory.verify(&small, b"correct horse battery", &stored),
            Verification::MatchNeedsRehash
        );
        assert!(memory.blocks.len() <= small.block_count());
        Ok(())
    }
}
