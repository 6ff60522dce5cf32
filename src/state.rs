//! What every RPC handler shares.

use std::sync::Arc;

use crate::grpc::auth::KeyCache;

use crate::{
    clock::Clock, config::Config, db::Pool, domain::second_factor::SecretBox, mail::Mailer,
    outbox::notifier::Notifier, passwords::Hasher,
};

#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub clock: Clock,
    pub config: Arc<Config>,
    pub hasher: Hasher,
    pub mailer: Mailer,
    pub notifier: Notifier,
    /// `None` when `ONRAMP_SECRET_KEY` is unset.
    pub secrets: Option<Arc<SecretBox>>,
    /// API keys resolved lately.
    pub keys: Arc<KeyCache>,
    pub shutdown: Shutdown,
    /// Calls to public RPCs per client address.
    pub client_limits: Arc<crate::domain::client_limits::ClientLimits>,
}

/// Turns true once the process is asked to stop: workers finish the chunk
/// they hold and stop claiming, and batch streams end so the server is not
/// held open by a send that may take minutes (clients resume on another
/// replica with `WatchBatch`).
#[derive(Clone)]
pub struct Shutdown(Arc<tokio::sync::watch::Sender<bool>>);

impl Shutdown {
    pub fn new() -> Self {
        Shutdown(Arc::new(tokio::sync::watch::Sender::new(false)))
    }

    pub fn begin(&self) {
        self.0.send_replace(true);
    }

    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<bool> {
        self.0.subscribe()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}
