//! API keys: missing, wrong, revoked, out of scope, or of another
//! organisation.

use tonic::Code;

use crate::harness::{PLATFORM_KEY, TestServer, authed};
use onramp::pb;

fn list_users(organization_id: &str) -> pb::ListUsersRequest {
    pb::ListUsersRequest {
        organization_id: organization_id.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_malformed_or_unknown_key_is_unauthenticated() {
    let server = TestServer::start().await;
    let mut admin = server.admin();
    let status = admin.list_users(list_users("")).await.expect_err("no key");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("authorization: Bearer"),
        "{}",
        status.message()
    );

    let mut request = tonic::Request::new(list_users(""));
    request
        .metadata_mut()
        .insert("authorization", "Basic abc".parse().unwrap());
    let status = admin.list_users(request).await.expect_err("wrong scheme");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("Bearer"), "{}", status.message());

    let status = admin
        .list_users(authed(list_users(""), "onr_not-a-real-key"))
        .await
        .expect_err("unknown key");
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_stops_working_at_once() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let mut admin = server.admin();
    let created = admin
        .create_api_key(authed(
            pb::CreateApiKeyRequest {
                name: "payroll sync".into(),
                scopes: vec![pb::ApiKeyScope::Read as i32],
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("create key")
        .into_inner();
    let key = created.api_key.expect("key");
    assert!(
        created.secret.starts_with(&key.prefix),
        "the prefix tells keys apart"
    );
    admin
        .list_users(authed(list_users(""), &created.secret))
        .await
        .expect("works before revoking");

    let revoked = admin
        .revoke_api_key(authed(
            pb::RevokeApiKeyRequest {
                organization_id: String::new(),
                api_key_id: key.id.clone(),
            },
            &org.key,
        ))
        .await
        .expect("revoke")
        .into_inner();
    assert!(revoked.revoke_time.is_some());
    let status = admin
        .list_users(authed(list_users(""), &created.secret))
        .await
        .expect_err("revoked");
    assert_eq!(status.code(), Code::Unauthenticated);

    let listed = admin
        .list_api_keys(authed(pb::ListApiKeysRequest::default(), &org.key))
        .await
        .expect("list keys")
        .into_inner();
    assert_eq!(listed.api_keys.len(), 2);
    assert!(listed.api_keys.iter().all(|k| !k.prefix.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_keeps_only_a_hash_of_each_key() {
    use diesel::{QueryableByName, sql_types::Bytea};
    use diesel_async::RunQueryDsl;
    #[derive(QueryableByName)]
    struct Hash {
        #[diesel(sql_type = Bytea)]
        secret_hash: Vec<u8>,
    }
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let mut db = server.db().await;
    let hashes: Vec<Hash> = diesel::sql_query("SELECT secret_hash FROM api_keys")
        .load(&mut db)
        .await
        .unwrap();
    assert_eq!(hashes.len(), 1);
    use sha2::Digest;
    assert_eq!(
        hashes[0].secret_hash,
        sha2::Sha256::digest(org.key.as_bytes()).to_vec()
    );
    let dump: Vec<Hash> = diesel::sql_query(
        "SELECT convert_to(string_agg(t::text, ''), 'UTF8') AS secret_hash FROM api_keys t",
    )
    .load(&mut db)
    .await
    .unwrap();
    assert!(!String::from_utf8_lossy(&dump[0].secret_hash).contains(&org.key));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_cannot_reach_another_organisation() {
    let server = TestServer::start().await;
    let acme = server.org("Acme").await;
    let globex = server.org("Globex").await;
    let mut admin = server.admin();

    let status = admin
        .list_users(authed(list_users(&globex.id), &acme.key))
        .await
        .expect_err("another organisation");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("another organisation"),
        "{}",
        status.message()
    );

    let globex_user = admin
        .create_user(authed(
            pb::CreateUserRequest {
                email: "ada@globex.example".into(),
                ..Default::default()
            },
            &globex.key,
        ))
        .await
        .expect("create user")
        .into_inner();
    let status = admin
        .get_user(authed(
            pb::GetUserRequest {
                organization_id: String::new(),
                user_id: globex_user.id.clone(),
            },
            &acme.key,
        ))
        .await
        .expect_err("a user of another organisation");
    assert_eq!(status.code(), Code::NotFound);

    let status = admin
        .create_user(authed(
            pb::CreateUserRequest {
                email: "bob@acme.example".into(),
                service_area_id: globex.service_area_id.clone(),
                role_id: globex.role_id.clone(),
                ..Default::default()
            },
            &acme.key,
        ))
        .await
        .expect_err("a service area of another organisation");
    assert_eq!(status.code(), Code::InvalidArgument);

    let listed = admin
        .list_users(authed(list_users(""), &acme.key))
        .await
        .expect("list")
        .into_inner();
    assert!(
        listed.users.is_empty(),
        "Acme sees Globex's users: {:?}",
        listed.users
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_limit_what_a_key_may_do() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let mut admin = server.admin();
    let reader = admin
        .create_api_key(authed(
            pb::CreateApiKeyRequest {
                name: "dashboard".into(),
                scopes: vec![pb::ApiKeyScope::Read as i32],
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("create key")
        .into_inner()
        .secret;
    let status = admin
        .create_user(authed(
            pb::CreateUserRequest {
                email: "ada@acme.example".into(),
                ..Default::default()
            },
            &reader,
        ))
        .await
        .expect_err("read-only");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("users.write"), "{}", status.message());

    let status = admin
        .create_organization(authed(
            pb::CreateOrganizationRequest {
                name: "Rogue".into(),
                policy: None,
            },
            &org.key,
        ))
        .await
        .expect_err("only platform keys create organisations");
    assert_eq!(status.code(), Code::PermissionDenied);

    let status = admin
        .create_api_key(authed(
            pb::CreateApiKeyRequest {
                name: "escalate".into(),
                scopes: vec![pb::ApiKeyScope::Platform as i32],
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect_err("an admin cannot mint a platform key");
    assert_eq!(status.code(), Code::InvalidArgument);

    let status = admin
        .list_users(authed(list_users(""), PLATFORM_KEY))
        .await
        .expect_err("a platform key must name the organisation");
    assert_eq!(status.code(), Code::InvalidArgument);
    admin
        .list_users(authed(list_users(&org.id), PLATFORM_KEY))
        .await
        .expect("a platform key may act on any organisation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_rpcs_need_no_key() {
    let server = TestServer::start().await;
    let status = server
        .credentials()
        .authenticate(pb::AuthenticateRequest::default())
        .await
        .expect_err("not built yet");
    assert_ne!(status.code(), Code::Unauthenticated, "{status:?}");
}
