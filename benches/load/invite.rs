//! Sends invitations end to end: parsed, stored, every email accepted by
//! Postfix's `smtp-sink` and every result streamed back; beside the fastest
//! SMTP client this machine has (`smtp-source`) and a plain lettre client
//! into the same kind of sink, in the same run.

use std::time::Instant;

use onramp::pb::batch_event::Event;
use tokio_stream::StreamExt;

use crate::{
    postfix::{self, PostfixSink},
    process_cpu::{Meter, PerEmail},
    report::Report,
    server::{PLATFORM_KEY, ServerProcess},
    setup::{PART, invite, invite_in_parts, organisation},
};

/// How a run's addresses reach the server.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// In one `SendInvitations` message.
    Whole,
    /// Through `StreamInvitations`, `PART` addresses a message.
    InParts,
}

impl Request {
    /// The run's name in the report.
    pub fn key(self, recipients: usize) -> String {
        match self {
            Request::Whole => format!("invite_{recipients}"),
            Request::InParts => format!("invite_in_parts_{recipients}"),
        }
    }
}

/// Connections the clients use: the server's default send slots.
pub const CONNECTIONS: usize = 16;
/// The size of a rendered invitation, about.
const MESSAGE_BYTES: usize = 3_000;

/// `smtp-source` over 16 connections kept open, pipelining its commands.
pub fn smtp_source(messages: usize, report: &mut Report, key: &str) -> f64 {
    let sink = PostfixSink::start();
    let meter = Meter::start(None, Some(sink.pid()));
    let started = Instant::now();
    let status = postfix::source(sink.port, CONNECTIONS, messages, MESSAGE_BYTES)
        .wait()
        .expect("smtp-source");
    let seconds = started.elapsed().as_secs_f64();
    assert!(status.success(), "smtp-source failed: {status}");
    assert_eq!(
        sink.wait_for(messages as u64),
        messages as u64,
        "the sink accepted every message"
    );
    let cpu = meter.per_email(messages);
    let rate = messages as f64 / seconds;
    println!("smtp-source, {CONNECTIONS} connections, 3 KB: {rate:7.0} messages/s");
    println!("  {}", cpu.line());
    add(report, key, rate, &cpu);
    rate
}

/// Sixteen lettre connections on sockets with TCP_NODELAY, each carrying one
/// email at a time, as the server's send slots do.
pub async fn lettre_client(messages: usize, report: &mut Report) -> f64 {
    let sink = PostfixSink::start();
    let meter = Meter::start(None, Some(sink.pid()));
    let started = Instant::now();
    let mut connections = tokio::task::JoinSet::new();
    let per_connection = messages / CONNECTIONS;
    for c in 0..CONNECTIONS {
        let port = sink.port;
        connections.spawn(async move {
            use lettre::{
                Address,
                address::Envelope,
                transport::smtp::{client::AsyncSmtpConnection, extension::ClientId},
            };
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect to the sink");
            stream.set_nodelay(true).expect("TCP_NODELAY");
            let mut connection =
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &ClientId::default())
                    .await
                    .expect("EHLO");
            let body = format!("Subject: reference\r\n\r\n{}\r\n", "x".repeat(MESSAGE_BYTES));
            let from: Address = "bench@bench.example".parse().expect("from");
            for i in 0..per_connection {
                let to: Address = format!("person{c}x{i}@bench.example").parse().expect("to");
                let envelope = Envelope::new(Some(from.clone()), vec![to]).expect("envelope");
                connection
                    .send(&envelope, body.as_bytes())
                    .await
                    .expect("accepted");
            }
        });
    }
    while connections.join_next().await.is_some() {}
    let sent = per_connection * CONNECTIONS;
    let rate = sent as f64 / started.elapsed().as_secs_f64();
    assert_eq!(
        sink.wait_for(sent as u64),
        sent as u64,
        "the sink accepted every message"
    );
    let cpu = meter.per_email(sent);
    println!("lettre, {CONNECTIONS} connections one email at a time, TCP_NODELAY: {rate:7.0} messages/s");
    println!("  {}", cpu.line());
    add(report, "smtp_lettre_16_connections", rate, &cpu);
    rate
}

/// Onramp end to end; `reference` is smtp-source's rate in the same run.
pub async fn run(recipients: usize, request: Request, reference: f64, report: &mut Report) -> f64 {
    let sink = PostfixSink::start();
    let server = ServerProcess::start(Some(&sink.url()), &[]).await;
    let channel = server.channel().await;
    let org = organisation(&channel, PLATFORM_KEY).await;
    let text: String = (0..recipients)
        .map(|i| format!("person{i}@bench.example\n"))
        .collect();

    let meter = Meter::start(Some(server.pid()), Some(sink.pid()));
    let started = Instant::now();
    let mut stream = match request {
        Request::Whole => invite(&channel, &org, text).await,
        Request::InParts => invite_in_parts(&channel, &org, &text).await,
    };
    let mut first_result = None;
    let mut results = 0;
    let mut sent = 0;
    while let Some(message) = stream.next().await {
        match message.expect("batch event").event {
            Some(Event::Result(_)) => {
                results += 1;
                first_result.get_or_insert_with(|| started.elapsed().as_secs_f64());
            }
            Some(Event::Completion(c)) => sent = c.sent,
            _ => {}
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = meter.per_email(recipients);
    assert_eq!(results, recipients, "one result per recipient");
    assert_eq!(sent as usize, recipients, "every invitation sent");
    assert_eq!(
        sink.wait_for(recipients as u64),
        recipients as u64,
        "the sink accepted each email once"
    );
    let rate = recipients as f64 / seconds;
    let peak = server.peak_rss_mib();
    let first = first_result.unwrap_or_default();
    let share = rate / reference * 100.0;
    let key = request.key(recipients);
    let name = match request {
        Request::Whole => String::new(),
        Request::InParts => format!(" in parts of {PART}"),
    };
    println!(
        "invite {recipients:>7}{name}: {seconds:6.2} s to the last result ({first:.2} s to the first), {rate:7.0} invitations/s ({share:.0}% of smtp-source), server peak RSS {peak:6.1} MiB"
    );
    println!("  {}", cpu.line());
    add(report, &key, rate, &cpu);
    report.extend(
        &key,
        &[
            ("seconds", seconds),
            ("first_result_seconds", first),
            ("percent_of_smtp_source", share),
            ("peak_rss_mib", peak),
        ],
    );
    rate
}

fn add(report: &mut Report, key: &str, rate: f64, cpu: &PerEmail) {
    report.add(key, &[("messages_per_second", rate)]);
    report.extend(key, &cpu.figures());
}
