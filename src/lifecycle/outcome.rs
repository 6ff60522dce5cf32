//! A bulk send's result for one recipient. It is empty (outstanding) until
//! it becomes final, once: at once for a recipient refused (invalid, listed
//! twice, already a member, already invited), or when the SMTP server
//! accepts or refuses the email. A final result never changes.

use super::stored;

stored! {
    /// A recipient's final result.
    pub enum Outcome {
        Sent = "sent",
        InvalidAddress = "invalid_address",
        DuplicateInRequest = "duplicate_in_request",
        AlreadyMember = "already_member",
        AlreadyInvited = "already_invited",
        Failed = "failed",
    }
}

impl Outcome {
    /// The result after `settled` arrives for a recipient that has `current`:
    /// the first final result stays.
    pub fn settle(current: Option<Outcome>, settled: Outcome) -> Outcome {
        current.unwrap_or(settled)
    }

    /// Whether it is known before any email is sent.
    pub fn is_refusal(self) -> bool {
        !matches!(self, Outcome::Sent | Outcome::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outstanding_recipient_takes_the_first_result_and_keeps_it() {
        assert_eq!(Outcome::settle(None, Outcome::Sent), Outcome::Sent);
        assert_eq!(
            Outcome::settle(Some(Outcome::Sent), Outcome::Failed),
            Outcome::Sent
        );
        assert_eq!(
            Outcome::settle(Some(Outcome::Failed), Outcome::Sent),
            Outcome::Failed
        );
    }

    #[test]
    fn refusals_are_final_before_any_email() {
        for outcome in Outcome::ALL {
            assert_eq!(
                outcome.is_refusal(),
                !matches!(outcome, Outcome::Sent | Outcome::Failed)
            );
            assert_eq!(Outcome::parse(outcome.name()), Some(*outcome));
        }
    }
}
