//! Invitation emails. The link's token is minted here, at send time: only
//! its hash is stored, so the plaintext exists only in the email. A retry
//! mints a new one, which replaces the old. The token names its invitation,
//! so the hash is found through the invitation's id and needs no index.

use std::{collections::HashMap, sync::LazyLock};

use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    sql_types::{Array, Bytea, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::message::{Composed, Prepared, load_templates, person_vars, render};
use crate::{
    db::Cached,
    domain::templates::Kind,
    error::{Error, Result},
    lifecycle::invitation,
    outbox::claim::Claimed,
    services::Services,
    tokens::PlainToken,
};

static MINT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH minted AS ( \
                   UPDATE invitations i SET token_hash = v.hash, outbox_id = v.outbox_id, \
                     expires_at = $2 + make_interval(secs => o.invitation_ttl_secs) \
                   FROM unnest($1::uuid[], $3::bytea[], $4::uuid[]) AS v(id, hash, outbox_id), \
                     organizations o, users u \
                   WHERE i.id = v.id AND o.id = i.organization_id AND u.id = i.user_id \
                     AND i.state IN {standing} AND u.deactivated_at IS NULL \
                   RETURNING i.id, i.user_id, i.expires_at, o.name AS organization_name, u.first_name, \
                     u.last_name, u.username, i.service_area_id, i.role_id), \
                 pending AS ( \
                   UPDATE users u SET invitation_expires_at = m.expires_at FROM minted m WHERE u.id = m.user_id) \
                 SELECT m.id, m.expires_at, m.organization_name, m.first_name, m.last_name, m.username, \
                   (SELECT name FROM service_areas WHERE id = m.service_area_id) AS service_area, \
                   (SELECT name FROM roles WHERE id = m.role_id) AS role \
                 FROM minted m",
        standing = invitation::standing_sql()
    )
});

/// What an invitation email says.
#[derive(QueryableByName)]
pub struct InvitationContext {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
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

/// Gives each invitation that still stands, for a person not paused, the
/// hash of its new link, its expiry and the email that carries it; answers
/// what their emails say. Changes no indexed column of the invitations, so
/// their new versions are heap-only.
pub async fn mint(
    conn: &mut AsyncPgConnection,
    invitation_ids: &[Uuid],
    hashes: &[Vec<u8>],
    outbox_ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Vec<InvitationContext>> {
    Ok(Cached(
        diesel::sql_query(MINT.as_str())
            .bind::<Array<SqlUuid>, _>(invitation_ids)
            .bind::<Timestamptz, _>(now)
            .bind::<Array<Bytea>, _>(hashes)
            .bind::<Array<SqlUuid>, _>(outbox_ids),
    )
    .load(conn)
    .await?)
}

/// Invitations: a fresh link each, for invitations that still stand and
/// people not paused.
pub async fn prepare(state: &Services, claimed: &[&Claimed]) -> Result<Composed> {
    let now = state.clock.now();
    let tokens: Vec<Option<PlainToken>> = claimed
        .iter()
        .map(|c| c.invitation_id.map(PlainToken::naming))
        .collect();
    let mut invitation_ids = Vec::with_capacity(claimed.len());
    let mut outbox_ids = Vec::with_capacity(claimed.len());
    let mut hashes = Vec::with_capacity(claimed.len());
    for (message, token) in claimed.iter().zip(&tokens) {
        if let (Some(id), Some(token)) = (message.invitation_id, token) {
            invitation_ids.push(id);
            outbox_ids.push(message.id);
            hashes.push(token.hash().0);
        }
    }
    let mut conn = state.pool.get().await?;
    let (contexts, templates) = conn
        .transaction(async |conn| {
            let contexts = mint(conn, &invitation_ids, &hashes, &outbox_ids, now).await?;
            let templates = load_templates(conn, claimed, Kind::Invitation).await?;
            Ok::<_, Error>((contexts, templates))
        })
        .await?;
    drop(conn);

    let contexts: HashMap<Uuid, InvitationContext> = contexts.into_iter().map(|c| (c.id, c)).collect();
    let mut prepared = Vec::with_capacity(claimed.len());
    for (message, token) in claimed.iter().zip(tokens) {
        let context = message.invitation_id.and_then(|id| contexts.get(&id));
        let (Some(context), Some(token)) = (context, token) else {
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
