//! The pages people open from Onramp's emails (registration, password reset,
//! first sign-in) and the admin console (`/admin`), served on the gRPC port.
//! They are a static build (`web/dist`, compiled into the binary) that calls
//! the public API over gRPC-Web like any other client; this layer only hands
//! out their files.
//!
//! gRPC and gRPC-Web never use GET, so every GET or HEAD is a page or an
//! asset, and every other request goes on to the services.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use tonic::body::Body;
use tower::{Layer, Service};

mod assets {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

/// The addresses the single-page build answers; its script reads the path.
const PAGES: &[&str] = &["/", "/register", "/reset-password", "/sign-in"];

/// Scripts, styles and calls only from this origin, nothing inline, never in
/// a frame, and no form posts elsewhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";

fn asset(name: &str) -> Option<(&'static str, &'static [u8])> {
    assets::ASSETS
        .iter()
        .find(|(path, _, _)| *path == name)
        .map(|(_, media, bytes)| (*media, *bytes))
}

/// The answer to a GET or HEAD of `path`.
pub fn respond(path: &str, head: bool) -> Response<Body> {
    let shell = if PAGES.contains(&path) {
        Some("index.html")
    } else if path == "/admin" || path == "/admin/" {
        Some("console.html")
    } else {
        None
    };
    let (status, media, bytes, immutable) = if let Some(shell) = shell {
        match asset(shell) {
            Some((media, bytes)) => (StatusCode::OK, media, bytes, false),
            None => not_found(),
        }
    } else if let Some((media, bytes)) = path
        .strip_prefix("/assets/")
        .and_then(|name| asset(&format!("assets/{name}")))
    {
        // Asset names carry a hash of their content.
        (StatusCode::OK, media, bytes, true)
    } else {
        not_found()
    };
    let body = if head {
        Body::default()
    } else {
        Body::new(Full::new(Bytes::from_static(bytes)))
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-store"
        }),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    // Links carry tokens: never pass the address on to another site.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}

fn not_found() -> (StatusCode, &'static str, &'static [u8], bool) {
    (
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        b"There is no page at this address. Open the link from your email again.\n",
        false,
    )
}

#[derive(Clone, Default)]
pub struct PagesLayer;

impl<S> Layer<S> for PagesLayer {
    type Service = Pages<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Pages { inner }
    }
}

#[derive(Clone)]
pub struct Pages<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for Pages<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let method = request.method();
        if method == Method::GET || method == Method::HEAD {
            let page = respond(request.uri().path(), method == Method::HEAD);
            return Box::pin(std::future::ready(Ok(page)));
        }
        Box::pin(self.inner.call(request))
    }
}
