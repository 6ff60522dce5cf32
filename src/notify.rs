//! One LISTEN connection per process, fanned out to every stream and worker
//! in it: a batch followed on this replica hears about sends made by another,
//! and idle workers wake when work is queued anywhere.

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::sync::broadcast;
use tokio_stream::StreamExt;

/// Queued email: payload empty.
pub const OUTBOX_CHANNEL: &str = "onramp_outbox";
/// A batch has new results: payload is its id.
pub const BATCH_CHANNEL: &str = "onramp_batch";

const FIRST_RETRY: Duration = Duration::from_millis(200);

/// Wakes the outbox workers of every replica once the caller's transaction
/// commits.
pub async fn tell_workers(conn: &mut AsyncPgConnection) -> crate::error::Result<()> {
    crate::db::Cached(
        diesel::sql_query("SELECT pg_notify($1, '')").bind::<diesel::sql_types::Text, _>(OUTBOX_CHANNEL),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Tells the followers of `batches`, on every replica, of new results once
/// the caller's transaction commits.
pub async fn tell_followers(
    conn: &mut AsyncPgConnection,
    batches: &[uuid::Uuid],
) -> crate::error::Result<()> {
    crate::db::Cached(
        diesel::sql_query("SELECT pg_notify($1, id::text) FROM unnest($2::uuid[]) AS id")
            .bind::<diesel::sql_types::Text, _>(BATCH_CHANNEL)
            .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(batches),
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Clone, Debug)]
pub struct Notification {
    pub channel: String,
    pub payload: String,
}

#[derive(Clone)]
pub struct Notifier {
    sender: broadcast::Sender<Notification>,
}

impl Notifier {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(1024);
        Notifier { sender }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Notification> {
        self.sender.subscribe()
    }

    /// Listens until the process ends, reconnecting after failures. Listeners
    /// that miss notifications while it reconnects catch up by polling.
    pub async fn run(self, database_url: String) {
        let mut backoff = FIRST_RETRY;
        loop {
            if let Err(e) = self.listen(&database_url, &mut backoff).await {
                tracing::warn!(error = %e, "listening for notifications failed; reconnecting");
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Listens until the connection fails; `backoff` starts again once it
    /// is listening, so each outage is retried quickly at first.
    async fn listen(
        &self,
        database_url: &str,
        backoff: &mut Duration,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let mut conn = AsyncPgConnection::establish(database_url).await?;
        diesel::sql_query(format!("LISTEN {OUTBOX_CHANNEL}"))
            .execute(&mut conn)
            .await?;
        diesel::sql_query(format!("LISTEN {BATCH_CHANNEL}"))
            .execute(&mut conn)
            .await?;
        *backoff = FIRST_RETRY;
        // Whatever happened while we were not listening.
        let _ = self.sender.send(Notification {
            channel: OUTBOX_CHANNEL.into(),
            payload: String::new(),
        });
        let mut stream = std::pin::pin!(conn.notifications_stream());
        while let Some(notification) = stream.next().await {
            let notification = notification?;
            let _ = self.sender.send(Notification {
                channel: notification.channel,
                payload: notification.payload,
            });
        }
        Err("the notification connection closed".into())
    }
}

impl Default for Notifier {
    fn default() -> Self {
        Self::new()
    }
}
