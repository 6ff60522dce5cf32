//! What an admin sees of the emails after they leave: each delivery's state
//! up to OPENED when its link is viewed, the batches with their progress,
//! and the reset link's own page data (GetPasswordReset).

use tonic::Code;

use crate::{
    credentials::staged,
    harness::{DEADLINE, finish, invite, send},
    harness::{Org, TestServer, authed, violations},
};
use onramp::pb;

async fn deliveries(server: &TestServer, org: &Org, request: pb::ListDeliveriesRequest) -> Vec<pb::Delivery> {
    server
        .invitations()
        .list_deliveries(authed(request, &org.key))
        .await
        .expect("deliveries")
        .into_inner()
        .deliveries
}

async fn reset_links(
    server: &TestServer,
    org: &Org,
    user_ids: Vec<String>,
    kind: pb::EmailKind,
) -> Result<crate::harness::Finished, tonic::Status> {
    let stream = server
        .credentials()
        .send_reset_links(authed(
            pb::SendResetLinksRequest {
                user_ids,
                kind: kind as i32,
                ..Default::default()
            },
            &org.key,
        ))
        .await?
        .into_inner();
    finish(stream).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_shows_opened_once_its_invitation_link_is_viewed() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    send(
        &server,
        &org,
        invite(&org, "ada@acme.example, grace@acme.example"),
    )
    .await
    .expect("invite");
    let mail = server.smtp.wait_for(2, DEADLINE).await;
    let sent = deliveries(&server, &org, pb::ListDeliveriesRequest::default()).await;
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter().all(|d| d.state() == pb::DeliveryState::Sent),
        "{sent:?}"
    );

    let ada = mail
        .iter()
        .find(|m| m.to == ["ada@acme.example"])
        .expect("ada's email");
    let token = ada.link_param("token").expect("token");
    for _ in 0..2 {
        server
            .registration()
            .get_registration(pb::GetRegistrationRequest { token: token.clone() })
            .await
            .expect("view the link");
    }
    let after = deliveries(&server, &org, pb::ListDeliveriesRequest::default()).await;
    let state = |email: &str| {
        after
            .iter()
            .find(|d| d.email == email)
            .map(|d| (d.state(), d.open_time.is_some()))
    };
    assert_eq!(state("ada@acme.example"), Some((pb::DeliveryState::Opened, true)));
    assert_eq!(
        state("grace@acme.example"),
        Some((pb::DeliveryState::Sent, false))
    );
    let opened = deliveries(
        &server,
        &org,
        pb::ListDeliveriesRequest {
            state: pb::DeliveryState::Opened as i32,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        opened.iter().map(|d| d.email.as_str()).collect::<Vec<_>>(),
        ["ada@acme.example"]
    );
    let not_opened = deliveries(
        &server,
        &org,
        pb::ListDeliveriesRequest {
            state: pb::DeliveryState::Sent as i32,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        not_opened.iter().map(|d| d.email.as_str()).collect::<Vec<_>>(),
        ["grace@acme.example"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewed_welcome_link_marks_its_email_opened_and_still_sets_the_password() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let ada = staged(&server, &org, "ada@acme.example", "ada.l").await;
    reset_links(&server, &org, vec![ada.id.clone()], pb::EmailKind::Unspecified)
        .await
        .expect("welcome");
    let mail = &server.smtp.wait_for(1, DEADLINE).await[0];
    assert!(mail.subject().contains("Welcome"), "{}", mail.subject());
    let token = mail.link_param("token").expect("token");
    let info = server
        .credentials()
        .get_password_reset(pb::GetPasswordResetRequest { token: token.clone() })
        .await
        .expect("view the link")
        .into_inner();
    assert_eq!(info.organization_name, "Acme");
    assert_eq!(info.organization_id, org.id);
    assert_eq!(info.password_rules.expect("rules").min_length, 12);
    assert!(info.expire_time.is_some());
    let listed = deliveries(&server, &org, pb::ListDeliveriesRequest::default()).await;
    assert_eq!(listed[0].state(), pb::DeliveryState::Opened, "{listed:?}");
    assert_eq!(listed[0].kind(), pb::EmailKind::Welcome);

    // Viewing spent nothing.
    server
        .credentials()
        .complete_password_reset(pb::CompletePasswordResetRequest {
            token: token.clone(),
            new_password: "plum tractor velvet".into(),
        })
        .await
        .expect("the viewed link still works");
    let used = server
        .credentials()
        .get_password_reset(pb::GetPasswordResetRequest { token })
        .await
        .expect_err("used");
    assert_eq!(used.code(), Code::FailedPrecondition);
    assert!(used.message().contains("already used"), "{}", used.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_link_that_is_unknown_expired_or_missing_is_refused_by_name() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let ada = staged(&server, &org, "ada@acme.example", "ada.l").await;
    reset_links(&server, &org, vec![ada.id.clone()], pb::EmailKind::Welcome)
        .await
        .expect("welcome");
    let token = server.smtp.wait_for(1, DEADLINE).await[0]
        .link_param("token")
        .expect("token");
    let get = |token: String| {
        let mut credentials = server.credentials();
        async move {
            credentials
                .get_password_reset(pb::GetPasswordResetRequest { token })
                .await
                .expect_err("refused")
        }
    };
    let unknown = get("onr_not-a-real-token".into()).await;
    assert_eq!(unknown.code(), Code::NotFound);
    let missing = get(" ".into()).await;
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert_eq!(violations(&missing)[0].0, "token");
    server.state.clock.advance(chrono::TimeDelta::hours(2));
    let expired = get(token).await;
    assert_eq!(expired.code(), Code::FailedPrecondition);
    assert!(expired.message().contains("expired"), "{}", expired.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sends_reset_emails_to_people_who_lost_their_password() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let ada = staged(&server, &org, "ada@acme.example", "ada.l").await;
    let done = reset_links(&server, &org, vec![ada.id.clone()], pb::EmailKind::PasswordReset)
        .await
        .expect("reset links");
    assert_eq!(done.completion.sent, 1);
    let mail = &server.smtp.wait_for(1, DEADLINE).await[0];
    assert!(
        !mail.subject().contains("Welcome"),
        "a reset email, not a welcome: {}",
        mail.subject()
    );
    assert!(mail.link_param("token").is_some());
    let listed = deliveries(&server, &org, pb::ListDeliveriesRequest::default()).await;
    assert_eq!(listed[0].kind(), pb::EmailKind::PasswordReset);

    let refused = reset_links(&server, &org, vec![ada.id], pb::EmailKind::Credentials)
        .await
        .expect_err("not a kind that carries a reset link");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(violations(&refused)[0].0, "kind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_listed_newest_first_with_their_progress() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let first = send(&server, &org, invite(&org, "ada@acme.example, not-an-address"))
        .await
        .expect("first");
    let ada = staged(&server, &org, "grace@acme.example", "grace").await;
    let second = reset_links(&server, &org, vec![ada.id], pb::EmailKind::Welcome)
        .await
        .expect("second");
    let list = |request: pb::ListBatchesRequest| {
        let mut invitations = server.invitations();
        let key = org.key.clone();
        async move {
            invitations
                .list_batches(authed(request, &key))
                .await
                .expect("batches")
                .into_inner()
        }
    };
    let all = list(pb::ListBatchesRequest::default()).await;
    let ids: Vec<&str> = all.batches.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(
        ids,
        [second.summary.batch_id.as_str(), first.summary.batch_id.as_str()]
    );
    let invitation = &all.batches[1];
    assert_eq!(invitation.kind(), pb::EmailKind::Invitation);
    assert_eq!(
        (
            invitation.total,
            invitation.invalid,
            invitation.sent,
            invitation.failed,
            invitation.outstanding
        ),
        (2, 1, 1, 0, 0)
    );
    assert!(invitation.complete_time.is_some());
    assert!(invitation.actor.starts_with("api_key:"), "{}", invitation.actor);
    assert_eq!(all.batches[0].kind(), pb::EmailKind::Welcome);

    let paged = list(pb::ListBatchesRequest {
        page_size: 1,
        ..Default::default()
    })
    .await;
    assert_eq!(paged.batches.len(), 1);
    let rest = list(pb::ListBatchesRequest {
        page_size: 1,
        page_token: paged.next_page_token,
        ..Default::default()
    })
    .await;
    assert_eq!(rest.batches[0].id, first.summary.batch_id);
    let welcomes = list(pb::ListBatchesRequest {
        kind: pb::EmailKind::Welcome as i32,
        ..Default::default()
    })
    .await;
    assert_eq!(welcomes.batches.len(), 1);

    // Another organisation sees none of them.
    let other = server.org("Other").await;
    let theirs = server
        .invitations()
        .list_batches(authed(pb::ListBatchesRequest::default(), &other.key))
        .await
        .expect("batches")
        .into_inner();
    assert!(theirs.batches.is_empty());
}
