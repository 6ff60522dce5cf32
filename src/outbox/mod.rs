//! Sending the durable email outbox: messages are rows in Postgres, queued
//! by `domain::outbox` in the same transaction as the data they belong to,
//! and claimed, composed, sent and recorded here by workers on every
//! replica.

pub mod backlog;
pub mod claim;
pub mod compose;
pub mod record;
pub mod recorder;
pub mod worker;

use std::sync::Arc;

use chrono::TimeDelta;

use tokio::{
    sync::{Semaphore, watch},
    task::JoinSet,
};

use crate::{notify::Notifier, services::Services};

/// Starts the workers; they stop, finishing the chunk in hand, when `stop`
/// turns true.
pub fn start(state: &Services, notifier: &Notifier, stop: &watch::Receiver<bool>) -> JoinSet<()> {
    let mut workers = JoinSet::new();
    let config = &state.config.outbox;
    if config.workers == 0 {
        return workers;
    }
    let process = format!("{}-{}", hostname(), std::process::id());
    let connections = usize::try_from(state.config.smtp_connections).unwrap_or(16);
    let slots = Arc::new(Semaphore::new(connections));
    let policy = record::Policy {
        max_attempts: config.max_attempts,
        retry_base: TimeDelta::from_std(config.retry_base).unwrap_or(TimeDelta::seconds(5)),
    };
    // Ends after the last worker, once what they handed it is recorded.
    let recording_slots = recorder::Slots {
        semaphore: slots.clone(),
        count: connections,
    };
    let (recorder, recording) = recorder::Recorder::start(state.clone(), policy, recording_slots);
    workers.spawn(recording);
    for n in 0..config.workers {
        let worker = worker::Worker {
            state: state.clone(),
            wake: notifier.clone(),
            slots: slots.clone(),
            recorder: recorder.clone(),
            name: format!("{process}-{n}-{}", uuid::Uuid::now_v7().simple()).into(),
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
