//! The database keeps every access grant's service area and role: checked
//! once per statement (not per grant), with the lock a foreign key takes, so
//! a grant never names a missing one and one that grants name cannot go,
//! also when the two happen at once in different transactions.

use std::time::{Duration, Instant};

use diesel::{
    QueryableByName,
    result::{DatabaseErrorKind, Error as DieselError},
    sql_types::{BigInt, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::harness::{Org, TestServer, authed};
use onramp::pb;

async fn person(server: &TestServer, org: &Org, email: &str) -> String {
    server
        .admin()
        .create_user(authed(
            pb::CreateUserRequest {
                email: email.into(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("create user")
        .into_inner()
        .id
}

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

async fn grant(
    conn: &mut AsyncPgConnection,
    user: &str,
    area: &str,
    role: &str,
) -> Result<usize, DieselError> {
    diesel::sql_query(
        "INSERT INTO access_grants (user_id, service_area_id, role_id) VALUES ($1::uuid, $2::uuid, $3::uuid)",
    )
    .bind::<Text, _>(user)
    .bind::<Text, _>(area)
    .bind::<Text, _>(role)
    .execute(conn)
    .await
}

async fn delete_role(conn: &mut AsyncPgConnection, role: &str) -> Result<usize, DieselError> {
    diesel::sql_query("DELETE FROM roles WHERE id = $1::uuid")
        .bind::<Text, _>(role)
        .execute(conn)
        .await
}

/// The constraint a refusal names, when it is a foreign-key violation.
fn refused_by(result: Result<usize, DieselError>) -> Option<String> {
    match result {
        Err(DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info)) => {
            info.constraint_name().map(str::to_owned)
        }
        _ => None,
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Waits until another session waits for a lock in a statement starting
/// with `statement`.
async fn until_waiting(conn: &mut AsyncPgConnection, statement: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: Count = diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND query LIKE $1 || '%'",
        )
        .bind::<Text, _>(statement)
        .get_result(conn)
        .await
        .expect("pg_stat_activity");
        if waiting.n > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no session waited for a lock in '{statement}'"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    let (mut granting, mut watching) = (server.db().await, server.db().await);

    granting.batch_execute("BEGIN").await.expect("begin");
    grant(&mut granting, &user, &org.service_area_id, &org.role_id)
        .await
        .expect("grant");
    let role = org.role_id.clone();
    let mut deleting = server.db().await;
    let deleted = tokio::spawn(async move { delete_role(&mut deleting, &role).await });
    until_waiting(&mut watching, "DELETE FROM roles").await;
    granting.batch_execute("COMMIT").await.expect("commit");

    let refused = refused_by(deleted.await.expect("the delete's task"));
    assert_eq!(
        refused.as_deref(),
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
    let (mut deleting, mut watching) = (server.db().await, server.db().await);

    deleting.batch_execute("BEGIN").await.expect("begin");
    assert_eq!(delete_role(&mut deleting, &role).await.expect("delete"), 1);
    let (area, granted_role) = (org.service_area_id.clone(), role.clone());
    let mut granting = server.db().await;
    let granted = tokio::spawn(async move { grant(&mut granting, &user, &area, &granted_role).await });
    until_waiting(&mut watching, "INSERT INTO access_grants").await;
    deleting.batch_execute("COMMIT").await.expect("commit");

    let refused = refused_by(granted.await.expect("the grant's task"));
    assert_eq!(
        refused.as_deref(),
        Some("access_grants_role_id_fkey"),
        "a grant was written naming a role deleted meanwhile"
    );
}
