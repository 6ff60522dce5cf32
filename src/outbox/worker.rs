//! An outbox worker: claim a chunk, prepare its emails, send them
//! concurrently with no database connection held, record the outcomes.

use crate::lifecycle::{email_kind::EmailKind, outcome::Outcome as Final};
use std::time::Duration;

use chrono::TimeDelta;
use tokio::{sync::watch, task::JoinSet};
use tracing::Instrument;

use super::{
    claim::{Claimed, claim},
    compose::{Prepared, prepare},
    record::{Outcome, Policy, record},
};
use crate::{mail::SendError, metrics::kv, notify::OUTBOX_CHANNEL, services::Services};

pub struct Worker {
    pub state: Services,
    /// Tells of emails queued by any replica.
    pub wake: crate::notify::Notifier,
    pub name: String,
}

impl Worker {
    /// Works until `stop` turns true; a chunk in flight is finished and
    /// recorded first, so nothing is left leased.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut wake = self.wake.subscribe();
        let poll = self.state.config.outbox.poll_interval;
        loop {
            if *stop.borrow() {
                return;
            }
            let worked = match self.work_once().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox worker failed; retrying");
                    0
                }
            };
            if worked == self.state.config.outbox.claim_size {
                continue; // more is probably waiting
            }
            tokio::select! {
                _ = stop.changed() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = async {
                    loop {
                        match wake.recv().await {
                            Ok(n) if n.channel == OUTBOX_CHANNEL => return,
                            Ok(_) => {}
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                                tokio::time::sleep(Duration::from_secs(3600)).await;
                            }
                        }
                    }
                } => {}
            }
        }
    }

    /// Claims and sends one chunk; answers how many messages it held.
    async fn work_once(&self) -> crate::error::Result<usize> {
        let config = &self.state.config.outbox;
        let now = self.state.clock.now();
        let lease = TimeDelta::from_std(config.lease).unwrap_or(TimeDelta::seconds(60));
        // Outcomes must be recorded before the lease runs out, or another
        // worker sends the same emails again: leave a tenth of it spare.
        let record_by = tokio::time::Instant::now() + config.lease.mul_f64(0.9);
        let claimed = {
            let mut conn = self.state.pool.get().await?;
            claim(
                &mut conn,
                &self.name,
                now,
                now + lease,
                i64::try_from(config.claim_size).unwrap_or(32),
            )
            .await?
        };
        if claimed.is_empty() {
            return Ok(0);
        }
        let metrics = crate::metrics::get();
        for message in &claimed {
            metrics.outbox_attempts.add(1, &[kv("kind", message.kind.name())]);
            if message.taken_over {
                metrics.outbox_takeovers.add(1, &[]);
            }
        }
        let span = tracing::info_span!("outbox.chunk", messages = claimed.len(), worker = %self.name);
        let results = async {
            let prepared = prepare(&self.state, &claimed).await?;
            Ok::<_, crate::error::Error>(self.send_all(&claimed, prepared).await)
        }
        .instrument(span.clone())
        .await?;
        let policy = Policy {
            worker: self.name.clone(),
            max_attempts: config.max_attempts,
            retry_base: TimeDelta::from_std(config.retry_base).unwrap_or(TimeDelta::seconds(5)),
        };
        self.record_outcomes(&results, &policy, record_by)
            .instrument(span)
            .await?;
        Ok(claimed.len())
    }

    /// Records what the SMTP server said, retrying while the database is
    /// away (a restart, a failover): the emails have gone, so giving up early
    /// would send them again once the lease ends. Recording twice is harmless,
    /// since only messages this worker still holds change.
    async fn record_outcomes(
        &self,
        results: &[(Claimed, Outcome)],
        policy: &Policy,
        until: tokio::time::Instant,
    ) -> crate::error::Result<()> {
        let mut backoff = Duration::from_millis(100);
        loop {
            let attempt = async {
                let mut conn = self.state.pool.get().await?;
                record(&mut conn, results, policy, self.state.clock.now()).await
            }
            .await;
            match attempt {
                Ok(completed) => {
                    count_recorded(results, &completed, policy.max_attempts);
                    return Ok(());
                }
                Err(e) if tokio::time::Instant::now() + backoff < until => {
                    tracing::warn!(error = %e, "recording send outcomes failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn send_all(
        &self,
        claimed: &[Claimed],
        prepared: Vec<(uuid::Uuid, Prepared)>,
    ) -> Vec<(Claimed, Outcome)> {
        let mut sends = JoinSet::new();
        let mut results = Vec::with_capacity(claimed.len());
        for (id, prepared) in prepared {
            let Some(message) = claimed.iter().find(|c| c.id == id).cloned() else {
                continue;
            };
            match prepared {
                Prepared::Skip(why) => {
                    crate::metrics::get().outbox_sends.add(
                        1,
                        &[
                            kv("kind", message.kind.name()),
                            kv("outcome", Final::Failed.name()),
                        ],
                    );
                    results.push((message, Outcome::Failed(why)));
                }
                Prepared::Ready(email) => {
                    let mailer = self.state.mailer.clone();
                    // In the trace of the request that queued the email, when
                    // it had one; otherwise under this chunk.
                    let span = match &message.traceparent {
                        Some(_) => {
                            tracing::info_span!(parent: None, "smtp.send", outbox.id = %message.id, kind = %message.kind)
                        }
                        None => {
                            tracing::info_span!("smtp.send", outbox.id = %message.id, kind = %message.kind)
                        }
                    };
                    crate::telemetry::continue_trace(&span, message.traceparent.as_deref());
                    let max_attempts = self.state.config.outbox.max_attempts;
                    sends.spawn(
                        async move {
                            let sent = mailer.send(*email).await;
                            count_send(&message, &sent, max_attempts);
                            let outcome = match sent {
                                Ok(()) => Outcome::Sent,
                                Err(SendError::Permanent(why)) => Outcome::Failed(why),
                                Err(SendError::Transient(why) | SendError::Unreachable(why)) => {
                                    Outcome::Retry(why)
                                }
                            };
                            (message, outcome)
                        }
                        .instrument(span),
                    );
                }
            }
        }
        while let Some(done) = sends.join_next().await {
            match done {
                Ok(result) => results.push(result),
                Err(e) => tracing::error!(error = %e, "a send task failed"),
            }
        }
        results
    }
}

/// Counts one send: its outcome (a transient failure on the last allowed
/// attempt is final) and the class of the server's answer.
fn count_send(message: &Claimed, sent: &Result<(), SendError>, max_attempts: i32) {
    let outcome = match sent {
        Ok(()) => Final::Sent.name(),
        Err(SendError::Permanent(_)) => Final::Failed.name(),
        Err(_) if message.attempts >= max_attempts => Final::Failed.name(),
        Err(_) => "deferred",
    };
    let metrics = crate::metrics::get();
    metrics
        .outbox_sends
        .add(1, &[kv("kind", message.kind.name()), kv("outcome", outcome)]);
    let class = sent.as_ref().err().map_or("2xx", SendError::reply_class);
    metrics.smtp_replies.add(1, &[kv("class", class)]);
}

/// Counts the recipients of batches whose results became final, and the
/// batches they completed.
fn count_recorded(results: &[(Claimed, Outcome)], completed: &[EmailKind], max_attempts: i32) {
    let metrics = crate::metrics::get();
    for (message, outcome) in results.iter().filter(|(c, _)| c.batch_id.is_some()) {
        let outcome = match outcome {
            Outcome::Sent => Final::Sent,
            Outcome::Failed(_) => Final::Failed,
            Outcome::Retry(_) if message.attempts >= max_attempts => Final::Failed,
            Outcome::Retry(_) => continue,
        };
        metrics.batch_recipients.add(
            1,
            &[kv("kind", message.kind.name()), kv("outcome", outcome.name())],
        );
    }
    for kind in completed {
        metrics.batches_finished.add(1, &[kv("kind", kind.name())]);
    }
}
