//! Following a batch: its summary, each recipient's result as it becomes
//! final, and the final counts. Results become final in `finished_seq`
//! order; a follower reads them from the database and wakes on
//! notifications, so it follows sends made by any replica, and one that
//! starts again (`WatchBatch`) replays everything from the start.

use std::{sync::LazyLock, time::Duration};

use tokio::sync::broadcast;

use crate::db::Cached;
use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    prelude::*,
    sql_types::{BigInt, Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    events::{self, BatchEvent, Completion, Events, RecipientResult, Reported},
    plan::Summary,
};
use crate::{
    db::schema::batches,
    domain::paging::Page,
    error::{Error, Result},
    lifecycle::{delivery, email_kind::EmailKind, outcome::Outcome},
    notify::{BATCH_CHANNEL, Notification},
    services::Services,
};

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = batches)]
pub struct Batch {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub kind: EmailKind,
    pub actor: String,
    pub total: i32,
    pub recognized: i32,
    pub invalid: i32,
    pub duplicates: i32,
    pub outstanding: i32,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, QueryableByName)]
pub struct Item {
    #[diesel(sql_type = Int4)]
    pub position: i32,
    #[diesel(sql_type = Text)]
    pub input: String,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub user_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub invitation_id: Option<Uuid>,
    #[diesel(sql_type = Text)]
    pub outcome: Outcome,
    #[diesel(sql_type = Text)]
    pub reason: String,
    #[diesel(sql_type = Timestamptz)]
    pub finished_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub finished_seq: i64,
}

pub async fn batch(conn: &mut AsyncPgConnection, organization_id: Uuid, id: Uuid) -> Result<Batch> {
    batches::table
        .filter(batches::organization_id.eq(organization_id))
        .filter(batches::id.eq(id))
        .select(Batch::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| Error::not_found(format!("batch {id} does not exist in this organisation")))
}

#[derive(QueryableByName)]
struct Since {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    completed_at: Option<DateTime<Utc>>,
    /// None on the one row of a batch with no new result.
    #[diesel(embed)]
    item: Option<Item>,
}

/// A batch's results come from two places, numbered from one sequence: the
/// rows of recipients not emailed, whose results were decided without an
/// email, and the emails, each the one row of its recipient, whose results
/// their sending (`outbox::record`) or withdrawal decided.
static RESULTS_SINCE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT b.completed_at, i.* FROM batches b LEFT JOIN LATERAL ( \
           (SELECT position, input, email, user_id, invitation_id, outcome, reason, finished_at, finished_seq \
            FROM batch_items WHERE batch_id = b.id AND finished_seq > $2 ORDER BY finished_seq LIMIT $3) \
           UNION ALL \
           (SELECT o.batch_position AS position, coalesce(o.batch_input, o.recipient) AS input, \
              o.recipient AS email, o.user_id, o.invitation_id, {emailed} AS outcome, \
              o.last_error AS reason, o.finished_at, o.finished_seq \
            FROM outbox o WHERE o.batch_id = b.id AND o.finished_seq > $2 ORDER BY o.finished_seq LIMIT $3) \
           ORDER BY finished_seq LIMIT $3) i ON true \
         WHERE b.id = $1 ORDER BY i.finished_seq",
        emailed = emailed_outcome(),
    )
});

/// The result that an email's recorded outcome (`o`) stands for.
fn emailed_outcome() -> String {
    format!(
        "CASE WHEN o.state = {} THEN {} ELSE {} END",
        delivery::State::Sent.sql(),
        Outcome::Sent.sql(),
        Outcome::Failed.sql()
    )
}

/// Every final result of the batches in `$1`, with its outcome.
fn results_of() -> String {
    format!(
        "(SELECT batch_id, outcome FROM batch_items WHERE batch_id = ANY($1) AND outcome IS NOT NULL \
          UNION ALL \
          SELECT o.batch_id, {} FROM outbox o WHERE o.batch_id = ANY($1) AND o.finished_seq IS NOT NULL) \
         AS results",
        emailed_outcome()
    )
}

static COUNTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT outcome, count(*) AS count FROM {} GROUP BY 1",
        results_of()
    )
});

static SENT_AND_FAILED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT batch_id, count(*) FILTER (WHERE outcome = $2) AS sent, \
           count(*) FILTER (WHERE outcome = $3) AS failed \
         FROM {} GROUP BY 1",
        results_of()
    )
});

/// When the batch completed, if it has, and up to `limit` of its results
/// made final after `cursor`, in the order they became final. One
/// statement, so one snapshot: a batch that shows complete shows every
/// result with it.
pub async fn since(
    conn: &mut AsyncPgConnection,
    batch_id: Uuid,
    cursor: i64,
    limit: i64,
) -> Result<(Option<DateTime<Utc>>, Vec<Item>)> {
    let rows: Vec<Since> = Cached(
        diesel::sql_query(RESULTS_SINCE.as_str())
            .bind::<SqlUuid, _>(batch_id)
            .bind::<BigInt, _>(cursor)
            .bind::<BigInt, _>(limit),
    )
    .load(conn)
    .await?;
    // A batch has a row here even with no new result; none means someone
    // deleted it from the database behind Onramp's back.
    let Some(first) = <[Since]>::first(&rows) else {
        return Err(Error::not_found(format!("batch {batch_id} no longer exists")));
    };
    let completed_at = first.completed_at;
    Ok((completed_at, rows.into_iter().filter_map(|r| r.item).collect()))
}

#[derive(QueryableByName)]
struct OutcomeCount {
    #[diesel(sql_type = Text)]
    outcome: Outcome,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// How many results of each outcome the batch has.
pub async fn counts(conn: &mut AsyncPgConnection, batch_id: Uuid) -> Result<Vec<(Outcome, i64)>> {
    let rows: Vec<OutcomeCount> = Cached(
        diesel::sql_query(COUNTS.as_str()).bind::<diesel::sql_types::Array<SqlUuid>, _>(vec![batch_id]),
    )
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.outcome, r.count)).collect())
}

/// A batch with how many of its emails were accepted and refused so far.
pub struct Progress {
    pub batch: Batch,
    pub sent: i64,
    pub failed: i64,
}

#[derive(QueryableByName)]
struct SentAndFailed {
    #[diesel(sql_type = SqlUuid)]
    batch_id: Uuid,
    #[diesel(sql_type = BigInt)]
    sent: i64,
    #[diesel(sql_type = BigInt)]
    failed: i64,
}

/// The organisation's batches, newest first, with their progress.
pub async fn list(
    app: &Services,
    organization_id: Uuid,
    kind: Option<EmailKind>,
    page: Page,
) -> Result<(Vec<Progress>, String)> {
    let mut pooled = app.pool.get().await?;
    let conn = &mut *pooled;
    let mut query = batches::table
        .filter(batches::organization_id.eq(organization_id))
        .select(Batch::as_select())
        .order(batches::id.desc())
        .limit(page.fetch_limit())
        .into_boxed();
    if let Some(after) = page.after {
        query = query.filter(batches::id.lt(after));
    }
    if let Some(kind) = kind {
        query = query.filter(batches::kind.eq(kind));
    }
    let (found, token) = page.finish(query.load(conn).await?, |b: &Batch| b.id);
    let ids: Vec<Uuid> = found.iter().map(|b| b.id).collect();
    let counted: Vec<SentAndFailed> = Cached(
        diesel::sql_query(SENT_AND_FAILED.as_str())
            .bind::<diesel::sql_types::Array<SqlUuid>, _>(&ids)
            .bind::<Text, _>(Outcome::Sent)
            .bind::<Text, _>(Outcome::Failed),
    )
    .load(conn)
    .await?;
    let progress = found
        .into_iter()
        .map(|batch| {
            let counts = counted.iter().find(|c| c.batch_id == batch.id);
            Progress {
                sent: counts.map_or(0, |c| c.sent),
                failed: counts.map_or(0, |c| c.failed),
                batch,
            }
        })
        .collect();
    Ok((progress, token))
}

/// Results read per query.
const PAGE: i64 = 1_000;
/// A follower looks again this often even without a notification (one may
/// be lost while the listener reconnects).
const POLL: Duration = Duration::from_secs(2);
/// How long a follower keeps trying while the database is unavailable
/// before it ends with UNAVAILABLE (the client can then resume with
/// `WatchBatch`).
const OUTAGE: Duration = Duration::from_secs(60);

/// Looks up a batch of the organisation.
pub async fn find(app: &Services, organization_id: Uuid, id: Uuid) -> Result<Batch> {
    let mut conn = app.pool.get().await?;
    batch(&mut conn, organization_id, id).await
}

/// Reports `batch` (already checked to belong to the caller) to `tx` until
/// it completes or the client leaves. `wake` must be subscribed before the
/// call, so no result slips between it and the first read.
pub async fn follow(
    app: &Services,
    batch: &Batch,
    replayed: bool,
    tx: &Events,
    mut wake: broadcast::Receiver<Notification>,
) -> Result<()> {
    let summary = BatchEvent::Summary {
        batch_id: Some(batch.id),
        summary: Summary {
            total: batch.total,
            recognized: batch.recognized,
            invalid: batch.invalid,
            duplicates: batch.duplicates,
        },
        replayed,
    };
    if !events::report(tx, summary).await {
        return Ok(());
    }
    let id = batch.id.to_string();
    let mut cursor = 0;
    loop {
        let (completed_at, items) = riding_out_outages(move || async move {
            let mut conn = app.pool.get().await?;
            since(&mut conn, batch.id, cursor, PAGE).await
        })
        .await?;
        let full = items.len() as i64 == PAGE;
        for item in items {
            cursor = item.finished_seq;
            if !events::report(tx, BatchEvent::Result(result(item))).await {
                return Ok(()); // the client left; the batch goes on
            }
        }
        if full {
            continue;
        }
        if let Some(completed_at) = completed_at {
            let completion = completion(app, batch.id, completed_at).await?;
            events::report(tx, BatchEvent::Completion(completion)).await;
            return Ok(());
        }
        wait_for(&mut wake, &id).await;
    }
}

fn result(item: Item) -> RecipientResult {
    RecipientResult {
        index: item.position,
        input: item.input,
        email: item.email,
        reported: Reported::Final(item.outcome),
        reason: item.reason,
        user_id: item.user_id,
        invitation_id: item.invitation_id,
        time: Some(item.finished_at),
    }
}

/// Runs `read`, again after a pause while the database is unavailable (a
/// restart, a failover), so a follower outlives a short outage unnoticed.
async fn riding_out_outages<T, F>(mut read: impl FnMut() -> F) -> Result<T>
where
    F: Future<Output = Result<T>>,
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
            other => return other,
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

async fn completion(app: &Services, batch_id: Uuid, completed_at: DateTime<Utc>) -> Result<Completion> {
    let counts = riding_out_outages(|| async {
        let mut conn = app.pool.get().await?;
        counts(&mut conn, batch_id).await
    })
    .await?;
    let mut completion = Completion {
        batch_id: Some(batch_id),
        complete_time: Some(completed_at),
        ..Completion::default()
    };
    for (outcome, n) in counts {
        completion.count(Reported::Final(outcome), i32::try_from(n).unwrap_or(i32::MAX));
    }
    Ok(completion)
}
