//! SendInvitations through the real SMTP receiver: per-recipient results,
//! the outbox's retries and refusals, resend, revoke, expiry, replicas and
//! WatchBatch.

use std::time::Duration;

use diesel::{QueryableByName, sql_types::Bytea};
use diesel_async::RunQueryDsl;
use sha2::Digest;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::harness::{
    DEADLINE, Org, TestServer, authed, claimed_in_a_transaction, constraints::person, finish, invite, opened,
    send, violations, watch,
};
use onramp::pb::{self, batch_event::Event};

pub fn sha256(token: &str) -> Vec<u8> {
    sha2::Sha256::digest(token.as_bytes()).to_vec()
}

#[derive(QueryableByName)]
struct Hash {
    #[diesel(sql_type = diesel::sql_types::Nullable<Bytea>)]
    token_hash: Option<Vec<u8>>,
}

/// The stored token hash of an invitation.
pub async fn stored_hash(server: &TestServer, invitation_id: &str) -> Option<Vec<u8>> {
    let rows: Vec<Hash> = diesel::sql_query("SELECT token_hash FROM invitations WHERE id = $1::uuid")
        .bind::<diesel::sql_types::Text, _>(invitation_id)
        .load(&mut server.db().await)
        .await
        .unwrap();
    rows.into_iter().next().and_then(|r| r.token_hash)
}

async fn get_invitation(server: &TestServer, org: &Org, id: &str) -> pb::Invitation {
    server
        .invitations()
        .get_invitation(authed(
            pb::GetInvitationRequest {
                organization_id: String::new(),
                invitation_id: id.into(),
            },
            &org.key,
        ))
        .await
        .expect("get invitation")
        .into_inner()
}

async fn get_user(server: &TestServer, org: &Org, id: &str) -> pb::User {
    server
        .admin()
        .get_user(authed(
            pb::GetUserRequest {
                organization_id: String::new(),
                user_id: id.into(),
            },
            &org.key,
        ))
        .await
        .expect("get user")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pasted_list_streams_exactly_the_right_results_and_emails_with_working_links() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    // A registered member (set directly: registration is its own service).
    let member = server
        .admin()
        .create_user(authed(
            pb::CreateUserRequest {
                email: "member@acme.example".into(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("member")
        .into_inner();
    diesel::sql_query("UPDATE users SET lifecycle = 'active' WHERE id = $1::uuid")
        .bind::<diesel::sql_types::Text, _>(&member.id)
        .execute(&mut server.db().await)
        .await
        .unwrap();
    let earlier = send(&server, &org, invite(&org, "pending@acme.example"))
        .await
        .expect("first batch");
    let pending_invitation = earlier.results[0].invitation_id.clone();

    let text = "ada@acme.example, Grace Hopper <grace@acme.example>\n\
                not-an-address; ADA@acme.example member@acme.example pending@acme.example";
    let finished = send(&server, &org, invite(&org, text)).await.expect("send");
    assert_eq!(finished.order[0], "summary");
    assert_eq!(finished.order[finished.order.len() - 1], "completion");
    let s = &finished.summary;
    assert_eq!((s.total, s.recognized, s.invalid, s.duplicates), (6, 4, 1, 1));
    assert!(!s.batch_id.is_empty());
    use pb::RecipientOutcome as O;
    assert_eq!(
        finished.outcomes(),
        [
            (0, O::Sent),
            (1, O::Sent),
            (2, O::InvalidAddress),
            (3, O::DuplicateInRequest),
            (4, O::AlreadyMember),
            (5, O::AlreadyInvited)
        ]
    );
    let by_index = |i: i32| finished.results.iter().find(|r| r.index == i).expect("result");
    assert_eq!(by_index(2).input, "not-an-address");
    assert!(by_index(2).reason.contains("no @"), "{}", by_index(2).reason);
    assert_eq!(by_index(5).invitation_id, pending_invitation);
    let c = &finished.completion;
    assert_eq!(
        (
            c.sent,
            c.failed,
            c.invalid,
            c.duplicates,
            c.already_member,
            c.already_invited
        ),
        (2, 0, 1, 1, 1, 1)
    );

    let mail = server.smtp.wait_for(3, DEADLINE).await;
    assert_eq!(
        mail.len(),
        3,
        "one email per invitation: {:?}",
        mail.iter().map(|m| &m.to).collect::<Vec<_>>()
    );
    for (index, address) in [(0, "ada@acme.example"), (1, "grace@acme.example")] {
        let emails = server.smtp.to(address);
        assert_eq!(emails.len(), 1, "{address}");
        let email = &emails[0];
        assert!(email.subject().contains("Acme"), "{}", email.subject());
        assert!(
            email
                .html()
                .contains(&format!("<a href=\"{}/register?token=", server.address)),
            "{}",
            email.html()
        );
        let token = email.link_param("token").expect("a link with a token");
        assert!(token.len() >= 43, "at least 256 bits: {token}");
        let invitation = by_index(index).invitation_id.clone();
        assert_eq!(
            stored_hash(&server, &invitation).await,
            Some(sha256(&token)),
            "the link's token is the stored one"
        );
        assert_eq!(
            get_invitation(&server, &org, &invitation).await.state(),
            pb::InvitationState::Sent
        );
    }
    assert!(
        server.smtp.received()[0]
            .header("Message-ID")
            .is_some_and(|id| id.ends_with("@localhost>"))
    );
    let grace = get_user(&server, &org, &by_index(1).user_id).await;
    assert_eq!(
        (grace.first_name.as_str(), grace.last_name.as_str()),
        ("Grace", "Hopper")
    );
    assert_eq!(grace.status(), pb::UserStatus::Pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_repeated_in_a_later_chunk_is_a_repeat_and_emailed_once() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    // A send is decided and written 5,000 entries at a time: the repeat
    // comes after the chunk that invited the address is written.
    let filler: String = (0..5_000).map(|i| format!("not-an-address-{i}\n")).collect();
    let text = format!("ada@acme.example\n{filler}ADA@acme.example\ngrace@acme.example");
    let finished = send(&server, &org, invite(&org, &text)).await.expect("send");
    let s = &finished.summary;
    assert_eq!((s.total, s.invalid, s.duplicates), (5_003, 5_000, 1));
    use pb::RecipientOutcome as O;
    let outcomes = finished.outcomes();
    assert_eq!(
        [outcomes[0], outcomes[5_001], outcomes[5_002]],
        [(0, O::Sent), (5_001, O::DuplicateInRequest), (5_002, O::Sent)]
    );
    assert_eq!(finished.completion.sent, 2);
    server.smtp.wait_for(2, DEADLINE).await;
    let mut to: Vec<String> = server.smtp.received().iter().map(|m| m.to.join(",")).collect();
    to.sort();
    assert_eq!(to, ["ada@acme.example", "grace@acme.example"]);
}

/// A new person's row is first written plainly and, when a unique index
/// turns one row away, again without it: the rest of the chunk is invited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_that_is_another_persons_username_is_refused_alone() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    crate::credentials::staged(&server, &org, "xavier@acme.example", "ada@acme.example").await;
    let finished = send(
        &server,
        &org,
        invite(&org, "grace@acme.example ADA@acme.example alan@acme.example"),
    )
    .await
    .expect("send");
    use pb::RecipientOutcome as O;
    assert_eq!(
        finished.outcomes(),
        [(0, O::Sent), (1, O::InvalidAddress), (2, O::Sent)]
    );
    let refused = finished.results.iter().find(|r| r.index == 1).expect("refused");
    assert_eq!(
        refused.reason,
        "another user of the organisation has this address as their username"
    );
    server.smtp.wait_for(2, DEADLINE).await;
    let mut to: Vec<String> = server.smtp.received().iter().map(|m| m.to.join(",")).collect();
    to.sort();
    assert_eq!(to, ["alan@acme.example", "grace@acme.example"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_refusal_fails_that_recipient_only() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    server.smtp.set(|b| b.refuse = vec!["gone@acme.example".into()]);
    let finished = send(
        &server,
        &org,
        invite(&org, "a@acme.example gone@acme.example b@acme.example"),
    )
    .await
    .expect("send");
    use pb::RecipientOutcome as O;
    assert_eq!(finished.outcomes(), [(0, O::Sent), (1, O::Failed), (2, O::Sent)]);
    let failed = finished.results.iter().find(|r| r.index == 1).expect("failed");
    assert!(
        failed.reason.contains("550"),
        "the SMTP reply is the reason: {}",
        failed.reason
    );
    assert_eq!((finished.completion.sent, finished.completion.failed), (2, 1));
    let invitation = get_invitation(&server, &org, &failed.invitation_id).await;
    assert_eq!(invitation.state(), pb::InvitationState::Failed);
    assert!(invitation.last_error.contains("550"));
    assert_eq!(server.smtp.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_then_up_delivers_everything_exactly_once() {
    let server = TestServer::start_with(|c| c.outbox.retry_base = Duration::from_millis(300)).await;
    let org = server.org("Acme").await;
    server.smtp.set(|b| b.down = true);
    let stream = server
        .invitations()
        .send_invitations(authed(
            invite(&org, "a@acme.example, b@acme.example, c@acme.example"),
            &org.key,
        ))
        .await
        .expect("send")
        .into_inner();
    // Wait until every message has failed at least once.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let deliveries = server
            .invitations()
            .list_deliveries(authed(pb::ListDeliveriesRequest::default(), &org.key))
            .await
            .expect("deliveries")
            .into_inner()
            .deliveries;
        if deliveries.len() == 3
            && deliveries
                .iter()
                .all(|d| d.attempts >= 1 && !d.last_error.is_empty())
        {
            assert!(deliveries.iter().all(|d| d.state() != pb::DeliveryState::Sent));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failed attempts seen: {deliveries:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.smtp.set(|b| b.down = false);
    let finished = finish(stream).await.expect("batch");
    assert_eq!(finished.completion.sent, 3);
    let mail = server.smtp.received();
    let mut recipients: Vec<String> = mail.iter().flat_map(|m| m.to.clone()).collect();
    recipients.sort();
    assert_eq!(
        recipients,
        ["a@acme.example", "b@acme.example", "c@acme.example"],
        "each exactly once"
    );
}

/// A worker's claim turns a queued email into a sending one under its
/// lease and changes no column an index depends on, so PostgreSQL keeps the
/// new version on its page and writes no index entry: every row it claims
/// is a heap-only update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_rewrites_no_index_of_the_outbox() {
    #[derive(QueryableByName)]
    struct Updates {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        updated: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        heap_only: i64,
    }
    let (_server, mut db, _claimed) = claimed_in_a_transaction(100).await;
    // This transaction's own counts, before they are reported anywhere.
    let counts: Updates = diesel::sql_query(
        "SELECT pg_stat_get_xact_tuples_updated('outbox'::regclass) AS updated, \
           pg_stat_get_xact_tuples_hot_updated('outbox'::regclass) AS heap_only",
    )
    .get_result(&mut db)
    .await
    .expect("counts");
    assert_eq!(counts.updated, 100);
    assert_eq!(
        counts.heap_only, 100,
        "a claimed email's new version was written to an index"
    );
    diesel_async::SimpleAsyncConnection::batch_execute(&mut db, "ROLLBACK")
        .await
        .expect("rollback");
}

/// Records every claimed email as sent, in the caller's transaction;
/// answers the kinds of the batches that completed.
async fn recorded_as_sent(
    db: &mut diesel_async::AsyncPgConnection,
    claimed: Vec<onramp::outbox::claim::Claimed>,
) -> Vec<onramp::lifecycle::email_kind::EmailKind> {
    use onramp::outbox::record::{Answer, Outcome, Policy, record};
    let answers: Vec<Answer> = claimed
        .into_iter()
        .map(|message| Answer {
            message,
            outcome: Outcome::Sent,
            worker: "test-worker".into(),
        })
        .collect();
    let policy = Policy {
        max_attempts: 5,
        retry_base: chrono::TimeDelta::seconds(5),
    };
    record(db, &answers, &policy, chrono::Utc::now())
        .await
        .expect("record")
}

/// Recording a batch's sent emails numbers each recipient's result on the
/// email, whose settling rewrites the outbox's indexes anyway, and writes
/// no row of the batch's own: an emailed recipient has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_a_batchs_sent_emails_numbers_each_result_on_its_email() {
    #[derive(QueryableByName)]
    struct Counts {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        written: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        numbered: i64,
    }
    let (_server, mut db, claimed) = claimed_in_a_transaction(100).await;
    let completed = recorded_as_sent(&mut db, claimed).await;
    assert_eq!(completed.len(), 1, "the last result completes the batch");
    // This transaction's own counts, before they are reported anywhere.
    let counts: Counts = diesel::sql_query(
        "SELECT pg_stat_get_xact_tuples_inserted('batch_items'::regclass) \
           + pg_stat_get_xact_tuples_updated('batch_items'::regclass) AS written, \
           (SELECT count(DISTINCT finished_seq) FROM outbox) AS numbered",
    )
    .get_result(&mut db)
    .await
    .expect("counts");
    assert_eq!(counts.written, 0, "a row of the batch's own was written");
    assert_eq!(counts.numbered, 100, "each result has its own number");
    diesel_async::SimpleAsyncConnection::batch_execute(&mut db, "ROLLBACK")
        .await
        .expect("rollback");
}

/// A follower's poll reads the rows of its new results and no others,
/// whatever PostgreSQL guesses of the batch's size: on tables not yet
/// analysed, as in a new deployment, a join of the emails to other rows
/// read all of the batch's rows on every poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followers_poll_reads_only_its_new_results_rows() {
    #[derive(QueryableByName)]
    struct Read {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let (_server, mut db, claimed) = claimed_in_a_transaction(1000).await;
    let batch_id = claimed[0].batch_id.expect("a batch's email");
    recorded_as_sent(&mut db, claimed).await;
    let cursor: Read =
        diesel::sql_query("SELECT finished_seq AS n FROM outbox ORDER BY finished_seq OFFSET 989 LIMIT 1")
            .get_result(&mut db)
            .await
            .expect("the cursor");
    // This transaction's own counts, before they are reported anywhere.
    let read = "SELECT pg_stat_get_xact_tuples_returned('batch_items'::regclass) \
        + pg_stat_get_xact_tuples_fetched('batch_items'::regclass) \
        + pg_stat_get_xact_tuples_returned('outbox'::regclass) \
        + pg_stat_get_xact_tuples_fetched('outbox'::regclass) AS n";
    let before: Read = diesel::sql_query(read).get_result(&mut db).await.expect("counts");
    let (completed_at, items) = onramp::domain::invitations::follow::since(&mut db, batch_id, cursor.n, 100)
        .await
        .expect("the poll");
    let after: Read = diesel::sql_query(read).get_result(&mut db).await.expect("counts");
    assert!(completed_at.is_some(), "every result is in");
    assert_eq!(items.len(), 10, "the results after the cursor");
    assert!(
        items.windows(2).all(|w| w[0].finished_seq < w[1].finished_seq),
        "in the order they became final"
    );
    assert!(
        after.n - before.n <= 20,
        "one poll read {} rows for 10 results",
        after.n - before.n
    );
    diesel_async::SimpleAsyncConnection::batch_execute(&mut db, "ROLLBACK")
        .await
        .expect("rollback");
}

/// Followers read a batch's results in the order of their numbers, so a
/// result may draw its number only while its recorder holds the batch row:
/// held by another transaction, an accepted email's result waits unnumbered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_is_numbered_only_once_its_recorder_holds_the_batch() {
    #[derive(QueryableByName)]
    struct Waiting {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    #[derive(QueryableByName)]
    struct Drawn {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        is_called: bool,
    }
    let server = TestServer::start_with(|c| c.outbox.retry_base = Duration::from_millis(300)).await;
    let org = server.org("Acme").await;
    server.smtp.set(|b| b.down = true);
    let (summary, stream) = opened(&server, &org, invite(&org, "a@acme.example")).await;
    let batch_id = summary.batch_id;
    // A first attempt refused: its outcome (try again) takes no number.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while server.smtp.refusals().turned_away == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no attempt while the server was down"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut holder = server.db().await;
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut holder,
        &format!("BEGIN; SELECT id FROM batches WHERE id = '{batch_id}' FOR UPDATE"),
    )
    .await
    .expect("hold the batch row");
    server.smtp.set(|b| b.down = false);
    server.smtp.wait_for(1, DEADLINE).await;
    let mut db = server.db().await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let waiting: Waiting = diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .get_result(&mut db)
        .await
        .unwrap();
        if waiting.n > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the recorder never waited for the batch"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drawn: Drawn = diesel::sql_query("SELECT is_called FROM batch_items_finished_seq")
        .get_result(&mut db)
        .await
        .unwrap();
    assert!(
        !drawn.is_called,
        "a result drew its number while another transaction held its batch"
    );

    diesel_async::SimpleAsyncConnection::batch_execute(&mut holder, "COMMIT")
        .await
        .expect("let the batch go");
    let finished = finish(stream).await.expect("batch");
    assert_eq!(finished.completion.sent, 1);
    assert_eq!(server.smtp.received().len(), 1, "sent once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resend_replaces_the_token_and_restarts_the_expiry() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let finished = send(&server, &org, invite(&org, "ada@acme.example"))
        .await
        .expect("send");
    let invitation_id = finished.results[0].invitation_id.clone();
    let first = server.smtp.wait_for(1, DEADLINE).await[0]
        .link_param("token")
        .expect("token");
    let before = get_invitation(&server, &org, &invitation_id).await;

    let resent = server
        .invitations()
        .resend_invitation(authed(
            pb::ResendInvitationRequest {
                organization_id: String::new(),
                invitation_id: invitation_id.clone(),
            },
            &org.key,
        ))
        .await
        .expect("resend")
        .into_inner();
    assert_eq!(resent.state(), pb::InvitationState::Queued);
    // A worker may already have minted the new token; either way the old one
    // no longer matches.
    assert_ne!(
        stored_hash(&server, &invitation_id).await,
        Some(sha256(&first)),
        "the old link stopped working at once"
    );
    let second = server.smtp.wait_for(2, DEADLINE).await[1]
        .link_param("token")
        .expect("token");
    assert_ne!(first, second);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let after = loop {
        let current = get_invitation(&server, &org, &invitation_id).await;
        if current.send_count == 2 {
            break current;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the resend was not recorded: {current:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(stored_hash(&server, &invitation_id).await, Some(sha256(&second)));
    assert_eq!(after.state(), pb::InvitationState::Sent);
    assert!(after.expire_time.expect("expiry").seconds >= before.expire_time.expect("expiry").seconds);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_link_shows_expired_at_once_and_a_resend_makes_it_pending_again() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let finished = send(&server, &org, invite(&org, "ada@acme.example"))
        .await
        .expect("send");
    let (invitation_id, user_id) = (
        finished.results[0].invitation_id.clone(),
        finished.results[0].user_id.clone(),
    );
    assert_eq!(
        get_user(&server, &org, &user_id).await.status(),
        pb::UserStatus::Pending
    );

    server
        .state
        .clock
        .advance(chrono::TimeDelta::days(7) + chrono::TimeDelta::seconds(1));
    assert_eq!(
        get_invitation(&server, &org, &invitation_id).await.state(),
        pb::InvitationState::Expired
    );
    assert_eq!(
        get_user(&server, &org, &user_id).await.status(),
        pb::UserStatus::Expired
    );
    let expired = server
        .admin()
        .list_users(authed(
            pb::ListUsersRequest {
                status: pb::UserStatus::Expired as i32,
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(expired.total_size, 1);
    let listed = server
        .invitations()
        .list_invitations(authed(
            pb::ListInvitationsRequest {
                state: pb::InvitationState::Expired as i32,
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("list invitations")
        .into_inner();
    assert_eq!(listed.invitations.len(), 1);

    server
        .invitations()
        .resend_invitation(authed(
            pb::ResendInvitationRequest {
                organization_id: String::new(),
                invitation_id,
            },
            &org.key,
        ))
        .await
        .expect("resend");
    assert_eq!(
        get_user(&server, &org, &user_id).await.status(),
        pb::UserStatus::Pending
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_kills_the_link_and_returns_the_person_to_staged() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let finished = send(&server, &org, invite(&org, "ada@acme.example"))
        .await
        .expect("send");
    let (invitation_id, user_id) = (
        finished.results[0].invitation_id.clone(),
        finished.results[0].user_id.clone(),
    );
    let revoke = || {
        authed(
            pb::RevokeInvitationRequest {
                organization_id: String::new(),
                invitation_id: invitation_id.clone(),
            },
            &org.key,
        )
    };
    let revoked = server
        .invitations()
        .revoke_invitation(revoke())
        .await
        .expect("revoke")
        .into_inner();
    assert_eq!(revoked.state(), pb::InvitationState::Revoked);
    let token = server.smtp.wait_for(1, DEADLINE).await[0]
        .link_param("token")
        .expect("token");
    let status = server
        .registration()
        .get_registration(pb::GetRegistrationRequest { token })
        .await
        .expect_err("the link stopped working");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("withdrawn"), "{}", status.message());
    assert_eq!(
        get_user(&server, &org, &user_id).await.status(),
        pb::UserStatus::Staged
    );
    server
        .invitations()
        .revoke_invitation(revoke())
        .await
        .expect("revoking twice is harmless");
    let status = server
        .invitations()
        .resend_invitation(authed(
            pb::ResendInvitationRequest {
                organization_id: String::new(),
                invitation_id: invitation_id.clone(),
            },
            &org.key,
        ))
        .await
        .expect_err("a revoked invitation is not resent");
    assert_eq!(status.code(), Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_send_each_email_exactly_once() {
    let server = TestServer::start_with(|c| c.outbox.claim_size = 4).await;
    let replica = server.replica().await;
    let org = server.org("Acme").await;
    let text: Vec<String> = (0..120).map(|i| format!("person{i}@acme.example")).collect();
    let finished = send(&replica, &org, invite(&org, &text.join("\n")))
        .await
        .expect("send");
    assert_eq!(finished.completion.sent, 120);
    let mut streamed: Vec<i32> = finished.results.iter().map(|r| r.index).collect();
    streamed.sort();
    assert_eq!(
        streamed,
        (0..120).collect::<Vec<_>>(),
        "every result streamed once"
    );
    let mail = server.smtp.wait_for(120, DEADLINE).await;
    let mut recipients: Vec<String> = mail.iter().flat_map(|m| m.to.clone()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 120);
    assert_eq!(mail.len(), 120, "no email was sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_batch_after_a_disconnect_sees_every_result() {
    let server = TestServer::start().await;
    let other = server.replica().await;
    let org = server.org("Acme").await;
    server.smtp.set(|b| b.delay = Duration::from_millis(150));
    let (summary, stream) = opened(
        &server,
        &org,
        invite(
            &org,
            "a@acme.example b@acme.example c@acme.example d@acme.example",
        ),
    )
    .await;
    drop(stream);
    // Followed from the other replica.
    let finished = watch(other.invitations(), &org, summary.batch_id.clone()).await;
    assert_eq!(finished.summary.batch_id, summary.batch_id);
    assert!(finished.summary.replayed);
    assert_eq!(finished.results.len(), 4);
    assert!(
        finished
            .results
            .iter()
            .all(|r| r.outcome() == pb::RecipientOutcome::Sent)
    );
    assert_eq!(finished.completion.sent, 4);

    let status = other
        .invitations()
        .watch_batch(authed(
            pb::WatchBatchRequest {
                organization_id: String::new(),
                batch_id: uuid::Uuid::now_v7().to_string(),
            },
            &org.key,
        ))
        .await
        .expect_err("no such batch");
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_replays_the_batch_and_sends_nothing_new() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let request = pb::SendInvitationsRequest {
        idempotency_key: "hr-import-2026-11-21".into(),
        ..invite(&org, "ada@acme.example, grace@acme.example")
    };
    let first = send(&server, &org, request.clone()).await.expect("first");
    let again = send(&server, &org, request).await.expect("again");
    assert_eq!(again.summary.batch_id, first.summary.batch_id);
    assert!(again.summary.replayed && !first.summary.replayed);
    assert_eq!(again.outcomes(), first.outcomes());
    server.smtp.wait_for(2, DEADLINE).await;
    let invitations = server
        .invitations()
        .list_invitations(authed(pb::ListInvitationsRequest::default(), &org.key))
        .await
        .expect("list")
        .into_inner()
        .invitations;
    assert_eq!(invitations.len(), 2);
    assert_eq!(server.smtp.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_previews_one_email_and_writes_nothing() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let finished = send(
        &server,
        &org,
        pb::SendInvitationsRequest {
            dry_run: true,
            ..invite(&org, "Ada Lovelace <ada@acme.example>, nope")
        },
    )
    .await
    .expect("dry run");
    assert!(finished.summary.dry_run);
    assert_eq!(
        finished.order,
        ["summary", "preview", "result", "result", "completion"]
    );
    let preview = finished.preview.clone().expect("preview");
    assert_eq!(preview.to, "ada@acme.example");
    assert!(preview.text_body.contains("Hello Ada"), "{}", preview.text_body);
    assert!(preview.subject.contains("Acme"));
    use pb::RecipientOutcome as O;
    assert_eq!(finished.outcomes(), [(0, O::WouldSend), (1, O::InvalidAddress)]);
    assert_eq!(finished.completion.would_send, 1);
    let users = server
        .admin()
        .list_users(authed(pb::ListUsersRequest::default(), &org.key))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(users.total_size, 0);
    let deliveries = server
        .invitations()
        .list_deliveries(authed(pb::ListDeliveriesRequest::default(), &org.key))
        .await
        .expect("deliveries")
        .into_inner()
        .deliveries;
    assert!(deliveries.is_empty(), "a dry run queued emails: {deliveries:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_before_anything_is_written() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let refused = |request: pb::SendInvitationsRequest| {
        let server = &server;
        let org = &org;
        async move { send(server, org, request).await.expect_err("refused") }
    };
    let status = refused(pb::SendInvitationsRequest::default()).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violations(&status)[0].0, "recipients_text");

    let status = refused(pb::SendInvitationsRequest {
        recipients_text: "ada@acme.example".into(),
        ..Default::default()
    })
    .await;
    let fields: Vec<String> = violations(&status).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["service_area_id", "role_id"]);

    let status = refused(pb::SendInvitationsRequest {
        role_id: uuid::Uuid::now_v7().to_string(),
        ..invite(&org, "ada@acme.example")
    })
    .await;
    assert_eq!(violations(&status)[0].0, "role_id");

    let many: String = (0..100_001).map(|i| format!("p{i}@x.io\n")).collect();
    let status = refused(invite(&org, &many)).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("at most 100000"),
        "{}",
        status.message()
    );

    let status = server
        .invitations()
        .send_invitations(authed(
            invite(&org, "ada@acme.example"),
            &server.org("Globex").await.key,
        ))
        .await
        .expect_err("another organisation's service area");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(server.smtp.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_users_get_the_welcome_invitation_all_at_once_or_one_by_one() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let mut ids = Vec::new();
    for email in ["a@acme.example", "b@acme.example", "c@acme.example"] {
        ids.push(person(&server, &org, email).await);
    }
    let one = send(
        &server,
        &org,
        pb::SendInvitationsRequest {
            user_ids: vec![ids[0].clone(), "not-an-id".into()],
            ..Default::default()
        },
    )
    .await
    .expect("one");
    use pb::RecipientOutcome as O;
    assert_eq!(one.outcomes(), [(0, O::Sent), (1, O::InvalidAddress)]);
    let rest = send(
        &server,
        &org,
        pb::SendInvitationsRequest {
            all_staged: true,
            ..Default::default()
        },
    )
    .await
    .expect("all staged");
    assert_eq!(
        rest.completion.sent, 2,
        "the one already invited is no longer staged"
    );
    server.smtp.wait_for(3, DEADLINE).await;
    assert_eq!(server.smtp.to("a@acme.example").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_template_is_validated_previewed_and_used() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let mut client = server.invitations();
    let update = |subject: &str, text: &str| pb::UpdateTemplateRequest {
        template: Some(pb::Template {
            kind: pb::EmailKind::Invitation as i32,
            subject: subject.into(),
            text_body: text.into(),
            html_body: "<p>Join {{ organization_name }}: <a href=\"{{ link }}\">here</a></p>".into(),
            ..Default::default()
        }),
        update_mask: None,
        reset_to_default: false,
    };
    let status = client
        .update_template(authed(update("Join us", "No link here"), &org.key))
        .await
        .expect_err("no link");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        violations(&status)
            .iter()
            .any(|(f, d)| f == "template.text_body" && d.contains("{{ link }}"))
    );

    let saved = client
        .update_template(authed(
            update("Welcome aboard, {{ first_name }}", "Register: {{ link }}"),
            &org.key,
        ))
        .await
        .expect("update")
        .into_inner();
    assert!(!saved.is_default);
    let listed = client
        .list_templates(authed(pb::ListTemplatesRequest::default(), &org.key))
        .await
        .expect("list")
        .into_inner()
        .templates;
    assert_eq!(listed.len(), 5);
    assert_eq!(listed.iter().filter(|t| t.is_default).count(), 4);
    let rendered = client
        .render_template(authed(
            pb::RenderTemplateRequest {
                kind: pb::EmailKind::Invitation as i32,
                template: Some(pb::Template {
                    subject: "Hi".into(),
                    text_body: "{{ link }}".into(),
                    html_body: "<p>{{ first_name }} {{ link }}</p>".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("render")
        .into_inner();
    assert!(
        rendered
            .html_body
            .contains("<p>Ada https://example.com/register?token=SAMPLE</p>"),
        "{}",
        rendered.html_body
    );

    send(&server, &org, invite(&org, "Ada Lovelace <ada@acme.example>"))
        .await
        .expect("send");
    let email = &server.smtp.wait_for(1, DEADLINE).await[0];
    assert_eq!(email.subject(), "Welcome aboard, Ada");
    assert!(email.link_param("token").is_some());
    client
        .update_template(authed(
            pb::UpdateTemplateRequest {
                template: Some(pb::Template {
                    kind: pb::EmailKind::Invitation as i32,
                    ..Default::default()
                }),
                reset_to_default: true,
                update_mask: None,
            },
            &org.key,
        ))
        .await
        .expect("reset");
    let back = client
        .get_template(authed(
            pb::GetTemplateRequest {
                kind: pb::EmailKind::Invitation as i32,
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("get")
        .into_inner();
    assert!(back.is_default);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_show_each_email_with_its_attempts() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let finished = send(&server, &org, invite(&org, "ada@acme.example"))
        .await
        .expect("send");
    let deliveries = server
        .invitations()
        .list_deliveries(authed(
            pb::ListDeliveriesRequest {
                batch_id: finished.summary.batch_id.clone(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("deliveries")
        .into_inner()
        .deliveries;
    assert_eq!(deliveries.len(), 1);
    let d = &deliveries[0];
    assert_eq!(
        (d.state(), d.kind(), d.attempts),
        (pb::DeliveryState::Sent, pb::EmailKind::Invitation, 1)
    );
    assert_eq!(d.email, "ada@acme.example");
    let received = &server.smtp.wait_for(1, DEADLINE).await[0];
    assert_eq!(
        received.header("Message-ID").as_deref(),
        Some(d.message_id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_mid_batch_hands_back_its_work_and_a_replica_finishes_it() {
    let mut server = TestServer::start_with(|c| c.outbox.claim_size = 2).await;
    let replica = server.replica().await;
    let org = server.org("Acme").await;
    server.smtp.set(|b| b.delay = Duration::from_millis(100));
    let text: Vec<String> = (0..20).map(|i| format!("p{i}@acme.example")).collect();
    let (summary, _stream) = opened(&server, &org, invite(&org, &text.join(","))).await;
    server.smtp.wait_for(1, DEADLINE).await;
    server.stop().await;
    let finished = watch(replica.invitations(), &org, summary.batch_id).await;
    assert_eq!(finished.completion.sent, 20);
    assert_eq!(finished.results.len(), 20, "every result streamed");
    let mail = server.smtp.received();
    assert_eq!(mail.len(), 20, "each email once, whichever server sent it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_smtp_server_still_gets_each_result_streamed_as_it_answers() {
    let server = TestServer::start_with(|c| {
        c.outbox.workers = 1;
        c.outbox.claim_size = 1;
    })
    .await;
    let org = server.org("Acme").await;
    server.smtp.set(|b| b.delay = Duration::from_secs(1));
    let mut stream = server
        .invitations()
        .send_invitations(authed(
            invite(&org, "a@acme.example b@acme.example c@acme.example"),
            &org.key,
        ))
        .await
        .expect("send")
        .into_inner();
    let mut accepted_at_each_result = Vec::new();
    let read = async {
        while let Some(event) = stream.next().await {
            if let Some(Event::Result(result)) = event.expect("an event").event {
                assert_eq!(result.outcome(), pb::RecipientOutcome::Sent);
                accepted_at_each_result.push(server.smtp.received().len());
            }
        }
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("the batch finished");
    // One email a second, one at a time: each result reaches the client
    // before the SMTP server has accepted the next email.
    assert_eq!(accepted_at_each_result, vec![1, 2, 3]);
}

/// A resend or a revoke withdraws the invitation's queued email. Nothing
/// indexes an email by its invitation, so the withdrawal goes through the
/// person's emails: it must not read the whole outbox, which grows with
/// every email ever sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawing_a_queued_invitation_email_reads_only_its_persons_emails() {
    #[derive(QueryableByName)]
    struct Invited {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: uuid::Uuid,
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        user_id: uuid::Uuid,
    }
    #[derive(QueryableByName)]
    struct Scans {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        seq_scan: i64,
    }
    #[derive(QueryableByName)]
    struct Waiting {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    // No workers: the email stays queued.
    let server = TestServer::start_with(|c| c.outbox.workers = 0).await;
    let org = server.org("Acme").await;
    let (summary, _stream) = opened(&server, &org, invite(&org, "ada@acme.example, bob@acme.example")).await;
    assert_eq!(summary.recognized, 2);
    let mut db = server.db().await;
    let ada: Invited =
        diesel::sql_query("SELECT id, user_id FROM invitations WHERE email = 'ada@acme.example'")
            .get_result(&mut db)
            .await
            .expect("ada's invitation");

    diesel_async::SimpleAsyncConnection::batch_execute(&mut db, "BEGIN; SET LOCAL enable_seqscan = off")
        .await
        .expect("begin");
    onramp::domain::outbox::cancel_queued(&mut db, ada.id, ada.user_id, "withdrawn", chrono::Utc::now())
        .await
        .expect("withdraw");
    // This transaction's own counts, before they are reported anywhere.
    let scans: Scans =
        diesel::sql_query("SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'outbox'")
            .get_result(&mut db)
            .await
            .expect("scans");
    assert_eq!(scans.seq_scan, 0, "the withdrawal read the whole outbox");
    let waiting: Waiting = diesel::sql_query("SELECT count(*) AS n FROM outbox WHERE state = 'queued'")
        .get_result(&mut db)
        .await
        .expect("waiting");
    assert_eq!(waiting.n, 1, "only ada's email was withdrawn");
    diesel_async::SimpleAsyncConnection::batch_execute(&mut db, "ROLLBACK")
        .await
        .expect("rollback");
}

/// A batch writes a row of its own only for the recipients it does not
/// email (an invalid address, a repeat, a person already there): an emailed
/// recipient's input and result live on the email, one row where there
/// were two. Each result still reports its entry as it was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_writes_rows_of_its_own_only_for_recipients_it_does_not_email() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let text = "Ada Lovelace <ada@acme.example>, grace@acme.example\nnot-an-address grace@acme.example";
    let finished = send(&server, &org, invite(&org, text)).await.expect("send");
    use pb::RecipientOutcome as O;
    assert_eq!(
        finished.outcomes(),
        [
            (0, O::Sent),
            (1, O::Sent),
            (2, O::InvalidAddress),
            (3, O::DuplicateInRequest)
        ]
    );
    let by_index = |i: i32| finished.results.iter().find(|r| r.index == i).expect("result");
    assert_eq!(
        (by_index(0).input.as_str(), by_index(0).email.as_str()),
        ("Ada Lovelace <ada@acme.example>", "ada@acme.example")
    );
    assert_eq!(
        (by_index(1).input.as_str(), by_index(1).email.as_str()),
        ("grace@acme.example", "grace@acme.example")
    );
    assert!(!by_index(0).user_id.is_empty() && !by_index(0).invitation_id.is_empty());
    let rows = crate::harness::constraints::count(
        &mut server.db().await,
        "SELECT count(*) AS n FROM batch_items WHERE batch_id = $1::uuid",
        &finished.summary.batch_id,
    )
    .await;
    assert_eq!(
        rows, 2,
        "rows for the two recipients not emailed, and only for them"
    );
}

/// Revoking an invitation whose email is still queued makes its recipient's
/// result final (FAILED, with the reason) and completes the batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_queued_invitation_settles_its_batch_result() {
    // No workers: the email stays queued.
    let server = TestServer::start_with(|c| c.outbox.workers = 0).await;
    let org = server.org("Acme").await;
    let (summary, stream) = opened(&server, &org, invite(&org, "Ada <ada@acme.example>")).await;
    let invitation: String = diesel::dsl::sql::<diesel::sql_types::Text>("SELECT id::text FROM invitations")
        .get_result(&mut server.db().await)
        .await
        .expect("the invitation");
    server
        .invitations()
        .revoke_invitation(authed(
            pb::RevokeInvitationRequest {
                organization_id: org.id.clone(),
                invitation_id: invitation.clone(),
            },
            &org.key,
        ))
        .await
        .expect("revoke");
    let finished = finish(stream).await.expect("the batch completes");
    assert_eq!(finished.completion.batch_id, summary.batch_id);
    assert_eq!(finished.outcomes(), [(0, pb::RecipientOutcome::Failed)]);
    let result = &finished.results[0];
    assert_eq!(
        (
            result.input.as_str(),
            result.email.as_str(),
            result.invitation_id.as_str()
        ),
        ("Ada <ada@acme.example>", "ada@acme.example", invitation.as_str())
    );
    assert!(result.reason.contains("revoked"), "{}", result.reason);
    assert_eq!((finished.completion.sent, finished.completion.failed), (0, 1));
    assert!(server.smtp.received().is_empty(), "nothing was sent");
}

/// The migration that made an emailed recipient's email their one row.
const ON_THEIR_EMAILS: &str = "20261205000004";

/// A batch written before an emailed recipient's email became their one row
/// (every recipient with a row of the batch's own, a withdrawn email's
/// result made final on that row) reads the same after the upgrade, and the
/// rows it no longer needs are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_written_before_emailed_recipients_moved_reads_the_same_after() {
    use pb::RecipientOutcome as O;
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let text = "Ada Lovelace <ada@acme.example>, grace@acme.example, not-an-address";
    let sent = send(&server, &org, invite(&org, text)).await.expect("send");
    let batch_id = sent.summary.batch_id.clone();
    let rows = async |db: &mut diesel_async::AsyncPgConnection| {
        crate::harness::constraints::count(
            db,
            "SELECT count(*) AS n FROM batch_items WHERE batch_id = $1::uuid",
            &batch_id,
        )
        .await
    };
    crate::harness::migrations::across(&server, ON_THEIR_EMAILS, async |db| {
        assert_eq!(rows(db).await, 3, "every recipient has a row again");
        // As the build before withdrew an email: its result on the row.
        diesel_async::SimpleAsyncConnection::batch_execute(
            db,
            "UPDATE outbox SET state = 'failed', last_error = 'the invitation was revoked', \
               finished_at = NULL, finished_seq = NULL WHERE recipient = 'grace@acme.example'; \
             UPDATE batch_items SET outcome = 'failed', reason = 'the invitation was revoked', \
               finished_at = now(), finished_seq = nextval('batch_items_finished_seq') WHERE position = 1",
        )
        .await
        .expect("withdrawn as before");
    })
    .await;
    assert_eq!(rows(&mut server.db().await).await, 1, "the invalid address's row");
    let read = watch(server.invitations(), &org, batch_id.clone()).await;
    assert_eq!(
        read.outcomes(),
        [(0, O::Sent), (1, O::Failed), (2, O::InvalidAddress)]
    );
    let by_index = |finished: &crate::harness::Finished| {
        let mut results = finished.results.clone();
        results.sort_by_key(|r| r.index);
        results
    };
    for (before, after) in by_index(&sent).iter().zip(by_index(&read)) {
        assert_eq!(
            (
                &before.input,
                &before.email,
                &before.user_id,
                &before.invitation_id
            ),
            (&after.input, &after.email, &after.user_id, &after.invitation_id),
            "recipient {}",
            before.index
        );
    }
    let grace = read.results.iter().find(|r| r.index == 1).expect("grace");
    assert_eq!(grace.reason, "the invitation was revoked");
    let c = &read.completion;
    assert_eq!((c.sent, c.failed, c.invalid), (1, 1, 1));
}
