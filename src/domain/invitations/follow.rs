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
    error::{Error, Result},
};

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = batches)]
pub struct Batch {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub kind: String,
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
