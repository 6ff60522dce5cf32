//! Onramp behind the shipped Envoy configuration: REST/JSON transcoded from
//! the `google.api.http` rules, refusals as JSON with their details, streams
//! as streamed JSON, gRPC-Web and the pages over HTTPS, and the client
//! address Envoy forwards.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::{
    browser::Browser,
    gateway::{Gateway, call, curl, free_port},
    harness::DEADLINE,
    harness::{PLATFORM_KEY, TestServer},
};
use onramp::pb;

/// A server and Envoy in front of it; the emails link to the gateway.
async fn behind_envoy(configure: impl FnOnce(&mut onramp::config::Config)) -> (TestServer, Gateway) {
    let port = free_port();
    let public = format!("https://localhost:{port}");
    let server = TestServer::start_with(|c| {
        c.set_public_url(&public);
        configure(c);
    })
    .await;
    let upstream = server.address.trim_start_matches("http://").to_owned();
    let gateway = Gateway::start(port, &[upstream]).await;
    (server, gateway)
}

/// An organisation made over REST, with its admin key, area and role.
struct RestOrg {
    id: String,
    key: String,
    area: String,
    role: String,
}

async fn rest_org(gateway: &Gateway, name: &str) -> RestOrg {
    let url = &gateway.url;
    let org = call(
        "POST",
        &format!("{url}/v1/organizations"),
        PLATFORM_KEY,
        Some(json!({"name": name})),
    )
    .await;
    assert_eq!(org.status, 200, "{}", org.body);
    let id = org.json()["id"].as_str().expect("id").to_owned();
    let key = call(
        "POST",
        &format!("{url}/v1/organizations/{id}/apiKeys"),
        PLATFORM_KEY,
        Some(json!({"name": "admin", "scopes": ["API_KEY_SCOPE_ADMIN"]})),
    )
    .await;
    assert_eq!(key.status, 200, "{}", key.body);
    let key = key.json()["secret"].as_str().expect("secret").to_owned();
    let area = call(
        "POST",
        &format!("{url}/v1/organizations/-/serviceAreas"),
        &key,
        Some(json!({"name": "North ward"})),
    )
    .await;
    let role = call(
        "POST",
        &format!("{url}/v1/organizations/-/roles"),
        &key,
        Some(json!({"name": "Nurse"})),
    )
    .await;
    RestOrg {
        id,
        key,
        area: area.json()["id"].as_str().expect("area id").to_owned(),
        role: role.json()["id"].as_str().expect("role id").to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_created_read_listed_updated_and_deleted_over_rest() {
    let (_server, gateway) = behind_envoy(|_| {}).await;
    let url = &gateway.url;
    let org = rest_org(&gateway, "Acme").await;
    let users = format!("{url}/v1/organizations/{}/users", org.id);
    let mut ids = Vec::new();
    for (email, first) in [("ada@acme.example", "Ada"), ("grace@acme.example", "Grace")] {
        let created = call(
            "POST",
            &users,
            &org.key,
            Some(json!({"email": email, "first_name": first, "service_area_id": org.area, "role_id": org.role})),
        )
        .await;
        assert_eq!(created.status, 200, "{}", created.body);
        let user = created.json();
        assert_eq!(user["first_name"], first, "proto field names are kept: {user}");
        assert_eq!(user["status"], "USER_STATUS_STAGED", "enums are names: {user}");
        ids.push(user["id"].as_str().unwrap().to_owned());
    }

    let read = call("GET", &format!("{users}/{}", ids[0]), &org.key, None).await;
    assert_eq!(read.json()["email"], "ada@acme.example");
    let first_page = call("GET", &format!("{users}?page_size=1"), &org.key, None)
        .await
        .json();
    assert_eq!(first_page["users"].as_array().unwrap().len(), 1);
    assert_eq!(first_page["total_size"], 2);
    let token = first_page["next_page_token"].as_str().expect("a next page");
    let second_page = call(
        "GET",
        &format!("{users}?page_size=1&page_token={token}"),
        &org.key,
        None,
    )
    .await
    .json();
    assert_eq!(second_page["users"][0]["email"], "grace@acme.example");

    let updated = call(
        "PATCH",
        &format!("{users}/{}?update_mask=first_name", ids[0]),
        &org.key,
        Some(json!({"first_name": "Augusta", "last_name": "ignored: not in the mask"})),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.json()["first_name"], "Augusta");
    assert!(updated.json().get("last_name").is_none(), "{}", updated.body);

    let deleted = call("DELETE", &format!("{users}/{}", ids[1]), &org.key, None).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let gone = call("GET", &format!("{users}/{}", ids[1]), &org.key, None).await;
    assert_eq!(gone.status, 404, "{}", gone.body);

    // Refusals arrive as JSON with their details.
    let bad = call("POST", &users, &org.key, Some(json!({"email": "not an address"}))).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let violations = &bad.json()["details"][0]["field_violations"];
    assert_eq!(violations[0]["field"], "email", "{}", bad.body);
    // The certificate verifies, and HTTP/2 is offered beside HTTP/1.1.
    let verified = tokio::process::Command::new("curl")
        .args([
            "-s",
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
            "--cacert",
        ])
        .arg(gateway.certificate())
        .arg(&users)
        .output()
        .await
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&verified.stdout), "401 2");
    let anonymous = curl(&[&users]).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    assert!(anonymous.json()["message"].as_str().unwrap().contains("API key"));
    let other = rest_org(&gateway, "Globex").await;
    let theirs = call("GET", &format!("{users}/{}", ids[0]), &other.key, None).await;
    assert!(
        [403, 404].contains(&theirs.status),
        "another organisation's user: {} {}",
        theirs.status,
        theirs.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_invitations_over_rest_stream_back_one_result_each() {
    let (server, gateway) = behind_envoy(|_| {}).await;
    let org = rest_org(&gateway, "Acme").await;
    let recipients: Vec<String> = (0..1000).map(|i| format!("person{i}@acme.example")).collect();
    let body = json!({
        "recipients_text": recipients.join("\n"),
        "service_area_id": org.area,
        "role_id": org.role,
    })
    .to_string();
    let auth = format!("authorization: Bearer {}", org.key);
    let mut child = tokio::process::Command::new("curl")
        .args(["-sk", "--http1.1", "-N", "-X", "POST"])
        .arg(format!("{}/v1/organizations/-/invitations:send", gateway.url))
        .args(["-H", &auth, "-H", "content-type: application/json", "-d", &body])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("curl");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut received = Vec::new();
    let mut chunks = 0;
    let mut results_before_the_end = false;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::time::timeout(DEADLINE, stdout.read(&mut buffer))
            .await
            .expect("the stream stalled")
            .expect("read");
        if n == 0 {
            break;
        }
        chunks += 1;
        received.extend_from_slice(&buffer[..n]);
        let so_far = String::from_utf8_lossy(&received);
        if so_far.contains("\"result\"") && !so_far.contains("\"completion\"") {
            results_before_the_end = true;
        }
    }
    child.wait().await.expect("curl ends");
    assert!(
        results_before_the_end,
        "the results did not arrive before the batch finished ({chunks} chunks)"
    );
    let events: Vec<Value> = serde_json::from_slice(&received).expect("a JSON array of events");
    let results: Vec<&Value> = events.iter().filter(|e| e.get("result").is_some()).collect();
    assert_eq!(results.len(), 1000);
    assert!(
        results
            .iter()
            .all(|r| r["result"]["outcome"] == "RECIPIENT_OUTCOME_SENT"),
        "{:?}",
        results
            .iter()
            .find(|r| r["result"]["outcome"] != "RECIPIENT_OUTCOME_SENT")
    );
    assert_eq!(events.last().unwrap()["completion"]["sent"], 1000);
    let mail = server.smtp.wait_for(1000, DEADLINE).await;
    assert_eq!(mail.len(), 1000, "every email reached the SMTP receiver once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_registers_over_rest() {
    let (server, gateway) = behind_envoy(|_| {}).await;
    let url = &gateway.url;
    let org = rest_org(&gateway, "Acme").await;
    let sent = call(
        "POST",
        &format!("{url}/v1/organizations/-/invitations:send"),
        &org.key,
        Some(
            json!({"recipients_text": "ada@acme.example", "service_area_id": org.area, "role_id": org.role}),
        ),
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let mail = &server.smtp.wait_for(1, DEADLINE).await[0];
    let link = mail
        .links()
        .into_iter()
        .find(|l| l.contains("/register?token="))
        .unwrap();
    assert!(
        link.starts_with(&gateway.url),
        "the link names the gateway: {link}"
    );
    let token = mail.link_param("token").unwrap();

    let info = curl(&[&format!("{url}/v1/registrations/{token}")]).await;
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.json()["organization_name"], "Acme");
    let weak = call(
        "POST",
        &format!("{url}/v1/registrations/{token}:complete"),
        "",
        Some(json!({"first_name": "Ada", "last_name": "Lovelace", "mobile": "+447700900123", "password": "short"})),
    )
    .await;
    assert_eq!(weak.status, 400, "{}", weak.body);
    assert_eq!(
        weak.json()["details"][0]["field_violations"][0]["field"],
        "password"
    );
    let done = call(
        "POST",
        &format!("{url}/v1/registrations/{token}:complete"),
        "",
        Some(json!({"first_name": "Ada", "last_name": "Lovelace", "mobile": "+447700900123", "password": "plum tractor velvet"})),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.json()["status"], "USER_STATUS_ACTIVE");
    let again = curl(&[&format!("{url}/v1/registrations/{token}")]).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert_eq!(
        again.json()["details"][0]["reason"],
        "INVITATION_USED",
        "{}",
        again.body
    );
    let signed_in = call(
        "POST",
        &format!("{url}/v1/authenticate"),
        "",
        Some(json!({"organization_id": org.id, "username": "ada@acme.example", "password": "plum tractor velvet"})),
    )
    .await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_work_through_the_gateway_over_https() {
    let (server, gateway) = behind_envoy(|_| {}).await;
    let org = server.org("Acme").await;
    crate::harness::send(&server, &org, crate::harness::invite(&org, "ada@acme.example"))
        .await
        .expect("invite");
    let mail = &server.smtp.wait_for(1, DEADLINE).await[0];
    let link = mail
        .links()
        .into_iter()
        .find(|l| l.contains("/register?token="))
        .unwrap();
    assert!(link.starts_with("https://localhost:"), "{link}");
    let browser = Browser::start("9-through-the-gateway").await;
    browser.goto(&link).await;
    browser.wait_for_text("Create your account at Acme").await;
    browser.shot("registration-over-https").await;
    browser.fill("#f-first_name", "Ada").await;
    browser.fill("#f-last_name", "Lovelace").await;
    browser.fill("#f-mobile", "+447700900123").await;
    browser.fill("#f-password", "plum tractor velvet").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("Your account is ready").await;
    browser.shot("done").await;
    browser.close().await;

    // gRPC-Web as the pages send it, through Envoy's grpc_web filter: one
    // frame holding an empty request.
    let frame = std::env::temp_dir().join(format!("onramp-grpc-web-{}", std::process::id()));
    std::fs::write(&frame, [0u8; 5]).unwrap();
    let data = format!("@{}", frame.display());
    let web = curl(&[
        "-X",
        "POST",
        &format!("{}/onramp.v1.Registration/GetRegistration", gateway.url),
        "-H",
        "content-type: application/grpc-web+proto",
        "-H",
        "x-grpc-web: 1",
        "--data-binary",
        &data,
        "-D",
        "-",
    ])
    .await;
    assert_eq!(web.status, 200, "{}", web.body);
    assert!(
        web.body.to_ascii_lowercase().contains("grpc-status: 3"),
        "an empty token is refused in gRPC-Web terms: {}",
        web.body
    );
}

/// Three password-reset requests a minute per client address.
async fn reset_request(gateway: &Gateway, org: &str, interface: &str, spoofed: &str) -> u16 {
    curl(&[
        "--interface",
        interface,
        "-X",
        "POST",
        &format!("{}/v1/passwordReset:request", gateway.url),
        "-H",
        "content-type: application/json",
        "-H",
        &format!("x-forwarded-for: {spoofed}"),
        "-d",
        &json!({"organization_id": org, "email": "ada@acme.example"}).to_string(),
    ])
    .await
    .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_count_the_address_envoy_forwards_and_not_the_one_a_client_claims() {
    let (server, gateway) = behind_envoy(|c| {
        c.trust_forwarded_for = true;
        c.public_rate_limit = 3;
    })
    .await;
    let org = server.org("Acme").await;
    for attempt in 0..3 {
        // A different claimed address each time: Envoy's entry is last.
        let status = reset_request(&gateway, &org.id, "127.0.0.1", &format!("10.0.0.{attempt}")).await;
        assert_eq!(status, 200, "attempt {attempt}");
    }
    assert_eq!(
        reset_request(&gateway, &org.id, "127.0.0.1", "10.9.9.9").await,
        429,
        "a claimed x-forwarded-for escaped the limit"
    );
    assert_eq!(
        reset_request(&gateway, &org.id, "127.0.0.2", "10.0.0.1").await,
        200,
        "another client address shares the first one's limit"
    );

    // Straight to a server that does not trust the header, a claimed
    // address changes nothing either.
    let direct = TestServer::start_with(|c| c.public_rate_limit = 3).await;
    let direct_org = direct.org("Acme").await;
    let mut refused = 0;
    for attempt in 0..4 {
        let mut request = tonic::Request::new(pb::RequestPasswordResetRequest {
            organization_id: direct_org.id.clone(),
            email: "ada@acme.example".into(),
            username: String::new(),
        });
        request
            .metadata_mut()
            .insert("x-forwarded-for", format!("10.1.1.{attempt}").parse().unwrap());
        if direct
            .credentials()
            .request_password_reset(request)
            .await
            .is_err()
        {
            refused += 1;
        }
    }
    assert_eq!(
        refused, 1,
        "the fourth call from one peer is refused whatever it claims"
    );
}

/// The fields of one encoded message, as (number, wire type, bytes or value).
fn fields(mut bytes: &[u8]) -> Vec<(u32, Vec<u8>, u64)> {
    use prost::encoding::{WireType, decode_key, decode_varint};
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (number, wire) = decode_key(&mut bytes).expect("a field key");
        match wire {
            WireType::Varint => out.push((number, Vec::new(), decode_varint(&mut bytes).expect("varint"))),
            WireType::LengthDelimited => {
                let len = decode_varint(&mut bytes).expect("length") as usize;
                out.push((number, bytes[..len].to_vec(), 0));
                bytes = &bytes[len..];
            }
            WireType::ThirtyTwoBit => bytes = &bytes[4..],
            WireType::SixtyFourBit => bytes = &bytes[8..],
            other => panic!("unexpected wire type {other:?}"),
        }
    }
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One RPC of the API: its service, name, whether the client streams, and
/// its HTTP rule (method and path).
type Rpc = (String, String, bool, Option<(String, String)>);

/// Every RPC, read from the descriptor set the gateway is given.
fn rpcs() -> Vec<Rpc> {
    const HTTP_RULE: u32 = 72_295_728;
    let mut found = Vec::new();
    for (_, file, _) in fields(&onramp::descriptors::gateway_set()) {
        let file = fields(&file);
        let package = file
            .iter()
            .find(|f| f.0 == 2)
            .map(|f| text(&f.1))
            .unwrap_or_default();
        if package != "onramp.v1" {
            continue;
        }
        for (_, service, _) in file.iter().filter(|f| f.0 == 6) {
            let service = fields(service);
            let name = service.iter().find(|f| f.0 == 1).map(|f| text(&f.1)).unwrap();
            for (_, method, _) in service.iter().filter(|f| f.0 == 2) {
                let method = fields(method);
                let rpc = method.iter().find(|f| f.0 == 1).map(|f| text(&f.1)).unwrap();
                let client_streams = method.iter().any(|f| f.0 == 5 && f.2 == 1);
                let rule = method
                    .iter()
                    .filter(|f| f.0 == 4)
                    .flat_map(|options| fields(&options.1))
                    .find(|f| f.0 == HTTP_RULE)
                    .and_then(|rule| {
                        fields(&rule.1).into_iter().find_map(|(n, value, _)| {
                            let verb = match n {
                                2 => "GET",
                                3 => "PUT",
                                4 => "POST",
                                5 => "DELETE",
                                6 => "PATCH",
                                _ => return None,
                            };
                            Some((verb.to_owned(), text(&value)))
                        })
                    });
                found.push((name.clone(), rpc, client_streams, rule));
            }
        }
    }
    found
}

#[test]
fn every_rpc_a_web_client_calls_has_an_http_rule_that_follows_the_aip_conventions() {
    let rpcs = rpcs();
    assert!(rpcs.len() > 40, "read {} RPCs", rpcs.len());
    for (service, rpc, client_streams, rule) in &rpcs {
        if *client_streams {
            // Documented: ImportUsers streams requests, which HTTP/JSON
            // cannot; README names its REST alternative.
            assert!(rule.is_none(), "{service}/{rpc}");
            continue;
        }
        let (verb, path) = rule
            .as_ref()
            .unwrap_or_else(|| panic!("{service}/{rpc} has no HTTP rule"));
        assert!(path.starts_with("/v1/"), "{service}/{rpc}: {path}");
        let custom = path.rsplit('/').next().unwrap_or_default().contains(':');
        match verb.as_str() {
            "GET" | "DELETE" | "PATCH" => {}
            "POST" => assert!(
                custom || rpc.starts_with("Create") || rpc == "Authenticate",
                "{service}/{rpc}: a POST that neither creates nor is a :verb custom method ({path})"
            ),
            other => panic!("{service}/{rpc}: {other}"),
        }
    }
}

/// The README's table of REST paths, as the descriptor set has them.
fn rest_table() -> String {
    let mut table = String::from("| HTTP | RPC |\n| --- | --- |\n");
    for (service, rpc, _, rule) in rpcs() {
        match rule {
            Some((verb, path)) => table.push_str(&format!("| `{verb} {path}` | `{service}.{rpc}` |\n")),
            None => table.push_str(&format!(
                "| (gRPC only: it streams requests) | `{service}.{rpc}` |\n"
            )),
        }
    }
    table
}

#[test]
fn the_readme_lists_every_rest_path_as_the_api_defines_it() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let (_, rest) = readme
        .split_once("<!-- rest-paths: generated from the descriptor set -->\n")
        .expect("the README marks its REST table");
    let (listed, _) = rest.split_once("<!-- /rest-paths -->").expect("the table's end");
    let expected = rest_table();
    assert!(
        listed == expected,
        "README's REST table differs from the API; put this between its markers:\n{expected}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_curl_examples_run_as_written() {
    let (server, gateway) = behind_envoy(|_| {}).await;
    let org = rest_org(&gateway, "Acme").await;
    let invited = call(
        "POST",
        &format!("{}/v1/organizations/-/invitations:send", gateway.url),
        &org.key,
        Some(json!({"recipients_text": "someone@example.com", "service_area_id": org.area, "role_id": org.role})),
    )
    .await;
    assert_eq!(invited.status, 200, "{}", invited.body);
    let token = server.smtp.wait_for(1, DEADLINE).await[0]
        .link_param("token")
        .unwrap();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let (_, block) = readme
        .split_once("<!-- curl examples: run as written by tests/it/rest.rs -->\n```sh\n")
        .expect("the README's curl examples");
    let (block, _) = block.split_once("```").unwrap();
    let commands: Vec<&str> = block.lines().filter(|l| l.starts_with("curl ")).collect();
    assert_eq!(commands.len(), 4, "one example per service");
    for command in commands {
        let output = tokio::process::Command::new("sh")
            .args(["-c", command])
            .env("ONRAMP_GATEWAY", &gateway.url)
            .env("KEY", &org.key)
            .env("ORG", &org.id)
            .env("AREA", &org.area)
            .env("ROLE", &org.role)
            .env("TOKEN", &token)
            .output()
            .await
            .expect("sh");
        let answer = String::from_utf8_lossy(&output.stdout);
        let json: Value =
            serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{command}\n{e}: {answer}"));
        let refused = json.get("code").is_some() && json.get("message").is_some();
        assert!(!refused, "{command}\nwas refused: {answer}");
    }
}

/// The events of a REST bulk stream read so far, and whether it ended well.
async fn stream_events(child: &mut tokio::process::Child) -> Vec<u8> {
    let mut stdout = child.stdout.take().expect("stdout");
    let mut received = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, stdout.read_to_end(&mut received)).await;
    received
}

fn start_send(gateway: &Gateway, org: &RestOrg, count: usize, prefix: &str) -> tokio::process::Child {
    let recipients: Vec<String> = (0..count).map(|i| format!("{prefix}{i}@acme.example")).collect();
    let body =
        json!({"recipients_text": recipients.join("\n"), "service_area_id": org.area, "role_id": org.role})
            .to_string();
    tokio::process::Command::new("curl")
        .args(["-sk", "--http1.1", "-N", "-X", "POST"])
        .arg(format!("{}/v1/organizations/-/invitations:send", gateway.url))
        .args(["-H", &format!("authorization: Bearer {}", org.key)])
        .args(["-H", "content-type: application/json", "-d", &body])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("curl")
}

/// The batch id in the first event of a (possibly cut) REST stream.
fn batch_id(received: &[u8]) -> String {
    let text = String::from_utf8_lossy(received);
    let start = text.find("\"batch_id\":\"").expect("a summary with the batch id") + 12;
    text[start..start + 36].to_owned()
}

/// Follows a batch to its end over REST (`WatchBatch`), on whichever
/// replica Envoy picks.
async fn watched(gateway: &Gateway, org: &RestOrg, batch: &str) -> Value {
    let url = format!("{}/v1/organizations/-/batches/{batch}:watch", gateway.url);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let reply = loop {
        let reply = call("GET", &url, &org.key, None).await;
        // A replica killed a moment ago may take one call before the health
        // check takes it out; a watching client asks again, as README says.
        if reply.status != 503 || tokio::time::Instant::now() >= deadline {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(reply.status, 200, "{}", reply.body);
    let events: Vec<Value> = serde_json::from_str(&reply.body).expect("events");
    events.last().cloned().expect("a completion")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_behind_envoy_lose_nothing_when_one_stops_and_one_is_killed() {
    use crate::processes::Process;
    let server = TestServer::start_with(|c| c.outbox.workers = 0).await;
    server.smtp.set(|b| b.delay = Duration::from_millis(20));
    let env = [
        ("ONRAMP_TRUST_FORWARDED_FOR", "true".to_owned()),
        ("ONRAMP_SHUTDOWN_DRAIN_MS", "3000".to_owned()),
        ("ONRAMP_OUTBOX_CLAIM", "4".to_owned()),
        ("ONRAMP_OUTBOX_LEASE_MS", "3000".to_owned()),
    ];
    let a = Process::start(&server, &env).await;
    let mut b = Process::start(&server, &env).await;
    let c = Process::start(&server, &env).await;
    let gateway = Gateway::start(
        free_port(),
        &[a.address.clone(), b.address.clone(), c.address.clone()],
    )
    .await;
    let org = rest_org(&gateway, "Acme").await;

    // SIGTERM one replica during a batch: Envoy's health check takes it
    // out while it drains, and no call through the gateway fails.
    let mut first = start_send(&gateway, &org, 200, "a");
    server.smtp.wait_for(20, DEADLINE).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &a.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..30 {
        let reply = call(
            "GET",
            &format!("{}/v1/organizations/-/users?page_size=1", gateway.url),
            &org.key,
            None,
        )
        .await;
        assert_eq!(
            reply.status, 200,
            "a call failed while a replica stopped: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let received = stream_events(&mut first).await;
    let batch = batch_id(&received);
    // The stream ended (UNAVAILABLE) if it was on the stopped replica, or
    // ran to its end; either way the batch finishes and WatchBatch says so.
    assert_eq!(watched(&gateway, &org, &batch).await["completion"]["sent"], 200);

    // SIGKILL another during the next batch.
    let mut second = start_send(&gateway, &org, 200, "b");
    server.smtp.wait_for(220, DEADLINE).await;
    b.child.kill().expect("SIGKILL");
    let _ = b.child.wait();
    let received = stream_events(&mut second).await;
    let batch = batch_id(&received);
    assert_eq!(watched(&gateway, &org, &batch).await["completion"]["sent"], 200);

    let mail = server.smtp.wait_for(400, DEADLINE).await;
    let mut recipients: Vec<String> = mail.iter().flat_map(|m| m.to.clone()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 400, "every invitation was delivered");
    // The README's window: only what the killed replica's workers held
    // between the SMTP server's acceptance and their commit (4 x 4).
    assert!(
        mail.len() <= 400 + 16,
        "{} emails for 400 invitations",
        mail.len()
    );
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_begun_by_the_client_continues_through_envoy_into_onramp() {
    use crate::processes::{Process, Receiver};
    let (receiver, endpoint) = Receiver::start().await;
    let server = TestServer::start_with(|c| c.outbox.workers = 0).await;
    let traced = Process::start(
        &server,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
            ("RUST_LOG", "info".into()),
        ],
    )
    .await;
    let gateway = Gateway::start(free_port(), std::slice::from_ref(&traced.address)).await;
    let org = server.org("Acme").await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let caller_span = "b7ad6b7169203331";
    let reply = curl(&[
        &format!("{}/v1/organizations/-/users?page_size=1", gateway.url),
        "-H",
        &format!("authorization: Bearer {}", org.key),
        "-H",
        &format!("traceparent: 00-{trace_id}-{caller_span}-01"),
    ])
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let found = receiver
            .spans
            .lock()
            .unwrap()
            .iter()
            .find(|s| hex(&s.trace_id) == trace_id && s.name == "onramp.v1.UserAdmin/ListUsers")
            .map(|s| hex(&s.parent_span_id));
        if let Some(parent) = found {
            assert_eq!(parent, caller_span, "Onramp's span is the client's child");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no span of the client's trace arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_file_is_imported_over_rest() {
    let (_server, gateway) = behind_envoy(|_| {}).await;
    let org = rest_org(&gateway, "Acme").await;
    let reply = call(
        "POST",
        &format!("{}/v1/organizations/-/users:importCsv", gateway.url),
        &org.key,
        Some(json!({
            "options": {"default_service_area": "North ward", "default_role": "Nurse"},
            "csv": "email,first_name\nada@acme.example,Ada\ngrace@acme.example,Grace\n",
        })),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let events: Vec<Value> = serde_json::from_str(&reply.body).expect("a JSON array");
    let created = events
        .iter()
        .filter(|e| e["result"]["outcome"] == "IMPORT_OUTCOME_CREATED")
        .count();
    assert_eq!(created, 2, "{}", reply.body);
    assert_eq!(events.last().unwrap()["summary"]["created"], 2, "{}", reply.body);
}
