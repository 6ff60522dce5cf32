//! The person's pages in a real Chromium, against the real server, database
//! and SMTP receiver: every journey starts from the link in a received email
//! and ends in the state the API reports. Screenshots of every page land in
//! `target/screenshots/<journey>/`.

use std::time::Duration;

use prost_types::FieldMask;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    browser::{Browser, WAIT},
    credentials::{email_credentials, line_value, staged},
    harness::{DEADLINE, invite, send},
    harness::{Org, TestServer, authed},
    registration::{secure_server, set_policy, sms_server, totp},
    security::{send_reset_link, user_by_email},
    smtp::Received,
};
use onramp::pb;

const PASSWORD: &str = "plum tractor velvet";

/// The `n`th email to `address` (from 0), once it has arrived.
pub async fn nth_email(server: &TestServer, address: &str, n: usize) -> Received {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(mail) = server.smtp.to(address).into_iter().nth(n) {
            return mail;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "email {n} to {address} never came"
        );
        // Polled: the receiver's own wait fails the test at its deadline.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The link in `mail` to this server's page at `path`.
pub fn page_link(server: &TestServer, mail: &Received, path: &str) -> String {
    let prefix = format!("{}{path}", server.address);
    mail.links()
        .into_iter()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} link in:\n{}", mail.text()))
}

/// Invites `email`, and answers the registration link from the email.
async fn invitation_link(server: &TestServer, org: &Org, email: &str) -> String {
    let before = server.smtp.to(email).len();
    send(server, org, invite(org, email)).await.expect("invite");
    page_link(
        server,
        &nth_email(server, email, before).await,
        "/register?token=",
    )
}

/// A six-digit code in an email's text.
fn code_in(mail: &Received) -> String {
    let text = mail.text();
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no code in:\n{text}"))
        .to_owned()
}

async fn invitation_of(server: &TestServer, org: &Org, email: &str) -> pb::Invitation {
    server
        .invitations()
        .list_invitations(authed(pb::ListInvitationsRequest::default(), &org.key))
        .await
        .expect("list invitations")
        .into_inner()
        .invitations
        .into_iter()
        .rfind(|i| i.email == email)
        .expect("the invitation")
}

/// Fills the profile and password of the registration form.
async fn fill_profile(browser: &Browser, password: &str) {
    browser.fill("#f-first_name", "Ada").await;
    browser.fill("#f-last_name", "Lovelace").await;
    browser.fill("#f-mobile", "+447700900123").await;
    browser.fill("#f-password", password).await;
}

pub async fn assert_accessible(browser: &Browser, page: &str) {
    let violations = browser.accessibility_violations().await;
    assert!(
        violations.is_empty(),
        "axe-core on {page}:\n{}",
        violations.join("\n")
    );
}

/// Registers through the form, with whatever second-factor step `factor`
/// performs, and answers the username the done page shows.
pub async fn register(browser: &Browser, link: &str, factor: impl AsyncFnOnce(&Browser)) -> String {
    browser.goto(link).await;
    browser.wait_for_text("Create your account at Acme").await;
    browser.shot("registration-form").await;
    fill_profile(browser, PASSWORD).await;
    factor(browser).await;
    browser.shot("registration-filled").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("Your account is ready").await;
    browser.shot("registration-done").await;
    browser.text("#username").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_registers_with_a_password_alone_using_only_the_keyboard() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let link = invitation_link(&server, &org, "ada@acme.example").await;
    let browser = Browser::start("1-password-only").await;
    browser.goto(&link).await;
    browser.wait_for_text("Create your account at Acme").await;
    // The token leaves the address bar once the page has read it.
    let shown = browser.url().await;
    assert!(
        !shown.contains("token"),
        "the token stays in the address bar: {shown}"
    );
    assert!(
        browser
            .text("body")
            .await
            .contains("Your access: Nurse in North ward."),
        "{}",
        browser.text("body").await
    );
    assert_eq!(browser.value("#f-email").await, "ada@acme.example");
    assert!(
        browser
            .find("#f-email")
            .await
            .attr("readonly")
            .await
            .unwrap()
            .is_some(),
        "the invited address can be changed"
    );
    browser.shot("registration-form").await;
    assert_accessible(&browser, "the registration form").await;

    // Tab from the heading through the form, typing as a person would.
    for (field, value) in [
        ("f-first_name", "Ada"),
        ("f-last_name", "Lovelace"),
        ("f-mobile", "+447700900123"),
        ("f-password", PASSWORD),
    ] {
        for _ in 0..6 {
            if browser.focused().await == field {
                break;
            }
            browser.tab().await;
        }
        assert_eq!(browser.focused().await, field, "Tab never reached {field}");
        browser.keys(value).await;
    }
    assert!(
        browser.text(".rules").await.contains("(done)"),
        "the length rule is not checked while typing: {}",
        browser.text(".rules").await
    );
    browser.shot("registration-filled").await;
    browser.enter().await;
    browser.wait_for_text("Your account is ready").await;
    browser.shot("registration-done").await;
    assert_accessible(&browser, "the registration confirmation").await;
    assert_eq!(browser.text("#username").await, "ada@acme.example");
    let continue_to = browser
        .find("a.button")
        .await
        .attr("href")
        .await
        .unwrap()
        .expect("a continue link");
    assert_eq!(
        continue_to,
        format!("{}/sign-in?organization={}", server.address, org.id)
    );
    browser.close().await;

    let user = user_by_email(&server, &org, "ada@acme.example").await;
    assert_eq!(user.status(), pb::UserStatus::Active);
    assert_eq!(user.first_name, "Ada");
    assert_eq!(
        invitation_of(&server, &org, "ada@acme.example").await.state(),
        pb::InvitationState::Accepted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_registers_with_an_authenticator_app_and_accepts_the_terms() {
    let server = secure_server().await;
    let org = server.org("Acme").await;
    set_policy(&server, &org, &[pb::SecondFactorMethod::Totp]).await;
    let link = invitation_link(&server, &org, "ada@acme.example").await;
    let browser = Browser::start("2-authenticator-app").await;
    let mut secret = String::new();
    let username = register(&browser, &link, async |b: &Browser| {
        b.click("#f-second_factor_method-0").await;
        b.click(".setup-button").await;
        secret = b.find("#totp-secret").await.text().await.unwrap();
        assert!(b.find("svg.qr").await.is_displayed().await.unwrap(), "no QR code");
        b.shot("authenticator-set-up").await;
        assert_accessible(b, "the authenticator set-up").await;
        b.fill("#f-second_factor_code", &totp(&server, &secret)).await;
        assert!(b.text(".terms").await.contains("Be kind to the systems."));
        b.click("#f-accepted_terms_version").await;
    })
    .await;
    assert_eq!(username, "ada@acme.example");
    browser.close().await;
    // The next time step: a code works once.
    server.state.clock.advance(chrono::TimeDelta::seconds(30));
    let signed_in = crate::registration::authenticate(&server, &org, &totp(&server, &secret))
        .await
        .expect("sign in with the app's code");
    assert!(
        signed_in.required_actions.is_empty(),
        "{:?}",
        signed_in.required_actions
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_registers_with_an_emailed_code() {
    let server = secure_server().await;
    let org = server.org("Acme").await;
    set_policy(&server, &org, &[pb::SecondFactorMethod::Email]).await;
    let link = invitation_link(&server, &org, "ada@acme.example").await;
    let browser = Browser::start("2-emailed-code").await;
    let username = register(&browser, &link, async |b: &Browser| {
        b.click("#f-second_factor_method-0").await;
        b.click(".setup-button").await;
        b.wait_for_text("We sent a six-digit code to").await;
        let code = code_in(&nth_email(&server, "ada@acme.example", 1).await);
        b.fill("#f-second_factor_code", &code).await;
        b.click("#f-accepted_terms_version").await;
    })
    .await;
    assert_eq!(username, "ada@acme.example");
    browser.close().await;
    let user = user_by_email(&server, &org, "ada@acme.example").await;
    assert_eq!(user.status(), pb::UserStatus::Active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_registers_with_a_texted_code_on_a_phone_sized_screen() {
    let (server, texts) = sms_server().await;
    let org = server.org("Acme").await;
    set_policy(&server, &org, &[pb::SecondFactorMethod::Sms]).await;
    let link = invitation_link(&server, &org, "ada@acme.example").await;
    let browser = Browser::sized("2-texted-code-360px", 360, 780).await;
    let username = register(&browser, &link, async |b: &Browser| {
        let width: i64 = b
            .client
            .execute("return document.documentElement.scrollWidth", vec![])
            .await
            .unwrap()
            .as_i64()
            .unwrap();
        assert!(
            width <= 360,
            "the page is {width} pixels wide on a 360-pixel screen"
        );
        b.click("#f-second_factor_method-0").await;
        b.click(".setup-button").await;
        b.wait_for_text("We sent a six-digit code to").await;
        let deadline = tokio::time::Instant::now() + WAIT;
        let body = loop {
            if let Some(body) = texts.lock().unwrap().first().cloned() {
                break body;
            }
            assert!(tokio::time::Instant::now() < deadline, "no text was sent");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let message: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(message["to"], "+447700900123");
        let code: String = message["body"].as_str().unwrap().chars().take(6).collect();
        b.fill("#f-second_factor_code", &code).await;
        b.click("#f-accepted_terms_version").await;
    })
    .await;
    assert_eq!(username, "ada@acme.example");
    browser.close().await;
}

/// Publishes new terms (no second factor).
pub async fn publish_terms(server: &TestServer, org: &Org, text: &str) {
    server
        .admin()
        .update_organization(authed(
            pb::UpdateOrganizationRequest {
                organization: Some(pb::Organization {
                    policy: Some(pb::OnboardingPolicy {
                        terms: Some(pb::Terms {
                            title: "Acceptable use".into(),
                            text: text.into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["policy.terms".into()],
                }),
            },
            &org.key,
        ))
        .await
        .expect("publish terms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terms_are_accepted_at_registration_and_newer_ones_at_the_next_sign_in() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    publish_terms(&server, &org, "Version one.").await;
    let link = invitation_link(&server, &org, "ada@acme.example").await;
    let browser = Browser::start("3-terms").await;
    let submit_without_terms = async |b: &Browser| {
        b.click("button[type=submit]").await;
        b.wait_for_text("There is a problem").await;
        assert!(
            !b.text("#f-accepted_terms_version-error").await.is_empty(),
            "the terms refusal is not beside the box"
        );
        b.shot("terms-not-accepted").await;
        b.click("#f-accepted_terms_version").await;
    };
    register(&browser, &link, submit_without_terms).await;
    publish_terms(&server, &org, "Version two.").await;

    browser
        .goto(&format!("{}/sign-in?organization={}", server.address, org.id))
        .await;
    browser.fill("#f-username", "ada@acme.example").await;
    browser.fill("#f-password", PASSWORD).await;
    browser.shot("sign-in").await;
    assert_accessible(&browser, "the sign-in page").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("Accept the terms to continue").await;
    assert!(browser.text(".terms").await.contains("Version two."));
    browser.shot("new-terms").await;
    browser.click("#f-terms_version").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("You are signed in").await;
    browser.shot("signed-in").await;
    browser.close().await;
    let again = crate::credentials::sign_in(&server, &org, "ada@acme.example", PASSWORD)
        .await
        .expect("sign in");
    assert!(again.required_actions.is_empty(), "{:?}", again.required_actions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_link_offers_a_new_invitation_whose_link_registers() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let old = invitation_link(&server, &org, "ada@acme.example").await;
    server.state.clock.advance(chrono::TimeDelta::days(8));
    let browser = Browser::start("4-expired-link").await;
    browser.goto(&old).await;
    browser.wait_for_text("This invitation has expired").await;
    browser.shot("expired").await;
    assert_accessible(&browser, "the expired-link page").await;
    browser.click("button").await;
    browser.wait_for_text("a new one is on its way").await;
    browser.shot("new-invitation-asked").await;
    let fresh = page_link(
        &server,
        &nth_email(&server, "ada@acme.example", 1).await,
        "/register?token=",
    );
    assert_ne!(fresh, old);
    let username = register(&browser, &fresh, async |_: &Browser| {}).await;
    assert_eq!(username, "ada@acme.example");
    browser.close().await;
    assert_eq!(
        user_by_email(&server, &org, "ada@acme.example").await.status(),
        pb::UserStatus::Active
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_link_onboards_a_person_and_shows_their_username() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = staged(&server, &org, "ada@acme.example", "ada.l").await;
    send_reset_link(&server, &org, &user.id).await;
    let mail = nth_email(&server, "ada@acme.example", 0).await;
    let link = page_link(&server, &mail, "/reset-password?token=");
    let browser = Browser::start("5-reset-link").await;
    browser.goto(&link).await;
    browser.wait_for_text("Choose a new password").await;
    assert!(!browser.url().await.contains("token"));
    // Whose page it is, and the rules before the person types.
    browser.wait_for_text("This link is from Acme.").await;
    browser.wait_for_text("be at least 12 characters long").await;
    browser.shot("choose-password").await;
    assert_accessible(&browser, "the new-password page").await;
    browser.fill("#f-new_password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("Your password has been changed").await;
    browser.shot("done").await;
    assert_accessible(&browser, "the reset confirmation").await;
    assert_eq!(browser.text("#username").await, "ada.l");
    // The spent link, opened again, says so before anything is typed.
    browser.goto(&link).await;
    browser.wait_for_text("This link has already been used").await;
    browser.shot("used-link").await;
    browser.close().await;
    assert_eq!(
        user_by_email(&server, &org, "ada@acme.example").await.status(),
        pb::UserStatus::Active
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emailed_temporary_password_is_changed_at_the_first_sign_in() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = staged(&server, &org, "ada@acme.example", "ada.l").await;
    email_credentials(&server, &org, &user.id).await;
    let mail = nth_email(&server, "ada@acme.example", 0).await;
    let temporary = line_value(&mail.text(), "Temporary password:");
    let link = page_link(&server, &mail, "/sign-in?organization=");
    let browser = Browser::start("6-temporary-password").await;
    browser.goto(&link).await;
    browser
        .fill("#f-username", &line_value(&mail.text(), "Username:"))
        .await;
    browser.fill("#f-password", &temporary).await;
    browser.shot("sign-in").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("Choose your own password").await;
    browser.shot("change-password").await;
    assert_accessible(&browser, "the change-password step").await;
    browser.fill("#f-new_password", &temporary).await;
    browser.click("button[type=submit]").await;
    browser
        .wait_for_text("must differ from the current password")
        .await;
    browser.shot("same-password-refused").await;
    browser.fill("#f-new_password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("You are signed in").await;
    browser.shot("signed-in").await;
    browser.close().await;
    assert_eq!(
        user_by_email(&server, &org, "ada@acme.example").await.status(),
        pb::UserStatus::Active
    );
    crate::credentials::sign_in(&server, &org, "ada.l", PASSWORD)
        .await
        .expect("the new password signs in");
}

/// A plain HTTP GET, as a mail scanner makes: no script runs.
pub async fn scanner_get(url: &str) -> String {
    let rest = url.strip_prefix("http://").expect("http link");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    stream
        .write_all(format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("answer");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_a_mail_scanner_opened_still_works() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let link = invitation_link(&server, &org, "ada@acme.example").await;
    let scanned = scanner_get(&link).await;
    assert!(scanned.starts_with("HTTP/1.1 200"), "{scanned}");
    let lower = scanned.to_ascii_lowercase();
    assert!(lower.contains("referrer-policy: no-referrer"), "{scanned}");
    assert!(lower.contains("frame-ancestors 'none'"), "{scanned}");
    assert!(!lower.contains("'unsafe-inline'"), "{scanned}");
    assert_eq!(
        invitation_of(&server, &org, "ada@acme.example").await.state(),
        pb::InvitationState::Sent,
        "a GET of the page spent or opened the invitation"
    );
    let browser = Browser::start("7-scanned-link").await;
    let username = register(&browser, &link, async |_: &Browser| {}).await;
    assert_eq!(username, "ada@acme.example");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_appear_beside_their_fields_and_keep_what_was_typed() {
    let server = secure_server().await;
    let org = server.org("Acme").await;
    set_policy(&server, &org, &[pb::SecondFactorMethod::Totp]).await;
    let link = invitation_link(&server, &org, "ada@acme.example").await;
    let browser = Browser::start("8-refusals").await;
    browser.goto(&link).await;
    browser.wait_for_text("Create your account at Acme").await;
    fill_profile(&browser, "password").await;
    browser.click("#f-second_factor_method-0").await;
    browser.click(".setup-button").await;
    browser.find("#totp-secret").await;
    browser.fill("#f-second_factor_code", "000000").await;
    browser.click("#f-accepted_terms_version").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("There is a problem").await;
    let beside = browser.text("#f-password-error").await;
    assert!(
        beside.starts_with("Password "),
        "the weak password is not refused beside its field: {beside:?}"
    );
    browser.shot("weak-password").await;
    assert_accessible(&browser, "a refused form").await;
    assert_eq!(
        browser.value("#f-first_name").await,
        "Ada",
        "what was typed is lost"
    );
    assert_eq!(browser.value("#f-mobile").await, "+447700900123");

    browser.fill("#f-password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while browser.text("#f-second_factor_code-error").await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the wrong code is not refused beside its field"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        browser.text("#f-password-error").await.is_empty(),
        "the old refusal stays"
    );
    browser.shot("wrong-code").await;

    let secret = browser.text("#totp-secret").await;
    browser
        .fill("#f-second_factor_code", &totp(&server, &secret))
        .await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("Your account is ready").await;

    // The spent link, opened again.
    browser.goto(&link).await;
    browser
        .wait_for_text("This invitation has already been used")
        .await;
    browser.shot("used-link").await;

    // A revoked link.
    let revoked = invitation_link(&server, &org, "grace@acme.example").await;
    let invitation = invitation_of(&server, &org, "grace@acme.example").await;
    server
        .invitations()
        .revoke_invitation(authed(
            pb::RevokeInvitationRequest {
                organization_id: String::new(),
                invitation_id: invitation.id,
            },
            &org.key,
        ))
        .await
        .expect("revoke");
    browser.goto(&revoked).await;
    browser.wait_for_text("This invitation was withdrawn").await;
    browser.shot("revoked-link").await;

    // A link that was never sent.
    browser
        .goto(&format!("{}/register?token=not-a-real-token", server.address))
        .await;
    browser.wait_for_text("This link does not work").await;
    browser.shot("unknown-link").await;

    // A wrong password at sign-in.
    browser
        .goto(&format!("{}/sign-in?organization={}", server.address, org.id))
        .await;
    browser.fill("#f-username", "ada@acme.example").await;
    browser.fill("#f-password", "not the password").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("The username or password is wrong").await;
    assert!(!browser.text("#f-password-error").await.is_empty());
    assert_eq!(browser.value("#f-username").await, "ada@acme.example");
    browser.shot("wrong-password").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_password_is_reset_from_the_sign_in_page() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let link = invitation_link(&server, &org, "ada@acme.example").await;
    let browser = Browser::start("5-forgotten-password").await;
    register(&browser, &link, async |_: &Browser| {}).await;
    browser
        .goto(&format!("{}/sign-in?organization={}", server.address, org.id))
        .await;
    browser.click("a[href^='/reset-password']").await;
    browser.wait_for_text("Reset your password").await;
    let request_page = browser.url().await;
    browser.fill("#f-email", "nobody@acme.example").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("Check your email").await;
    let neutral = browser.text("main").await;
    browser.shot("asked-for-an-unknown-account").await;
    browser.goto(&request_page).await;
    browser.wait_for_text("Reset your password").await;
    browser.fill("#f-email", "ada@acme.example").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("Check your email").await;
    assert_eq!(
        browser.text("main").await,
        neutral,
        "the answer tells a known account from an unknown one"
    );
    browser.shot("asked").await;
    let mail = nth_email(&server, "ada@acme.example", 1).await;
    browser
        .goto(&page_link(&server, &mail, "/reset-password?token="))
        .await;
    browser
        .fill("#f-new_password", "a new and longer passphrase")
        .await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("Your password has been changed").await;
    assert_eq!(browser.text("#username").await, "ada@acme.example");
    browser.shot("done").await;
    browser.close().await;
    crate::credentials::sign_in(&server, &org, "ada@acme.example", "a new and longer passphrase")
        .await
        .expect("the new password signs in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_sets_up_a_second_factor_at_sign_in_once_their_organisation_requires_one() {
    let server = secure_server().await;
    let org = server.org("Acme").await;
    let link = invitation_link(&server, &org, "ada@acme.example").await;
    let browser = Browser::start("3-enrol-at-sign-in").await;
    register(&browser, &link, async |_: &Browser| {}).await;
    // Later, the organisation requires an authenticator app and new terms.
    set_policy(&server, &org, &[pb::SecondFactorMethod::Totp]).await;
    browser
        .goto(&format!("{}/sign-in?organization={}", server.address, org.id))
        .await;
    browser.fill("#f-username", "ada@acme.example").await;
    browser.fill("#f-password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("Accept the terms to continue").await;
    browser.click("#f-terms_version").await;
    browser.click("button[type=submit]").await;
    browser
        .wait_for_text("Your organisation asks for a second step")
        .await;
    browser.shot("enrol").await;
    browser.click("#f-method-0").await;
    browser.click(".setup-button").await;
    let secret = browser.find("#totp-secret").await.text().await.unwrap();
    browser.shot("enrol-authenticator").await;
    assert_accessible(&browser, "the set-up at sign-in").await;
    browser.fill("#f-code", "000000").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("Code is wrong").await;
    browser.shot("enrol-wrong-code").await;
    browser.fill("#f-code", &totp(&server, &secret)).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("Enter your code").await;
    browser.shot("code").await;
    // The set-up spent this time step's code: the app shows the next one.
    server.state.clock.advance(chrono::TimeDelta::seconds(30));
    browser
        .fill("#f-second_factor_code", &totp(&server, &secret))
        .await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("You are signed in").await;
    browser.shot("signed-in").await;
    browser.close().await;
    let without_code = crate::credentials::sign_in(&server, &org, "ada@acme.example", PASSWORD)
        .await
        .expect("the password is right");
    assert_eq!(
        without_code.required_actions().collect::<Vec<_>>(),
        [pb::RequiredAction::SecondFactor],
        "the factor set up at sign-in is not asked for"
    );
}
