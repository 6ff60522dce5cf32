//! Claiming due messages. Every replica's workers claim with
//! `FOR UPDATE SKIP LOCKED` and take a lease; a message whose lease ran out
//! (its worker died) is due again.

use crate::db::Cached;
use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    sql_types::{BigInt, Bool, Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use std::sync::LazyLock;

use crate::{
    error::Result,
    lifecycle::{delivery, email_kind::EmailKind},
};

#[derive(Clone, Debug, QueryableByName)]
pub struct Claimed {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub organization_id: Uuid,
    #[diesel(sql_type = Text)]
    pub kind: EmailKind,
    #[diesel(sql_type = Text)]
    pub recipient: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub user_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub batch_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Int4>)]
    pub batch_position: Option<i32>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub invitation_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub action_token_id: Option<Uuid>,
    #[diesel(sql_type = Int4)]
    pub attempts: i32,
    #[diesel(sql_type = Text)]
    pub message_id: String,
    /// The trace of the request that queued it.
    #[diesel(sql_type = Nullable<Text>)]
    pub traceparent: Option<String>,
    /// Claimed from a worker whose lease ran out (it stopped mid-send).
    #[diesel(sql_type = Bool)]
    pub taken_over: bool,
}

/// Due: waiting, at its time, and not under a live lease (a sending row
/// whose lease ran out is taken over). The update changes no indexed
/// column (see `delivery::WAITING_SQL`), so it writes no index entry.
static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH due AS ( \
           SELECT id, state = {sending} AS taken_over FROM outbox \
           WHERE next_attempt_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1) \
           ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
         UPDATE outbox o SET state = {sending}, lease_until = $2, leased_by = $3, attempts = o.attempts + 1 \
         FROM due WHERE o.id = due.id \
         RETURNING o.id, o.organization_id, o.kind, o.recipient, o.user_id, o.batch_id, o.batch_position, \
           o.invitation_id, o.action_token_id, o.attempts, o.message_id, o.traceparent, due.taken_over",
        sending = delivery::State::Sending.sql(),
    )
});

/// Claims up to `limit` due messages for `worker` until `lease_until`.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    worker: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Claimed>> {
    Ok(Cached(
        diesel::sql_query(CLAIM.as_str())
            .bind::<Timestamptz, _>(now)
            .bind::<Timestamptz, _>(lease_until)
            .bind::<Text, _>(worker)
            .bind::<BigInt, _>(limit),
    )
    .load(conn)
    .await?)
}
