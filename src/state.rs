//! What every RPC handler shares: the use cases' `Services`, and the parts
//! only the front doors use.

use std::{ops::Deref, sync::Arc};

use crate::{
    domain::{client_limits::ClientLimits, key_cache::KeyCache},
    notify::Notifier,
    services::Services,
};

#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub notifier: Notifier,
    /// API keys resolved lately.
    pub keys: Arc<KeyCache>,
    pub shutdown: Shutdown,
    /// Calls to public RPCs per client address.
    pub client_limits: Arc<ClientLimits>,
}

/// A handler hands `&state` where a use case takes `&Services`.
impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
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
