//! Recording what the SMTP server said, for every answer gathered since the
//! last record, in one transaction: the outbox rows, their invitations, the
//! batch results and the batch counts, then a notification to every follower
//! of the batches.

use crate::db::Cached;
use chrono::{DateTime, TimeDelta, Utc};
use diesel::{
    QueryableByName,
    sql_types::{Array, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use std::sync::LazyLock;

use super::claim::Claimed;
use crate::{
    domain::outbox::{BatchItemResult, finish_batch_items},
    error::{Error, Result},
    lifecycle::{
        delivery::{self, State},
        email_kind::EmailKind,
        invitation,
        outcome::Outcome as Final,
    },
};

/// How one message ended this attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Refused for good, or not sendable at all.
    Failed(String),
    /// Worth another try later.
    Retry(String),
    /// Not sent: no connection came free while the lease had time left.
    /// Due again at once.
    Unsent,
}

/// One email's outcome, and the worker that holds its lease.
#[derive(Clone, Debug)]
pub struct Answer {
    pub message: Claimed,
    pub outcome: Outcome,
    pub worker: std::sync::Arc<str>,
}

/// When to try again after `attempts` tries: doubling from `base`, at most an
/// hour.
pub fn next_attempt(now: DateTime<Utc>, attempts: i32, base: TimeDelta) -> DateTime<Utc> {
    let exponent = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(16);
    let delay = base.checked_mul(1 << exponent).unwrap_or(TimeDelta::hours(1));
    now + delay.min(TimeDelta::hours(1))
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

pub struct Policy {
    pub max_attempts: i32,
    pub retry_base: TimeDelta,
}

/// Records a try's outcome on the rows this worker still holds (one whose
/// lease ran out belongs to whoever claimed it next).
static RECORD_DELIVERIES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE outbox o SET state = v.state, last_error = v.error, lease_until = NULL, leased_by = NULL, \
           sent_at = CASE WHEN v.state = {sent} THEN $2 ELSE o.sent_at END, \
           next_attempt_at = CASE WHEN v.state = {queued} THEN v.next ELSE o.next_attempt_at END \
         FROM unnest($1::uuid[], $4::text[], $5::text[], $6::timestamptz[], $3::text[]) AS v(id, state, error, next, worker) \
         WHERE o.id = v.id AND o.state = {sending} AND o.leased_by = v.worker \
         RETURNING o.id",
        sent = State::Sent.sql(),
        queued = State::Queued.sql(),
        sending = State::Sending.sql(),
    )
});

/// An invitation whose email was accepted is sent; one refused for good,
/// failed (the invitation lifecycle's `Sent` and `Failed` events).
static RECORD_INVITATIONS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE invitations i SET \
           state = CASE WHEN v.sent THEN {sent} ELSE {failed} END, \
           sent_at = CASE WHEN v.sent THEN $2 ELSE i.sent_at END, \
           send_count = i.send_count + CASE WHEN v.sent THEN 1 ELSE 0 END, last_error = v.error \
         FROM unnest($1::uuid[], $3::bool[], $4::text[]) AS v(id, sent, error) \
         WHERE i.id = v.id AND i.state IN {from}",
        sent = invitation::State::Sent.sql(),
        failed = invitation::State::Failed.sql(),
        from = invitation::accepting_sql(invitation::Event::Sent),
    )
});

/// Records the outcomes; answers the kinds of the batches they completed.
pub async fn record(
    conn: &mut AsyncPgConnection,
    answers: &[Answer],
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Vec<EmailKind>> {
    // A transient failure on the last allowed attempt is final.
    let results: Vec<(&Claimed, Outcome)> = answers
        .iter()
        .map(|a| match &a.outcome {
            Outcome::Retry(why) if a.message.attempts >= policy.max_attempts => (
                &a.message,
                Outcome::Failed(format!("gave up after {} attempts: {why}", a.message.attempts)),
            ),
            other => (&a.message, other.clone()),
        })
        .collect();
    let workers: Vec<&str> = answers.iter().map(|a| &*a.worker).collect();
    conn.transaction(async |conn| {
        let ids: Vec<Uuid> = results.iter().map(|(c, _)| c.id).collect();
        let states: Vec<State> = results
            .iter()
            .map(|(_, o)| {
                let event = match o {
                    Outcome::Sent => delivery::Event::Sent,
                    Outcome::Failed(_) => delivery::Event::Failed,
                    Outcome::Retry(_) | Outcome::Unsent => delivery::Event::Deferred,
                };
                State::Sending.next(event).unwrap_or(State::Failed)
            })
            .collect();
        let errors: Vec<String> = results
            .iter()
            .map(|(_, o)| match o {
                Outcome::Sent | Outcome::Unsent => String::new(),
                Outcome::Failed(why) | Outcome::Retry(why) => why.clone(),
            })
            .collect();
        let next: Vec<DateTime<Utc>> = results
            .iter()
            .map(|(c, o)| match o {
                Outcome::Unsent => now,
                _ => next_attempt(now, c.attempts, policy.retry_base),
            })
            .collect();
        // Only messages this worker still holds: one whose lease ran out
        // belongs to whoever claimed it next.
        let recorded: Vec<Id> = Cached(
            diesel::sql_query(RECORD_DELIVERIES.as_str())
                .bind::<Array<SqlUuid>, _>(&ids)
                .bind::<Timestamptz, _>(now)
                .bind::<Array<Text>, _>(&workers)
                .bind::<Array<Text>, _>(&states)
                .bind::<Array<Text>, _>(&errors)
                .bind::<Array<Timestamptz>, _>(&next),
        )
        .load(conn)
        .await?;
        let held: std::collections::HashSet<Uuid> = recorded.into_iter().map(|r| r.id).collect();
        let finals: Vec<(&Claimed, &Outcome)> = results
            .iter()
            .filter(|(c, o)| held.contains(&c.id) && matches!(o, Outcome::Sent | Outcome::Failed(_)))
            .map(|(c, o)| (*c, o))
            .collect();
        if finals.is_empty() {
            return Ok::<_, Error>(Vec::new());
        }
        let sent = |o: &Outcome| matches!(o, Outcome::Sent);
        let reason = |o: &Outcome| match o {
            Outcome::Failed(why) => why.clone(),
            _ => String::new(),
        };
        Cached(
            diesel::sql_query(RECORD_INVITATIONS.as_str())
                .bind::<Array<SqlUuid>, _>(
                    finals
                        .iter()
                        .filter_map(|(c, _)| c.invitation_id)
                        .collect::<Vec<_>>(),
                )
                .bind::<Timestamptz, _>(now)
                .bind::<Array<diesel::sql_types::Bool>, _>(
                    finals
                        .iter()
                        .filter(|(c, _)| c.invitation_id.is_some())
                        .map(|(_, o)| sent(o))
                        .collect::<Vec<_>>(),
                )
                .bind::<Array<Text>, _>(
                    finals
                        .iter()
                        .filter(|(c, _)| c.invitation_id.is_some())
                        .map(|(_, o)| reason(o))
                        .collect::<Vec<_>>(),
                ),
        )
        .execute(conn)
        .await?;
        let in_batches: Vec<&(&Claimed, &Outcome)> = finals
            .iter()
            .filter(|(c, _)| c.batch_id.is_some() && c.batch_position.is_some())
            .collect();
        if in_batches.is_empty() {
            return Ok(Vec::new());
        }
        let items: Vec<BatchItemResult> = in_batches
            .iter()
            .filter_map(|(c, o)| {
                Some(BatchItemResult {
                    batch_id: c.batch_id?,
                    position: c.batch_position?,
                    outcome: if sent(o) { Final::Sent } else { Final::Failed },
                    reason: reason(o),
                })
            })
            .collect();
        let touched = finish_batch_items(conn, &items, now).await?;
        Ok(touched
            .into_iter()
            .filter(|b| b.completed)
            .map(|b| b.kind)
            .collect())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_doubling_up_to_an_hour() {
        let now = Utc::now();
        let base = TimeDelta::seconds(5);
        assert_eq!(next_attempt(now, 1, base) - now, TimeDelta::seconds(5));
        assert_eq!(next_attempt(now, 2, base) - now, TimeDelta::seconds(10));
        assert_eq!(next_attempt(now, 4, base) - now, TimeDelta::seconds(40));
        assert_eq!(next_attempt(now, 30, base) - now, TimeDelta::hours(1));
    }
}
