//! SendInvitations, and the dry run that shares its decisions.

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::lifecycle::email_kind::EmailKind;
use crate::{
    domain::{
        caller::Scope,
        catalog::{self, Catalog},
        invitations::{
            batch::{
                self, Created, Decision, MAX_RECIPIENTS, NewBatch, Planned, Planner, Recipients, Summary,
                summarize,
            },
            parse,
        },
        organizations,
        templates::{self, DEFAULT_LOCALE, Kind},
        validate,
    },
    error::{Error, Violations},
    grpc::{
        actor,
        batches::{self, BatchStream, event},
        caller,
    },
    outbox::compose::person_vars,
    pb::{self, batch_event::Event},
    state::AppState,
};

const MAX_IDEMPOTENCY_KEY: usize = 200;

/// Checks the parts every bulk send has; answers the recipients and key.
pub fn recipients_and_key(
    v: &mut Violations,
    text: String,
    emails: Vec<String>,
    user_ids: Vec<String>,
    all_staged: bool,
    idempotency_key: &str,
) -> (Recipients, Option<String>) {
    let recipients = Recipients {
        text,
        emails,
        user_ids,
        all_staged,
    };
    if recipients.is_empty() {
        v.add(
            "recipients_text",
            "name at least one recipient (recipients_text, emails, user_ids or all_staged)",
        );
    }
    // Counted as parsed: one entry of `emails` may hold many addresses.
    let count = parse::count(&recipients.text)
        + recipients.emails.iter().map(|e| parse::count(e)).sum::<usize>()
        + recipients.user_ids.len();
    if count > MAX_RECIPIENTS {
        v.add(
            "recipients_text",
            format!(
                "holds {count} recipients; one request may hold at most {MAX_RECIPIENTS}: split the list"
            ),
        );
    }
    let key = idempotency_key.trim();
    if key.chars().count() > MAX_IDEMPOTENCY_KEY {
        v.add(
            "idempotency_key",
            format!("is longer than {MAX_IDEMPOTENCY_KEY} characters"),
        );
    }
    (recipients, (!key.is_empty()).then(|| key.to_owned()))
}

/// The domain of Message-IDs: the sender's.
pub fn message_domain(state: &AppState) -> String {
    state.message_domain.to_string()
}

pub async fn send(
    state: &AppState,
    request: Request<pb::SendInvitationsRequest>,
) -> Result<Response<BatchStream>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::InvitationsWrite)?;
    let actor = actor(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let (recipients, idempotency_key) = recipients_and_key(
        &mut v,
        req.recipients_text,
        req.emails,
        req.user_ids,
        req.all_staged,
        &req.idempotency_key,
    );
    let area = (!req.service_area_id.trim().is_empty())
        .then(|| v.check("service_area_id", validate::id(&req.service_area_id)))
        .flatten();
    let role = (!req.role_id.trim().is_empty())
        .then(|| v.check("role_id", validate::id(&req.role_id)))
        .flatten();
    if recipients.has_addresses() {
        if req.service_area_id.trim().is_empty() {
            v.add(
                "service_area_id",
                "is required to invite new people: the service area they will join",
            );
        }
        if req.role_id.trim().is_empty() {
            v.add(
                "role_id",
                "is required to invite new people: the role they will hold",
            );
        }
    }
    if area.is_some() != role.is_some() && v.is_empty() {
        v.add(
            if area.is_some() {
                "role_id"
            } else {
                "service_area_id"
            },
            "is required with the other",
        );
    }
    v.into_result()?;
    let grant = area.zip(role);
    let mut conn = state.pool.get().await.map_err(Error::from)?;
    if let Some((area, role)) = grant {
        for (catalog, id, field) in [
            (Catalog::ServiceAreas, area, "service_area_id"),
            (Catalog::Roles, role, "role_id"),
        ] {
            if let Err(Error::NotFound(message)) = catalog::require_all(&mut conn, catalog, org, &[id]).await
            {
                return Err(Error::invalid(field, message).into());
            }
        }
    }
    let now = state.clock.now();
    if req.dry_run {
        return Ok(Response::new(dry_run(
            state.clone(),
            org,
            recipients,
            EmailKind::Invitation,
            Kind::Invitation,
        )));
    }
    let domain = message_domain(state);
    let created = batch::create(
        &mut conn,
        NewBatch {
            organization_id: org,
            kind: EmailKind::Invitation,
            recipients: &recipients,
            grant,
            idempotency_key,
            message_domain: &domain,
        },
        &actor,
        now,
    )
    .await?;
    let (batch_id, replayed) = match created {
        Created::New { batch_id, .. } => (batch_id, false),
        Created::Replay { batch_id } => (batch_id, true),
    };
    drop(conn);
    tracing::info!(batch.id = %batch_id, replayed, "invitations queued");
    let batch = batches::find(state, org, batch_id).await?;
    Ok(Response::new(batches::follow(state.clone(), batch, replayed)))
}

/// One email as the first recipient to be sent would receive it.
pub async fn preview(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    org: Uuid,
    kind: Kind,
    first: &Planned,
) -> Result<pb::RenderedEmail, Status> {
    let organization = organizations::find(conn, org).await?.organization;
    let template = templates::load(conn, org, kind, DEFAULT_LOCALE).await?;
    let mut vars = templates::sample_vars(kind, &organization.name);
    // The organisation's real sign-in page, not a sample one.
    vars.insert("sign_in_url", state.config.links.sign_in_for(org));
    let (first_name, last_name) = first.name.split_once(' ').unwrap_or((first.name.as_str(), ""));
    let expires = now_plus_secs(state, organization.invitation_ttl_secs);
    for (key, value) in person_vars(
        &organization.name,
        first_name,
        last_name,
        &first.email,
        &first.email,
        expires,
    ) {
        vars.insert(key, value);
    }
    let rendered = templates::render(&template, &vars);
    Ok(pb::RenderedEmail {
        to: first.email.clone(),
        subject: rendered.subject,
        text_body: rendered.text,
        html_body: rendered.html,
    })
}

fn now_plus_secs(state: &AppState, secs: i32) -> chrono::DateTime<chrono::Utc> {
    state.clock.now() + chrono::TimeDelta::seconds(i64::from(secs))
}

/// The stream of a dry run: the same decisions as a real send, nothing
/// written. The recipients are decided twice, a chunk at a time (once for
/// the summary, which comes first, once for the results), so memory stays
/// flat however long the list.
pub fn dry_run(
    state: AppState,
    org: Uuid,
    recipients: Recipients,
    kind: EmailKind,
    email: Kind,
) -> BatchStream {
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    tokio::spawn(async move {
        if let Err(status) = dry_run_events(&state, org, &recipients, kind, email, &tx).await {
            let _ = tx.send(Err(status)).await;
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

async fn dry_run_events(
    state: &AppState,
    org: Uuid,
    recipients: &Recipients,
    kind: EmailKind,
    email: Kind,
    tx: &tokio::sync::mpsc::Sender<Result<pb::BatchEvent, Status>>,
) -> Result<(), Status> {
    let now = state.clock.now();
    let mut conn = state.pool.get().await.map_err(Error::from)?;
    let mut summary = Summary::default();
    let mut first = None;
    let mut planner = Planner::new(org, recipients, kind, now, false);
    while let Some(chunk) = planner.next_chunk(&mut conn).await? {
        summary += summarize(&chunk);
        if first.is_none() {
            first = chunk
                .into_iter()
                .find(|p| matches!(p.decision, Decision::Send { .. }));
        }
    }
    let mut events = vec![event(Event::Summary(pb::BatchSummary {
        batch_id: String::new(),
        total: summary.total,
        recognized: summary.recognized,
        invalid: summary.invalid,
        duplicates: summary.duplicates,
        replayed: false,
        dry_run: true,
    }))];
    if let Some(first) = &first {
        events.push(event(Event::Preview(
            preview(state, &mut conn, org, email, first).await?,
        )));
    }
    for e in events.drain(..) {
        if tx.send(Ok(e)).await.is_err() {
            return Ok(());
        }
    }
    let mut completion = pb::BatchCompletion::default();
    let mut index = 0;
    let mut planner = Planner::new(org, recipients, kind, now, false);
    while let Some(chunk) = planner.next_chunk(&mut conn).await? {
        for p in chunk {
            let result = would_be(p, index, &mut completion);
            index += 1;
            if tx.send(Ok(result)).await.is_err() {
                return Ok(());
            }
        }
    }
    let _ = tx.send(Ok(event(Event::Completion(completion)))).await;
    Ok(())
}

/// The result a recipient would get, counted into `completion`.
fn would_be(p: Planned, index: i32, completion: &mut pb::BatchCompletion) -> pb::BatchEvent {
    let (outcome, user_id, invitation_id) = match &p.decision {
        Decision::Send { user_id } => {
            completion.would_send += 1;
            (pb::RecipientOutcome::WouldSend, *user_id, None)
        }
        Decision::InvalidAddress(_) => {
            completion.invalid += 1;
            (pb::RecipientOutcome::InvalidAddress, None, None)
        }
        Decision::DuplicateInRequest => {
            completion.duplicates += 1;
            (pb::RecipientOutcome::DuplicateInRequest, None, None)
        }
        Decision::AlreadyMember { user_id } => {
            completion.already_member += 1;
            (pb::RecipientOutcome::AlreadyMember, Some(*user_id), None)
        }
        Decision::AlreadyInvited {
            user_id,
            invitation_id,
        } => {
            completion.already_invited += 1;
            (
                pb::RecipientOutcome::AlreadyInvited,
                Some(*user_id),
                Some(*invitation_id),
            )
        }
    };
    event(Event::Result(pb::RecipientResult {
        index,
        reason: p.decision.reason(),
        input: p.input,
        email: p.email,
        outcome: outcome as i32,
        user_id: user_id.map(|u| u.to_string()).unwrap_or_default(),
        invitation_id: invitation_id.map(|i| i.to_string()).unwrap_or_default(),
        time: None,
    }))
}
