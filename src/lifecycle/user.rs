//! A person's lifecycle. Stored, as the stage: STAGED (created or imported,
//! not contacted) → PENDING (invited or sent credentials) → ACTIVE
//! (registered, or signed in with an emailed password changed). A pause is
//! kept apart (the time it began), so reactivating returns the person to
//! the stage they had. The status a reader sees is computed at that moment:
//! INACTIVE while paused, EXPIRED while pending with the latest link past
//! its expiry, else the stage.

use chrono::{DateTime, Utc};

use super::stored;

stored! {
    /// A person's stored stage.
    pub enum Stage {
        Staged = "staged",
        Pending = "pending",
        Active = "active",
    }
}

stored! {
    /// A person's status as read at a moment.
    pub enum Status {
        Staged = "staged",
        Pending = "pending",
        Expired = "expired",
        Active = "active",
        Inactive = "inactive",
    }
}

/// What moves a person between stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Sent an invitation or credentials.
    Contacted,
    /// Registered, reset or changed an emailed password, or given a final
    /// password by an admin.
    Activated,
    /// The last invitation that stood was withdrawn.
    Withdrawn,
}

impl Stage {
    /// The stage `event` leads to; an active person stays active.
    pub fn next(self, event: Event) -> Stage {
        match (self, event) {
            (Stage::Active, _) | (_, Event::Activated) => Stage::Active,
            (_, Event::Contacted) => Stage::Pending,
            (Stage::Pending, Event::Withdrawn) => Stage::Staged,
            (stage, Event::Withdrawn) => stage,
        }
    }

    /// `next` as SQL over the stage column `column`.
    pub fn next_sql(event: Event, column: &str) -> String {
        match event {
            Event::Activated => Stage::Active.sql().to_owned(),
            Event::Contacted => format!(
                "CASE WHEN {column} = {} THEN {} ELSE {} END",
                Stage::Active.sql(),
                Stage::Active.sql(),
                Stage::Pending.sql()
            ),
            Event::Withdrawn => format!(
                "CASE WHEN {column} = {} THEN {} ELSE {column} END",
                Stage::Pending.sql(),
                Stage::Staged.sql()
            ),
        }
    }

    /// The status of a person at this stage at `now`.
    pub fn status(
        self,
        paused_at: Option<DateTime<Utc>>,
        invitation_expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Status {
        match self {
            _ if paused_at.is_some() => Status::Inactive,
            Stage::Pending if invitation_expires_at.is_some_and(|at| at <= now) => Status::Expired,
            Stage::Pending => Status::Pending,
            Stage::Active => Status::Active,
            Stage::Staged => Status::Staged,
        }
    }
}

/// `Stage::status` as SQL over a `users u` row, with the clock as `now` (a
/// parameter such as `$1`).
pub fn status_sql(now: &str) -> String {
    format!(
        "CASE WHEN u.deactivated_at IS NOT NULL THEN {} \
           WHEN u.lifecycle = {} AND u.invitation_expires_at <= {now} THEN {} \
           ELSE u.lifecycle END",
        Status::Inactive.sql(),
        Stage::Pending.sql(),
        Status::Expired.sql()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn contacting_a_staged_person_makes_them_pending() {
        assert_eq!(Stage::Staged.next(Event::Contacted), Stage::Pending);
        assert_eq!(Stage::Pending.next(Event::Contacted), Stage::Pending);
    }

    #[test]
    fn activation_makes_anyone_active_and_an_active_person_stays_active() {
        for stage in Stage::ALL {
            assert_eq!(stage.next(Event::Activated), Stage::Active, "{stage:?}");
        }
        assert_eq!(Stage::Active.next(Event::Contacted), Stage::Active);
        assert_eq!(Stage::Active.next(Event::Withdrawn), Stage::Active);
    }

    #[test]
    fn withdrawing_the_last_invitation_stages_a_pending_person_again() {
        assert_eq!(Stage::Pending.next(Event::Withdrawn), Stage::Staged);
        assert_eq!(Stage::Staged.next(Event::Withdrawn), Stage::Staged);
    }

    #[test]
    fn the_status_is_inactive_while_paused_and_expired_past_the_link() {
        let now = Utc::now();
        let past = Some(now - TimeDelta::minutes(1));
        let paused = Some(now);
        assert_eq!(Stage::Active.status(paused, None, now), Status::Inactive);
        assert_eq!(Stage::Pending.status(None, past, now), Status::Expired);
        assert_eq!(
            Stage::Pending.status(None, Some(now + TimeDelta::hours(1)), now),
            Status::Pending
        );
        assert_eq!(Stage::Staged.status(None, None, now), Status::Staged);
        assert_eq!(Stage::Active.status(None, past, now), Status::Active);
    }

    #[test]
    fn the_sql_follows_the_same_rules() {
        assert_eq!(
            Stage::next_sql(Event::Contacted, "lifecycle"),
            "CASE WHEN lifecycle = 'active' THEN 'active' ELSE 'pending' END"
        );
        assert_eq!(
            Stage::next_sql(Event::Withdrawn, "lifecycle"),
            "CASE WHEN lifecycle = 'pending' THEN 'staged' ELSE lifecycle END"
        );
        assert!(status_sql("$1").contains("THEN 'expired'"));
    }
}
