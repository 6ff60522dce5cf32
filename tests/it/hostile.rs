//! Hostile callers: bursts against the public RPCs, keys reaching for
//! another organisation's data, and oversize requests.

use tonic::Code;

use crate::{
    harness::{TestServer, authed},
    harness::{invite, send},
};
use onramp::pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_against_a_public_rpc_is_held_to_the_limit() {
    let server = TestServer::start_with(|c| c.public_rate_limit = 10).await;
    let org = server.org("Acme").await;
    let calls = (0..40).map(|i| {
        let mut credentials = server.credentials();
        let org_id = org.id.clone();
        async move {
            credentials
                .authenticate(pb::AuthenticateRequest {
                    organization_id: org_id,
                    username: format!("nobody{i}"),
                    password: "guess".into(),
                    second_factor_code: String::new(),
                })
                .await
                .expect_err("no such account")
                .code()
        }
    });
    let codes: Vec<Code> = futures_join(calls).await;
    let limited = codes.iter().filter(|c| **c == Code::ResourceExhausted).count();
    let answered = codes.iter().filter(|c| **c == Code::Unauthenticated).count();
    assert_eq!(answered, 10, "exactly the limit got through: {codes:?}");
    assert_eq!(limited, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_count_of_a_public_rpc() {
    let server = TestServer::start_with(|c| c.public_rate_limit = 5).await;
    let other = server.replica_with(|c| c.public_rate_limit = 5).await;
    let org = server.org("Acme").await;
    let reset = |replica: &TestServer| {
        let mut credentials = replica.credentials();
        let organization_id = org.id.clone();
        async move {
            credentials
                .request_password_reset(pb::RequestPasswordResetRequest {
                    organization_id,
                    email: "nobody@acme.example".into(),
                    ..Default::default()
                })
                .await
                .map(|_| ())
        }
    };
    for _ in 0..5 {
        reset(&server).await.expect("within the limit");
    }
    assert_eq!(
        reset(&server).await.expect_err("over the limit").code(),
        Code::ResourceExhausted
    );
    // The other replica learns the count at its first exchange with the
    // database (every 100 ms), so paced calls see it before the replica
    // could have counted five of its own.
    let deadline = tokio::time::Instant::now() + crate::harness::DEADLINE;
    let mut let_through = 0;
    loop {
        match reset(&other).await {
            Ok(()) => let_through += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted);
                break;
            }
        }
        assert!(let_through < 5, "the other replica started a count of its own");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the other replica never refused"
        );
        tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    }
}

async fn futures_join<F: std::future::Future<Output = Code> + Send + 'static>(
    calls: impl Iterator<Item = F>,
) -> Vec<Code> {
    let handles: Vec<_> = calls.map(tokio::spawn).collect();
    let mut codes = Vec::new();
    for handle in handles {
        codes.push(handle.await.expect("call"));
    }
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_rpc_answers_with_another_organisations_data() {
    let server = TestServer::start().await;
    let acme = server.org("Acme").await;
    let globex = server.org("Globex").await;
    let theirs = send(&server, &globex, invite(&globex, "hank@globex.example"))
        .await
        .expect("invite");
    let result = &theirs.results[0];
    let (user_id, invitation_id, batch_id) = (
        result.user_id.clone(),
        result.invitation_id.clone(),
        theirs.summary.batch_id.clone(),
    );

    let mut admin = server.admin();
    let mut invitations = server.invitations();
    let key = &acme.key;
    let denied = |status: tonic::Status| {
        assert!(
            matches!(status.code(), Code::NotFound | Code::PermissionDenied),
            "{status:?}"
        );
    };
    denied(
        admin
            .get_user(authed(
                pb::GetUserRequest {
                    organization_id: String::new(),
                    user_id: user_id.clone(),
                },
                key,
            ))
            .await
            .expect_err("user"),
    );
    denied(
        admin
            .get_organization(authed(
                pb::GetOrganizationRequest {
                    organization_id: globex.id.clone(),
                },
                key,
            ))
            .await
            .expect_err("organisation"),
    );
    denied(
        invitations
            .get_invitation(authed(
                pb::GetInvitationRequest {
                    organization_id: String::new(),
                    invitation_id: invitation_id.clone(),
                },
                key,
            ))
            .await
            .expect_err("invitation"),
    );
    denied(
        invitations
            .revoke_invitation(authed(
                pb::RevokeInvitationRequest {
                    organization_id: String::new(),
                    invitation_id: invitation_id.clone(),
                },
                key,
            ))
            .await
            .expect_err("revoke"),
    );
    denied(
        invitations
            .resend_invitation(authed(
                pb::ResendInvitationRequest {
                    organization_id: String::new(),
                    invitation_id,
                },
                key,
            ))
            .await
            .expect_err("resend"),
    );
    denied(
        invitations
            .watch_batch(authed(
                pb::WatchBatchRequest {
                    organization_id: String::new(),
                    batch_id: batch_id.clone(),
                },
                key,
            ))
            .await
            .expect_err("batch"),
    );
    denied(
        admin
            .deactivate_user(authed(
                pb::DeactivateUserRequest {
                    user_id: user_id.clone(),
                    ..Default::default()
                },
                key,
            ))
            .await
            .expect_err("deactivate"),
    );
    denied(
        server
            .credentials()
            .set_password(authed(
                pb::SetPasswordRequest {
                    user_id: user_id.clone(),
                    password: "plum tractor velvet".into(),
                    ..Default::default()
                },
                key,
            ))
            .await
            .expect_err("password"),
    );

    let users = admin
        .list_users(authed(pb::ListUsersRequest::default(), key))
        .await
        .expect("users")
        .into_inner();
    assert_eq!(users.total_size, 0);
    let listed = invitations
        .list_invitations(authed(
            pb::ListInvitationsRequest {
                batch_id,
                ..Default::default()
            },
            key,
        ))
        .await
        .expect("invitations")
        .into_inner();
    assert!(listed.invitations.is_empty());
    let deliveries = invitations
        .list_deliveries(authed(pb::ListDeliveriesRequest::default(), key))
        .await
        .expect("deliveries")
        .into_inner();
    assert!(deliveries.deliveries.is_empty());
    let audit = server
        .audit_events(
            key,
            pb::ListAuditEventsRequest {
                target_id: user_id,
                ..Default::default()
            },
        )
        .await;
    assert!(audit.is_empty());
    let sent = send(
        &server,
        &acme,
        pb::SendInvitationsRequest {
            user_ids: vec![result.user_id.clone()],
            ..Default::default()
        },
    )
    .await
    .expect("send");
    assert_eq!(
        sent.results[0].outcome(),
        pb::RecipientOutcome::InvalidAddress,
        "another organisation's user is unknown here"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_requests_are_refused_with_a_clear_status() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let huge = "a".repeat(20 << 20);
    let status = server
        .invitations()
        .send_invitations(authed(invite(&org, &huge), &org.key))
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    let status = server
        .admin()
        .create_user(authed(
            pb::CreateUserRequest {
                email: "a".repeat(5 << 20),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
}
