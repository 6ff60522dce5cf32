//! What the tests of the database's own checks share: writing the rows
//! those checks guard, reading which check refused a statement, and
//! waiting until another session waits for a lock.

use std::time::{Duration, Instant};

use diesel::{
    QueryableByName,
    result::{DatabaseErrorKind, Error as DieselError},
    sql_types::{BigInt, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use super::{Org, TestServer, authed};
use onramp::pb;

/// A person created through the API; answers their id.
pub async fn person(server: &TestServer, org: &Org, email: &str) -> String {
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

/// Writes one access grant by hand.
pub async fn grant(
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

/// The constraint a refusal names, when it is a foreign-key violation.
pub fn refused_by(result: Result<usize, DieselError>) -> Option<String> {
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

/// The answer of a `SELECT count(*) AS n …` whose one parameter is text.
pub async fn count(conn: &mut AsyncPgConnection, query: &str, parameter: &str) -> i64 {
    diesel::sql_query(query)
        .bind::<Text, _>(parameter)
        .get_result::<Count>(conn)
        .await
        .expect("a count")
        .n
}

/// Runs `first` in a transaction left open, then `second` on another
/// connection, which must wait for a lock of `first`'s (in a statement
/// starting with `waits_in`) until `first` commits; answers what `second`
/// answered then.
pub async fn after_waiting(
    server: &TestServer,
    first: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<usize, DieselError>,
    second: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<usize, DieselError>,
    waits_in: &str,
) -> Result<usize, DieselError> {
    let (mut earlier, mut later, mut watching) = (server.db().await, server.db().await, server.db().await);
    earlier.batch_execute("BEGIN").await.expect("begin");
    first(&mut earlier)
        .await
        .expect("the first transaction's statement");
    let (answer, ()) = tokio::join!(second(&mut later), async {
        until_waiting(&mut watching, waits_in).await;
        earlier.batch_execute("COMMIT").await.expect("commit");
    });
    answer
}

/// Waits until another session waits for a lock in a statement starting
/// with `statement`.
async fn until_waiting(conn: &mut AsyncPgConnection, statement: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting = count(
            conn,
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND query LIKE $1 || '%'",
            statement,
        )
        .await;
        if waiting > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no session waited for a lock in '{statement}'"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
