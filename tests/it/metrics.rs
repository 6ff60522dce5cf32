//! Metrics as an operator meets them: a real Prometheus (Debian's package)
//! scraping a real `onramp` process through an SMTP outage, the shipped
//! alert rules checked and unit-tested with `promtool`, no personal data in
//! any series, and the same metrics pushed over OTLP.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Mutex, OnceLock},
    time::Duration,
};

use serde_json::Value;

use crate::{
    gateway::curl,
    harness::{TestServer, authed},
    harness::{finish, invite},
    processes::Process,
};
use onramp::pb;

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";

/// Installs Debian's `prometheus` (which carries `promtool`) when missing,
/// once per test process (as root, which CI and these machines are).
fn ensure_prometheus() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        if Path::new(PROMETHEUS).exists() && Path::new(PROMTOOL).exists() {
            return Ok(());
        }
        // Not the exporters it recommends: only the server and promtool.
        crate::harness::apt_install(&["prometheus"], false)
    });
    if let Err(why) = result {
        panic!("Prometheus is needed for the metrics tests and could not be installed: {why}");
    }
}

fn rules() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// An `onramp` process with `/metrics` on a port of its own.
async fn measured(server: &TestServer, env: &[(&str, String)]) -> (Process, String) {
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut env: Vec<(&str, String)> = env.to_vec();
    env.push(("ONRAMP_METRICS_ADDR", metrics.clone()));
    let process = Process::start(server, &env).await;
    (process, metrics)
}

async fn scrape(metrics: &str) -> String {
    let reply = curl(&[&format!("http://{metrics}/metrics")]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// A Prometheus server scraping `target` every second, with the shipped
/// rules loaded, in a folder of its own; killed when dropped.
struct Prometheus {
    child: Child,
    url: String,
    folder: PathBuf,
}

impl Prometheus {
    async fn start(target: &str) -> Prometheus {
        ensure_prometheus();
        static NEXT: Mutex<u32> = Mutex::new(0);
        let n = {
            let mut next = NEXT.lock().unwrap();
            *next += 1;
            *next
        };
        let folder = std::env::temp_dir().join(format!("onramp-prometheus-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        let config = folder.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
                 rule_files: [{}]\n\
                 scrape_configs:\n  - job_name: onramp\n    static_configs: [{{targets: ['{target}']}}]\n",
                rules().join("alerts.yml").display()
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", folder.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(folder.join("prometheus.log")).unwrap())
            .spawn()
            .expect("start prometheus");
        let prometheus = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            folder,
        };
        prometheus
            .wait_for("up{job=\"onramp\"} == 1", |v| v == Some(1.0))
            .await;
        prometheus
    }

    /// The value of a PromQL query that answers one number, if it answers
    /// any.
    async fn value(&self, query: &str) -> Option<f64> {
        let reply = curl(&[
            "-G",
            &format!("{}/api/v1/query", self.url),
            "--data-urlencode",
            &format!("query={query}"),
        ])
        .await;
        if reply.status != 200 {
            return None;
        }
        let answer: Value = serde_json::from_str(&reply.body).ok()?;
        answer["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits until `query` answers what `wanted` accepts.
    async fn wait_for(&self, query: &str, wanted: impl Fn(Option<f64>) -> bool) -> Option<f64> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let value = self.value(query).await;
            if wanted(value) {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{query} never answered as wanted: last {value:?}; Prometheus logged:\n{}",
                std::fs::read_to_string(self.folder.join("prometheus.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_sees_the_outbox_rise_in_an_smtp_outage_drain_after_and_counts_each_refusal() {
    // The in-process server only sets things up; the process sends.
    let server = TestServer::start_with(|c| c.outbox.workers = 0).await;
    let org = server.org("Acme").await;
    let (process, metrics) = measured(
        &server,
        &[
            ("ONRAMP_OUTBOX_RETRY_BASE_MS", "300".into()),
            ("ONRAMP_OUTBOX_MAX_ATTEMPTS", "100".into()),
        ],
    )
    .await;
    let prometheus = Prometheus::start(&metrics).await;

    // The SMTP server is down: every email waits.
    server.smtp.set(|b| b.down = true);
    let refused: Vec<String> = (0..3).map(|i| format!("refused{i}@acme.example")).collect();
    let fine: Vec<String> = (0..17).map(|i| format!("person{i}@acme.example")).collect();
    let everyone = [fine.clone(), refused.clone()].concat().join(", ");
    let stream = process
        .invitations()
        .send_invitations(authed(invite(&org, &everyone), &org.key))
        .await
        .expect("send")
        .into_inner();
    let waiting = prometheus
        .wait_for("sum(onramp_outbox_waiting)", |v| v == Some(20.0))
        .await;
    assert_eq!(waiting, Some(20.0));
    prometheus
        .wait_for("sum(onramp_outbox_sends_total{outcome=\"deferred\"})", |v| {
            v.is_some_and(|n| n >= 20.0)
        })
        .await;
    prometheus
        .wait_for("max(onramp_outbox_oldest_waiting_age_seconds)", |v| {
            v.is_some_and(|age| age > 0.0)
        })
        .await;

    // Up again, refusing three addresses for good.
    server.smtp.set(|b| {
        b.down = false;
        b.refuse = refused.clone();
    });
    let done = finish(stream).await.expect("the batch ends");
    assert_eq!((done.completion.sent, done.completion.failed), (17, 3));
    prometheus
        .wait_for("sum(onramp_outbox_waiting)", |v| v == Some(0.0))
        .await;
    let rose = prometheus
        .value("max_over_time(sum(onramp_outbox_waiting)[5m:1s])")
        .await;
    assert_eq!(
        rose,
        Some(20.0),
        "the backlog's peak, from Prometheus' own history"
    );
    let failed = prometheus
        .wait_for("sum(onramp_outbox_sends_total{outcome=\"failed\"})", |v| {
            v.is_some_and(|n| n >= 3.0)
        })
        .await;
    let refusals = server.smtp.refusals();
    assert_eq!(refusals.permanent, 3);
    assert_eq!(
        failed,
        Some(3.0),
        "failures counted: {failed:?}; refused: {refusals:?}"
    );
    assert_eq!(
        prometheus
            .wait_for("sum(onramp_smtp_replies_total{class=\"5xx\"})", |v| v
                == Some(3.0))
            .await,
        Some(3.0)
    );
    let sent = prometheus
        .wait_for("sum(onramp_outbox_sends_total{outcome=\"sent\"})", |v| {
            v == Some(17.0)
        })
        .await;
    assert_eq!(sent, Some(17.0));
    assert!(refusals.turned_away > 0, "the outage turned no one away");
    let deferred = prometheus
        .value("sum(onramp_outbox_sends_total{outcome=\"deferred\"})")
        .await
        .unwrap_or(0.0);
    #[expect(clippy::cast_precision_loss, reason = "a handful of retries")]
    let turned_away = refusals.turned_away as f64;
    assert_eq!(
        deferred, turned_away,
        "one deferral for each connection the outage turned away"
    );
    prometheus
        .wait_for("sum(onramp_batches_finished_total{kind=\"invitation\"})", |v| {
            v == Some(1.0)
        })
        .await;
    prometheus
        .wait_for(
            "sum(onramp_rpc_requests_total{method=\"SendInvitations\",code=\"OK\"})",
            |v| v == Some(1.0),
        )
        .await;
    // The shipped rules are loaded and evaluated by this Prometheus.
    let loaded = curl(&[&format!("{}/api/v1/rules", prometheus.url)]).await;
    assert!(loaded.body.contains("OnrampOutboxBacklogOld"), "{}", loaded.body);
    drop(process);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_alert_rules_pass_promtool_and_their_unit_tests() {
    ensure_prometheus();
    let run = |args: &[&str]| {
        let output = Command::new(PROMTOOL)
            .args(args)
            .current_dir(rules())
            .output()
            .expect("run promtool");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "promtool {args:?}:\n{said}");
        said
    };
    let checked = run(&["check", "rules", "alerts.yml"]);
    assert!(checked.contains("SUCCESS: 8 rules found"), "{checked}");
    let tested = run(&["test", "rules", "alerts_test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_metric_carries_an_address_a_name_or_an_id() {
    let server = TestServer::start_with(|c| c.outbox.workers = 0).await;
    let org = server.org("Acme").await;
    let (process, metrics) = measured(&server, &[]).await;
    let stream = process
        .invitations()
        .send_invitations(authed(
            invite(
                &org,
                "Grace Hopper <grace.hopper@acme.example>, Ada Lovelace <ada.lovelace@acme.example>",
            ),
            &org.key,
        ))
        .await
        .expect("send")
        .into_inner();
    let done = finish(stream).await.expect("batch");
    assert_eq!(done.completion.sent, 2);
    // A failed sign-in and a refused call, with personal data in them.
    let _ = process
        .credentials()
        .authenticate(pb::AuthenticateRequest {
            organization_id: org.id.clone(),
            username: "grace.hopper@acme.example".into(),
            password: "Hopper's secret".into(),
            ..Default::default()
        })
        .await;
    let exposition = loop {
        let text = scrape(&metrics).await;
        if text.contains("onramp_sign_ins_total") && text.contains("onramp_outbox_sends_total") {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let user_ids: Vec<String> = done.results.iter().map(|r| r.user_id.clone()).collect();
    for secret in [
        "grace",
        "Grace",
        "Hopper",
        "hopper",
        "ada.lovelace",
        "Lovelace",
        "@",
        "acme.example",
        "Acme",
        &org.id,
        &org.key,
        &done.summary.batch_id,
        &user_ids[0],
        &user_ids[1],
    ] {
        assert!(
            !exposition.contains(secret),
            "the metrics show {secret:?}:\n{exposition}"
        );
    }
    // Nor anything shaped like an id.
    let uuid = exposition
        .split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
        .find(|w| w.len() == 36 && w.matches('-').count() == 4);
    assert_eq!(uuid, None, "an id in the metrics");
    assert!(
        exposition.contains("onramp_sign_ins_total{result=\"wrong_password\"} 1"),
        "{exposition}"
    );
    assert!(
        exposition.contains("process_resident_memory_bytes"),
        "{exposition}"
    );
    drop(process);
}
