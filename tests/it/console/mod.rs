//! The admin console in a real Chromium, against the real server and SMTP
//! receiver: each seed's admin path as a person would walk it, every other
//! screen, a read-only key, a phone-sized screen, and a 10,000-person send.

mod manage;
mod phone;
mod scale;
mod seeds;

use std::time::Duration;

use crate::{
    browser::{Browser, WAIT},
    harness::{Org, TestServer, authed},
};
use onramp::pb;

/// The organisation's onboarding policy, as the API reports it.
pub async fn policy_of(server: &TestServer, org: &Org) -> pb::OnboardingPolicy {
    server
        .admin()
        .get_organization(authed(pb::GetOrganizationRequest::default(), &org.key))
        .await
        .expect("organisation")
        .into_inner()
        .policy
        .expect("policy")
}

/// Opens the console and signs in with `key`, in a browser of the default
/// size.
pub async fn signed_in(server: &TestServer, journey: &str, key: &str) -> Browser {
    sign_in(Browser::start(journey).await, server, key).await
}

/// Signs `browser` in to the console with `key`.
pub async fn sign_in(browser: Browser, server: &TestServer, key: &str) -> Browser {
    browser.goto(&format!("{}/admin", server.address)).await;
    browser.wait_for_text("Sign in to the admin console").await;
    browser.shot("sign-in").await;
    browser.fill("#f-api_key", key).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("People").await;
    browser.find("nav.console-nav").await;
    browser
}

/// Opens the console's screen at `hash` (such as `#/deliveries`).
pub async fn open(browser: &Browser, server: &TestServer, hash: &str) {
    browser.goto(&format!("{}/admin{hash}", server.address)).await;
}

/// Waits until `css` (found afresh after each reload of `hash`) exists,
/// for states that change behind the page.
pub async fn shows_after_reloads(browser: &Browser, server: &TestServer, hash: &str, css: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        open(browser, server, hash).await;
        // The same address again changes no hash: load it afresh.
        browser.reload().await;
        browser.find("main h1").await;
        let found = browser
            .run(
                "return document.querySelector(arguments[0]) !== null \
                   && !document.body.innerText.includes('Loading');",
                vec![serde_json::json!(css)],
            )
            .await;
        if found.as_bool() == Some(true) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{hash} never showed {css}: {}",
            browser.text("main").await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the row of `email` in People shows `status`.
pub async fn row_shows(browser: &Browser, server: &TestServer, email: &str, status: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        open(browser, server, &format!("#/people?q={email}")).await;
        browser.reload().await;
        let row = browser.find(&format!("tr[data-email='{email}']")).await;
        let row = row.text().await.unwrap_or_default();
        if row.contains(status) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{email} never showed {status}: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Chooses `value` in the select `css`.
pub async fn choose(browser: &Browser, css: &str, value: &str) {
    browser
        .find(css)
        .await
        .select_by_value(value)
        .await
        .expect("choose an option");
}
