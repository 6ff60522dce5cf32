//! The rows a bulk send writes keep their parents, checked once per
//! statement instead of by foreign keys: an invitation its person, service
//! area and role, an email its person, a result its batch. A parent's
//! delete takes them with it (or, for a service area or role, leaves the
//! invitation naming none), and an id they name cannot change.

use diesel::{result::Error as DieselError, sql_types::Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::harness::{
    TestServer,
    constraints::{count, refused_by},
    invite, send,
};

/// Copies one row of `table`, under a new id where it has one, with
/// `column` set to `value`.
async fn copy_naming(
    conn: &mut AsyncPgConnection,
    table: &str,
    column: &str,
    value: &str,
) -> Result<usize, DieselError> {
    let fresh_id = if table == "batch_items" {
        "'position', r.position + 1000"
    } else {
        "'id', gen_random_uuid()"
    };
    diesel::sql_query(format!(
        "INSERT INTO {table} SELECT (jsonb_populate_record(r, \
           jsonb_build_object({fresh_id}, '{column}', $1::text))).* \
         FROM {table} r LIMIT 1"
    ))
    .bind::<Text, _>(value)
    .execute(conn)
    .await
}

async fn run(conn: &mut AsyncPgConnection, sql: &str, id: &str) -> Result<usize, DieselError> {
    diesel::sql_query(sql).bind::<Text, _>(id).execute(conn).await
}

async fn rows(conn: &mut AsyncPgConnection, table: &str, column: &str, id: &str) -> i64 {
    count(
        conn,
        &format!("SELECT count(*) AS n FROM {table} WHERE {column} = $1::uuid"),
        id,
    )
    .await
}

#[derive(diesel::QueryableByName)]
struct Named {
    #[diesel(sql_type = Text)]
    n: String,
}

async fn one(conn: &mut AsyncPgConnection, sql: &str) -> String {
    diesel::sql_query(sql)
        .get_result::<Named>(conn)
        .await
        .expect(sql)
        .n
}

#[tokio::test]
async fn a_send_row_naming_a_missing_parent_is_refused_and_a_named_id_cannot_change() {
    let server = TestServer::start().await;
    let org = server.org("Sends").await;
    // The invalid address is the one recipient with a row of the batch's own.
    send(&server, &org, invite(&org, "ada@example.com not-an-address"))
        .await
        .expect("send");
    let mut db = server.db().await;
    let missing = uuid::Uuid::now_v7().to_string();

    for (table, column, constraint) in [
        ("invitations", "user_id", "invitations_user_id_fkey"),
        (
            "invitations",
            "service_area_id",
            "invitations_service_area_id_fkey",
        ),
        ("invitations", "role_id", "invitations_role_id_fkey"),
        ("outbox", "user_id", "outbox_user_id_fkey"),
        ("batch_items", "batch_id", "batch_items_batch_id_fkey"),
    ] {
        let copied = copy_naming(&mut db, table, column, &missing).await;
        let answer = format!("{copied:?}");
        assert_eq!(
            refused_by(copied).as_deref(),
            Some(constraint),
            "{table}.{column}: {answer}"
        );
        // The same copy naming the parent that exists is written: the
        // refusal was the parent's.
        let existing = one(
            &mut db,
            &format!("SELECT {column}::text AS n FROM {table} LIMIT 1"),
        )
        .await;
        assert_eq!(
            copy_naming(&mut db, table, column, &existing).await.expect(table),
            1
        );
    }

    let ada = one(&mut db, "SELECT id::text AS n FROM users").await;
    let batch = one(&mut db, "SELECT id::text AS n FROM batches").await;
    for (table, id, constraint) in [
        ("users", &ada, "invitations_user_id_fkey"),
        (
            "service_areas",
            &org.service_area_id,
            "invitations_service_area_id_fkey",
        ),
        ("roles", &org.role_id, "invitations_role_id_fkey"),
        ("batches", &batch, "batch_items_batch_id_fkey"),
    ] {
        let sql = format!("UPDATE {table} SET id = gen_random_uuid() WHERE id = $1::uuid");
        let refused = refused_by(run(&mut db, &sql, id).await);
        assert_eq!(refused.as_deref(), Some(constraint), "{table}");
    }
}

#[tokio::test]
async fn deleting_a_parent_takes_the_send_rows_with_it_or_leaves_invitations_naming_none() {
    let server = TestServer::start().await;
    let org = server.org("Sends").await;
    send(
        &server,
        &org,
        invite(&org, "ada@example.com\ngrace@example.com\nnot-an-address"),
    )
    .await
    .expect("send");
    let mut db = server.db().await;
    let ada = one(
        &mut db,
        "SELECT id::text AS n FROM users WHERE email = 'ada@example.com'",
    )
    .await;
    let grace = one(
        &mut db,
        "SELECT id::text AS n FROM users WHERE email = 'grace@example.com'",
    )
    .await;
    let batch = one(&mut db, "SELECT id::text AS n FROM batches").await;

    // A service area and a role no grant names go; the invitations stay,
    // naming none.
    run(
        &mut db,
        "DELETE FROM service_areas WHERE id = $1::uuid",
        &org.service_area_id,
    )
    .await
    .expect("delete the service area");
    run(&mut db, "DELETE FROM roles WHERE id = $1::uuid", &org.role_id)
        .await
        .expect("delete the role");
    assert_eq!(rows(&mut db, "invitations", "organization_id", &org.id).await, 2);
    assert_eq!(
        one(
            &mut db,
            "SELECT count(*)::text AS n FROM invitations WHERE service_area_id IS NULL AND role_id IS NULL"
        )
        .await,
        "2"
    );

    assert_eq!(
        run(&mut db, "DELETE FROM users WHERE id = $1::uuid", &ada)
            .await
            .expect("delete"),
        1
    );
    assert_eq!(
        rows(&mut db, "invitations", "user_id", &ada).await,
        0,
        "the invitation stayed"
    );
    assert_eq!(
        rows(&mut db, "outbox", "user_id", &ada).await,
        0,
        "the email stayed"
    );
    assert_eq!(
        rows(&mut db, "invitations", "user_id", &grace).await,
        1,
        "another's invitation went"
    );
    assert_eq!(
        rows(&mut db, "outbox", "user_id", &grace).await,
        1,
        "another's email went"
    );

    assert_eq!(
        rows(&mut db, "batch_items", "batch_id", &batch).await,
        1,
        "the invalid address's result"
    );
    assert_eq!(
        run(&mut db, "DELETE FROM batches WHERE id = $1::uuid", &batch)
            .await
            .expect("delete"),
        1
    );
    assert_eq!(
        rows(&mut db, "batch_items", "batch_id", &batch).await,
        0,
        "the results stayed"
    );
}
