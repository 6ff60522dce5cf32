//! Starts a real Onramp server for one test: a fresh database copied from a
//! migrated template, the server on a free port reached through a real tonic
//! channel, and a real SMTP receiver on loopback.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use diesel::{QueryableByName, sql_types::Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use onramp::{
    clock::Clock,
    config::Config,
    pb::{
        self, credentials_client::CredentialsClient, invitations_client::InvitationsClient,
        registration_client::RegistrationClient, user_admin_client::UserAdminClient,
    },
    server,
    state::AppState,
};
use tokio::{net::TcpListener, sync::OnceCell};
use tonic::{Request, transport::Channel};

use crate::smtp::SmtpServer;

mod batches;
pub mod constraints;
mod imports;
pub mod migrations;

pub use batches::{DEADLINE, Finished, claimed_in_a_transaction, finish, invite, opened, send, watch};
pub use imports::{csv, import, options, users};

/// The server the test databases live on; `ONRAMP_TEST_DATABASE_URL` points
/// elsewhere (any database on the server: it is only used to find it).
fn server_url() -> String {
    std::env::var("ONRAMP_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn url_for(database: &str) -> String {
    let base = server_url();
    let (admin, _) =
        onramp::db::split_database_name(&base).expect("ONRAMP_TEST_DATABASE_URL names a database");
    let base = admin.split('?').next().unwrap_or_default();
    let query = admin.strip_prefix(base).unwrap_or_default();
    let server = base
        .strip_suffix("/postgres")
        .expect("the maintenance URL ends in /postgres");
    format!("{server}/{database}{query}")
}

fn admin_url() -> String {
    url_for("postgres")
}

static TEMPLATE: OnceCell<String> = OnceCell::const_new();
static NEXT_DATABASE: AtomicUsize = AtomicUsize::new(0);

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    datname: String,
}

/// Migrates a template database once per test process, after dropping the
/// databases that earlier, finished runs left behind.
async fn template() -> &'static str {
    TEMPLATE
        .get_or_init(|| async {
            let mut admin = AsyncPgConnection::establish(&admin_url())
                .await
                .expect("connect to Postgres");
            let leftovers: Vec<Name> =
                diesel::sql_query("SELECT datname FROM pg_database WHERE datname LIKE 'onramp\\_t\\_%'")
                    .load(&mut admin)
                    .await
                    .expect("list test databases");
            for db in leftovers {
                let pid = db.datname.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
                let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
                if !alive {
                    let _ = admin
                        .batch_execute(&format!(
                            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                            db.datname
                        ))
                        .await;
                }
            }
            let name = format!("onramp_t_{}_template", std::process::id());
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await
                .expect("drop an old template database");
            admin
                .batch_execute(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create the template database");
            onramp::db::migrate(&url_for(&name))
                .await
                .expect("migrate the template");
            name
        })
        .await
}

async fn fresh_database() -> String {
    let template = template().await;
    let name = format!(
        "onramp_t_{}_{}",
        std::process::id(),
        NEXT_DATABASE.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = AsyncPgConnection::establish(&admin_url())
        .await
        .expect("connect to Postgres");
    // Copies of one template can collide while another copy is starting.
    for attempt in 0.. {
        match admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""))
            .await
        {
            Ok(()) => break,
            Err(e) if attempt < 20 && e.to_string().contains("being accessed") => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("create {name}: {e}"),
        }
    }
    name
}

/// The platform key every test server accepts.
pub const PLATFORM_KEY: &str = "onramp-test-platform-key-0123456789";

pub struct TestServer {
    pub address: String,
    pub channel: Channel,
    pub smtp: SmtpServer,
    pub state: AppState,
    pub database: String,
    /// Where the server's database is.
    pub database_url: String,
    owns_database: bool,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    running: Option<tokio::task::JoinHandle<Result<(), tonic::transport::Error>>>,
}

/// An organisation made for a test, with an admin key and one service area
/// and role.
pub struct Org {
    pub id: String,
    pub key: String,
    pub service_area_id: String,
    pub role_id: String,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts with the test defaults, changed by `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> TestServer {
        let smtp = SmtpServer::start().await;
        let database = fresh_database().await;
        Self::launch(database, smtp, configure).await
    }

    /// A server on the database at `url`, on a Postgres server of the
    /// test's own; the test that made it drops it.
    pub async fn start_on(url: String, configure: impl FnOnce(&mut Config)) -> TestServer {
        let smtp = SmtpServer::start().await;
        let mut server = Self::launch("(private)".into(), smtp, |c| {
            c.database_url = url;
            configure(c);
        })
        .await;
        server.owns_database = false;
        server
    }

    /// A second server process's worth of Onramp on the same database and
    /// SMTP receiver, as another replica would be.
    pub async fn replica(&self) -> TestServer {
        self.replica_with(|_| {}).await
    }

    /// A replica with the test defaults, changed by `configure`.
    pub async fn replica_with(&self, configure: impl FnOnce(&mut Config)) -> TestServer {
        let mut replica = Self::launch(self.database.clone(), self.smtp.clone(), configure).await;
        replica.owns_database = false;
        replica
    }

    async fn launch(database: String, smtp: SmtpServer, configure: impl FnOnce(&mut Config)) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
        let address = format!("http://{}", listener.local_addr().expect("local address"));
        let mut config = Config::from_lookup(|_| None).expect("default configuration");
        config.database_url = url_for(&database);
        config.smtp_url = Some(smtp.url());
        config.bootstrap_api_key = Some(PLATFORM_KEY.into());
        // The emails link to this server's own pages, as with no settings.
        config.set_public_url(&address);
        config.db_pool_size = 8;
        config.dev_bootstrap = false;
        config.outbox.poll_interval = std::time::Duration::from_millis(200);
        configure(&mut config);
        let database_url = config.database_url.clone();
        let state = server::prepare(config, Clock::system())
            .await
            .expect("prepare the server");
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(server::run(state.clone(), listener, async {
            let _ = stop.await;
        }));
        let channel = Channel::from_shared(address.clone())
            .expect("endpoint")
            .connect()
            .await
            .expect("connect to the test server");
        TestServer {
            address,
            channel,
            smtp,
            state,
            database,
            database_url,
            owns_database: true,
            shutdown: Some(shutdown),
            running: Some(running),
        }
    }

    /// Stops the server as SIGTERM would, and waits until it has.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        if let Some(running) = self.running.take() {
            let _ = running.await;
        }
    }

    pub fn admin(&self) -> UserAdminClient<Channel> {
        UserAdminClient::new(self.channel.clone())
    }

    pub fn invitations(&self) -> InvitationsClient<Channel> {
        InvitationsClient::new(self.channel.clone())
    }

    pub fn credentials(&self) -> CredentialsClient<Channel> {
        CredentialsClient::new(self.channel.clone())
    }

    pub fn registration(&self) -> RegistrationClient<Channel> {
        RegistrationClient::new(self.channel.clone())
    }

    /// The audit events `request` selects, newest first.
    pub async fn audit_events(&self, key: &str, request: pb::ListAuditEventsRequest) -> Vec<pb::AuditEvent> {
        self.admin()
            .list_audit_events(authed(request, key))
            .await
            .expect("list audit events")
            .into_inner()
            .audit_events
    }

    /// The audit events with action `action`, newest first.
    pub async fn audited(&self, key: &str, action: &str) -> Vec<pb::AuditEvent> {
        self.audit_events(
            key,
            pb::ListAuditEventsRequest {
                action: action.into(),
                ..Default::default()
            },
        )
        .await
    }

    /// A direct connection to this test's database, for checks behind the API.
    pub async fn db(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.database_url)
            .await
            .expect("connect to the test database")
    }

    /// Creates an organisation with an admin key, a service area and a role.
    pub async fn org(&self, name: &str) -> Org {
        let mut admin = self.admin();
        let org = admin
            .create_organization(authed(
                pb::CreateOrganizationRequest {
                    name: name.into(),
                    policy: None,
                },
                PLATFORM_KEY,
            ))
            .await
            .expect("create organisation")
            .into_inner();
        let key = admin
            .create_api_key(authed(
                pb::CreateApiKeyRequest {
                    organization_id: org.id.clone(),
                    name: "test admin".into(),
                    scopes: vec![pb::ApiKeyScope::Admin as i32],
                    expire_time: None,
                },
                PLATFORM_KEY,
            ))
            .await
            .expect("create admin key")
            .into_inner()
            .secret;
        let area = admin
            .create_service_area(authed(
                pb::CreateServiceAreaRequest {
                    organization_id: String::new(),
                    name: "North ward".into(),
                    description: String::new(),
                },
                &key,
            ))
            .await
            .expect("create service area")
            .into_inner();
        let role = admin
            .create_role(authed(
                pb::CreateRoleRequest {
                    organization_id: String::new(),
                    name: "Nurse".into(),
                    description: String::new(),
                },
                &key,
            ))
            .await
            .expect("create role")
            .into_inner();
        Org {
            id: org.id,
            key,
            service_area_id: area.id,
            role_id: role.id,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        if !self.owns_database {
            return;
        }
        let name = self.database.clone();
        // Drop runs outside async code: a thread with its own runtime does
        // the async clean-up.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut admin) = AsyncPgConnection::establish(&admin_url()).await {
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// `message` with `authorization: Bearer key`.
pub fn authed<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("a valid header value"),
    );
    request
}

/// The field violations of a refusal, as (field, description) pairs.
pub fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| {
            b.field_violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

/// Installs Debian `packages` (with the packages they recommend only when
/// `recommended`) when a test needs a real program this machine lacks; as
/// root, which CI and these machines are.
pub fn apt_install(packages: &[&str], recommended: bool) -> Result<(), String> {
    let run = |args: &[&str]| {
        std::process::Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("apt-get: {e}"))
            .and_then(|s| {
                s.success()
                    .then_some(())
                    .ok_or(format!("apt-get {args:?} failed"))
            })
    };
    run(&["update", "-qq"])?;
    let install: &[&str] = if recommended {
        &["install", "-y", "-qq"]
    } else {
        &["install", "-y", "-qq", "--no-install-recommends"]
    };
    run(&[install, packages].concat())
}
