//! Bulk sends as the tests read them: a stream of `BatchEvent`s followed to
//! its end within a deadline.

use std::time::Duration;

use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use tokio_stream::StreamExt;
use tonic::Streaming;

use super::{Org, TestServer, authed};
use onramp::{
    outbox::claim::Claimed,
    pb::{self, batch_event::Event},
};

pub const DEADLINE: Duration = Duration::from_secs(30);

/// A bulk stream read to its end.
#[derive(Debug, Default)]
pub struct Finished {
    pub summary: pb::BatchSummary,
    pub preview: Option<pb::RenderedEmail>,
    pub results: Vec<pb::RecipientResult>,
    pub completion: pb::BatchCompletion,
    /// Every message in the order it came.
    pub order: Vec<&'static str>,
}

impl Finished {
    pub fn outcomes(&self) -> Vec<(i32, pb::RecipientOutcome)> {
        let mut outcomes: Vec<_> = self.results.iter().map(|r| (r.index, r.outcome())).collect();
        outcomes.sort_by_key(|(i, _)| *i);
        outcomes
    }
}

pub async fn finish(mut stream: Streaming<pb::BatchEvent>) -> Result<Finished, tonic::Status> {
    let mut finished = Finished::default();
    let read = async {
        while let Some(message) = stream.next().await {
            match message?.event {
                Some(Event::Summary(s)) => {
                    finished.order.push("summary");
                    finished.summary = s;
                }
                Some(Event::Preview(p)) => {
                    finished.order.push("preview");
                    finished.preview = Some(p);
                }
                Some(Event::Result(r)) => {
                    finished.order.push("result");
                    finished.results.push(r);
                }
                Some(Event::Completion(c)) => {
                    finished.order.push("completion");
                    finished.completion = c;
                }
                None => {}
            }
        }
        Ok::<_, tonic::Status>(())
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("the batch finished within the deadline")?;
    Ok(finished)
}

/// Follows batch `batch_id` with `WatchBatch` on `client` to its end.
pub async fn watch(
    mut client: pb::invitations_client::InvitationsClient<tonic::transport::Channel>,
    org: &Org,
    batch_id: String,
) -> Finished {
    let stream = client
        .watch_batch(authed(
            pb::WatchBatchRequest {
                organization_id: String::new(),
                batch_id,
            },
            &org.key,
        ))
        .await
        .expect("watch")
        .into_inner();
    finish(stream).await.expect("the watched batch finished")
}

pub fn invite(org: &Org, text: &str) -> pb::SendInvitationsRequest {
    pb::SendInvitationsRequest {
        recipients_text: text.into(),
        service_area_id: org.service_area_id.clone(),
        role_id: org.role_id.clone(),
        ..Default::default()
    }
}

/// A bulk send opened, with the summary it opens with; the rest of the
/// stream is the caller's.
pub async fn opened(
    server: &TestServer,
    org: &Org,
    request: pb::SendInvitationsRequest,
) -> (pb::BatchSummary, Streaming<pb::BatchEvent>) {
    let mut stream = server
        .invitations()
        .send_invitations(authed(request, &org.key))
        .await
        .expect("send")
        .into_inner();
    match stream.next().await {
        Some(Ok(pb::BatchEvent {
            event: Some(Event::Summary(summary)),
        })) => (summary, stream),
        other => panic!("the stream opens with its summary: {other:?}"),
    }
}

pub async fn send(
    server: &TestServer,
    org: &Org,
    request: pb::SendInvitationsRequest,
) -> Result<Finished, tonic::Status> {
    let stream = server
        .invitations()
        .send_invitations(authed(request, &org.key))
        .await?
        .into_inner();
    finish(stream).await
}

/// `count` invitations to emails that no worker sends, claimed together
/// inside an open transaction of a connection of the test's own: what that
/// transaction then reads of its row counts (`pg_stat_get_xact_*`) is the
/// claim's own work and what the test does after it. Enough of them fill
/// whole pages, as a bulk send's claims do. The caller rolls back.
pub async fn claimed_in_a_transaction(count: usize) -> (TestServer, AsyncPgConnection, Vec<Claimed>) {
    let server = TestServer::start_with(|c| c.outbox.workers = 0).await;
    let org = server.org("Acme").await;
    let emails: Vec<String> = (0..count).map(|n| format!("person{n}@acme.example")).collect();
    let (summary, _stream) = opened(&server, &org, invite(&org, &emails.join(", "))).await;
    assert_eq!(summary.recognized as usize, count);
    let mut db = server.db().await;
    db.batch_execute("BEGIN").await.expect("begin");
    let now = chrono::Utc::now();
    let claimed = onramp::outbox::claim::claim(
        &mut db,
        "test-worker",
        now,
        now + chrono::TimeDelta::minutes(1),
        i64::try_from(count).expect("a count that fits"),
    )
    .await
    .expect("claim");
    assert_eq!(claimed.len(), count, "every email is due");
    (server, db, claimed)
}
