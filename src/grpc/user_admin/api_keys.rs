//! CreateApiKey, ListApiKeys, RevokeApiKey.

use tonic::{Request, Response, Status};

use crate::{
    domain::{
        api_keys::{self, NewKey},
        caller::Scope,
        key_cache,
        paging::Page,
        validate,
    },
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
    let organization_id = who.organization(&request.get_ref().organization_id, Scope::Admin)?;
    let by_platform = who.is_platform();
    let actor = actor(&request)?;
    let req = request.into_inner();
    let mut violations = Violations::new();
    let mut scopes = Vec::new();
    for raw in &req.scopes {
        match pb::ApiKeyScope::try_from(*raw)
            .ok()
            .and_then(convert::scope_from_pb)
        {
            Some(scope) => scopes.push(scope),
            None => violations.add("scopes", format!("{raw} is not a scope")),
        }
    }
    let expires_at = match &req.expire_time {
        None => None,
        Some(t) => match convert::from_timestamp(t) {
            Some(at) => Some(at),
            None => {
                violations.add(
                    "expire_time",
                    "must be a time in the future, at most the year 9999",
                );
                None
            }
        },
    };
    violations.into_result()?;
    let new = NewKey {
        organization_id,
        name: req.name,
        scopes,
        expires_at,
        by_platform,
    };
    let (key, secret) = api_keys::create(state, new, &actor).await?;
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
    let (keys, next_page_token) = api_keys::list(state, org, page).await?;
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
    let key = key_cache::revoke(state, &state.keys, org, id, &actor).await?;
    Ok(Response::new(convert::api_key(key)))
}
