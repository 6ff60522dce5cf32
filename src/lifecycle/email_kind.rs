//! The kinds of email Onramp sends: each has a template, a composer in the
//! outbox, and (but the code) can be sent in bulk.

use super::stored;

stored! {
    /// A kind of email.
    pub enum EmailKind {
        /// An invitation link to self-register.
        Invitation = "invitation",
        /// A username and a temporary password.
        Credentials = "credentials",
        /// A link to set a new password, for someone who lost theirs.
        PasswordReset = "password_reset",
        /// A welcome with a link to set a first password.
        Welcome = "welcome",
        /// A six-digit second-factor code.
        EmailCode = "email_code",
    }
}

impl EmailKind {
    /// The kinds a bulk send may send: every kind but the code, which goes
    /// to one person when they ask for it.
    pub const BULK: [EmailKind; 4] = [
        EmailKind::Invitation,
        EmailKind::Credentials,
        EmailKind::Welcome,
        EmailKind::PasswordReset,
    ];

    /// Whether the email carries a reset link (a password-reset token).
    pub fn carries_reset_link(self) -> bool {
        matches!(self, EmailKind::PasswordReset | EmailKind::Welcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_by_name_and_the_code_is_never_sent_in_bulk() {
        for kind in EmailKind::ALL {
            assert_eq!(EmailKind::parse(kind.name()), Some(*kind));
            assert_eq!(kind.sql(), format!("'{}'", kind.name()));
        }
        assert_eq!(EmailKind::parse("letter"), None);
        assert!(!EmailKind::BULK.contains(&EmailKind::EmailCode));
        assert!(EmailKind::Welcome.carries_reset_link() && EmailKind::PasswordReset.carries_reset_link());
        assert!(!EmailKind::Invitation.carries_reset_link());
    }
}
