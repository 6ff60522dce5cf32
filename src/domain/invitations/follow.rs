//! Reading a batch's results: the batch itself, its final results after a
//! cursor, and its counts. Results become final in `finished_seq` order, so a
//! follower on any replica resumes from the last one it saw.

use crate::db::Cached;
use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    prelude::*,
    sql_types::{BigInt, Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::schema::batches,
    domain::paging::Page,
    error::{Error, Result},
};

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = batches)]
pub struct Batch {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub kind: String,
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
    pub outcome: String,
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

/// Final results after `cursor`, in the order they became final.
pub async fn items_after(
    conn: &mut AsyncPgConnection,
    batch_id: Uuid,
    cursor: i64,
    limit: i64,
) -> Result<Vec<Item>> {
    Ok(Cached(diesel::sql_query(
        "SELECT position, input, email, user_id, invitation_id, outcome, reason, finished_at, finished_seq \
         FROM batch_items WHERE batch_id = $1 AND finished_seq > $2 ORDER BY finished_seq LIMIT $3",
    )
    .bind::<SqlUuid, _>(batch_id)
    .bind::<BigInt, _>(cursor)
    .bind::<BigInt, _>(limit))
    .load(conn)
    .await?)
}

#[derive(QueryableByName)]
struct OutcomeCount {
    #[diesel(sql_type = Text)]
    outcome: String,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// How many results of each outcome the batch has.
pub async fn counts(conn: &mut AsyncPgConnection, batch_id: Uuid) -> Result<Vec<(String, i64)>> {
    let rows: Vec<OutcomeCount> = Cached(diesel::sql_query(
        "SELECT outcome, count(*) AS count FROM batch_items WHERE batch_id = $1 AND outcome IS NOT NULL GROUP BY 1",
    )
    .bind::<SqlUuid, _>(batch_id))
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
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    kind: Option<&str>,
    page: Page,
) -> Result<(Vec<Progress>, String)> {
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
        query = query.filter(batches::kind.eq(kind.to_owned()));
    }
    let (found, token) = page.finish(query.load(conn).await?, |b: &Batch| b.id);
    let ids: Vec<Uuid> = found.iter().map(|b| b.id).collect();
    let counted: Vec<SentAndFailed> = Cached(
        diesel::sql_query(
            "SELECT batch_id, count(*) FILTER (WHERE outcome = 'sent') AS sent, \
           count(*) FILTER (WHERE outcome = 'failed') AS failed \
         FROM batch_items WHERE batch_id = ANY($1) GROUP BY 1",
        )
        .bind::<diesel::sql_types::Array<SqlUuid>, _>(&ids),
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
