//! Runs a call from many concurrent clients for a while and summarises the
//! rate and the latency percentiles.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

pub struct Summary {
    pub calls: usize,
    pub errors: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Summary {
    pub fn line(&self, name: &str) -> String {
        format!(
            "{name}: {:8.0} calls/s, p50 {:6.2} ms, p99 {:6.2} ms ({} calls, {} errors)",
            self.per_second, self.p50_ms, self.p99_ms, self.calls, self.errors
        )
    }
}

/// Calls `call(client_index)` from `clients` tasks for `duration`; with
/// `pace`, each client starts a call at most that often (the wait is not
/// counted as latency).
pub async fn drive<F, Fut>(clients: usize, duration: Duration, pace: Option<Duration>, call: F) -> Summary
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while started.elapsed() < duration {
                let t = Instant::now();
                if call(client).await {
                    latencies.push(t.elapsed());
                } else {
                    errors += 1;
                }
                if let Some(pace) = pace {
                    tokio::time::sleep(pace.saturating_sub(t.elapsed())).await;
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        if let Ok((latencies, e)) = task.await {
            all.extend(latencies);
            errors += e;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    all.sort();
    let pick = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Summary {
        calls: all.len(),
        errors,
        per_second: all.len() as f64 / seconds,
        p50_ms: pick(0.50),
        p99_ms: pick(0.99),
    }
}
