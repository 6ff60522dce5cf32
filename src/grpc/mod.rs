//! The gRPC surface: tonic types stop here. Handlers check the caller,
//! validate and convert the request, call `crate::domain`, and convert back.

pub mod auth;
pub mod batches;
pub mod convert;
pub mod credentials;
pub mod invitations;
pub mod registration;
pub mod status;
pub mod text;
pub mod user_admin;

use tonic::{Request, Status};

use crate::domain::{
    audit::Actor,
    caller::{Caller, ClientAddress},
};

/// The authenticated caller the auth layer put into the request.
pub fn caller<T>(request: &Request<T>) -> Result<&Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .ok_or_else(|| Status::unauthenticated("an API key is required (authorization: Bearer <key>)"))
}

pub fn client_address<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<ClientAddress>()
        .map(|a| a.0.clone())
        .unwrap_or_default()
}

/// The audit log's view of an authenticated caller.
pub fn actor<T>(request: &Request<T>) -> Result<Actor, Status> {
    Ok(Actor {
        name: caller(request)?.actor(),
        client_address: client_address(request),
    })
}

/// Refuses a client address that called public RPCs too often this minute.
pub fn limit_client(state: &crate::state::AppState, rpc: &'static str, address: &str) -> Result<(), Status> {
    use crate::domain::client_limits::WINDOW;
    let bucket = format!("{rpc}:{address}");
    let limit = state.config.public_rate_limit;
    if state
        .client_limits
        .allow(&bucket, limit, WINDOW, state.clock.now())
    {
        Ok(())
    } else {
        crate::metrics::get()
            .rate_limited
            .add(1, &[crate::metrics::kv("group", rpc)]);
        Err(Status::resource_exhausted(
            "too many requests from this address; wait a minute and try again",
        ))
    }
}
