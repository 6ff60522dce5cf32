//! Organisations, their policy, service areas, roles and the audit trail.

use prost_types::{Duration, FieldMask};
use tonic::Code;

use crate::harness::{PLATFORM_KEY, TestServer, authed, violations};
use onramp::pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organisation_gets_the_default_policy_and_can_change_it() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let mut admin = server.admin();
    let got = admin
        .get_organization(authed(pb::GetOrganizationRequest::default(), &org.key))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.name, "Acme");
    let policy = got.policy.expect("policy");
    assert_eq!(policy.invitation_ttl.map(|d| d.seconds), Some(7 * 86_400));
    assert_eq!(policy.reset_link_ttl.map(|d| d.seconds), Some(3_600));
    assert_eq!(policy.password_min_length, 12);
    assert!(policy.terms.is_none());

    let updated = admin
        .update_organization(authed(
            pb::UpdateOrganizationRequest {
                organization: Some(pb::Organization {
                    policy: Some(pb::OnboardingPolicy {
                        invitation_ttl: Some(Duration {
                            seconds: 3 * 86_400,
                            nanos: 0,
                        }),
                        password_min_length: 99, // not in the mask: ignored
                        terms: Some(pb::Terms {
                            title: "Acceptable use".into(),
                            text: "Be kind.".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["policy.invitation_ttl".into(), "policy.terms".into()],
                }),
            },
            &org.key,
        ))
        .await
        .expect("update")
        .into_inner();
    let policy = updated.policy.expect("policy");
    assert_eq!(policy.invitation_ttl.map(|d| d.seconds), Some(3 * 86_400));
    assert_eq!(policy.password_min_length, 12);
    let terms = policy.terms.expect("terms published");
    assert_eq!((terms.version, terms.title.as_str()), (1, "Acceptable use"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_policies_and_names_are_refused_field_by_field() {
    let server = TestServer::start().await;
    let mut admin = server.admin();
    let status = admin
        .create_organization(authed(
            pb::CreateOrganizationRequest {
                name: "  ".into(),
                policy: Some(pb::OnboardingPolicy {
                    invitation_ttl: Some(Duration {
                        seconds: 60,
                        nanos: 0,
                    }),
                    password_min_length: 4,
                    ..Default::default()
                }),
            },
            PLATFORM_KEY,
        ))
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = violations(&status).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        ["name", "policy.invitation_ttl", "policy.password_min_length"]
    );
    assert!(
        status.message().contains("3 fields are invalid"),
        "{}",
        status.message()
    );

    let org = server.org("Acme").await;
    let status = admin
        .update_organization(authed(
            pb::UpdateOrganizationRequest {
                organization: Some(pb::Organization::default()),
                update_mask: Some(FieldMask {
                    paths: vec!["colour".into()],
                }),
            },
            &org.key,
        ))
        .await
        .expect_err("unknown path");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violations(&status)[0].0, "update_mask");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_areas_and_roles_are_unique_by_name_in_any_case_and_page() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let mut admin = server.admin();
    let status = admin
        .create_service_area(authed(
            pb::CreateServiceAreaRequest {
                name: "NORTH WARD".into(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect_err("same name in another case");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(status.message().contains("service area"), "{}", status.message());

    for name in ["Doctor", "Porter", "Admin"] {
        admin
            .create_role(authed(
                pb::CreateRoleRequest {
                    name: name.into(),
                    ..Default::default()
                },
                &org.key,
            ))
            .await
            .expect("create role");
    }
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = admin
            .list_roles(authed(
                pb::ListRolesRequest {
                    page_size: 3,
                    page_token: token.clone(),
                    ..Default::default()
                },
                &org.key,
            ))
            .await
            .expect("list roles")
            .into_inner();
        assert!(page.roles.len() <= 3);
        names.extend(page.roles.into_iter().map(|r| r.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(names, ["Nurse", "Doctor", "Porter", "Admin"]);
    let areas = admin
        .list_service_areas(authed(pb::ListServiceAreasRequest::default(), &org.key))
        .await
        .expect("list areas")
        .into_inner();
    assert_eq!(areas.service_areas.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_in_the_audit_log_with_its_actor() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let mut admin = server.admin();
    let user = admin
        .create_user(authed(
            pb::CreateUserRequest {
                email: "ada@acme.example".into(),
                password: "plum tractor velvet".into(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("create user")
        .into_inner();
    let events = server
        .audit_events(&org.key, pb::ListAuditEventsRequest::default())
        .await;
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "user.create",
            "role.create",
            "service_area.create",
            "api_key.create",
            "organization.create"
        ],
        "newest first"
    );
    let created = &events[0];
    assert_eq!(created.target_id, user.id);
    assert!(created.actor.starts_with("api_key:"), "{}", created.actor);
    assert_eq!(created.client_address, "127.0.0.1");
    assert_eq!(
        created.details.get("password_set").map(String::as_str),
        Some("true")
    );
    assert!(
        !created.details.values().any(|v| v.contains("plum")),
        "a secret reached the audit log: {:?}",
        created.details
    );
    let only_user = server
        .audit_events(
            &org.key,
            pb::ListAuditEventsRequest {
                target_id: user.id.clone(),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(only_user.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_published_terms_version_is_listed_newest_first() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let list = |page_size: i32, page_token: String| {
        let mut admin = server.admin();
        let key = org.key.clone();
        async move {
            admin
                .list_terms(authed(
                    pb::ListTermsRequest {
                        page_size,
                        page_token,
                        ..Default::default()
                    },
                    &key,
                ))
                .await
                .expect("list terms")
                .into_inner()
        }
    };
    assert!(list(0, String::new()).await.terms.is_empty());
    for text in ["First terms", "Second terms", "Third terms"] {
        crate::pages::publish_terms(&server, &org, text).await;
    }
    let all = list(0, String::new()).await;
    let seen: Vec<(i32, &str)> = all.terms.iter().map(|t| (t.version, t.text.as_str())).collect();
    assert_eq!(
        seen,
        [(3, "Third terms"), (2, "Second terms"), (1, "First terms")]
    );
    assert!(all.terms.iter().all(|t| t.publish_time.is_some()));
    let first = list(2, String::new()).await;
    assert_eq!(first.terms.len(), 2);
    let rest = list(2, first.next_page_token).await;
    assert_eq!(rest.terms.iter().map(|t| t.version).collect::<Vec<_>>(), [1]);
    assert!(rest.next_page_token.is_empty());
}
