//! Turning claimed messages into emails, one composer per kind, chosen in
//! `compose`: adding a kind of email adds its composer there. The secret
//! each email carries (an invitation token, a temporary password, a reset
//! link, a code) is minted by its composer at send time: only its hash is
//! stored, so the plaintext exists only in the email.

mod code;
mod credentials;
pub mod invitation;
pub mod message;
mod reset_link;

pub use credentials::temporary_password;
pub use message::Prepared;

use uuid::Uuid;

use super::claim::Claimed;
use crate::{error::Result, lifecycle::email_kind::EmailKind, services::Services};

/// Prepares the emails of `claimed`; answers one entry per message.
pub async fn prepare(state: &Services, claimed: &[Claimed]) -> Result<Vec<(Uuid, Prepared)>> {
    let mut prepared = Vec::with_capacity(claimed.len());
    for kind in EmailKind::ALL {
        let messages: Vec<&Claimed> = claimed.iter().filter(|c| c.kind == *kind).collect();
        if !messages.is_empty() {
            prepared.extend(compose(state, *kind, &messages).await?);
        }
    }
    Ok(prepared)
}

/// The composer of each kind.
async fn compose(state: &Services, kind: EmailKind, messages: &[&Claimed]) -> Result<message::Composed> {
    match kind {
        EmailKind::Invitation => invitation::prepare(state, messages).await,
        EmailKind::Credentials => credentials::prepare(state, messages).await,
        EmailKind::Welcome | EmailKind::PasswordReset => reset_link::prepare(state, messages, kind).await,
        EmailKind::EmailCode => code::prepare(state, messages).await,
    }
}
