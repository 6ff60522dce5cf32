//! CreateUser, GetUser and ListUsers, and the refusals of bad input.

use tonic::Code;

use crate::harness::{Org, TestServer, authed, violations};
use onramp::pb;

fn user(email: &str) -> pb::CreateUserRequest {
    pb::CreateUserRequest {
        email: email.into(),
        ..Default::default()
    }
}

async fn create(
    server: &TestServer,
    org: &Org,
    request: pb::CreateUserRequest,
) -> Result<pb::User, tonic::Status> {
    server
        .admin()
        .create_user(authed(request, &org.key))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_user_is_staged_with_its_grant_and_can_be_read_back() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let created = create(
        &server,
        &org,
        pb::CreateUserRequest {
            email: "Ada.Lovelace@ACME.example".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            mobile: "+44 7700 900123".into(),
            service_area_id: org.service_area_id.clone(),
            role_id: org.role_id.clone(),
            ..Default::default()
        },
    )
    .await
    .expect("create");
    assert_eq!(created.email, "Ada.Lovelace@acme.example");
    assert_eq!(
        created.username, created.email,
        "the username defaults to the email"
    );
    assert_eq!(created.mobile, "+447700900123");
    assert_eq!(created.status(), pb::UserStatus::Staged);
    assert!(!created.has_password);
    let grant = &created.access_grants[0];
    assert_eq!(
        (grant.service_area_name.as_str(), grant.role_name.as_str()),
        ("North ward", "Nurse")
    );

    let got = server
        .admin()
        .get_user(authed(
            pb::GetUserRequest {
                organization_id: org.id.clone(),
                user_id: created.id.clone(),
            },
            &org.key,
        ))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got, created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_initial_password_is_stored_only_as_an_argon2id_hash() {
    use diesel::{QueryableByName, sql_types::Text};
    use diesel_async::RunQueryDsl;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        password_hash: String,
    }
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let created = create(
        &server,
        &org,
        pb::CreateUserRequest {
            email: "ada@acme.example".into(),
            password: "plum tractor velvet".into(),
            must_change_password: true,
            ..Default::default()
        },
    )
    .await
    .expect("create");
    assert!(created.has_password && created.must_change_password);
    let rows: Vec<Row> = diesel::sql_query("SELECT password_hash FROM users")
        .load(&mut server.db().await)
        .await
        .unwrap();
    assert!(
        rows[0]
            .password_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        rows[0].password_hash
    );
    assert!(!rows[0].password_hash.contains("plum"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_the_field_and_a_reason() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let cases: Vec<(pb::CreateUserRequest, &str, &str)> = vec![
        (user(""), "email", "is required"),
        (user("ada.example.com"), "email", "has no @"),
        (user("ada@example"), "email", "not a valid domain"),
        (
            pb::CreateUserRequest {
                mobile: "07700 900123".into(),
                ..user("ada@acme.example")
            },
            "mobile",
            "international form",
        ),
        (
            pb::CreateUserRequest {
                username: "ada lovelace".into(),
                ..user("ada@acme.example")
            },
            "username",
            "spaces",
        ),
        (
            pb::CreateUserRequest {
                service_area_id: org.service_area_id.clone(),
                role_id: uuid::Uuid::now_v7().to_string(),
                ..user("ada@acme.example")
            },
            "role_id",
            "role",
        ),
        (
            pb::CreateUserRequest {
                service_area_id: org.service_area_id.clone(),
                ..user("ada@acme.example")
            },
            "role_id",
            "is required with service_area_id",
        ),
        (
            pb::CreateUserRequest {
                password: "short".into(),
                ..user("ada@acme.example")
            },
            "password",
            "at least 12 characters",
        ),
        (
            pb::CreateUserRequest {
                password: "password1234".into(),
                ..user("ada@acme.example")
            },
            "password",
            "commonly used",
        ),
    ];
    for (request, field, reason) in cases {
        let status = create(&server, &org, request.clone()).await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{request:?}");
        let found = violations(&status);
        assert!(
            found.iter().any(|(f, d)| f == field && d.contains(reason)),
            "expected {field}: …{reason}… in {found:?}"
        );
        assert!(status.message().contains(field), "{}", status.message());
    }
    let listed = server
        .admin()
        .list_users(authed(pb::ListUsersRequest::default(), &org.key))
        .await
        .expect("list")
        .into_inner();
    assert!(listed.users.is_empty(), "a refused request wrote something");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_that_differs_only_in_case_already_exists() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    create(&server, &org, user("ada@acme.example"))
        .await
        .expect("first");
    let status = create(
        &server,
        &org,
        pb::CreateUserRequest {
            username: "ada2".into(),
            ..user("ADA@Acme.Example")
        },
    )
    .await
    .expect_err("same address");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(violations(&status)[0].0, "email");
    assert!(
        status.message().contains("already exists"),
        "{}",
        status.message()
    );

    let status = create(
        &server,
        &org,
        pb::CreateUserRequest {
            username: "ADA@acme.example".into(),
            ..user("other@acme.example")
        },
    )
    .await
    .expect_err("same username");
    assert_eq!(violations(&status)[0].0, "username");

    let globex = server.org("Globex").await;
    create(&server, &globex, user("ada@acme.example"))
        .await
        .expect("the same address may join another organisation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_users_filters_counts_and_pages_stably_while_rows_are_added() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let mut admin = server.admin();
    let porter = admin
        .create_role(authed(
            pb::CreateRoleRequest {
                name: "Porter".into(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("role")
        .into_inner();
    for i in 0..7 {
        let role_id = if i % 2 == 0 {
            org.role_id.clone()
        } else {
            porter.id.clone()
        };
        create(
            &server,
            &org,
            pb::CreateUserRequest {
                first_name: if i == 3 {
                    "Grace".into()
                } else {
                    format!("Person{i}")
                },
                service_area_id: org.service_area_id.clone(),
                role_id,
                ..user(&format!("p{i}@acme.example"))
            },
        )
        .await
        .expect("create");
    }
    let list = |request: pb::ListUsersRequest| {
        let mut admin = admin.clone();
        let key = org.key.clone();
        async move {
            admin
                .list_users(authed(request, &key))
                .await
                .expect("list")
                .into_inner()
        }
    };

    let first = list(pb::ListUsersRequest {
        page_size: 3,
        ..Default::default()
    })
    .await;
    assert_eq!(first.total_size, 7);
    let staged = first
        .status_counts
        .iter()
        .find(|c| c.status() == pb::UserStatus::Staged)
        .map(|c| c.count);
    assert_eq!(staged, Some(7));
    // A row added between pages does not shift the pages already served.
    create(&server, &org, user("late@acme.example"))
        .await
        .expect("create");
    let mut emails: Vec<String> = first.users.into_iter().map(|u| u.email).collect();
    let mut token = first.next_page_token;
    while !token.is_empty() {
        let page = list(pb::ListUsersRequest {
            page_size: 3,
            page_token: token,
            ..Default::default()
        })
        .await;
        emails.extend(page.users.into_iter().map(|u| u.email));
        token = page.next_page_token;
    }
    let expected: Vec<String> = (0..7)
        .map(|i| format!("p{i}@acme.example"))
        .chain(["late@acme.example".to_owned()])
        .collect();
    assert_eq!(emails, expected);

    let porters = list(pb::ListUsersRequest {
        role_id: porter.id.clone(),
        ..Default::default()
    })
    .await;
    assert_eq!(porters.total_size, 3);
    let grace = list(pb::ListUsersRequest {
        query: "grace".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(
        grace.users.iter().map(|u| u.email.as_str()).collect::<Vec<_>>(),
        ["p3@acme.example"]
    );
    let by_email = list(pb::ListUsersRequest {
        query: "P5@ACME".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(by_email.total_size, 1);
    let active = list(pb::ListUsersRequest {
        status: pb::UserStatus::Active as i32,
        ..Default::default()
    })
    .await;
    assert_eq!((active.total_size, active.users.len()), (0, 0));

    let status = admin
        .list_users(authed(
            pb::ListUsersRequest {
                page_token: "garbage".into(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect_err("bad token");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violations(&status)[0].0, "page_token");
}
