//! Postfix's own test programs as the SMTP reference: `smtp-sink` receives
//! every email (a separate process, so its CPU time is its own) and
//! `smtp-source` is the fastest client this machine has. When the machine
//! lacks them, they are unpacked from Debian's `postfix` package into
//! `target/postfix` (no mail system is installed or started).

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The directory holding `smtp-sink` and `smtp-source`, and the one holding
/// the libraries they link against.
struct Programs {
    sbin: PathBuf,
    lib: PathBuf,
}

fn programs() -> Programs {
    if Path::new("/usr/sbin/smtp-source").exists() && Path::new("/usr/sbin/smtp-sink").exists() {
        return Programs {
            sbin: "/usr/sbin".into(),
            lib: "/usr/lib/postfix".into(),
        };
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/postfix");
    let sbin = root.join("usr/sbin");
    if !sbin.join("smtp-source").exists() {
        std::fs::create_dir_all(&root).expect("target/postfix");
        let download = || {
            Command::new("apt-get")
                .args(["download", "postfix"])
                .current_dir(&root)
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        // A machine whose package lists are stale fetches them first.
        let downloaded = download()
            || (Command::new("apt-get")
                .args(["update", "-qq"])
                .status()
                .is_ok_and(|s| s.success())
                && download());
        assert!(downloaded, "apt-get download postfix failed");
        let package = std::fs::read_dir(&root)
            .expect("target/postfix")
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .expect("the postfix package");
        let unpacked = Command::new("dpkg")
            .arg("-x")
            .arg(&package)
            .arg(&root)
            .status()
            .is_ok_and(|s| s.success());
        assert!(unpacked, "dpkg -x of the postfix package failed");
    }
    Programs {
        sbin,
        lib: root.join("usr/lib/postfix"),
    }
}

fn command(name: &str) -> Command {
    let programs = programs();
    let mut command = Command::new(programs.sbin.join(name));
    command.env("LD_LIBRARY_PATH", programs.lib);
    command
}

/// A running `smtp-sink` on a free loopback port.
pub struct PostfixSink {
    child: Child,
    pub port: u16,
    counters: PathBuf,
}

impl PostfixSink {
    pub fn start() -> PostfixSink {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let counters = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/smtp-sink-{port}.out"));
        let out = std::fs::File::create(&counters).expect("the sink's counter file");
        let mut sink = command("smtp-sink");
        // -c: print the session and message counters; as root it must drop
        // to another user. 256 is the listen backlog.
        sink.arg("-c");
        if is_root() {
            sink.args(["-u", "nobody"]);
        }
        let child = sink
            .arg(format!("127.0.0.1:{port}"))
            .arg("256")
            .stdout(out)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start smtp-sink");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "smtp-sink did not listen within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        PostfixSink {
            child,
            port,
            counters,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Messages accepted so far, from the counters the sink prints.
    pub fn accepted(&self) -> u64 {
        let text = std::fs::read_to_string(&self.counters).unwrap_or_default();
        text.rsplit("mesg=")
            .next()
            .map(|tail| tail.chars().take_while(char::is_ascii_digit).collect::<String>())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Waits until the sink has counted `messages` (its counter lags the
    /// last reply by a moment).
    pub fn wait_for(&self, messages: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let accepted = self.accepted();
            if accepted >= messages || Instant::now() > deadline {
                return accepted;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PostfixSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.counters);
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next().map(|uid| uid == "0"))
        .unwrap_or(false)
}

/// `smtp-source` sending `messages` of `bytes` each over `sessions`
/// connections kept open (`-d`), pipelining its commands where the sink
/// offers it. Returns the child, to be measured and waited for.
pub fn source(port: u16, sessions: usize, messages: usize, bytes: usize) -> Child {
    command("smtp-source")
        .arg("-d")
        .args(["-s", &sessions.to_string()])
        .args(["-m", &messages.to_string()])
        .args(["-l", &bytes.to_string()])
        .args(["-f", "bench@bench.example", "-t", "person@bench.example"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .spawn()
        .expect("start smtp-source")
}
