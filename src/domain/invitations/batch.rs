//! Creating a bulk send. Every recipient is decided (`plan`) and the batch,
//! its new users, invitations, outbox messages and final results are
//! written in one transaction before anything is sent.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    sql_types::{Array, Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use super::{
    parts::Parts,
    plan::{Decision, Planned, Planner, Recipients, Summary, summarize},
};
use crate::{
    db::insert,
    domain::audit::{self, Actor},
    domain::outbox,
    error::{Error, Result},
    lifecycle::{
        email_kind::EmailKind,
        invitation,
        outcome::Outcome,
        user::{self, Stage},
    },
    notify,
};

/// A bulk send to write.
pub struct NewBatch<'a> {
    pub organization_id: Uuid,
    pub kind: EmailKind,
    pub recipients: &'a Recipients,
    /// The access invited people get.
    pub grant: Option<(Uuid, Uuid)>,
    pub idempotency_key: Option<String>,
    /// The domain of Message-IDs.
    pub message_domain: &'a str,
}

/// What `create` did.
pub enum Created {
    New {
        batch_id: Uuid,
        summary: Summary,
        /// Recipients whose result was final at once, by outcome.
        settled: HashMap<Outcome, u64>,
        /// Emails queued.
        sends: i32,
    },
    /// A batch with the same idempotency key exists: nothing was written.
    Replay { batch_id: Uuid },
}

/// Finds the batch an idempotency key created.
pub async fn find_by_key(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    kind: EmailKind,
    key: &str,
) -> Result<Option<Uuid>> {
    use crate::db::schema::batches;
    use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
    Ok(batches::table
        .filter(batches::organization_id.eq(organization_id))
        .filter(batches::kind.eq(kind.name()))
        .filter(batches::idempotency_key.eq(key))
        .select(batches::id)
        .first(conn)
        .await
        .optional()?)
}

/// Splits a display name into first and last names: "Grace Hopper" and
/// "Hopper, Grace" both give ("Grace", "Hopper").
fn names(display: &str) -> (String, String) {
    let display = display.trim();
    if let Some((last, first)) = display.split_once(',') {
        return (first.trim().to_owned(), last.trim().to_owned());
    }
    match display.rsplit_once(' ') {
        Some((first, last)) => (first.trim().to_owned(), last.trim().to_owned()),
        None => (display.to_owned(), String::new()),
    }
}

/// Creates the batch of `batch`, or of the `parts` that hold its
/// recipients instead.
pub async fn create(
    conn: &mut AsyncPgConnection,
    batch: NewBatch<'_>,
    mut parts: Option<Parts>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Created> {
    if let Some(key) = &batch.idempotency_key {
        if let Some(batch_id) = find_by_key(conn, batch.organization_id, batch.kind, key).await? {
            return Ok(Created::Replay { batch_id });
        }
    }
    let result = conn
        .transaction(async |conn| write(conn, &batch, parts.take(), actor, now).await)
        .await;
    match (result, &batch.idempotency_key) {
        // The same key, sent twice at once: the other request won.
        (Err(Error::AlreadyExists { .. }), Some(key)) => {
            match find_by_key(conn, batch.organization_id, batch.kind, key).await? {
                Some(batch_id) => Ok(Created::Replay { batch_id }),
                None => Err(Error::Unavailable(
                    "a conflicting request is in progress; try again".into(),
                )),
            }
        }
        (result, _) => {
            if let Ok(Created::New { settled, sends, .. }) = &result {
                count_started(batch.kind, settled, *sends);
            }
            result
        }
    }
}

/// Counts a batch that committed, and the results it settled at once.
fn count_started(kind: EmailKind, settled: &HashMap<Outcome, u64>, sends: i32) {
    let metrics = crate::metrics::get();
    let kind = crate::metrics::kv("kind", kind.name());
    metrics.batches_started.add(1, std::slice::from_ref(&kind));
    for (outcome, n) in settled {
        metrics
            .batch_recipients
            .add(*n, &[kind.clone(), crate::metrics::kv("outcome", outcome.name())]);
    }
    if sends == 0 {
        metrics.batches_finished.add(1, &[kind]);
    }
}

/// Writes the batch chunk by chunk; its counts are set once all are known.
/// Call inside a transaction: workers see none of it until it commits.
#[tracing::instrument(name = "db.batch.write", skip_all, fields(batch.kind = batch.kind.name()))]
async fn write(
    conn: &mut AsyncPgConnection,
    batch: &NewBatch<'_>,
    parts: Option<Parts>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Created> {
    let org = batch.organization_id;
    let batch_id = Uuid::now_v7();
    diesel::sql_query(
        "INSERT INTO batches (id, organization_id, kind, actor, idempotency_key, total, recognized, invalid, \
           duplicates, outstanding, created_at) VALUES ($1, $2, $3, $4, $5, 0, 0, 0, 0, 0, $6)",
    )
    .bind::<SqlUuid, _>(batch_id)
    .bind::<SqlUuid, _>(org)
    .bind::<Text, _>(batch.kind.name())
    .bind::<Text, _>(&actor.name)
    .bind::<Nullable<Text>, _>(batch.idempotency_key.as_deref())
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await
    .map_err(|e| match Error::from(e) {
        Error::AlreadyExists { .. } => Error::AlreadyExists {
            message: "a batch with this idempotency key exists".into(),
            field: Some("idempotency_key".into()),
        },
        other => other,
    })?;
    let mut planner = match parts {
        Some(parts) => Planner::in_parts(org, parts, batch.kind, now, Some(batch_id)),
        None => Planner::new(org, batch.recipients, batch.kind, now, Some(batch_id)),
    };
    let mut summary = Summary::default();
    let mut settled: HashMap<Outcome, u64> = HashMap::new();
    let mut sends = 0;
    let mut position = 0;
    while let Some(chunk) = planner.next_chunk(conn).await? {
        summary += summarize(&chunk);
        for outcome in chunk.iter().filter_map(|p| p.decision.outcome()) {
            *settled.entry(outcome).or_default() += 1;
        }
        sends += write_chunk(conn, batch, batch_id, &chunk, position, now).await?;
        position += i32::try_from(chunk.len()).unwrap_or(i32::MAX);
    }
    diesel::sql_query(
        "UPDATE batches SET total = $2, recognized = $3, invalid = $4, duplicates = $5, outstanding = $6, \
           completed_at = CASE WHEN $6 = 0 THEN created_at END WHERE id = $1",
    )
    .bind::<SqlUuid, _>(batch_id)
    .bind::<Int4, _>(summary.total)
    .bind::<Int4, _>(summary.recognized)
    .bind::<Int4, _>(summary.invalid)
    .bind::<Int4, _>(summary.duplicates)
    .bind::<Int4, _>(sends)
    .execute(conn)
    .await?;
    audit::record(
        conn,
        actor,
        org,
        &format!("{}.send", batch.kind.name()),
        ("batch", batch_id),
        json!({"total": summary.total, "sending": sends, "invalid": summary.invalid, "duplicates": summary.duplicates}),
        now,
    )
    .await?;
    // Delivered on commit: wakes the outbox workers of every replica.
    notify::tell_workers(conn).await?;
    notify::tell_followers(conn, &[batch_id]).await?;
    Ok(Created::New {
        batch_id,
        summary,
        settled,
        sends,
    })
}

#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = Text)]
    email: String,
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

#[derive(QueryableByName)]
struct Key {
    #[diesel(sql_type = Text)]
    key: String,
}

/// Which of `keys` (lower-case addresses) are a user's email now.
async fn taken_as_email(conn: &mut AsyncPgConnection, org: Uuid, keys: &[String]) -> Result<HashSet<String>> {
    let found: Vec<Key> = diesel::sql_query(
        "SELECT k.key FROM unnest($2::text[]) AS k(key) \
         WHERE EXISTS (SELECT 1 FROM users WHERE organization_id = $1 AND lower(email) = k.key)",
    )
    .bind::<SqlUuid, _>(org)
    .bind::<Array<Text>, _>(keys)
    .load(conn)
    .await?;
    Ok(found.into_iter().map(|k| k.key).collect())
}

/// The people a chunk creates, as columns.
struct NewPeople {
    ids: Vec<Uuid>,
    emails: Vec<String>,
    firsts: Vec<String>,
    lasts: Vec<String>,
}

impl NewPeople {
    /// Inserts them, with `skip` (empty, or `insert::SKIP_TAKEN`) after the
    /// rows; answers who was inserted.
    async fn insert(
        &self,
        conn: &mut AsyncPgConnection,
        org: Uuid,
        now: DateTime<Utc>,
        skip: &str,
    ) -> diesel::QueryResult<Vec<Inserted>> {
        diesel::sql_query(format!(
            "INSERT INTO users (id, organization_id, email, username, first_name, last_name, lifecycle, \
               created_at, updated_at) \
             SELECT v.id, $2, v.email, v.email, v.first_name, v.last_name, $7, $3, $3 \
             FROM unnest($1::uuid[], $4::text[], $5::text[], $6::text[]) AS v(id, email, first_name, last_name) \
             {skip} RETURNING lower(email) AS email, id"
        ))
        .bind::<Array<SqlUuid>, _>(&self.ids)
        .bind::<SqlUuid, _>(org)
        .bind::<Timestamptz, _>(now)
        .bind::<Array<Text>, _>(&self.emails)
        .bind::<Array<Text>, _>(&self.firsts)
        .bind::<Array<Text>, _>(&self.lasts)
        .bind::<Text, _>(Stage::Pending)
        .load(conn)
        .await
    }
}

/// Writes one chunk: new people, invitations, outbox messages, and a result
/// row for each recipient not emailed. Answers how many emails it queued.
#[tracing::instrument(name = "db.batch.chunk", skip_all, fields(recipients = plan.len()))]
async fn write_chunk(
    conn: &mut AsyncPgConnection,
    batch: &NewBatch<'_>,
    batch_id: Uuid,
    plan: &[Planned],
    first_position: i32,
    now: DateTime<Utc>,
) -> Result<i32> {
    let org = batch.organization_id;
    // People to create: invited addresses nobody in the organisation has.
    let new_people: Vec<&Planned> = plan
        .iter()
        .filter(|p| matches!(p.decision, Decision::Send { user_id: None }))
        .collect();
    let mut created: HashMap<String, Uuid> = HashMap::new();
    // Addresses turned away because another request created their person
    // since the look-up; the others are another person's username.
    let mut raced: HashSet<String> = HashSet::new();
    if !new_people.is_empty() {
        let (firsts, lasts): (Vec<String>, Vec<String>) = new_people.iter().map(|p| names(&p.name)).unzip();
        let people = NewPeople {
            ids: new_people.iter().map(|_| Uuid::now_v7()).collect(),
            emails: new_people.iter().map(|p| p.email.clone()).collect(),
            firsts,
            lasts,
        };
        // A person another request created since the look-up is skipped.
        insert::try_plain(conn).await?;
        let tried = people.insert(conn, org, now, "").await;
        let inserted = match insert::settle(conn, tried).await? {
            Some(inserted) => inserted,
            None => people.insert(conn, org, now, insert::SKIP_TAKEN).await?,
        };
        created = inserted.into_iter().map(|i| (i.email, i.id)).collect();
        let turned_away: Vec<String> = people
            .emails
            .iter()
            .map(|e| e.to_lowercase())
            .filter(|e| !created.contains_key(e))
            .collect();
        if !turned_away.is_empty() {
            raced = taken_as_email(conn, org, &turned_away).await?;
        }
    }

    // One row per recipient, in input order, with the user, the invitation
    // and whether its result is final already.
    struct Row {
        user_id: Option<Uuid>,
        invitation_id: Option<Uuid>,
        outbox_id: Option<Uuid>,
        outcome: Option<Outcome>,
        reason: String,
    }
    let rows: Vec<Row> = plan
        .iter()
        .map(|p| {
            let (user_id, invitation_id, sends) = match &p.decision {
                Decision::Send { user_id: Some(id) } => (Some(*id), None, true),
                Decision::Send { user_id: None } => match created.get(&p.email.to_lowercase()) {
                    Some(id) => (Some(*id), None, true),
                    // Another request created this person a moment ago.
                    None => (None, None, false),
                },
                Decision::AlreadyMember { user_id } => (Some(*user_id), None, false),
                Decision::AlreadyInvited {
                    user_id,
                    invitation_id,
                } => (Some(*user_id), Some(*invitation_id), false),
                _ => (None, None, false),
            };
            let turned_away = matches!(p.decision, Decision::Send { .. }) && !sends;
            let raced = turned_away && raced.contains(&p.email.to_lowercase());
            let taken_username = turned_away && !raced;
            Row {
                user_id,
                invitation_id: if sends && batch.kind == EmailKind::Invitation {
                    Some(Uuid::now_v7())
                } else {
                    invitation_id
                },
                outbox_id: sends.then(Uuid::now_v7),
                outcome: if raced {
                    Some(Outcome::AlreadyInvited)
                } else if taken_username {
                    Some(Outcome::InvalidAddress)
                } else {
                    p.decision.outcome()
                },
                reason: if raced {
                    "was invited by another request at the same moment".into()
                } else if taken_username {
                    "another user of the organisation has this address as their username".into()
                } else {
                    p.decision.reason()
                },
            }
        })
        .collect();

    let sending: Vec<(usize, &Row)> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.outbox_id.is_some())
        .collect();
    let position = |i: usize| first_position + i32::try_from(i).unwrap_or(i32::MAX);
    let positions: Vec<i32> = sending.iter().map(|(i, _)| position(*i)).collect();
    let user_ids: Vec<Uuid> = sending.iter().filter_map(|(_, r)| r.user_id).collect();
    let emails: Vec<String> = sending.iter().map(|(i, _)| plan[*i].email.clone()).collect();
    if batch.kind == EmailKind::Invitation && !sending.is_empty() {
        let (area, role) = batch.grant.unzip();
        diesel::sql_query(
            "INSERT INTO invitations (id, organization_id, user_id, batch_id, email, service_area_id, role_id, \
               state, created_at) \
             SELECT v.id, $2, v.user_id, $3, v.email, $4, $5, $9, $6 \
             FROM unnest($1::uuid[], $7::uuid[], $8::text[]) AS v(id, user_id, email)",
        )
        .bind::<Array<SqlUuid>, _>(sending.iter().filter_map(|(_, r)| r.invitation_id).collect::<Vec<_>>())
        .bind::<SqlUuid, _>(org)
        .bind::<SqlUuid, _>(batch_id)
        .bind::<Nullable<SqlUuid>, _>(area)
        .bind::<Nullable<SqlUuid>, _>(role)
        .bind::<Timestamptz, _>(now)
        .bind::<Array<SqlUuid>, _>(&user_ids)
        .bind::<Array<Text>, _>(&emails)
        .bind::<Text, _>(invitation::State::Queued)
        .execute(conn)
        .await?;
    }
    if !sending.is_empty() {
        // Contacted: invited, or sent credentials or a link.
        diesel::sql_query(
            "UPDATE users SET lifecycle = $3, updated_at = $2 WHERE id = ANY($1) AND lifecycle = $4",
        )
        .bind::<Array<SqlUuid>, _>(&user_ids)
        .bind::<Timestamptz, _>(now)
        .bind::<Text, _>(Stage::Staged.next(user::Event::Contacted))
        .bind::<Text, _>(Stage::Staged)
        .execute(conn)
        .await?;
        let emails: Vec<outbox::Email<'_>> = sending
            .iter()
            .zip(&emails)
            .zip(&positions)
            .filter_map(|(((i, r), email), position)| {
                let input = &plan[*i].input;
                Some(outbox::Email {
                    organization_id: org,
                    kind: batch.kind,
                    recipient: email,
                    user_id: r.user_id?,
                    invitation_id: r.invitation_id,
                    batch: Some(outbox::Recipient {
                        batch_id,
                        position: *position,
                        input: (input != email).then_some(input.as_str()),
                    }),
                })
            })
            .collect();
        outbox::enqueue(conn, &emails, batch.message_domain, now).await?;
    }

    // The recipients not emailed; an emailed one's email is their row.
    let unsent: Vec<(usize, &Row)> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.outbox_id.is_none())
        .collect();
    if !unsent.is_empty() {
        diesel::sql_query(
            "INSERT INTO batch_items (batch_id, position, input, email, user_id, invitation_id, outcome, reason, \
               finished_at, finished_seq) \
             SELECT $1, v.position, v.input, v.email, v.user_id, v.invitation_id, v.outcome, v.reason, \
               CASE WHEN v.outcome IS NOT NULL THEN $2 END, \
               CASE WHEN v.outcome IS NOT NULL THEN nextval('batch_items_finished_seq') END \
             FROM (SELECT * FROM unnest($3::int4[], $4::text[], $5::text[], $6::uuid[], $7::uuid[], $8::text[], $9::text[]) \
               AS u(position, input, email, user_id, invitation_id, outcome, reason) ORDER BY position) v",
        )
        .bind::<SqlUuid, _>(batch_id)
        .bind::<Timestamptz, _>(now)
        .bind::<Array<Int4>, _>(unsent.iter().map(|(i, _)| position(*i)).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(unsent.iter().map(|(i, _)| plan[*i].input.clone()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(unsent.iter().map(|(i, _)| plan[*i].email.clone()).collect::<Vec<_>>())
        .bind::<Array<Nullable<SqlUuid>>, _>(unsent.iter().map(|(_, r)| r.user_id).collect::<Vec<_>>())
        .bind::<Array<Nullable<SqlUuid>>, _>(unsent.iter().map(|(_, r)| r.invitation_id).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(unsent.iter().map(|(_, r)| r.outcome).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(unsent.iter().map(|(_, r)| r.reason.clone()).collect::<Vec<_>>())
        .execute(conn)
        .await?;
    }

    Ok(i32::try_from(sending.len()).unwrap_or(i32::MAX))
}

#[cfg(test)]
mod tests {
    use super::names;

    #[test]
    fn display_names_become_first_and_last_names() {
        assert_eq!(names("Grace Hopper"), ("Grace".into(), "Hopper".into()));
        assert_eq!(names("Hopper, Grace"), ("Grace".into(), "Hopper".into()));
        assert_eq!(names("Cher"), ("Cher".into(), String::new()));
        assert_eq!(names(""), (String::new(), String::new()));
    }
}
