//! PostgreSQL's own speed on this machine, the reference for imports, reads
//! and recording: one INSERT of the import's rows into a table keyed as
//! Onramp's users are, `pgbench`'s select-only load, and the time one client
//! waits for the commit of a one-row update.

use std::{process::Command, time::Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

use crate::server::postgres_base;

/// A database of its own for a reference, dropped afterwards.
struct Scratch {
    name: String,
}

impl Scratch {
    async fn create() -> Scratch {
        let name = format!("onramp_bench_ref_{}", uuid::Uuid::now_v7().simple());
        admin()
            .await
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create the reference database");
        Scratch { name }
    }

    fn url(&self) -> String {
        format!("{}/{}", postgres_base(), self.name)
    }

    async fn drop(self) {
        let _ = admin()
            .await
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name))
            .await;
    }
}

async fn admin() -> AsyncPgConnection {
    AsyncPgConnection::establish(&format!("{}/postgres", postgres_base()))
        .await
        .expect("connect to PostgreSQL")
}

/// Rows a second PostgreSQL inserts alone: the import's rows, with a uuid
/// key and a unique index on (organisation, lower(email)), in one statement.
pub async fn insert(rows: usize) -> f64 {
    let scratch = Scratch::create().await;
    let mut conn = AsyncPgConnection::establish(&scratch.url())
        .await
        .expect("connect to the reference database");
    conn.batch_execute(
        "CREATE TABLE people (
             id uuid PRIMARY KEY,
             organization_id uuid NOT NULL,
             email text NOT NULL,
             first_name text NOT NULL,
             last_name text NOT NULL,
             created_at timestamptz NOT NULL
         );
         CREATE UNIQUE INDEX people_email ON people (organization_id, lower(email));",
    )
    .await
    .expect("the reference table");
    let started = Instant::now();
    conn.batch_execute(&format!(
        "INSERT INTO people
         SELECT gen_random_uuid(), '00000000-0000-0000-0000-000000000001',
                'person' || i || '@bench.example', 'First' || i, 'Last' || i, now()
         FROM generate_series(0, {}) AS i",
        rows - 1
    ))
    .await
    .expect("the reference insert");
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    drop(conn);
    scratch.drop().await;
    rate
}

/// Transactions a second of `pgbench -S -M prepared -c clients` for
/// `seconds`, on a scale-1 database of its own.
pub async fn select_only(clients: usize, seconds: u64) -> f64 {
    let scratch = Scratch::create().await;
    let report = pgbench(
        &scratch,
        &[
            "-S",
            "-M",
            "prepared",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
        ],
    );
    scratch.drop().await;
    figure(&report, "tps = ")
}

/// Milliseconds one client waits for each commit of a one-row update, over
/// three seconds: the floor under any transaction that must be durable
/// before it is answered.
pub async fn commit_latency_ms() -> f64 {
    let scratch = Scratch::create().await;
    let script = std::env::temp_dir().join(format!("onramp-bench-commit-{}.sql", std::process::id()));
    std::fs::write(
        &script,
        "UPDATE pgbench_branches SET bbalance = bbalance + 1 WHERE bid = 1;\n",
    )
    .expect("the pgbench script");
    let script_arg = script.to_string_lossy().into_owned();
    let report = pgbench(
        &scratch,
        &["-n", "-M", "prepared", "-f", &script_arg, "-c", "1", "-T", "3"],
    );
    let _ = std::fs::remove_file(&script);
    scratch.drop().await;
    figure(&report, "latency average = ")
}

/// The number after `label` at the start of a line of pgbench's report.
fn figure(report: &str, label: &str) -> f64 {
    report
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no '{label}' line in pgbench's report:\n{report}"))
}

/// `pgbench args` on `scratch`, initialised at scale 1 first; its report.
/// Over a plain connection, as Onramp's own are: libpq prefers TLS when
/// the server offers it (Debian's does), and encrypting every query and
/// answer cost `pgbench -S` about a third of its rate here, which made the
/// reference slower than what Onramp is held against.
fn pgbench(scratch: &Scratch, args: &[&str]) -> String {
    let run = |args: &[&str]| {
        let output = Command::new("pgbench")
            .env("PGSSLMODE", "disable")
            .args(args)
            .arg(scratch.url())
            .output()
            .expect("pgbench (Debian's postgresql-client)");
        assert!(
            output.status.success(),
            "pgbench {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    run(&["-i", "-q", "-s", "1"]);
    run(args)
}
