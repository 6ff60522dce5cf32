//! How the machine's CPU time was shared during a phase: the server's
//! hashing threads against everything else. Unlike a rate, this share does
//! not move when the machine itself runs faster or slower.

/// Clock ticks: (the server's argon2 threads, the machine busy, the machine in all).
fn ticks(server_pid: u32) -> (u64, u64, u64) {
    let mut hashing = 0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{server_pid}/task")) {
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            let Some((head, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            if !head.contains("(argon2-") {
                continue;
            }
            // After the name: state is the first field, utime the 12th, stime the 13th.
            let fields: Vec<u64> = rest
                .split_whitespace()
                .skip(1)
                .map(|f| f.parse().unwrap_or(0))
                .collect();
            hashing += fields.get(10).copied().unwrap_or(0) + fields.get(11).copied().unwrap_or(0);
        }
    }
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let field = |i: usize| cpu.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal (guest time is inside user)
    let idle = field(3) + field(4);
    let busy = field(0) + field(1) + field(2) + field(5) + field(6) + field(7);
    (hashing, busy, busy + idle)
}

pub struct Share {
    pid: u32,
    start: (u64, u64, u64),
}

impl Share {
    pub fn start(server_pid: u32) -> Self {
        Share {
            pid: server_pid,
            start: ticks(server_pid),
        }
    }

    /// Percent of the machine's busy time spent hashing, and percent idle,
    /// since `start`; printed under `name`.
    pub fn finish(&self, name: &str) -> (f64, f64) {
        let end = ticks(self.pid);
        let hashing = end.0.saturating_sub(self.start.0) as f64;
        let busy = end.1.saturating_sub(self.start.1).max(1) as f64;
        let total = end.2.saturating_sub(self.start.2).max(1) as f64;
        let (hashing, idle) = (hashing / busy * 100.0, (total - busy) / total * 100.0);
        println!(
            "  {name}: hashing threads had {hashing:.1}% of the busy CPU time; the machine was {idle:.1}% idle"
        );
        (hashing, idle)
    }
}
