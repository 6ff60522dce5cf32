//! Each seed's admin path through the console, as a person would walk it,
//! checked against the emails that arrive and what the API reports.

use super::{choose, open, row_shows, shows_after_reloads, signed_in};
use crate::{
    browser::Browser,
    credentials::{line_value, staged},
    harness::{TestServer, authed},
    harness::{invite, send},
    pages::{assert_accessible, nth_email, page_link, register},
    security::user_by_email,
};
use onramp::pb;

/// Seed 004: pasted addresses counted by the server as they are typed, an
/// invitation with a confirmation naming who was not sent and why, then the
/// people list following each person from Pending to Active, Inactive and
/// Expired, and the paper plane resending.
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

    // A short invitation lifetime, set in the policy.
    browser.click("a[href='#/organisation']").await;
    browser.wait_for_text("Invitation links work for").await;
    browser.fill("#f-policy-invitation_ttl", "1").await;
    choose(&browser, "#f-policy-invitation_ttl-unit", "3600").await;
    browser.click("#policy button[type=submit]").await;
    browser.wait_for_text("The policy is saved.").await;
    let policy = super::policy_of(&server, &org).await;
    assert_eq!(policy.invitation_ttl.map(|d| d.seconds), Some(3_600));

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
    browser.wait_for_text("8 sent").await;
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
    assert!(
        browser.url().await.contains("#/deliveries?batch="),
        "the batch is not in the address: {}",
        browser.url().await
    );
    browser.shot("invite-confirmation").await;
    for address in &fresh {
        nth_email(&server, address, 0).await;
    }
    browser.click("a[href='#/invite'].button").await;
    browser.wait_for_text("Email addresses").await;

    open(&browser, &server, "#/people?status=PENDING").await;
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
    row_shows(&browser, &server, "person1@acme.example", "Inactive").await;
    browser.shot("people-paused").await;

    // The hour passes: a link expires and shows Expired; the paper plane
    // resends it.
    server.state.clock.advance(chrono::TimeDelta::hours(2));
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

/// Seed 001: a CSV import with a bad row, per-row results, a Password Email
/// to the imported people after a preview of the real email; then the
/// invitation template edited with a preview that follows each change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_imports_a_csv_sends_password_emails_and_edits_the_invitation_email() {
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
    let sign_in = format!("{}/sign-in?organization={}", server.address, org.id);
    assert!(preview.contains(&sign_in), "not the real sign-in page: {preview}");
    browser.shot("password-email-preview").await;
    assert!(server.smtp.received().is_empty(), "the preview sent something");
    browser.click("button[data-action='send']").await;
    browser.wait_for_text("2 sent").await;
    assert_eq!(browser.text("#sent-count").await, "2 sent");
    browser.shot("password-emails-sent").await;
    let _ = std::fs::remove_file(&csv);
    for address in ["ada@acme.example", "grace@acme.example"] {
        let mail = nth_email(&server, address, 0).await;
        let password = line_value(&mail.text(), "Temporary password:");
        assert!(password.len() >= 12, "{}", mail.text());
    }

    // System Emails: the invitation, edited with a live preview.
    browser.click("a[href='#/emails']").await;
    browser.wait_for_text("The emails Onramp sends").await;
    browser.shot("emails").await;
    browser.click("tr[data-kind='INVITATION'] a").await;
    browser.wait_for_text("Invitation email").await;
    browser.find("#preview-subject").await;
    let before = browser.text("#preview-subject").await;
    browser
        .fill("#f-template-subject", "Come aboard at {{ organization_name }}")
        .await;
    wait_for_element_text(&browser, "#preview-subject", "Come aboard at Acme").await;
    assert_ne!(before, "Come aboard at Acme");
    // The preview for a real person, by their address.
    browser.fill("#f-preview_email", "grace@acme.example").await;
    browser.wait_for_text("To: grace@acme.example").await;
    assert!(browser.text("#preview-text").await.contains("Grace"));
    browser.shot("invitation-email-preview").await;
    assert_accessible(&browser, "the email editor").await;
    // A body that no longer parses is refused beside its field.
    let body = browser.value("#f-template-text_body").await;
    browser.fill("#f-template-text_body", "Hello {{ first_name").await;
    browser.find("#f-template-text_body-error").await;
    browser.shot("invitation-email-broken").await;
    browser.fill("#f-template-text_body", &body).await;
    wait_for_element_text(&browser, "#preview-subject", "Come aboard at Acme").await;
    browser.click("#template-form button[type=submit]").await;
    browser.wait_for_text("The Invitation email is saved").await;
    let stored = server
        .invitations()
        .get_template(authed(
            pb::GetTemplateRequest {
                kind: pb::EmailKind::Invitation as i32,
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("template")
        .into_inner();
    assert_eq!(stored.subject, "Come aboard at {{ organization_name }}");
    assert!(!stored.is_default);
    open(&browser, &server, "#/emails").await;
    browser.wait_for_text("Your own, since").await;

    // And back to the default, after a confirmation.
    open(&browser, &server, "#/emails/INVITATION").await;
    browser.click("button[data-action='reset-template']").await;
    browser
        .click("#reset-confirm button[data-action='confirm']")
        .await;
    browser
        .wait_for_text("The Invitation email is Onramp's default again.")
        .await;
    wait_for_element_text(&browser, "#preview-subject", &before).await;
    browser.close().await;
}

/// Waits until the text of `css` is `expected`.
async fn wait_for_element_text(browser: &Browser, css: &str, expected: &str) {
    let deadline = tokio::time::Instant::now() + crate::browser::WAIT;
    loop {
        let shown = browser.text(css).await;
        if shown == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{css} never read {expected:?}; it reads {shown:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Seed 002: three people selected, Email Credentials, a confirmation that
/// lists exactly them, three emails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_emails_credentials_to_three_selected_people_after_confirming() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let people = ["ada@acme.example", "grace@acme.example", "alan@acme.example"];
    for (i, email) in people.iter().enumerate() {
        staged(&server, &org, email, &format!("person{i}")).await;
    }
    staged(&server, &org, "left@acme.example", "left").await;
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
    browser.wait_for_text("3 sent").await;
    assert_eq!(browser.text("#sent-count").await, "3 sent");
    browser.shot("credentials-sent").await;
    browser.close().await;
    for email in people {
        let mail = nth_email(&server, email, 0).await;
        line_value(&mail.text(), "Temporary password:");
    }
    assert!(server.smtp.to("left@acme.example").is_empty());
}

/// Seed 003: a welcome email to every staged person and to one person from
/// their page; then Deliveries shows each sent, and opened once its link is
/// viewed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn welcome_emails_to_all_staged_people_and_to_one_show_sent_then_opened() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let staged_people = ["ada@acme.example", "grace@acme.example", "alan@acme.example"];
    for (i, email) in staged_people.iter().enumerate() {
        staged(&server, &org, email, &format!("person{i}")).await;
    }
    // Someone already invited is not staged, and gets no welcome.
    send(&server, &org, invite(&org, "invited@acme.example"))
        .await
        .expect("invite");

    let browser = signed_in(&server, "console-4-welcome", &org.key).await;
    open(&browser, &server, "#/people?status=STAGED").await;
    browser.wait_for_text("Staged (3)").await;
    browser.click("#f-everyone").await;
    browser.click("button[data-bulk='welcome']").await;
    browser
        .wait_for_text("Send a welcome email with a link to set a password to these 3 people?")
        .await;
    let listed = browser.text("#bulk-confirm").await;
    assert!(staged_people.iter().all(|e| listed.contains(e)), "{listed}");
    assert!(!listed.contains("invited@acme.example"), "{listed}");
    browser.click("button[data-action='preview']").await;
    browser.find("#email-preview").await;
    browser.shot("welcome-all-confirm").await;
    browser.click("button[data-action='confirm']").await;
    browser.wait_for_text("3 sent").await;
    browser.shot("welcome-all-sent").await;
    for email in staged_people {
        let mail = nth_email(&server, email, 0).await;
        assert!(mail.subject().contains("Welcome"), "{}", mail.subject());
    }
    assert_eq!(server.smtp.to("invited@acme.example").len(), 1);

    // One more person, welcomed from their own page.
    let dan = staged(&server, &org, "dan@acme.example", "dan").await;
    open(&browser, &server, "#/people?q=dan").await;
    browser.click("tr[data-email='dan@acme.example'] a").await;
    browser.wait_for_text("Profile").await;
    browser.shot("person").await;
    browser.click("button[data-send='welcome']").await;
    browser.wait_for_text("to these 1 people?").await;
    browser.click("#person-sends button[data-action='confirm']").await;
    browser.wait_for_text("1 sent").await;
    let dans = nth_email(&server, "dan@acme.example", 0).await;

    // Deliveries: every welcome sent, none opened yet.
    shows_after_reloads(
        &browser,
        &server,
        "#/deliveries?kind=WELCOME",
        "#deliveries tr[data-email='dan@acme.example'][data-state='SENT']",
    )
    .await;
    for email in staged_people {
        browser
            .find(&format!(
                "#deliveries tr[data-email='{email}'][data-state='SENT']"
            ))
            .await;
    }
    browser.shot("deliveries-sent").await;
    assert_accessible(&browser, "Deliveries").await;

    // Dan opens his link; it shows opened.
    let tab = browser.new_tab().await;
    browser
        .goto(&page_link(&server, &dans, "/reset-password?token="))
        .await;
    browser.wait_for_text("Choose a new password").await;
    browser.switch_to(tab).await;
    shows_after_reloads(
        &browser,
        &server,
        "#/deliveries?kind=WELCOME",
        "#deliveries tr[data-email='dan@acme.example'][data-state='OPENED']",
    )
    .await;
    browser
        .find("#deliveries tr[data-email='ada@acme.example'][data-state='SENT']")
        .await;
    browser.shot("deliveries-opened").await;

    // The batch of three, replayed with WatchBatch.
    let batches = server
        .invitations()
        .list_batches(authed(pb::ListBatchesRequest::default(), &org.key))
        .await
        .expect("batches")
        .into_inner()
        .batches;
    let three = batches.iter().find(|b| b.total == 3).expect("the welcome batch");
    browser
        .click(&format!("#batches tr[data-batch='{}'] a", three.id))
        .await;
    browser.wait_for_text("3 sent").await;
    browser.shot("welcome-batch").await;
    browser.close().await;
    let opened = server
        .invitations()
        .list_deliveries(authed(
            pb::ListDeliveriesRequest {
                user_id: dan.id,
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("deliveries")
        .into_inner()
        .deliveries;
    assert_eq!(opened[0].state(), pb::DeliveryState::Opened);
}
