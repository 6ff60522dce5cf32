//! A tower layer that authenticates API keys before any handler runs and puts
//! the `Caller` (and every request's `ClientAddress`) into the request.
//! Public RPCs pass without a key; a wrong key is refused even there, so a
//! client bug is not hidden.

use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
};

use http::{HeaderMap, Request, Response};
use tonic::{Status, body::Body, transport::server::TcpConnectInfo};
use tower::{Layer, Service};

use crate::{
    domain::{
        caller::{Caller, ClientAddress},
        key_cache,
    },
    state::AppState,
};

/// RPCs anyone may call: the invitation token, reset token or password in the
/// request is the credential.
const PUBLIC_PREFIXES: &[&str] = &[
    "/onramp.v1.Registration/",
    "/onramp.v1.Credentials/RequestPasswordReset",
    "/onramp.v1.Credentials/GetPasswordReset",
    "/onramp.v1.Credentials/CompletePasswordReset",
    "/onramp.v1.Credentials/ChangePassword",
    "/onramp.v1.Credentials/Authenticate",
    "/onramp.v1.Credentials/BeginSecondFactorEnrollment",
    "/onramp.v1.Credentials/CompleteSecondFactorEnrollment",
];

#[derive(Clone)]
pub struct AuthLayer {
    state: AppState,
}

impl AuthLayer {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S, B> Service<Request<B>> for Authenticate<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone that was polled ready is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let address = client_address(&request, layer.state.config.trust_forwarded_for);
            request.extensions_mut().insert(ClientAddress(address));
            let path = request.uri().path();
            let ours = path.starts_with("/onramp.v1.");
            let public = PUBLIC_PREFIXES.iter().any(|p| path.starts_with(p));
            match bearer(request.headers()) {
                Err(status) if ours => return Ok(status.into_http()),
                Ok(None) if ours && !public => {
                    return Ok(Status::unauthenticated(
                        "an API key is required: send the header 'authorization: Bearer <key>'",
                    )
                    .into_http());
                }
                Ok(Some(secret)) if ours => match layer.resolve(&secret).await {
                    Ok(caller) => {
                        request.extensions_mut().insert(caller);
                    }
                    Err(status) => return Ok(status.into_http()),
                },
                _ => {}
            }
            inner.call(request).await
        })
    }
}

impl AuthLayer {
    async fn resolve(&self, secret: &str) -> Result<Caller, Status> {
        key_cache::resolve(&self.state, &self.state.keys, secret)
            .await?
            .ok_or_else(|| Status::unauthenticated("the API key is unknown, expired or revoked"))
    }
}

fn bearer(headers: &HeaderMap) -> Result<Option<String>, Status> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| Status::unauthenticated("the authorization header is not valid text"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim().to_owned()))
        }
        _ => Err(Status::unauthenticated(
            "the authorization header must be 'Bearer <key>'",
        )),
    }
}

fn client_address<B>(request: &Request<B>, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for {
        // The last entry is the one the gateway in front added; entries
        // before it came from the client and could say anything.
        let forwarded = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        if let Some(address) = forwarded {
            return address.to_owned();
        }
    }
    request
        .extensions()
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .map(|a: SocketAddr| a.ip().to_string())
        .unwrap_or_default()
}
