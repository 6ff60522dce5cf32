//! The durable email outbox: messages are rows in Postgres, written in the
//! same transaction as the data they belong to, and sent by workers on
//! every replica.

pub mod backlog;
pub mod claim;
pub mod compose;
pub mod notifier;
pub mod record;
pub mod worker;

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use tokio::{sync::watch, task::JoinSet};
use uuid::Uuid;

use notifier::Notifier;

use crate::{
    db::Cached,
    error::Result,
    lifecycle::{delivery, email_kind::EmailKind},
    services::Services,
};

/// One email to queue.
pub struct Email<'a> {
    pub organization_id: Uuid,
    pub kind: EmailKind,
    pub recipient: &'a str,
    pub user_id: Uuid,
    pub invitation_id: Option<Uuid>,
    /// The batch it belongs to, and the recipient's position in it.
    pub batch: Option<(Uuid, i32)>,
}

static ENQUEUE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO outbox (id, organization_id, kind, recipient, user_id, batch_id, batch_position, \
           invitation_id, state, next_attempt_at, message_id, created_at, traceparent) \
         SELECT v.id, v.organization_id, v.kind, v.recipient, v.user_id, v.batch_id, v.position, \
           v.invitation_id, {}, $2, '<' || replace(v.id::text, '-', '') || '@' || $3 || '>', $2, $4 \
         FROM unnest($1::uuid[], $5::uuid[], $6::text[], $7::text[], $8::uuid[], $9::uuid[], $10::int4[], \
           $11::uuid[]) AS v(id, organization_id, kind, recipient, user_id, batch_id, position, invitation_id)",
        delivery::State::Queued.sql()
    )
});

/// Queues `emails` in the caller's transaction: the one way into the
/// outbox. They commit with the data they belong to, and the workers of
/// every replica hear of them then. Each keeps one Message-ID across its
/// tries.
pub async fn enqueue(
    conn: &mut AsyncPgConnection,
    emails: &[Email<'_>],
    message_domain: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    if emails.is_empty() {
        return Ok(());
    }
    let column = |f: &dyn Fn(&Email<'_>) -> Option<Uuid>| emails.iter().map(f).collect::<Vec<_>>();
    Cached(
        diesel::sql_query(ENQUEUE.as_str())
            .bind::<Array<SqlUuid>, _>(emails.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
            .bind::<Timestamptz, _>(now)
            .bind::<Text, _>(message_domain)
            .bind::<Nullable<Text>, _>(crate::telemetry::current_traceparent())
            .bind::<Array<SqlUuid>, _>(emails.iter().map(|e| e.organization_id).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(emails.iter().map(|e| e.kind.name()).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(emails.iter().map(|e| e.recipient).collect::<Vec<_>>())
            .bind::<Array<SqlUuid>, _>(emails.iter().map(|e| e.user_id).collect::<Vec<_>>())
            .bind::<Array<Nullable<SqlUuid>>, _>(column(&|e| e.batch.map(|(b, _)| b)))
            .bind::<Array<Nullable<Int4>>, _>(
                emails.iter().map(|e| e.batch.map(|(_, p)| p)).collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<SqlUuid>>, _>(column(&|e| e.invitation_id)),
    )
    .execute(conn)
    .await?;
    notifier::tell_workers(conn).await
}

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
