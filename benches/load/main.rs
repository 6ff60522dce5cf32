//! Onramp's load benchmarks: each scenario starts the real server (the
//! release binary) against a fresh database on the local PostgreSQL and
//! drives it over gRPC.
//!
//!     cargo bench --bench load -- [import] [invite] [auth] [getuser] [gateway] [metrics] [--rows N] [--seconds S] [--out FILE]
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "a benchmark stops at the first failure"
)]

mod auth;
mod cpu;
mod gateway;
mod getuser;
mod import;
mod invite;
mod latency;
mod metrics;
mod postfix;
mod postgres;
mod process_cpu;
mod report;
mod server;
mod setup;
mod sink;

const USAGE: &str = "usage: cargo bench --bench load -- [import] [invite] [auth] [getuser] [gateway] [metrics] [--rows N] [--seconds S] [--out FILE]";

#[tokio::main]
async fn main() {
    let mut scenarios = Vec::new();
    let mut rows: Option<usize> = None;
    let mut seconds = 10;
    let mut out = String::from("target/bench-results.json");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rows" => rows = args.next().and_then(|v| v.parse().ok()),
            "--out" => out = args.next().unwrap_or(out),
            "--bench" => {}
            "import" | "invite" | "auth" | "getuser" | "gateway" | "metrics" => scenarios.push(arg),
            "--seconds" => seconds = args.next().and_then(|v| v.parse().ok()).unwrap_or(seconds),
            other => {
                eprintln!("unknown argument '{other}'\n{USAGE}");
                std::process::exit(2);
            }
        }
    }
    if scenarios.is_empty() {
        scenarios.extend([
            "import".into(),
            "invite".into(),
            "auth".into(),
            "gateway".into(),
            "metrics".into(),
        ]);
    }
    let mut report = report::Report::default();
    for scenario in &scenarios {
        match scenario.as_str() {
            "import" => {
                for n in rows.map_or(vec![10_000, 100_000], |n| vec![n]) {
                    import::run(n, &mut report).await;
                }
            }
            "invite" => {
                // smtp-source before and after Onramp's runs: the machine
                // may drift between them.
                let before = invite::smtp_source(10_000, &mut report, "smtp_source_before");
                invite::lettre_client(10_000, &mut report).await;
                let mut rates = Vec::new();
                for how in [invite::Request::Whole, invite::Request::InParts] {
                    for n in rows.map_or(vec![10_000, 100_000], |n| vec![n]) {
                        rates.push((how.key(n), invite::run(n, how, before, &mut report).await));
                    }
                }
                let after = invite::smtp_source(10_000, &mut report, "smtp_source_after");
                // Each send slot carries at most one email per recorder
                // transaction, and each transaction waits for one commit.
                let commit = postgres::commit_latency_ms().await;
                let ceiling = invite::CONNECTIONS as f64 / (commit / 1000.0);
                println!(
                    "PostgreSQL commits a one-row update in {commit:.2} ms: {} send slots, one email each per commit, \
                     is {ceiling:.0} emails/s",
                    invite::CONNECTIONS
                );
                report.add(
                    "postgres_commit",
                    &[("latency_ms", commit), ("send_slots_ceiling_per_second", ceiling)],
                );
                let mean = f64::midpoint(before, after);
                for (key, rate) in rates {
                    let share = rate / mean * 100.0;
                    println!(
                        "{key}: {share:.0}% of smtp-source's mean of {mean:.0} messages/s before and after"
                    );
                    report.extend(&key, &[("percent_of_smtp_source_mean", share)]);
                }
            }
            "auth" => auth::run(seconds, &mut report).await,
            "getuser" => getuser::run(seconds, &mut report).await,
            "gateway" => gateway::run(seconds, &mut report).await,
            "metrics" => metrics::run(seconds, &mut report).await,
            _ => unreachable!("checked above"),
        }
    }
    report.write(&out);
}
