//! The stream of a bulk send, in protobuf: the domain's events
//! (`domain::invitations::events`) converted as they come, from a batch
//! followed to its end or from a dry run.

use std::{pin::Pin, sync::Arc};

use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::Status;
use tracing::Instrument;

use crate::{
    domain::invitations::{
        bulk::BulkSend,
        dry_run::dry_run,
        events::{BatchEvent, Completion, RecipientResult, Reported},
        follow::{self, Batch},
        plan::Recipients,
    },
    error::{Error, Result},
    grpc::convert,
    lifecycle::outcome::Outcome,
    pb::{self, batch_event::Event},
    state::AppState,
};

pub type BatchStream = Pin<Box<dyn Stream<Item = Result<pb::BatchEvent, Status>> + Send>>;

/// Events buffered for a slow client.
const BUFFER: usize = 256;

/// Follows `batch` (already checked to belong to the caller) to its end; a
/// server shutting down ends the stream with UNAVAILABLE, and the batch
/// goes on.
pub fn follow(state: AppState, batch: Batch, replayed: bool) -> BatchStream {
    let (tx, rx) = mpsc::channel(BUFFER);
    // Subscribed before the first read, so no result slips between them.
    let wake = state.notifier.subscribe();
    let mut stopping = state.shutdown.subscribe();
    tokio::spawn(
        async move {
            let outcome = tokio::select! {
                outcome = follow::follow(&state, &batch, replayed, &tx, wake) => outcome,
                _ = stopping.wait_for(|stop| *stop) => Err(Error::Unavailable(
                    "this server is shutting down; the batch goes on: follow it with WatchBatch".into(),
                )),
            };
            if let Err(e) = outcome {
                let _ = tx.send(Err(e)).await;
            }
        }
        .in_current_span(),
    );
    stream(rx)
}

/// The stream of a dry run of `send`, whose parts, if it came in parts,
/// were read already.
pub fn dry(state: AppState, send: BulkSend, parts: Option<Arc<[Recipients]>>) -> BatchStream {
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(
        async move {
            let org = send.organization_id;
            if let Err(e) = dry_run(&state, org, &send.recipients, parts, send.kind, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        }
        .in_current_span(),
    );
    stream(rx)
}

/// Starts `send`: its batch followed to the end, or its dry run.
pub async fn start(
    state: &AppState,
    mut send: BulkSend,
    actor: &crate::domain::audit::Actor,
) -> Result<BatchStream> {
    if send.dry_run {
        // Read before the stream starts, so a refused part is the answer.
        let parts = match send.parts.take() {
            Some(parts) => Some(parts.collect().await?),
            None => None,
        };
        return Ok(dry(state.clone(), send, parts));
    }
    let (batch, replayed) = crate::domain::invitations::bulk::start(state, send, actor).await?;
    Ok(follow(state.clone(), batch, replayed))
}

fn stream(rx: mpsc::Receiver<Result<BatchEvent>>) -> BatchStream {
    Box::pin(ReceiverStream::new(rx).map(|e| e.map(event).map_err(Status::from)))
}

fn event(e: BatchEvent) -> pb::BatchEvent {
    let event = match e {
        BatchEvent::Summary {
            batch_id,
            summary,
            replayed,
        } => Event::Summary(pb::BatchSummary {
            batch_id: batch_id.map(|id| id.to_string()).unwrap_or_default(),
            total: summary.total,
            recognized: summary.recognized,
            invalid: summary.invalid,
            duplicates: summary.duplicates,
            replayed,
            dry_run: batch_id.is_none(),
        }),
        BatchEvent::Preview { to, email } => Event::Preview(pb::RenderedEmail {
            to,
            subject: email.subject,
            text_body: email.text,
            html_body: email.html,
        }),
        BatchEvent::Result(r) => Event::Result(result(r)),
        BatchEvent::Completion(c) => Event::Completion(completion(c)),
    };
    pb::BatchEvent { event: Some(event) }
}

pub fn outcome(reported: Reported) -> pb::RecipientOutcome {
    match reported {
        Reported::WouldSend => pb::RecipientOutcome::WouldSend,
        Reported::Final(Outcome::Sent) => pb::RecipientOutcome::Sent,
        Reported::Final(Outcome::InvalidAddress) => pb::RecipientOutcome::InvalidAddress,
        Reported::Final(Outcome::DuplicateInRequest) => pb::RecipientOutcome::DuplicateInRequest,
        Reported::Final(Outcome::AlreadyMember) => pb::RecipientOutcome::AlreadyMember,
        Reported::Final(Outcome::AlreadyInvited) => pb::RecipientOutcome::AlreadyInvited,
        Reported::Final(Outcome::Failed) => pb::RecipientOutcome::Failed,
    }
}

fn result(r: RecipientResult) -> pb::RecipientResult {
    pb::RecipientResult {
        index: r.index,
        input: r.input,
        email: r.email,
        outcome: outcome(r.reported) as i32,
        reason: r.reason,
        user_id: r.user_id.map(|u| u.to_string()).unwrap_or_default(),
        invitation_id: r.invitation_id.map(|i| i.to_string()).unwrap_or_default(),
        time: r.time.map(convert::timestamp),
    }
}

fn completion(c: Completion) -> pb::BatchCompletion {
    pb::BatchCompletion {
        batch_id: c.batch_id.map(|id| id.to_string()).unwrap_or_default(),
        sent: c.sent,
        failed: c.failed,
        invalid: c.invalid,
        duplicates: c.duplicates,
        already_member: c.already_member,
        already_invited: c.already_invited,
        would_send: c.would_send,
        complete_time: c.complete_time.map(convert::timestamp),
    }
}
