//! An invitation's lifecycle. Stored: QUEUED → SENT (the SMTP server took
//! the email) → OPENED (the link was viewed) → ACCEPTED (the person
//! registered); or FAILED (the email could not be delivered), REVOKED
//! (withdrawn). EXPIRED is never stored: a link past its expiry reads as
//! expired. A resend starts again from QUEUED with a new link.
//!
//! Three rules say which invitations count, each once, in Rust and in SQL:
//! - *standing*: not used and not withdrawn (queued, sent, opened, failed),
//!   whatever its expiry; activating an account retires these, and a person
//!   stays pending while one stands;
//! - *usable*: standing and not past its expiry: its link registers;
//! - *awaiting*: the person may still answer it (queued, or sent or opened
//!   and not expired), so inviting them again is refused as ALREADY_INVITED;
//!   a failed one is not awaited, since its email never arrived.

use chrono::{DateTime, Utc};

use super::{sql_list, stored};

stored! {
    /// An invitation's stored state.
    pub enum State {
        Queued = "queued",
        Sent = "sent",
        Opened = "opened",
        Accepted = "accepted",
        Failed = "failed",
        Revoked = "revoked",
    }
}

/// An invitation's state as read at a moment: the stored one, or expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Queued,
    Sent,
    Opened,
    Accepted,
    Failed,
    Expired,
    Revoked,
}

/// What happens to an invitation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The SMTP server accepted its email.
    Sent,
    /// Its email was refused for good, or every try failed.
    Failed,
    /// Its link was viewed.
    Opened,
    /// The person registered with it.
    Accepted,
    /// An admin withdrew it, or the person became active another way.
    Revoked,
    /// It is sent again with a new link.
    Resent,
}

/// Not used, not withdrawn.
pub const STANDING: [State; 4] = [State::Queued, State::Sent, State::Opened, State::Failed];

/// Every transition: from, event, to.
const TRANSITIONS: [(State, Event, State); 21] = [
    (State::Queued, Event::Sent, State::Sent),
    (State::Sent, Event::Sent, State::Sent),
    (State::Opened, Event::Sent, State::Sent),
    (State::Failed, Event::Sent, State::Sent),
    (State::Queued, Event::Failed, State::Failed),
    (State::Sent, Event::Failed, State::Failed),
    (State::Opened, Event::Failed, State::Failed),
    (State::Failed, Event::Failed, State::Failed),
    (State::Sent, Event::Opened, State::Opened),
    (State::Queued, Event::Accepted, State::Accepted),
    (State::Sent, Event::Accepted, State::Accepted),
    (State::Opened, Event::Accepted, State::Accepted),
    (State::Failed, Event::Accepted, State::Accepted),
    (State::Queued, Event::Revoked, State::Revoked),
    (State::Sent, Event::Revoked, State::Revoked),
    (State::Opened, Event::Revoked, State::Revoked),
    (State::Failed, Event::Revoked, State::Revoked),
    (State::Queued, Event::Resent, State::Queued),
    (State::Sent, Event::Resent, State::Queued),
    (State::Opened, Event::Resent, State::Queued),
    (State::Failed, Event::Resent, State::Queued),
];

impl State {
    /// The state `event` leads to, or `None` when it does not apply.
    pub fn next(self, event: Event) -> Option<State> {
        TRANSITIONS
            .iter()
            .find(|(from, e, _)| *from == self && *e == event)
            .map(|(_, _, to)| *to)
    }

    /// The states `event` applies to.
    pub fn accepting(event: Event) -> Vec<State> {
        State::ALL
            .iter()
            .copied()
            .filter(|s| s.next(event).is_some())
            .collect()
    }

    /// As of `now`: a sent or opened link past its expiry reads as expired.
    pub fn status(self, expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Status {
        let lapsed = expires_at.is_some_and(|at| at <= now);
        match self {
            State::Sent | State::Opened if lapsed => Status::Expired,
            State::Queued => Status::Queued,
            State::Sent => Status::Sent,
            State::Opened => Status::Opened,
            State::Accepted => Status::Accepted,
            State::Failed => Status::Failed,
            State::Revoked => Status::Revoked,
        }
    }

    pub fn is_standing(self) -> bool {
        STANDING.contains(&self)
    }

    /// Whether the link registers at `now`.
    pub fn is_usable(self, expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        self.is_standing() && expires_at.is_none_or(|at| at > now)
    }

    /// Whether the person may still answer it at `now`.
    pub fn is_awaited(self, expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        match self {
            State::Queued => true,
            State::Sent | State::Opened => expires_at.is_some_and(|at| at > now),
            _ => false,
        }
    }
}

/// `event`'s states as an SQL list, for `state IN …`.
pub fn accepting_sql(event: Event) -> String {
    sql_list(&State::accepting(event), State::sql)
}

/// The standing states as an SQL list.
pub fn standing_sql() -> String {
    sql_list(&STANDING, State::sql)
}

/// `is_usable` in SQL, for the invitation row `alias` (such as `i.`; empty
/// for none) at the time `now` (a parameter such as `$2`).
pub fn usable_sql(alias: &str, now: &str) -> String {
    format!(
        "({alias}state IN {} AND ({alias}expires_at IS NULL OR {alias}expires_at > {now}))",
        standing_sql()
    )
}

/// `is_awaited` in SQL, as `usable_sql`.
pub fn awaited_sql(alias: &str, now: &str) -> String {
    format!(
        "({alias}state = {} OR ({alias}state IN ({}, {}) AND {alias}expires_at > {now}))",
        State::Queued.sql(),
        State::Sent.sql(),
        State::Opened.sql()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn an_invitation_is_sent_opened_and_accepted() {
        assert_eq!(State::Queued.next(Event::Sent), Some(State::Sent));
        assert_eq!(State::Sent.next(Event::Opened), Some(State::Opened));
        assert_eq!(State::Opened.next(Event::Accepted), Some(State::Accepted));
    }

    #[test]
    fn only_a_sent_link_is_opened() {
        assert_eq!(State::accepting(Event::Opened), [State::Sent]);
    }

    #[test]
    fn a_standing_invitation_can_fail_be_sent_again_accepted_or_revoked() {
        for from in STANDING {
            assert_eq!(from.next(Event::Failed), Some(State::Failed), "{from:?}");
            assert_eq!(from.next(Event::Sent), Some(State::Sent), "{from:?}");
            assert_eq!(from.next(Event::Resent), Some(State::Queued), "{from:?}");
            assert_eq!(from.next(Event::Accepted), Some(State::Accepted), "{from:?}");
            assert_eq!(from.next(Event::Revoked), Some(State::Revoked), "{from:?}");
        }
    }

    #[test]
    fn accepted_and_revoked_are_final() {
        for event in [
            Event::Sent,
            Event::Failed,
            Event::Opened,
            Event::Accepted,
            Event::Revoked,
            Event::Resent,
        ] {
            assert_eq!(State::Accepted.next(event), None, "{event:?}");
            assert_eq!(State::Revoked.next(event), None, "{event:?}");
        }
    }

    #[test]
    fn a_link_past_its_expiry_reads_as_expired_and_no_longer_registers() {
        let now = Utc::now();
        let past = Some(now - TimeDelta::minutes(1));
        let future = Some(now + TimeDelta::minutes(1));
        assert_eq!(State::Sent.status(past, now), Status::Expired);
        assert_eq!(State::Opened.status(past, now), Status::Expired);
        assert_eq!(State::Sent.status(future, now), Status::Sent);
        assert_eq!(State::Accepted.status(past, now), Status::Accepted);
        assert!(State::Failed.is_usable(future, now) && !State::Failed.is_usable(past, now));
        assert!(State::Queued.is_usable(None, now));
        assert!(!State::Revoked.is_usable(future, now));
    }

    #[test]
    fn a_failed_or_expired_invitation_is_not_awaited() {
        let now = Utc::now();
        let past = Some(now - TimeDelta::minutes(1));
        let future = Some(now + TimeDelta::minutes(1));
        assert!(State::Queued.is_awaited(None, now));
        assert!(State::Sent.is_awaited(future, now) && !State::Sent.is_awaited(past, now));
        assert!(!State::Failed.is_awaited(future, now));
        assert!(!State::Accepted.is_awaited(future, now));
    }

    #[test]
    fn the_sql_rules_name_the_same_states() {
        assert_eq!(standing_sql(), "('queued', 'sent', 'opened', 'failed')");
        assert_eq!(accepting_sql(Event::Opened), "('sent')");
        assert_eq!(
            usable_sql("i.", "$2"),
            "(i.state IN ('queued', 'sent', 'opened', 'failed') AND (i.expires_at IS NULL OR i.expires_at > $2))"
        );
        assert_eq!(
            awaited_sql("", "$1"),
            "(state = 'queued' OR (state IN ('sent', 'opened') AND expires_at > $1))"
        );
    }
}
