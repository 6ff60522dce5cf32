//! Sending the durable email outbox: messages are rows in Postgres, queued
//! by `domain::outbox` in the same transaction as the data they belong to,
//! and claimed, composed, sent and recorded here by workers on every
//! replica.

pub mod backlog;
pub mod claim;
pub mod compose;
pub mod record;
pub mod worker;

use tokio::{sync::watch, task::JoinSet};

use crate::{notify::Notifier, services::Services};

/// Starts the workers; they stop, finishing the chunk in hand, when `stop`
/// turns true.
pub fn start(state: &Services, notifier: &Notifier, stop: &watch::Receiver<bool>) -> JoinSet<()> {
    let mut workers = JoinSet::new();
    let process = format!("{}-{}", hostname(), std::process::id());
    for n in 0..state.config.outbox.workers {
        let worker = worker::Worker {
            state: state.clone(),
            wake: notifier.clone(),
            name: format!("{process}-{n}-{}", uuid::Uuid::now_v7().simple()),
        };
        workers.spawn(worker.run(stop.clone()));
    }
    workers
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "onramp".into())
}
