//! The process's one recorder: every worker's answers go to it as the SMTP
//! server gives them, and it records all that arrived while it was writing
//! the last lot, in one statement. Each answer keeps its send slot until it
//! is committed, so the emails accepted but not yet recorded never outnumber
//! the slots.

use std::time::Duration;

use tokio::{
    sync::{OwnedSemaphorePermit, mpsc, oneshot},
    time::Instant,
};

use super::record::{Answer, Outcome, Policy, record};
use crate::{
    lifecycle::{email_kind::EmailKind, outcome::Outcome as Final},
    metrics::kv,
    services::Services,
};

/// An answer on its way to being recorded.
pub struct Entry {
    pub answer: Answer,
    /// Given back once the answer is committed (or given up on).
    pub slot: Option<OwnedSemaphorePermit>,
    /// Recorded by then, or another worker may send the email again.
    pub until: Instant,
    /// Told when the answer is committed, or given up on.
    pub done: oneshot::Sender<()>,
}

#[derive(Clone)]
pub struct Recorder {
    entries: mpsc::UnboundedSender<Entry>,
}

impl Recorder {
    /// Starts the recorder; it stops once every handle is dropped and the
    /// answers handed to it are recorded.
    pub fn start(state: Services, policy: Policy) -> (Recorder, impl Future<Output = ()>) {
        let (entries, waiting) = mpsc::unbounded_channel();
        (Recorder { entries }, run(state, policy, waiting))
    }

    /// Hands an answer over; `done` is told once it is recorded.
    pub fn submit(&self, entry: Entry) {
        // The recorder outlives every worker, so this cannot fail; were it
        // gone, the dropped `done` tells the worker all the same.
        let _ = self.entries.send(entry);
    }
}

async fn run(state: Services, policy: Policy, mut waiting: mpsc::UnboundedReceiver<Entry>) {
    while let Some(first) = waiting.recv().await {
        let mut entries = vec![first];
        while let Ok(more) = waiting.try_recv() {
            entries.push(more);
        }
        let until = entries.iter().map(|e| e.until).min().unwrap_or_else(Instant::now);
        let (answers, waiting): (Vec<Answer>, Vec<_>) =
            entries.into_iter().map(|e| (e.answer, (e.slot, e.done))).unzip();
        match record_retrying(&state, &answers, &policy, until).await {
            Ok(completed) => count_recorded(&answers, &completed, policy.max_attempts),
            Err(e) => tracing::error!(
                error = %e,
                emails = answers.len(),
                "could not record send outcomes before the lease ends; these emails will be sent again"
            ),
        }
        // Only now, committed or given up on, do the slots come back.
        for (slot, done) in waiting {
            drop(slot);
            let _ = done.send(());
        }
    }
}

/// Records, retrying while the database is away (a restart, a failover):
/// the emails have gone, so giving up early would send them again once the
/// lease ends. Recording twice is harmless, since only messages their worker
/// still holds change.
async fn record_retrying(
    state: &Services,
    answers: &[Answer],
    policy: &Policy,
    until: Instant,
) -> crate::error::Result<Vec<EmailKind>> {
    let mut backoff = Duration::from_millis(100);
    loop {
        let attempt = async {
            let mut conn = state.pool.get().await?;
            record(&mut conn, answers, policy, state.clock.now()).await
        }
        .await;
        match attempt {
            Ok(completed) => return Ok(completed),
            Err(e) if Instant::now() + backoff < until => {
                tracing::warn!(error = %e, "recording send outcomes failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Counts the recipients of batches whose results became final, and the
/// batches they completed.
fn count_recorded(answers: &[Answer], completed: &[EmailKind], max_attempts: i32) {
    let metrics = crate::metrics::get();
    for answer in answers.iter().filter(|a| a.message.batch_id.is_some()) {
        let outcome = match answer.outcome {
            Outcome::Sent => Final::Sent,
            Outcome::Failed(_) => Final::Failed,
            Outcome::Retry(_) if answer.message.attempts >= max_attempts => Final::Failed,
            Outcome::Retry(_) | Outcome::Unsent => continue,
        };
        metrics.batch_recipients.add(
            1,
            &[
                kv("kind", answer.message.kind.name()),
                kv("outcome", outcome.name()),
            ],
        );
    }
    for kind in completed {
        metrics.batches_finished.add(1, &[kv("kind", kind.name())]);
    }
}
