//! What the use cases and the outbox need from the process, built once from
//! `Config`: the database, the clock, the password hasher, the secret box,
//! the mailer, and the settings they read. The front doors' own parts (the
//! API key cache, the public rate limits, the notifications that batch
//! streams follow) stay in `AppState`, which wraps this.

use std::sync::Arc;

use crate::{clock::Clock, config::Config, db::Pool, mail::Mailer, passwords::Hasher, secrets::SecretBox};

#[derive(Clone)]
pub struct Services {
    pub pool: Pool,
    pub clock: Clock,
    pub config: Arc<Config>,
    pub hasher: Hasher,
    pub mailer: Mailer,
    /// `None` when `ONRAMP_SECRET_KEY` is unset.
    pub secrets: Option<Arc<SecretBox>>,
    /// The domain of the outbox's Message-IDs, from `ONRAMP_MAIL_FROM`.
    pub message_domain: Arc<str>,
}
