//! CreateApiKey, ListApiKeys, RevokeApiKey.

use tonic::{Request, Response, Status};

use crate::{
    domain::{api_keys, caller::Scope, paging::Page, validate},
    error::{Error, Violations},
    grpc::{actor, caller, convert},
    pb,
    state::AppState,
};

pub async fn create(
    state: &AppState,
    request: Request<pb::CreateApiKeyRequest>,
) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
    let who = caller(&request)?;
    let org = who.organization(&request.get_ref().organization_id, Scope::Admin)?;
    let is_platform = who.is_platform();
    let actor = actor(&request)?;
    let req = request.into_inner();
    let now = state.clock.now();
    let mut violations = Violations::new();
    let name = violations.check("name", validate::name(&req.name));
    let mut scopes = Vec::new();
    for raw in &req.scopes {
        match pb::ApiKeyScope::try_from(*raw)
            .ok()
            .and_then(convert::scope_from_pb)
        {
            Some(Scope::Platform) if !is_platform => {
                violations.add("scopes", "only a platform key may create platform keys")
            }
            Some(s) if !scopes.contains(&s) => scopes.push(s),
            Some(_) => {}
            None => violations.add("scopes", format!("{raw} is not a scope")),
        }
    }
    if req.scopes.is_empty() {
        violations.add("scopes", "name at least one scope, such as API_KEY_SCOPE_ADMIN");
    }
    let expires_at = req.expire_time.as_ref().and_then(convert::from_timestamp);
    if req.expire_time.is_some() && expires_at.is_none_or(|at| at <= now) {
        violations.add(
            "expire_time",
            "must be a time in the future, at most the year 9999",
        );
    }
    violations.into_result()?;
    let mut conn = state.pool.get().await.map_err(Error::from)?;
    let (key, secret) = api_keys::create(
        &mut conn,
        org,
        name.unwrap_or_default(),
        &scopes,
        expires_at,
        &actor,
        now,
    )
    .await?;
    Ok(Response::new(pb::CreateApiKeyResponse {
        api_key: Some(convert::api_key(key)),
        secret: secret.expose().to_owned(),
    }))
}

pub async fn list(
    state: &AppState,
    request: Request<pb::ListApiKeysRequest>,
) -> Result<Response<pb::ListApiKeysResponse>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::Admin)?;
    let req = request.into_inner();
    let page = Page::parse(req.page_size, &req.page_token)?;
    let mut conn = state.pool.get().await.map_err(Error::from)?;
    let (keys, next_page_token) = api_keys::list(&mut conn, org, page).await?;
    Ok(Response::new(pb::ListApiKeysResponse {
        api_keys: keys.into_iter().map(convert::api_key).collect(),
        next_page_token,
    }))
}

pub async fn revoke(
    state: &AppState,
    request: Request<pb::RevokeApiKeyRequest>,
) -> Result<Response<pb::ApiKey>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::Admin)?;
    let actor = actor(&request)?;
    let id = validate::id(&request.get_ref().api_key_id).map_err(|e| Error::invalid("api_key_id", e))?;
    let mut conn = state.pool.get().await.map_err(Error::from)?;
    let key = api_keys::revoke(&mut conn, org, id, &actor, state.clock.now()).await?;
    state.keys.clear();
    Ok(Response::new(convert::api_key(key)))
}
