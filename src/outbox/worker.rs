//! An outbox worker: claim a chunk, prepare its emails, send each in a free
//! send slot with no database connection held, and hand each answer to the
//! process's recorder as soon as the SMTP server gives it.

use crate::lifecycle::outcome::Outcome as Final;
use std::{sync::Arc, time::Duration};

use chrono::TimeDelta;
use tokio::{
    sync::{Semaphore, oneshot, watch},
    time::Instant,
};
use tracing::Instrument;

use super::{
    claim::{Claimed, claim},
    compose::{Prepared, prepare},
    record::{Answer, Outcome},
    recorder::{Entry, Recorder},
};
use crate::{
    mail::{Gate, SendError, Sent},
    metrics::kv,
    notify::OUTBOX_CHANNEL,
    services::Services,
};

pub struct Worker {
    pub state: Services,
    /// Tells of emails queued by any replica.
    pub wake: crate::notify::Notifier,
    pub name: Arc<str>,
    /// The process's send slots, one per SMTP connection and shared by its
    /// workers. A slot is held from just before the server can accept an
    /// email (`mail::Gate`) until its outcome is committed, so a process
    /// killed mid-batch leaves at most this many emails accepted but
    /// unrecorded (the ones sent again when their lease ends).
    pub slots: Arc<Semaphore>,
    pub recorder: Recorder,
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

    /// Claims and sends one chunk, and waits until every answer is recorded;
    /// answers how many messages it held.
    async fn work_once(&self) -> crate::error::Result<usize> {
        let config = &self.state.config.outbox;
        let now = self.state.clock.now();
        let lease = TimeDelta::from_std(config.lease).unwrap_or(TimeDelta::seconds(60));
        // Outcomes must be recorded before the lease runs out, or another
        // worker sends the same emails again: leave a tenth of it spare. An
        // email still waiting for a slot at half the lease is not sent, so
        // that its send and record fit in the rest.
        let claimed_at = Instant::now();
        let times = Times {
            send_by: claimed_at + config.lease / 2,
            record_by: claimed_at + config.lease.mul_f64(0.9),
        };
        let claimed = {
            let mut conn = self.state.pool.get().await?;
            claim(
                &mut conn,
                &self.name,
                now,
                now + lease,
                i64::try_from(config.claim_size).unwrap_or(i64::MAX),
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
        let prepared = prepare(&self.state, &claimed).instrument(span.clone()).await?;
        let recorded = span.in_scope(|| self.send_all(&claimed, prepared, times));
        for done in recorded {
            // A send that panicked drops its `done`: nothing to wait for.
            let _ = done.await;
        }
        Ok(claimed.len())
    }

    /// Starts a send per prepared email, each in a slot; every answer (and
    /// every email that cannot be sent) goes to the recorder. Answers one
    /// receiver per email, told when its outcome is recorded.
    fn send_all(
        &self,
        claimed: &[Claimed],
        prepared: Vec<(uuid::Uuid, Prepared)>,
        times: Times,
    ) -> Vec<oneshot::Receiver<()>> {
        let mut recorded = Vec::with_capacity(prepared.len());
        for (id, prepared) in prepared {
            let Some(message) = claimed.iter().find(|c| c.id == id).cloned() else {
                continue;
            };
            let (done, told) = oneshot::channel();
            recorded.push(told);
            match prepared {
                Prepared::Skip(why) => {
                    crate::metrics::get().outbox_sends.add(
                        1,
                        &[
                            kv("kind", message.kind.name()),
                            kv("outcome", Final::Failed.name()),
                        ],
                    );
                    self.recorder.submit(Entry {
                        answer: Answer {
                            message,
                            outcome: Outcome::Failed(why),
                            worker: self.name.clone(),
                        },
                        slot: None,
                        until: times.record_by,
                        done,
                    });
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
                    let slots = self.slots.clone();
                    let recorder = self.recorder.clone();
                    let worker = self.name.clone();
                    tokio::spawn(
                        async move {
                            let (outcome, slot) =
                                match mailer.send(*email, Gate::new(slots, times.send_by)).await {
                                    Sent::Held => (Outcome::Unsent, None),
                                    Sent::Answered(answer, slot) => {
                                        count_send(&message, &answer, max_attempts);
                                        let outcome = match answer {
                                            Ok(()) => Outcome::Sent,
                                            Err(SendError::Permanent(why)) => Outcome::Failed(why),
                                            Err(SendError::Transient(why) | SendError::Unreachable(why)) => {
                                                Outcome::Retry(why)
                                            }
                                        };
                                        (outcome, slot)
                                    }
                                };
                            recorder.submit(Entry {
                                answer: Answer {
                                    message,
                                    outcome,
                                    worker,
                                },
                                slot,
                                until: times.record_by,
                                done,
                            });
                        }
                        .instrument(span),
                    );
                }
            }
        }
        recorded
    }
}

/// When a claimed chunk's emails must be sent and recorded by.
#[derive(Clone, Copy)]
struct Times {
    send_by: Instant,
    record_by: Instant,
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
