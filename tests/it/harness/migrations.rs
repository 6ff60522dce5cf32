//! Upgrades from an earlier build: the migrations down to one are reverted,
//! the database is left as that build would leave it, and they are applied
//! again.

use diesel_async::{AsyncPgConnection, async_connection_wrapper::AsyncConnectionWrapper};
use diesel_migrations::MigrationHarness;

use super::TestServer;

/// Reverts the migrations down to and including `version` (as
/// `YYYYMMDDnnnnnn`), runs `between`, and applies them again, as an upgrade
/// from the build before `version` would.
pub async fn across(
    server: &TestServer,
    version: &'static str,
    between: impl AsyncFnOnce(&mut AsyncPgConnection),
) {
    let step = |revert: bool| {
        let url = server.database_url.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&url)
                .expect("connect");
            if revert {
                while conn
                    .revert_last_migration(onramp::db::MIGRATIONS)
                    .expect("revert")
                    .to_string()
                    .replace('-', "")
                    != version
                {}
            } else {
                conn.run_pending_migrations(onramp::db::MIGRATIONS)
                    .expect("apply");
            }
        })
    };
    step(true).await.expect("revert");
    between(&mut server.db().await).await;
    step(false).await.expect("apply");
}
