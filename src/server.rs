//! Start-up (database, migrations, pool) and the tonic server: the four
//! services, health, reflection, gRPC-Web with CORS, the person's pages,
//! authentication, request time-outs, a span per RPC, and graceful shutdown.

use std::{future::Future, sync::Arc, time::Duration};

use http::{HeaderName, HeaderValue, Method};
use tokio::net::TcpListener;
use tonic::transport::{Server, server::TcpIncoming};
use tonic_web::GrpcWebLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{
    clock::Clock,
    config::Config,
    db,
    domain::{client_limits, key_cache::KeyCache, organizations},
    grpc::{
        auth::AuthLayer, credentials::CredentialsService, invitations::InvitationsService,
        registration::RegistrationService, user_admin::UserAdminService,
    },
    mail::Mailer,
    metrics::rpc::RpcMetricsLayer,
    notify::Notifier,
    outbox,
    pages::PagesLayer,
    passwords::Hasher,
    pb::{
        self, credentials_server::CredentialsServer, invitations_server::InvitationsServer,
        registration_server::RegistrationServer, user_admin_server::UserAdminServer,
    },
    secrets::SecretBox,
    services::Services,
    state::AppState,
    telemetry,
};

/// Large enough for 100,000 pasted addresses.
pub const MAX_REQUEST_BYTES: usize = 16 << 20;

/// The HTTP/2 flow-control window of each request stream: how far a client
/// may send ahead of the server reading it.
const STREAM_WINDOW_BYTES: u32 = 256 << 10;

pub type StartError = Box<dyn std::error::Error + Send + Sync>;

/// Creates the database if it is missing, migrates it and opens the pool.
pub async fn prepare(config: Config, clock: Clock) -> Result<AppState, StartError> {
    if db::create_database_if_missing(&config.database_url)
        .await
        .map_err(|e| format!("cannot reach or create the database of DATABASE_URL: {e}"))?
    {
        tracing::info!("created the database");
    }
    let applied = db::migrate(&config.database_url)
        .await
        .map_err(|e| format!("migrating the database failed: {e}"))?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "migrated the database");
    }
    let pool = db::connect(
        &config.database_url,
        config.db_pool_size,
        config.db_pool_timeout,
        config.statement_timeout,
    )
    .await
    .map_err(|e| format!("cannot open the connection pool: {e}"))?;
    let mailer = Mailer::from_config(&config)?;
    let a = &config.argon2;
    let hasher = Hasher::new(a.memory_kib, a.iterations, a.parallelism, a.concurrency)?;
    let secrets = match &config.secret_key {
        Some(key) => Some(Arc::new(SecretBox::new(key))),
        None => {
            let mut conn = pool.get().await?;
            if organizations::any_require_second_factor(&mut conn).await? {
                return Err(
                    "an organisation requires a second factor, and second-factor secrets are \
                    encrypted with ONRAMP_SECRET_KEY: set it (32 random bytes, base64) and start again"
                        .into(),
                );
            }
            None
        }
    };
    let keys = KeyCache::new(config.bootstrap_api_key.as_deref());
    let services = Services {
        pool,
        clock,
        message_domain: config.message_domain().into(),
        config: Arc::new(config),
        hasher,
        mailer,
        secrets,
    };
    Ok(AppState {
        services,
        notifier: Notifier::new(),
        keys: Arc::new(keys),
        shutdown: Default::default(),
        client_limits: Default::default(),
    })
}

/// Serves gRPC and works the outbox until `shutdown` completes; then stops
/// accepting, ends batch streams (their clients resume on another replica),
/// lets other in-flight RPCs finish, and lets each worker finish and record
/// the chunk it holds.
pub async fn run(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let listening = tokio::spawn(state.notifier.clone().run(state.config.database_url.clone()));
    let counting = tokio::spawn(client_limits::run(
        state.services.clone(),
        state.client_limits.clone(),
    ));
    let measuring =
        crate::metrics::installed().then(|| tokio::spawn(outbox::backlog::run(state.services.clone())));
    let mut workers = outbox::start(&state, &state.notifier, &state.shutdown.subscribe());
    let stopping = state.shutdown.clone();
    let shutdown = async move {
        shutdown.await;
        stopping.begin();
    };
    let served = serve(state, listener, shutdown).await;
    while workers.join_next().await.is_some() {}
    listening.abort();
    counting.abort();
    if let Some(measuring) = measuring {
        measuring.abort();
    }
    served
}

/// Serves until `shutdown` completes, then lets in-flight RPCs finish.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<UserAdminServer<UserAdminService>>()
        .await;
    health_reporter
        .set_serving::<InvitationsServer<InvitationsService>>()
        .await;
    health_reporter
        .set_serving::<CredentialsServer<CredentialsService>>()
        .await;
    health_reporter
        .set_serving::<RegistrationServer<RegistrationService>>()
        .await;

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1();
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha();
    let (reflection_v1, reflection_v1alpha) = match (reflection_v1, reflection_v1alpha) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "reflection could not load the descriptors");
            return Ok(());
        }
    };

    let request_timeout = state.config.request_timeout;
    let drain = state.config.shutdown_drain;
    // From the moment shutdown begins the health service says NOT_SERVING,
    // and the server keeps accepting for the drain time, so that a gateway's
    // health check takes it out before it stops answering.
    let shutdown = async move {
        shutdown.await;
        for service in [
            "",
            "onramp.v1.UserAdmin",
            "onramp.v1.Invitations",
            "onramp.v1.Credentials",
            "onramp.v1.Registration",
        ] {
            health_reporter
                .set_service_status(service, tonic_health::ServingStatus::NotServing)
                .await;
        }
        tokio::time::sleep(drain).await;
    };
    let cors = cors(&state.config.cors_origins);
    Server::builder()
        .accept_http1(true)
        .timeout(request_timeout)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        // What a client has sent and the server not yet read is held in
        // memory: hyper's default window (1 MiB) let a streamed send of
        // 100,000 addresses keep a mebibyte of later parts waiting while each
        // earlier one was written. 256 KiB holds two parts of 5,000.
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .trace_fn(telemetry::rpc_span)
        .layer(PagesLayer)
        .layer(cors)
        .layer(GrpcWebLayer::new())
        .layer(RpcMetricsLayer)
        .layer(AuthLayer::new(state.clone()))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            UserAdminServer::new(UserAdminService::new(state.clone()))
                .max_decoding_message_size(crate::grpc::user_admin::import::IMPORT_MESSAGE_BYTES),
        )
        .add_service(
            InvitationsServer::new(InvitationsService::new(state.clone()))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(CredentialsServer::new(CredentialsService::new(state.clone())))
        .add_service(RegistrationServer::new(RegistrationService::new(state)))
        // tonic applies its own TCP_NODELAY only to listeners it binds itself;
        // without it, a reply written behind an unacknowledged one waits for
        // the peer's delayed ACK, about 40 ms.
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), shutdown)
        .await
}

/// CORS for browsers calling through gRPC-Web: the headers gRPC-Web sends,
/// and the gRPC status headers exposed to scripts.
fn cors(origins: &[String]) -> CorsLayer {
    let allow_origin = if origins.is_empty() {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers(
            [
                "authorization",
                "content-type",
                "x-grpc-web",
                "x-user-agent",
                "grpc-timeout",
                "traceparent",
            ]
            .map(HeaderName::from_static),
        )
        .expose_headers(
            ["grpc-status", "grpc-message", "grpc-status-details-bin"].map(HeaderName::from_static),
        )
        .max_age(Duration::from_secs(24 * 3600))
}
