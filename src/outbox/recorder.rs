//! The process's one recorder: every worker's answers go to it as the SMTP
//! server gives them, and it records all that arrived while it was writing
//! the last lot, with those still on the wire (up to a millisecond), in one
//! statement. Each answer keeps its send slot until it is committed, so the
//! emails accepted but not yet recorded never outnumber the slots.

use std::{sync::Arc, time::Duration};

use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot},
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
    pub fn start(state: Services, policy: Policy, slots: Slots) -> (Recorder, impl Future<Output = ()>) {
        let (entries, waiting) = mpsc::unbounded_channel();
        (Recorder { entries }, run(state, policy, slots, waiting))
    }

    /// Hands an answer over; `done` is told once it is recorded.
    pub fn submit(&self, entry: Entry) {
        // The recorder outlives every worker, so this cannot fail; were it
        // gone, the dropped `done` tells the worker all the same.
        let _ = self.entries.send(entry);
    }
}

/// The longest a record waits for answers that are on their way.
const GATHER: Duration = Duration::from_millis(1);

/// The process's send slots, and how many there are.
pub struct Slots {
    pub semaphore: Arc<Semaphore>,
    pub count: usize,
}

async fn run(state: Services, policy: Policy, slots: Slots, mut waiting: mpsc::UnboundedReceiver<Entry>) {
    while let Some(first) = waiting.recv().await {
        let entries = gather(first, &mut waiting, &slots, Instant::now() + GATHER).await;
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

/// `first` and every answer waiting behind it, and then, until `until`,
/// the answers still on their way. Every slot taken and not yet here is an
/// email whose message is on the wire, its answer due within a round trip;
/// waiting that long lets one record carry it too. Each record costs a round
/// trip and a commit whatever it carries, and the slots come back only after
/// it.
async fn gather(
    first: Entry,
    waiting: &mut mpsc::UnboundedReceiver<Entry>,
    slots: &Slots,
    until: Instant,
) -> Vec<Entry> {
    let mut entries = vec![first];
    while let Ok(more) = waiting.try_recv() {
        entries.push(more);
    }
    loop {
        let here = entries.iter().filter(|e| e.slot.is_some()).count();
        let taken = slots.count.saturating_sub(slots.semaphore.available_permits());
        if here >= taken {
            return entries;
        }
        match tokio::time::timeout_at(until, waiting.recv()).await {
            Ok(Some(more)) => entries.push(more),
            _ => return entries,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{lifecycle::email_kind::EmailKind, outbox::claim::Claimed};

    fn entry(slot: Option<OwnedSemaphorePermit>) -> Entry {
        let message = Claimed {
            id: uuid::Uuid::now_v7(),
            organization_id: uuid::Uuid::now_v7(),
            kind: EmailKind::Invitation,
            recipient: "ada@example.com".into(),
            user_id: None,
            batch_id: None,
            batch_position: None,
            invitation_id: None,
            action_token_id: None,
            attempts: 1,
            message_id: String::new(),
            traceparent: None,
            taken_over: false,
        };
        Entry {
            answer: Answer {
                message,
                outcome: Outcome::Sent,
                worker: "worker".into(),
            },
            slot,
            until: Instant::now() + Duration::from_secs(60),
            done: oneshot::channel().0,
        }
    }

    fn slots(count: usize) -> Slots {
        Slots {
            semaphore: Arc::new(Semaphore::new(count)),
            count,
        }
    }

    type Checked = std::result::Result<(), tokio::sync::AcquireError>;

    async fn take(slots: &Slots) -> std::result::Result<OwnedSemaphorePermit, tokio::sync::AcquireError> {
        slots.semaphore.clone().acquire_owned().await
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_waits_for_the_answers_whose_messages_are_on_the_wire() -> Checked {
        let slots = slots(4);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (a, b, c) = (take(&slots).await?, take(&slots).await?, take(&slots).await?);
        let _ = tx.send(entry(Some(b)));
        let late = tx.clone();
        // Runs only once the record waits.
        tokio::spawn(async move { late.send(entry(Some(c))).is_ok() });
        let started = Instant::now();
        let entries = gather(entry(Some(a)), &mut rx, &slots, started + GATHER).await;
        assert_eq!(
            entries.len(),
            3,
            "the answer on its way was left for another record"
        );
        assert!(started.elapsed() < GATHER, "waited on after every answer was in");
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_waits_no_longer_than_its_limit_nor_when_nothing_is_on_the_wire() -> Checked {
        let slots = slots(4);
        let (_tx, mut rx) = mpsc::unbounded_channel();
        // A slot whose answer never comes: the record goes at its limit.
        let (a, stuck) = (take(&slots).await?, take(&slots).await?);
        let started = Instant::now();
        let entries = gather(entry(Some(a)), &mut rx, &slots, started + GATHER).await;
        assert_eq!(entries.len(), 1);
        assert_eq!(started.elapsed(), GATHER);

        // Nothing else holds a slot: the record goes at once.
        drop((entries, stuck));
        let started = Instant::now();
        let entries = gather(entry(None), &mut rx, &slots, started + GATHER).await;
        assert_eq!(entries.len(), 1);
        assert_eq!(started.elapsed(), Duration::ZERO);
        Ok(())
    }
}
