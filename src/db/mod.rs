//! Postgres: the connection pool, creating the database on first run, and the
//! embedded migrations.

mod cached;
pub mod insert;
pub mod schema;

pub use cached::Cached;

use std::{sync::Arc, time::Duration};

use diesel::{ConnectionError, sql_types::Text};
use diesel_async::{
    AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection,
    async_connection_wrapper::AsyncConnectionWrapper,
    pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, PoolableConnection, RecyclingMethod},
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

type Connections = diesel_async::pooled_connection::bb8::Pool<AsyncPgConnection>;
pub type PoolError = diesel_async::pooled_connection::bb8::RunError;

/// The connection pool, handing out connections first come, first served.
/// bb8 on its own lets a request that has just arrived take a freed
/// connection ahead of one already waiting, which under load left a few
/// requests waiting many times longer than the rest; a fair semaphore with
/// one turn per connection queues them in order instead.
#[derive(Clone)]
pub struct Pool {
    connections: Connections,
    turns: Arc<Semaphore>,
    wait: Duration,
}

/// A pooled connection; it goes back, and the next in line gets its turn,
/// when dropped.
pub struct Conn {
    conn: diesel_async::pooled_connection::bb8::PooledConnection<'static, AsyncPgConnection>,
    _turn: OwnedSemaphorePermit,
}

impl Pool {
    /// A connection, after those who asked earlier; fails after the
    /// configured wait.
    pub async fn get(&self) -> Result<Conn, PoolError> {
        let started = tokio::time::Instant::now();
        let metrics = crate::metrics::get();
        // Counted until it has a connection, gives up, or is dropped.
        let waiting = crate::metrics::Held::new(&metrics.pool_waiting);
        let got = async {
            let turn = tokio::time::timeout(self.wait, self.turns.clone().acquire_owned())
                .await
                .map_err(|_| PoolError::TimedOut)?
                .map_err(|_| PoolError::TimedOut)?;
            let left = self.wait.saturating_sub(started.elapsed());
            let conn = tokio::time::timeout(left, self.connections.get_owned())
                .await
                .map_err(|_| PoolError::TimedOut)??;
            Ok(Conn { conn, _turn: turn })
        }
        .await;
        drop(waiting);
        metrics.pool_wait.record(started.elapsed().as_secs_f64(), &[]);
        if matches!(got, Err(PoolError::TimedOut)) {
            metrics.pool_timeouts.add(1, &[]);
        }
        got
    }

    /// Connections handed out, and connections open and idle.
    pub fn connections(&self) -> (u32, u32) {
        let state = self.connections.state();
        (state.connections - state.idle_connections, state.idle_connections)
    }
}

impl std::ops::Deref for Conn {
    type Target = AsyncPgConnection;

    fn deref(&self) -> &AsyncPgConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut AsyncPgConnection {
        &mut self.conn
    }
}

/// Opens the pool. Each connection gets a `statement_timeout`, so a runaway
/// query cannot hold a connection for ever.
///
/// A connection is checked out after a look at its state, not a test
/// query: a `SELECT 1` would double the round trips of most requests. A
/// connection the server closed (a restart, an idle timeout) shows as
/// closed and is replaced; one that dies unnoticed fails its first query,
/// which the caller sees as UNAVAILABLE.
pub async fn connect(
    url: &str,
    size: u32,
    wait: Duration,
    statement_timeout: Duration,
) -> Result<Pool, diesel_async::pooled_connection::PoolError> {
    let setup_sql = format!("SET statement_timeout = {}", statement_timeout.as_millis());
    let mut manager_config = ManagerConfig::default();
    manager_config.recycling_method = RecyclingMethod::CustomFunction(Box::new(|conn| {
        let broken = PoolableConnection::is_broken(conn);
        Box::pin(async move {
            if broken {
                Err(diesel::result::Error::BrokenTransactionManager)
            } else {
                Ok(())
            }
        })
    }));
    manager_config.custom_setup = Box::new(move |url| {
        let setup_sql = setup_sql.clone();
        Box::pin(async move {
            let mut conn = AsyncPgConnection::establish(url).await?;
            conn.batch_execute(&setup_sql)
                .await
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        })
    });
    let manager = AsyncDieselConnectionManager::new_with_config(url, manager_config);
    let connections = Connections::builder()
        .max_size(size)
        .connection_timeout(wait)
        .build(manager)
        .await?;
    Ok(Pool {
        connections,
        turns: Arc::new(Semaphore::new(usize::try_from(size).unwrap_or(1))),
        wait,
    })
}

/// Splits `postgres://…/name?opts` into the URL of the maintenance database
/// (`postgres`) on the same server and `name`.
pub fn split_database_name(url: &str) -> Option<(String, String)> {
    let (before_query, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = before_query.find("://")? + 3;
    let slash = before_query[scheme_end..].rfind('/')? + scheme_end;
    let name = &before_query[slash + 1..];
    if name.is_empty() {
        return None;
    }
    let mut admin = format!("{}/postgres", &before_query[..slash]);
    if let Some(q) = query {
        admin.push('?');
        admin.push_str(q);
    }
    Some((admin, name.to_owned()))
}

#[derive(diesel::QueryableByName)]
struct Exists {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    exists: bool,
}

/// Creates the database named in `url` if it does not exist yet. Returns
/// whether it did.
pub async fn create_database_if_missing(url: &str) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    let (admin_url, name) =
        split_database_name(url).ok_or("DATABASE_URL names no database (…/onramp at the end)")?;
    let mut conn = AsyncPgConnection::establish(&admin_url).await?;
    let found: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<Text, _>(&name)
            .get_result(&mut conn)
            .await?;
    if found.exists {
        return Ok(false);
    }
    let quoted = name.replace('"', "\"\"");
    match conn.batch_execute(&format!("CREATE DATABASE \"{quoted}\"")).await {
        Ok(()) => Ok(true),
        // Another replica created it first.
        Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => {
            Ok(false)
        }
        Err(e) if e.to_string().contains("already exists") => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Applies pending migrations; returns their names. Runs on the blocking pool
/// because the migration harness is synchronous.
pub async fn migrate(url: &str) -> Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&url)?;
        let applied = conn.run_pending_migrations(MIGRATIONS)?;
        Ok(applied.iter().map(ToString::to_string).collect())
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::split_database_name;

    #[test]
    fn splits_the_database_name_off_the_url() {
        assert_eq!(
            split_database_name("postgres://u@h:5432/onramp?sslmode=disable"),
            Some((
                "postgres://u@h:5432/postgres?sslmode=disable".into(),
                "onramp".into()
            ))
        );
        assert_eq!(split_database_name("postgres://u@h:5432/"), None);
    }
}
