//! Real `onramp` processes against one database: replicas sharing a bulk
//! send, one killed mid-batch, and a trace exported over OTLP.

use std::{
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    metrics_service_server::{MetricsService, MetricsServiceServer},
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

use crate::{
    harness::{DEADLINE, finish, invite, watch},
    harness::{PLATFORM_KEY, TestServer, authed, url_for},
};
use onramp::pb;

/// An `onramp serve` process on a free port.
pub struct Process {
    pub child: Child,
    channel: Channel,
    /// `127.0.0.1:PORT`.
    pub address: String,
}

impl Process {
    pub async fn start(server: &TestServer, env: &[(&str, String)]) -> Process {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_onramp"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", url_for(&server.database))
            .env("ONRAMP_LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("SMTP_URL", server.smtp.url())
            .env("ONRAMP_BOOTSTRAP_API_KEY", PLATFORM_KEY)
            .env("ONRAMP_DEV_BOOTSTRAP", "false")
            // Off unless a test asks for it: processes started side by side
            // would all want the default port.
            .env("ONRAMP_METRICS_ADDR", "")
            .env("ONRAMP_OUTBOX_POLL_MS", "100")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("start onramp");
        let address = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let channel = loop {
            if let Ok(channel) = Channel::from_shared(address.clone()).unwrap().connect().await {
                let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
                if health
                    .check(tonic_health::pb::HealthCheckRequest::default())
                    .await
                    .is_ok()
                {
                    break channel;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "onramp did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Process {
            child,
            channel,
            address: format!("127.0.0.1:{port}"),
        }
    }

    pub fn invitations(&self) -> pb::invitations_client::InvitationsClient<Channel> {
        pb::invitations_client::InvitationsClient::new(self.channel.clone())
    }

    pub fn credentials(&self) -> pb::credentials_client::CredentialsClient<Channel> {
        pb::credentials_client::CredentialsClient::new(self.channel.clone())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `serve` holds glibc's mapping threshold (see `onramp::malloc`) by starting
/// itself again with `GLIBC_TUNABLES` set, and keeps an operator's own value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_holds_the_allocators_mapping_threshold_unless_told_otherwise() {
    let server = TestServer::start().await;
    let held = Process::start(&server, &[]).await;
    assert_eq!(tunables(&held).as_deref(), Some(onramp::malloc::TUNABLE));
    let chosen = "glibc.malloc.arena_max=2";
    let told = Process::start(&server, &[("GLIBC_TUNABLES", chosen.to_owned())]).await;
    assert_eq!(tunables(&told).as_deref(), Some(chosen));
}

/// The `GLIBC_TUNABLES` a running process was started with.
fn tunables(process: &Process) -> Option<String> {
    let environ =
        std::fs::read(format!("/proc/{}/environ", process.child.id())).expect("read its environment");
    environ
        .split(|b| *b == 0)
        .find_map(|entry| entry.strip_prefix(b"GLIBC_TUNABLES="))
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_a_bulk_send_and_one_killed_mid_batch_loses_nothing() {
    // The in-process server only answers; the processes do the sending.
    let server = TestServer::start_with(|c| c.outbox.workers = 0).await;
    let org = server.org("Acme").await;
    server.smtp.set(|b| b.delay = Duration::from_millis(30));
    let env = [
        ("ONRAMP_OUTBOX_CLAIM", "4".to_owned()),
        ("ONRAMP_OUTBOX_LEASE_MS", "5000".to_owned()),
    ];
    let a = Process::start(&server, &env).await;
    let mut b = Process::start(&server, &env).await;
    let c = Process::start(&server, &env).await;

    let text: Vec<String> = (0..90).map(|i| format!("p{i}@acme.example")).collect();
    let stream = a
        .invitations()
        .send_invitations(authed(invite(&org, &text.join("\n")), &org.key))
        .await
        .expect("send")
        .into_inner();
    server.smtp.wait_for(10, DEADLINE).await;
    b.child.kill().expect("SIGKILL one replica");
    let _ = b.child.wait();

    let finished = finish(stream)
        .await
        .expect("the batch finishes without the killed replica");
    assert_eq!(finished.completion.sent, 90);
    assert_eq!(finished.results.len(), 90);
    let mail = server.smtp.wait_for(90, DEADLINE).await;
    let mut recipients: Vec<String> = mail.iter().flat_map(|m| m.to.clone()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 90, "every invitation was delivered");
    // Only what the killed replica held between the SMTP server's acceptance
    // and its commit can go twice: at most its workers' claims (4 x 4).
    assert!(mail.len() <= 90 + 16, "{} emails for 90 invitations", mail.len());
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_batch_sends_again_at_most_one_email_per_smtp_connection() {
    let server = TestServer::start_with(|c| c.outbox.workers = 0).await;
    let org = server.org("Acme").await;
    // Defaults throughout (4 workers claiming 32 each, so many claimed emails
    // wait for one of the 16 connections), but a short lease so the killed
    // replica's claims come back quickly.
    let env = [("ONRAMP_OUTBOX_LEASE_MS", "3000".to_owned())];
    let a = Process::start(&server, &env).await;
    let mut b = Process::start(&server, &env).await;
    let c = Process::start(&server, &env).await;

    let people: Vec<String> = (0..3000).map(|i| format!("p{i}@acme.example")).collect();
    let stream = a
        .invitations()
        .send_invitations(authed(invite(&org, &people.join("\n")), &org.key))
        .await
        .expect("send")
        .into_inner();
    server.smtp.wait_for(1000, DEADLINE).await;
    b.child.kill().expect("SIGKILL one replica");
    let _ = b.child.wait();

    let finished = finish(stream)
        .await
        .expect("the batch finishes without the killed replica");
    assert_eq!(finished.completion.sent, 3000);
    let mail = server.smtp.wait_for(3000, DEADLINE).await;
    let mut received = std::collections::HashMap::<String, usize>::new();
    for to in mail.iter().flat_map(|m| m.to.clone()) {
        *received.entry(to).or_default() += 1;
    }
    let missing: Vec<&String> = people.iter().filter(|p| !received.contains_key(*p)).collect();
    assert!(missing.is_empty(), "never emailed: {missing:?}");
    // Only what the killed process had accepted by the SMTP server and not
    // yet committed goes twice: one email per connection at most.
    let again: usize = received.values().map(|n| n - 1).sum();
    let mut twice: Vec<&String> = received.iter().filter(|(_, n)| **n > 1).map(|(p, _)| p).collect();
    twice.sort();
    assert!(again <= 16, "{again} emails went again, to {twice:?}");
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_batch_finishes_what_is_in_flight_and_another_replica_sends_the_rest() {
    let server = TestServer::start_with(|c| c.outbox.workers = 0).await;
    let org = server.org("Acme").await;
    server.smtp.set(|b| b.delay = Duration::from_millis(100));
    // A lease far longer than the test: anything left leased would show.
    let env = [
        ("ONRAMP_OUTBOX_CLAIM", "4".to_owned()),
        ("ONRAMP_OUTBOX_LEASE_MS", "600000".to_owned()),
    ];
    let mut stopping = Process::start(&server, &env).await;
    let text: Vec<String> = (0..60).map(|i| format!("p{i}@acme.example")).collect();
    let mut stream = stopping
        .invitations()
        .send_invitations(authed(invite(&org, &text.join("\n")), &org.key))
        .await
        .expect("send")
        .into_inner();
    let Some(Ok(pb::BatchEvent {
        event: Some(pb::batch_event::Event::Summary(summary)),
    })) = stream.next().await
    else {
        panic!("the summary comes first");
    };
    server.smtp.wait_for(5, DEADLINE).await;
    let terminated = Command::new("kill")
        .args(["-TERM", &stopping.child.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(terminated.success());
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let exit = loop {
        if let Some(status) = stopping.child.try_wait().expect("wait for the process") {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "onramp did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "a clean exit on SIGTERM: {exit}");
    // The stream was ended, not cut: its client is told to follow elsewhere.
    let mut ended = None;
    while let Some(event) = stream.next().await {
        if let Err(status) = event {
            ended = Some(status);
        }
    }
    let ended = ended.expect("the stream ends with a status");
    assert_eq!(ended.code(), tonic::Code::Unavailable, "{ended:?}");
    assert!(ended.message().contains("WatchBatch"), "{ended:?}");
    let sent_before = server.smtp.received().len();
    assert!(
        sent_before < 60,
        "the batch was stopped part way ({sent_before} sent)"
    );

    let mut db = server.db().await;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let leased: Count = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query("SELECT count(*) AS n FROM outbox WHERE state = 'sending'"),
        &mut db,
    )
    .await
    .unwrap();
    assert_eq!(leased.n, 0, "nothing is left leased by the stopped process");

    let other = Process::start(&server, &env).await;
    let finished = watch(other.invitations(), &org, summary.batch_id).await;
    assert_eq!(finished.completion.sent, 60);
    let mail = server.smtp.wait_for(60, DEADLINE).await;
    assert_eq!(mail.len(), 60, "no email went twice");
}

/// An OTLP receiver that keeps every span it is sent, and the names of the
/// metrics.
#[derive(Clone, Default)]
pub struct Receiver {
    pub spans: Arc<Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>>,
    pub metrics: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let mut names = self.metrics.lock().unwrap();
        for resource in request.into_inner().resource_metrics {
            for scope in resource.scope_metrics {
                names.extend(scope.metrics.into_iter().map(|m| m.name));
            }
        }
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    /// A receiver on a free port, and its OTLP endpoint.
    pub async fn start() -> (Receiver, String) {
        let receiver = Receiver::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(receiver.clone()))
                .add_service(MetricsServiceServer::new(receiver.clone()))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        (receiver, endpoint)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_invite_is_one_trace_under_the_callers_traceparent() {
    let (receiver, endpoint) = Receiver::start().await;
    let server = TestServer::start_with(|c| c.outbox.workers = 0).await;
    let org = server.org("Acme").await;
    let traced = Process::start(
        &server,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
            ("RUST_LOG", "info".into()),
        ],
    )
    .await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let mut request = authed(invite(&org, "ada@acme.example, grace@acme.example"), &org.key);
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{caller_span}-01").parse().unwrap(),
    );
    let stream = traced
        .invitations()
        .send_invitations(request)
        .await
        .expect("send")
        .into_inner();
    finish(stream).await.expect("batch");

    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let spans: Vec<_> = receiver
            .spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| hex(&s.trace_id) == trace_id)
            .cloned()
            .collect();
        let rpc = spans
            .iter()
            .find(|s| s.name == "onramp.v1.Invitations/SendInvitations");
        let sends = spans.iter().filter(|s| s.name == "smtp.send").count();
        if let (Some(rpc), 2) = (rpc, sends) {
            assert_eq!(
                hex(&rpc.parent_span_id),
                caller_span,
                "the RPC span is the caller's child"
            );
            let write = spans
                .iter()
                .find(|s| s.name == "db.batch.write")
                .expect("a span for the database work");
            assert_eq!(
                write.parent_span_id, rpc.span_id,
                "the database work is the RPC's child"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "spans of the trace: {:?}; all: {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>(),
            receiver
                .spans
                .lock()
                .unwrap()
                .iter()
                .map(|s| (s.name.clone(), hex(&s.trace_id), hex(&s.parent_span_id)))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_go_out_over_otlp_too_with_the_standard_variables() {
    let (receiver, endpoint) = Receiver::start().await;
    let server = TestServer::start_with(|c| c.outbox.workers = 0).await;
    let org = server.org("Acme").await;
    let exporting = Process::start(
        &server,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200".into()),
            ("OTEL_TRACES_EXPORTER", "none".into()),
        ],
    )
    .await;
    let stream = exporting
        .invitations()
        .send_invitations(authed(invite(&org, "ada@acme.example"), &org.key))
        .await
        .expect("send")
        .into_inner();
    finish(stream).await.expect("batch");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let names = receiver.metrics.lock().unwrap().clone();
        if ["onramp.rpc.requests", "onramp.outbox.sends", "process.cpu"]
            .iter()
            .all(|n| names.iter().any(|m| m == n))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the metrics that came over OTLP: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        receiver.spans.lock().unwrap().is_empty(),
        "OTEL_TRACES_EXPORTER=none exported spans"
    );
    drop(exporting);
}
