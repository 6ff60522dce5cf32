//! Metrics an operator graphs and alerts on, made with the OpenTelemetry
//! SDK: served in the Prometheus text format on a listener of their own
//! (`ONRAMP_METRICS_ADDR`), and pushed over OTLP as well when the standard
//! `OTEL_EXPORTER_OTLP_*` variables name a collector.
//!
//! The instruments live in one process-wide set, made from the global meter
//! once `install` has set it up; before that (and in a process that never
//! calls it, such as a test that runs the server in-process) every
//! measurement is a no-op. Labels are few and bounded: an RPC's name, a
//! kind of email, an outcome; never an address, a name or an id.

mod process;
pub mod rpc;
pub mod serve;

use std::{sync::OnceLock, time::Duration};

use opentelemetry::{
    KeyValue, global,
    metrics::{Counter, Gauge, Histogram, Meter, UpDownCounter},
};
use opentelemetry_sdk::{Resource, metrics::SdkMeterProvider};

/// Buckets for durations in seconds: a millisecond to a minute.
const SECONDS: [f64; 16] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The meter provider and what `/metrics` reads; `shutdown` flushes the
/// OTLP export.
pub struct Installed {
    provider: SdkMeterProvider,
    pub registry: Option<prometheus::Registry>,
}

impl Installed {
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("flushing metrics failed: {e}");
        }
    }
}

/// Sets up the global meter provider: a Prometheus registry when `serve` is
/// asked for, an OTLP exporter when `otlp` is. Call once, inside the
/// runtime, before anything is measured.
pub fn install(serve: bool, otlp: bool) -> Result<Option<Installed>, String> {
    if !serve && !otlp {
        return Ok(None);
    }
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name("onramp");
    }
    let mut builder = SdkMeterProvider::builder().with_resource(resource.build());
    let registry = if serve {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            // One process, one scope: the scope labels would only repeat
            // "onramp" on every series.
            .scope_info_enabled(false)
            .build()
            .map_err(|e| format!("Prometheus exporter: {e}"))?;
        builder = builder.with_reader(exporter);
        Some(registry)
    } else {
        None
    };
    if otlp {
        let exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .build()
            .map_err(|e| format!("OTLP metric exporter: {e}"))?;
        builder = builder.with_periodic_exporter(exporter);
    }
    let provider = builder.build();
    global::set_meter_provider(provider.clone());
    INSTALLED.store(true, std::sync::atomic::Ordering::Relaxed);
    process::observe(&global::meter("onramp"));
    Ok(Some(Installed { provider, registry }))
}

/// Every instrument, made once from the global meter.
pub struct Metrics {
    pub rpc_requests: Counter<u64>,
    pub rpc_duration: Histogram<f64>,
    pub outbox_waiting: Gauge<u64>,
    pub outbox_oldest: Gauge<f64>,
    pub outbox_sends: Counter<u64>,
    pub outbox_attempts: Counter<u64>,
    pub outbox_takeovers: Counter<u64>,
    pub smtp_replies: Counter<u64>,
    pub batches_started: Counter<u64>,
    pub batches_finished: Counter<u64>,
    pub batch_recipients: Counter<u64>,
    pub hashes: Counter<u64>,
    pub hash_wait: Histogram<f64>,
    pub hash_jobs: UpDownCounter<i64>,
    pub hash_threads: Gauge<u64>,
    pub sign_ins: Counter<u64>,
    pub lockouts: Counter<u64>,
    pub rate_limited: Counter<u64>,
    pub pool_connections: Gauge<u64>,
    pub pool_waiting: UpDownCounter<i64>,
    pub pool_wait: Histogram<f64>,
    pub pool_timeouts: Counter<u64>,
    pub statement_timeouts: Counter<u64>,
}

impl Metrics {
    fn new(meter: &Meter) -> Self {
        let counter = |name: &'static str, unit: &'static str, description: &'static str| {
            meter
                .u64_counter(name)
                .with_unit(unit)
                .with_description(description)
                .build()
        };
        let seconds = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(SECONDS.to_vec())
                .build()
        };
        Metrics {
            rpc_requests: counter(
                "onramp.rpc.requests",
                "{request}",
                "RPCs answered, by service, method and gRPC status code",
            ),
            rpc_duration: seconds(
                "onramp.rpc.duration",
                "Time from an RPC's arrival to its last message (a stream's whole life)",
            ),
            outbox_waiting: meter
                .u64_gauge("onramp.outbox.waiting")
                .with_unit("{email}")
                .with_description(
                    "Emails queued or being sent, by kind (the whole outbox, read from the database)",
                )
                .build(),
            outbox_oldest: meter
                .f64_gauge("onramp.outbox.oldest_waiting_age")
                .with_unit("s")
                .with_description(
                    "Age of the oldest email not yet sent or failed, retries included (0 when none)",
                )
                .build(),
            outbox_sends: counter(
                "onramp.outbox.sends",
                "{email}",
                "Send attempts by kind and outcome: sent, deferred (to be retried) or failed (for good)",
            ),
            outbox_attempts: counter(
                "onramp.outbox.attempts",
                "{attempt}",
                "Emails claimed for a send attempt, by kind",
            ),
            outbox_takeovers: counter(
                "onramp.outbox.lease_takeovers",
                "{email}",
                "Emails claimed after the lease of a worker that stopped ran out",
            ),
            smtp_replies: counter(
                "onramp.smtp.replies",
                "{reply}",
                "SMTP servers' final answers to a send, by class: 2xx, 4xx, 5xx, or none (no answer)",
            ),
            batches_started: counter("onramp.batches.started", "{batch}", "Bulk sends started, by kind"),
            batches_finished: counter(
                "onramp.batches.finished",
                "{batch}",
                "Bulk sends with every result final, by kind",
            ),
            batch_recipients: counter(
                "onramp.batch.recipients",
                "{recipient}",
                "Final results of bulk sends' recipients, by kind and outcome",
            ),
            hashes: counter(
                "onramp.password.hashes",
                "{hash}",
                "argon2id hashes computed (checks included)",
            ),
            hash_wait: seconds(
                "onramp.password.hash_wait",
                "Time a password hash waited for a hashing thread",
            ),
            hash_jobs: meter
                .i64_up_down_counter("onramp.password.hash_jobs")
                .with_unit("{hash}")
                .with_description("Password hashes running or waiting for a thread")
                .build(),
            hash_threads: meter
                .u64_gauge("onramp.password.hash_threads")
                .with_unit("{thread}")
                .with_description("Threads that compute password hashes (ONRAMP_HASH_CONCURRENCY)")
                .build(),
            sign_ins: counter(
                "onramp.sign_ins",
                "{attempt}",
                "Sign-in attempts by result: ok, second_factor_required, wrong_password, wrong_code, locked",
            ),
            lockouts: counter(
                "onramp.lockouts",
                "{lockout}",
                "Accounts locked after repeated failures",
            ),
            rate_limited: counter(
                "onramp.rate_limited",
                "{request}",
                "Public RPCs refused for too many calls from one address, by group",
            ),
            pool_connections: meter
                .u64_gauge("onramp.db.pool.connections")
                .with_unit("{connection}")
                .with_description("Database connections of this process, by state: in_use or idle")
                .build(),
            pool_waiting: meter
                .i64_up_down_counter("onramp.db.pool.waiting")
                .with_unit("{request}")
                .with_description("Requests waiting for a database connection")
                .build(),
            pool_wait: seconds(
                "onramp.db.pool.wait",
                "Time a request waited for a database connection",
            ),
            pool_timeouts: counter(
                "onramp.db.pool.timeouts",
                "{request}",
                "Requests that gave up waiting for a database connection (ONRAMP_DB_POOL_TIMEOUT_MS)",
            ),
            statement_timeouts: counter(
                "onramp.db.statement_timeouts",
                "{statement}",
                "Statements PostgreSQL cancelled at ONRAMP_DB_STATEMENT_TIMEOUT_MS",
            ),
        }
    }
}

static INSTALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether anything reads the metrics (work done only for them can be
/// skipped otherwise).
pub fn installed() -> bool {
    INSTALLED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The instruments.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics::new(&global::meter("onramp")))
}

/// Counts one in `gauge` while it lives: a request waiting, a hash queued.
/// Dropped, even by a caller that went away, it counts itself out.
pub struct Held(UpDownCounter<i64>);

impl Held {
    pub fn new(gauge: &UpDownCounter<i64>) -> Held {
        gauge.add(1, &[]);
        Held(gauge.clone())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.add(-1, &[]);
    }
}

pub fn kv(key: &'static str, value: impl Into<opentelemetry::Value>) -> KeyValue {
    KeyValue::new(key, value)
}

/// Seconds as a histogram records them.
pub fn secs(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64()
}
