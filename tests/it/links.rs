//! An invitation link's token names its invitation: the link is found by the
//! invitation's id and checked against the hash the invitation holds, so no
//! index holds the hash and minting a link rewrites no index. Links sent
//! before this keep working until they are replaced.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use diesel::QueryableByName;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use rand::RngCore;
use tonic::Code;

use crate::{
    harness::{DEADLINE, TestServer, authed, claimed_in_a_transaction, migrations},
    invitations::sha256,
    registration::invited_token,
};
use onramp::pb;

async fn registration_of(server: &TestServer, token: &str) -> Result<pb::RegistrationInfo, tonic::Status> {
    server
        .registration()
        .get_registration(pb::GetRegistrationRequest { token: token.into() })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_naming_its_invitation_opens_it_only_with_its_own_secret() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let token = invited_token(&server, &org, "ada@acme.example").await;
    let shown = registration_of(&server, &token)
        .await
        .expect("the emailed link opens");
    assert_eq!(shown.email, "ada@acme.example");

    let bytes = URL_SAFE_NO_PAD.decode(&token).expect("a link token is base64url");
    assert_eq!(bytes.len(), 48, "the invitation's id, then 32 random bytes");
    let mut flipped = bytes.clone();
    flipped[47] ^= 1;
    let mut guessed = bytes[..16].to_vec();
    guessed.resize(48, 0);
    rand::rng().fill_bytes(&mut guessed[16..]);
    for forged in [flipped, guessed, bytes[..16].to_vec()] {
        let refused = registration_of(&server, &URL_SAFE_NO_PAD.encode(&forged))
            .await
            .expect_err("the invitation's id without its secret opens nothing");
        assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    }
    registration_of(&server, &token)
        .await
        .expect("refused guesses do not spend the link");
}

/// The migration that made links name their invitation.
const NAMING: &str = "20261204000002";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_sent_before_links_named_their_invitation_opens_until_it_is_replaced() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let current = invited_token(&server, &org, "ada@acme.example").await;
    let named = URL_SAFE_NO_PAD
        .decode(&current)
        .expect("a link token is base64url");
    let invitation_id = uuid::Uuid::from_slice(&named[..16]).expect("the invitation's id");
    // A token as the build before minted them: 32 random bytes, naming nothing.
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let before = URL_SAFE_NO_PAD.encode(secret);
    migrations::across(&server, NAMING, async |db| {
        let changed = diesel::sql_query("UPDATE invitations SET token_hash = $1 WHERE token_hash = $2")
            .bind::<diesel::sql_types::Bytea, _>(sha256(&before))
            .bind::<diesel::sql_types::Bytea, _>(sha256(&current))
            .execute(db)
            .await
            .expect("the link of the build before");
        assert_eq!(changed, 1);
    })
    .await;

    let shown = registration_of(&server, &before)
        .await
        .expect("a link sent before the upgrade opens after it");
    assert_eq!(shown.email, "ada@acme.example");

    let sent = server.smtp.received().len();
    server
        .invitations()
        .resend_invitation(authed(
            pb::ResendInvitationRequest {
                organization_id: String::new(),
                invitation_id: invitation_id.to_string(),
            },
            &org.key,
        ))
        .await
        .expect("resend");
    let replaced = registration_of(&server, &before)
        .await
        .expect_err("a resend replaces the old link");
    assert_eq!(replaced.code(), Code::NotFound);
    let renewed = server.smtp.wait_for(sent + 1, DEADLINE).await[sent]
        .link_param("token")
        .expect("token");
    registration_of(&server, &renewed)
        .await
        .expect("the new link opens");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minting_links_rewrites_no_index_of_the_invitations_or_their_people() {
    #[derive(QueryableByName)]
    struct Updates {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        invitations: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        invitations_heap_only: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        users: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        users_heap_only: i64,
    }
    let (_server, mut db, claimed) = claimed_in_a_transaction(100).await;
    let now = chrono::Utc::now();
    let (invitations, outbox): (Vec<uuid::Uuid>, Vec<uuid::Uuid>) = claimed
        .iter()
        .filter_map(|c| Some((c.invitation_id?, c.id)))
        .unzip();
    let hashes: Vec<Vec<u8>> = invitations
        .iter()
        .map(|id| onramp::tokens::PlainToken::naming(*id).hash().0)
        .collect();
    let minted = onramp::outbox::compose::invitation::mint(&mut db, &invitations, &hashes, &outbox, now)
        .await
        .expect("mint");
    assert_eq!(minted.len(), 100, "every invitation stands");
    // This transaction's own counts, before they are reported anywhere.
    let counts: Updates = diesel::sql_query(
        "SELECT pg_stat_get_xact_tuples_updated('invitations'::regclass) AS invitations, \
           pg_stat_get_xact_tuples_hot_updated('invitations'::regclass) AS invitations_heap_only, \
           pg_stat_get_xact_tuples_updated('users'::regclass) AS users, \
           pg_stat_get_xact_tuples_hot_updated('users'::regclass) AS users_heap_only",
    )
    .get_result(&mut db)
    .await
    .expect("counts");
    assert_eq!((counts.invitations, counts.users), (100, 100));
    assert_eq!(
        counts.invitations_heap_only, 100,
        "a minted link's invitation was written to an index"
    );
    assert_eq!(
        counts.users_heap_only, 100,
        "a minted link's person was written to an index"
    );
    db.batch_execute("ROLLBACK").await.expect("rollback");
}
