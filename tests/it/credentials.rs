//! Credentials through gRPC and the real SMTP receiver: emailed temporary
//! passwords, reset links, the password policy, lockout and expiry.

use std::time::Duration;

use diesel::{QueryableByName, sql_types::Text};
use diesel_async::RunQueryDsl;
use tonic::Code;

use crate::{
    harness::{DEADLINE, finish},
    harness::{Org, TestServer, authed, violations},
};
use onramp::pb;

pub async fn staged(server: &TestServer, org: &Org, email: &str, username: &str) -> pb::User {
    server
        .admin()
        .create_user(authed(
            pb::CreateUserRequest {
                email: email.into(),
                username: username.into(),
                first_name: "Ada".into(),
                service_area_id: org.service_area_id.clone(),
                role_id: org.role_id.clone(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("user")
        .into_inner()
}

/// The stream of emailing `user_id` a temporary password.
async fn start_emailing_credentials(
    server: &TestServer,
    org: &Org,
    user_id: &str,
) -> tonic::Streaming<pb::BatchEvent> {
    server
        .credentials()
        .email_credentials(authed(
            pb::EmailCredentialsRequest {
                user_ids: vec![user_id.into()],
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("email credentials")
        .into_inner()
}

pub async fn email_credentials(server: &TestServer, org: &Org, user_id: &str) -> crate::harness::Finished {
    finish(start_emailing_credentials(server, org, user_id).await)
        .await
        .expect("batch")
}

pub async fn set_password(server: &TestServer, org: &Org, user_id: &str) {
    server
        .credentials()
        .set_password(authed(
            pb::SetPasswordRequest {
                user_id: user_id.into(),
                password: "plum tractor velvet".into(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("set a password");
}

/// The value after `label` on a line of the email's text.
pub fn line_value(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no '{label}' in {text}"))
}

pub async fn sign_in(
    server: &TestServer,
    org: &Org,
    login: &str,
    password: &str,
) -> Result<pb::AuthenticateResponse, tonic::Status> {
    server
        .credentials()
        .authenticate(pb::AuthenticateRequest {
            organization_id: org.id.clone(),
            username: login.into(),
            password: password.into(),
            second_factor_code: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[derive(QueryableByName)]
struct Dump {
    #[diesel(sql_type = Text)]
    text: String,
}

/// Every row of every table, as text.
async fn database_text(server: &TestServer) -> String {
    let mut conn = server.db().await;
    let tables: Vec<Dump> = diesel::sql_query(
        "SELECT tablename AS text FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE '\\_\\_%'",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let mut all = String::new();
    for table in tables {
        let rows: Vec<Dump> = diesel::sql_query(format!(
            "SELECT coalesce(string_agg(t::text, '\n'), '') AS text FROM \"{}\" t",
            table.text
        ))
        .load(&mut conn)
        .await
        .unwrap();
        all.push_str(&rows[0].text);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emailed_credentials_sign_in_once_then_require_a_change_and_are_never_stored_in_plaintext() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = staged(&server, &org, "ada@acme.example", "ada.l").await;
    let finished = email_credentials(&server, &org, &user.id).await;
    assert_eq!(
        finished.outcomes(),
        [(0, pb::RecipientOutcome::Sent)],
        "{:?}",
        finished.results
    );
    let email = &server.smtp.wait_for(1, DEADLINE).await[0];
    let text = email.text();
    assert_eq!(line_value(&text, "Username:"), "ada.l");
    let password = line_value(&text, "Temporary password:");
    assert!(password.len() >= 16, "{password}");
    assert!(email.html().contains(&password));

    let everything = database_text(&server).await;
    assert!(everything.contains("$argon2id$"), "the hash is stored");
    assert!(
        !everything.contains(&password),
        "the temporary password is in the database"
    );

    let signed_in = sign_in(&server, &org, "ada.l", &password)
        .await
        .expect("sign in with the emailed password");
    assert_eq!(
        signed_in.required_actions().collect::<Vec<_>>(),
        [pb::RequiredAction::ChangePassword]
    );
    assert_eq!(signed_in.user.expect("user").status(), pb::UserStatus::Pending);

    server
        .credentials()
        .change_password(pb::ChangePasswordRequest {
            organization_id: org.id.clone(),
            username: "ADA@acme.example".into(),
            password: password.clone(),
            new_password: "plum tractor velvet".into(),
        })
        .await
        .expect("change");
    let after = sign_in(&server, &org, "ada.l", "plum tractor velvet")
        .await
        .expect("the new password");
    assert!(after.required_actions.is_empty(), "{:?}", after.required_actions);
    let signed_in_user = after.user.expect("user");
    assert_eq!(signed_in_user.status(), pb::UserStatus::Active);
    assert!(signed_in_user.last_sign_in_time.is_some());
    let grants: Vec<(&str, &str)> = signed_in_user
        .access_grants
        .iter()
        .map(|g| (g.service_area_name.as_str(), g.role_name.as_str()))
        .collect();
    assert_eq!(
        grants,
        [("North ward", "Nurse")],
        "the sign-in answers the grants"
    );
    let events = server.audited(&org.key, "credentials.sign_in").await;
    assert_eq!(events.len(), 2, "each successful sign-in is audited");
    let old = sign_in(&server, &org, "ada.l", &password)
        .await
        .expect_err("the old one");
    assert_eq!(old.code(), Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_send_mints_a_new_password_and_a_later_send_another() {
    #[derive(QueryableByName)]
    struct Hash {
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        password_hash: Option<String>,
    }
    let server = TestServer::start_with(|c| c.outbox.retry_base = Duration::from_millis(300)).await;
    let org = server.org("Acme").await;
    let user = staged(&server, &org, "ada@acme.example", "ada.l").await;
    let hash = || async {
        let rows: Vec<Hash> = diesel::sql_query("SELECT password_hash FROM users WHERE id = $1::uuid")
            .bind::<Text, _>(&user.id)
            .load(&mut server.db().await)
            .await
            .unwrap();
        rows.into_iter().next().and_then(|r| r.password_hash)
    };
    server.smtp.set(|b| b.defer = vec!["ada@acme.example".into()]);
    let stream = start_emailing_credentials(&server, &org, &user.id).await;
    #[derive(QueryableByName)]
    struct Deferred {
        #[diesel(sql_type = Text)]
        last_error: String,
    }
    // The first attempt is over once its deferral is recorded; only then may
    // the SMTP server accept, or the first attempt itself could succeed.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let first = loop {
        let deferred: Vec<Deferred> =
            diesel::sql_query("SELECT last_error FROM outbox WHERE user_id = $1::uuid AND state = 'queued'")
                .bind::<Text, _>(&user.id)
                .load(&mut server.db().await)
                .await
                .unwrap();
        if deferred.iter().any(|d| !d.last_error.is_empty())
            && let Some(h) = hash().await
        {
            break h;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first attempt was not deferred"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    server.smtp.set(|b| b.defer.clear());
    finish(stream).await.expect("batch");
    let emailed = line_value(
        &server.smtp.wait_for(1, DEADLINE).await[0].text(),
        "Temporary password:",
    );
    assert_ne!(hash().await, Some(first), "the retry minted a new password");
    sign_in(&server, &org, "ada.l", &emailed)
        .await
        .expect("the emailed one works");

    email_credentials(&server, &org, &user.id).await;
    let again = line_value(
        &server.smtp.wait_for(2, DEADLINE).await[1].text(),
        "Temporary password:",
    );
    assert_ne!(again, emailed);
    sign_in(&server, &org, "ada.l", &again)
        .await
        .expect("the newest one works");
    let status = sign_in(&server, &org, "ada.l", &emailed)
        .await
        .expect_err("the older one does not");
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_request_answers_the_same_for_known_and_unknown_addresses_and_sends_one_email() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    staged(&server, &org, "ada@acme.example", "ada.l").await;
    let request = |email: &str| pb::RequestPasswordResetRequest {
        organization_id: org.id.clone(),
        email: email.into(),
        username: String::new(),
    };
    let unknown = server
        .credentials()
        .request_password_reset(request("nobody@acme.example"))
        .await
        .expect("unknown");
    let known = server
        .credentials()
        .request_password_reset(request("ada@acme.example"))
        .await
        .expect("known");
    assert_eq!(unknown.get_ref(), known.get_ref());
    assert_eq!(unknown.metadata().len(), known.metadata().len());
    let mail = server.smtp.wait_for(1, DEADLINE).await;
    assert_eq!(mail[0].to, ["ada@acme.example"]);
    assert!(mail[0].link_param("token").is_some());
    let deliveries = server
        .invitations()
        .list_deliveries(authed(pb::ListDeliveriesRequest::default(), &org.key))
        .await
        .expect("deliveries")
        .into_inner()
        .deliveries;
    assert_eq!(deliveries.len(), 1, "nothing was queued for the unknown address");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_link_works_once_and_tells_the_username() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = staged(&server, &org, "ada@acme.example", "ada.l").await;
    // The "general welcome with a reset link" way of onboarding.
    let stream = server
        .credentials()
        .send_reset_links(authed(
            pb::SendResetLinksRequest {
                user_ids: vec![user.id.clone()],
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("send")
        .into_inner();
    assert_eq!(finish(stream).await.expect("batch").completion.sent, 1);
    let email = &server.smtp.wait_for(1, DEADLINE).await[0];
    assert!(email.subject().contains("Welcome"), "{}", email.subject());
    let token = email.link_param("token").expect("token");
    let complete = |password: &str| pb::CompletePasswordResetRequest {
        token: token.clone(),
        new_password: password.into(),
    };
    let done = server
        .credentials()
        .complete_password_reset(complete("plum tractor velvet"))
        .await
        .expect("complete")
        .into_inner();
    assert_eq!(done.username, "ada.l");
    let events = server.audited(&org.key, "credentials.password_reset").await;
    assert_eq!(events.len(), 1, "the reset is audited");
    assert!(events[0].actor.starts_with("user:"), "{:?}", events[0]);
    let again = server
        .credentials()
        .complete_password_reset(complete("another fine password"))
        .await
        .expect_err("used");
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(again.message().contains("already used"), "{}", again.message());
    let signed_in = sign_in(&server, &org, "ada@acme.example", "plum tractor velvet")
        .await
        .expect("sign in");
    assert!(signed_in.required_actions.is_empty());
    assert_eq!(signed_in.user.expect("user").status(), pb::UserStatus::Active);
    let bogus = server
        .credentials()
        .complete_password_reset(pb::CompletePasswordResetRequest {
            token: "not-a-token".into(),
            new_password: "plum tractor velvet".into(),
        })
        .await
        .expect_err("unknown token");
    assert_eq!(bogus.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_password_rule_has_its_own_message() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = staged(&server, &org, "ada.lovelace@acme.example", "countess").await;
    for (password, reason) in [
        ("short", "at least 12 characters"),
        (&"x".repeat(129) as &str, "at most 128"),
        ("Password1234", "commonly used"),
        ("the countess of lovelace", "username"),
        ("i am ada.lovelace!", "email"),
    ] {
        let status = server
            .credentials()
            .set_password(authed(
                pb::SetPasswordRequest {
                    user_id: user.id.clone(),
                    password: password.into(),
                    ..Default::default()
                },
                &org.key,
            ))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument);
        let found = violations(&status);
        assert!(
            found.iter().any(|(f, d)| f == "password" && d.contains(reason)),
            "{reason}: {found:?}"
        );
    }
    let set = server
        .credentials()
        .set_password(authed(
            pb::SetPasswordRequest {
                user_id: user.id.clone(),
                password: "plum tractor velvet".into(),
                must_change_password: true,
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("a good password")
        .into_inner();
    assert!(set.has_password && set.must_change_password);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_lock_the_account_for_a_while_and_wrong_usernames_look_the_same() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = staged(&server, &org, "ada@acme.example", "ada.l").await;
    set_password(&server, &org, &user.id).await;
    let wrong_password = sign_in(&server, &org, "ada.l", "wrong password!")
        .await
        .expect_err("wrong");
    let wrong_username = sign_in(&server, &org, "nobody", "wrong password!")
        .await
        .expect_err("unknown");
    assert_eq!(wrong_password.code(), Code::Unauthenticated);
    assert_eq!(
        (wrong_password.code(), wrong_password.message()),
        (wrong_username.code(), wrong_username.message())
    );
    for _ in 0..4 {
        sign_in(&server, &org, "ada.l", "wrong password!")
            .await
            .expect_err("wrong");
    }
    let locked = sign_in(&server, &org, "ada.l", "plum tractor velvet")
        .await
        .expect_err("locked");
    assert_eq!(
        (locked.code(), locked.message()),
        (wrong_username.code(), wrong_username.message()),
        "a locked account answers as an unknown one, even to the right password"
    );
    assert!(locked.message().contains("locked"), "{}", locked.message());

    server.state.clock.advance(chrono::TimeDelta::seconds(61));
    sign_in(&server, &org, "ada.l", "plum tractor velvet")
        .await
        .expect("released after a minute");
    let events = server.audited(&org.key, "credentials.sign_in_failed").await;
    assert_eq!(events.len(), 5);
    assert!(
        events
            .iter()
            .all(|e| !e.details.values().any(|v| v.contains("wrong password")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_temporary_password_has_its_own_error_and_a_paused_account_is_refused() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = staged(&server, &org, "ada@acme.example", "ada.l").await;
    email_credentials(&server, &org, &user.id).await;
    let password = line_value(
        &server.smtp.wait_for(1, DEADLINE).await[0].text(),
        "Temporary password:",
    );
    server
        .state
        .clock
        .advance(chrono::TimeDelta::days(7) + chrono::TimeDelta::seconds(1));
    let expired = sign_in(&server, &org, "ada.l", &password)
        .await
        .expect_err("expired");
    assert_eq!(expired.code(), Code::FailedPrecondition);
    assert!(expired.message().contains("expired"), "{}", expired.message());
    let wrong = sign_in(&server, &org, "ada.l", "not the password")
        .await
        .expect_err("wrong");
    assert_eq!(
        wrong.code(),
        Code::Unauthenticated,
        "a wrong password is not an expired one"
    );

    set_password(&server, &org, &user.id).await;
    server
        .admin()
        .deactivate_user(authed(
            pb::DeactivateUserRequest {
                user_id: user.id.clone(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("deactivate");
    let paused = sign_in(&server, &org, "ada.l", "plum tractor velvet")
        .await
        .expect_err("paused");
    assert_eq!(paused.code(), Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credentials_preview_names_the_organisations_real_sign_in_page() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = staged(&server, &org, "ada@acme.example", "ada.l").await;
    let sign_in = format!("{}/sign-in?organization={}", server.address, org.id);
    let stream = server
        .credentials()
        .email_credentials(authed(
            pb::EmailCredentialsRequest {
                user_ids: vec![user.id.clone()],
                dry_run: true,
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("dry run")
        .into_inner();
    let preview = finish(stream).await.expect("dry run").preview.expect("a preview");
    assert!(preview.text_body.contains(&sign_in), "{}", preview.text_body);
    let rendered = server
        .invitations()
        .render_template(authed(
            pb::RenderTemplateRequest {
                kind: pb::EmailKind::Credentials as i32,
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("render")
        .into_inner();
    assert!(rendered.text_body.contains(&sign_in), "{}", rendered.text_body);
}
