//! Imports rows through ImportUsers and reports rows a second and the
//! server's peak memory, beside PostgreSQL's own insert of the same rows.

use std::time::Instant;

use onramp::pb::{
    self, import_users_request::Item, import_users_response, user_admin_client::UserAdminClient,
};
use tokio_stream::StreamExt;

use crate::{
    postgres,
    process_cpu::Meter,
    report::Report,
    server::{PLATFORM_KEY, ServerProcess},
    setup::{authed, organisation},
};

const ROWS_PER_CHUNK: usize = 500;

pub async fn run(rows: usize, report: &mut Report) {
    let server = ServerProcess::start(None, &[]).await;
    let channel = server.channel().await;
    let org = organisation(&channel, PLATFORM_KEY).await;
    let mut client = UserAdminClient::new(channel).max_decoding_message_size(64 << 20);

    let header = pb::ImportUsersRequest {
        item: Some(Item::Options(pb::ImportOptions {
            organization_id: org.id.clone(),
            ..Default::default()
        })),
    };
    let chunks = rows.div_ceil(ROWS_PER_CHUNK);
    let body = (0..chunks).map(move |c| {
        let mut text = if c == 0 {
            String::from("email,first_name,last_name,service_area,role\n")
        } else {
            String::new()
        };
        for i in c * ROWS_PER_CHUNK..((c + 1) * ROWS_PER_CHUNK).min(rows) {
            text.push_str(&format!(
                "person{i}@bench.example,First{i},Last{i},North ward,Nurse\n"
            ));
        }
        pb::ImportUsersRequest {
            item: Some(Item::CsvChunk(text)),
        }
    });
    let input = tokio_stream::iter(std::iter::once(header).chain(body));

    let meter = Meter::start(Some(server.pid()), None);
    let started = Instant::now();
    let mut responses = client
        .import_users(authed(input, PLATFORM_KEY))
        .await
        .expect("import")
        .into_inner();
    let mut created = 0;
    let mut results = 0;
    while let Some(message) = responses.next().await {
        match message.expect("import result").item {
            Some(import_users_response::Item::Result(_)) => results += 1,
            Some(import_users_response::Item::Summary(s)) => created = s.created,
            None => {}
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = meter.per_email(rows);
    assert_eq!(results, rows, "one result per row");
    assert_eq!(created as usize, rows, "every row created");
    let rate = rows as f64 / seconds;
    let peak = server.peak_rss_mib();
    drop(server);
    let reference = postgres::insert(rows).await;
    let share = rate / reference * 100.0;
    println!(
        "import {rows:>7} rows: {seconds:6.2} s, {rate:8.0} rows/s, server peak RSS {peak:6.1} MiB; \
         PostgreSQL alone inserts {reference:8.0} rows/s, so {share:.0}%\n  \
         CPU per row: server {:.1} µs, PostgreSQL {:.1} µs, client {:.1} µs; machine {:.0}% idle",
        cpu.server_us, cpu.postgres_us, cpu.client_us, cpu.idle_percent
    );
    report.add(
        &format!("import_{rows}"),
        &[
            ("seconds", seconds),
            ("rows_per_second", rate),
            ("peak_rss_mib", peak),
            ("postgres_insert_rows_per_second", reference),
            ("percent_of_postgres_insert", share),
            ("server_cpu_us_per_row", cpu.server_us),
            ("postgres_cpu_us_per_row", cpu.postgres_us),
            ("client_cpu_us_per_row", cpu.client_us),
            ("machine_idle_percent", cpu.idle_percent),
        ],
    );
}
