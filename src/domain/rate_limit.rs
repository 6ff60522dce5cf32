//! Fixed-window rate limits kept in PostgreSQL, so every replica counts the
//! same hits.

use crate::db::Cached;
use chrono::{DateTime, TimeDelta, Utc};
use diesel::{
    QueryableByName,
    sql_types::{Int4, Text, Timestamptz},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::Result;

#[derive(QueryableByName)]
struct Hits {
    #[diesel(sql_type = Int4)]
    hits: i32,
}

/// Counts a hit on `bucket`; answers whether it is within `limit` hits per
/// `window`.
pub async fn allow(
    conn: &mut AsyncPgConnection,
    bucket: &str,
    limit: i32,
    window: TimeDelta,
    now: DateTime<Utc>,
) -> Result<bool> {
    let counted: Hits = Cached(
        diesel::sql_query(
            "INSERT INTO rate_limits (bucket, window_started_at, hits) VALUES ($1, $2, 1) \
         ON CONFLICT (bucket) DO UPDATE SET \
           hits = CASE WHEN rate_limits.window_started_at <= $3 THEN 1 ELSE rate_limits.hits + 1 END, \
           window_started_at = CASE WHEN rate_limits.window_started_at <= $3 THEN $2 \
             ELSE rate_limits.window_started_at END \
         RETURNING hits",
        )
        .bind::<Text, _>(bucket)
        .bind::<Timestamptz, _>(now)
        .bind::<Timestamptz, _>(now - window),
    )
    .get_result(conn)
    .await?;
    Ok(counted.hits <= limit)
}
