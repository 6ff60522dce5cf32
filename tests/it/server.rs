//! The server as an operator meets it: reflection, health, gRPC-Web and the
//! answers of RPCs not built yet.

use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

use crate::harness::{TestServer, authed};
use onramp::pb;

const EXPECTED: &[(&str, &[&str])] = &[
    (
        "onramp.v1.UserAdmin",
        &[
            "CreateOrganization",
            "GetOrganization",
            "UpdateOrganization",
            "ListTerms",
            "CreateServiceArea",
            "ListServiceAreas",
            "CreateRole",
            "ListRoles",
            "CreateApiKey",
            "ListApiKeys",
            "RevokeApiKey",
            "CreateUser",
            "GetUser",
            "ListUsers",
            "UpdateUser",
            "DeactivateUser",
            "ReactivateUser",
            "DeleteUser",
            "ImportUsers",
            "ListAuditEvents",
        ],
    ),
    (
        "onramp.v1.Invitations",
        &[
            "SendInvitations",
            "StreamInvitations",
            "WatchBatch",
            "ListBatches",
            "GetInvitation",
            "ListInvitations",
            "ResendInvitation",
            "RevokeInvitation",
            "GetTemplate",
            "UpdateTemplate",
            "ListTemplates",
            "RenderTemplate",
            "ListDeliveries",
        ],
    ),
    (
        "onramp.v1.Credentials",
        &[
            "SetPassword",
            "EmailCredentials",
            "SendResetLinks",
            "RequestPasswordReset",
            "GetPasswordReset",
            "CompletePasswordReset",
            "ChangePassword",
            "Authenticate",
        ],
    ),
    (
        "onramp.v1.Registration",
        &[
            "GetRegistration",
            "BeginSecondFactor",
            "CompleteRegistration",
            "AcceptTerms",
            "RequestNewInvitation",
        ],
    ),
];

async fn reflect(
    client: &mut ServerReflectionClient<tonic::transport::Channel>,
    request: MessageRequest,
) -> MessageResponse {
    let outbound = tokio_stream::iter([ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    }]);
    let mut inbound = client
        .server_reflection_info(outbound)
        .await
        .expect("reflection call")
        .into_inner();
    inbound
        .next()
        .await
        .expect("a reflection answer")
        .expect("reflection ok")
        .message_response
        .expect("a message")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_four_services_and_every_rpc() {
    let server = TestServer::start().await;
    let mut client = ServerReflectionClient::new(server.channel.clone());
    let MessageResponse::ListServicesResponse(list) =
        reflect(&mut client, MessageRequest::ListServices(String::new())).await
    else {
        panic!("not a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for (service, rpcs) in EXPECTED {
        assert!(
            names.iter().any(|n| n == service),
            "{service} missing from {names:?}"
        );
        let MessageResponse::FileDescriptorResponse(files) = reflect(
            &mut client,
            MessageRequest::FileContainingSymbol((*service).into()),
        )
        .await
        else {
            panic!("no descriptor for {service}");
        };
        let short = service.trim_start_matches("onramp.v1.");
        let methods: Vec<String> = files
            .file_descriptor_proto
            .iter()
            .filter_map(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).ok())
            .flat_map(|file| file.service)
            .filter(|s| s.name() == short)
            .flat_map(|s| s.method)
            .map(|m| m.name().to_owned())
            .collect();
        for rpc in *rpcs {
            assert!(
                methods.iter().any(|m| m == rpc),
                "{service}/{rpc} missing from {methods:?}"
            );
        }
    }
    assert!(names.iter().any(|n| n == "grpc.health.v1.Health"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_serving_for_the_server_and_each_service() {
    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel.clone());
    for service in [
        "",
        "onramp.v1.UserAdmin",
        "onramp.v1.Invitations",
        "onramp.v1.Credentials",
        "onramp.v1.Registration",
    ] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("health of '{service}': {e}"))
            .into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "service '{service}'");
    }
}

/// A client may send only as much of a request as the stream's HTTP/2 window
/// allows before the server reads it; that unread part is what the server
/// holds while it writes a streamed send's earlier parts, so the window bounds
/// it, whatever the length of the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_may_run_at_most_a_quarter_mebibyte_ahead_of_the_server() {
    let server = TestServer::start().await;
    let host = server.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host).await.expect("connect");
    // The client's preface and an empty SETTINGS frame.
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .expect("write preface");
    // The server's first frame is its SETTINGS.
    let mut head = [0u8; 9];
    stream.read_exact(&mut head).await.expect("read frame head");
    assert_eq!(head[3], 0x4, "the server's first frame is not SETTINGS: {head:?}");
    let length = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload).await.expect("read settings");
    // Without SETTINGS_INITIAL_WINDOW_SIZE (0x4) the window is 65,535 bytes.
    let window = payload
        .chunks_exact(6)
        .find(|entry| entry[..2] == [0, 4])
        .map_or(65_535, |entry| {
            u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]])
        });
    assert!(
        window <= 256 * 1024,
        "the server lets a request run {window} bytes ahead of it"
    );
}

/// A browser's gRPC-Web call over HTTP/1.1, with CORS headers in the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_over_http1_answers_with_cors_headers() {
    let server = TestServer::start().await;
    let host = server.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host).await.expect("connect");
    let body = [0u8, 0, 0, 0, 0]; // one uncompressed frame holding an empty HealthCheckRequest
    let head = format!(
        "POST /grpc.health.v1.Health/Check HTTP/1.1\r\nHost: {host}\r\nOrigin: https://admin.example\r\n\
         Content-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(&body).await.expect("write body");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read answer");
    let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(
        text.contains("content-type: application/grpc-web+proto"),
        "{text}"
    );
    assert!(text.contains("access-control-allow-origin"), "{text}");
    assert!(text.contains("grpc-status:0"), "no OK trailer in {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_creates_a_development_organisation_whose_key_works_once() {
    let server = TestServer::start().await;
    let dev = onramp::bootstrap::dev_organization(&server.state)
        .await
        .expect("bootstrap")
        .expect("created on an empty database");
    let again = onramp::bootstrap::dev_organization(&server.state)
        .await
        .expect("bootstrap again");
    assert!(again.is_none(), "a second start creates nothing and shows no key");
    let areas = server
        .admin()
        .list_service_areas(authed(pb::ListServiceAreasRequest::default(), &dev.api_key))
        .await
        .expect("the printed key works")
        .into_inner();
    assert_eq!(areas.service_areas.len(), 1);
    assert!(server.smtp.received().is_empty());
}
