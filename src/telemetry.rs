//! Logs for people on stderr, and OpenTelemetry traces (and metrics, see
//! `metrics`) over OTLP when the standard `OTEL_EXPORTER_OTLP_*` variables
//! ask for them. Every RPC is a span whose parent is the caller's
//! `traceparent`, when it sends one.

use http::HeaderMap;
use opentelemetry::{global, propagation::Extractor, trace::TracerProvider as _};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

const DEFAULT_FILTER: &str =
    "info,h2=warn,tower=warn,hyper=warn,tonic=warn,opentelemetry=warn,opentelemetry_sdk=warn";

/// Holds the trace and metric exporters; `shutdown` flushes what is
/// buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    metrics: Option<crate::metrics::Installed>,
}

/// Whether the standard variables ask for a signal (`traces`, `metrics`)
/// over OTLP.
fn wants_otlp(signal: &str) -> bool {
    let upper = signal.to_uppercase();
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
        format!("OTEL_EXPORTER_OTLP_{upper}_ENDPOINT"),
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|s| !s.is_empty()))
        && std::env::var(format!("OTEL_{upper}_EXPORTER")).map_or(true, |v| v != "none")
}

impl Telemetry {
    /// Installs the global subscriber and meter provider (serving
    /// Prometheus metrics when `serve_metrics`). Call once, inside the
    /// runtime.
    pub fn init(serve_metrics: bool) -> Result<Telemetry, String> {
        global::set_text_map_propagator(TraceContextPropagator::new());
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false);
        let provider = if wants_otlp("traces") {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()
                .map_err(|e| format!("OTLP exporter: {e}"))?;
            let mut resource = Resource::builder();
            if std::env::var("OTEL_SERVICE_NAME").is_err() {
                resource = resource.with_service_name("onramp");
            }
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource.build())
                    .build(),
            )
        } else {
            None
        };
        let otel = provider
            .as_ref()
            .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("onramp")));
        tracing_subscriber::registry()
            .with(filter)
            .with(fmt)
            .with(otel)
            .try_init()
            .map_err(|e| format!("tracing: {e}"))?;
        let metrics = crate::metrics::install(serve_metrics, wants_otlp("metrics"))?;
        Ok(Telemetry { provider, metrics })
    }

    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// What `/metrics` serves, when it is served.
    pub fn registry(&self) -> Option<prometheus::Registry> {
        self.metrics.as_ref().and_then(|m| m.registry.clone())
    }

    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(e) = provider.shutdown() {
                eprintln!("flushing traces failed: {e}");
            }
        }
        if let Some(metrics) = self.metrics {
            metrics.shutdown();
        }
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The W3C `traceparent` of the current span, to carry the trace into work
/// done later (an email sent by the outbox). `None` when no trace is kept.
pub fn current_traceparent() -> Option<String> {
    let context = Span::current().context();
    let mut carrier = std::collections::HashMap::new();
    global::get_text_map_propagator(|p| p.inject_context(&context, &mut carrier));
    carrier.remove("traceparent")
}

/// Makes `span` a child of the trace `traceparent` names.
pub fn continue_trace(span: &Span, traceparent: Option<&str>) {
    if let Some(traceparent) = traceparent {
        let carrier = std::collections::HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
        let parent = global::get_text_map_propagator(|p| p.extract(&carrier));
        let _ = span.set_parent(parent);
    }
}

/// The span of one RPC, a child of the caller's trace when the request
/// carries `traceparent`.
pub fn rpc_span(request: &http::Request<()>) -> Span {
    let path = request.uri().path();
    let (service, method) = path.trim_start_matches('/').split_once('/').unwrap_or((path, ""));
    let span = tracing::info_span!(
        "rpc",
        otel.name = %path.trim_start_matches('/'),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
    );
    let parent = global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(request.headers())));
    // Without the OpenTelemetry layer there is no trace to join.
    let _ = span.set_parent(parent);
    span
}
