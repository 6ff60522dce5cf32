//! Sending email: over SMTP when `SMTP_URL` is set, otherwise as `.eml` files
//! in a folder a person can open.

mod relay;

pub use relay::data_section;

use std::{path::PathBuf, sync::Arc};

use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    transport::smtp::PoolConfig,
};

use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};

use crate::config::Config;

#[derive(Clone)]
pub enum Mailer {
    /// Plain SMTP with nothing to negotiate, on sockets with TCP_NODELAY.
    Relay(relay::Relay),
    /// TLS or a login: lettre's pooled transport.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>, PathBuf),
}

/// Why a send failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The server refused for good (5xx): do not retry.
    Permanent(String),
    /// The server refused for now (4xx): retry later.
    Transient(String),
    /// No answer: a connection failure, a time-out, a file not written.
    /// Retry later.
    Unreachable(String),
}

impl SendError {
    /// The class of the server's answer, as operators count them.
    pub fn reply_class(&self) -> &'static str {
        match self {
            SendError::Permanent(_) => "5xx",
            SendError::Transient(_) => "4xx",
            SendError::Unreachable(_) => "none",
        }
    }
}

/// The send slots an email must pass before the server can accept it. Each
/// slot stands for one email that may be accepted and not yet recorded, so a
/// process killed at any moment leaves at most that many to be sent again.
/// Where Onramp speaks to the server itself, an email takes its slot only
/// once its envelope is accepted, just before its message is written: the
/// message's end is what commits the server to it. Elsewhere it takes its
/// slot before the send.
pub struct Gate {
    slots: Arc<Semaphore>,
    until: Instant,
}

impl Gate {
    /// Slots from `slots`, waited for until `until` at the latest.
    pub fn new(slots: Arc<Semaphore>, until: Instant) -> Gate {
        Gate { slots, until }
    }

    /// A slot, or none if none came free in time.
    async fn pass(&self) -> Option<OwnedSemaphorePermit> {
        if Instant::now() > self.until {
            return None;
        }
        tokio::time::timeout_at(self.until, self.slots.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }
}

/// What became of one email handed to the mailer.
#[derive(Debug)]
pub enum Sent {
    /// The server answered; the slot stays held until the answer is recorded.
    Answered(Result<(), SendError>, Option<OwnedSemaphorePermit>),
    /// No slot or connection came free in time: the server was not asked to
    /// accept it.
    Held,
}

impl Mailer {
    /// Builds the transport (the SMTP pool connects lazily); creates the
    /// folder for file delivery.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let keep = usize::try_from(config.smtp_connections).unwrap_or(16);
        if let Some(relay) = config
            .smtp_url
            .as_deref()
            .and_then(|url| relay::Relay::for_url(url, config.smtp_timeout, keep))
        {
            return Ok(Mailer::Relay(relay));
        }
        match &config.smtp_url {
            Some(url) => AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map(|b| {
                    let pool = PoolConfig::new().max_size(config.smtp_connections);
                    Mailer::Smtp(b.timeout(Some(config.smtp_timeout)).pool_config(pool).build())
                })
                .map_err(|e| format!("SMTP_URL: {e}")),
            None => {
                std::fs::create_dir_all(&config.mail_dir)
                    .map_err(|e| format!("cannot create {}: {e}", config.mail_dir.display()))?;
                let dir = std::fs::canonicalize(&config.mail_dir).unwrap_or_else(|_| config.mail_dir.clone());
                Ok(Mailer::Files(AsyncFileTransport::new(&dir), dir))
            }
        }
    }

    /// Where mail goes, for the start-up banner.
    pub fn describe(&self) -> String {
        match self {
            Mailer::Relay(_) | Mailer::Smtp(_) => "sent to the SMTP server of SMTP_URL".into(),
            Mailer::Files(_, dir) => format!(
                "written as .eml files to {} (set SMTP_URL to send them)",
                dir.display()
            ),
        }
    }

    /// Sends `message` once it passes `gate`.
    pub async fn send(&self, message: Message, gate: Gate) -> Sent {
        match self {
            Mailer::Relay(relay) => relay.send(message, gate).await,
            Mailer::Smtp(smtp) => match gate.pass().await {
                Some(slot) => Sent::Answered(
                    smtp.send(message).await.map(drop).map_err(|e| classify(&e)),
                    Some(slot),
                ),
                None => Sent::Held,
            },
            Mailer::Files(files, _) => match gate.pass().await {
                Some(slot) => Sent::Answered(
                    files
                        .send(message)
                        .await
                        .map(drop)
                        .map_err(|e| SendError::Unreachable(e.to_string())),
                    Some(slot),
                ),
                None => Sent::Held,
            },
        }
    }
}

/// A 5xx is for good, another reply for now; no reply means unreachable.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() {
        SendError::Permanent(e.to_string())
    } else if e.status().is_some() {
        SendError::Transient(e.to_string())
    } else {
        SendError::Unreachable(e.to_string())
    }
}
