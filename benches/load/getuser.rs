//! `GetUser` from 64 clients, alone on a warmed-up server, against
//! `pgbench -S -M prepared -c 64` on the same PostgreSQL in the same run.

use std::time::Duration;

use onramp::pb::{self, user_admin_client::UserAdminClient};
use tonic::transport::Channel;

use crate::{
    latency::{Summary, drive},
    postgres,
    process_cpu::{Meter, PerEmail},
    report::Report,
    server::{PLATFORM_KEY, ServerProcess},
    setup::{authed, one_user, organisation},
};

pub const CLIENTS: usize = 64;

/// `GetUser` of `requests` (client `i` reads `requests[i % len]`) from
/// `CLIENTS` clients spread over `channels`, for `duration`; with the CPU
/// time per call of the server (`server_pid`), PostgreSQL and this client.
pub async fn alone(
    channels: &[Channel],
    requests: &[pb::GetUserRequest],
    server_pid: u32,
    duration: Duration,
) -> (Summary, PerEmail) {
    let (channels, requests) = (channels.to_vec(), requests.to_vec());
    let meter = Meter::start(Some(server_pid), None);
    let summary = drive(CLIENTS, duration, None, move |client| {
        let mut admin = UserAdminClient::new(channels[client % channels.len()].clone());
        let request = authed(requests[client % requests.len()].clone(), PLATFORM_KEY);
        async move { admin.get_user(request).await.is_ok() }
    })
    .await;
    let cpu = meter.per_email(summary.calls);
    println!("{}", summary.line("GetUser x64   "));
    println!(
        "  CPU per call: server {:.0} µs, PostgreSQL {:.0} µs, client {:.0} µs; machine {:.0}% idle",
        cpu.server_us, cpu.postgres_us, cpu.client_us, cpu.idle_percent
    );
    (summary, cpu)
}

/// Runs pgbench's select-only load (with the server stopped) and reports
/// `summary` as a share of it under `getuser_64`.
pub async fn against_pgbench(
    summary: &Summary,
    cpu: &PerEmail,
    peak_rss_mib: f64,
    duration: Duration,
    report: &mut Report,
) {
    let pgbench = postgres::select_only(CLIENTS, duration.as_secs().max(1)).await;
    let share = summary.per_second / pgbench * 100.0;
    println!(
        "pgbench -S -M prepared -c {CLIENTS}: {pgbench:8.0} transactions/s; GetUser x64 at {share:.0}% of it"
    );
    report.add(
        "getuser_64",
        &[
            ("per_second", summary.per_second),
            ("p50_ms", summary.p50_ms),
            ("p99_ms", summary.p99_ms),
            ("errors", summary.errors as f64),
            ("peak_rss_mib", peak_rss_mib),
            ("pgbench_select_per_second", pgbench),
            ("percent_of_pgbench", share),
            ("server_cpu_us_per_call", cpu.server_us),
            ("postgres_cpu_us_per_call", cpu.postgres_us),
            ("client_cpu_us_per_call", cpu.client_us),
            ("machine_idle_percent", cpu.idle_percent),
        ],
    );
}

/// The scenario on its own: a fresh server with one user (with a grant),
/// two seconds of uncounted warm-up, then the measured run and pgbench.
pub async fn run(seconds: u64, report: &mut Report) {
    let duration = Duration::from_secs(seconds);
    let server = ServerProcess::start(None, &[]).await;
    let mut channels = Vec::new();
    for _ in 0..8 {
        channels.push(server.channel().await);
    }
    let org = organisation(&channels[0], PLATFORM_KEY).await;
    let requests = [one_user(&channels[0], &org).await];
    alone(&channels, &requests, server.pid(), Duration::from_secs(2)).await;
    let (summary, cpu) = alone(&channels, &requests, server.pid(), duration).await;
    let peak = server.peak_rss_mib();
    drop(server);
    against_pgbench(&summary, &cpu, peak, duration, report).await;
}
