//! Runs the real `onramp` binary as a child process against a fresh database,
//! so the figures include the whole server and its memory can be read.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use tonic::transport::Channel;

pub const PLATFORM_KEY: &str = "onramp-bench-platform-key-0123456789";

pub fn postgres_base() -> String {
    std::env::var("ONRAMP_BENCH_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub struct ServerProcess {
    child: Child,
    pub address: String,
    database: String,
}

impl ServerProcess {
    pub async fn start(smtp_url: Option<&str>, extra_env: &[(&str, &str)]) -> ServerProcess {
        let database = format!(
            "onramp_bench_{}_{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        // ONRAMP_BENCH_BIN runs another build (an earlier release, say) under
        // the same scenarios, so two builds compare in one run.
        let binary =
            std::env::var("ONRAMP_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_onramp").into());
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .env("DATABASE_URL", format!("{}/{database}", postgres_base()))
            .env("ONRAMP_LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("ONRAMP_BOOTSTRAP_API_KEY", PLATFORM_KEY)
            .env("ONRAMP_DEV_BOOTSTRAP", "false")
            // Off unless a test asks for it: processes started side by side
            // would all want the default port.
            .env("ONRAMP_METRICS_ADDR", "")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        match smtp_url {
            Some(url) => command.env("SMTP_URL", url),
            None => command.env_remove("SMTP_URL"),
        };
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let child = command.spawn().expect("start onramp");
        let address = format!("http://127.0.0.1:{port}");
        let server = ServerProcess {
            child,
            address,
            database,
        };
        server.wait_until_serving().await;
        server
    }

    async fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(channel) = Channel::from_shared(self.address.clone())
                .expect("url")
                .connect()
                .await
            {
                let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
                if health
                    .check(tonic_health::pb::HealthCheckRequest::default())
                    .await
                    .is_ok()
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start within a minute"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.address.clone())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's peak resident memory so far, in MiB (VmHWM).
    pub fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let url = format!("{}/postgres", postgres_base());
        let database = self.database.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut conn) = AsyncPgConnection::establish(&url).await {
                    let _ = conn
                        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}
