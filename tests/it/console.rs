//! The admin console in a real Chromium: seed 004's path from pasted
//! addresses to the people list, against the real server and SMTP receiver.

use std::time::Duration;

use crate::{
    browser::{Browser, WAIT},
    harness::TestServer,
    invitations::{invite, send},
    pages::{assert_accessible, nth_email, page_link, register},
    security::user_by_email,
};
use onramp::pb;

/// Opens the console and signs in with `key`.
async fn signed_in(server: &TestServer, journey: &str, key: &str) -> Browser {
    let browser = Browser::start(journey).await;
    browser.goto(&format!("{}/admin", server.address)).await;
    browser.wait_for_text("Sign in to the admin console").await;
    browser.shot("sign-in").await;
    browser.fill("#f-api_key", key).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("People").await;
    browser.find("nav.console-nav").await;
    browser
}

/// Waits until the row of `email` shows `status`, reloading the list.
async fn row_shows(browser: &Browser, server: &TestServer, email: &str, status: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        browser
            .goto(&format!("{}/admin#/people?q={email}", server.address))
            .await;
        // The same address again changes no hash: load it afresh.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_invites_pasted_addresses_and_follows_them_in_the_people_list() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    // One address already belongs to a member.
    send(&server, &org, invite(&org, "member@acme.example"))
        .await
        .expect("invite");
    let link = page_link(
        &server,
        &nth_email(&server, "member@acme.example", 0).await,
        "/register?token=",
    );
    let browser = Browser::start("console-member").await;
    register(&browser, &link, async |_: &Browser| {}).await;
    browser.close().await;

    let browser = signed_in(&server, "console-1-invite", &org.key).await;
    browser.shot("people-before").await;
    browser.click("a[href='#/invite']").await;
    browser.wait_for_text("Email addresses").await;
    let fresh: Vec<String> = (1..=8).map(|i| format!("person{i}@acme.example")).collect();
    let pasted = format!("{}\nperson9.acme.example\nmember@acme.example", fresh.join("\n"));
    browser.fill("#f-recipients_text", &pasted).await;
    browser.wait_for_text("9 recognised").await;
    assert!(
        browser
            .text("#unrecognised-list")
            .await
            .contains("person9.acme.example")
    );
    browser.shot("invite-counted").await;
    assert_accessible(&browser, "the invite screen").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("Invitations sent").await;
    assert_eq!(browser.text("#sent-count").await, "8 sent");
    let not_sent = browser.text("#not-sent").await;
    assert!(
        not_sent.contains("member@acme.example: already a member"),
        "{not_sent}"
    );
    assert!(
        not_sent.contains("person9.acme.example: not a valid address"),
        "{not_sent}"
    );
    browser.shot("invite-confirmation").await;
    for address in &fresh {
        nth_email(&server, address, 0).await;
    }

    browser
        .goto(&format!("{}/admin#/people?status=PENDING", server.address))
        .await;
    browser.wait_for_text("Pending (8)").await;
    browser.shot("people-pending").await;
    assert_accessible(&browser, "the people list").await;

    // One registers through the person's pages and shows Active.
    let link = page_link(
        &server,
        &nth_email(&server, "person1@acme.example", 0).await,
        "/register?token=",
    );
    let person = Browser::start("console-person").await;
    register(&person, &link, async |_: &Browser| {}).await;
    person.close().await;
    row_shows(&browser, &server, "person1@acme.example", "Active").await;

    // One is paused and shows Inactive.
    browser
        .click("tr[data-email='person1@acme.example'] button[data-action='pause']")
        .await;
    browser.wait_for_text("person1@acme.example is paused.").await;
    assert_eq!(
        user_by_email(&server, &org, "person1@acme.example")
            .await
            .status(),
        pb::UserStatus::Inactive,
        "the pause button did not pause"
    );
    assert_eq!(
        user_by_email(&server, &org, "person1@acme.example")
            .await
            .status(),
        pb::UserStatus::Inactive,
        "the pause button did not pause"
    );
    row_shows(&browser, &server, "person1@acme.example", "Inactive").await;
    browser.shot("people-paused").await;

    // A link expires and shows Expired; the paper plane resends it.
    server.state.clock.advance(chrono::TimeDelta::days(8));
    row_shows(&browser, &server, "person2@acme.example", "Expired").await;
    browser.shot("people-expired").await;
    browser
        .click("tr[data-email='person2@acme.example'] button[data-action='resend']")
        .await;
    browser
        .wait_for_text("A new invitation is on its way to person2@acme.example.")
        .await;
    nth_email(&server, "person2@acme.example", 1).await;
    row_shows(&browser, &server, "person2@acme.example", "Pending").await;
    browser.shot("people-resent").await;
    browser.close().await;
    assert_eq!(
        user_by_email(&server, &org, "person2@acme.example")
            .await
            .status(),
        pb::UserStatus::Pending
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_key_is_offered_no_changes_and_a_forged_one_is_refused() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    send(&server, &org, invite(&org, "ada@acme.example"))
        .await
        .expect("invite");
    let reader = server
        .admin()
        .create_api_key(crate::harness::authed(
            pb::CreateApiKeyRequest {
                organization_id: String::new(),
                name: "dashboard".into(),
                scopes: vec![pb::ApiKeyScope::Read as i32],
                expire_time: None,
            },
            &org.key,
        ))
        .await
        .expect("a read key")
        .into_inner()
        .secret;
    let ada = user_by_email(&server, &org, "ada@acme.example").await;
    let browser = signed_in(&server, "console-5-read-only", &reader).await;
    browser
        .wait_for_text("This key can read but not change anything.")
        .await;
    browser.find("tr[data-email='ada@acme.example']").await;
    assert_eq!(
        browser
            .text("tr[data-email='ada@acme.example'] td:last-child")
            .await,
        ""
    );
    assert!(!browser.text("nav.console-nav").await.contains("Invite users"));
    browser.shot("read-only-people").await;

    // A pause forged from the tab, with the tab's key: one gRPC-Web frame
    // holding DeactivateUserRequest { user_id }.
    let status = browser
        .client
        .execute_async(
            "const [userId, done] = arguments;\
             const id = new TextEncoder().encode(userId);\
             const message = new Uint8Array([0x12, id.length, ...id]);\
             const frame = new Uint8Array([0, 0, 0, 0, message.length, ...message]);\
             fetch('/onramp.v1.UserAdmin/DeactivateUser', {method: 'POST', body: frame, headers: {\
               'content-type': 'application/grpc-web+proto', 'x-grpc-web': '1',\
               'authorization': 'Bearer ' + sessionStorage.getItem('onramp.console.key')}})\
             .then(r => done(r.headers.get('grpc-status') + ' ' + decodeURIComponent(r.headers.get('grpc-message') || '')))\
             .catch(e => done('failed: ' + e));",
            vec![serde_json::json!(ada.id)],
        )
        .await
        .expect("the forged call");
    let status = status.as_str().unwrap_or_default().to_owned();
    assert!(
        status.starts_with("7 "),
        "not refused as PERMISSION_DENIED: {status}"
    );
    browser.close().await;
    assert_eq!(
        user_by_email(&server, &org, "ada@acme.example").await.status(),
        pb::UserStatus::Pending
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_imports_a_csv_and_sends_password_emails_after_a_preview() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let csv = std::env::temp_dir().join(format!("onramp-console-{}.csv", std::process::id()));
    std::fs::write(
        &csv,
        "email,first_name,last_name,service_area,role\n\
         ada@acme.example,Ada,Lovelace,North ward,Nurse\n\
         not-an-address,Bad,Row,North ward,Nurse\n\
         grace@acme.example,Grace,Hopper,North ward,Nurse\n",
    )
    .unwrap();
    let browser = signed_in(&server, "console-2-import", &org.key).await;
    browser.click("a[href='#/import']").await;
    browser.wait_for_text("CSV file").await;
    browser.shot("import").await;
    browser
        .find("#f-csv")
        .await
        .send_keys(&csv.display().to_string())
        .await
        .expect("choose the file");
    browser.click("button[type=submit]").await;
    browser
        .wait_for_text("3 rows: 2 created, 0 updated, 0 already there, 1 refused.")
        .await;
    let refused = browser.text("#import-errors").await;
    assert!(refused.contains("Row 2 (not-an-address)"), "{refused}");
    browser.shot("import-results").await;
    assert_accessible(&browser, "the import results").await;

    browser.click("button[data-action='password-email']").await;
    browser.wait_for_text("The email they will get").await;
    let preview = browser.text("#email-preview").await;
    assert!(preview.contains("Temporary password"), "{preview}");
    browser.shot("password-email-preview").await;
    assert!(server.smtp.received().is_empty(), "the preview sent something");
    browser.click("button[data-action='send']").await;
    browser.wait_for_text("2 emails sent, 0 not sent.").await;
    browser.shot("password-emails-sent").await;
    browser.close().await;
    let _ = std::fs::remove_file(&csv);
    for address in ["ada@acme.example", "grace@acme.example"] {
        let mail = nth_email(&server, address, 0).await;
        let text = mail.text();
        let password = crate::credentials::line_value(&text, "Temporary password:");
        assert!(password.len() >= 12, "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_emails_credentials_to_three_selected_people_after_confirming() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let people = ["ada@acme.example", "grace@acme.example", "alan@acme.example"];
    for (i, email) in people.iter().enumerate() {
        crate::credentials::staged(&server, &org, email, &format!("person{i}")).await;
    }
    crate::credentials::staged(&server, &org, "left@acme.example", "left").await;
    let browser = signed_in(&server, "console-3-credentials", &org.key).await;
    browser.find("tr[data-email='left@acme.example']").await;
    for email in people {
        browser
            .click(&format!("tr[data-email='{email}'] input[type=checkbox]"))
            .await;
    }
    browser.click("button[data-bulk='credentials']").await;
    browser
        .wait_for_text("Email a username and a new temporary password to these 3 people?")
        .await;
    let listed = browser.text("#bulk-confirm").await;
    for email in people {
        assert!(listed.contains(email), "{listed}");
    }
    assert!(!listed.contains("left@acme.example"), "{listed}");
    browser.shot("credentials-confirm").await;
    assert_accessible(&browser, "the confirmation").await;
    browser.click("button[data-action='confirm']").await;
    browser.wait_for_text("3 emails sent, 0 not sent.").await;
    browser.shot("credentials-sent").await;
    browser.close().await;
    for email in people {
        let mail = nth_email(&server, email, 0).await;
        crate::credentials::line_value(&mail.text(), "Temporary password:");
    }
    assert!(server.smtp.to("left@acme.example").is_empty());
}
