//! How the machine's CPU time was shared during a phase: the server's
//! hashing threads against everything else. Unlike a rate, this share does
//! not move when the machine itself runs faster or slower.

/// Clock ticks since boot.
#[derive(Clone, Copy, Default)]
struct Ticks {
    /// The server's argon2 threads.
    hashing: u64,
    /// Every thread on the machine.
    busy: u64,
    idle: u64,
    /// Taken by the hypervisor for other guests: no thread here ran then.
    stolen: u64,
}

fn ticks(server_pid: u32) -> Ticks {
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
    let cpu = crate::process_cpu::machine_ticks();
    let field = |i: usize| cpu.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal (guest time is inside user)
    Ticks {
        hashing,
        busy: field(0) + field(1) + field(2) + field(5) + field(6),
        idle: field(3) + field(4),
        stolen: field(7),
    }
}

pub struct Share {
    pid: u32,
    start: Ticks,
}

/// CPU time over a phase.
pub struct Usage {
    /// The server's hashing threads, as a share of the busy time.
    pub hashing_percent: f64,
    pub idle_percent: f64,
    pub stolen_percent: f64,
    /// CPU-seconds that some thread on the machine ran, over all cores.
    pub busy_seconds: f64,
}

impl Share {
    /// From now, with the hashing threads of the process `server_pid`.
    pub fn start(server_pid: u32) -> Self {
        Share {
            pid: server_pid,
            start: ticks(server_pid),
        }
    }

    pub fn usage(&self) -> Usage {
        let end = ticks(self.pid);
        let since = |f: fn(&Ticks) -> u64| f(&end).saturating_sub(f(&self.start)) as f64;
        let (hashing, busy, idle, stolen) = (
            since(|t| t.hashing),
            since(|t| t.busy).max(1.0),
            since(|t| t.idle),
            since(|t| t.stolen),
        );
        let total = busy + idle + stolen;
        Usage {
            hashing_percent: hashing / busy * 100.0,
            idle_percent: idle / total * 100.0,
            stolen_percent: stolen / total * 100.0,
            busy_seconds: busy / TICKS_PER_SECOND,
        }
    }
}

impl Usage {
    pub fn print(&self, name: &str) {
        println!(
            "  {name}: hashing threads had {:.1}% of the busy CPU time; \
             the machine was {:.1}% idle, {:.1}% taken by the hypervisor",
            self.hashing_percent, self.idle_percent, self.stolen_percent
        );
    }
}

/// The kernel's USER_HZ, 100 on every Linux this runs on.
const TICKS_PER_SECOND: f64 = 100.0;
