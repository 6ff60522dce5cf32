//! BeginSecondFactorEnrollment and CompleteSecondFactorEnrollment: public,
//! the password is the credential, rate-limited with the sign-ins.

use tonic::{Request, Response, Status};

use super::public::organization_id;

use crate::{
    domain::enrollment,
    error::Error,
    grpc::{
        client_address, limit_client,
        registration::{begun_pb, method_name},
    },
    pb,
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
    let begun = enrollment::begin(state, org, &req.username, &req.password, method, &address).await?;
    Ok(Response::new(begun_pb(req.method, begun)))
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
