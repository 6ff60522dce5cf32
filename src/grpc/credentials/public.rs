//! The public RPCs: RequestPasswordReset, CompletePasswordReset,
//! ChangePassword and Authenticate. No API key: the token or password in the
//! request is the credential, and each client address is rate-limited.

use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    domain::{reset, sign_in, validate},
    error::{Error, Violations},
    grpc::{client_address, convert, limit_client},
    pb,
    state::AppState,
};

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
        if let Err(e) = reset::request(&state, org, &login, &address).await {
            tracing::warn!(error = %e, "queueing a reset email failed");
        }
    });
    Ok(Response::new(()))
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
    let offered = reset::offered(state, &token).await?;
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
    let change = sign_in::PasswordChange {
        organization_id: org,
        login: &login,
        password: &req.password,
        new_password: &req.new_password,
        client_address: &address,
    };
    sign_in::change_password(state, change).await?;
    Ok(Response::new(()))
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
    let attempt = sign_in::SignInAttempt {
        organization_id: org,
        login: &login,
        password: &req.password,
        second_factor_code: &req.second_factor_code,
        client_address: &address,
    };
    let signed_in = sign_in::authenticate(state, attempt).await?;
    let code_due = signed_in.code_due();
    let method = signed_in
        .second_factor
        .as_deref()
        .map_or(pb::SecondFactorMethod::Unspecified, convert::second_factor_method);
    let must_change = signed_in.user.row.must_change_password;
    Ok(Response::new(pb::AuthenticateResponse {
        continue_url: state.config.links.app_for(org),
        terms: signed_in
            .terms
            .and_then(|t| convert::organization(t).policy)
            .and_then(|p| p.terms),
        password_rules: must_change
            .then(|| convert::password_rules(signed_in.organization.password_min_length)),
        second_factor_methods: signed_in
            .enrollable_methods
            .iter()
            .map(|m| convert::second_factor_method(m) as i32)
            .collect(),
        user: Some(convert::user(signed_in.user)),
        second_factor_method: if code_due { method as i32 } else { 0 },
        required_actions: signed_in
            .required_actions
            .into_iter()
            .map(|a| convert::required_action(a) as i32)
            .collect(),
    }))
}
