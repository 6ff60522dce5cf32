//! The console's other screens: one person edited and deleted, the
//! organisation's policy, terms, service areas, roles, API keys and audit
//! log; and a read-only key, offered nothing it may not do.

use tonic::Code;

use super::{open, signed_in};
use crate::{
    credentials::staged,
    harness::{TestServer, authed},
    harness::{invite, send},
    pages::assert_accessible,
    security::user_by_email,
};
use onramp::pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_edits_a_persons_profile_and_access_then_deletes_them() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let ada = staged(&server, &org, "ada@acme.example", "ada.l").await;
    server
        .admin()
        .create_service_area(authed(
            pb::CreateServiceAreaRequest {
                name: "South ward".into(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("a second area");
    let browser = signed_in(&server, "console-person-edit", &org.key).await;
    browser.click("tr[data-email='ada@acme.example'] a").await;
    browser.wait_for_text("Profile").await;
    assert_eq!(browser.value("#f-user-username").await, "ada.l");

    // A refusal beside its field, with what was typed kept.
    browser.fill("#f-user-mobile", "12345").await;
    browser.fill("#f-user-first_name", "Augusta").await;
    browser.click("#profile button[type=submit]").await;
    browser.find("#f-user-mobile-error").await;
    assert!(!browser.text("#f-user-mobile-error").await.is_empty());
    assert_eq!(browser.value("#f-user-first_name").await, "Augusta");
    browser.shot("profile-refused").await;
    browser.fill("#f-user-mobile", "+447700900123").await;
    browser.click("#profile button[type=submit]").await;
    browser
        .wait_for_text("The profile of ada@acme.example is saved.")
        .await;
    let saved = user_by_email(&server, &org, "ada@acme.example").await;
    assert_eq!(
        (saved.first_name.as_str(), saved.mobile.as_str()),
        ("Augusta", "+447700900123")
    );

    // Access: one more grant, then the first one removed.
    browser.wait_for_text("Nurse in North ward").await;
    super::choose(
        &browser,
        "#f-grant-area",
        &area_id(&server, &org.key, "South ward").await,
    )
    .await;
    browser.click("#add-grant button[type=submit]").await;
    browser.wait_for_text("Nurse in South ward").await;
    assert_eq!(
        user_by_email(&server, &org, "ada@acme.example")
            .await
            .access_grants
            .len(),
        2
    );
    browser.shot("access-added").await;
    assert_accessible(&browser, "the person").await;
    browser
        .click("#grants li:first-child button[data-action='remove-grant']")
        .await;
    // "The access is saved." is still there from the grant added above; the
    // list is drawn again from the server's answer, so the removed grant
    // leaving it is what shows this save is done.
    browser.wait_for_text_gone("Nurse in North ward").await;
    browser.wait_for_text("The access is saved.").await;
    let grants = user_by_email(&server, &org, "ada@acme.example")
        .await
        .access_grants;
    assert_eq!(
        grants
            .iter()
            .map(|g| g.service_area_name.as_str())
            .collect::<Vec<_>>(),
        ["South ward"]
    );

    // Delete, after a confirmation.
    browser.click("button[data-action='delete']").await;
    browser
        .wait_for_text("Delete Augusta for good? This cannot be undone.")
        .await;
    browser.shot("delete-confirm").await;
    browser
        .click("#delete-confirm button[data-action='confirm']")
        .await;
    browser.wait_for_text("ada@acme.example is deleted.").await;
    browser.close().await;
    let gone = server
        .admin()
        .get_user(authed(
            pb::GetUserRequest {
                user_id: ada.id.clone(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);
    assert_eq!(server.audited(&org.key, "user.delete").await.len(), 1);
}

async fn area_id(server: &TestServer, key: &str, name: &str) -> String {
    server
        .admin()
        .list_service_areas(authed(pb::ListServiceAreasRequest::default(), key))
        .await
        .expect("areas")
        .into_inner()
        .service_areas
        .into_iter()
        .find(|a| a.name == name)
        .expect("the area")
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sets_the_policy_terms_catalogue_and_keys_and_reads_the_audit_log() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let browser = signed_in(&server, "console-organisation", &org.key).await;
    browser.click("a[href='#/organisation']").await;
    browser.wait_for_text("Onboarding policy").await;

    // The policy, refused beside its field, then saved.
    browser.fill("#f-policy-password_min_length", "7").await;
    browser.click("#policy button[type=submit]").await;
    browser.find("#f-policy-password_min_length-error").await;
    browser.shot("policy-refused").await;
    browser.fill("#f-policy-password_min_length", "14").await;
    browser.click("#f-method-SMS").await;
    browser.click("#policy button[type=submit]").await;
    browser.wait_for_text("The policy is saved.").await;
    let policy = super::policy_of(&server, &org).await;
    assert_eq!(policy.password_min_length, 14);
    assert_eq!(
        policy.second_factor_methods().collect::<Vec<_>>(),
        [pb::SecondFactorMethod::Totp, pb::SecondFactorMethod::Email]
    );

    // Terms, published, and listed by version.
    browser.fill("#f-policy-terms-title", "Acceptable use").await;
    browser.fill("#f-policy-terms-text", "Be kind.").await;
    browser.click("#terms button[type=submit]").await;
    browser.wait_for_text("The new terms are published.").await;
    browser.find("#terms-versions tr[data-version='1']").await;
    browser.fill("#f-policy-terms-text", "Be kind, always.").await;
    browser.click("#terms button[type=submit]").await;
    browser.find("#terms-versions tr[data-version='2']").await;
    browser.shot("policy-and-terms").await;
    assert_accessible(&browser, "the policy").await;

    // Service areas and roles.
    browser.click("a[href='#/organisation/catalog']").await;
    browser.wait_for_text("New service area").await;
    browser.fill("#f-area-name", "South ward").await;
    browser.click("#add-area button[type=submit]").await;
    browser.wait_for_text("Service area South ward added.").await;
    browser.fill("#f-area-name", "north WARD").await;
    browser.click("#add-area button[type=submit]").await;
    browser.find("#f-area-name-error").await;
    assert!(
        browser.text("#f-area-name-error").await.contains("already"),
        "{}",
        browser.text("#f-area-name-error").await
    );
    browser.fill("#f-role-name", "Porter").await;
    browser.click("#add-role button[type=submit]").await;
    browser.wait_for_text("Role Porter added.").await;
    browser.shot("catalogue").await;
    assert_accessible(&browser, "service areas and roles").await;

    // A key, its secret shown once, then revoked.
    browser.click("a[href='#/organisation/keys']").await;
    browser.wait_for_text("Create a key").await;
    browser.fill("#f-name", "Reporting").await;
    browser.click("#f-scope-READ").await;
    browser.click("#create-key button[type=submit]").await;
    browser.find("#new-key-secret").await;
    let secret = browser.text("#new-key-secret").await;
    assert!(secret.starts_with("onr_"), "{secret}");
    browser.shot("key-created").await;
    let caller = |key: String| {
        let mut admin = server.admin();
        async move { admin.get_caller(authed(pb::GetCallerRequest {}, &key)).await }
    };
    let info = caller(secret.clone())
        .await
        .expect("the new key works")
        .into_inner();
    assert_eq!(info.scopes().collect::<Vec<_>>(), [pb::ApiKeyScope::Read]);
    browser.click("button[data-action='copied']").await;
    browser.wait_for_text("The key Reporting is created.").await;
    assert!(
        !browser.text("main").await.contains(&secret),
        "the secret is shown again"
    );
    browser
        .click("tr[data-key='Reporting'] button[data-action='revoke']")
        .await;
    browser
        .click("#revoke-confirm button[data-action='confirm']")
        .await;
    browser.wait_for_text("The key Reporting is revoked.").await;
    assert_eq!(
        caller(secret).await.expect_err("revoked").code(),
        Code::Unauthenticated
    );
    browser.shot("key-revoked").await;
    assert_accessible(&browser, "API keys").await;

    // Everything above is in the audit log.
    browser.click("a[href='#/organisation/audit']").await;
    browser.find("#audit tr[data-action='api_key.revoke']").await;
    browser.find("#audit tr[data-action='organization.update']").await;
    browser.shot("audit").await;
    browser.fill("#f-action", "api_key.revoke").await;
    browser.click("form[role=search] button[type=submit]").await;
    browser.wait_for_text("api_key.revoke").await;
    let rows = browser
        .run(
            "return document.querySelectorAll('#audit tbody tr').length;",
            vec![],
        )
        .await;
    assert_eq!(rows.as_i64(), Some(1));
    assert_accessible(&browser, "the audit log").await;
    browser.close().await;
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
        .create_api_key(authed(
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
    assert!(browser.text("#bulk").await.is_empty(), "bulk sends offered");
    let nav = browser.text("nav.console-nav").await;
    assert!(!nav.contains("Invite users") && !nav.contains("Import"), "{nav}");
    browser.shot("read-only-people").await;

    // Every other screen reads, and offers no change.
    for (hash, shows) in [
        (format!("#/people/{}", ada.id), "Profile"),
        (
            "#/emails/INVITATION".to_owned(),
            "This key can read this email but not change it.",
        ),
        ("#/deliveries".to_owned(), "Recent bulk sends"),
        ("#/organisation".to_owned(), "Onboarding policy"),
        ("#/organisation/catalog".to_owned(), "Service areas"),
    ] {
        open(&browser, &server, &hash).await;
        browser.wait_for_text(shows).await;
        let offered = browser
            .run(
                "return [...document.querySelectorAll('main button, main [type=submit]')]\
                   .map(b => b.textContent.trim()).filter(t => t !== 'Apply');",
                vec![],
            )
            .await;
        assert_eq!(offered, serde_json::json!([]), "{hash} offers changes");
    }
    browser.shot("read-only-policy").await;
    let nav = browser.text(".tabs").await;
    assert!(!nav.contains("API keys") && !nav.contains("Audit log"), "{nav}");

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
    // The key lives in this tab's session storage only.
    let stored = browser
        .run(
            "return [document.cookie, localStorage.length, sessionStorage.getItem('onramp.console.key') !== null];",
            vec![],
        )
        .await;
    assert_eq!(stored, serde_json::json!(["", 0, true]));
    browser.click("nav.console-nav button").await;
    browser.wait_for_text("Sign in to the admin console").await;
    let after = browser
        .run("return sessionStorage.getItem('onramp.console.key');", vec![])
        .await;
    assert_eq!(after, serde_json::Value::Null, "sign-out kept the key");
    browser.close().await;
    assert_eq!(
        user_by_email(&server, &org, "ada@acme.example").await.status(),
        pb::UserStatus::Pending
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_has_the_pages_headers_and_works_from_the_keyboard_alone() {
    use fantoccini::key::Key;
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let served = crate::pages::scanner_get(&format!("{}/admin", server.address)).await;
    let lower = served.to_ascii_lowercase();
    for header in [
        "content-security-policy: default-src 'none'; script-src 'self'",
        "frame-ancestors 'none'",
        "referrer-policy: no-referrer",
        "x-content-type-options: nosniff",
        "x-frame-options: deny",
        "cache-control: no-store",
    ] {
        assert!(lower.contains(header), "no {header}: {served}");
    }
    assert!(!lower.contains("unsafe-inline"), "{served}");

    let browser = crate::browser::Browser::start("console-keyboard").await;
    open(&browser, &server, "").await;
    browser.wait_for_text("Sign in to the admin console").await;
    browser.tab().await;
    assert_eq!(browser.focused().await, "f-api_key");
    browser.keys(&org.key).await;
    browser.enter().await;
    browser.wait_for_text("Staged (0)").await;
    // Back from the heading into the navigation, to Invite users.
    let back = format!(
        "{}{}{}",
        char::from(Key::Shift),
        char::from(Key::Tab),
        char::from(Key::Null)
    );
    for _ in 0..10 {
        if browser.focused().await == "Invite users" {
            break;
        }
        browser.keys(&back).await;
    }
    assert_eq!(browser.focused().await, "Invite users");
    browser.enter().await;
    browser.wait_for_text("Email addresses").await;
    browser.tab().await;
    assert_eq!(browser.focused().await, "f-recipients_text");
    browser.keys("ada@acme.example").await;
    browser.wait_for_text("1 recognised").await;
    browser.tab().await;
    browser.tab().await;
    browser.tab().await;
    assert_eq!(browser.focused().await, "Invite");
    browser.enter().await;
    browser.wait_for_text("1 sent").await;
    browser.shot("sent-by-keyboard").await;
    browser.close().await;
    crate::pages::nth_email(&server, "ada@acme.example", 0).await;
}
