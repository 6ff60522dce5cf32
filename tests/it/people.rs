//! The database keeps every person's organisation and every grant's person:
//! checked once per statement (not per row), with the lock a foreign key
//! takes, so a row never names a missing parent; and a parent's delete takes
//! its people or grants with it, also when the two happen at once in
//! different transactions.

use diesel::{result::Error as DieselError, sql_types::Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::harness::{
    TestServer,
    constraints::{after_waiting, count, grant, person, refused_by},
};

/// Writes one person by hand into `organization`.
async fn join(conn: &mut AsyncPgConnection, organization: &str, email: &str) -> Result<usize, DieselError> {
    diesel::sql_query(
        "INSERT INTO users (id, organization_id, email, username, created_at, updated_at) \
         VALUES (gen_random_uuid(), $1::uuid, $2, $2, now(), now())",
    )
    .bind::<Text, _>(organization)
    .bind::<Text, _>(email)
    .execute(conn)
    .await
}

async fn delete(conn: &mut AsyncPgConnection, table: &str, id: &str) -> Result<usize, DieselError> {
    diesel::sql_query(format!("DELETE FROM {table} WHERE id = $1::uuid"))
        .bind::<Text, _>(id)
        .execute(conn)
        .await
}

async fn people_of(conn: &mut AsyncPgConnection, organization: &str) -> i64 {
    count(
        conn,
        "SELECT count(*) AS n FROM users WHERE organization_id = $1::uuid",
        organization,
    )
    .await
}

async fn grants_of(conn: &mut AsyncPgConnection, user: &str) -> i64 {
    count(
        conn,
        "SELECT count(*) AS n FROM access_grants WHERE user_id = $1::uuid",
        user,
    )
    .await
}

#[tokio::test]
async fn a_person_naming_a_missing_organisation_is_refused_and_an_organisations_people_go_with_it() {
    let server = TestServer::start().await;
    let org = server.org("People").await;
    let missing = uuid::Uuid::now_v7().to_string();
    let mut db = server.db().await;

    let refused = refused_by(join(&mut db, &missing, "ada@example.com").await);
    assert_eq!(refused.as_deref(), Some("users_organization_id_fkey"));

    // One statement of two people, one naming a missing organisation: none
    // is written.
    let both = diesel::sql_query(
        "INSERT INTO users (id, organization_id, email, username, created_at, updated_at) \
         VALUES (gen_random_uuid(), $1::uuid, 'ada@example.com', 'ada', now(), now()), \
                (gen_random_uuid(), $2::uuid, 'grace@example.com', 'grace', now(), now())",
    )
    .bind::<Text, _>(&org.id)
    .bind::<Text, _>(&missing)
    .execute(&mut db)
    .await;
    assert_eq!(refused_by(both).as_deref(), Some("users_organization_id_fkey"));
    assert_eq!(people_of(&mut db, &org.id).await, 0);

    // An organisation's id cannot change while people name it. (One made by
    // hand: the API's organisations also have keys, whose own foreign key
    // would refuse first.)
    let bare = uuid::Uuid::now_v7().to_string();
    diesel::sql_query(
        "INSERT INTO organizations (id, name, created_at, updated_at) VALUES ($1::uuid, 'Bare', now(), now())",
    )
    .bind::<Text, _>(&bare)
    .execute(&mut db)
    .await
    .expect("an organisation by hand");
    join(&mut db, &bare, "ada@example.com")
        .await
        .expect("a person by hand");
    let moved = diesel::sql_query("UPDATE organizations SET id = gen_random_uuid() WHERE id = $1::uuid")
        .bind::<Text, _>(&bare)
        .execute(&mut db)
        .await;
    assert_eq!(refused_by(moved).as_deref(), Some("users_organization_id_fkey"));

    person(&server, &org, "ada@example.com").await;
    person(&server, &org, "grace@example.com").await;
    assert_eq!(people_of(&mut db, &org.id).await, 2);
    assert_eq!(
        delete(&mut db, "organizations", &org.id).await.expect("delete"),
        1
    );
    assert_eq!(
        people_of(&mut db, &org.id).await,
        0,
        "the organisation's people stayed"
    );
    assert_eq!(
        people_of(&mut db, &bare).await,
        1,
        "another organisation's person went"
    );
}

#[tokio::test]
async fn a_grant_naming_a_missing_person_is_refused_and_a_persons_grants_go_with_them() {
    let server = TestServer::start().await;
    let org = server.org("People").await;
    let missing = uuid::Uuid::now_v7().to_string();
    let mut db = server.db().await;

    let refused = refused_by(grant(&mut db, &missing, &org.service_area_id, &org.role_id).await);
    assert_eq!(refused.as_deref(), Some("access_grants_user_id_fkey"));

    let (ada, grace) = (
        person(&server, &org, "ada@example.com").await,
        person(&server, &org, "grace@example.com").await,
    );
    for user in [&ada, &grace] {
        grant(&mut db, user, &org.service_area_id, &org.role_id)
            .await
            .expect("a grant to a person who exists");
    }
    let moved = diesel::sql_query("UPDATE users SET id = gen_random_uuid() WHERE id = $1::uuid")
        .bind::<Text, _>(&ada)
        .execute(&mut db)
        .await;
    assert_eq!(refused_by(moved).as_deref(), Some("access_grants_user_id_fkey"));

    assert_eq!(delete(&mut db, "users", &ada).await.expect("delete"), 1);
    assert_eq!(grants_of(&mut db, &ada).await, 0, "the person's grant stayed");
    assert_eq!(grants_of(&mut db, &grace).await, 1, "another person's grant went");
}

#[tokio::test]
async fn an_organisation_deleted_while_a_person_joins_it_waits_and_takes_them_too() {
    let server = TestServer::start().await;
    let org = server.org("People").await;

    let deleted = after_waiting(
        &server,
        async |conn| join(conn, &org.id, "ada@example.com").await,
        async |conn| delete(conn, "organizations", &org.id).await,
        "DELETE FROM organizations",
    )
    .await;
    assert_eq!(deleted.expect("delete"), 1);
    assert_eq!(
        people_of(&mut server.db().await, &org.id).await,
        0,
        "a person outlived their organisation"
    );
}

#[tokio::test]
async fn a_person_joining_an_organisation_deleted_meanwhile_waits_and_is_refused() {
    let server = TestServer::start().await;
    let org = server.org("People").await;

    let joined = after_waiting(
        &server,
        async |conn| delete(conn, "organizations", &org.id).await,
        async |conn| join(conn, &org.id, "ada@example.com").await,
        "INSERT INTO users",
    )
    .await;
    assert_eq!(
        refused_by(joined).as_deref(),
        Some("users_organization_id_fkey"),
        "a person joined an organisation deleted meanwhile"
    );
}

#[tokio::test]
async fn a_person_deleted_while_a_grant_to_them_is_uncommitted_waits_and_takes_it_too() {
    let server = TestServer::start().await;
    let org = server.org("People").await;
    let user = person(&server, &org, "ada@example.com").await;

    let deleted = after_waiting(
        &server,
        async |conn| grant(conn, &user, &org.service_area_id, &org.role_id).await,
        async |conn| delete(conn, "users", &user).await,
        "DELETE FROM users",
    )
    .await;
    assert_eq!(deleted.expect("delete"), 1);
    assert_eq!(
        grants_of(&mut server.db().await, &user).await,
        0,
        "a grant outlived its person"
    );
}

#[tokio::test]
async fn a_grant_to_a_person_deleted_meanwhile_waits_and_is_refused() {
    let server = TestServer::start().await;
    let org = server.org("People").await;
    let user = person(&server, &org, "ada@example.com").await;

    let granted = after_waiting(
        &server,
        async |conn| delete(conn, "users", &user).await,
        async |conn| grant(conn, &user, &org.service_area_id, &org.role_id).await,
        "INSERT INTO access_grants",
    )
    .await;
    assert_eq!(
        refused_by(granted).as_deref(),
        Some("access_grants_user_id_fkey"),
        "a grant was written naming a person deleted meanwhile"
    );
}
