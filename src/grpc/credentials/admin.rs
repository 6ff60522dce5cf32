//! The admin RPCs: SetPassword, EmailCredentials and SendResetLinks.

use tonic::{Request, Response, Status};

use crate::{
    domain::{
        accounts,
        audit::Actor,
        caller::Scope,
        invitations::{bulk, plan::Recipients},
        validate,
    },
    error::Error,
    grpc::{
        actor,
        batches::{self, BatchStream},
        caller, convert,
    },
    lifecycle::email_kind::EmailKind,
    pb,
    state::AppState,
};

pub async fn set_password(
    state: &AppState,
    request: Request<pb::SetPasswordRequest>,
) -> Result<Response<pb::User>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::CredentialsWrite)?;
    let actor = actor(&request)?;
    let req = request.into_inner();
    let user_id = validate::id(&req.user_id).map_err(|e| Error::invalid("user_id", e))?;
    if req.password.is_empty() {
        return Err(Error::invalid("password", "is required").into());
    }
    let user = accounts::set_password(
        state,
        org,
        user_id,
        req.password,
        req.must_change_password,
        &actor,
    )
    .await?;
    Ok(Response::new(convert::user(user)))
}

/// A bulk send of credentials or reset links to existing users.
struct Bulk {
    kind: EmailKind,
    user_ids: Vec<String>,
    all_staged: bool,
    dry_run: bool,
    idempotency_key: String,
}

async fn bulk(
    state: &AppState,
    organization_id: uuid::Uuid,
    actor: Actor,
    request: Bulk,
) -> Result<Response<BatchStream>, Status> {
    let recipients = Recipients {
        user_ids: request.user_ids,
        all_staged: request.all_staged,
        ..Recipients::default()
    };
    let send = bulk::to_users(
        organization_id,
        request.kind,
        recipients,
        &request.idempotency_key,
        request.dry_run,
    )?;
    Ok(Response::new(batches::start(state, send, &actor).await?))
}

pub async fn email_credentials(
    state: &AppState,
    request: Request<pb::EmailCredentialsRequest>,
) -> Result<Response<BatchStream>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::CredentialsWrite)?;
    let actor = actor(&request)?;
    let req = request.into_inner();
    let request = Bulk {
        kind: EmailKind::Credentials,
        user_ids: req.user_ids,
        all_staged: req.all_staged,
        dry_run: req.dry_run,
        idempotency_key: req.idempotency_key,
    };
    bulk(state, org, actor, request).await
}

pub async fn send_reset_links(
    state: &AppState,
    request: Request<pb::SendResetLinksRequest>,
) -> Result<Response<BatchStream>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::CredentialsWrite)?;
    let actor = actor(&request)?;
    let req = request.into_inner();
    let kind = match pb::EmailKind::try_from(req.kind) {
        Ok(pb::EmailKind::Unspecified | pb::EmailKind::Welcome) => EmailKind::Welcome,
        Ok(pb::EmailKind::PasswordReset) => EmailKind::PasswordReset,
        _ => {
            return Err(Error::invalid(
                "kind",
                "must be EMAIL_KIND_WELCOME or EMAIL_KIND_PASSWORD_RESET: the emails that carry a reset link",
            )
            .into());
        }
    };
    let request = Bulk {
        kind,
        user_ids: req.user_ids,
        all_staged: req.all_staged,
        dry_run: req.dry_run,
        idempotency_key: req.idempotency_key,
    };
    bulk(state, org, actor, request).await
}
