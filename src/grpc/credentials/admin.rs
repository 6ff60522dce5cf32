//! The admin RPCs: SetPassword, EmailCredentials and SendResetLinks.

use serde_json::json;
use tonic::{Request, Response, Status};

use crate::lifecycle::email_kind::EmailKind;
use crate::{
    domain::{
        accounts,
        audit::Actor,
        caller::Scope,
        invitations::batch::{self, Created, NewBatch, Recipients},
        organizations, templates, users, validate,
    },
    error::{Error, Violations},
    grpc::{
        actor,
        batches::{self, BatchStream},
        caller, convert,
        invitations::send::{dry_run, message_domain, recipients_and_key},
    },
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
    let now = state.clock.now();
    let (user, organization) = {
        let mut conn = state.pool.get().await.map_err(Error::from)?;
        let user = users::find(&mut conn, org, user_id, now).await?.row;
        (user, organizations::find(&mut conn, org).await?.organization)
    };
    accounts::check_policy(&organization, &user, &req.password, "password")?;
    let hash = state.hasher.hash(req.password).await?;
    let mut conn = state.pool.get().await.map_err(Error::from)?;
    let change = accounts::NewPassword {
        user_id,
        organization_id: org,
        hash,
        must_change: req.must_change_password,
        actor: &actor,
        action: "credentials.set_password",
        details: json!({"must_change_password": req.must_change_password}),
    };
    accounts::replace_password(&mut conn, change, now).await?;
    Ok(Response::new(convert::user(
        users::find(&mut conn, org, user_id, now).await?,
    )))
}

/// A bulk send of credentials or reset links to existing users.
struct Bulk {
    kind: EmailKind,
    email: templates::Kind,
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
    let Bulk {
        kind,
        email,
        user_ids,
        all_staged,
        dry_run: dry,
        idempotency_key,
    } = request;
    let mut v = Violations::new();
    let (recipients, key): (Recipients, Option<String>) = recipients_and_key(
        &mut v,
        String::new(),
        Vec::new(),
        user_ids,
        all_staged,
        &idempotency_key,
    );
    if recipients.is_empty() {
        v = Violations::new();
        v.add("user_ids", "name at least one user, or set all_staged");
    }
    v.into_result()?;
    if dry {
        return Ok(Response::new(dry_run(
            state.clone(),
            organization_id,
            recipients,
            kind,
            email,
        )));
    }
    let domain = message_domain(state);
    let mut conn = state.pool.get().await.map_err(Error::from)?;
    let created = batch::create(
        &mut conn,
        NewBatch {
            organization_id,
            kind,
            recipients: &recipients,
            grant: None,
            idempotency_key: key,
            message_domain: &domain,
        },
        &actor,
        state.clock.now(),
    )
    .await?;
    drop(conn);
    let (batch_id, replayed) = match created {
        Created::New { batch_id, .. } => (batch_id, false),
        Created::Replay { batch_id } => (batch_id, true),
    };
    let batch = batches::find(state, organization_id, batch_id).await?;
    Ok(Response::new(batches::follow(state.clone(), batch, replayed)))
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
        email: templates::Kind::Credentials,
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
    let (kind, email) = match pb::EmailKind::try_from(req.kind) {
        Ok(pb::EmailKind::Unspecified | pb::EmailKind::Welcome) => {
            (EmailKind::Welcome, templates::Kind::Welcome)
        }
        Ok(pb::EmailKind::PasswordReset) => (EmailKind::PasswordReset, templates::Kind::PasswordReset),
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
        email,
        user_ids: req.user_ids,
        all_staged: req.all_staged,
        dry_run: req.dry_run,
        idempotency_key: req.idempotency_key,
    };
    bulk(state, org, actor, request).await
}
