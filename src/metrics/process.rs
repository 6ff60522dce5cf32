//! The standard process metrics (CPU time, memory, open files, start time),
//! read from `/proc/self` when they are collected. The `prometheus` crate's
//! own collector does the same through `procfs`, which would bring a second
//! `rustix` into the build and reach `/metrics` only, not OTLP.

use std::sync::OnceLock;

use opentelemetry::metrics::Meter;

/// Clock ticks per second of `/proc/self/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;
const PAGE_BYTES: u64 = 4096;

/// The fields of `/proc/self/stat` after the command name.
fn stat() -> Option<Vec<String>> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

fn field(fields: &[String], number: usize) -> Option<u64> {
    // Numbered as in proc(5): the state is field 3, the first after the name.
    fields.get(number.checked_sub(3)?)?.parse().ok()
}

fn cpu_seconds() -> Option<f64> {
    let fields = stat()?;
    let ticks = field(&fields, 14)? + field(&fields, 15)?;
    #[expect(clippy::cast_precision_loss, reason = "CPU ticks stay far below 2^52")]
    Some(ticks as f64 / TICKS_PER_SECOND)
}

fn memory() -> Option<(u64, u64)> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let mut pages = statm.split_whitespace().map(|p| p.parse::<u64>().ok());
    let virtual_pages = pages.next()??;
    let resident_pages = pages.next()??;
    Some((resident_pages * PAGE_BYTES, virtual_pages * PAGE_BYTES))
}

fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

fn max_fds() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// When the process started, in seconds since the epoch.
fn start_time() -> Option<f64> {
    static START: OnceLock<Option<f64>> = OnceLock::new();
    *START.get_or_init(|| {
        let started_ticks = field(&stat()?, 22)?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        let boot: f64 = boot
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        #[expect(clippy::cast_precision_loss, reason = "ticks since boot stay far below 2^52")]
        Some(boot + started_ticks as f64 / TICKS_PER_SECOND)
    })
}

/// Registers the process instruments; each reads `/proc` when collected.
pub fn observe(meter: &Meter) {
    // Named so that the Prometheus exporter writes the standard names:
    // process_cpu_seconds_total, process_resident_memory_bytes, …
    let _ = meter
        .f64_observable_counter("process.cpu")
        .with_unit("s")
        .with_description("User and system CPU time used by the process")
        .with_callback(|o| {
            if let Some(seconds) = cpu_seconds() {
                o.observe(seconds, &[]);
            }
        })
        .build();
    let _ = meter
        .u64_observable_gauge("process.resident_memory")
        .with_unit("By")
        .with_description("Resident memory of the process")
        .with_callback(|o| {
            if let Some((resident, _)) = memory() {
                o.observe(resident, &[]);
            }
        })
        .build();
    let _ = meter
        .u64_observable_gauge("process.virtual_memory")
        .with_unit("By")
        .with_description("Virtual memory of the process")
        .with_callback(|o| {
            if let Some((_, virtual_bytes)) = memory() {
                o.observe(virtual_bytes, &[]);
            }
        })
        .build();
    let _ = meter
        .u64_observable_gauge("process.open_fds")
        .with_description("Open file descriptors of the process")
        .with_callback(|o| {
            if let Some(n) = open_fds() {
                o.observe(n, &[]);
            }
        })
        .build();
    let _ = meter
        .u64_observable_gauge("process.max_fds")
        .with_description("The most file descriptors the process may open")
        .with_callback(|o| {
            if let Some(n) = max_fds() {
                o.observe(n, &[]);
            }
        })
        .build();
    let _ = meter
        .f64_observable_gauge("process.start_time")
        .with_unit("s")
        .with_description("Start time of the process since the epoch")
        .with_callback(|o| {
            if let Some(t) = start_time() {
                o.observe(t, &[]);
            }
        })
        .build();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_figures_are_read_and_plausible() {
        assert!(cpu_seconds().is_some_and(|cpu| cpu >= 0.0));
        let memory = memory();
        assert!(
            memory.is_some_and(|(resident, virtual_bytes)| resident > 1 << 20 && virtual_bytes >= resident),
            "{memory:?}"
        );
        let (open, max) = (open_fds(), max_fds());
        assert!(open.is_some_and(|n| n >= 3), "{open:?}");
        assert!(max >= open, "{max:?} {open:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let started = start_time();
        assert!(
            started.is_some_and(|s| s <= now + 1.0 && s > now - 86_400.0 * 365.0),
            "{started:?} {now}"
        );
    }
}
