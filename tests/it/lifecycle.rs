//! UpdateUser, DeactivateUser, ReactivateUser, DeleteUser, and the audit
//! trail they leave.

use prost_types::FieldMask;
use tonic::Code;

use crate::harness::{Org, TestServer, authed, violations};
use onramp::pb;

async fn staged_user(server: &TestServer, org: &Org, email: &str) -> pb::User {
    server
        .admin()
        .create_user(authed(
            pb::CreateUserRequest {
                email: email.into(),
                first_name: "Ada".into(),
                service_area_id: org.service_area_id.clone(),
                role_id: org.role_id.clone(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("create user")
        .into_inner()
}

async fn role(server: &TestServer, org: &Org, name: &str) -> pb::Role {
    server
        .admin()
        .create_role(authed(
            pb::CreateRoleRequest {
                name: name.into(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("create role")
        .into_inner()
}

fn update(user_id: &str, user: pb::User, paths: &[&str]) -> pb::UpdateUserRequest {
    pb::UpdateUserRequest {
        organization_id: String::new(),
        user_id: user_id.into(),
        user: Some(user),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_changes_only_the_masked_fields_and_is_audited() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let mut admin = server.admin();
    let user = staged_user(&server, &org, "ada@acme.example").await;
    let porter = role(&server, &org, "Porter").await;
    let changed = admin
        .update_user(authed(
            update(
                &user.id,
                pb::User {
                    first_name: "Augusta".into(),
                    last_name: "King".into(),
                    mobile: "+447700900123".into(),
                    access_grants: vec![pb::AccessGrant {
                        service_area_id: org.service_area_id.clone(),
                        role_id: porter.id.clone(),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                &["first_name", "mobile", "access_grants"],
            ),
            &org.key,
        ))
        .await
        .expect("update")
        .into_inner();
    assert_eq!(changed.first_name, "Augusta");
    assert_eq!(changed.last_name, "", "last_name was not in the mask");
    assert_eq!(changed.mobile, "+447700900123");
    assert_eq!(changed.access_grants.len(), 1);
    assert_eq!(changed.access_grants[0].role_name, "Porter");

    let events = server
        .audit_events(
            &org.key,
            pb::ListAuditEventsRequest {
                target_id: user.id.clone(),
                action: "user.update".into(),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].details.get("first_name").map(String::as_str),
        Some("Augusta")
    );
    assert!(!events[0].details.contains_key("last_name"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_refuses_bad_fields_taken_addresses_and_unknown_users() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let mut admin = server.admin();
    let ada = staged_user(&server, &org, "ada@acme.example").await;
    staged_user(&server, &org, "grace@acme.example").await;

    let taken = admin
        .update_user(authed(
            update(
                &ada.id,
                pb::User {
                    email: "GRACE@acme.example".into(),
                    ..Default::default()
                },
                &["email"],
            ),
            &org.key,
        ))
        .await
        .expect_err("taken");
    assert_eq!(taken.code(), Code::AlreadyExists);

    let bad = admin
        .update_user(authed(
            update(
                &ada.id,
                pb::User {
                    mobile: "12".into(),
                    ..Default::default()
                },
                &["mobile", "status"],
            ),
            &org.key,
        ))
        .await
        .expect_err("bad");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<String> = violations(&bad).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["user.mobile", "update_mask"]);

    let missing = admin
        .update_user(authed(
            update(
                &uuid::Uuid::now_v7().to_string(),
                pb::User::default(),
                &["first_name"],
            ),
            &org.key,
        ))
        .await
        .expect_err("missing");
    assert_eq!(missing.code(), Code::NotFound);

    let no_password = admin
        .update_user(authed(
            update(
                &ada.id,
                pb::User {
                    must_change_password: true,
                    ..Default::default()
                },
                &["must_change_password"],
            ),
            &org.key,
        ))
        .await
        .expect_err("no password to change");
    assert_eq!(no_password.code(), Code::FailedPrecondition);

    let unchanged = admin
        .get_user(authed(
            pb::GetUserRequest {
                organization_id: String::new(),
                user_id: ada.id.clone(),
            },
            &org.key,
        ))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(unchanged, ada, "a refused update changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivate_pauses_and_reactivate_returns_the_earlier_status() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let mut admin = server.admin();
    let user = staged_user(&server, &org, "ada@acme.example").await;
    let paused = admin
        .deactivate_user(authed(
            pb::DeactivateUserRequest {
                organization_id: String::new(),
                user_id: user.id.clone(),
                reason: "left the company".into(),
            },
            &org.key,
        ))
        .await
        .expect("deactivate")
        .into_inner();
    assert_eq!(paused.status(), pb::UserStatus::Inactive);
    assert!(paused.deactivate_time.is_some());
    let inactive = admin
        .list_users(authed(
            pb::ListUsersRequest {
                status: pb::UserStatus::Inactive as i32,
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(inactive.total_size, 1);

    let again = admin
        .deactivate_user(authed(
            pb::DeactivateUserRequest {
                organization_id: String::new(),
                user_id: user.id.clone(),
                reason: String::new(),
            },
            &org.key,
        ))
        .await
        .expect("deactivating twice is harmless")
        .into_inner();
    assert_eq!(again.deactivate_time, paused.deactivate_time);

    let back = admin
        .reactivate_user(authed(
            pb::ReactivateUserRequest {
                organization_id: String::new(),
                user_id: user.id.clone(),
            },
            &org.key,
        ))
        .await
        .expect("reactivate")
        .into_inner();
    assert_eq!(back.status(), pb::UserStatus::Staged);
    assert!(back.deactivate_time.is_none());

    let actions: Vec<String> = server
        .audit_events(
            &org.key,
            pb::ListAuditEventsRequest {
                target_id: user.id.clone(),
                ..Default::default()
            },
        )
        .await
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["user.reactivate", "user.deactivate", "user.create"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_the_user_but_the_audit_log_remembers() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let other = server.org("Globex").await;
    let mut admin = server.admin();
    let user = staged_user(&server, &org, "ada@acme.example").await;
    let delete = |key: &str| {
        authed(
            pb::DeleteUserRequest {
                organization_id: String::new(),
                user_id: user.id.clone(),
            },
            key,
        )
    };
    let status = admin
        .delete_user(delete(&other.key))
        .await
        .expect_err("another organisation's user");
    assert_eq!(status.code(), Code::NotFound);
    admin.delete_user(delete(&org.key)).await.expect("delete");
    let status = admin
        .delete_user(delete(&org.key))
        .await
        .expect_err("already gone");
    assert_eq!(status.code(), Code::NotFound);
    let status = admin
        .get_user(authed(
            pb::GetUserRequest {
                organization_id: String::new(),
                user_id: user.id.clone(),
            },
            &org.key,
        ))
        .await
        .expect_err("gone");
    assert_eq!(status.code(), Code::NotFound);
    let events = server.audited(&org.key, "user.delete").await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].details.get("email").map(String::as_str),
        Some("ada@acme.example")
    );
    // The same address can be created again.
    staged_user(&server, &org, "ada@acme.example").await;
}

/// Deleting a person takes their invitation (and with it its link) and its
/// emails with them: the outbox and the invitations reach the user through
/// one key each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_invited_user_removes_the_invitation_and_its_emails() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let finished = crate::harness::send(&server, &org, crate::harness::invite(&org, "ada@acme.example"))
        .await
        .expect("invite");
    assert_eq!(finished.completion.sent, 1);
    let users = crate::harness::users(&server, &org).await;
    let user = users
        .iter()
        .find(|u| u.email == "ada@acme.example")
        .expect("invited user");
    let user_id = uuid::Uuid::parse_str(&user.id).expect("user id");

    #[derive(diesel::QueryableByName)]
    struct Rows {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        invitations: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        emails: i64,
    }
    let mut db = server.db().await;
    let count = async |db: &mut diesel_async::AsyncPgConnection| -> Rows {
        diesel_async::RunQueryDsl::get_result(
            diesel::sql_query(
                "SELECT (SELECT count(*) FROM invitations WHERE user_id = $1) AS invitations, \
                   (SELECT count(*) FROM outbox WHERE user_id = $1) AS emails",
            )
            .bind::<diesel::sql_types::Uuid, _>(user_id),
            db,
        )
        .await
        .expect("count")
    };
    let before = count(&mut db).await;
    assert_eq!(
        (before.invitations, before.emails),
        (1, 1),
        "the invitation and its email"
    );

    server
        .admin()
        .delete_user(authed(
            pb::DeleteUserRequest {
                organization_id: String::new(),
                user_id: user.id.clone(),
            },
            &org.key,
        ))
        .await
        .expect("delete");
    let after = count(&mut db).await;
    assert_eq!(
        (after.invitations, after.emails),
        (0, 0),
        "nothing of the user is left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_events_filter_by_actor_action_and_time() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let mut admin = server.admin();
    let before = prost_types::Timestamp::from(std::time::SystemTime::now());
    staged_user(&server, &org, "ada@acme.example").await;
    let all = server
        .audit_events(&org.key, pb::ListAuditEventsRequest::default())
        .await;
    let creator = all[0].actor.clone();
    let by_actor = server
        .audit_events(
            &org.key,
            pb::ListAuditEventsRequest {
                actor: creator.clone(),
                ..Default::default()
            },
        )
        .await;
    assert!(by_actor.iter().all(|e| e.actor == creator));
    assert!(by_actor.iter().any(|e| e.action == "user.create"));
    let since = server
        .audit_events(
            &org.key,
            pb::ListAuditEventsRequest {
                start_time: Some(before),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(
        since.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["user.create"]
    );

    let reader = admin
        .create_api_key(authed(
            pb::CreateApiKeyRequest {
                name: "reader".into(),
                scopes: vec![pb::ApiKeyScope::Read as i32],
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("key")
        .into_inner()
        .secret;
    let status = admin
        .list_audit_events(authed(pb::ListAuditEventsRequest::default(), &reader))
        .await
        .expect_err("the audit log needs its own scope");
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_user_reads_every_grant_in_order_and_none_for_a_user_without() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let mut admin = server.admin();
    let user = staged_user(&server, &org, "ada@acme.example").await;
    let mut grants = vec![pb::AccessGrant {
        service_area_id: org.service_area_id.clone(),
        role_id: org.role_id.clone(),
        ..Default::default()
    }];
    for name in ["Porter", "Almoner"] {
        grants.push(pb::AccessGrant {
            service_area_id: org.service_area_id.clone(),
            role_id: role(&server, &org, name).await.id,
            ..Default::default()
        });
    }
    admin
        .update_user(authed(
            update(
                &user.id,
                pb::User {
                    access_grants: grants,
                    ..Default::default()
                },
                &["access_grants"],
            ),
            &org.key,
        ))
        .await
        .expect("update");
    let get = |user_id: String| {
        let mut admin = server.admin();
        let request = authed(
            pb::GetUserRequest {
                organization_id: org.id.clone(),
                user_id,
            },
            &org.key,
        );
        async move { admin.get_user(request).await.expect("get").into_inner() }
    };
    let got = get(user.id.clone()).await;
    assert_eq!(got.email, "ada@acme.example");
    assert_eq!(got.first_name, "Ada");
    let read: Vec<(&str, &str)> = got
        .access_grants
        .iter()
        .map(|g| (g.service_area_name.as_str(), g.role_name.as_str()))
        .collect();
    assert_eq!(
        read,
        [
            ("North ward", "Almoner"),
            ("North ward", "Nurse"),
            ("North ward", "Porter")
        ]
    );

    let bare = admin
        .create_user(authed(
            pb::CreateUserRequest {
                email: "grace@acme.example".into(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("create")
        .into_inner();
    let got = get(bare.id).await;
    assert_eq!(got.email, "grace@acme.example");
    assert!(got.access_grants.is_empty());
}

/// An audit event is keyed by its organisation and id, the index its
/// listing reads, and by nothing else of its own: each event of an
/// organisation enters that index and the target's, not a third for its id
/// alone. An id stays unique within its organisation, and among the events
/// of none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_event_is_keyed_by_its_organisation_and_id_in_one_index() {
    use diesel_async::RunQueryDsl;
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    staged_user(&server, &org, "ada@acme.example").await;
    let mut db = server.db().await;
    let entered = crate::harness::constraints::count(
        &mut db,
        "SELECT count(*) AS n FROM pg_index WHERE indrelid = $1::regclass AND indpred IS NULL",
        "audit_events",
    )
    .await;
    assert_eq!(entered, 2, "the indexes every event of an organisation enters");
    let copy = |organization: &str| {
        format!(
            "INSERT INTO audit_events (id, organization_id, actor, action, target_type, target_id, created_at) \
             SELECT id, {organization}, actor, action, target_type, target_id, created_at \
             FROM audit_events WHERE action = 'user.create'"
        )
    };
    let refused = |result: Result<usize, diesel::result::Error>| match result {
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            info,
        )) => info.constraint_name().map(str::to_owned),
        other => panic!("not refused as a repeated key: {other:?}"),
    };
    let again = diesel::sql_query(copy("organization_id")).execute(&mut db).await;
    assert_eq!(refused(again).as_deref(), Some("audit_events_key"));
    assert_eq!(
        diesel::sql_query(copy("NULL"))
            .execute(&mut db)
            .await
            .expect("the same id in no organisation"),
        1
    );
    let again = diesel::sql_query(copy("NULL")).execute(&mut db).await;
    assert_eq!(refused(again).as_deref(), Some("audit_events_key_of_none"));
}
