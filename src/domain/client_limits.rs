//! The per-address limit on public RPCs, counted in memory and shared
//! through PostgreSQL a few times a second.
//!
//! Counting every call with its own upsert put a write, a commit and a wait
//! on one hot row in front of every sign-in. Here a call is decided in
//! memory: the hits every replica had written by the last exchange, plus
//! this replica's hits since. A replica alone holds the limit exactly;
//! replicas together may overshoot by what they take in one interval.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use chrono::{DateTime, TimeDelta, Utc};
use diesel::{
    QueryableByName,
    sql_types::{Array, Int4, Text, Timestamptz},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::{db::Cached, error::Result, services::Services};

/// How often hits are written and the other replicas' read back.
pub const EXCHANGE_EVERY: Duration = Duration::from_millis(100);

/// The window of the public-RPC limit.
pub const WINDOW: TimeDelta = TimeDelta::minutes(1);

#[derive(Default)]
pub struct ClientLimits {
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    window_started_at: DateTime<Utc>,
    /// Hits in this window, on every replica, as of the last exchange.
    shared: i32,
    /// This replica's hits the exchange under way is writing.
    writing: i32,
    /// This replica's hits not yet written.
    pending: i32,
}

#[derive(QueryableByName)]
struct Counted {
    #[diesel(sql_type = Text)]
    bucket: String,
    #[diesel(sql_type = Int4)]
    hits: i32,
    #[diesel(sql_type = Timestamptz)]
    window_started_at: DateTime<Utc>,
}

impl ClientLimits {
    /// Counts a call on `bucket`; answers whether it is within `limit` calls
    /// per `window`.
    pub fn allow(&self, bucket: &str, limit: i32, window: TimeDelta, now: DateTime<Utc>) -> bool {
        let Ok(mut buckets) = self.buckets.lock() else {
            return true; // a poisoned count must not lock everyone out
        };
        let fresh = Bucket {
            window_started_at: now,
            shared: 0,
            writing: 0,
            pending: 0,
        };
        let counted = buckets.entry(bucket.to_owned()).or_insert(fresh);
        if counted.window_started_at <= now - window {
            *counted = Bucket {
                window_started_at: now,
                shared: 0,
                writing: 0,
                pending: 0,
            };
        }
        if counted.shared + counted.writing + counted.pending >= limit {
            return false;
        }
        counted.pending += 1;
        true
    }

    /// Writes this replica's new hits and reads back every replica's, in one
    /// statement; forgets buckets whose window has passed.
    pub async fn exchange(
        &self,
        conn: &mut AsyncPgConnection,
        window: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let taken = self.take(window, now);
        if taken.is_empty() {
            return Ok(());
        }
        let (names, hits): (Vec<String>, Vec<i32>) = taken.iter().cloned().unzip();
        let written = Cached(
            diesel::sql_query(
                "INSERT INTO rate_limits (bucket, window_started_at, hits) \
                 SELECT b, $3, n FROM unnest($1::text[], $2::int4[]) AS v(b, n) \
                 ON CONFLICT (bucket) DO UPDATE SET \
                   hits = CASE WHEN rate_limits.window_started_at <= $4 THEN EXCLUDED.hits \
                     ELSE rate_limits.hits + EXCLUDED.hits END, \
                   window_started_at = CASE WHEN rate_limits.window_started_at <= $4 THEN $3 \
                     ELSE rate_limits.window_started_at END \
                 RETURNING bucket, hits, window_started_at",
            )
            .bind::<Array<Text>, _>(&names)
            .bind::<Array<Int4>, _>(&hits)
            .bind::<Timestamptz, _>(now)
            .bind::<Timestamptz, _>(now - window),
        )
        .load::<Counted>(conn)
        .await;
        match written {
            Ok(counted) => {
                self.settle(counted);
                Ok(())
            }
            Err(e) => {
                self.settle(Vec::new());
                Err(e.into())
            }
        }
    }

    /// Moves every bucket's pending hits to `writing` (they still count
    /// while written) and answers them; forgets buckets whose window passed.
    fn take(&self, window: TimeDelta, now: DateTime<Utc>) -> Vec<(String, i32)> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Vec::new();
        };
        buckets.retain(|_, b| b.pending > 0 || b.window_started_at > now - window);
        buckets
            .iter_mut()
            .filter(|(_, b)| b.pending > 0)
            .map(|(name, b)| {
                b.writing = std::mem::take(&mut b.pending);
                (name.clone(), b.writing)
            })
            .collect()
    }

    /// Takes in what the database counted; hits whose write failed (no row
    /// came back for them) are pending again.
    fn settle(&self, counted: Vec<Counted>) {
        let Ok(mut buckets) = self.buckets.lock() else {
            return;
        };
        for row in counted {
            if let Some(bucket) = buckets.get_mut(&row.bucket) {
                bucket.shared = row.hits;
                bucket.window_started_at = row.window_started_at;
                bucket.writing = 0;
            }
        }
        for bucket in buckets.values_mut() {
            bucket.pending += std::mem::take(&mut bucket.writing);
        }
    }
}

/// Exchanges `limits`' counts until the process ends.
pub async fn run(app: Services, limits: std::sync::Arc<ClientLimits>) {
    let mut every = tokio::time::interval(EXCHANGE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let exchanged = async {
            let mut conn = app.pool.get().await?;
            limits.exchange(&mut conn, WINDOW, app.clock.now()).await
        };
        if let Err(e) = exchanged.await {
            tracing::warn!(error = %e, "sharing rate-limit counts failed; retrying");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_alone_holds_the_limit_exactly_and_a_new_window_starts_afresh() {
        let limits = ClientLimits::default();
        let now = Utc::now();
        let allowed = (0..10)
            .filter(|_| limits.allow("sign-in:1.2.3.4", 3, WINDOW, now))
            .count();
        assert_eq!(allowed, 3);
        assert!(
            limits.allow("sign-in:5.6.7.8", 3, WINDOW, now),
            "buckets are separate"
        );
        assert!(limits.allow("sign-in:1.2.3.4", 3, WINDOW, now + WINDOW));
    }

    #[test]
    fn hits_being_written_still_count_and_a_failed_write_keeps_them() {
        let limits = ClientLimits::default();
        let now = Utc::now();
        let bucket = "reset:1.2.3.4";
        assert!((0..3).all(|_| limits.allow(bucket, 5, WINDOW, now)));
        assert_eq!(limits.take(WINDOW, now), [(bucket.to_owned(), 3)]);
        assert!(limits.allow(bucket, 5, WINDOW, now));
        assert!(limits.allow(bucket, 5, WINDOW, now));
        assert!(
            !limits.allow(bucket, 5, WINDOW, now),
            "three in flight, two pending"
        );
        limits.settle(Vec::new());
        assert_eq!(limits.take(WINDOW, now), [(bucket.to_owned(), 5)]);
        limits.settle(vec![Counted {
            bucket: bucket.to_owned(),
            hits: 5,
            window_started_at: now,
        }]);
        assert!(
            !limits.allow(bucket, 5, WINDOW, now),
            "the database counted all five"
        );
    }
}
