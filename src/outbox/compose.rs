//! Turning claimed messages into emails. The secret each email carries (an
//! invitation token, a temporary password, a code) is minted here, at send
//! time: only its hash is stored, so the plaintext exists only in the email.
//! A retry mints a new one, which replaces the old.

use crate::db::Cached;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    sql_types::{Array, Bytea, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use lettre::{
    Message,
    message::{Mailbox, MultiPart, header},
};
use uuid::Uuid;

use super::claim::Claimed;
use crate::{
    domain::templates::{self, DEFAULT_LOCALE, Kind, Rendered, Vars},
    error::{Error, Result},
    services::Services,
    tokens::PlainToken,
};

/// An email ready to send, or why the message will not be sent.
pub enum Prepared {
    Ready(Box<Message>),
    Skip(String),
}

#[derive(QueryableByName)]
struct InvitationContext {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    organization_name: String,
    #[diesel(sql_type = Text)]
    first_name: String,
    #[diesel(sql_type = Text)]
    last_name: String,
    #[diesel(sql_type = Text)]
    username: String,
    #[diesel(sql_type = Nullable<Text>)]
    service_area: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    role: Option<String>,
}

/// Prepares the emails of `claimed`; answers one entry per message.
pub async fn prepare(state: &Services, claimed: &[Claimed]) -> Result<Vec<(Uuid, Prepared)>> {
    let of = |kind: &str| claimed.iter().filter(|c| c.kind == kind).collect::<Vec<_>>();
    let mut prepared = Vec::with_capacity(claimed.len());
    for kind in [
        "invitation",
        "credentials",
        "password_reset",
        "welcome",
        "email_code",
    ] {
        let messages = of(kind);
        if messages.is_empty() {
            continue;
        }
        prepared.extend(match kind {
            "invitation" => prepare_invitations(state, &messages).await?,
            "credentials" => super::credentials::prepare(state, &messages).await?,
            "welcome" => super::credentials::prepare_reset_links(state, &messages, Kind::Welcome).await?,
            "email_code" => super::codes::prepare(state, &messages).await?,
            _ => super::credentials::prepare_reset_links(state, &messages, Kind::PasswordReset).await?,
        });
    }
    let unknown: Vec<&Claimed> = claimed
        .iter()
        .filter(|c| !prepared.iter().any(|(id, _)| *id == c.id))
        .collect();
    for other in unknown {
        prepared.push((
            other.id,
            Prepared::Skip(format!("{} emails are not sent this way", other.kind)),
        ));
    }
    Ok(prepared)
}

async fn prepare_invitations(state: &Services, claimed: &[&Claimed]) -> Result<Vec<(Uuid, Prepared)>> {
    let now = state.clock.now();
    let tokens: Vec<PlainToken> = claimed.iter().map(|_| PlainToken::generate("")).collect();
    let (invitation_ids, outbox_ids): (Vec<Uuid>, Vec<Uuid>) = claimed
        .iter()
        .filter_map(|c| c.invitation_id.map(|i| (i, c.id)))
        .unzip();
    let hashes: Vec<Vec<u8>> = tokens.iter().map(|t| t.hash().0).collect();
    let mut conn = state.pool.get().await?;
    let (contexts, templates) = conn
        .transaction(async |conn| {
            // Only invitations that still stand, for people not paused.
            let contexts: Vec<InvitationContext> = Cached(diesel::sql_query(
                "WITH minted AS ( \
                   UPDATE invitations i SET token_hash = v.hash, outbox_id = v.outbox_id, \
                     expires_at = $2 + make_interval(secs => o.invitation_ttl_secs) \
                   FROM unnest($1::uuid[], $3::bytea[], $4::uuid[]) AS v(id, hash, outbox_id), \
                     organizations o, users u \
                   WHERE i.id = v.id AND o.id = i.organization_id AND u.id = i.user_id \
                     AND i.state IN ('queued', 'sent', 'opened', 'failed') AND u.deactivated_at IS NULL \
                   RETURNING i.id, i.user_id, i.expires_at, o.name AS organization_name, u.first_name, \
                     u.last_name, u.username, i.service_area_id, i.role_id), \
                 pending AS ( \
                   UPDATE users u SET invitation_expires_at = m.expires_at FROM minted m WHERE u.id = m.user_id) \
                 SELECT m.id, m.expires_at, m.organization_name, m.first_name, m.last_name, m.username, \
                   (SELECT name FROM service_areas WHERE id = m.service_area_id) AS service_area, \
                   (SELECT name FROM roles WHERE id = m.role_id) AS role \
                 FROM minted m",
            )
            .bind::<Array<SqlUuid>, _>(&invitation_ids)
            .bind::<Timestamptz, _>(now)
            .bind::<Array<Bytea>, _>(&hashes)
            .bind::<Array<SqlUuid>, _>(&outbox_ids))
            .load(conn)
            .await?;
            let templates = load_templates(conn, claimed, Kind::Invitation).await?;
            Ok::<_, Error>((contexts, templates))
        })
        .await?;
    drop(conn);

    let contexts: HashMap<Uuid, InvitationContext> = contexts.into_iter().map(|c| (c.id, c)).collect();
    let mut prepared = Vec::with_capacity(claimed.len());
    for (message, token) in claimed.iter().zip(tokens) {
        let context = message.invitation_id.and_then(|id| contexts.get(&id));
        let Some(context) = context else {
            prepared.push((
                message.id,
                Prepared::Skip("the invitation was revoked or the user paused".into()),
            ));
            continue;
        };
        let mut vars = person_vars(
            &context.organization_name,
            &context.first_name,
            &context.last_name,
            &message.recipient,
            &context.username,
            context.expires_at,
        );
        vars.insert("link", state.config.links.invitation_for(token.expose()));
        let area = context.service_area.clone().unwrap_or_default();
        let role = context.role.clone().unwrap_or_default();
        let access = match (area.is_empty(), role.is_empty()) {
            (false, false) => format!(" ({area}, {role})"),
            (false, true) => format!(" ({area})"),
            (true, false) => format!(" ({role})"),
            (true, true) => String::new(),
        };
        vars.insert("access_phrase", access);
        vars.insert("service_area", area);
        vars.insert("role", role);
        prepared.push((
            message.id,
            render(state, message, &templates, Kind::Invitation, &vars),
        ));
    }
    Ok(prepared)
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

pub use crate::domain::templates::person_vars;

/// Renders the organisation's template of `kind` (or the default) and
/// builds the email.
pub fn render(
    state: &Services,
    message: &Claimed,
    templates: &HashMap<Uuid, templates::Template>,
    kind: Kind,
    vars: &Vars,
) -> Prepared {
    let template = templates
        .get(&message.organization_id)
        .cloned()
        .unwrap_or_else(|| templates::default_template(kind));
    email(state, message, &templates::render(&template, vars))
}

/// Builds the MIME message: text and HTML parts, and the stable Message-ID
/// of the outbox row, so a retried send is recognisably the same email.
fn email(state: &Services, message: &Claimed, rendered: &Rendered) -> Prepared {
    let from = state.config.mail_from.clone();
    let to: Mailbox = match message.recipient.parse() {
        Ok(to) => to,
        Err(e) => return Prepared::Skip(format!("the address cannot be used: {e}")),
    };
    let built = Message::builder()
        .from(from)
        .to(to)
        .subject(&rendered.subject)
        .message_id(Some(message.message_id.clone()))
        .header(header::Date::new(std::time::SystemTime::now()))
        .multipart(MultiPart::alternative_plain_html(
            rendered.text.clone(),
            rendered.html.clone(),
        ));
    match built {
        Ok(built) => Prepared::Ready(Box::new(built)),
        Err(e) => Prepared::Skip(format!("the email cannot be built: {e}")),
    }
}
