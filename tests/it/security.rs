//! The holes an outside audit reproduced, each closed and held closed: stale
//! links that could take over an active account, guessing past the lockout,
//! telling who has an account, and input that reached SQL or error messages
//! unchecked.

use diesel::{QueryableByName, sql_types::Integer};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use prost_types::{FieldMask, Timestamp};
use tonic::Code;

use crate::{
    credentials::{set_password, sign_in, staged},
    harness::{DEADLINE, finish, invite, send},
    harness::{Org, TestServer, authed, violations},
    harness::{csv, options},
    registration::{
        PASSWORD, authenticate, completion, invited_token, reason, secure_server, set_policy, totp,
    },
};
use onramp::pb::{self, import_users_response};

const NEW_PASSWORD: &str = "granite meadow lantern";

/// The token of the newest email to `to` that carries one.
async fn newest_token(server: &TestServer, to: &str, count: usize) -> String {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let mail = server.smtp.to(to);
        if mail.len() >= count {
            return mail[count - 1].link_param("token").expect("a link with a token");
        }
        assert!(tokio::time::Instant::now() < deadline, "no email {count} to {to}");
        server
            .smtp
            .wait_for(server.smtp.received().len() + 1, DEADLINE)
            .await;
    }
}

pub async fn user_by_email(server: &TestServer, org: &Org, email: &str) -> pb::User {
    server
        .admin()
        .list_users(authed(
            pb::ListUsersRequest {
                query: email.into(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("list")
        .into_inner()
        .users
        .into_iter()
        .find(|u| u.email == email)
        .expect("the user")
}

async fn user_id_of(server: &TestServer, org: &Org, email: &str) -> String {
    user_by_email(server, org, email).await.id
}

pub async fn send_reset_link(server: &TestServer, org: &Org, user_id: &str) {
    let stream = server
        .credentials()
        .send_reset_links(authed(
            pb::SendResetLinksRequest {
                user_ids: vec![user_id.into()],
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("send reset links")
        .into_inner();
    assert_eq!(finish(stream).await.expect("batch").completion.sent, 1);
}

async fn invitation_states(server: &TestServer, org: &Org) -> Vec<pb::InvitationState> {
    server
        .invitations()
        .list_invitations(authed(pb::ListInvitationsRequest::default(), &org.key))
        .await
        .expect("list invitations")
        .into_inner()
        .invitations
        .iter()
        .map(pb::Invitation::state)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_link_cannot_take_over_an_account_a_reset_activated() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let invitation = invited_token(&server, &org, "ada@acme.example").await;
    let user_id = user_id_of(&server, &org, "ada@acme.example").await;
    send_reset_link(&server, &org, &user_id).await;
    let reset = newest_token(&server, "ada@acme.example", 2).await;
    server
        .credentials()
        .complete_password_reset(pb::CompletePasswordResetRequest {
            token: reset,
            new_password: PASSWORD.into(),
        })
        .await
        .expect("the owner sets a password");
    assert_eq!(
        invitation_states(&server, &org).await,
        [pb::InvitationState::Revoked],
        "activation retires the invitation"
    );

    let takeover = server
        .registration()
        .complete_registration(completion(
            &invitation,
            pb::SecondFactorMethod::Unspecified,
            "",
            0,
        ))
        .await
        .expect_err("the old link must not register again");
    assert_eq!(
        (takeover.code(), reason(&takeover).as_str()),
        (Code::FailedPrecondition, "ALREADY_REGISTERED"),
        "{takeover:?}"
    );
    let begin = server
        .registration()
        .begin_second_factor(pb::BeginSecondFactorRequest {
            token: invitation.clone(),
            method: pb::SecondFactorMethod::Email as i32,
            mobile: String::new(),
        })
        .await
        .expect_err("nor enrol a factor");
    assert_eq!(reason(&begin), "ALREADY_REGISTERED", "{begin:?}");

    // Whatever the invitation row says, an active person is not registered
    // again.
    server
        .db()
        .await
        .batch_execute("UPDATE invitations SET state = 'sent'")
        .await
        .unwrap();
    let again = server
        .registration()
        .complete_registration(completion(
            &invitation,
            pb::SecondFactorMethod::Unspecified,
            "",
            0,
        ))
        .await
        .expect_err("still refused");
    assert_eq!(reason(&again), "ALREADY_REGISTERED", "{again:?}");
    sign_in(&server, &org, "ada@acme.example", PASSWORD)
        .await
        .expect("the owner still signs in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admins_password_or_a_first_change_retires_the_invitation() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    invited_token(&server, &org, "ada@acme.example").await;
    let ada = user_id_of(&server, &org, "ada@acme.example").await;
    set_password(&server, &org, &ada).await;
    assert_eq!(
        invitation_states(&server, &org).await,
        [pb::InvitationState::Revoked]
    );

    invited_token(&server, &org, "bob@acme.example").await;
    let bob = user_id_of(&server, &org, "bob@acme.example").await;
    server
        .credentials()
        .set_password(authed(
            pb::SetPasswordRequest {
                user_id: bob.clone(),
                password: "temporary password 1".into(),
                must_change_password: true,
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("a temporary password");
    server
        .credentials()
        .change_password(pb::ChangePasswordRequest {
            organization_id: org.id.clone(),
            username: "bob@acme.example".into(),
            password: "temporary password 1".into(),
            new_password: NEW_PASSWORD.into(),
        })
        .await
        .expect("the first change");
    let states = invitation_states(&server, &org).await;
    assert_eq!(
        states,
        [pb::InvitationState::Revoked, pb::InvitationState::Revoked],
        "newest first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_retires_a_live_reset_link() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let invitation = invited_token(&server, &org, "ada@acme.example").await;
    let user_id = user_id_of(&server, &org, "ada@acme.example").await;
    send_reset_link(&server, &org, &user_id).await;
    let reset = newest_token(&server, "ada@acme.example", 2).await;
    server
        .registration()
        .complete_registration(completion(
            &invitation,
            pb::SecondFactorMethod::Unspecified,
            "",
            0,
        ))
        .await
        .expect("register");
    let late = server
        .credentials()
        .complete_password_reset(pb::CompletePasswordResetRequest {
            token: reset,
            new_password: NEW_PASSWORD.into(),
        })
        .await
        .expect_err("the reset link was retired");
    assert_eq!(late.code(), Code::FailedPrecondition, "{late:?}");
    sign_in(&server, &org, "ada@acme.example", PASSWORD)
        .await
        .expect("the registered password");
}

#[derive(QueryableByName)]
struct Failures {
    #[diesel(sql_type = Integer)]
    failed_sign_ins: i32,
}

async fn failures(server: &TestServer) -> i32 {
    diesel::sql_query("SELECT failed_sign_ins FROM users WHERE email = 'ada@acme.example'")
        .get_result::<Failures>(&mut server.db().await)
        .await
        .unwrap()
        .failed_sign_ins
}

/// A server with an authenticator-app account for ada; answers the secret.
async fn totp_account(server: &TestServer, org: &Org) -> String {
    set_policy(server, org, &[pb::SecondFactorMethod::Totp]).await;
    let token = invited_token(server, org, "ada@acme.example").await;
    let begun = server
        .registration()
        .begin_second_factor(pb::BeginSecondFactorRequest {
            token: token.clone(),
            method: pb::SecondFactorMethod::Totp as i32,
            mobile: String::new(),
        })
        .await
        .expect("begin")
        .into_inner();
    let code = totp(server, &begun.totp_secret);
    server
        .registration()
        .complete_registration(completion(&token, pb::SecondFactorMethod::Totp, &code, 1))
        .await
        .expect("register");
    begun.totp_secret
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_second_factor_codes_count_towards_the_lockout() {
    let server = secure_server().await;
    let org = server.org("Acme").await;
    let secret = totp_account(&server, &org).await;
    server.state.clock.advance(chrono::TimeDelta::seconds(30));
    for _ in 0..12 {
        let wrong = authenticate(&server, &org, "000000")
            .await
            .expect_err("a wrong code");
        assert_eq!(wrong.code(), Code::Unauthenticated);
    }
    assert!(failures(&server).await >= 5, "wrong codes were not counted");
    let right = authenticate(&server, &org, &totp(&server, &secret))
        .await
        .expect_err("the account is locked: the right code must wait");
    assert_eq!(right.code(), Code::Unauthenticated, "{right:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_that_registered_does_not_sign_in_again() {
    let server = secure_server().await;
    let org = server.org("Acme").await;
    let secret = totp_account(&server, &org).await;
    let replayed = authenticate(&server, &org, &totp(&server, &secret))
        .await
        .expect_err("the registration's code was spent");
    assert_eq!(replayed.code(), Code::Unauthenticated, "{replayed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_alone_does_not_count_as_a_sign_in_when_a_code_is_due() {
    let server = secure_server().await;
    let org = server.org("Acme").await;
    totp_account(&server, &org).await;
    let first = authenticate(&server, &org, "").await.expect("the password step");
    assert_eq!(
        first.required_actions().collect::<Vec<_>>(),
        [pb::RequiredAction::SecondFactor]
    );
    assert_eq!(first.user.expect("user").last_sign_in_time, None);
    assert!(
        server.audited(&org.key, "credentials.sign_in").await.is_empty(),
        "no sign-in was recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_parallel_guesses_on_two_replicas_check_at_most_five_passwords() {
    let server = TestServer::start_with(|c| c.public_rate_limit = 10_000).await;
    let replica = server.replica_with(|c| c.public_rate_limit = 10_000).await;
    let org = server.org("Acme").await;
    let user = staged(&server, &org, "ada@acme.example", "ada.l").await;
    set_password(&server, &org, &user.id).await;
    let mut guesses = tokio::task::JoinSet::new();
    for n in 0..39 {
        let channel = if n % 2 == 0 {
            server.channel.clone()
        } else {
            replica.channel.clone()
        };
        let org_id = org.id.clone();
        guesses.spawn(async move {
            pb::credentials_client::CredentialsClient::new(channel)
                .authenticate(pb::AuthenticateRequest {
                    organization_id: org_id,
                    username: "ada.l".into(),
                    password: format!("wrong guess number {n}"),
                    second_factor_code: String::new(),
                })
                .await
                .map(|_| ())
        });
    }
    while let Some(answer) = guesses.join_next().await {
        let status = answer.unwrap().expect_err("a wrong guess");
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    let checked = server.audited(&org.key, "credentials.sign_in_failed").await;
    assert!(
        checked.len() <= 5,
        "{} wrong passwords were checked in one lock window",
        checked.len()
    );
    let right = sign_in(&server, &org, "ada.l", "plum tractor velvet")
        .await
        .expect_err("the account is locked");
    assert_eq!(right.code(), Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_account_answers_like_an_unknown_one_and_costs_a_hash_alike() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = staged(&server, &org, "ada@acme.example", "ada.l").await;
    set_password(&server, &org, &user.id).await;
    for _ in 0..6 {
        sign_in(&server, &org, "ada.l", "wrong password!")
            .await
            .expect_err("wrong");
    }
    let hashes = || server.state.hasher.computed();
    let before = hashes();
    let locked_wrong = sign_in(&server, &org, "ada.l", "wrong password!")
        .await
        .expect_err("locked");
    let after_locked = hashes();
    let unknown = sign_in(&server, &org, "nobody", "wrong password!")
        .await
        .expect_err("unknown");
    let after_unknown = hashes();
    let locked_right = sign_in(&server, &org, "ada.l", "plum tractor velvet")
        .await
        .expect_err("locked");
    assert_eq!(
        (locked_wrong.code(), locked_wrong.message()),
        (unknown.code(), unknown.message())
    );
    assert_eq!(
        (locked_right.code(), locked_right.message()),
        (unknown.code(), unknown.message()),
        "the right password learns nothing while the account is locked"
    );
    assert_eq!(
        (after_locked - before, after_unknown - after_locked),
        (1, 1),
        "a locked and an unknown account each cost one hash, as a known one does"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recipient_cap_counts_addresses_after_splitting() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let many: String = (0..100_001).map(|n| format!("p{n}@acme.example ")).collect();
    let status = send(
        &server,
        &org,
        pb::SendInvitationsRequest {
            emails: vec![many],
            ..invite(&org, "")
        },
    )
    .await
    .expect_err("over the cap");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("100000"), "{}", status.message());
    let written: i64 = diesel::dsl::sql::<diesel::sql_types::BigInt>("SELECT count(*) FROM batch_items")
        .get_result(&mut server.db().await)
        .await
        .unwrap();
    assert_eq!(written, 0, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_import_message_ends_the_stream_with_an_error_after_reporting_the_rows_before_it() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let huge = format!("{}\n", "x".repeat(5 << 20));
    let messages = vec![
        options(false, false),
        csv("email,first_name\nada@acme.example,Ada\ngrace@acme.example,Grace\n"),
        csv(&huge),
    ];
    let mut responses = server
        .admin()
        .import_users(authed(tokio_stream::iter(messages), &org.key))
        .await
        .expect("import")
        .into_inner();
    let mut reported = Vec::new();
    let ended = loop {
        match responses.message().await {
            Ok(Some(pb::ImportUsersResponse {
                item: Some(import_users_response::Item::Result(r)),
            })) => reported.push(r.outcome()),
            Ok(Some(other)) => panic!("no summary may end a broken import: {other:?}"),
            Ok(None) => panic!("the stream ended with OK"),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::InvalidArgument, "{ended:?}");
    assert!(ended.message().contains("MiB"), "{}", ended.message());
    assert_eq!(
        reported,
        [pb::ImportOutcome::Created, pb::ImportOutcome::Created],
        "the rows before it are committed and reported"
    );
    let listed = crate::harness::users(&server, &org).await;
    assert_eq!(listed.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_display_name_longer_than_a_name_may_be_fails_that_recipient_only() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let long = "N".repeat(10_000);
    let finished = send(
        &server,
        &org,
        invite(
            &org,
            &format!("\"{long}\" <ada@acme.example>, grace@acme.example"),
        ),
    )
    .await
    .expect("the batch");
    assert_eq!(
        finished.outcomes(),
        [
            (0, pb::RecipientOutcome::InvalidAddress),
            (1, pb::RecipientOutcome::Sent)
        ]
    );
    let users = crate::harness::users(&server, &org).await;
    assert_eq!(users.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quoted_display_name_may_hold_angle_brackets() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let finished = send(&server, &org, invite(&org, "\"A <b>\" <ada@acme.example>"))
        .await
        .expect("the batch");
    assert_eq!(finished.outcomes(), [(0, pb::RecipientOutcome::Sent)]);
    let users = crate::harness::users(&server, &org).await;
    let name = format!("{} {}", users[0].first_name, users[0].last_name);
    assert_eq!(name.trim(), "A <b>");
}

fn field_of(status: &tonic::Status) -> Vec<String> {
    violations(status).into_iter().map(|(f, _)| f).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_are_refused_with_the_field_named() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let status = server
        .credentials()
        .authenticate(pb::AuthenticateRequest {
            organization_id: org.id.clone(),
            username: "ada\0".into(),
            password: "x".into(),
            second_factor_code: String::new(),
        })
        .await
        .expect_err("NUL");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(field_of(&status), ["username"]);
    let status = server
        .credentials()
        .change_password(pb::ChangePasswordRequest {
            organization_id: org.id.clone(),
            username: "ada".into(),
            password: "pass\u{7}word".into(),
            new_password: NEW_PASSWORD.into(),
        })
        .await
        .expect_err("BEL");
    assert_eq!(field_of(&status), ["password"], "{status:?}");
    let status = server
        .admin()
        .list_users(authed(
            pb::ListUsersRequest {
                query: "a\0".into(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect_err("NUL");
    assert_eq!(field_of(&status), ["query"], "{status:?}");
    let status = server
        .invitations()
        .list_invitations(authed(
            pb::ListInvitationsRequest {
                email: "a\0@b.co".into(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect_err("NUL");
    assert_eq!(field_of(&status), ["email"], "{status:?}");
    let status = server
        .admin()
        .list_audit_events(authed(
            pb::ListAuditEventsRequest {
                action: "user.\0".into(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect_err("NUL");
    assert_eq!(field_of(&status), ["action"], "{status:?}");
    let status = server
        .invitations()
        .update_template(authed(
            pb::UpdateTemplateRequest {
                template: Some(pb::Template {
                    kind: pb::EmailKind::Invitation as i32,
                    locale: "en".into(),
                    subject: "Hello\0".into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["subject".into()],
                }),
                reset_to_default: false,
            },
            &org.key,
        ))
        .await
        .expect_err("NUL");
    assert_eq!(field_of(&status), ["template.subject"], "{status:?}");
    let status = send(
        &server,
        &org,
        pb::SendInvitationsRequest {
            idempotency_key: "key\0".into(),
            ..invite(&org, "ada@acme.example")
        },
    )
    .await
    .expect_err("NUL");
    assert_eq!(field_of(&status), ["idempotency_key"], "{status:?}");

    // One bad recipient is one result, never a failed batch.
    let finished = send(
        &server,
        &org,
        pb::SendInvitationsRequest {
            emails: vec!["gr\0ace@acme.example".into()],
            ..invite(&org, "ada@acme.example, \"Bad\0Name\" <bob@acme.example>")
        },
    )
    .await
    .expect("the batch");
    assert_eq!(
        finished.outcomes(),
        [
            (0, pb::RecipientOutcome::Sent),
            (1, pb::RecipientOutcome::InvalidAddress),
            (2, pb::RecipientOutcome::InvalidAddress)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_value_is_refused_without_being_echoed() {
    let server = TestServer::start().await;
    let huge = "9".repeat(3 << 20);
    let status = server
        .credentials()
        .authenticate(pb::AuthenticateRequest {
            organization_id: huge.clone(),
            username: "ada".into(),
            password: "x".into(),
            second_factor_code: String::new(),
        })
        .await
        .expect_err("too long");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().len() < 300,
        "{} bytes of error",
        status.message().len()
    );
    let details: usize = violations(&status).iter().map(|(f, d)| f.len() + d.len()).sum();
    assert!(details < 300, "{details} bytes of details");
    let status = server
        .credentials()
        .authenticate(pb::AuthenticateRequest {
            organization_id: "x".repeat(4000),
            username: "ada".into(),
            password: "x".into(),
            second_factor_code: String::new(),
        })
        .await
        .expect_err("not an id");
    assert!(
        status.message().len() < 300,
        "{} bytes of error",
        status.message().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_username_that_is_another_persons_email_does_not_reach_their_account() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let yolanda = staged(&server, &org, "yolanda@acme.example", "yolanda").await;
    set_password(&server, &org, &yolanda.id).await;
    // Refused when written through the API...
    let refused = server
        .admin()
        .create_user(authed(
            pb::CreateUserRequest {
                email: "xavier@acme.example".into(),
                username: "Yolanda@acme.example".into(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect_err("a username that is another person's email");
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");
    // ...and, for data written before the rule, an email wins over a
    // username at sign-in and reset.
    let xavier = staged(&server, &org, "xavier@acme.example", "xavier").await;
    server
        .db()
        .await
        .batch_execute(&format!(
            "UPDATE users SET username = 'yolanda@acme.example' WHERE id = '{}'",
            xavier.id
        ))
        .await
        .unwrap();
    server
        .credentials()
        .set_password(authed(
            pb::SetPasswordRequest {
                user_id: xavier.id.clone(),
                password: "copper kettle harbour".into(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("xavier's password");
    let as_xavier = sign_in(&server, &org, "yolanda@acme.example", "copper kettle harbour")
        .await
        .expect_err("the name is yolanda's email");
    assert_eq!(as_xavier.code(), Code::Unauthenticated);
    let as_yolanda = sign_in(&server, &org, "yolanda@acme.example", "plum tractor velvet")
        .await
        .expect("yolanda signs in with her email");
    assert_eq!(as_yolanda.user.expect("user").id, yolanda.id);
    let before = server.smtp.received().len();
    server
        .credentials()
        .request_password_reset(pb::RequestPasswordResetRequest {
            organization_id: org.id.clone(),
            email: String::new(),
            username: "yolanda@acme.example".into(),
        })
        .await
        .expect("reset");
    let mail = server.smtp.wait_for(before + 1, DEADLINE).await;
    assert_eq!(mail[before].to, ["yolanda@acme.example"]);
}

/// Asks for a key of `scope` that expires at `expire_seconds` (Unix time),
/// if given.
async fn create_key(
    server: &TestServer,
    org: &Org,
    scope: pb::ApiKeyScope,
    expire_seconds: Option<i64>,
) -> Result<String, tonic::Status> {
    server
        .admin()
        .create_api_key(authed(
            pb::CreateApiKeyRequest {
                name: "test key".into(),
                scopes: vec![scope as i32],
                expire_time: expire_seconds.map(|seconds| Timestamp { seconds, nanos: 0 }),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .map(|k| k.into_inner().secret)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_stops_at_its_expiry_even_when_cached() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let now = server.state.clock.now();
    let key = create_key(&server, &org, pb::ApiKeyScope::Read, Some(now.timestamp() + 60))
        .await
        .expect("key");
    let mut admin = server.admin();
    admin
        .list_users(authed(pb::ListUsersRequest::default(), &key))
        .await
        .expect("a live key");
    server.state.clock.advance(chrono::TimeDelta::seconds(61));
    let expired = admin
        .list_users(authed(pb::ListUsersRequest::default(), &key))
        .await
        .expect_err("expired");
    assert_eq!(expired.code(), Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_past_year_9999_and_unknown_policy_paths_are_refused() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let far = create_key(
        &server,
        &org,
        pb::ApiKeyScope::Read,
        Some(253_402_300_800 + 86_400),
    )
    .await
    .expect_err("after 9999");
    assert_eq!(field_of(&far), ["expire_time"], "{far:?}");
    let unknown = server
        .admin()
        .update_organization(authed(
            pb::UpdateOrganizationRequest {
                organization: Some(pb::Organization::default()),
                update_mask: Some(FieldMask {
                    paths: vec!["policy.no_such_field".into()],
                }),
            },
            &org.key,
        ))
        .await
        .expect_err("unknown path");
    assert_eq!(field_of(&unknown), ["update_mask"], "{unknown:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_failed_invitation_does_not_register() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let token = invited_token(&server, &org, "ada@acme.example").await;
    server
        .db()
        .await
        .batch_execute("UPDATE invitations SET state = 'failed'")
        .await
        .unwrap();
    server.state.clock.advance(chrono::TimeDelta::days(8));
    let late = server
        .registration()
        .get_registration(pb::GetRegistrationRequest { token: token.clone() })
        .await
        .expect_err("expired");
    assert_eq!(reason(&late), "INVITATION_EXPIRED", "{late:?}");
    let late = server
        .registration()
        .complete_registration(completion(&token, pb::SecondFactorMethod::Unspecified, "", 0))
        .await
        .expect_err("expired");
    assert_eq!(reason(&late), "INVITATION_EXPIRED", "{late:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitations_key_edits_invitation_templates_only() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let key = create_key(&server, &org, pb::ApiKeyScope::InvitationsWrite, None)
        .await
        .expect("key");
    let edit = |kind: pb::EmailKind| {
        let mut invitations = server.invitations();
        let request = authed(
            pb::UpdateTemplateRequest {
                template: Some(pb::Template {
                    kind: kind as i32,
                    locale: "en".into(),
                    subject: "Hello from Acme".into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["subject".into()],
                }),
                reset_to_default: false,
            },
            &key,
        );
        async move { invitations.update_template(request).await }
    };
    edit(pb::EmailKind::Invitation).await.expect("its own kind");
    for kind in [pb::EmailKind::Credentials, pb::EmailKind::PasswordReset] {
        let refused = edit(kind).await.expect_err("credentials' templates");
        assert_eq!(refused.code(), Code::PermissionDenied, "{kind:?}: {refused:?}");
    }
}

/// A value an attacker or a broken client might send: binary, control
/// characters, oversize, odd Unicode, or something nearly right.
fn nasty(rng: &mut impl rand::Rng, org_id: &str) -> String {
    match rng.random_range(0..9) {
        0 => {
            let bytes: Vec<u8> = (0..rng.random_range(0..80)).map(|_| rng.random()).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        1 => (0..rng.random_range(1..40))
            .map(|_| char::from(rng.random_range(0u8..0x20)))
            .collect(),
        2 => "x".repeat(rng.random_range(2_000..12_000)),
        3 => "é😀\u{202e}\u{feff}<script>'\"%00".repeat(rng.random_range(1..20)),
        4 => String::new(),
        5 => org_id.to_owned(),
        6 => format!("ada{}@acme.example", char::from(rng.random_range(0u8..0x80))),
        7 => "+44 7700 900123\0".into(),
        _ => "plum tractor velvet".into(),
    }
}

fn not_a_fault(status: &tonic::Status, rpc: &str) {
    assert!(
        !matches!(status.code(), Code::Internal | Code::Unknown | Code::DataLoss),
        "{rpc} answered {status:?}"
    );
    assert!(
        status.message().len() < 2_000,
        "{rpc} echoed {} bytes",
        status.message().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_in_every_public_text_field_never_fault_the_server() {
    use rand::SeedableRng;
    let server = TestServer::start_with(|c| c.public_rate_limit = 1_000_000).await;
    let org = server.org("Acme").await;
    let user = staged(&server, &org, "ada@acme.example", "ada.l").await;
    set_password(&server, &org, &user.id).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let credentials = server.credentials();
    let registration = server.registration();
    for _ in 0..40 {
        let mut n = || nasty(&mut rng, &org.id);
        let answers = [
            (
                "Authenticate",
                credentials
                    .clone()
                    .authenticate(pb::AuthenticateRequest {
                        organization_id: n(),
                        username: n(),
                        password: n(),
                        second_factor_code: n(),
                    })
                    .await
                    .err(),
            ),
            (
                "ChangePassword",
                credentials
                    .clone()
                    .change_password(pb::ChangePasswordRequest {
                        organization_id: n(),
                        username: n(),
                        password: n(),
                        new_password: n(),
                    })
                    .await
                    .err(),
            ),
            (
                "RequestPasswordReset",
                credentials
                    .clone()
                    .request_password_reset(pb::RequestPasswordResetRequest {
                        organization_id: n(),
                        email: n(),
                        username: n(),
                    })
                    .await
                    .err(),
            ),
            (
                "CompletePasswordReset",
                credentials
                    .clone()
                    .complete_password_reset(pb::CompletePasswordResetRequest {
                        token: n(),
                        new_password: n(),
                    })
                    .await
                    .err(),
            ),
            (
                "GetPasswordReset",
                credentials
                    .clone()
                    .get_password_reset(pb::GetPasswordResetRequest { token: n() })
                    .await
                    .err(),
            ),
            (
                "GetRegistration",
                registration
                    .clone()
                    .get_registration(pb::GetRegistrationRequest { token: n() })
                    .await
                    .err(),
            ),
            (
                "BeginSecondFactor",
                registration
                    .clone()
                    .begin_second_factor(pb::BeginSecondFactorRequest {
                        token: n(),
                        method: pb::SecondFactorMethod::Sms as i32,
                        mobile: n(),
                    })
                    .await
                    .err(),
            ),
            (
                "CompleteRegistration",
                registration
                    .clone()
                    .complete_registration(pb::CompleteRegistrationRequest {
                        token: n(),
                        first_name: n(),
                        last_name: n(),
                        mobile: n(),
                        password: n(),
                        second_factor_method: 0,
                        second_factor_code: n(),
                        accepted_terms_version: 0,
                    })
                    .await
                    .err(),
            ),
            (
                "AcceptTerms",
                registration
                    .clone()
                    .accept_terms(pb::AcceptTermsRequest {
                        organization_id: n(),
                        username: n(),
                        password: n(),
                        terms_version: 1,
                    })
                    .await
                    .err(),
            ),
            (
                "RequestNewInvitation",
                registration
                    .clone()
                    .request_new_invitation(pb::RequestNewInvitationRequest { token: n() })
                    .await
                    .err(),
            ),
        ];
        for (rpc, status) in answers {
            if let Some(status) = status {
                not_a_fault(&status, rpc);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_recipients_each_get_a_result_and_no_batch_is_dropped() {
    use rand::{Rng, SeedableRng};
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for round in 0..8 {
        let text: Vec<String> = (0..rng.random_range(1..30))
            .map(|_| nasty(&mut rng, &org.id))
            .collect();
        let emails: Vec<String> = (0..rng.random_range(0..5))
            .map(|_| nasty(&mut rng, &org.id))
            .collect();
        let separator = ["\n", ", ", ";", " "][round % 4];
        let request = pb::SendInvitationsRequest {
            emails,
            ..invite(&org, &text.join(separator))
        };
        match send(&server, &org, request).await {
            Ok(finished) => assert_eq!(
                finished.results.len(),
                usize::try_from(finished.summary.total).unwrap(),
                "one result per recipient"
            ),
            // Only a request without a single entry may be refused whole.
            Err(status) => {
                not_a_fault(&status, "SendInvitations");
                assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
                assert_eq!(field_of(&status), ["recipients_text"], "{status:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_an_import_fail_their_row_only() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let row = |email: &str, first_name: &str, service_area: &str| pb::ImportUsersRequest {
        item: Some(pb::import_users_request::Item::Row(pb::ImportRow {
            email: email.into(),
            first_name: first_name.into(),
            service_area: service_area.into(),
            ..Default::default()
        })),
    };
    let (results, summary) = crate::harness::import(
        &server,
        &org,
        vec![
            options(false, false),
            row("ada@acme.example", "Ada", ""),
            row("bob@acme.example", "B\0b", ""),
            row("cy@acme.example", "Cy", "North\0ward"),
            row("d\0@acme.example", "Di", ""),
            // A tab would make the name unreadable to a client that checks
            // its answers as the server checks requests.
            row("eve@acme.example", "E\tve", ""),
        ],
    )
    .await
    .expect("the import");
    let outcomes: Vec<_> = results.iter().map(pb::ImportRowResult::outcome).collect();
    assert_eq!(
        outcomes,
        [
            pb::ImportOutcome::Created,
            pb::ImportOutcome::Error,
            pb::ImportOutcome::Error,
            pb::ImportOutcome::Error,
            pb::ImportOutcome::Error
        ]
    );
    assert_eq!((summary.created, summary.errors), (1, 4));
    for error in results.iter().flat_map(|r| &r.errors) {
        assert!(!error.description.contains('\0'), "{error:?}");
    }
}
