//! StreamInvitations: one batch from recipients streamed in parts, through
//! the real SMTP receiver; a refused part, or a client gone before its last
//! part, stores nothing.

use diesel::{QueryableByName, sql_types::BigInt};
use diesel_async::RunQueryDsl;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::harness::{DEADLINE, Org, TestServer, authed, finish, invite, violations};
use onramp::pb::{self, stream_invitations_request::Item};

fn part(text: &str, emails: &[&str]) -> pb::StreamInvitationsRequest {
    pb::StreamInvitationsRequest {
        item: Some(Item::Recipients(pb::InvitationRecipients {
            recipients_text: text.into(),
            emails: emails.iter().map(|e| (*e).into()).collect(),
            user_ids: Vec::new(),
        })),
    }
}

fn first(send: pb::SendInvitationsRequest) -> pb::StreamInvitationsRequest {
    pb::StreamInvitationsRequest {
        item: Some(Item::Send(send)),
    }
}

async fn stream(
    server: &TestServer,
    org: &Org,
    messages: Vec<pb::StreamInvitationsRequest>,
) -> Result<crate::harness::Finished, tonic::Status> {
    let events = server
        .invitations()
        .stream_invitations(authed(tokio_stream::iter(messages), &org.key))
        .await?
        .into_inner();
    finish(events).await
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(server: &TestServer, sql: &str) -> i64 {
    let rows: Vec<Count> = diesel::sql_query(sql)
        .load(&mut server.db().await)
        .await
        .expect(sql);
    rows[0].n
}

async fn nothing_stored(server: &TestServer) {
    for table in ["users", "batches", "invitations", "outbox"] {
        let n = count(server, &format!("SELECT count(*) AS n FROM {table}")).await;
        assert_eq!(n, 0, "{table} holds {n} rows");
    }
    assert!(server.smtp.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_make_one_batch_in_order_with_repeats_across_parts_found() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let finished = stream(
        &server,
        &org,
        vec![
            first(invite(&org, "Ada Lovelace <ada@acme.example>")),
            part("grace@acme.example, ADA@acme.example", &["linus@acme.example"]),
            part("not-an-address", &[]),
        ],
    )
    .await
    .expect("streamed send");
    assert_eq!(finished.summary.total, 5);
    assert_eq!((finished.summary.invalid, finished.summary.duplicates), (1, 1));
    use pb::RecipientOutcome as O;
    assert_eq!(
        finished.outcomes(),
        [
            (0, O::Sent),
            (1, O::Sent),
            (2, O::DuplicateInRequest),
            (3, O::Sent),
            (4, O::InvalidAddress)
        ]
    );
    server.smtp.wait_for(3, DEADLINE).await;
    let mut to: Vec<String> = server.smtp.received().iter().map(|m| m.to.join(",")).collect();
    to.sort();
    assert_eq!(
        to,
        ["ada@acme.example", "grace@acme.example", "linus@acme.example"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_dry_run_decides_every_part_and_writes_nothing() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let finished = stream(
        &server,
        &org,
        vec![
            first(pb::SendInvitationsRequest {
                dry_run: true,
                ..invite(&org, "")
            }),
            part("Ada Lovelace <ada@acme.example>", &[]),
            part("ada@acme.example, nope", &[]),
        ],
    )
    .await
    .expect("dry run");
    assert!(finished.summary.dry_run);
    assert_eq!(
        finished.order,
        ["summary", "preview", "result", "result", "result", "completion"]
    );
    assert_eq!(finished.preview.as_ref().expect("preview").to, "ada@acme.example");
    use pb::RecipientOutcome as O;
    assert_eq!(
        finished.outcomes(),
        [
            (0, O::WouldSend),
            (1, O::DuplicateInRequest),
            (2, O::InvalidAddress)
        ]
    );
    nothing_stored(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_part_refuses_the_whole_send_and_stores_nothing() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let refused = |messages: Vec<pb::StreamInvitationsRequest>| {
        let (server, org) = (&server, &org);
        async move { stream(server, org, messages).await.expect_err("refused") }
    };
    let status = refused(vec![part("ada@acme.example", &[])]).await;
    assert_eq!(
        (status.code(), violations(&status)[0].0.as_str()),
        (Code::InvalidArgument, "send")
    );

    let status = refused(vec![
        first(invite(&org, "ada@acme.example")),
        part("grace@acme.example", &[]),
        first(invite(&org, "linus@acme.example")),
    ])
    .await;
    assert_eq!(
        (status.code(), violations(&status)[0].0.as_str()),
        (Code::InvalidArgument, "send")
    );

    // Addresses after a first part that gave no access for new people.
    let status = refused(vec![
        first(pb::SendInvitationsRequest::default()),
        part("ada@acme.example", &[]),
    ])
    .await;
    assert_eq!(violations(&status)[0].0, "send.service_area_id");

    let status = refused(vec![first(invite(&org, "")), part("", &[])]).await;
    assert_eq!(violations(&status)[0].0, "recipients");

    // Over the limit only in all: no part alone is too long.
    let half: String = (0..50_001).map(|i| format!("p{i}@acme.example\n")).collect();
    let other: String = (50_001..100_002)
        .map(|i| format!("p{i}@acme.example\n"))
        .collect();
    let status = refused(vec![
        first(invite(&org, "ada@acme.example")),
        part(&half, &[]),
        part(&other, &[]),
    ])
    .await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("at most 100000"),
        "{}",
        status.message()
    );
    nothing_stored(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_before_its_last_part_stores_nothing() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let (tx, rx) = mpsc::channel(4);
    tx.send(first(invite(&org, "ada@acme.example"))).await.unwrap();
    tx.send(part("grace@acme.example", &[])).await.unwrap();
    let mut client = server.invitations();
    let request = authed(ReceiverStream::new(rx), &org.key);
    let call = tokio::spawn(async move { client.stream_invitations(request).await.map(|_| ()) });
    // The server has read both parts once its transaction holds the users
    // it created for them.
    let in_transaction = "SELECT count(*) AS n FROM pg_stat_activity \
                          WHERE datname = current_database() AND state = 'idle in transaction'";
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while count(&server, in_transaction).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server never opened its transaction"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The client goes away without closing its stream (which dropping
    // `tx` would do: it is kept to the end).
    call.abort();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while count(&server, in_transaction).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the abandoned transaction stayed open"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    nothing_stored(&server).await;
    drop(tx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stalls_between_parts_is_cut_off_at_the_request_timeout() {
    let server = TestServer::start_with(|c| c.request_timeout = std::time::Duration::from_millis(500)).await;
    let org = server.org("Acme").await;
    let (tx, rx) = mpsc::channel(4);
    tx.send(first(invite(&org, "ada@acme.example"))).await.unwrap();
    let mut client = server.invitations();
    let call = client.stream_invitations(authed(ReceiverStream::new(rx), &org.key));
    let status = tokio::time::timeout(DEADLINE, call)
        .await
        .expect("an answer within the deadline")
        .expect_err("cut off");
    assert_eq!(status.code(), Code::Cancelled, "{status:?}");
    nothing_stored(&server).await;
    drop(tx);
}
