//! Postgres restarted while a bulk send is under way, on a server of the
//! test's own.

use std::time::Duration;

use onramp::pb;

use crate::{
    harness::{DEADLINE, finish, invite},
    harness::{TestServer, authed},
    private_pg::PrivateCluster,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_batch_the_service_recovers_and_the_batch_completes() {
    let cluster = PrivateCluster::start();
    let server = TestServer::start_on(cluster.url("onramp"), |c| {
        c.outbox.workers = 2;
        c.outbox.claim_size = 4;
        // A claim whose answer is lost in the restart is retried after this.
        c.outbox.lease = Duration::from_secs(10);
    })
    .await;
    let org = server.org("Acme").await;
    // Slow enough that the restart lands in the middle of the batch.
    server.smtp.set(|b| b.delay = Duration::from_millis(100));

    let text: Vec<String> = (0..80).map(|i| format!("p{i}@acme.example")).collect();
    let stream = server
        .invitations()
        .send_invitations(authed(invite(&org, &text.join("\n")), &org.key))
        .await
        .expect("send")
        .into_inner();
    let reading = tokio::spawn(finish(stream));
    server.smtp.wait_for(10, DEADLINE).await;

    let restart = tokio::task::spawn_blocking(move || {
        cluster.down();
        // Down long enough for every pooled connection and the listener to
        // notice, and for workers to fail claims.
        std::thread::sleep(Duration::from_secs(4));
        cluster.up();
        cluster
    });
    let cluster = restart.await.expect("restart Postgres");

    let finished = reading
        .await
        .expect("the reader")
        .expect("the stream rides out the restart");
    assert_eq!(finished.completion.sent, 80, "{:?}", finished.completion);
    assert_eq!(finished.results.len(), 80);
    let mut indexes: Vec<i32> = finished.results.iter().map(|r| r.index).collect();
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(indexes.len(), 80, "one result per recipient");

    let mail = server.smtp.wait_for(80, DEADLINE).await;
    let mut recipients: Vec<String> = mail.iter().flat_map(|m| m.to.clone()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 80, "every invitation was delivered");
    // Outcomes of sends that finished while the database was down are
    // recorded once it is back, not sent again.
    assert_eq!(mail.len(), 80, "no invitation went twice");

    // The same process answers after the restart: no restart of its own.
    let users = server
        .admin()
        .list_users(authed(pb::ListUsersRequest::default(), &org.key))
        .await
        .expect("list users after the restart")
        .into_inner();
    assert_eq!(users.total_size, 80);
    drop(server);
    drop(cluster);
}
