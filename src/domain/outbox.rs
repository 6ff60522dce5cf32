//! Queueing email: the one writer into the outbox (`enqueue`), in the
//! caller's transaction, and making batch results final, whether the SMTP
//! server answered or a queued email was withdrawn. The workers
//! (`crate::outbox`) send what is queued here.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    sql_types::{Array, Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::Cached,
    error::Result,
    lifecycle::{
        delivery::{self, State},
        email_kind::EmailKind,
    },
    notify,
};

/// One email to queue.
pub struct Email<'a> {
    pub organization_id: Uuid,
    pub kind: EmailKind,
    pub recipient: &'a str,
    pub user_id: Uuid,
    pub invitation_id: Option<Uuid>,
    /// The batch recipient it is sent to.
    pub batch: Option<Recipient<'a>>,
}

/// A batch's recipient, who is emailed: their place in the batch, and their
/// entry as given where it is more than the address. The email is their one
/// row; its result is made final on it.
#[derive(Clone, Copy)]
pub struct Recipient<'a> {
    pub batch_id: Uuid,
    pub position: i32,
    pub input: Option<&'a str>,
}

static ENQUEUE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO outbox (id, organization_id, kind, recipient, user_id, batch_id, batch_position, \
           batch_input, invitation_id, state, next_attempt_at, message_id, created_at, traceparent) \
         SELECT v.id, v.organization_id, v.kind, v.recipient, v.user_id, v.batch_id, v.position, v.input, \
           v.invitation_id, {}, $2, '<' || replace(v.id::text, '-', '') || '@' || $3 || '>', $2, $4 \
         FROM unnest($1::uuid[], $5::uuid[], $6::text[], $7::text[], $8::uuid[], $9::uuid[], $10::int4[], \
           $12::text[], $11::uuid[]) \
           AS v(id, organization_id, kind, recipient, user_id, batch_id, position, input, invitation_id)",
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
            .bind::<Array<Nullable<SqlUuid>>, _>(column(&|e| e.batch.map(|b| b.batch_id)))
            .bind::<Array<Nullable<Int4>>, _>(
                emails
                    .iter()
                    .map(|e| e.batch.map(|b| b.position))
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<SqlUuid>>, _>(column(&|e| e.invitation_id))
            .bind::<Array<Nullable<Text>>, _>(
                emails
                    .iter()
                    .map(|e| e.batch.and_then(|b| b.input))
                    .collect::<Vec<_>>(),
            ),
    )
    .execute(conn)
    .await?;
    notify::tell_workers(conn).await
}

/// A batch that got new results.
#[derive(QueryableByName)]
pub struct Touched {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub kind: EmailKind,
    /// Its last result came now.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub completed: bool,
}

/// The start of a statement that makes results final: a CTE `locked` that
/// locks the batches in `ids` (the parameter holding their ids) until the
/// transaction ends, and `LOCKED_FIRST`, the condition that makes the
/// results' update take those locks before it draws any `finished_seq`.
/// Followers read results in that order; holding the batch rows until
/// commit makes each batch's numbers commit in the order they were drawn, so
/// a follower's cursor never passes a number still to commit.
pub fn lock_batches(ids: &str) -> String {
    format!("locked AS (SELECT id FROM batches WHERE id = ANY({ids}) ORDER BY id FOR UPDATE)")
}

/// An uncorrelated subquery, which PostgreSQL evaluates once, as a one-time
/// filter, before the update it guards yields a row.
pub const LOCKED_FIRST: &str = "(SELECT count(*) FROM locked) >= 0";

/// The end of a statement that makes results final: given a `done` CTE
/// answering the `batch_id` of each result it made final, counts them off
/// their batches and completes those with nothing outstanding, in a CTE
/// `touched` answering `id, kind, completed`. `now` names the parameter
/// holding the time.
pub fn count_off_batches(now: &str) -> String {
    format!(
        "counted AS (SELECT batch_id, count(*)::int4 AS n FROM done GROUP BY batch_id), \
         touched AS ( \
           UPDATE batches SET outstanding = batches.outstanding - counted.n, \
             completed_at = CASE WHEN batches.outstanding - counted.n = 0 THEN {now} END \
           FROM counted WHERE batches.id = counted.batch_id \
           RETURNING batches.id, batches.kind, batches.completed_at IS NOT NULL AS completed)"
    )
}

/// Withdraws an invitation's queued emails (not yet claimed: a claimed one
/// is on its way) and makes the results of those sent to a batch's
/// recipients final on the emails, numbered once their batches are locked.
/// A person's emails are few and indexed; no index leads from an invitation
/// to its emails, which a bulk send would pay for on every email.
static CANCEL_QUEUED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH queued AS (SELECT batch_id FROM outbox WHERE user_id = $5 AND invitation_id = $1 AND state = $4), \
         {}, \
         done AS ( \
           UPDATE outbox o SET state = $3, last_error = $2, next_attempt_at = NULL, \
             finished_at = CASE WHEN o.batch_id IS NOT NULL THEN $6 END, \
             finished_seq = CASE WHEN o.batch_id IS NOT NULL THEN nextval('batch_items_finished_seq') END \
           WHERE o.user_id = $5 AND o.invitation_id = $1 AND o.state = $4 AND {LOCKED_FIRST} \
           RETURNING o.batch_id), \
         {} \
         SELECT id, kind, completed FROM touched",
        lock_batches("ARRAY(SELECT batch_id FROM queued)"),
        count_off_batches("$6")
    )
});

/// Withdraws the queued (not yet claimed) emails of an invitation to
/// `user_id`, with `reason`, which a batch's follower reads as the
/// recipient's result (FAILED). Call inside a transaction.
pub async fn cancel_queued(
    conn: &mut AsyncPgConnection,
    invitation_id: Uuid,
    user_id: Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let touched: Vec<Touched> = Cached(
        diesel::sql_query(CANCEL_QUEUED.as_str())
            .bind::<SqlUuid, _>(invitation_id)
            .bind::<Text, _>(reason)
            .bind::<Text, _>(
                State::Queued
                    .next(delivery::Event::Cancelled)
                    .unwrap_or(State::Failed),
            )
            .bind::<Text, _>(State::Queued)
            .bind::<SqlUuid, _>(user_id)
            .bind::<Timestamptz, _>(now),
    )
    .load(conn)
    .await?;
    let batch_ids: Vec<Uuid> = touched.iter().map(|b| b.id).collect();
    notify::tell_followers(conn, &batch_ids).await
}
