//! Sign-ins at high concurrency against the machine's argon2 limit, with
//! the latency of a cheap RPC measured at the same time; then GetUser alone
//! at 64 concurrent clients.

use std::time::{Duration, Instant};

use argon2::Params;
use onramp::passwords::Memory;
use onramp::pb::{self, credentials_client::CredentialsClient, user_admin_client::UserAdminClient};
use tonic::transport::Channel;

use crate::{
    cpu::Share,
    getuser,
    latency::drive,
    report::Report,
    server::{PLATFORM_KEY, ServerProcess},
    setup::{authed, invite, organisation},
    sink::Sink,
};

const USERS: usize = 64;
use getuser::CLIENTS;
const PASSWORD: &str = "plum tractor velvet";

/// The most hashes this machine can do, per second of wall time and per
/// second of CPU time that its cores actually ran (which leaves out what the
/// hypervisor took for other guests).
#[derive(Clone, Copy)]
struct Limit {
    per_second: f64,
    per_cpu_second: f64,
}

/// argon2id at the server's parameters, hashed in a tight loop on every
/// core: the most sign-ins a second this machine can check.
fn argon2_limit(duration: Duration) -> Limit {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let cpu = Share::start(std::process::id());
    let started = Instant::now();
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            std::thread::spawn(move || {
                let params = Params::new(19_456, 2, 1, None).expect("params");
                // The server's own hashing code, each thread with its memory
                // kept between hashes as the server's threads do.
                let mut memory = Memory::new(&params);
                let mut n = 0u32;
                while started.elapsed() < duration {
                    let _ = memory.hash(&params, PASSWORD.as_bytes());
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u32 = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    let seconds = started.elapsed().as_secs_f64();
    Limit {
        per_second: f64::from(total) / seconds,
        per_cpu_second: f64::from(total) / cpu.usage().busy_seconds,
    }
}

/// People for the reset phase: more than it can complete in its time.
const RESET_PEOPLE: usize = 2_000;

/// Imports people, emails each a welcome with a reset link (the sink keeps
/// the tokens), then completes the resets from 64 clients.
async fn resets(
    channels: &[Channel],
    org_id: &str,
    sink: &Sink,
    duration: Duration,
    server_pid: u32,
) -> (crate::latency::Summary, Share) {
    use onramp::pb::{import_users_request::Item, import_users_response};
    use tokio_stream::StreamExt;
    let mut admin = UserAdminClient::new(channels[0].clone());
    let mut rows = String::from("email\n");
    for i in 0..RESET_PEOPLE {
        rows.push_str(&format!("reset{i}@bench.example\n"));
    }
    let input = tokio_stream::iter([
        pb::ImportUsersRequest {
            item: Some(Item::Options(pb::ImportOptions {
                organization_id: org_id.to_owned(),
                ..Default::default()
            })),
        },
        pb::ImportUsersRequest {
            item: Some(Item::CsvChunk(rows)),
        },
    ]);
    let mut imported = admin
        .import_users(authed(input, PLATFORM_KEY))
        .await
        .expect("import")
        .into_inner();
    while let Some(message) = imported.next().await {
        if let Some(import_users_response::Item::Summary(_)) = message.expect("import").item {
            break;
        }
    }
    let mut credentials = CredentialsClient::new(channels[0].clone());
    let mut sent = credentials
        .send_reset_links(authed(
            pb::SendResetLinksRequest {
                organization_id: org_id.to_owned(),
                all_staged: true,
                ..Default::default()
            },
            PLATFORM_KEY,
        ))
        .await
        .expect("reset links")
        .into_inner();
    while sent.next().await.is_some() {}
    spend_tokens(
        sink.tokens(),
        channels,
        duration,
        server_pid,
        |channel, token| async move {
            let request = pb::CompletePasswordResetRequest {
                token,
                new_password: "a fresh long password".into(),
            };
            CredentialsClient::new(channel)
                .complete_password_reset(request)
                .await
                .is_ok()
        },
    )
    .await
}

/// Spends each token once, from 64 clients; a client that finds none left
/// waits a little and counts an error. Also the CPU share over the phase.
async fn spend_tokens<F, Fut>(
    tokens: Vec<String>,
    channels: &[Channel],
    duration: Duration,
    server_pid: u32,
    call: F,
) -> (crate::latency::Summary, Share)
where
    F: Fn(Channel, String) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let tokens = std::sync::Arc::new(std::sync::Mutex::new(tokens));
    let channels = channels.to_vec();
    let call = std::sync::Arc::new(call);
    let cpu = Share::start(server_pid);
    let summary = drive(CLIENTS, duration, None, move |client: usize| {
        let token = tokens.lock().ok().and_then(|mut t| t.pop());
        let channel = channels[client % channels.len()].clone();
        let call = call.clone();
        async move {
            let Some(token) = token else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                return false;
            };
            call(channel, token).await
        }
    })
    .await;
    (summary, cpu)
}

/// Invites people (the sink keeps the tokens of their links), then
/// completes their registrations from 64 clients.
async fn registrations(
    channels: &[Channel],
    org: &crate::setup::Org,
    sink: &Sink,
    duration: Duration,
    server_pid: u32,
) -> (crate::latency::Summary, Share) {
    use onramp::pb::registration_client::RegistrationClient;
    use tokio_stream::StreamExt;
    let before = sink.tokens().len();
    let text: String = (0..RESET_PEOPLE)
        .map(|i| format!("joiner{i}@bench.example\n"))
        .collect();
    let mut sent = invite(&channels[0], org, text).await;
    while sent.next().await.is_some() {}
    let tokens = sink.tokens().split_off(before);
    spend_tokens(
        tokens,
        channels,
        duration,
        server_pid,
        |channel, token| async move {
            let request = pb::CompleteRegistrationRequest {
                token,
                first_name: "Ada".into(),
                last_name: "Lovelace".into(),
                mobile: "+447700900123".into(),
                password: "a fresh long password".into(),
                ..Default::default()
            };
            RegistrationClient::new(channel)
                .complete_registration(request)
                .await
                .is_ok()
        },
    )
    .await
}

pub async fn run(seconds: u64, report: &mut Report) {
    let duration = Duration::from_secs(seconds);
    // Measured between the hashing phases; each phase is compared with the
    // mean of the measurements either side of it, because on a shared
    // machine the limit itself drifts by several percent within a minute.
    let limit = || {
        let measured = argon2_limit(Duration::from_secs(3));
        println!(
            "argon2id limit (m=19456 KiB, t=2, p=1, tight loop on every core): {:.1} hashes/s, {:.1} per CPU-second",
            measured.per_second, measured.per_cpu_second
        );
        measured
    };
    let limits = [limit()];

    let sink = Sink::keeping_tokens().await;
    let server = ServerProcess::start(Some(&sink.url()), &[("ONRAMP_PUBLIC_RATE_LIMIT", "1000000000")]).await;
    let channels: Vec<Channel> = {
        let mut channels = Vec::new();
        for _ in 0..8 {
            channels.push(server.channel().await);
        }
        channels
    };
    let org = organisation(&channels[0], PLATFORM_KEY).await;
    let mut admin = UserAdminClient::new(channels[0].clone());
    let mut user_ids = Vec::new();
    for i in 0..USERS {
        let user = admin
            .create_user(authed(
                pb::CreateUserRequest {
                    organization_id: org.id.clone(),
                    email: format!("person{i}@bench.example"),
                    password: PASSWORD.into(),
                    ..Default::default()
                },
                PLATFORM_KEY,
            ))
            .await
            .expect("user")
            .into_inner();
        user_ids.push(user.id);
    }

    let get_user = {
        let channels = channels.clone();
        let org_id = org.id.clone();
        let user_ids = user_ids.clone();
        move |client: usize| {
            let mut admin = UserAdminClient::new(channels[client % channels.len()].clone());
            let request = authed(
                pb::GetUserRequest {
                    organization_id: org_id.clone(),
                    user_id: user_ids[client % user_ids.len()].clone(),
                },
                PLATFORM_KEY,
            );
            async move { admin.get_user(request).await.is_ok() }
        }
    };
    let sign_in = {
        let channels = channels.clone();
        let org_id = org.id.clone();
        move |client: usize| {
            let mut credentials = CredentialsClient::new(channels[client % channels.len()].clone());
            let request = pb::AuthenticateRequest {
                organization_id: org_id.clone(),
                username: format!("person{}@bench.example", client % USERS),
                password: PASSWORD.into(),
                second_factor_code: String::new(),
            };
            async move { credentials.authenticate(request).await.is_ok() }
        }
    };

    // The cheap RPC at a steady, ordinary rate (4 clients, one call each per
    // 20 ms: about 200 a second) while sign-ins saturate the hashing.
    let pace = Some(Duration::from_millis(20));
    let cpu = Share::start(server.pid());
    let (auth, cheap) = tokio::join!(
        drive(CLIENTS, duration, None, sign_in),
        drive(4, duration, pace, get_user)
    );
    println!(
        "server peak RSS after the sign-ins: {:.1} MiB",
        server.peak_rss_mib()
    );
    println!("{}", auth.line("Authenticate x64"));
    println!("{}   (at the same time)", cheap.line("GetUser x4 paced"));
    let mut usages = vec![cpu.usage()];
    usages[0].print("sign-ins");
    let limits = [limits[0], limit()];
    let resets = resets(&channels, &org.id, &sink, duration, server.pid()).await;
    println!("{}", resets.0.line("CompletePasswordReset x64"));
    usages.push(resets.1.usage());
    usages[1].print("resets");
    let resets = resets.0;
    let limits = [limits[0], limits[1], limit()];
    let registered = registrations(&channels, &org, &sink, duration, server.pid()).await;
    println!("{}", registered.0.line("CompleteRegistration x64"));
    usages.push(registered.1.usage());
    usages[2].print("registrations");
    let registered = registered.0;
    let limits = [limits[0], limits[1], limits[2], limit()];
    let requests: Vec<_> = user_ids
        .iter()
        .map(|id| pb::GetUserRequest {
            organization_id: org.id.clone(),
            user_id: id.clone(),
        })
        .collect();
    let (alone, cpu) = getuser::alone(&channels, &requests, server.pid(), duration).await;
    let peak = server.peak_rss_mib();
    println!("server peak RSS {peak:.1} MiB");
    for (i, (name, summary)) in [
        ("authenticate", &auth),
        ("complete_password_reset", &resets),
        ("complete_registration", &registered),
    ]
    .into_iter()
    .enumerate()
    {
        let (before, after) = (limits[i], limits[i + 1]);
        let usage = &usages[i];
        let share = summary.per_second / ((before.per_second + after.per_second) / 2.0) * 100.0;
        let per_cpu_second = summary.calls as f64 / usage.busy_seconds;
        let cpu_share = per_cpu_second / ((before.per_cpu_second + after.per_cpu_second) / 2.0) * 100.0;
        println!(
            "{name}: {:.0}/s = {share:.0}% of the argon2 limit around it ({:.1} before, {:.1} after); \
             per CPU-second {cpu_share:.0}% ({per_cpu_second:.1} against {:.1} and {:.1})",
            summary.per_second,
            before.per_second,
            after.per_second,
            before.per_cpu_second,
            after.per_cpu_second,
        );
        let mut figures = vec![
            ("per_second", summary.per_second),
            ("argon2_limit_before_per_second", before.per_second),
            ("argon2_limit_after_per_second", after.per_second),
            ("share_of_limit_percent", share),
            ("per_cpu_second", per_cpu_second),
            ("argon2_limit_before_per_cpu_second", before.per_cpu_second),
            ("argon2_limit_after_per_cpu_second", after.per_cpu_second),
            ("share_of_limit_per_cpu_second_percent", cpu_share),
            ("hashing_share_of_busy_cpu_percent", usage.hashing_percent),
            ("idle_cpu_percent", usage.idle_percent),
            ("stolen_cpu_percent", usage.stolen_percent),
            ("p99_ms", summary.p99_ms),
        ];
        if i == 0 {
            figures.push(("getuser_during_p99_ms", cheap.p99_ms));
            figures.push(("getuser_during_per_second", cheap.per_second));
        }
        report.add(name, &figures);
    }
    drop(server);
    getuser::against_pgbench(&alone, &cpu, peak, duration, report).await;
}
