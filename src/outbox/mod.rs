//! The durable email outbox: messages are rows in Postgres, written in the
//! same transaction as the data they belong to, and sent by workers on
//! every replica.

pub mod backlog;
pub mod claim;
pub mod codes;
pub mod compose;
pub mod credentials;
pub mod notifier;
pub mod record;
pub mod worker;

use crate::db::Cached;
use chrono::{DateTime, Utc};
use diesel::ExpressionMethods;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use tokio::{sync::watch, task::JoinSet};
use uuid::Uuid;

use notifier::Notifier;

use crate::{db::schema::outbox, error::Result, services::Services};

/// One email to queue outside a batch.
pub struct Email<'a> {
    pub organization_id: Uuid,
    pub kind: &'static str,
    pub recipient: &'a str,
    pub user_id: Uuid,
    pub invitation_id: Option<Uuid>,
}

/// Queues an email; it commits with the caller's transaction, and the
/// workers of every replica hear of it then.
pub async fn enqueue(
    conn: &mut AsyncPgConnection,
    email: Email<'_>,
    message_domain: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let id = Uuid::now_v7();
    diesel::insert_into(outbox::table)
        .values((
            outbox::id.eq(id),
            outbox::organization_id.eq(email.organization_id),
            outbox::kind.eq(email.kind),
            outbox::recipient.eq(email.recipient),
            outbox::user_id.eq(email.user_id),
            outbox::invitation_id.eq(email.invitation_id),
            outbox::state.eq("queued"),
            outbox::next_attempt_at.eq(now),
            outbox::message_id.eq(format!("<{}@{message_domain}>", id.simple())),
            outbox::created_at.eq(now),
            outbox::traceparent.eq(crate::telemetry::current_traceparent()),
        ))
        .execute(conn)
        .await?;
    Cached(diesel::sql_query("SELECT pg_notify('onramp_outbox', '')"))
        .execute(conn)
        .await?;
    Ok(())
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
