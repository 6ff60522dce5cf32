//! Reading the configuration from the environment: each setting parsed and
//! checked, every problem collected and reported by name at once.

use super::*;

impl Config {
    pub fn from_environment() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| match std::env::var(name) {
            // The one setting whose empty value means something: off.
            Ok(value) if name == "ONRAMP_METRICS_ADDR" => Some(value),
            Ok(value) => Some(value).filter(|v| !v.trim().is_empty()),
            Err(_) => None,
        })
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut read = Reader {
            lookup: &lookup,
            problems: &mut problems,
        };
        let database_url = read.string("DATABASE_URL", DEFAULT_DATABASE_URL);
        if !database_url.starts_with("postgres://") && !database_url.starts_with("postgresql://") {
            read.problem("DATABASE_URL", &database_url, "is not a postgres:// URL");
        }
        let listen_addr = read
            .parsed(
                "ONRAMP_LISTEN_ADDR",
                DEFAULT_LISTEN_ADDR,
                "is not a socket address like 127.0.0.1:50051",
            )
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 50051)));
        // Empty turns the listener off (every other empty setting means
        // its default).
        let metrics_addr = match lookup("ONRAMP_METRICS_ADDR") {
            Some(empty) if empty.trim().is_empty() => None,
            _ => read.parsed(
                "ONRAMP_METRICS_ADDR",
                DEFAULT_METRICS_ADDR,
                "is not a socket address like 127.0.0.1:9464 (empty turns /metrics off)",
            ),
        };
        let smtp_url = lookup("SMTP_URL");
        if let Some(url) = &smtp_url {
            if let Err(e) = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url) {
                read.problem(
                    "SMTP_URL",
                    "(hidden)",
                    &format!("is not an SMTP URL such as smtp://host:25 or smtps://user:pass@host ({e})"),
                );
            }
        }
        let public_url = read
            .string("ONRAMP_PUBLIC_URL", &own_url(listen_addr))
            .trim_end_matches('/')
            .to_owned();
        if !public_url.starts_with("http://") && !public_url.starts_with("https://") {
            read.problem(
                "ONRAMP_PUBLIC_URL",
                &public_url,
                "must start with http:// or https://",
            );
        }
        let links = Links::under(&public_url);
        let mut link = |name: &str, default: String| {
            let url = read.string(name, &default);
            if !url.contains("{token}") {
                read.problem(name, &url, "must contain {token} where the token goes");
            }
            url
        };
        let links = Links {
            invitation: link("ONRAMP_INVITATION_URL", links.invitation),
            reset: link("ONRAMP_RESET_URL", links.reset),
            sign_in: read.string("ONRAMP_SIGN_IN_URL", &links.sign_in),
            app: read.string("ONRAMP_APP_URL", &links.app),
        };
        let outbox = OutboxConfig {
            workers: read
                .parsed(
                    "ONRAMP_OUTBOX_WORKERS",
                    &DEFAULT_OUTBOX_WORKERS.to_string(),
                    "is not a whole number",
                )
                .unwrap_or(DEFAULT_OUTBOX_WORKERS),
            claim_size: read
                .parsed(
                    "ONRAMP_OUTBOX_CLAIM",
                    &DEFAULT_OUTBOX_CLAIM.to_string(),
                    "is not a whole number",
                )
                .filter(|n| *n > 0)
                .unwrap_or(DEFAULT_OUTBOX_CLAIM),
            lease: read.millis("ONRAMP_OUTBOX_LEASE_MS", DEFAULT_OUTBOX_LEASE_MS),
            retry_base: read.millis("ONRAMP_OUTBOX_RETRY_BASE_MS", DEFAULT_OUTBOX_RETRY_BASE_MS),
            max_attempts: read
                .parsed(
                    "ONRAMP_OUTBOX_MAX_ATTEMPTS",
                    &DEFAULT_OUTBOX_MAX_ATTEMPTS.to_string(),
                    "is not a whole number",
                )
                .filter(|n| *n > 0)
                .unwrap_or(DEFAULT_OUTBOX_MAX_ATTEMPTS),
            poll_interval: read.millis("ONRAMP_OUTBOX_POLL_MS", DEFAULT_OUTBOX_POLL_MS),
        };
        let smtp_connections = read
            .parsed(
                "ONRAMP_SMTP_CONNECTIONS",
                &DEFAULT_SMTP_CONNECTIONS.to_string(),
                "is not a whole number",
            )
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_SMTP_CONNECTIONS);
        let smtp_timeout = read.millis("ONRAMP_SMTP_TIMEOUT_MS", DEFAULT_SMTP_TIMEOUT_MS);
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let argon2 = Argon2Config {
            memory_kib: read
                .parsed(
                    "ONRAMP_ARGON2_MEMORY_KIB",
                    "19456",
                    "is not a whole number of KiB",
                )
                .filter(|m| *m >= 8)
                .unwrap_or(19_456),
            iterations: read
                .parsed("ONRAMP_ARGON2_ITERATIONS", "2", "is not a whole number")
                .filter(|t| *t >= 1)
                .unwrap_or(2),
            parallelism: read
                .parsed("ONRAMP_ARGON2_PARALLELISM", "1", "is not a whole number")
                .filter(|p| *p >= 1)
                .unwrap_or(1),
            concurrency: read
                .parsed(
                    "ONRAMP_HASH_CONCURRENCY",
                    &cores.to_string(),
                    "is not a whole number",
                )
                .filter(|c| *c >= 1)
                .unwrap_or(cores),
        };
        let public_rate_limit = read
            .parsed("ONRAMP_PUBLIC_RATE_LIMIT", "120", "is not a whole number")
            .filter(|n: &i32| *n > 0)
            .unwrap_or(120);
        let secret_key = match lookup("ONRAMP_SECRET_KEY").map(|k| crate::secrets::SecretKey::parse(&k)) {
            Some(Ok(key)) => Some(key),
            Some(Err(why)) => {
                read.problem("ONRAMP_SECRET_KEY", "(hidden)", &why);
                None
            }
            None => None,
        };
        let sms_webhook_url = lookup("ONRAMP_SMS_WEBHOOK_URL");
        if sms_webhook_url
            .as_deref()
            .is_some_and(|u| !u.starts_with("http://"))
        {
            read.problem(
                "ONRAMP_SMS_WEBHOOK_URL",
                "(hidden)",
                "must be an http:// URL (a local relay for HTTPS providers)",
            );
        }
        // Refused, the stand-in is never used: the problem is reported.
        let mail_from = read
            .parsed(
                "ONRAMP_MAIL_FROM",
                DEFAULT_MAIL_FROM,
                "is not a mailbox such as 'Onramp <onramp@example.com>'",
            )
            .unwrap_or_else(|| {
                lettre::message::Mailbox::new(
                    Some("Onramp".into()),
                    lettre::Address::new_dangerous("onramp", "localhost"),
                )
            });
        let bootstrap_api_key = lookup("ONRAMP_BOOTSTRAP_API_KEY");
        if bootstrap_api_key
            .as_ref()
            .is_some_and(|k| k.len() < MIN_BOOTSTRAP_KEY_LEN)
        {
            read.problem(
                "ONRAMP_BOOTSTRAP_API_KEY",
                "(hidden)",
                &format!("must be at least {MIN_BOOTSTRAP_KEY_LEN} characters"),
            );
        }
        let db_pool_size = read.at_least_one("ONRAMP_DB_POOL_SIZE", DEFAULT_DB_POOL_SIZE);
        // tokio reads this variable too, and panics on a value it cannot
        // use; read here, a bad one is reported with the rest.
        let worker_threads = read.at_least_one("TOKIO_WORKER_THREADS", cores);
        let config = Config {
            database_url,
            listen_addr,
            metrics_addr,
            smtp_url,
            mail_dir: PathBuf::from(read.string("ONRAMP_MAIL_DIR", DEFAULT_MAIL_DIR)),
            mail_from,
            public_url,
            links,
            smtp_connections,
            smtp_timeout,
            outbox,
            argon2,
            public_rate_limit,
            secret_key,
            sms_webhook_url,
            bootstrap_api_key,
            db_pool_size,
            worker_threads,
            db_pool_timeout: read.millis("ONRAMP_DB_POOL_TIMEOUT_MS", DEFAULT_DB_POOL_TIMEOUT_MS),
            statement_timeout: read.millis("ONRAMP_DB_STATEMENT_TIMEOUT_MS", DEFAULT_STATEMENT_TIMEOUT_MS),
            request_timeout: read.millis("ONRAMP_REQUEST_TIMEOUT_MS", DEFAULT_REQUEST_TIMEOUT_MS),
            shutdown_drain: Duration::from_millis(
                read.parsed(
                    "ONRAMP_SHUTDOWN_DRAIN_MS",
                    "0",
                    "is not a whole number of milliseconds",
                )
                .unwrap_or(0),
            ),
            cors_origins: lookup("ONRAMP_CORS_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|o| !o.is_empty() && *o != "*")
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            trust_forwarded_for: read.flag("ONRAMP_TRUST_FORWARDED_FOR", false),
            // On by default only for a first run on a developer's machine:
            // no DATABASE_URL given and listening on loopback. A deployment
            // names its database, so it never prints an admin key unasked.
            dev_bootstrap: read.flag(
                "ONRAMP_DEV_BOOTSTRAP",
                lookup("DATABASE_URL").is_none() && listen_addr.ip().is_loopback(),
            ),
        };
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(problems))
        }
    }
}

struct Reader<'a, F> {
    lookup: &'a F,
    problems: &'a mut Vec<String>,
}

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    fn problem(&mut self, name: &str, value: &str, why: &str) {
        self.problems.push(format!("{name}={value} {why}"));
    }

    fn string(&mut self, name: &str, default: &str) -> String {
        (self.lookup)(name).unwrap_or_else(|| default.to_owned())
    }

    fn parsed<T: std::str::FromStr>(&mut self, name: &str, default: &str, why: &str) -> Option<T> {
        let raw = self.string(name, default);
        let parsed = raw.trim().parse().ok();
        if parsed.is_none() {
            self.problem(name, &raw, why);
        }
        parsed
    }

    /// A count of one or more.
    fn at_least_one<T>(&mut self, name: &str, default: T) -> T
    where
        T: std::str::FromStr + fmt::Display + PartialEq + From<u8>,
    {
        let n = self
            .parsed(name, &default.to_string(), "is not a whole number")
            .unwrap_or(default);
        if n == T::from(0) {
            self.problem(name, "0", "must be at least 1");
        }
        n
    }

    fn millis(&mut self, name: &str, default: u64) -> Duration {
        let ms: u64 = self
            .parsed(
                name,
                &default.to_string(),
                "is not a whole number of milliseconds",
            )
            .unwrap_or(default);
        if ms == 0 {
            self.problem(name, "0", "must be more than 0");
        }
        Duration::from_millis(ms)
    }

    fn flag(&mut self, name: &str, default: bool) -> bool {
        match (self.lookup)(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => default,
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => true,
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => false,
            Some(v) => {
                self.problem(name, &v, "is not true or false");
                default
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_work_with_nothing_set() {
        let c = config(&[]).map_err(|e| e.to_string());
        let c = c
            .as_ref()
            .map(|c| (c.listen_addr.to_string(), c.smtp_url.is_none()));
        assert_eq!(c, Ok(("127.0.0.1:50051".to_owned(), true)));
    }

    #[test]
    fn links_point_at_the_server_itself_unless_a_public_address_is_given() {
        let links = |vars: &[(&str, &str)]| {
            config(vars)
                .map(|c| (c.links.invitation, c.links.sign_in, c.links.app))
                .map_err(|e| e.to_string())
        };
        let own = links(&[]).unwrap_or_default();
        assert_eq!(own.0, "http://127.0.0.1:50051/register?token={token}");
        assert_eq!(
            own.1,
            "http://127.0.0.1:50051/sign-in?organization={organization_id}"
        );
        let everywhere = links(&[("ONRAMP_LISTEN_ADDR", "0.0.0.0:9000")]).unwrap_or_default();
        assert_eq!(everywhere.0, "http://localhost:9000/register?token={token}");
        let gateway = links(&[("ONRAMP_PUBLIC_URL", "https://join.example.com/")]).unwrap_or_default();
        assert_eq!(gateway.0, "https://join.example.com/register?token={token}");
        assert_eq!(
            gateway.2,
            "https://join.example.com/sign-in?organization={organization_id}"
        );
        let app = links(&[("ONRAMP_APP_URL", "https://app.example.com/")]).unwrap_or_default();
        assert_eq!(app.2, "https://app.example.com/");
    }

    #[test]
    fn the_development_key_is_printed_only_on_a_first_run_on_loopback() {
        let bootstrap = |vars: &[(&str, &str)]| config(vars).map(|c| c.dev_bootstrap).ok();
        assert_eq!(bootstrap(&[]), Some(true), "the zero-configuration first run");
        let named = ("DATABASE_URL", "postgres://db.internal/onramp");
        assert_eq!(
            bootstrap(&[named]),
            Some(false),
            "a deployment names its database"
        );
        assert_eq!(bootstrap(&[("ONRAMP_LISTEN_ADDR", "0.0.0.0:50051")]), Some(false));
        assert_eq!(bootstrap(&[named, ("ONRAMP_DEV_BOOTSTRAP", "true")]), Some(true));
    }

    #[test]
    fn metrics_are_served_on_their_own_port_unless_the_address_is_empty() {
        let metrics = |vars: &[(&str, &str)]| {
            config(vars)
                .map(|c| c.metrics_addr.map(|a| a.to_string()))
                .map_err(|e| e.to_string())
        };
        assert_eq!(metrics(&[]), Ok(Some("127.0.0.1:9464".to_owned())));
        assert_eq!(
            metrics(&[("ONRAMP_METRICS_ADDR", "0.0.0.0:9100")]),
            Ok(Some("0.0.0.0:9100".to_owned()))
        );
        assert_eq!(metrics(&[("ONRAMP_METRICS_ADDR", "")]), Ok(None));
        let refused = metrics(&[("ONRAMP_METRICS_ADDR", "port 9464")]);
        assert!(
            refused.as_ref().is_err_and(|e| e.contains("ONRAMP_METRICS_ADDR")),
            "{refused:?}"
        );
    }

    #[test]
    fn the_runtime_threads_are_checked_with_the_rest() {
        for bad in ["0", "many"] {
            let err = config(&[("TOKIO_WORKER_THREADS", bad)])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("TOKIO_WORKER_THREADS"), "{bad} accepted: {err:?}");
        }
        let three = config(&[("TOKIO_WORKER_THREADS", "3")]).map(|c| c.worker_threads);
        assert_eq!(three.ok(), Some(3));
    }

    #[test]
    fn every_bad_variable_is_reported_by_name() {
        let err = config(&[
            ("ONRAMP_LISTEN_ADDR", "nowhere"),
            ("ONRAMP_PUBLIC_URL", "example.com"),
            ("ONRAMP_BOOTSTRAP_API_KEY", "short"),
            ("ONRAMP_DB_POOL_TIMEOUT_MS", "soon"),
        ])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        for name in [
            "ONRAMP_LISTEN_ADDR",
            "ONRAMP_PUBLIC_URL",
            "ONRAMP_BOOTSTRAP_API_KEY",
            "ONRAMP_DB_POOL_TIMEOUT_MS",
        ] {
            assert!(err.contains(name), "{name} missing from: {err}");
        }
        assert!(!err.contains("short"), "the secret leaked: {err}");
    }
}
