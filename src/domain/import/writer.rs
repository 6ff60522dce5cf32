//! Writes one batch of validated import rows in one transaction: one INSERT
//! for new users, one UPDATE for upserts, one for their grants and one for
//! their audit events, each over array parameters. Every row is first
//! inserted as a new person; only the rows an existing user's address or
//! username turned away are looked up and decided. A dry run decides the
//! same outcomes and writes nothing.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    sql_types::{Array, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::rows::ValidRow;
use crate::{
    db::insert,
    domain::audit::Actor,
    error::{Error, FieldViolation, Result},
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowOutcome {
    Created(Uuid),
    Updated(Uuid),
    SkippedExisting(Uuid),
    Refused(Vec<FieldViolation>),
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

#[derive(QueryableByName)]
struct Existing {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    email_key: String,
    #[diesel(sql_type = Text)]
    username_key: String,
}

/// One text column of the rows, for an array parameter.
fn column(rows: &[(&ValidRow, Uuid)], field: impl Fn(&ValidRow) -> &String) -> Vec<String> {
    rows.iter().map(|(row, _)| field(row).clone()).collect()
}

fn refused(field: &str, description: &str) -> RowOutcome {
    RowOutcome::Refused(vec![FieldViolation {
        field: field.into(),
        description: description.into(),
    }])
}

/// Decides each row's outcome against the users that exist now.
fn decide(rows: &[&ValidRow], existing: &[Existing], upsert: bool) -> Vec<RowOutcome> {
    let by_email: HashMap<&str, &Existing> = existing.iter().map(|e| (e.email_key.as_str(), e)).collect();
    let by_username: HashMap<&str, &Existing> =
        existing.iter().map(|e| (e.username_key.as_str(), e)).collect();
    rows.iter()
        .map(|row| {
            let by_email = by_email.get(row.email_key().as_str()).copied();
            let username_owner = by_username.get(row.username_key().as_str()).copied();
            match (by_email, username_owner) {
                (Some(user), Some(owner)) if upsert && owner.id != user.id => {
                    refused("username", "belongs to another user of the organisation")
                }
                (Some(user), _) if upsert => RowOutcome::Updated(user.id),
                (Some(user), _) => RowOutcome::SkippedExisting(user.id),
                (None, Some(_)) => refused("username", "belongs to another user of the organisation"),
                (None, None) => RowOutcome::Created(Uuid::now_v7()),
            }
        })
        .collect()
}

/// The users that hold the address or the username of any of `rows`.
async fn find_existing(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    rows: &[&ValidRow],
) -> Result<Vec<Existing>> {
    let emails: Vec<String> = rows.iter().map(|r| r.email_key()).collect();
    let usernames: Vec<String> = rows.iter().map(|r| r.username_key()).collect();
    // Each key is its own probe of its unique index. Written as `= ANY`
    // over the organisation, the planner scans all of its users once they
    // outnumber the batch, and an import costs the square of its size.
    Ok(diesel::sql_query(
        "SELECT u.id, lower(u.email) AS email_key, lower(u.username) AS username_key \
         FROM unnest($2::text[]) AS k(key), LATERAL (SELECT id, email, username FROM users \
           WHERE organization_id = $1 AND lower(email) = k.key LIMIT 1) u \
         UNION \
         SELECT u.id, lower(u.email), lower(u.username) \
         FROM unnest($3::text[]) AS k(key), LATERAL (SELECT id, email, username FROM users \
           WHERE organization_id = $1 AND lower(username) = k.key LIMIT 1) u",
    )
    .bind::<SqlUuid, _>(organization_id)
    .bind::<Array<Text>, _>(&emails)
    .bind::<Array<Text>, _>(&usernames)
    .load(conn)
    .await?)
}

/// Inserts `rows` as new users, each under its id, except those whose
/// address or username a user already holds; answers the ids inserted.
async fn insert_new(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    rows: &[(&ValidRow, Uuid)],
    now: DateTime<Utc>,
) -> Result<HashSet<Uuid>> {
    if rows.is_empty() {
        return Ok(HashSet::new());
    }
    insert::try_plain(conn).await?;
    let tried = insert_users(conn, organization_id, rows, now, "").await;
    let ids = match insert::settle(conn, tried).await? {
        Some(ids) => ids,
        None => insert_users(conn, organization_id, rows, now, insert::SKIP_TAKEN).await?,
    };
    Ok(ids.into_iter().map(|r| r.id).collect())
}

/// Inserts `rows` as new users, with `skip` (empty, or `insert::SKIP_TAKEN`)
/// after them.
async fn insert_users(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    rows: &[(&ValidRow, Uuid)],
    now: DateTime<Utc>,
    skip: &str,
) -> diesel::QueryResult<Vec<IdRow>> {
    // One statement text per `skip`, with array parameters: PostgreSQL
    // plans it alike whatever the batch size.
    diesel::sql_query(format!(
        "INSERT INTO users (id, organization_id, email, username, first_name, last_name, mobile, \
           created_at, updated_at) \
         SELECT v.id, $2, v.email, v.username, v.first_name, v.last_name, v.mobile, $3, $3 \
         FROM unnest($1::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) \
           AS v(id, email, username, first_name, last_name, mobile) \
         {skip} RETURNING id"
    ))
    .bind::<Array<SqlUuid>, _>(rows.iter().map(|(_, id)| *id).collect::<Vec<_>>())
    .bind::<SqlUuid, _>(organization_id)
    .bind::<Timestamptz, _>(now)
    .bind::<Array<Text>, _>(column(rows, |r| &r.email))
    .bind::<Array<Text>, _>(column(rows, |r| &r.username))
    .bind::<Array<Text>, _>(column(rows, |r| &r.first_name))
    .bind::<Array<Text>, _>(column(rows, |r| &r.last_name))
    .bind::<Array<Text>, _>(column(rows, |r| &r.mobile))
    .load(conn)
    .await
}

pub async fn write_batch(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    rows: &[ValidRow],
    upsert: bool,
    dry_run: bool,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Vec<RowOutcome>> {
    let all: Vec<&ValidRow> = rows.iter().collect();
    if dry_run {
        let existing = find_existing(conn, organization_id, &all).await?;
        return Ok(decide(&all, &existing, upsert));
    }
    conn.transaction(async move |conn| {
        // Most rows of an import are new people. Inserting each checks the
        // unique indexes of its address and username, which is the same
        // probe a look-up would make; so only the rows an existing user
        // turned away are looked up. That user is never one of this
        // import's own: a repeated address or username is refused before
        // its row reaches a batch (`session::claim`).
        let fresh: Vec<(&ValidRow, Uuid)> = rows.iter().map(|row| (row, Uuid::now_v7())).collect();
        let inserted = insert_new(conn, organization_id, &fresh, now).await?;
        let mut outcomes: Vec<RowOutcome> = fresh.iter().map(|(_, id)| RowOutcome::Created(*id)).collect();
        let turned_away: Vec<usize> = (0..fresh.len())
            .filter(|&i| !inserted.contains(&fresh[i].1))
            .collect();
        if !turned_away.is_empty() {
            let rest: Vec<&ValidRow> = turned_away.iter().map(|&i| &rows[i]).collect();
            let existing = find_existing(conn, organization_id, &rest).await?;
            for (&i, outcome) in turned_away.iter().zip(decide(&rest, &existing, upsert)) {
                outcomes[i] = match outcome {
                    // Turned away by a user that is gone again.
                    RowOutcome::Created(_) => refused(
                        "email",
                        "was changed by another request during the import; import the row again",
                    ),
                    decided => decided,
                };
            }
        }

        let updates: Vec<(&ValidRow, Uuid)> = rows
            .iter()
            .zip(&outcomes)
            .filter_map(|(row, o)| match o {
                RowOutcome::Updated(id) => Some((row, *id)),
                _ => None,
            })
            .collect();
        if !updates.is_empty() {
            // Blank cells keep what the user has.
            diesel::sql_query(
                "UPDATE users u SET username = v.username, \
                   first_name = COALESCE(NULLIF(v.first_name, ''), u.first_name), \
                   last_name = COALESCE(NULLIF(v.last_name, ''), u.last_name), \
                   mobile = COALESCE(NULLIF(v.mobile, ''), u.mobile), updated_at = $6 \
                 FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[]) \
                   AS v(id, username, first_name, last_name, mobile) \
                 WHERE u.id = v.id",
            )
            .bind::<Array<SqlUuid>, _>(updates.iter().map(|(_, id)| *id).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(
                updates
                    .iter()
                    .map(|(r, _)| r.username.clone())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(
                updates
                    .iter()
                    .map(|(r, _)| r.first_name.clone())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(
                updates
                    .iter()
                    .map(|(r, _)| r.last_name.clone())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(updates.iter().map(|(r, _)| r.mobile.clone()).collect::<Vec<_>>())
            .bind::<diesel::sql_types::Timestamptz, _>(now)
            .execute(conn)
            .await?;
        }

        let written: Vec<(&ValidRow, Uuid, &str)> = rows
            .iter()
            .zip(&outcomes)
            .filter_map(|(row, outcome)| match outcome {
                RowOutcome::Created(id) => Some((row, *id, "user.create")),
                RowOutcome::Updated(id) => Some((row, *id, "user.update")),
                _ => None,
            })
            .collect();
        let grants: Vec<(Uuid, (Uuid, Uuid))> = written
            .iter()
            .filter_map(|(row, id, _)| row.grant.map(|g| (*id, g)))
            .collect();
        if !grants.is_empty() {
            // A person created here has no grant yet, and a row names one
            // grant: only an updated person's may exist already.
            let skip = if updates.is_empty() {
                ""
            } else {
                insert::SKIP_TAKEN
            };
            diesel::sql_query(format!(
                "INSERT INTO access_grants (user_id, service_area_id, role_id) \
                 SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) {skip}"
            ))
            .bind::<Array<SqlUuid>, _>(grants.iter().map(|(id, _)| *id).collect::<Vec<_>>())
            .bind::<Array<SqlUuid>, _>(grants.iter().map(|(_, (area, _))| *area).collect::<Vec<_>>())
            .bind::<Array<SqlUuid>, _>(grants.iter().map(|(_, (_, role))| *role).collect::<Vec<_>>())
            .execute(conn)
            .await?;
        }
        if !written.is_empty() {
            diesel::sql_query(
                "INSERT INTO audit_events (id, organization_id, actor, action, target_type, target_id, \
                   client_address, details, created_at) \
                 SELECT v.event_id, $2, $3, v.action, 'user', v.user_id::text, $4, \
                   jsonb_build_object('email', v.email, 'username', v.username, 'source', 'import'), $5 \
                 FROM unnest($1::uuid[], $6::uuid[], $7::text[], $8::text[], $9::text[]) \
                   AS v(event_id, user_id, action, email, username)",
            )
            .bind::<Array<SqlUuid>, _>(written.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
            .bind::<SqlUuid, _>(organization_id)
            .bind::<Text, _>(&actor.name)
            .bind::<Text, _>(&actor.client_address)
            .bind::<Timestamptz, _>(now)
            .bind::<Array<SqlUuid>, _>(written.iter().map(|(_, id, _)| *id).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(
                written
                    .iter()
                    .map(|(_, _, a)| (*a).to_owned())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(
                written
                    .iter()
                    .map(|(r, _, _)| r.email.clone())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(
                written
                    .iter()
                    .map(|(r, _, _)| r.username.clone())
                    .collect::<Vec<_>>(),
            )
            .execute(conn)
            .await?;
        }
        Ok::<_, Error>(outcomes)
    })
    .await
}
