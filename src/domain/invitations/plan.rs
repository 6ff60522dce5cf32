//! Deciding a bulk send's recipients, a chunk at a time: each one is
//! invalid, listed twice, already a member, already invited, or to be sent.
//! A send (`batch`) and its dry run (`dry_run`) decide alike.

use std::{
    collections::{HashMap, HashSet},
    sync::LazyLock,
};

use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    sql_types::{Array, Bool, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    parse::{self, Parsed},
    parts::Parts,
};
use crate::{
    error::Result,
    lifecycle::{email_kind::EmailKind, invitation, outcome::Outcome, user::Stage},
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
    pub fn outcome(&self) -> Option<Outcome> {
        match self {
            Decision::Send { .. } => None,
            Decision::InvalidAddress(_) => Some(Outcome::InvalidAddress),
            Decision::DuplicateInRequest => Some(Outcome::DuplicateInRequest),
            Decision::AlreadyMember { .. } => Some(Outcome::AlreadyMember),
            Decision::AlreadyInvited { .. } => Some(Outcome::AlreadyInvited),
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
    lifecycle: Stage,
    #[diesel(sql_type = Bool)]
    deactivated: bool,
    /// The newest invitation that still works, if any.
    #[diesel(sql_type = Nullable<SqlUuid>)]
    live_invitation: Option<Uuid>,
    /// Whether the batch being written invited them, in an earlier chunk.
    #[diesel(sql_type = Bool)]
    in_this_batch: bool,
}

/// A person, the newest invitation they may still answer (inviting them
/// again is refused), and whether the batch being written (`$5`) invited
/// them already.
static KNOWN_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "u.id, u.email, u.first_name, u.lifecycle, u.deactivated_at IS NOT NULL AS deactivated, \
         (SELECT i.id FROM invitations i WHERE i.user_id = u.id AND {} \
          ORDER BY i.created_at DESC LIMIT 1) AS live_invitation, \
         ($5::uuid IS NOT NULL AND EXISTS (SELECT 1 FROM invitations i \
          WHERE i.user_id = u.id AND i.batch_id = $5)) AS in_this_batch",
        invitation::awaited_sql("i.", "$2")
    )
});

static NO_RECIPIENTS: Recipients = Recipients {
    text: String::new(),
    emails: Vec::new(),
    user_ids: Vec::new(),
    all_staged: false,
};

/// Recipients decided per query, and written per statement: memory stays
/// the same however long the list.
pub const CHUNK: usize = 5_000;

enum Source {
    Address(parse::Entry),
    UserId(String, Option<Uuid>),
}

/// Decides the recipients of a request a chunk at a time.
///
/// A send (`writing` its batch) locks the users a chunk refers to until the
/// transaction ends, so two sends cannot both invite one person; and as each
/// chunk is written before the next is decided, an invitation's repeat of
/// an address of an earlier chunk is found by the invitation that chunk
/// wrote, so a long list costs no memory for the addresses it has passed.
/// A dry run, and a send that creates nobody, remember them instead.
pub struct Planner<'a> {
    organization_id: Uuid,
    kind: EmailKind,
    now: DateTime<Utc>,
    writing: Option<Uuid>,
    /// Whether addresses of earlier chunks are remembered; otherwise only
    /// repeats within a chunk are found in memory.
    remember: bool,
    sources: Box<dyn Iterator<Item = Source> + Send + 'a>,
    /// Parts still to come, of a request streamed in parts.
    parts: Option<Parts>,
    /// The addresses of the parts decided so far, when `remember` is set.
    seen_addresses: HashSet<u64>,
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
        writing: Option<Uuid>,
    ) -> Self {
        let remember = writing.is_none() || kind != EmailKind::Invitation;
        let addresses = if remember {
            parse::Entries::new(&recipients.text, &recipients.emails)
        } else {
            parse::Entries::unremembered(&recipients.text, &recipients.emails)
        }
        .map(Source::Address);
        let ids = recipients
            .user_ids
            .iter()
            .map(|raw| Source::UserId(raw.clone(), Uuid::parse_str(raw.trim()).ok()));
        Planner {
            organization_id,
            kind,
            now,
            writing,
            remember,
            sources: Box::new(addresses.chain(ids)),
            parts: None,
            seen_addresses: HashSet::new(),
            all_staged: recipients.all_staged,
            staged_after: None,
            staged_done: false,
            seen_ids: HashSet::new(),
            planned_users: HashSet::new(),
        }
    }

    /// Decides a request streamed in parts, each as it arrives.
    pub fn in_parts(
        organization_id: Uuid,
        parts: Parts,
        kind: EmailKind,
        now: DateTime<Utc>,
        writing: Option<Uuid>,
    ) -> Planner<'static> {
        let mut planner = Planner::new(organization_id, &NO_RECIPIENTS, kind, now, writing);
        planner.all_staged = parts.all_staged();
        planner.parts = Some(parts);
        planner
    }

    /// The next chunk of decided recipients, in request order; `None` when
    /// every recipient is decided.
    pub async fn next_chunk(&mut self, conn: &mut AsyncPgConnection) -> Result<Option<Vec<Planned>>> {
        loop {
            let sources: Vec<Source> = self.sources.by_ref().take(CHUNK).collect();
            if !sources.is_empty() {
                return self.plan_sources(conn, sources).await.map(Some);
            }
            let Some(parts) = self.parts.as_mut() else {
                break;
            };
            match parts.next().await? {
                Some(part) => self.sources = Box::new(self.read_part(&part).into_iter()),
                None => self.parts = None,
            }
        }
        while self.all_staged && !self.staged_done {
            let chunk = self.plan_staged(conn).await?;
            if !chunk.is_empty() {
                return Ok(Some(chunk));
            }
        }
        Ok(None)
    }

    /// The entries of one part, read at once (a part is one message, held
    /// already), after the addresses of the parts before it.
    fn read_part(&mut self, part: &Recipients) -> Vec<Source> {
        let mut sources: Vec<Source> = if self.remember {
            let seen = std::mem::take(&mut self.seen_addresses);
            let mut entries = parse::Entries::after(&part.text, &part.emails, seen);
            let sources = entries.by_ref().map(Source::Address).collect();
            self.seen_addresses = entries.into_seen();
            sources
        } else {
            parse::Entries::unremembered(&part.text, &part.emails)
                .map(Source::Address)
                .collect()
        };
        sources.extend(
            part.user_ids
                .iter()
                .map(|raw| Source::UserId(raw.clone(), Uuid::parse_str(raw.trim()).ok())),
        );
        sources
    }

    fn lock_clause(&self) -> &'static str {
        if self.writing.is_some() {
            "FOR UPDATE OF u"
        } else {
            ""
        }
    }

    fn decide(&self, user: &Known) -> Decision {
        let member = user.lifecycle == Stage::Active || user.deactivated;
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
        mut sources: Vec<Source>,
    ) -> Result<Vec<Planned>> {
        if !self.remember {
            mark_repeats(&mut sources);
        }
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
        // Every address and id is a probe of an index: a plain `= ANY` or
        // `IN` lets the planner scan the whole organisation for each chunk
        // once it outnumbers the chunk. An array from a subquery is taken
        // to be short, so the outer look-up probes too.
        let known: Vec<Known> = diesel::sql_query(format!(
            "SELECT {} FROM users u WHERE u.organization_id = $1 AND u.id = ANY(ARRAY( \
               SELECT f.id FROM unnest($3::text[]) AS k(key), LATERAL (SELECT id FROM users \
                 WHERE organization_id = $1 AND lower(email) = k.key LIMIT 1) f \
               UNION SELECT unnest($4::uuid[]))) \
             ORDER BY u.id {}",
            *KNOWN_COLUMNS,
            self.lock_clause()
        ))
        .bind::<SqlUuid, _>(self.organization_id)
        .bind::<Timestamptz, _>(self.now)
        .bind::<Array<Text>, _>(&emails)
        .bind::<Array<SqlUuid>, _>(&ids)
        .bind::<Nullable<SqlUuid>, _>(self.writing)
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
                                Some(user) if !user.in_this_batch && self.planned_users.insert(user.id) => {
                                    self.decide(user)
                                }
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
                        (Some(user), true) if !user.in_this_batch && self.planned_users.insert(user.id) => {
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
            "SELECT {} FROM users u WHERE u.organization_id = $1 AND u.lifecycle = {} \
               AND u.deactivated_at IS NULL AND ($3::uuid IS NULL OR u.id > $3) \
             ORDER BY u.id LIMIT $4 {}",
            *KNOWN_COLUMNS,
            Stage::Staged.sql(),
            self.lock_clause()
        ))
        .bind::<SqlUuid, _>(self.organization_id)
        .bind::<Timestamptz, _>(self.now)
        .bind::<Nullable<SqlUuid>, _>(self.staged_after)
        .bind::<diesel::sql_types::BigInt, _>(i64::try_from(CHUNK).unwrap_or(5_000))
        .bind::<Nullable<SqlUuid>, _>(self.writing)
        .load(conn)
        .await?;
        self.staged_done = page.len() < CHUNK;
        self.staged_after = page.last().map(|k| k.id).or(self.staged_after);
        let mut plan = Vec::new();
        for user in &page {
            if !user.in_this_batch && self.planned_users.insert(user.id) {
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

/// Marks the second and later entries of an address within one chunk as
/// repeats, for a planner that does not remember the addresses it passed.
fn mark_repeats(sources: &mut [Source]) {
    let mut seen = HashSet::with_capacity(sources.len());
    for source in sources {
        let Source::Address(entry) = source else { continue };
        if let Parsed::Address(address) = &mut entry.parsed {
            if !seen.insert(parse::address_hash(address)) {
                let address = std::mem::take(address);
                entry.parsed = Parsed::Duplicate(address);
            }
        }
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
