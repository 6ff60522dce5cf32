//! How much the outbox holds, for the metrics: emails waiting by kind and
//! the age of the oldest, read from the database, so every replica reports
//! the whole outbox (aggregate them with `max`, not `sum`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    sql_types::{BigInt, Text, Timestamptz},
};
use diesel_async::RunQueryDsl;

use crate::{
    db::Cached,
    error::Result,
    lifecycle::{delivery, email_kind::EmailKind},
    metrics,
    services::Services,
};

/// How often the figures are read again.
pub const EVERY: Duration = Duration::from_secs(5);

#[derive(QueryableByName)]
struct Waiting {
    #[diesel(sql_type = Text)]
    kind: EmailKind,
    #[diesel(sql_type = BigInt)]
    waiting: i64,
    #[diesel(sql_type = Timestamptz)]
    oldest: DateTime<Utc>,
}

/// Reads the backlog and the pool's connections into the metrics.
async fn measure(state: &Services) -> Result<()> {
    let now = state.clock.now();
    let rows: Vec<Waiting> = {
        let mut conn = state.pool.get().await?;
        Cached(diesel::sql_query(format!(
            "SELECT kind, count(*) AS waiting, min(created_at) AS oldest FROM outbox \
             WHERE {} GROUP BY kind",
            delivery::WAITING_SQL
        )))
        .load(&mut conn)
        .await?
    };
    let m = metrics::get();
    for &kind in EmailKind::ALL {
        let waiting = rows.iter().find(|r| r.kind == kind).map_or(0, |r| r.waiting);
        m.outbox_waiting.record(
            u64::try_from(waiting).unwrap_or(0),
            &[metrics::kv("kind", kind.name())],
        );
    }
    let oldest = rows.iter().map(|r| r.oldest).min();
    let age = oldest.map_or(0.0, |at| (now - at).to_std().unwrap_or_default().as_secs_f64());
    m.outbox_oldest.record(age, &[]);
    let (in_use, idle) = state.pool.connections();
    m.pool_connections
        .record(u64::from(in_use), &[metrics::kv("state", "in_use")]);
    m.pool_connections
        .record(u64::from(idle), &[metrics::kv("state", "idle")]);
    Ok(())
}

/// Measures every `EVERY` until the task is dropped.
pub async fn run(state: Services) {
    loop {
        if let Err(e) = measure(&state).await {
            tracing::warn!(error = %e, "measuring the outbox failed");
        }
        tokio::time::sleep(EVERY).await;
    }
}
