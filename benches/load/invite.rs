//! Sends invitations end to end: parsed, stored, every email accepted by the
//! SMTP sink and every result streamed back.

use std::time::Instant;

use onramp::pb::batch_event::Event;
use tokio_stream::StreamExt;

use crate::{
    report::Report,
    server::{PLATFORM_KEY, ServerProcess},
    setup::{invite, organisation},
    sink::Sink,
};

/// The sink's own acceptance rate: a plain lettre client with the server's
/// pool size sending 3 KB messages as fast as it can, the ceiling any
/// sender on this machine meets.
pub async fn sink_limit(messages: usize, report: &mut Report) {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor, transport::smtp::PoolConfig};
    let sink = Sink::start().await;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&sink.url())
        .expect("url")
        .pool_config(PoolConfig::new().max_size(16))
        .build();
    let body = "x".repeat(3_000);
    let started = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..messages {
        let transport = transport.clone();
        let message = Message::builder()
            .from("bench <bench@bench.example>".parse().expect("from"))
            .to(format!("person{i}@bench.example").parse().expect("to"))
            .subject("reference")
            .body(body.clone())
            .expect("message");
        sends.spawn(async move { transport.send(message).await.is_ok() });
        if sends.len() >= 128 {
            let _ = sends.join_next().await;
        }
    }
    while sends.join_next().await.is_some() {}
    let rate = messages as f64 / started.elapsed().as_secs_f64();
    println!("SMTP sink with a plain lettre client (128 sends at once, 3 KB): {rate:7.0} messages/s");
    report.add("smtp_sink_limit", &[("messages_per_second", rate)]);
}

/// Sixteen lettre connections, each carrying one email at a time (as the
/// server's send slots do), once as lettre opens them and once over sockets
/// with TCP_NODELAY: whether Nagle's algorithm holds each message's final
/// write until the sink's delayed acknowledgement.
pub async fn connection_limit(messages: usize, report: &mut Report) {
    for nodelay in [false, true] {
        let sink = Sink::start().await;
        let started = Instant::now();
        let mut connections = tokio::task::JoinSet::new();
        let per_connection = messages / 16;
        for c in 0..16 {
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
                stream.set_nodelay(nodelay).expect("TCP_NODELAY");
                let mut connection =
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &ClientId::default())
                        .await
                        .expect("EHLO");
                let body = format!("Subject: reference\r\n\r\n{}\r\n", "x".repeat(3_000));
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
        let rate = (per_connection * 16) as f64 / started.elapsed().as_secs_f64();
        let label = if nodelay {
            "with TCP_NODELAY"
        } else {
            "as lettre opens them"
        };
        println!("SMTP sink, 16 lettre connections one email at a time, {label}: {rate:7.0} messages/s");
        let key = if nodelay {
            "smtp_16_connections_nodelay"
        } else {
            "smtp_16_connections"
        };
        report.add(key, &[("messages_per_second", rate)]);
    }
}

pub async fn run(recipients: usize, report: &mut Report) {
    let sink = Sink::start().await;
    let server = ServerProcess::start(Some(&sink.url()), &[]).await;
    let channel = server.channel().await;
    let org = organisation(&channel, PLATFORM_KEY).await;
    let text: String = (0..recipients)
        .map(|i| format!("person{i}@bench.example\n"))
        .collect();

    let started = Instant::now();
    let mut stream = invite(&channel, &org, text).await;
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
    assert_eq!(results, recipients, "one result per recipient");
    assert_eq!(sent as usize, recipients, "every invitation sent");
    assert_eq!(
        sink.accepted() as usize,
        recipients,
        "the sink accepted each email once"
    );
    let rate = recipients as f64 / seconds;
    let peak = server.peak_rss_mib();
    let first = first_result.unwrap_or_default();
    println!(
        "invite {recipients:>7}: {seconds:6.2} s to the last result ({first:.2} s to the first), {rate:7.0} invitations/s, server peak RSS {peak:6.1} MiB"
    );
    report.add(
        &format!("invite_{recipients}"),
        &[
            ("seconds", seconds),
            ("first_result_seconds", first),
            ("invitations_per_second", rate),
            ("peak_rss_mib", peak),
        ],
    );
}
