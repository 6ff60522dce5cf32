//! Starting a bulk send: invitations to addresses or users, or credentials
//! or reset links to users. The request is checked (recipients, the access
//! invited people get, the idempotency key), then the batch is created
//! (`batch`) or, for a dry run, handed back to be decided (`dry_run`).

use uuid::Uuid;

use super::{
    batch::{self, Created, NewBatch},
    follow::{self, Batch},
    parse,
    parts::{LaterParts, Parts},
    plan::{MAX_RECIPIENTS, Recipients},
};
use crate::{
    domain::{
        audit::Actor,
        catalog::{self, Catalog},
        validate,
    },
    error::{Error, Result, Violations},
    lifecycle::email_kind::EmailKind,
    services::Services,
};

const MAX_IDEMPOTENCY_KEY: usize = 200;

/// A checked bulk send.
pub struct BulkSend {
    pub organization_id: Uuid,
    pub kind: EmailKind,
    pub recipients: Recipients,
    /// All the recipients instead, when they are streamed in parts.
    pub parts: Option<Parts>,
    /// The service area and role invited people get.
    pub grant: Option<(Uuid, Uuid)>,
    pub idempotency_key: Option<String>,
    pub dry_run: bool,
}

/// Invitations as asked for: the access is given by id, each empty when
/// not given.
pub struct InvitationRequest {
    pub organization_id: Uuid,
    pub recipients: Recipients,
    /// The parts after `recipients`, when they are streamed in parts.
    pub later: Option<LaterParts>,
    pub service_area_id: String,
    pub role_id: String,
    pub idempotency_key: String,
    pub dry_run: bool,
}

/// Checks an invitation request: at least one recipient, and the access
/// new people get, which must exist in the organisation's catalogue.
pub async fn invitations(app: &Services, request: InvitationRequest) -> Result<BulkSend> {
    let mut v = Violations::new();
    // The parts of a streamed request are counted as they come.
    if request.recipients.is_empty() && request.later.is_none() {
        v.add(
            "recipients_text",
            "name at least one recipient (recipients_text, emails, user_ids or all_staged)",
        );
    }
    check_count(&mut v, &request.recipients);
    let idempotency_key = idempotency_key(&mut v, &request.idempotency_key);
    let grant = grant(&mut v, &request);
    v.into_result()?;
    if let Some((area, role)) = grant {
        let mut conn = app.pool.get().await?;
        let org = request.organization_id;
        for (catalog, id, field) in [
            (Catalog::ServiceAreas, area, "service_area_id"),
            (Catalog::Roles, role, "role_id"),
        ] {
            if let Err(Error::NotFound(message)) = catalog::require_all(&mut conn, catalog, org, &[id]).await
            {
                return Err(Error::invalid(field, message));
            }
        }
    }
    let (recipients, parts) = match request.later {
        Some(later) => {
            let flags = Recipients {
                all_staged: request.recipients.all_staged,
                ..Recipients::default()
            };
            let parts = Parts::new(request.recipients, later, grant.is_some());
            (flags, Some(parts))
        }
        None => (request.recipients, None),
    };
    Ok(BulkSend {
        organization_id: request.organization_id,
        kind: EmailKind::Invitation,
        recipients,
        parts,
        grant,
        idempotency_key,
        dry_run: request.dry_run,
    })
}

/// The access invited people get: required when new people are invited,
/// and the service area and role come together.
fn grant(v: &mut Violations, request: &InvitationRequest) -> Option<(Uuid, Uuid)> {
    let (area_raw, role_raw) = (request.service_area_id.trim(), request.role_id.trim());
    let area = (!area_raw.is_empty())
        .then(|| v.check("service_area_id", validate::id(area_raw)))
        .flatten();
    let role = (!role_raw.is_empty())
        .then(|| v.check("role_id", validate::id(role_raw)))
        .flatten();
    if request.recipients.has_addresses() {
        if area_raw.is_empty() {
            v.add(
                "service_area_id",
                "is required to invite new people: the service area they will join",
            );
        }
        if role_raw.is_empty() {
            v.add(
                "role_id",
                "is required to invite new people: the role they will hold",
            );
        }
    }
    if area.is_some() != role.is_some() && v.is_empty() {
        let missing = if area.is_some() {
            "role_id"
        } else {
            "service_area_id"
        };
        v.add(missing, "is required with the other");
    }
    area.zip(role)
}

/// Checks a send of `kind` to existing users.
pub fn to_users(
    organization_id: Uuid,
    kind: EmailKind,
    recipients: Recipients,
    idempotency_key: &str,
    dry_run: bool,
) -> Result<BulkSend> {
    if recipients.is_empty() {
        return Err(Error::invalid(
            "user_ids",
            "name at least one user, or set all_staged",
        ));
    }
    let mut v = Violations::new();
    check_count(&mut v, &recipients);
    let idempotency_key = self::idempotency_key(&mut v, idempotency_key);
    v.into_result()?;
    Ok(BulkSend {
        organization_id,
        kind,
        recipients,
        parts: None,
        grant: None,
        idempotency_key,
        dry_run,
    })
}

fn check_count(v: &mut Violations, recipients: &Recipients) {
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
}

fn idempotency_key(v: &mut Violations, raw: &str) -> Option<String> {
    let key = raw.trim();
    if key.chars().count() > MAX_IDEMPOTENCY_KEY {
        v.add(
            "idempotency_key",
            format!("is longer than {MAX_IDEMPOTENCY_KEY} characters"),
        );
    }
    (!key.is_empty()).then(|| key.to_owned())
}

/// Creates the batch of a send that is not a dry run; answers it, and
/// whether it existed already under the same idempotency key.
pub async fn start(app: &Services, mut send: BulkSend, actor: &Actor) -> Result<(Batch, bool)> {
    let now = app.clock.now();
    let mut conn = app.pool.get().await?;
    let new = NewBatch {
        organization_id: send.organization_id,
        kind: send.kind,
        recipients: &send.recipients,
        grant: send.grant,
        idempotency_key: send.idempotency_key.clone(),
        message_domain: &app.message_domain,
    };
    let (batch_id, replayed) = match batch::create(&mut conn, new, send.parts.take(), actor, now).await? {
        Created::New { batch_id, .. } => (batch_id, false),
        Created::Replay { batch_id } => (batch_id, true),
    };
    tracing::info!(batch.id = %batch_id, replayed, kind = send.kind.name(), "bulk send queued");
    let batch = follow::batch(&mut conn, send.organization_id, batch_id).await?;
    Ok((batch, replayed))
}
