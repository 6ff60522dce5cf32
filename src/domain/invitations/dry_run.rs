//! A bulk send's dry run: the same decisions as a real send, with a preview
//! of the first email, and nothing written. The recipients are decided
//! twice, a chunk at a time (once for the summary, which comes first, once
//! for the results), so memory stays flat however long the list. A request
//! streamed in parts is read once and held, to be read twice.

use std::sync::Arc;

use uuid::Uuid;

use super::{
    events::{self, BatchEvent, Completion, Events, RecipientResult, Reported},
    parts::Parts,
    plan::{Decision, Planned, Planner, Recipients, Summary, summarize},
};
use crate::{
    domain::{
        organizations,
        templates::{self, DEFAULT_LOCALE, Kind, Rendered},
    },
    error::Result,
    lifecycle::email_kind::EmailKind,
    services::Services,
};

/// Reports what sending `kind` to `recipients`, or to the `parts` of a
/// request streamed in parts, would do.
pub async fn dry_run(
    app: &Services,
    organization_id: Uuid,
    recipients: &Recipients,
    parts: Option<Arc<[Recipients]>>,
    kind: EmailKind,
    tx: &Events,
) -> Result<()> {
    let now = app.clock.now();
    let new_planner = || match &parts {
        // Checked as they were read.
        Some(parts) => Planner::in_parts(
            organization_id,
            Parts::replay(parts.clone(), true),
            kind,
            now,
            None,
        ),
        None => Planner::new(organization_id, recipients, kind, now, None),
    };
    let mut conn = app.pool.get().await?;
    let mut summary = Summary::default();
    let mut first = None;
    let mut planner = new_planner();
    while let Some(chunk) = planner.next_chunk(&mut conn).await? {
        summary += summarize(&chunk);
        if first.is_none() {
            first = chunk
                .into_iter()
                .find(|p| matches!(p.decision, Decision::Send { .. }));
        }
    }
    let summary = BatchEvent::Summary {
        batch_id: None,
        summary,
        replayed: false,
    };
    if !events::report(tx, summary).await {
        return Ok(());
    }
    if let Some(first) = &first {
        let email = preview(app, &mut conn, organization_id, kind, first).await?;
        let to = first.email.clone();
        if !events::report(tx, BatchEvent::Preview { to, email }).await {
            return Ok(());
        }
    }
    let mut completion = Completion::default();
    let mut index = 0;
    let mut planner = new_planner();
    while let Some(chunk) = planner.next_chunk(&mut conn).await? {
        for p in chunk {
            let result = would_be(p, index);
            completion.count(result.reported, 1);
            index += 1;
            if !events::report(tx, BatchEvent::Result(result)).await {
                return Ok(());
            }
        }
    }
    events::report(tx, BatchEvent::Completion(completion)).await;
    Ok(())
}

/// One email as the first recipient to be sent would receive it.
async fn preview(
    app: &Services,
    conn: &mut diesel_async::AsyncPgConnection,
    organization_id: Uuid,
    kind: Kind,
    first: &Planned,
) -> Result<Rendered> {
    let organization = organizations::find(conn, organization_id).await?.organization;
    let template = templates::load(conn, organization_id, kind, DEFAULT_LOCALE).await?;
    let mut vars = templates::sample_vars(kind, &organization.name);
    // The organisation's real sign-in page, not a sample one.
    vars.insert("sign_in_url", app.config.links.sign_in_for(organization_id));
    let (first_name, last_name) = first.name.split_once(' ').unwrap_or((first.name.as_str(), ""));
    let expires = app.clock.now() + chrono::TimeDelta::seconds(i64::from(organization.invitation_ttl_secs));
    for (key, value) in templates::person_vars(
        &organization.name,
        first_name,
        last_name,
        &first.email,
        &first.email,
        expires,
    ) {
        vars.insert(key, value);
    }
    Ok(templates::render(&template, &vars))
}

/// The result a recipient would get.
fn would_be(p: Planned, index: i32) -> RecipientResult {
    let reported = p.decision.outcome().map_or(Reported::WouldSend, Reported::Final);
    let (user_id, invitation_id) = match &p.decision {
        Decision::Send { user_id } => (*user_id, None),
        Decision::AlreadyMember { user_id } => (Some(*user_id), None),
        Decision::AlreadyInvited {
            user_id,
            invitation_id,
        } => (Some(*user_id), Some(*invitation_id)),
        Decision::InvalidAddress(_) | Decision::DuplicateInRequest => (None, None),
    };
    RecipientResult {
        index,
        reason: p.decision.reason(),
        input: p.input,
        email: p.email,
        reported,
        user_id,
        invitation_id,
        time: None,
    }
}
