//! The public RPCs: RequestPasswordReset, CompletePasswordReset,
//! ChangePassword and Authenticate. No API key: the token or password in the
//! request is the credential, and each client address is rate-limited.

use crate::db::Cached;
use chrono::TimeDelta;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    db::schema::terms_acceptances,
    domain::{
        accounts::{self, Verified},
        audit::{self, Actor},
        enrollment,
        organizations::{self, Organization},
        rate_limit, reset, users,
        users::UserRow,
        validate,
    },
    error::{Error, Violations},
    grpc::{client_address, convert, invitations::send::message_domain, limit_client},
    pb,
    state::AppState,
};

/// Reset emails one account may be sent per hour.
const RESETS_PER_ACCOUNT_PER_HOUR: i32 = 3;

pub(super) fn organization_id(raw: &str) -> Result<Uuid, Error> {
    validate::id(raw).map_err(|e| Error::invalid("organization_id", e))
}

fn login(username: &str) -> Result<String, Error> {
    let login = username.trim();
    if login.is_empty() {
        return Err(Error::invalid(
            "username",
            "is required: the username or email of the account",
        ));
    }
    Ok(login.to_owned())
}

pub async fn request_reset(
    state: &AppState,
    request: Request<pb::RequestPasswordResetRequest>,
) -> Result<Response<()>, Status> {
    let address = client_address(&request);
    let req = request.into_inner();
    let org = organization_id(&req.organization_id)?;
    let login = match (req.email.trim(), req.username.trim()) {
        ("", "") => return Err(Error::invalid("email", "give the account's email or username").into()),
        ("", username) => username.to_owned(),
        (email, _) => email.to_owned(),
    };
    limit_client(state, "reset", &address)?;
    // The answer leaves before the account is even looked up, so it is the
    // same, and as quick, whether or not the account exists.
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = queue_reset(&state, org, &login, &address).await {
            tracing::warn!(error = %e, "queueing a reset email failed");
        }
    });
    Ok(Response::new(()))
}

async fn queue_reset(state: &AppState, org: Uuid, login: &str, address: &str) -> Result<(), Error> {
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let Some((_, Some(accounts::Account { user, .. }))) =
        accounts::find_with_organization(&mut conn, org, login).await?
    else {
        return Ok(());
    };
    if user.deactivated_at.is_some() {
        return Ok(());
    }
    let bucket = format!("reset-account:{}", user.id);
    if !rate_limit::allow(
        &mut conn,
        &bucket,
        RESETS_PER_ACCOUNT_PER_HOUR,
        TimeDelta::hours(1),
        now,
    )
    .await?
    {
        return Ok(());
    }
    let actor = Actor {
        name: "public".into(),
        client_address: address.to_owned(),
    };
    reset::queue(&mut conn, &user, &message_domain(state), now).await?;
    audit::record(
        &mut conn,
        &actor,
        org,
        "credentials.reset_requested",
        ("user", user.id),
        json!({}),
        now,
    )
    .await
}

pub async fn get_reset(
    state: &AppState,
    request: Request<pb::GetPasswordResetRequest>,
) -> Result<Response<pb::PasswordResetInfo>, Status> {
    let address = client_address(&request);
    let token = request.into_inner().token;
    if token.trim().is_empty() {
        return Err(Error::invalid("token", "is required: the token from the reset link").into());
    }
    limit_client(state, "complete-reset", &address)?;
    let mut conn = state.pool.get().await.map_err(Error::from)?;
    let offered = reset::offered(&mut conn, &token, state.clock.now()).await?;
    Ok(Response::new(pb::PasswordResetInfo {
        organization_id: offered.organization.id.to_string(),
        organization_name: offered.organization.name,
        password_rules: Some(convert::password_rules(offered.organization.password_min_length)),
        expire_time: Some(convert::timestamp(offered.expires_at)),
    }))
}

pub async fn complete_reset(
    state: &AppState,
    request: Request<pb::CompletePasswordResetRequest>,
) -> Result<Response<pb::CompletePasswordResetResponse>, Status> {
    let address = client_address(&request);
    let req = request.into_inner();
    let mut v = Violations::new();
    if req.token.trim().is_empty() {
        v.add("token", "is required: the token from the reset link");
    }
    if req.new_password.is_empty() {
        v.add("new_password", "is required");
    }
    v.into_result()?;
    limit_client(state, "complete-reset", &address)?;
    let user = reset::complete(state, &req.token, &req.new_password, &address).await?;
    Ok(Response::new(pb::CompletePasswordResetResponse {
        continue_url: state.config.links.app_for(user.organization_id),
        username: user.username,
        user_id: user.id.to_string(),
    }))
}

pub async fn change_password(
    state: &AppState,
    request: Request<pb::ChangePasswordRequest>,
) -> Result<Response<()>, Status> {
    let address = client_address(&request);
    let req = request.into_inner();
    let org = organization_id(&req.organization_id)?;
    let login = login(&req.username)?;
    if req.new_password.is_empty() {
        return Err(Error::invalid("new_password", "is required").into());
    }
    limit_client(state, "sign-in", &address)?;
    let Verified {
        user, organization, ..
    } = match accounts::verify(state, org, &login, &req.password, &address).await {
        // A temporary password that expired cannot be changed either.
        Err(e) => return Err(e.into()),
        Ok(verified) => verified,
    };
    if req.new_password == req.password {
        return Err(Error::invalid("new_password", "must differ from the current password").into());
    }
    accounts::check_policy(&organization, &user, &req.new_password, "new_password")?;
    let hash = state.hasher.hash(req.new_password).await?;
    let now = state.clock.now();
    let mut conn = state.pool.get().await.map_err(Error::from)?;
    let actor = Actor {
        name: format!("user:{}", user.id),
        client_address: address,
    };
    let change = accounts::NewPassword {
        user_id: user.id,
        organization_id: org,
        hash,
        must_change: false,
        actor: &actor,
        action: "credentials.password_changed",
        details: json!({}),
    };
    accounts::replace_password(&mut conn, change, now).await?;
    Ok(Response::new(()))
}

/// What a signed-in person must still do.
async fn required_actions(
    conn: &mut AsyncPgConnection,
    user: &UserRow,
    organization: &Organization,
    factor: Option<String>,
    code_given: bool,
) -> Result<(Vec<pb::RequiredAction>, pb::SecondFactorMethod), Error> {
    let mut actions = Vec::new();
    if user.must_change_password {
        actions.push(pb::RequiredAction::ChangePassword);
    }
    if organization.terms_version > 0 {
        let accepted: i64 = terms_acceptances::table
            .filter(terms_acceptances::user_id.eq(user.id))
            .filter(terms_acceptances::version.eq(organization.terms_version))
            .count()
            .get_result(conn)
            .await?;
        if accepted == 0 {
            actions.push(pb::RequiredAction::AcceptTerms);
        }
    }
    let method = factor
        .as_deref()
        .map_or(pb::SecondFactorMethod::Unspecified, convert::second_factor_method);
    match factor {
        None if organization.second_factor_required => actions.push(pb::RequiredAction::EnrollSecondFactor),
        Some(_) if !code_given => actions.push(pb::RequiredAction::SecondFactor),
        _ => {}
    }
    Ok((actions, method))
}

/// Sends the code of an email or SMS second factor, for the next call. An
/// email is queued on `conn`; a text is answered to be sent once the
/// connection is back in the pool.
async fn sign_in_code(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    user: &UserRow,
    method: pb::SecondFactorMethod,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<(String, String)>, Error> {
    match method {
        pb::SecondFactorMethod::Email => {
            let email = crate::outbox::Email {
                organization_id: user.organization_id,
                kind: crate::lifecycle::email_kind::EmailKind::EmailCode,
                recipient: &user.email,
                user_id: user.id,
                invitation_id: None,
                batch: None,
            };
            crate::outbox::enqueue(conn, &[email], &message_domain(state), now).await?;
            Ok(None)
        }
        pb::SecondFactorMethod::Sms => {
            let secrets = state.secrets.as_deref();
            let (code, _) =
                crate::domain::second_factor::issue_code(conn, secrets, user, None, "sms_code", now).await?;
            Ok(Some((
                user.mobile.clone(),
                format!("{code} is your sign-in code."),
            )))
        }
        _ => Ok(None),
    }
}

pub async fn authenticate(
    state: &AppState,
    request: Request<pb::AuthenticateRequest>,
) -> Result<Response<pb::AuthenticateResponse>, Status> {
    let address = client_address(&request);
    let req = request.into_inner();
    let org = organization_id(&req.organization_id)?;
    let login = login(&req.username)?;
    limit_client(state, "sign-in", &address)?;
    let Verified {
        user,
        organization,
        second_factor,
    } = accounts::verify(state, org, &login, &req.password, &address).await?;
    let now = state.clock.now();
    let mut conn = state.pool.get().await.map_err(Error::from)?;
    let code = req.second_factor_code.trim();
    if !code.is_empty()
        && !crate::domain::second_factor::verify_sign_in(state, &mut conn, &user, code).await?
    {
        // Counted like a wrong password: the attempt `verify` reserved
        // stays counted.
        drop(conn);
        let actor = Actor {
            name: format!("user:{}", user.id),
            client_address: address,
        };
        let attempt = user.failed_sign_ins + 1;
        accounts::count_sign_in("wrong_code");
        accounts::record_failure(state, &user, &actor, attempt, "second_factor_code", now).await?;
        return Err(Error::Unauthenticated(
            "the second-factor code is wrong, has expired or was used already".into(),
        )
        .into());
    }
    let (actions, method) =
        required_actions(&mut conn, &user, &organization, second_factor, !code.is_empty()).await?;
    let code_due = actions.contains(&pb::RequiredAction::SecondFactor);
    let terms = if actions.contains(&pb::RequiredAction::AcceptTerms) {
        convert::organization(organizations::with_terms(&mut conn, organization.clone()).await?)
            .policy
            .and_then(|p| p.terms)
    } else {
        None
    };
    let password_rules = user
        .must_change_password
        .then(|| convert::password_rules(organization.password_min_length));
    let second_factor_methods = if actions.contains(&pb::RequiredAction::EnrollSecondFactor) {
        enrollment::allowed_methods(&organization, state.secrets.is_some())
            .iter()
            .map(|m| convert::second_factor_method(m) as i32)
            .collect()
    } else {
        Vec::new()
    };
    let text = if code_due {
        sign_in_code(state, &mut conn, &user, method, now).await?
    } else {
        None
    };
    // The sign-in, its audit event and the user's grants in one round trip.
    // A sign-in whose code is still due is not one yet: its attempt stays
    // counted and nothing is recorded.
    let details = json!({"required_actions": actions.iter().map(|a| a.as_str_name()).collect::<Vec<_>>()});
    let grants: Vec<users::Grant> = Cached(diesel::sql_query(
        "WITH signed_in AS (UPDATE users SET failed_sign_ins = 0, locked_until = NULL, last_sign_in_at = $2 \
           WHERE id = $1 AND $8 RETURNING id), \
         audit AS (INSERT INTO audit_events (id, organization_id, actor, action, target_type, target_id, \
           client_address, details, created_at) \
           SELECT $3, $4, $5, 'credentials.sign_in', 'user', id::text, $6, $7, $2 FROM signed_in) \
         SELECT g.service_area_id, g.role_id, a.name AS service_area_name, r.name AS role_name \
         FROM access_grants g JOIN service_areas a ON a.id = g.service_area_id JOIN roles r ON r.id = g.role_id \
         WHERE g.user_id = $1 ORDER BY a.name, r.name",
    )
    .bind::<diesel::sql_types::Uuid, _>(user.id)
    .bind::<diesel::sql_types::Timestamptz, _>(now)
    .bind::<diesel::sql_types::Uuid, _>(uuid::Uuid::now_v7())
    .bind::<diesel::sql_types::Uuid, _>(org)
    .bind::<diesel::sql_types::Text, _>(format!("user:{}", user.id))
    .bind::<diesel::sql_types::Text, _>(&address)
    .bind::<diesel::sql_types::Jsonb, _>(details)
    .bind::<diesel::sql_types::Bool, _>(!code_due))
    .load(&mut conn)
    .await
    .map_err(Error::from)?;
    accounts::count_sign_in(if code_due { "second_factor_required" } else { "ok" });
    let mut row = user;
    if !code_due {
        row.last_sign_in_at = Some(now);
        row.failed_sign_ins = 0;
    }
    let status = row.status(now);
    let user = users::User { row, grants, status };
    drop(conn);
    if let Some((mobile, body)) = text {
        crate::sms::send(state.config.sms_webhook_url.as_deref(), &mobile, &body)
            .await
            .map_err(|why| Error::Unavailable(format!("the code could not be sent by SMS: {why}")))?;
    }
    Ok(Response::new(pb::AuthenticateResponse {
        continue_url: state.config.links.app_for(org),
        terms,
        password_rules,
        second_factor_methods,
        user: Some(convert::user(user)),
        second_factor_method: if code_due { method as i32 } else { 0 },
        required_actions: actions.into_iter().map(|a| a as i32).collect(),
    }))
}
