//! Per-RPC metrics: each call counted by service, method and gRPC status
//! code, and timed from its arrival to its last message. The status of a
//! call that answers at once is in its headers; a stream's (and a normal
//! answer's) comes in the trailers at the end of the body, so the body is
//! watched to its end. A body dropped before its end is a call the client
//! cancelled.

use std::{
    collections::HashSet,
    future::Future,
    pin::Pin,
    sync::LazyLock,
    task::{Context, Poll},
    time::Instant,
};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use prost::Message;
use tonic::body::Body;
use tower::{Layer, Service};

use super::{get, kv};

/// Every method the server answers, as `/package.Service/Method`: any other
/// path is counted as `unknown`, so a client cannot invent label values.
static KNOWN: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let mut known = HashSet::new();
    for set in [
        crate::pb::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ] {
        let Ok(decoded) = prost_types::FileDescriptorSet::decode(set) else {
            continue;
        };
        for file in decoded.file {
            for service in &file.service {
                for method in &service.method {
                    known.insert(format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
    }
    known
});

/// gRPC status codes by number, as their canonical names.
const CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

fn code_in(headers: &HeaderMap) -> Option<&'static str> {
    let number: usize = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    Some(CODES.get(number).copied().unwrap_or("UNKNOWN"))
}

/// One call being measured; it is recorded once, with the code it ended on.
struct Call {
    service: &'static str,
    method: &'static str,
    started: Instant,
    done: bool,
}

impl Call {
    fn new(path: &str) -> Call {
        // Borrowed from the set itself, so a label costs no allocation.
        let (service, method) = KNOWN
            .get(path)
            .and_then(|known| known.trim_start_matches('/').split_once('/'))
            .unwrap_or(("unknown", "unknown"));
        Call {
            service,
            method,
            started: Instant::now(),
            done: false,
        }
    }

    fn finish(&mut self, code: &'static str) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let metrics = get();
        let (service, method) = (kv("service", self.service), kv("method", self.method));
        metrics
            .rpc_requests
            .add(1, &[service.clone(), method.clone(), kv("code", code)]);
        metrics
            .rpc_duration
            .record(self.started.elapsed().as_secs_f64(), &[service, method]);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.finish("CANCELLED");
    }
}

#[derive(Clone, Default)]
pub struct RpcMetricsLayer;

impl<S> Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics { inner }
    }
}

#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for RpcMetrics<S>
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
        let mut call = Call::new(request.uri().path());
        let answered = self.inner.call(request);
        Box::pin(async move {
            let response = answered.await?;
            // A refusal before any message carries its status in the headers.
            if let Some(code) = code_in(response.headers()) {
                call.finish(code);
                return Ok(response);
            }
            Ok(response.map(|body| Body::new(Watched { body, call })))
        })
    }
}

/// The response body, watched for the trailers that carry the status.
struct Watched {
    body: Body,
    call: Call,
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(code_in) {
                    self.call.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => self.call.finish("UNKNOWN"),
            // Ended without trailers: nothing said otherwise.
            Poll::Ready(None) => self.call.finish("OK"),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_servers_own_methods_become_labels() {
        for path in [
            "/onramp.v1.UserAdmin/GetUser",
            "/onramp.v1.Invitations/SendInvitations",
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            let call = Call::new(path);
            assert_ne!(call.service, "unknown", "{path}");
            assert_eq!(format!("/{}/{}", call.service, call.method), path);
            std::mem::forget(call);
        }
        let invented = Call::new("/onramp.v1.UserAdmin/ada@example.com");
        assert_eq!((invented.service, invented.method), ("unknown", "unknown"));
        std::mem::forget(invented);
    }

    #[test]
    fn status_codes_are_named_as_grpc_names_them() {
        let mut headers = HeaderMap::new();
        assert_eq!(code_in(&headers), None);
        for (number, name) in [
            ("0", "OK"),
            ("3", "INVALID_ARGUMENT"),
            ("16", "UNAUTHENTICATED"),
            ("99", "UNKNOWN"),
        ] {
            headers.insert("grpc-status", http::HeaderValue::from_static(number));
            assert_eq!(code_in(&headers), Some(name));
        }
    }
}
