//! What the metrics cost: `GetUser` from 64 clients against a server with
//! `/metrics` off and one with it on (scraped every second, as Prometheus
//! would), in the same run, taking turns so that the machine's drift falls
//! on both alike.

use std::time::Duration;

use onramp::pb::{self, user_admin_client::UserAdminClient};
use tonic::transport::Channel;

use crate::{
    latency::{Summary, drive},
    report::Report,
    server::{PLATFORM_KEY, ServerProcess},
    setup::{authed, one_user, organisation},
};

const CLIENTS: usize = 64;
const TURNS: usize = 6;

/// A server with one user to read, and the request that reads it.
async fn prepared(metrics: &str) -> (ServerProcess, Channel, pb::GetUserRequest) {
    let server = ServerProcess::start(None, &[("ONRAMP_METRICS_ADDR", metrics)]).await;
    let channel = server.channel().await;
    let org = organisation(&channel, PLATFORM_KEY).await;
    let request = one_user(&channel, &org).await;
    (server, channel, request)
}

async fn get_users(channel: &Channel, request: &pb::GetUserRequest, duration: Duration) -> Summary {
    let channel = channel.clone();
    let request = request.clone();
    drive(CLIENTS, duration, None, move |_| {
        let mut client = UserAdminClient::new(channel.clone());
        let request = request.clone();
        async move { client.get_user(authed(request, PLATFORM_KEY)).await.is_ok() }
    })
    .await
}

/// Scrapes `/metrics` at `address` every second until dropped.
fn scraper(address: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Ok(mut stream) = tokio::net::TcpStream::connect(&address).await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let request =
                    format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
                if stream.write_all(request.as_bytes()).await.is_ok() {
                    let mut body = Vec::new();
                    let _ = stream.read_to_end(&mut body).await;
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// CPU time the process `pid` has used, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<f64> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // utime and stime, fields 14 and 15 of proc(5), in ticks of 1/100 s.
    (fields.get(11).copied().unwrap_or(0.0) + fields.get(12).copied().unwrap_or(0.0)) / 100.0
}

/// One turn of calls, and the server's CPU time per call in µs.
async fn turn(
    server: &ServerProcess,
    channel: &Channel,
    request: &pb::GetUserRequest,
    duration: Duration,
) -> (Summary, f64) {
    let before = cpu_seconds(server.pid());
    let summary = get_users(channel, request, duration).await;
    let used = cpu_seconds(server.pid()) - before;
    let per_call = used * 1e6 / summary.calls.max(1) as f64;
    (summary, per_call)
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0.0), |(s, n), v| (s + v, n + 1.0));
    sum / f64::max(n, 1.0)
}

pub async fn run(seconds: u64, report: &mut Report) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let address = format!("127.0.0.1:{port}");
    let off_server = prepared("").await;
    let on_server = prepared(&address).await;
    let scraping = scraper(address);
    let each = Duration::from_secs((seconds / TURNS as u64).max(1));
    // Both servers warmed up first (connections, caches), uncounted.
    for (server, channel, request) in [&off_server, &on_server] {
        turn(server, channel, request, Duration::from_secs(2)).await;
    }
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..TURNS {
        off.push(turn(&off_server.0, &off_server.1, &off_server.2, each).await);
        on.push(turn(&on_server.0, &on_server.1, &on_server.2, each).await);
    }
    scraping.abort();
    for (name, turns) in [("metrics off", &off), ("metrics on, scraped every second", &on)] {
        for (i, (t, cpu)) in turns.iter().enumerate() {
            println!(
                "{}, server CPU {cpu:.1} µs/call",
                t.line(&format!("GetUser x{CLIENTS}, {name}, turn {}", i + 1))
            );
        }
    }
    let rate = |turns: &[(Summary, f64)]| mean(turns.iter().map(|(t, _)| t.per_second));
    let cpu = |turns: &[(Summary, f64)]| mean(turns.iter().map(|(_, c)| *c));
    let p99 = |turns: &[(Summary, f64)]| turns.iter().map(|(t, _)| t.p99_ms).fold(0.0, f64::max);
    let errors: usize = off.iter().chain(&on).map(|(t, _)| t.errors).sum();
    let (off_rate, on_rate) = (rate(&off), rate(&on));
    let (off_cpu, on_cpu) = (cpu(&off), cpu(&on));
    println!(
        "GetUser x{CLIENTS}, metrics on / off: {:.3} of the rate ({on_rate:.0} vs {off_rate:.0} calls/s), \
         {:.3} of the server's CPU per call ({on_cpu:.1} vs {off_cpu:.1} µs), worst p99 {:.2} vs {:.2} ms",
        on_rate / off_rate,
        on_cpu / off_cpu,
        p99(&on),
        p99(&off),
    );
    report.add(
        "metrics",
        &[
            ("off_per_second", off_rate),
            ("on_per_second", on_rate),
            ("on_over_off_rate", on_rate / off_rate),
            ("off_cpu_us_per_call", off_cpu),
            ("on_cpu_us_per_call", on_cpu),
            ("on_over_off_cpu", on_cpu / off_cpu),
            ("off_p99_ms", p99(&off)),
            ("on_p99_ms", p99(&on)),
            ("errors", errors as f64),
        ],
    );
}
