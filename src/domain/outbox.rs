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
        outcome::Outcome,
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
    notify::tell_workers(conn).await
}

/// A recipient's final result in a batch.
pub struct BatchItemResult {
    pub batch_id: Uuid,
    pub position: i32,
    pub outcome: Outcome,
    pub reason: String,
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

static FINISH_BATCH_ITEMS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH {}, done AS ( \
           UPDATE batch_items b SET outcome = v.outcome, reason = v.reason, finished_at = $1, \
             finished_seq = nextval('batch_items_finished_seq') \
           FROM unnest($2::uuid[], $3::int4[], $4::text[], $5::text[]) AS v(batch_id, position, outcome, reason) \
           WHERE b.batch_id = v.batch_id AND b.position = v.position AND b.outcome IS NULL AND {LOCKED_FIRST} \
           RETURNING b.batch_id), \
         {} \
         SELECT id, kind, completed FROM touched",
        lock_batches("$2"),
        count_off_batches("$1")
    )
});

/// Makes results final (once: a result already final stays), counts them
/// off their batches, completes batches with nothing outstanding and tells
/// their followers. Call inside a transaction; answers the batches touched.
pub async fn finish_batch_items(
    conn: &mut AsyncPgConnection,
    items: &[BatchItemResult],
    now: DateTime<Utc>,
) -> Result<Vec<Touched>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let batches: Vec<Touched> = Cached(
        diesel::sql_query(FINISH_BATCH_ITEMS.as_str())
            .bind::<Timestamptz, _>(now)
            .bind::<Array<SqlUuid>, _>(items.iter().map(|i| i.batch_id).collect::<Vec<_>>())
            .bind::<Array<Int4>, _>(items.iter().map(|i| i.position).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(items.iter().map(|i| i.outcome).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(items.iter().map(|i| i.reason.clone()).collect::<Vec<_>>()),
    )
    .load(conn)
    .await?;
    let batch_ids: Vec<Uuid> = batches.iter().map(|b| b.id).collect();
    notify::tell_followers(conn, &batch_ids).await?;
    Ok(batches)
}

#[derive(QueryableByName)]
struct Cancelled {
    #[diesel(sql_type = diesel::sql_types::Nullable<SqlUuid>)]
    batch_id: Option<Uuid>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Int4>)]
    batch_position: Option<i32>,
}

/// Withdraws the queued (not yet claimed) messages of an invitation to
/// `user_id`, and makes their batch results final with `reason`. Call inside
/// a transaction.
pub async fn cancel_queued(
    conn: &mut AsyncPgConnection,
    invitation_id: Uuid,
    user_id: Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    // No index leads from an invitation to its emails (a bulk send would pay
    // for it on every email); the person's emails are few and indexed.
    let cancelled: Vec<Cancelled> = Cached(
        diesel::sql_query(
            "UPDATE outbox SET state = $3, last_error = $2, next_attempt_at = NULL \
             WHERE user_id = $5 AND invitation_id = $1 AND state = $4 RETURNING batch_id, batch_position",
        )
        .bind::<SqlUuid, _>(invitation_id)
        .bind::<Text, _>(reason)
        .bind::<Text, _>(
            State::Queued
                .next(delivery::Event::Cancelled)
                .unwrap_or(State::Failed),
        )
        .bind::<Text, _>(State::Queued)
        .bind::<SqlUuid, _>(user_id),
    )
    .load(conn)
    .await?;
    let items: Vec<BatchItemResult> = cancelled
        .into_iter()
        .filter_map(|c| {
            Some(BatchItemResult {
                batch_id: c.batch_id?,
                position: c.batch_position?,
                outcome: Outcome::Failed,
                reason: reason.to_owned(),
            })
        })
        .collect();
    finish_batch_items(conn, &items, now).await.map(drop)
}
