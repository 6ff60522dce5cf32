//! Recording what the SMTP server said, for every answer gathered since the
//! last record, in one statement and so one round trip with its commit: the
//! batches locked, the outbox rows, their invitations, the batch results and
//! the batch counts, and a notification to every follower of the batches.

use crate::db::Cached;
use chrono::{DateTime, TimeDelta, Utc};
use diesel::sql_types::{Array, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use std::sync::LazyLock;

use super::claim::Claimed;
use crate::{
    domain::outbox::{LOCKED_FIRST, Touched, count_off_batches, lock_batches},
    error::Result,
    lifecycle::{
        delivery::{self, State},
        email_kind::EmailKind,
        invitation,
    },
    notify::BATCH_CHANNEL,
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

pub struct Policy {
    pub max_attempts: i32,
    pub retry_base: TimeDelta,
}

/// Records each try's outcome in one statement: the outbox rows this worker
/// still holds (one whose lease ran out belongs to whoever claimed it next),
/// then, for those whose outcome is final, their invitations (the
/// invitation lifecycle's `Sent` and `Failed` events), the batches' counts,
/// and a notification to each batch's followers.
///
/// A batch recipient's result is numbered on the email itself: settling
/// rewrites every index of the outbox anyway (it leaves the due index), so
/// the number costs no further row version or index entry. The batches of
/// the results made final (`$8`) are locked before any number is drawn
/// (`lock_batches`), within the statement, so that its implicit transaction
/// commits in the same round trip.
static RECORD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH {locked}, \
         recorded AS ( \
           UPDATE outbox o SET state = v.state, last_error = v.error, lease_until = NULL, leased_by = NULL, \
             sent_at = CASE WHEN v.state = {sent} THEN $2 ELSE o.sent_at END, \
             next_attempt_at = v.next, \
             finished_at = CASE WHEN {numbered} THEN $2 END, \
             finished_seq = CASE WHEN {numbered} THEN nextval('batch_items_finished_seq') END \
           FROM unnest($1::uuid[], $4::text[], $5::text[], $6::timestamptz[], $3::text[]) \
             AS v(id, state, error, next, worker) \
           WHERE o.id = v.id AND o.state = {sending} AND o.leased_by = v.worker AND {LOCKED_FIRST} \
           RETURNING o.invitation_id, o.batch_id, o.state, o.last_error, o.finished_seq), \
         settled AS (SELECT * FROM recorded WHERE state IN ({sent}, {failed})), \
         invited AS ( \
           UPDATE invitations i SET \
             state = CASE WHEN f.state = {sent} THEN {invitation_sent} ELSE {invitation_failed} END, \
             sent_at = CASE WHEN f.state = {sent} THEN $2 ELSE i.sent_at END, \
             send_count = i.send_count + CASE WHEN f.state = {sent} THEN 1 ELSE 0 END, \
             last_error = f.last_error \
           FROM settled f WHERE i.id = f.invitation_id AND i.state IN {invitation_from}), \
         done AS (SELECT batch_id FROM recorded WHERE finished_seq IS NOT NULL), \
         {count_off} \
         SELECT t.id, t.kind, t.completed FROM touched t CROSS JOIN LATERAL pg_notify($7, t.id::text)",
        numbered = format!(
            "v.state IN ({sent}, {failed}) AND o.batch_id IS NOT NULL",
            sent = State::Sent.sql(),
            failed = State::Failed.sql()
        ),
        sent = State::Sent.sql(),
        failed = State::Failed.sql(),
        sending = State::Sending.sql(),
        invitation_sent = invitation::State::Sent.sql(),
        invitation_failed = invitation::State::Failed.sql(),
        invitation_from = invitation::accepting_sql(invitation::Event::Sent),
        locked = lock_batches("$8"),
        count_off = count_off_batches("$2"),
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
    // A settled email has no next try, and so leaves the due index.
    let next: Vec<Option<DateTime<Utc>>> = results
        .iter()
        .zip(&states)
        .map(|((c, o), state)| {
            state.waiting().then(|| match o {
                Outcome::Unsent => now,
                _ => next_attempt(now, c.attempts, policy.retry_base),
            })
        })
        .collect();
    // The batches whose results may become final.
    let batches: Vec<Uuid> = results
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Sent | Outcome::Failed(_)))
        .filter_map(|(c, _)| c.batch_id)
        .collect();
    let touched: Vec<Touched> = Cached(
        diesel::sql_query(RECORD.as_str())
            .bind::<Array<SqlUuid>, _>(&ids)
            .bind::<Timestamptz, _>(now)
            .bind::<Array<Text>, _>(&workers)
            .bind::<Array<Text>, _>(&states)
            .bind::<Array<Text>, _>(&errors)
            .bind::<Array<Nullable<Timestamptz>>, _>(&next)
            .bind::<Text, _>(BATCH_CHANNEL)
            .bind::<Array<SqlUuid>, _>(&batches),
    )
    .load(conn)
    .await?;
    Ok(touched
        .into_iter()
        .filter(|b| b.completed)
        .map(|b| b.kind)
        .collect())
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
