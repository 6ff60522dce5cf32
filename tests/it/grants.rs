//! The database keeps every access grant's service area and role: checked
//! once per statement (not per grant), with the lock a foreign key takes, so
//! a grant never names a missing one and one that grants name cannot go,
//! also when the two happen at once in different transactions.

use diesel::{result::Error as DieselError, sql_types::Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::harness::{
    Org, TestServer, authed,
    constraints::{after_waiting, grant, person, refused_by},
};
use onramp::pb;

async fn another_role(server: &TestServer, org: &Org) -> String {
    server
        .admin()
        .create_role(authed(
            pb::CreateRoleRequest {
                organization_id: String::new(),
                name: "Porter".into(),
                description: String::new(),
            },
            &org.key,
        ))
        .await
        .expect("create role")
        .into_inner()
        .id
}

async fn delete_role(conn: &mut AsyncPgConnection, role: &str) -> Result<usize, DieselError> {
    diesel::sql_query("DELETE FROM roles WHERE id = $1::uuid")
        .bind::<Text, _>(role)
        .execute(conn)
        .await
}

#[tokio::test]
async fn a_grant_naming_a_missing_service_area_or_role_is_refused_and_a_granted_role_cannot_be_deleted() {
    let server = TestServer::start().await;
    let org = server.org("Grants").await;
    let user = person(&server, &org, "ada@example.com").await;
    let missing = uuid::Uuid::now_v7().to_string();
    let mut db = server.db().await;

    let refused = refused_by(grant(&mut db, &user, &org.service_area_id, &missing).await);
    assert_eq!(refused.as_deref(), Some("access_grants_role_id_fkey"));
    let refused = refused_by(grant(&mut db, &user, &missing, &org.role_id).await);
    assert_eq!(refused.as_deref(), Some("access_grants_service_area_id_fkey"));

    // One statement of many grants, one of them naming a missing role: none
    // is written.
    let other = person(&server, &org, "grace@example.com").await;
    let many = diesel::sql_query(
        "INSERT INTO access_grants (user_id, service_area_id, role_id) \
         VALUES ($1::uuid, $3::uuid, $4::uuid), ($2::uuid, $3::uuid, $5::uuid)",
    )
    .bind::<Text, _>(&user)
    .bind::<Text, _>(&other)
    .bind::<Text, _>(&org.service_area_id)
    .bind::<Text, _>(&org.role_id)
    .bind::<Text, _>(&missing)
    .execute(&mut db)
    .await;
    assert_eq!(refused_by(many).as_deref(), Some("access_grants_role_id_fkey"));

    grant(&mut db, &user, &org.service_area_id, &org.role_id)
        .await
        .expect("a grant naming what exists");
    let refused = refused_by(delete_role(&mut db, &org.role_id).await);
    assert_eq!(refused.as_deref(), Some("access_grants_role_id_fkey"));
    let refused = refused_by(
        diesel::sql_query("DELETE FROM service_areas WHERE id = $1::uuid")
            .bind::<Text, _>(&org.service_area_id)
            .execute(&mut db)
            .await,
    );
    assert_eq!(refused.as_deref(), Some("access_grants_service_area_id_fkey"));

    // A role no grant names goes.
    let unused = another_role(&server, &org).await;
    assert_eq!(delete_role(&mut db, &unused).await.expect("delete"), 1);
}

#[tokio::test]
async fn a_role_deleted_while_a_grant_to_it_is_uncommitted_waits_and_is_refused() {
    let server = TestServer::start().await;
    let org = server.org("Grants").await;
    let user = person(&server, &org, "ada@example.com").await;

    let deleted = after_waiting(
        &server,
        async |conn| grant(conn, &user, &org.service_area_id, &org.role_id).await,
        async |conn| delete_role(conn, &org.role_id).await,
        "DELETE FROM roles",
    )
    .await;
    assert_eq!(
        refused_by(deleted).as_deref(),
        Some("access_grants_role_id_fkey"),
        "the role went while a grant named it"
    );
}

#[tokio::test]
async fn a_grant_to_a_role_deleted_meanwhile_waits_and_is_refused() {
    let server = TestServer::start().await;
    let org = server.org("Grants").await;
    let user = person(&server, &org, "ada@example.com").await;
    let role = another_role(&server, &org).await;

    let granted = after_waiting(
        &server,
        async |conn| delete_role(conn, &role).await,
        async |conn| grant(conn, &user, &org.service_area_id, &role).await,
        "INSERT INTO access_grants",
    )
    .await;
    assert_eq!(
        refused_by(granted).as_deref(),
        Some("access_grants_role_id_fkey"),
        "a grant was written naming a role deleted meanwhile"
    );
}
