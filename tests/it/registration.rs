//! The whole journey, from the invitation email to an active account, with
//! each second factor, and every way a link can fail.

use std::sync::{Arc, Mutex};

use hmac::{KeyInit, Mac};
use prost_types::FieldMask;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic_types::StatusExt;

use crate::{
    harness::{DEADLINE, invite, send},
    harness::{Org, TestServer, authed, violations},
};
use onramp::pb;

pub const SECRET_KEY: &str = "q83vEjRWeJC8TsLy/QXcZ4F4yT4Y2HqVjv8UCW4XbcM=";
pub const PASSWORD: &str = "plum tractor velvet";

pub fn base32_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u64, 0);
    for c in text.chars() {
        let value = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".find(c).expect("base32") as u64;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// The TOTP code of `secret` at the server's clock, computed here
/// independently (RFC 6238: HMAC-SHA1, 30-second steps, six digits).
pub fn totp(server: &TestServer, secret_base32: &str) -> String {
    let secret = base32_decode(secret_base32);
    let counter = (server.state.clock.now().timestamp() / 30) as u64;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(&secret).unwrap();
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:06}", binary % 1_000_000)
}

pub async fn secure_server() -> TestServer {
    TestServer::start_with(|c| c.secret_key = Some(onramp::secrets::SecretKey::parse(SECRET_KEY).unwrap()))
        .await
}

/// Requires a second factor of `methods` and publishes terms.
pub async fn set_policy(server: &TestServer, org: &Org, methods: &[pb::SecondFactorMethod]) {
    server
        .admin()
        .update_organization(authed(
            pb::UpdateOrganizationRequest {
                organization: Some(pb::Organization {
                    policy: Some(pb::OnboardingPolicy {
                        second_factor_required: true,
                        second_factor_methods: methods.iter().map(|m| *m as i32).collect(),
                        terms: Some(pb::Terms {
                            title: "Acceptable use".into(),
                            text: "Be kind to the systems.".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec![
                        "policy.second_factor_required".into(),
                        "policy.second_factor_methods".into(),
                        "policy.terms".into(),
                    ],
                }),
            },
            &org.key,
        ))
        .await
        .expect("policy");
}

/// Invites `email` and answers the token from the link it receives.
pub async fn invited_token(server: &TestServer, org: &Org, email: &str) -> String {
    let before = server.smtp.to(email).len();
    send(server, org, invite(org, email)).await.expect("invite");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let mail = server.smtp.to(email);
        if mail.len() > before {
            return mail[before].link_param("token").expect("a link with a token");
        }
        assert!(tokio::time::Instant::now() < deadline, "no invitation email");
        server
            .smtp
            .wait_for(server.smtp.received().len() + 1, DEADLINE)
            .await;
    }
}

pub fn completion(
    token: &str,
    method: pb::SecondFactorMethod,
    code: &str,
    terms: i32,
) -> pb::CompleteRegistrationRequest {
    pb::CompleteRegistrationRequest {
        token: token.into(),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        mobile: "+447700900123".into(),
        password: PASSWORD.into(),
        second_factor_method: method as i32,
        second_factor_code: code.into(),
        accepted_terms_version: terms,
    }
}

pub async fn authenticate(
    server: &TestServer,
    org: &Org,
    code: &str,
) -> Result<pb::AuthenticateResponse, tonic::Status> {
    server
        .credentials()
        .authenticate(pb::AuthenticateRequest {
            organization_id: org.id.clone(),
            username: "ada@acme.example".into(),
            password: PASSWORD.into(),
            second_factor_code: code.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

pub fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journey_with_an_authenticator_app() {
    let server = secure_server().await;
    let org = server.org("Acme").await;
    set_policy(
        &server,
        &org,
        &[pb::SecondFactorMethod::Totp, pb::SecondFactorMethod::Email],
    )
    .await;
    let token = invited_token(&server, &org, "ada@acme.example").await;
    let mut registration = server.registration();

    let info = registration
        .get_registration(pb::GetRegistrationRequest { token: token.clone() })
        .await
        .expect("view")
        .into_inner();
    assert_eq!(info.email, "ada@acme.example");
    assert_eq!(
        (
            info.organization_name.as_str(),
            info.service_area_name.as_str(),
            info.role_name.as_str()
        ),
        ("Acme", "North ward", "Nurse")
    );
    let factor = info.second_factor.expect("second factor step");
    assert!(factor.required);
    assert_eq!(
        factor.methods().collect::<Vec<_>>(),
        [pb::SecondFactorMethod::Totp, pb::SecondFactorMethod::Email]
    );
    let terms = info.terms.expect("terms");
    assert_eq!((terms.version, terms.title.as_str()), (1, "Acceptable use"));
    assert_eq!(info.password.expect("rules").min_length, 12);
    assert!(info.expire_time.is_some());
    // Viewing again works: it never spends the link.
    registration
        .get_registration(pb::GetRegistrationRequest { token: token.clone() })
        .await
        .expect("view again");
    let listed = server
        .invitations()
        .list_invitations(authed(
            pb::ListInvitationsRequest {
                state: pb::InvitationState::Opened as i32,
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.invitations.len(), 1, "viewing marked it opened");

    let begun = registration
        .begin_second_factor(pb::BeginSecondFactorRequest {
            token: token.clone(),
            method: pb::SecondFactorMethod::Totp as i32,
            mobile: String::new(),
        })
        .await
        .expect("begin")
        .into_inner();
    assert!(
        begun
            .otpauth_uri
            .starts_with("otpauth://totp/Acme:ada@acme.example?secret="),
        "{}",
        begun.otpauth_uri
    );
    let code = totp(&server, &begun.totp_secret);
    let user = registration
        .complete_registration(completion(&token, pb::SecondFactorMethod::Totp, &code, 1))
        .await
        .expect("complete")
        .into_inner();
    assert_eq!(user.status(), pb::UserStatus::Active);
    assert_eq!(
        (user.first_name.as_str(), user.mobile.as_str()),
        ("Ada", "+447700900123")
    );
    assert_eq!(user.access_grants.len(), 1);
    assert_eq!(user.access_grants[0].role_name, "Nurse");
    let events = server.audited(&org.key, "registration.complete").await;
    assert_eq!(events.len(), 1, "the registration is audited");
    assert_eq!(events[0].target_id, user.id);
    assert_eq!(
        events[0].details.get("second_factor").map(String::as_str),
        Some("totp")
    );

    // The registration spent this time step's code.
    server.state.clock.advance(chrono::TimeDelta::seconds(30));
    let first = authenticate(&server, &org, "").await.expect("password");
    assert_eq!(
        first.required_actions().collect::<Vec<_>>(),
        [pb::RequiredAction::SecondFactor]
    );
    assert_eq!(first.second_factor_method(), pb::SecondFactorMethod::Totp);
    let code_now = totp(&server, &begun.totp_secret);
    let signed_in = authenticate(&server, &org, &code_now)
        .await
        .expect("with the code");
    assert!(
        signed_in.required_actions.is_empty(),
        "{:?}",
        signed_in.required_actions
    );
    let replayed = authenticate(&server, &org, &code_now)
        .await
        .expect_err("an authenticator code is good once");
    assert_eq!(replayed.code(), Code::Unauthenticated);
    assert!(replayed.message().contains("used already"), "{replayed:?}");
    // The next time step brings the next code.
    server.state.clock.advance(chrono::TimeDelta::seconds(30));
    let wrong = authenticate(&server, &org, "000000")
        .await
        .expect_err("a wrong code");
    assert_eq!(wrong.code(), Code::Unauthenticated);

    let reused = registration
        .complete_registration(completion(&token, pb::SecondFactorMethod::Totp, &code, 1))
        .await
        .expect_err("used");
    assert_eq!(
        (reused.code(), reason(&reused).as_str()),
        (Code::FailedPrecondition, "INVITATION_USED")
    );

    // Newer terms: the next sign-in asks, and accepting settles it.
    set_policy(&server, &org, &[pb::SecondFactorMethod::Totp]).await;
    let asked = authenticate(&server, &org, &totp(&server, &begun.totp_secret))
        .await
        .expect("sign in");
    assert_eq!(
        asked.required_actions().collect::<Vec<_>>(),
        [pb::RequiredAction::AcceptTerms]
    );
    let old = registration
        .accept_terms(pb::AcceptTermsRequest {
            organization_id: org.id.clone(),
            username: "ada@acme.example".into(),
            password: PASSWORD.into(),
            terms_version: 1,
        })
        .await
        .expect_err("the old version");
    assert_eq!(old.code(), Code::InvalidArgument);
    registration
        .accept_terms(pb::AcceptTermsRequest {
            organization_id: org.id.clone(),
            username: "ada@acme.example".into(),
            password: PASSWORD.into(),
            terms_version: 2,
        })
        .await
        .expect("accept");
    server.state.clock.advance(chrono::TimeDelta::seconds(30));
    let settled = authenticate(&server, &org, &totp(&server, &begun.totp_secret))
        .await
        .expect("sign in");
    assert!(settled.required_actions.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journey_with_an_emailed_code_and_the_limit_on_wrong_codes() {
    let server = secure_server().await;
    let org = server.org("Acme").await;
    set_policy(&server, &org, &[pb::SecondFactorMethod::Email]).await;
    let token = invited_token(&server, &org, "ada@acme.example").await;
    let mut registration = server.registration();
    let begin = || pb::BeginSecondFactorRequest {
        token: token.clone(),
        method: pb::SecondFactorMethod::Email as i32,
        mobile: String::new(),
    };
    let begun = registration
        .begin_second_factor(begin())
        .await
        .expect("begin")
        .into_inner();
    assert_eq!(begun.code_sent_to, "a•••@acme.example");
    let code_of = |n: usize| {
        let mail = server.smtp.to("ada@acme.example");
        let text = mail[n].text();
        text.split_whitespace()
            .find(|w| w.len() == 6 && w.chars().all(|c| c.is_ascii_digit()))
            .expect("a six-digit code")
            .to_owned()
    };
    server.smtp.wait_for(2, DEADLINE).await;
    let code = code_of(1);
    for _ in 0..5 {
        let wrong = registration
            .complete_registration(completion(&token, pb::SecondFactorMethod::Email, "999999", 1))
            .await
            .expect_err("wrong code");
        assert_eq!(wrong.code(), Code::InvalidArgument);
        assert_eq!(violations(&wrong)[0].0, "second_factor_code");
    }
    let exhausted = registration
        .complete_registration(completion(&token, pb::SecondFactorMethod::Email, &code, 1))
        .await
        .expect_err("after five wrong tries the code stops working");
    assert_eq!(exhausted.code(), Code::InvalidArgument);

    registration
        .begin_second_factor(begin())
        .await
        .expect("a new code");
    server.smtp.wait_for(3, DEADLINE).await;
    let fresh = code_of(2);
    let user = registration
        .complete_registration(completion(&token, pb::SecondFactorMethod::Email, &fresh, 1))
        .await
        .expect("complete")
        .into_inner();
    assert_eq!(user.status(), pb::UserStatus::Active);

    let asked = authenticate(&server, &org, "").await.expect("password");
    assert_eq!(asked.second_factor_method(), pb::SecondFactorMethod::Email);
    server.smtp.wait_for(4, DEADLINE).await;
    let sign_in_code = code_of(3);
    let signed_in = authenticate(&server, &org, &sign_in_code)
        .await
        .expect("with the emailed code");
    assert!(signed_in.required_actions.is_empty());
}

/// A local SMS provider: records each POSTed body.
async fn sms_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            loop {
                let n = stream.read(&mut buffer).await.unwrap_or(0);
                request.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                let complete = text.split_once("\r\n\r\n").is_some_and(|(head, body)| {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    body.len() >= length
                });
                if n == 0 || complete {
                    if let Some((_, body)) = text.split_once("\r\n\r\n") {
                        seen.lock().unwrap().push(body.to_owned());
                    }
                    let _ = stream
                        .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                        .await;
                    break;
                }
            }
        }
    });
    (url, bodies)
}

/// A server whose texts go to a local SMS provider, and what it received.
pub async fn sms_server() -> (TestServer, Arc<Mutex<Vec<String>>>) {
    let (url, texts) = sms_receiver().await;
    let server = TestServer::start_with(|c| {
        c.secret_key = Some(onramp::secrets::SecretKey::parse(SECRET_KEY).unwrap());
        c.sms_webhook_url = Some(url);
    })
    .await;
    (server, texts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journey_with_a_texted_code() {
    let (server, texts) = sms_server().await;
    let org = server.org("Acme").await;
    set_policy(&server, &org, &[pb::SecondFactorMethod::Sms]).await;
    let token = invited_token(&server, &org, "ada@acme.example").await;
    let begun = server
        .registration()
        .begin_second_factor(pb::BeginSecondFactorRequest {
            token: token.clone(),
            method: pb::SecondFactorMethod::Sms as i32,
            mobile: "+44 7700 900123".into(),
        })
        .await
        .expect("begin")
        .into_inner();
    assert!(begun.code_sent_to.ends_with("123"), "{}", begun.code_sent_to);
    let body = texts.lock().unwrap().first().cloned().expect("a text was sent");
    let message: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(message["to"], "+447700900123");
    let code: String = message["body"]
        .as_str()
        .unwrap_or_default()
        .chars()
        .take(6)
        .collect();
    let user = server
        .registration()
        .complete_registration(completion(&token, pb::SecondFactorMethod::Sms, &code, 1))
        .await
        .expect("complete")
        .into_inner();
    assert_eq!(user.status(), pb::UserStatus::Active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_link_says_so_and_a_new_invitation_can_be_asked_for() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let token = invited_token(&server, &org, "ada@acme.example").await;
    server.state.clock.advance(chrono::TimeDelta::days(8));
    let expired = server
        .registration()
        .get_registration(pb::GetRegistrationRequest { token: token.clone() })
        .await
        .expect_err("expired");
    assert_eq!(
        (expired.code(), reason(&expired).as_str()),
        (Code::FailedPrecondition, "INVITATION_EXPIRED")
    );
    assert!(
        expired.message().contains("ask for a new one"),
        "{}",
        expired.message()
    );

    server
        .registration()
        .request_new_invitation(pb::RequestNewInvitationRequest { token: token.clone() })
        .await
        .expect("ask");
    server
        .registration()
        .request_new_invitation(pb::RequestNewInvitationRequest {
            token: "made-up".into(),
        })
        .await
        .expect("the same answer for a made-up token");
    let mail = server.smtp.wait_for(2, DEADLINE).await;
    let fresh = mail[1].link_param("token").expect("a new link");
    assert_ne!(fresh, token);
    let info = server
        .registration()
        .get_registration(pb::GetRegistrationRequest { token: fresh })
        .await
        .expect("the new link works")
        .into_inner();
    assert_eq!(info.email, "ada@acme.example");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_proofs_old_terms_paused_people_and_bogus_links_are_refused() {
    let server = secure_server().await;
    let org = server.org("Acme").await;
    set_policy(&server, &org, &[pb::SecondFactorMethod::Totp]).await;
    let token = invited_token(&server, &org, "ada@acme.example").await;
    let mut registration = server.registration();
    let begun = registration
        .begin_second_factor(pb::BeginSecondFactorRequest {
            token: token.clone(),
            method: pb::SecondFactorMethod::Totp as i32,
            mobile: String::new(),
        })
        .await
        .expect("begin")
        .into_inner();
    let code = totp(&server, &begun.totp_secret);

    let no_factor = registration
        .complete_registration(completion(&token, pb::SecondFactorMethod::Unspecified, "", 1))
        .await
        .expect_err("a second factor is required");
    assert_eq!(violations(&no_factor)[0].0, "second_factor_method");
    let old_terms = registration
        .complete_registration(completion(&token, pb::SecondFactorMethod::Totp, &code, 0))
        .await
        .expect_err("terms not accepted");
    assert_eq!(violations(&old_terms)[0].0, "accepted_terms_version");
    let wrong = registration
        .complete_registration(completion(&token, pb::SecondFactorMethod::Totp, "123456", 1))
        .await
        .expect_err("wrong code");
    assert_eq!(violations(&wrong)[0].0, "second_factor_code");
    let bad_profile = registration
        .complete_registration(pb::CompleteRegistrationRequest {
            first_name: String::new(),
            mobile: "0770".into(),
            ..completion(&token, pb::SecondFactorMethod::Totp, &code, 1)
        })
        .await
        .expect_err("bad profile");
    let fields: Vec<String> = violations(&bad_profile).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["first_name", "mobile"]);

    let bogus = registration
        .get_registration(pb::GetRegistrationRequest {
            token: "made-up".into(),
        })
        .await
        .expect_err("bogus");
    assert_eq!(bogus.code(), Code::NotFound);

    let user_id = server
        .admin()
        .list_users(authed(pb::ListUsersRequest::default(), &org.key))
        .await
        .expect("list")
        .into_inner()
        .users[0]
        .id
        .clone();
    server
        .admin()
        .deactivate_user(authed(
            pb::DeactivateUserRequest {
                user_id,
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("pause");
    let paused = registration
        .complete_registration(completion(&token, pb::SecondFactorMethod::Totp, &code, 1))
        .await
        .expect_err("paused");
    assert_eq!(paused.code(), Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_concurrent_completions_of_one_link_exactly_one_succeeds() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let token = invited_token(&server, &org, "ada@acme.example").await;
    let request = completion(&token, pb::SecondFactorMethod::Unspecified, "", 0);
    let (mut first, mut second) = (server.registration(), server.registration());
    let (a, b) = tokio::join!(
        first.complete_registration(request.clone()),
        second.complete_registration(request.clone())
    );
    let outcomes = [a.is_ok(), b.is_ok()];
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{a:?} {b:?}");
    let failed = a.err().or(b.err()).expect("one failed");
    assert_eq!(reason(&failed), "INVITATION_USED");
}

fn enrollment(
    org: &Org,
    password: &str,
    method: pb::SecondFactorMethod,
) -> pb::BeginSecondFactorEnrollmentRequest {
    pb::BeginSecondFactorEnrollmentRequest {
        organization_id: org.id.clone(),
        username: "ada@acme.example".into(),
        password: password.into(),
        method: method as i32,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_factor_set_up_at_sign_in_needs_the_password_and_a_code_and_never_replaces_one() {
    let server = secure_server().await;
    let org = server.org("Acme").await;
    let token = invited_token(&server, &org, "ada@acme.example").await;
    server
        .registration()
        .complete_registration(completion(&token, pb::SecondFactorMethod::Unspecified, "", 0))
        .await
        .expect("register without a factor");
    set_policy(&server, &org, &[pb::SecondFactorMethod::Totp]).await;
    let signed_in = authenticate(&server, &org, "").await.expect("sign in");
    assert!(
        signed_in
            .required_actions()
            .any(|a| a == pb::RequiredAction::EnrollSecondFactor)
    );
    assert_eq!(
        signed_in.second_factor_methods().collect::<Vec<_>>(),
        [pb::SecondFactorMethod::Totp]
    );
    let mut credentials = server.credentials();

    let wrong_password = credentials
        .begin_second_factor_enrollment(enrollment(&org, "not the password", pb::SecondFactorMethod::Totp))
        .await
        .expect_err("a wrong password");
    assert_eq!(wrong_password.code(), Code::Unauthenticated);
    let not_allowed = credentials
        .begin_second_factor_enrollment(enrollment(&org, PASSWORD, pb::SecondFactorMethod::Email))
        .await
        .expect_err("a method the organisation does not allow");
    assert_eq!(violations(&not_allowed)[0].0, "method");

    let begun = credentials
        .begin_second_factor_enrollment(enrollment(&org, PASSWORD, pb::SecondFactorMethod::Totp))
        .await
        .expect("begin")
        .into_inner();
    assert!(
        begun.otpauth_uri.starts_with("otpauth://totp/"),
        "{}",
        begun.otpauth_uri
    );
    // Begun is not set up: a sign-in still asks for the set-up, not a code.
    let still = authenticate(&server, &org, "").await.expect("sign in");
    assert!(
        !still
            .required_actions()
            .any(|a| a == pb::RequiredAction::SecondFactor)
    );
    let complete = |code: String| pb::CompleteSecondFactorEnrollmentRequest {
        organization_id: org.id.clone(),
        username: "ada@acme.example".into(),
        password: PASSWORD.into(),
        method: pb::SecondFactorMethod::Totp as i32,
        code,
    };
    let wrong = credentials
        .complete_second_factor_enrollment(complete("000000".into()))
        .await
        .expect_err("a wrong code");
    assert_eq!(violations(&wrong)[0].0, "code");
    credentials
        .complete_second_factor_enrollment(complete(totp(&server, &begun.totp_secret)))
        .await
        .expect("the app's code");
    server.state.clock.advance(chrono::TimeDelta::seconds(30));
    let with_factor = authenticate(&server, &org, &totp(&server, &begun.totp_secret))
        .await
        .expect("sign in with the new factor");
    // The code was taken: only the terms published with the policy remain.
    assert_eq!(
        with_factor.required_actions().collect::<Vec<_>>(),
        [pb::RequiredAction::AcceptTerms]
    );

    // With a factor, a password alone cannot set up another.
    let replace = credentials
        .begin_second_factor_enrollment(enrollment(&org, PASSWORD, pb::SecondFactorMethod::Totp))
        .await
        .expect_err("a second factor replaced with the password alone");
    assert_eq!(replace.code(), Code::FailedPrecondition);
}
