//! An email's delivery, as its outbox row keeps it. QUEUED (due at its next
//! try) → SENDING (a worker holds it under a lease) → SENT, FAILED, or back
//! to QUEUED for another try. A lease that runs out makes a SENDING row due
//! again (its worker stopped). OPENED is never stored: a sent email whose
//! link was viewed reads as opened. A waiting email (queued or sending) has
//! a time for its next try and a settled one (sent or failed) has none, which
//! the table's `outbox_due_until_settled` constraint holds it to.

use super::stored;

stored! {
    /// An outbox row's stored state.
    pub enum State {
        Queued = "queued",
        Sending = "sending",
        Sent = "sent",
        Failed = "failed",
    }
}

/// A delivery as read: the stored state, or opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Queued,
    Sending,
    Sent,
    Failed,
    Opened,
}

/// What happens to an email.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A worker claims it for a try (a sending one only once its lease ran
    /// out).
    Claimed,
    /// The SMTP server accepted it.
    Sent,
    /// The try failed and another will follow.
    Deferred,
    /// Refused for good, or the last try failed.
    Failed,
    /// Withdrawn before any worker claimed it.
    Cancelled,
}

/// Waiting to be sent (due now or later, or held by a worker), in SQL: the
/// rows the outbox's due index holds. It is written as the time of the next
/// try rather than as the states, so that a claim, which turns QUEUED into
/// SENDING, changes no column an index depends on and rewrites no index.
pub const WAITING_SQL: &str = "next_attempt_at IS NOT NULL";

impl State {
    /// Whether an email in this state waits for a try, and so has a time
    /// for it.
    pub fn waiting(self) -> bool {
        matches!(self, State::Queued | State::Sending)
    }

    pub fn next(self, event: Event) -> Option<State> {
        match (self, event) {
            (State::Queued | State::Sending, Event::Claimed) => Some(State::Sending),
            (State::Sending, Event::Sent) => Some(State::Sent),
            (State::Sending, Event::Deferred) => Some(State::Queued),
            (State::Sending, Event::Failed) | (State::Queued, Event::Cancelled) => Some(State::Failed),
            _ => None,
        }
    }

    pub fn status(self, opened: bool) -> Status {
        match self {
            State::Sent if opened => Status::Opened,
            State::Queued => Status::Queued,
            State::Sending => Status::Sending,
            State::Sent => Status::Sent,
            State::Failed => Status::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_email_is_sent_deferred_or_failed() {
        assert_eq!(State::Queued.next(Event::Claimed), Some(State::Sending));
        assert_eq!(State::Sending.next(Event::Sent), Some(State::Sent));
        assert_eq!(State::Sending.next(Event::Deferred), Some(State::Queued));
        assert_eq!(State::Sending.next(Event::Failed), Some(State::Failed));
    }

    #[test]
    fn a_sending_email_is_claimed_again_once_its_lease_ran_out() {
        assert_eq!(State::Sending.next(Event::Claimed), Some(State::Sending));
    }

    #[test]
    fn only_a_queued_email_is_cancelled_and_sent_or_failed_ones_are_final() {
        assert_eq!(State::Queued.next(Event::Cancelled), Some(State::Failed));
        assert_eq!(State::Sending.next(Event::Cancelled), None);
        for event in [
            Event::Claimed,
            Event::Sent,
            Event::Deferred,
            Event::Failed,
            Event::Cancelled,
        ] {
            assert_eq!(State::Sent.next(event), None, "{event:?}");
            assert_eq!(State::Failed.next(event), None, "{event:?}");
        }
    }

    #[test]
    fn only_a_queued_or_sending_email_waits_for_a_try() {
        assert!(State::Queued.waiting());
        assert!(State::Sending.waiting());
        assert!(!State::Sent.waiting());
        assert!(!State::Failed.waiting());
    }

    #[test]
    fn a_sent_email_whose_link_was_viewed_reads_as_opened() {
        assert_eq!(State::Sent.status(true), Status::Opened);
        assert_eq!(State::Sent.status(false), Status::Sent);
        assert_eq!(State::Queued.status(true), Status::Queued);
    }
}
