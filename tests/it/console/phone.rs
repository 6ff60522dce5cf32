//! Every console screen on a 360-pixel phone: nothing wider than the
//! screen, every screen free of axe-core violations, and a screenshot of
//! each under `target/screenshots/console-phone/`.

use super::{open, sign_in};
use crate::{
    browser::Browser,
    credentials::staged,
    harness::TestServer,
    harness::{invite, send},
    pages::assert_accessible,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_screen_fits_a_phone_and_passes_axe() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let ada = staged(
        &server,
        &org,
        "ada.lovelace.with.a.long.address@acme.example",
        "ada.l",
    )
    .await;
    let batch = send(&server, &org, invite(&org, "grace@acme.example, not-an-address"))
        .await
        .expect("invite")
        .summary
        .batch_id;
    let browser = sign_in(Browser::sized("console-phone", 360, 740).await, &server, &org.key).await;
    for (name, hash, shows) in [
        ("people", "#/people".to_owned(), "Staged (1)"),
        ("person", format!("#/people/{}", ada.id), "Profile"),
        ("invite", "#/invite".to_owned(), "Email addresses"),
        ("import", "#/import".to_owned(), "CSV file"),
        ("emails", "#/emails".to_owned(), "The emails Onramp sends"),
        ("email-editor", "#/emails/WELCOME".to_owned(), "To:"),
        ("deliveries", "#/deliveries".to_owned(), "Recent bulk sends"),
        ("batch", format!("#/deliveries?batch={batch}"), "1 sent"),
        ("policy", "#/organisation".to_owned(), "Onboarding policy"),
        (
            "catalogue",
            "#/organisation/catalog".to_owned(),
            "New service area",
        ),
        ("keys", "#/organisation/keys".to_owned(), "Create a key"),
        ("audit", "#/organisation/audit".to_owned(), "user.create"),
    ] {
        open(&browser, &server, &hash).await;
        browser.wait_for_text(shows).await;
        browser.shot(name).await;
        assert_eq!(browser.overflows().await, None, "{name} is wider than the phone");
        assert_accessible(&browser, name).await;
    }
    browser.close().await;
}
