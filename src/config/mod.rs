//! Configuration from environment variables, checked once at start-up so a
//! mistake is reported by name before anything runs.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

mod environment;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/onramp";
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50051";
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";
pub const DEFAULT_MAIL_DIR: &str = "mail-outbox";
pub const DEFAULT_MAIL_FROM: &str = "Onramp <onramp@localhost>";
const DEFAULT_DB_POOL_SIZE: u32 = 16;
const DEFAULT_DB_POOL_TIMEOUT_MS: u64 = 5_000;
const DEFAULT_STATEMENT_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;
const MIN_BOOTSTRAP_KEY_LEN: usize = 24;
const DEFAULT_OUTBOX_WORKERS: usize = 4;
/// Each claim costs a claim and a mint statement whatever its size, so a
/// larger one spreads them thinner; the outbox's, invitations' and people's
/// pages leave room for a whole claim of a hundred (migration
/// `room_for_a_whole_claim`, and the test that claims a hundred), so that
/// its updates rewrite no index.
const DEFAULT_OUTBOX_CLAIM: usize = 96;
const DEFAULT_OUTBOX_LEASE_MS: u64 = 60_000;
const DEFAULT_OUTBOX_RETRY_BASE_MS: u64 = 5_000;
const DEFAULT_OUTBOX_MAX_ATTEMPTS: i32 = 8;
const DEFAULT_OUTBOX_POLL_MS: u64 = 1_000;
const DEFAULT_SMTP_CONNECTIONS: u32 = 16;
const DEFAULT_SMTP_TIMEOUT_MS: u64 = 30_000;

/// argon2id cost, and how many hashes may run at once.
#[derive(Clone, Debug)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    pub concurrency: usize,
}

/// How the outbox workers of this process behave.
#[derive(Clone, Debug)]
pub struct OutboxConfig {
    pub workers: usize,
    /// Messages a worker claims and sends at once.
    pub claim_size: usize,
    /// How long a claim holds; a worker that dies loses its messages to
    /// another after this.
    pub lease: Duration,
    pub retry_base: Duration,
    pub max_attempts: i32,
    /// Idle workers look for due messages this often (notifications wake
    /// them sooner).
    pub poll_interval: Duration,
}

#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub listen_addr: SocketAddr,
    /// Where `/metrics` is served; `None` serves none.
    pub metrics_addr: Option<SocketAddr>,
    /// `None` writes emails as `.eml` files into `mail_dir`.
    pub smtp_url: Option<String>,
    pub mail_dir: PathBuf,
    pub mail_from: lettre::message::Mailbox,
    /// Base of the links in emails, without a trailing slash.
    pub public_url: String,
    pub links: Links,
    pub smtp_connections: u32,
    pub smtp_timeout: Duration,
    pub outbox: OutboxConfig,
    pub argon2: Argon2Config,
    /// Encrypts second-factor secrets; required when any organisation asks
    /// for a second factor.
    pub secret_key: Option<crate::secrets::SecretKey>,
    /// Where SMS codes are POSTed; unset: they are written to the log.
    pub sms_webhook_url: Option<String>,
    /// Calls to public RPCs allowed per client address per minute.
    pub public_rate_limit: i32,
    pub bootstrap_api_key: Option<String>,
    pub db_pool_size: u32,
    /// Threads of the async runtime (`TOKIO_WORKER_THREADS`; one per core
    /// unless set).
    pub worker_threads: usize,
    pub db_pool_timeout: Duration,
    pub statement_timeout: Duration,
    pub request_timeout: Duration,
    /// How long a stopping server keeps accepting while its health service
    /// says NOT_SERVING, for a gateway to take it out first.
    pub shutdown_drain: Duration,
    /// Origins allowed by CORS for gRPC-Web; empty allows any.
    pub cors_origins: Vec<String>,
    /// Take the client address from `x-forwarded-for` (only behind a trusted
    /// gateway).
    pub trust_forwarded_for: bool,
    /// Create a development organisation and key when the database has none.
    /// Defaults to on only when `DATABASE_URL` is unset and the listen
    /// address is loopback.
    pub dev_bootstrap: bool,
}

// The bootstrap key is a secret: never print it.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen_addr", &self.listen_addr)
            .field("smtp", &self.smtp_url.is_some())
            .field("mail_dir", &self.mail_dir)
            .field("public_url", &self.public_url)
            .field("bootstrap_api_key", &self.bootstrap_api_key.is_some())
            .field("db_pool_size", &self.db_pool_size)
            .finish_non_exhaustive()
    }
}

/// The links in emails and pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Links {
    /// The invitation link, with `{token}` where the token goes.
    pub invitation: String,
    /// The password-reset link, with `{token}`.
    pub reset: String,
    /// Where people sign in, for the credentials email; `{organization_id}`
    /// is replaced.
    pub sign_in: String,
    /// Where a person goes once registered or signed in; `{organization_id}`
    /// is replaced.
    pub app: String,
}

impl Links {
    /// Every link under one public address.
    fn under(public_url: &str) -> Links {
        let sign_in = format!("{public_url}/sign-in?organization={{organization_id}}");
        Links {
            invitation: format!("{public_url}/register?token={{token}}"),
            reset: format!("{public_url}/reset-password?token={{token}}"),
            app: sign_in.clone(),
            sign_in,
        }
    }

    pub fn invitation_for(&self, token: &str) -> String {
        self.invitation.replace("{token}", token)
    }

    pub fn reset_for(&self, token: &str) -> String {
        self.reset.replace("{token}", token)
    }

    pub fn sign_in_for(&self, organization_id: uuid::Uuid) -> String {
        self.sign_in
            .replace("{organization_id}", &organization_id.to_string())
    }

    pub fn app_for(&self, organization_id: uuid::Uuid) -> String {
        self.app
            .replace("{organization_id}", &organization_id.to_string())
    }
}

/// The server's own address as a browser reaches it, so that with no
/// settings the links in emails open the pages this server serves.
fn own_url(listen: SocketAddr) -> String {
    if listen.ip().is_unspecified() {
        format!("http://localhost:{}", listen.port())
    } else {
        format!("http://{listen}")
    }
}

impl Config {
    /// Points every link at `public_url`, as if only `ONRAMP_PUBLIC_URL`
    /// had been set.
    pub fn set_public_url(&mut self, public_url: &str) {
        self.public_url = public_url.to_owned();
        self.links = Links::under(public_url);
    }

    /// The domain of `ONRAMP_MAIL_FROM`, which the outbox's Message-IDs end
    /// in.
    pub fn message_domain(&self) -> String {
        Some(self.mail_from.email.domain().to_owned())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "onramp.localhost".into())
    }
}

/// Every problem found in the environment, one line each.
#[derive(Debug)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for problem in &self.0 {
            writeln!(f, "  {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
