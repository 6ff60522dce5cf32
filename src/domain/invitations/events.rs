//! What a bulk send reports, in order: its summary, a preview (dry runs
//! only), each recipient's result as it becomes final, and the final counts.
//! A real send and its dry run report alike.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::plan::Summary;
use crate::{domain::templates::Rendered, lifecycle::outcome::Outcome};

pub enum BatchEvent {
    Summary {
        /// `None` for a dry run.
        batch_id: Option<Uuid>,
        summary: Summary,
        /// The batch exists already (the same idempotency key).
        replayed: bool,
    },
    /// The email the first recipient to be sent would receive.
    Preview {
        to: String,
        email: Rendered,
    },
    Result(RecipientResult),
    Completion(Completion),
}

/// What became of one recipient, or what would in a dry run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reported {
    Final(Outcome),
    WouldSend,
}

pub struct RecipientResult {
    /// The recipient's place in the request.
    pub index: i32,
    pub input: String,
    pub email: String,
    pub reported: Reported,
    pub reason: String,
    pub user_id: Option<Uuid>,
    pub invitation_id: Option<Uuid>,
    /// When the result became final; `None` in a dry run.
    pub time: Option<DateTime<Utc>>,
}

/// The final counts, by outcome.
#[derive(Default)]
pub struct Completion {
    /// `None` for a dry run.
    pub batch_id: Option<Uuid>,
    pub sent: i32,
    pub failed: i32,
    pub invalid: i32,
    pub duplicates: i32,
    pub already_member: i32,
    pub already_invited: i32,
    pub would_send: i32,
    pub complete_time: Option<DateTime<Utc>>,
}

impl Completion {
    /// Counts one more result.
    pub fn count(&mut self, reported: Reported, n: i32) {
        let counter = match reported {
            Reported::WouldSend => &mut self.would_send,
            Reported::Final(Outcome::Sent) => &mut self.sent,
            Reported::Final(Outcome::Failed) => &mut self.failed,
            Reported::Final(Outcome::InvalidAddress) => &mut self.invalid,
            Reported::Final(Outcome::DuplicateInRequest) => &mut self.duplicates,
            Reported::Final(Outcome::AlreadyMember) => &mut self.already_member,
            Reported::Final(Outcome::AlreadyInvited) => &mut self.already_invited,
        };
        *counter = counter.saturating_add(n);
    }
}

/// Where a bulk send's events go; `false` once the client left.
pub type Events = tokio::sync::mpsc::Sender<crate::error::Result<BatchEvent>>;

/// Sends `event`; `false` when nobody listens any more.
pub async fn report(tx: &Events, event: BatchEvent) -> bool {
    tx.send(Ok(event)).await.is_ok()
}
