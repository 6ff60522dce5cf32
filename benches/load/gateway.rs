//! `GetUser` through the shipped Envoy configuration over REST (HTTPS,
//! HTTP/1.1, JSON), beside `GetUser` over gRPC straight to the server, in the
//! same run with the same number of clients: the gateway's cost as a ratio.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use onramp::pb::user_admin_client::UserAdminClient;
use tokio::sync::Mutex;
use tokio_rustls::{
    TlsConnector,
    rustls::{
        ClientConfig, RootCertStore,
        pki_types::{CertificateDer, ServerName, pem::PemObject},
    },
};

use crate::{
    latency::drive,
    report::Report,
    server::{PLATFORM_KEY, ServerProcess},
    setup::{authed, one_user, organisation},
};

#[allow(
    dead_code,
    reason = "the tests' Envoy harness, of which this uses the start-up"
)]
#[path = "../../tests/it/gateway.rs"]
mod envoy;

const CLIENTS: usize = 16;

/// One HTTP/1.1 connection over TLS to the gateway, verified against its
/// test certificate.
async fn connection(gateway: &envoy::Gateway) -> SendRequest<Empty<Bytes>> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(gateway.certificate()).expect("the gateway's certificate"))
        .expect("a root");
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let port = gateway
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .expect("port");
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("HTTP/1.1");
    tokio::spawn(conn);
    sender
}

pub async fn run(seconds: u64, report: &mut Report) {
    let server = ServerProcess::start(None, &[]).await;
    let channel = server.channel().await;
    let org = organisation(&channel, PLATFORM_KEY).await;
    let request = one_user(&channel, &org).await;
    let path = format!("/v1/organizations/{}/users/{}", org.id, request.user_id);
    let upstream = server.address.trim_start_matches("http://").to_owned();
    let gateway = envoy::Gateway::start(envoy::free_port(), &[upstream]).await;
    let duration = Duration::from_secs(seconds);

    let grpc = drive(CLIENTS, duration, None, move |_| {
        let mut client = UserAdminClient::new(channel.clone());
        let request = request.clone();
        async move { client.get_user(authed(request, PLATFORM_KEY)).await.is_ok() }
    })
    .await;
    println!("{}", grpc.line("GetUser over gRPC, direct"));

    let mut senders = Vec::new();
    for _ in 0..CLIENTS {
        senders.push(Mutex::new(connection(&gateway).await));
    }
    let senders = Arc::new(senders);
    let rest = drive(CLIENTS, duration, None, move |client| {
        let senders = senders.clone();
        let request = hyper::Request::get(path.as_str())
            .header("host", "localhost")
            .header("authorization", format!("Bearer {PLATFORM_KEY}"))
            .body(Empty::<Bytes>::new())
            .expect("request");
        async move {
            let mut sender = senders[client].lock().await;
            match sender.send_request(request).await {
                Ok(response) => {
                    let ok = response.status() == 200;
                    ok && response.into_body().collect().await.is_ok()
                }
                Err(_) => false,
            }
        }
    })
    .await;
    println!("{}", rest.line("GetUser over REST through Envoy (HTTPS)"));
    let ratio = rest.per_second / grpc.per_second;
    println!(
        "REST through Envoy / gRPC direct: {ratio:.2} of the rate, p50 {:.2} vs {:.2} ms",
        rest.p50_ms, grpc.p50_ms
    );
    report.add(
        "gateway",
        &[
            ("grpc_per_second", grpc.per_second),
            ("grpc_p50_ms", grpc.p50_ms),
            ("grpc_p99_ms", grpc.p99_ms),
            ("rest_per_second", rest.per_second),
            ("rest_p50_ms", rest.p50_ms),
            ("rest_p99_ms", rest.p99_ms),
            ("rest_over_grpc_rate", ratio),
            ("errors", (grpc.errors + rest.errors) as f64),
        ],
    );
}
