//! Inserting rows of which a few may already exist, at the price of a plain
//! insert when none do:
//!
//! ```text
//! insert::try_plain(conn).await?;
//! let tried = insert_rows(conn, "").await;
//! let rows = match insert::settle(conn, tried).await? {
//!     Some(rows) => rows,
//!     None => insert_rows(conn, insert::SKIP_TAKEN).await?,
//! };
//! ```
//!
//! `ON CONFLICT DO NOTHING` made PostgreSQL's insert of 10,000 new people a
//! third dearer than a plain one: it probes every unique index before each
//! row and logs a confirmation after it. Most of the rows a bulk send or an
//! import inserts are new, so the plain insert is tried first, in a
//! savepoint. Each try takes a subtransaction id, and PostgreSQL keeps only
//! 64 per transaction in shared memory, so a transaction makes at most a few
//! dozen tries.

use diesel::result::{DatabaseErrorKind, Error as DieselError, QueryResult};
use diesel_async::{AnsiTransactionManager, AsyncPgConnection, TransactionManager};

/// The clause that lets an insert skip the rows a unique index turns away.
pub const SKIP_TAKEN: &str = "ON CONFLICT DO NOTHING";

/// Starts a plain insert's try: a savepoint. Call inside a transaction.
pub async fn try_plain(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    AnsiTransactionManager::begin_transaction(conn).await
}

/// Ends the try `try_plain` started: keeps what the plain insert wrote, or,
/// when a unique index turned one of its rows away, undoes it and answers
/// `None`, for the caller to insert again with `SKIP_TAKEN`.
pub async fn settle<T>(conn: &mut AsyncPgConnection, tried: QueryResult<T>) -> QueryResult<Option<T>> {
    match tried {
        Ok(inserted) => {
            AnsiTransactionManager::commit_transaction(conn).await?;
            Ok(Some(inserted))
        }
        Err(e) => {
            AnsiTransactionManager::rollback_transaction(conn).await?;
            match e {
                DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => Ok(None),
                other => Err(other),
            }
        }
    }
}
