//! BeginSecondFactorEnrollment and CompleteSecondFactorEnrollment: public,
//! the password is the credential, rate-limited with the sign-ins.

use tonic::{Request, Response, Status};

use super::public::organization_id;

use crate::{
    domain::enrollment::{self, Begun},
    error::Error,
    grpc::{
        client_address, convert,
        invitations::send::message_domain,
        limit_client,
        registration::{mask_email, method_name},
    },
    pb, sms,
    state::AppState,
};

fn method(raw: i32) -> Result<&'static str, Error> {
    method_name(raw)
        .ok_or_else(|| Error::invalid("method", "choose SECOND_FACTOR_METHOD_TOTP, _EMAIL or _SMS"))
}

pub async fn begin(
    state: &AppState,
    request: Request<pb::BeginSecondFactorEnrollmentRequest>,
) -> Result<Response<pb::BeginSecondFactorResponse>, Status> {
    let address = client_address(&request);
    let req = request.into_inner();
    let org = organization_id(&req.organization_id)?;
    let method = method(req.method)?;
    limit_client(state, "sign-in", &address)?;
    let begun = enrollment::begin(
        state,
        org,
        &req.username,
        &req.password,
        method,
        &address,
        &message_domain(state),
    )
    .await?;
    let mut answer = pb::BeginSecondFactorResponse {
        method: req.method,
        ..Default::default()
    };
    match begun {
        Begun::Totp {
            secret,
            issuer,
            account,
        } => {
            answer.totp_secret = crate::domain::second_factor::base32(&secret);
            answer.otpauth_uri = crate::domain::second_factor::otpauth_uri(&issuer, &account, &secret);
        }
        Begun::Email { to, expires_at } => {
            answer.code_sent_to = mask_email(&to);
            answer.code_expire_time = Some(convert::timestamp(expires_at));
        }
        Begun::Sms { to, expires_at } => {
            answer.code_sent_to = sms::mask(&to);
            answer.code_expire_time = Some(convert::timestamp(expires_at));
        }
    }
    Ok(Response::new(answer))
}

pub async fn complete(
    state: &AppState,
    request: Request<pb::CompleteSecondFactorEnrollmentRequest>,
) -> Result<Response<()>, Status> {
    let address = client_address(&request);
    let req = request.into_inner();
    let org = organization_id(&req.organization_id)?;
    let method = method(req.method)?;
    if req.code.trim().is_empty() {
        return Err(Error::invalid("code", "is required: the authenticator's code or the code sent").into());
    }
    limit_client(state, "sign-in", &address)?;
    enrollment::complete(
        state,
        org,
        &req.username,
        &req.password,
        method,
        req.code.trim(),
        &address,
    )
    .await?;
    Ok(Response::new(()))
}
