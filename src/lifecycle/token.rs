//! The kinds of one-time token (`action_tokens`): each is stored only as a
//! hash, expires, and is spent once.

use super::stored;

stored! {
    /// A kind of one-time token.
    pub enum TokenKind {
        /// The link of a reset or welcome email.
        PasswordReset = "password_reset",
        /// A six-digit code sent by email.
        EmailCode = "email_code",
        /// A six-digit code sent by SMS.
        SmsCode = "sms_code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_by_name() {
        for kind in TokenKind::ALL {
            assert_eq!(TokenKind::parse(kind.name()), Some(*kind));
        }
        assert_eq!(TokenKind::EmailCode.sql(), "'email_code'");
    }
}
