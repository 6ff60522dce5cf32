//! What every composer shares: the organisations' templates, rendering,
//! and the MIME message with its stable Message-ID.

use std::collections::HashMap;

use diesel_async::AsyncPgConnection;
use lettre::{
    Address, Message,
    address::Envelope,
    message::{Mailbox, MultiPart, header},
};
use uuid::Uuid;

pub use crate::domain::templates::person_vars;
use crate::{
    domain::templates::{self, DEFAULT_LOCALE, Kind, Rendered, Vars},
    error::Result,
    outbox::claim::Claimed,
    services::Services,
};

/// An email ready to send, or why the message will not be sent.
pub enum Prepared {
    Ready(Box<Message>),
    Skip(String),
}

/// Each claimed message with what became of it.
pub type Composed = Vec<(Uuid, Prepared)>;

/// The skip of a message whose person is gone or paused.
pub fn person_gone(message: &Claimed) -> (Uuid, Prepared) {
    (
        message.id,
        Prepared::Skip("the user was deleted or paused".into()),
    )
}

/// The templates of each organisation among the messages.
pub async fn load_templates(
    conn: &mut AsyncPgConnection,
    claimed: &[&Claimed],
    kind: Kind,
) -> Result<HashMap<Uuid, templates::Template>> {
    let mut found = HashMap::new();
    for message in claimed {
        if let std::collections::hash_map::Entry::Vacant(slot) = found.entry(message.organization_id) {
            slot.insert(templates::load(conn, message.organization_id, kind, DEFAULT_LOCALE).await?);
        }
    }
    Ok(found)
}

/// Renders the organisation's template of `kind` (or the default) and
/// builds the email.
pub fn render(
    state: &Services,
    message: &Claimed,
    templates: &HashMap<Uuid, templates::Template>,
    kind: Kind,
    vars: &Vars,
) -> Prepared {
    let default;
    let template = match templates.get(&message.organization_id) {
        Some(template) => template,
        None => {
            default = templates::default_template(kind);
            &default
        }
    };
    email(
        &state.config.mail_from,
        &message.recipient,
        &message.message_id,
        templates::render(template, vars),
    )
}

/// Builds the MIME message: text and HTML parts, and the stable Message-ID
/// of the outbox row, so a retried send is recognisably the same email.
/// The envelope is given, not read back from the headers just written,
/// which would parse both addresses again.
pub fn email(from: &Mailbox, recipient: &str, message_id: &str, rendered: Rendered) -> Prepared {
    // A stored recipient is a bare address (`validate::email`): parsed as
    // one, without the display-name grammar of a mailbox.
    let to: Address = match recipient.parse() {
        Ok(to) => to,
        Err(e) => return Prepared::Skip(format!("the address cannot be used: {e}")),
    };
    let envelope = match Envelope::new(Some(from.email.clone()), vec![to.clone()]) {
        Ok(envelope) => envelope,
        Err(e) => return Prepared::Skip(format!("the address cannot be used: {e}")),
    };
    let Rendered { subject, text, html } = rendered;
    let built = Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, to))
        .subject(subject)
        .message_id(Some(message_id.to_owned()))
        .header(header::Date::new(std::time::SystemTime::now()))
        .envelope(envelope)
        .multipart(MultiPart::alternative_plain_html(text, html));
    match built {
        Ok(built) => Prepared::Ready(Box::new(built)),
        Err(e) => Prepared::Skip(format!("the email cannot be built: {e}")),
    }
}
