//! The CPU time each party spent on a send, read from `/proc` before and
//! after it: the server, PostgreSQL, the SMTP sink and the client, and how
//! idle the machine stayed. Per email, these figures do not move when the
//! machine runs faster or slower.

/// Ticks (USER_HZ) of user and system time of a process; with `reaped`, also
/// of its children that have exited and been waited for.
fn ticks_of(stat: &str, reaped: bool) -> u64 {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    // After the name: state is field 3 of stat(5); utime is 14, stime 15,
    // cutime 16, cstime 17.
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let field = |n: usize| fields.get(n - 4).copied().unwrap_or(0);
    let own = field(14) + field(15);
    if reaped { own + field(16) + field(17) } else { own }
}

fn process(pid: u32) -> u64 {
    ticks_of(
        &std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default(),
        false,
    )
}

/// Every PostgreSQL process, with the backends that have already exited
/// (the postmaster reaps them, so their time is in its children's share).
fn postgres() -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| stat.contains(" (postgres) "))
        .map(|stat| ticks_of(&stat, true))
        .sum()
}

/// The machine's ticks since boot, over all cores, from `/proc/stat`: user,
/// nice, system, idle, iowait, irq, softirq, steal, …
pub fn machine_ticks() -> Vec<u64> {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect()
}

/// (idle, all) ticks of the whole machine.
fn machine() -> (u64, u64) {
    let cpu = machine_ticks();
    let all = cpu.iter().take(8).sum();
    (
        cpu.get(3).copied().unwrap_or(0) + cpu.get(4).copied().unwrap_or(0),
        all,
    )
}

#[derive(Clone, Copy, Default)]
struct Reading {
    server: u64,
    postgres: u64,
    sink: u64,
    /// This benchmark process, and the programs it started and has reaped
    /// (a client such as `smtp-source`).
    client: u64,
    idle: u64,
    all: u64,
}

pub struct Meter {
    server: Option<u32>,
    sink: Option<u32>,
    start: Reading,
}

/// CPU time per email, in microseconds, and the machine's idle share.
pub struct PerEmail {
    pub server_us: f64,
    pub postgres_us: f64,
    pub sink_us: f64,
    pub client_us: f64,
    pub idle_percent: f64,
}

impl Meter {
    pub fn start(server: Option<u32>, sink: Option<u32>) -> Meter {
        let mut meter = Meter {
            server,
            sink,
            start: Reading::default(),
        };
        meter.start = meter.read();
        meter
    }

    fn read(&self) -> Reading {
        let (idle, all) = machine();
        Reading {
            server: self.server.map_or(0, process),
            postgres: postgres(),
            sink: self.sink.map_or(0, process),
            client: ticks_of(
                &std::fs::read_to_string("/proc/self/stat").unwrap_or_default(),
                true,
            ),
            idle,
            all,
        }
    }

    pub fn per_email(&self, emails: usize) -> PerEmail {
        let end = self.read();
        let us = |f: fn(&Reading) -> u64| {
            f(&end).saturating_sub(f(&self.start)) as f64 / TICKS_PER_SECOND * 1e6 / emails.max(1) as f64
        };
        let all = end.all.saturating_sub(self.start.all).max(1) as f64;
        PerEmail {
            server_us: us(|r| r.server),
            postgres_us: us(|r| r.postgres),
            sink_us: us(|r| r.sink),
            client_us: us(|r| r.client),
            idle_percent: end.idle.saturating_sub(self.start.idle) as f64 / all * 100.0,
        }
    }
}

impl PerEmail {
    pub fn line(&self) -> String {
        format!(
            "CPU per email: server {:.0} µs, PostgreSQL {:.0} µs, sink {:.0} µs, client {:.0} µs; machine {:.0}% idle",
            self.server_us, self.postgres_us, self.sink_us, self.client_us, self.idle_percent
        )
    }

    pub fn figures(&self) -> [(&'static str, f64); 5] {
        [
            ("server_cpu_us_per_email", self.server_us),
            ("postgres_cpu_us_per_email", self.postgres_us),
            ("sink_cpu_us_per_email", self.sink_us),
            ("client_cpu_us_per_email", self.client_us),
            ("machine_idle_percent", self.idle_percent),
        ]
    }
}

/// The kernel's USER_HZ, 100 on every Linux this runs on.
const TICKS_PER_SECOND: f64 = 100.0;
