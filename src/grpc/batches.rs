//! The stream of a bulk send: its summary, each recipient's result as it
//! becomes final, and the final counts. It reads from the database and wakes
//! on notifications, so it follows sends made by any replica, and a client
//! that reconnects (`WatchBatch`) replays everything from the start.

use std::{pin::Pin, time::Duration};

use tokio::sync::{broadcast, mpsc};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::Status;
use tracing::Instrument;
use uuid::Uuid;

use crate::{
    domain::invitations::follow::{self, Batch, Item},
    error::Error,
    grpc::convert,
    outbox::notifier::{BATCH_CHANNEL, Notification},
    pb::{self, batch_event::Event},
    state::AppState,
};

pub type BatchStream = Pin<Box<dyn Stream<Item = Result<pb::BatchEvent, Status>> + Send>>;

/// Results read per query.
const PAGE: i64 = 1_000;
/// A follower looks again this often even without a notification (one may
/// be lost while the listener reconnects).
const POLL: Duration = Duration::from_secs(2);

pub fn event(event: Event) -> pb::BatchEvent {
    pb::BatchEvent { event: Some(event) }
}

pub fn summary(batch: &Batch, replayed: bool) -> pb::BatchEvent {
    event(Event::Summary(pb::BatchSummary {
        batch_id: batch.id.to_string(),
        total: batch.total,
        recognized: batch.recognized,
        invalid: batch.invalid,
        duplicates: batch.duplicates,
        replayed,
        dry_run: false,
    }))
}

pub fn outcome(name: &str) -> pb::RecipientOutcome {
    match name {
        "sent" => pb::RecipientOutcome::Sent,
        "invalid_address" => pb::RecipientOutcome::InvalidAddress,
        "duplicate_in_request" => pb::RecipientOutcome::DuplicateInRequest,
        "already_member" => pb::RecipientOutcome::AlreadyMember,
        "already_invited" => pb::RecipientOutcome::AlreadyInvited,
        "failed" => pb::RecipientOutcome::Failed,
        _ => pb::RecipientOutcome::Unspecified,
    }
}

fn result(item: Item) -> pb::BatchEvent {
    event(Event::Result(pb::RecipientResult {
        index: item.position,
        input: item.input,
        email: item.email,
        outcome: outcome(&item.outcome) as i32,
        reason: item.reason,
        user_id: item.user_id.map(|u| u.to_string()).unwrap_or_default(),
        invitation_id: item.invitation_id.map(|i| i.to_string()).unwrap_or_default(),
        time: Some(convert::timestamp(item.finished_at)),
    }))
}

/// Follows `batch` (already checked to belong to the caller) to its end.
pub fn follow(state: AppState, batch: Batch, replayed: bool) -> BatchStream {
    let (tx, rx) = mpsc::channel(256);
    // Subscribed before the first read, so no result slips between them.
    let wake = state.notifier.subscribe();
    let mut stopping = state.shutdown.subscribe();
    tokio::spawn(
        async move {
            let outcome = tokio::select! {
                outcome = run(&state, &batch, replayed, &tx, wake) => outcome,
                _ = stopping.wait_for(|stop| *stop) => Err(Status::unavailable(
                    "this server is shutting down; the batch goes on: follow it with WatchBatch",
                )),
            };
            if let Err(status) = outcome {
                let _ = tx.send(Err(status)).await;
            }
        }
        .in_current_span(),
    );
    Box::pin(ReceiverStream::new(rx))
}

async fn run(
    state: &AppState,
    batch: &Batch,
    replayed: bool,
    tx: &mpsc::Sender<Result<pb::BatchEvent, Status>>,
    mut wake: broadcast::Receiver<Notification>,
) -> Result<(), Status> {
    if tx.send(Ok(summary(batch, replayed))).await.is_err() {
        return Ok(());
    }
    let id = batch.id.to_string();
    let mut cursor = 0;
    loop {
        // The batch is read before its results: once it shows complete, every
        // result is final and the read after it sees them all.
        let (current, items) = riding_out_outages(move || async move {
            let mut conn = state.pool.get().await?;
            let current = follow::batch(&mut conn, batch.organization_id, batch.id).await?;
            let items = follow::items_after(&mut conn, batch.id, cursor, PAGE).await?;
            Ok((current, items))
        })
        .await?;
        let full = items.len() as i64 == PAGE;
        for item in items {
            cursor = item.finished_seq;
            if tx.send(Ok(result(item))).await.is_err() {
                return Ok(()); // the client left; the batch goes on
            }
        }
        if full {
            continue;
        }
        if current.completed_at.is_some() {
            let completion = completion(state, &current).await?;
            let _ = tx.send(Ok(completion)).await;
            return Ok(());
        }
        wait_for(&mut wake, &id).await;
    }
}

/// How long a follower keeps trying while the database is unavailable
/// before it ends the stream with UNAVAILABLE (the client can then resume
/// with `WatchBatch`).
const OUTAGE: Duration = Duration::from_secs(60);

/// Runs `read`, again after a pause while the database is unavailable (a
/// restart, a failover), so a stream outlives a short outage unnoticed.
async fn riding_out_outages<T, F>(mut read: impl FnMut() -> F) -> Result<T, Status>
where
    F: Future<Output = Result<T, Error>>,
{
    let give_up = tokio::time::Instant::now() + OUTAGE;
    let mut backoff = Duration::from_millis(100);
    loop {
        match read().await {
            Err(Error::Unavailable(why)) if tokio::time::Instant::now() + backoff < give_up => {
                tracing::warn!(error = %why, "following a batch: the database is unavailable; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            other => return other.map_err(Status::from),
        }
    }
}

/// Waits for news of batch `id`, or the poll interval.
async fn wait_for(wake: &mut broadcast::Receiver<Notification>, id: &str) {
    let news = async {
        loop {
            match wake.recv().await {
                Ok(n) if n.channel == BATCH_CHANNEL && n.payload == id => return,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => return,
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    };
    let _ = tokio::time::timeout(POLL, news).await;
}

async fn completion(state: &AppState, batch: &Batch) -> Result<pb::BatchEvent, Status> {
    let counts = riding_out_outages(|| async {
        let mut conn = state.pool.get().await?;
        follow::counts(&mut conn, batch.id).await
    })
    .await?;
    let count = |name: &str| {
        counts
            .iter()
            .filter(|(o, _)| o == name)
            .map(|(_, n)| i32::try_from(*n).unwrap_or(i32::MAX))
            .sum()
    };
    Ok(event(Event::Completion(pb::BatchCompletion {
        batch_id: batch.id.to_string(),
        sent: count("sent"),
        failed: count("failed"),
        invalid: count("invalid_address"),
        duplicates: count("duplicate_in_request"),
        already_member: count("already_member"),
        already_invited: count("already_invited"),
        would_send: 0,
        complete_time: batch.completed_at.map(convert::timestamp),
    })))
}

/// Looks up a batch of the caller's organisation.
pub async fn find(state: &AppState, organization_id: Uuid, id: Uuid) -> Result<Batch, Status> {
    let mut conn = state.pool.get().await.map_err(Error::from)?;
    Ok(follow::batch(&mut conn, organization_id, id).await?)
}
