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
}
