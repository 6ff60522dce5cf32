//! Creating a bulk send. Every recipient is decided (invalid, duplicate,
//! already a member, already invited, or to be sent) and the batch, its new
//! users, invitations, outbox messages and final results are written in one
//! transaction before anything is sent. A dry run decides the same and
//! writes nothing.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    sql_types::{Array, Bool, Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use super::parse::{self, Parsed};
use crate::{
    domain::audit::{self, Actor},
    error::{Error, Result},
    lifecycle::email_kind::EmailKind,
    outbox,
};

/// The most recipients one request may hold.
pub const MAX_RECIPIENTS: usize = 100_000;

/// Who a bulk send goes to.
#[derive(Clone, Debug, Default)]
pub struct Recipients {
    /// Pasted text of addresses.
    pub text: String,
    pub emails: Vec<String>,
    /// Existing users, as given (an id that does not parse is reported).
    pub user_ids: Vec<String>,
    /// Every STAGED user of the organisation.
    pub all_staged: bool,
}

impl Recipients {
    pub fn is_empty(&self) -> bool {
        self.text.trim().is_empty() && self.emails.is_empty() && self.user_ids.is_empty() && !self.all_staged
    }

    pub fn has_addresses(&self) -> bool {
        !self.text.trim().is_empty() || !self.emails.is_empty()
    }
}

/// What happens to one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// An email will be sent; `user_id` is `None` for a person to create.
    Send {
        user_id: Option<Uuid>,
    },
    InvalidAddress(String),
    DuplicateInRequest,
    AlreadyMember {
        user_id: Uuid,
    },
    AlreadyInvited {
        user_id: Uuid,
        invitation_id: Uuid,
    },
}

impl Decision {
    /// The stored outcome of a decision that is final at once.
    pub fn outcome(&self) -> Option<&'static str> {
        match self {
            Decision::Send { .. } => None,
            Decision::InvalidAddress(_) => Some("invalid_address"),
            Decision::DuplicateInRequest => Some("duplicate_in_request"),
            Decision::AlreadyMember { .. } => Some("already_member"),
            Decision::AlreadyInvited { .. } => Some("already_invited"),
        }
    }

    pub fn reason(&self) -> String {
        match self {
            Decision::Send { .. } => String::new(),
            Decision::InvalidAddress(why) => why.clone(),
            Decision::DuplicateInRequest => "appears earlier in this request".into(),
            Decision::AlreadyMember { .. } => "already a member of the organisation".into(),
            Decision::AlreadyInvited { .. } => "already has a pending invitation".into(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Planned {
    pub input: String,
    pub email: String,
    pub name: String,
    pub decision: Decision,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub total: i32,
    pub recognized: i32,
    pub invalid: i32,
    pub duplicates: i32,
}

pub fn summarize(plan: &[Planned]) -> Summary {
    let count = |f: &dyn Fn(&Decision) -> bool| {
        i32::try_from(plan.iter().filter(|p| f(&p.decision)).count()).unwrap_or(i32::MAX)
    };
    let invalid = count(&|d| matches!(d, Decision::InvalidAddress(_)));
    let duplicates = count(&|d| matches!(d, Decision::DuplicateInRequest));
    let total = i32::try_from(plan.len()).unwrap_or(i32::MAX);
    Summary {
        total,
        recognized: total - invalid - duplicates,
        invalid,
        duplicates,
    }
}

#[derive(QueryableByName, Debug)]
struct Known {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    email: String,
    #[diesel(sql_type = Text)]
    first_name: String,
    #[diesel(sql_type = Text)]
    lifecycle: String,
    #[diesel(sql_type = Bool)]
    deactivated: bool,
    /// The newest invitation that still works, if any.
    #[diesel(sql_type = Nullable<SqlUuid>)]
    live_invitation: Option<Uuid>,
}

const KNOWN_COLUMNS: &str = "u.id, u.email, u.first_name, u.lifecycle, u.deactivated_at IS NOT NULL AS deactivated, \
    (SELECT i.id FROM invitations i WHERE i.user_id = u.id AND (i.state = 'queued' \
       OR (i.state IN ('sent', 'opened') AND i.expires_at > $2)) \
     ORDER BY i.created_at DESC LIMIT 1) AS live_invitation";

/// Recipients decided per query, and written per statement: memory stays
/// the same however long the list.
pub const CHUNK: usize = 5_000;

enum Source {
    Address(parse::Entry),
    UserId(String, Option<Uuid>),
}

/// Decides the recipients of a request a chunk at a time. When `lock` is
/// set, the users a chunk refers to stay locked until the transaction ends,
/// so two sends cannot both invite one person.
pub struct Planner<'a> {
    organization_id: Uuid,
    kind: EmailKind,
    now: DateTime<Utc>,
    lock: bool,
    sources: Box<dyn Iterator<Item = Source> + Send + 'a>,
    all_staged: bool,
    staged_after: Option<Uuid>,
    staged_done: bool,
    seen_ids: HashSet<Uuid>,
    planned_users: HashSet<Uuid>,
}

impl<'a> Planner<'a> {
    pub fn new(
        organization_id: Uuid,
        recipients: &'a Recipients,
        kind: EmailKind,
        now: DateTime<Utc>,
        lock: bool,
    ) -> Self {
        let addresses = parse::Entries::new(&recipients.text, &recipients.emails).map(Source::Address);
        let ids = recipients
            .user_ids
            .iter()
            .map(|raw| Source::UserId(raw.clone(), Uuid::parse_str(raw.trim()).ok()));
        Planner {
            organization_id,
            kind,
            now,
            lock,
            sources: Box::new(addresses.chain(ids)),
            all_staged: recipients.all_staged,
            staged_after: None,
            staged_done: false,
            seen_ids: HashSet::new(),
            planned_users: HashSet::new(),
        }
    }

    /// The next chunk of decided recipients, in request order; `None` when
    /// every recipient is decided.
    pub async fn next_chunk(&mut self, conn: &mut AsyncPgConnection) -> Result<Option<Vec<Planned>>> {
        let sources: Vec<Source> = self.sources.by_ref().take(CHUNK).collect();
        if !sources.is_empty() {
            return self.plan_sources(conn, sources).await.map(Some);
        }
        while self.all_staged && !self.staged_done {
            let chunk = self.plan_staged(conn).await?;
            if !chunk.is_empty() {
                return Ok(Some(chunk));
            }
        }
        Ok(None)
    }

    fn lock_clause(&self) -> &'static str {
        if self.lock { "FOR UPDATE OF u" } else { "" }
    }

    fn decide(&self, user: &Known) -> Decision {
        let member = user.lifecycle == "active" || user.deactivated;
        match (self.kind, member, user.live_invitation) {
            (EmailKind::Invitation, true, _) => Decision::AlreadyMember { user_id: user.id },
            (EmailKind::Invitation, false, Some(invitation_id)) => Decision::AlreadyInvited {
                user_id: user.id,
                invitation_id,
            },
            _ if user.deactivated => Decision::InvalidAddress("the user is deactivated".into()),
            _ => Decision::Send {
                user_id: Some(user.id),
            },
        }
    }

    async fn plan_sources(
        &mut self,
        conn: &mut AsyncPgConnection,
        sources: Vec<Source>,
    ) -> Result<Vec<Planned>> {
        let emails: Vec<String> = sources
            .iter()
            .filter_map(|s| match s {
                Source::Address(parse::Entry {
                    parsed: Parsed::Address(a),
                    ..
                }) => Some(a.to_lowercase()),
                _ => None,
            })
            .collect();
        let ids: Vec<Uuid> = sources
            .iter()
            .filter_map(|s| match s {
                Source::UserId(_, id) => *id,
                Source::Address(_) => None,
            })
            .collect();
        let known: Vec<Known> = diesel::sql_query(format!(
            "SELECT {KNOWN_COLUMNS} FROM users u WHERE u.organization_id = $1 AND u.id IN ( \
               SELECT id FROM users WHERE organization_id = $1 AND lower(email) = ANY($3) \
               UNION SELECT id FROM users WHERE organization_id = $1 AND id = ANY($4)) \
             ORDER BY u.id {}",
            self.lock_clause()
        ))
        .bind::<SqlUuid, _>(self.organization_id)
        .bind::<Timestamptz, _>(self.now)
        .bind::<Array<Text>, _>(&emails)
        .bind::<Array<SqlUuid>, _>(&ids)
        .load(conn)
        .await?;
        let by_email: HashMap<String, &Known> = known.iter().map(|k| (k.email.to_lowercase(), k)).collect();
        let by_id: HashMap<Uuid, &Known> = known.iter().map(|k| (k.id, k)).collect();
        let mut plan = Vec::with_capacity(sources.len());
        for source in sources {
            plan.push(match source {
                Source::Address(entry) => {
                    let (email, decision) = match entry.parsed {
                        Parsed::Invalid(why) => (String::new(), Decision::InvalidAddress(why)),
                        Parsed::Duplicate(address) => (address, Decision::DuplicateInRequest),
                        Parsed::Address(address) => {
                            let decision = match by_email.get(&address.to_lowercase()) {
                                Some(user) if self.planned_users.insert(user.id) => self.decide(user),
                                Some(_) => Decision::DuplicateInRequest,
                                None if self.kind == EmailKind::Invitation => {
                                    Decision::Send { user_id: None }
                                }
                                None => Decision::InvalidAddress(
                                    "no user of the organisation has this address".into(),
                                ),
                            };
                            (address, decision)
                        }
                    };
                    Planned {
                        input: entry.input,
                        email,
                        name: entry.name,
                        decision,
                    }
                }
                Source::UserId(raw, id) => {
                    let first = id.is_none_or(|id| self.seen_ids.insert(id));
                    let (email, decision) = match (id.and_then(|id| by_id.get(&id)), first) {
                        (Some(user), true) if self.planned_users.insert(user.id) => {
                            (user.email.clone(), self.decide(user))
                        }
                        (Some(user), _) => (user.email.clone(), Decision::DuplicateInRequest),
                        (None, _) if id.is_none() => (
                            String::new(),
                            Decision::InvalidAddress(format!(
                                "{} is not a valid user id",
                                crate::domain::validate::quote(raw.trim())
                            )),
                        ),
                        (None, _) => (
                            String::new(),
                            Decision::InvalidAddress("no user of the organisation has this id".into()),
                        ),
                    };
                    Planned {
                        input: raw,
                        email,
                        name: String::new(),
                        decision,
                    }
                }
            });
        }
        Ok(plan)
    }

    /// The next page of STAGED users not named explicitly.
    async fn plan_staged(&mut self, conn: &mut AsyncPgConnection) -> Result<Vec<Planned>> {
        let page: Vec<Known> = diesel::sql_query(format!(
            "SELECT {KNOWN_COLUMNS} FROM users u WHERE u.organization_id = $1 AND u.lifecycle = 'staged' \
               AND u.deactivated_at IS NULL AND ($3::uuid IS NULL OR u.id > $3) \
             ORDER BY u.id LIMIT $4 {}",
            self.lock_clause()
        ))
        .bind::<SqlUuid, _>(self.organization_id)
        .bind::<Timestamptz, _>(self.now)
        .bind::<Nullable<SqlUuid>, _>(self.staged_after)
        .bind::<diesel::sql_types::BigInt, _>(i64::try_from(CHUNK).unwrap_or(5_000))
        .load(conn)
        .await?;
        self.staged_done = page.len() < CHUNK;
        self.staged_after = page.last().map(|k| k.id).or(self.staged_after);
        let mut plan = Vec::new();
        for user in &page {
            if self.planned_users.insert(user.id) {
                plan.push(Planned {
                    input: user.email.clone(),
                    email: user.email.clone(),
                    name: user.first_name.clone(),
                    decision: self.decide(user),
                });
            }
        }
        Ok(plan)
    }
}

impl std::ops::AddAssign for Summary {
    fn add_assign(&mut self, other: Summary) {
        self.total += other.total;
        self.recognized += other.recognized;
        self.invalid += other.invalid;
        self.duplicates += other.duplicates;
    }
}

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
        settled: HashMap<&'static str, u64>,
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

pub async fn create(
    conn: &mut AsyncPgConnection,
    batch: NewBatch<'_>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Created> {
    if let Some(key) = &batch.idempotency_key {
        if let Some(batch_id) = find_by_key(conn, batch.organization_id, batch.kind, key).await? {
            return Ok(Created::Replay { batch_id });
        }
    }
    let result = conn
        .transaction(async |conn| write(conn, &batch, actor, now).await)
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
fn count_started(kind: EmailKind, settled: &HashMap<&'static str, u64>, sends: i32) {
    let metrics = crate::metrics::get();
    let kind = crate::metrics::kv("kind", kind.name());
    metrics.batches_started.add(1, std::slice::from_ref(&kind));
    for (outcome, n) in settled {
        metrics
            .batch_recipients
            .add(*n, &[kind.clone(), crate::metrics::kv("outcome", *outcome)]);
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
    let mut planner = Planner::new(org, batch.recipients, batch.kind, now, true);
    let mut summary = Summary::default();
    let mut settled: HashMap<&'static str, u64> = HashMap::new();
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
    diesel::sql_query("SELECT pg_notify('onramp_outbox', ''), pg_notify('onramp_batch', $1)")
        .bind::<Text, _>(batch_id.to_string())
        .execute(conn)
        .await?;
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

/// Writes one chunk: new people, invitations, outbox messages and every
/// recipient's result row. Answers how many emails it queued.
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
    if !new_people.is_empty() {
        let (firsts, lasts): (Vec<String>, Vec<String>) = new_people.iter().map(|p| names(&p.name)).unzip();
        let inserted: Vec<Inserted> = diesel::sql_query(
            "INSERT INTO users (id, organization_id, email, username, first_name, last_name, lifecycle, \
               created_at, updated_at) \
             SELECT v.id, $2, v.email, v.email, v.first_name, v.last_name, 'pending', $3, $3 \
             FROM unnest($1::uuid[], $4::text[], $5::text[], $6::text[]) AS v(id, email, first_name, last_name) \
             ON CONFLICT DO NOTHING RETURNING lower(email) AS email, id",
        )
        .bind::<Array<SqlUuid>, _>(new_people.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
        .bind::<SqlUuid, _>(org)
        .bind::<Timestamptz, _>(now)
        .bind::<Array<Text>, _>(new_people.iter().map(|p| p.email.clone()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(firsts)
        .bind::<Array<Text>, _>(lasts)
        .load(conn)
        .await?;
        created = inserted.into_iter().map(|i| (i.email, i.id)).collect();
    }

    // One row per recipient, in input order, with the user, the invitation
    // and whether its result is final already.
    struct Row {
        user_id: Option<Uuid>,
        invitation_id: Option<Uuid>,
        outbox_id: Option<Uuid>,
        outcome: Option<&'static str>,
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
            let raced = matches!(p.decision, Decision::Send { .. }) && !sends;
            Row {
                user_id,
                invitation_id: if sends && batch.kind == EmailKind::Invitation {
                    Some(Uuid::now_v7())
                } else {
                    invitation_id
                },
                outbox_id: sends.then(Uuid::now_v7),
                outcome: if raced {
                    Some("already_invited")
                } else {
                    p.decision.outcome()
                },
                reason: if raced {
                    "was invited by another request at the same moment".into()
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
             SELECT v.id, $2, v.user_id, $3, v.email, $4, $5, 'queued', $6 \
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
        .execute(conn)
        .await?;
    }
    if !sending.is_empty() {
        // Contacted: invited, or sent credentials or a link.
        diesel::sql_query(
            "UPDATE users SET lifecycle = 'pending', updated_at = $2 WHERE id = ANY($1) AND lifecycle = 'staged'",
        )
        .bind::<Array<SqlUuid>, _>(&user_ids)
        .bind::<Timestamptz, _>(now)
        .execute(conn)
        .await?;
        let emails: Vec<outbox::Email<'_>> = sending
            .iter()
            .zip(&emails)
            .zip(&positions)
            .filter_map(|(((_, r), email), position)| {
                Some(outbox::Email {
                    organization_id: org,
                    kind: batch.kind,
                    recipient: email,
                    user_id: r.user_id?,
                    invitation_id: r.invitation_id,
                    batch: Some((batch_id, *position)),
                })
            })
            .collect();
        outbox::enqueue(conn, &emails, batch.message_domain, now).await?;
    }

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
    .bind::<Array<Int4>, _>((0..rows.len()).map(position).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(plan.iter().map(|p| p.input.clone()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(plan.iter().map(|p| p.email.clone()).collect::<Vec<_>>())
    .bind::<Array<Nullable<SqlUuid>>, _>(rows.iter().map(|r| r.user_id).collect::<Vec<_>>())
    .bind::<Array<Nullable<SqlUuid>>, _>(rows.iter().map(|r| r.invitation_id).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.outcome).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.reason.clone()).collect::<Vec<_>>())
    .execute(conn)
    .await?;

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
