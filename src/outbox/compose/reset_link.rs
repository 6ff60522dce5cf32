//! Reset and welcome emails: a fresh single-use reset token each, minted
//! here and stored only as its hash. Older unused tokens of the same people
//! stop working, so only the newest link does.

use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    sql_types::{Array, Bytea, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use super::message::{Composed, load_templates, person_gone, person_vars, render};
use crate::{
    db::Cached,
    domain::templates::Kind,
    error::{Error, Result},
    lifecycle::token::TokenKind,
    outbox::claim::Claimed,
    services::Services,
    tokens::PlainToken,
};

#[derive(QueryableByName)]
struct Minted {
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    username: String,
    #[diesel(sql_type = Text)]
    first_name: String,
    #[diesel(sql_type = Text)]
    last_name: String,
    #[diesel(sql_type = Text)]
    organization_name: String,
}

/// Reset and welcome emails: a fresh single-use reset token each. Older
/// unused tokens of the same people stop working, so only the newest link
/// does.
pub async fn prepare(state: &Services, claimed: &[&Claimed], kind: Kind) -> Result<Composed> {
    let now = state.clock.now();
    let tokens: Vec<PlainToken> = claimed.iter().map(|_| PlainToken::generate("")).collect();
    let user_ids: Vec<Uuid> = claimed.iter().map(|c| c.user_id.unwrap_or_default()).collect();
    let outbox_ids: Vec<Uuid> = claimed.iter().map(|c| c.id).collect();
    let hashes: Vec<Vec<u8>> = tokens.iter().map(|t| t.hash().0).collect();
    let mut conn = state.pool.get().await?;
    let (minted, templates) = conn
        .transaction(async |conn| {
            Cached(
                diesel::sql_query(
                    "UPDATE action_tokens SET consumed_at = $2 \
                     WHERE user_id = ANY($1) AND kind = $3 AND consumed_at IS NULL",
                )
                .bind::<Array<SqlUuid>, _>(&user_ids)
                .bind::<Timestamptz, _>(now)
                .bind::<Text, _>(TokenKind::PasswordReset),
            )
            .execute(conn)
            .await?;
            let minted: Vec<Minted> = Cached(diesel::sql_query(
                "WITH minted AS ( \
                   INSERT INTO action_tokens (id, organization_id, user_id, kind, token_hash, created_at, \
                     expires_at, outbox_id) \
                   SELECT gen_random_uuid(), u.organization_id, u.id, $5, v.hash, $3, \
                     $3 + make_interval(secs => o.reset_link_ttl_secs), v.outbox_id \
                   FROM unnest($1::uuid[], $2::bytea[], $4::uuid[]) AS v(user_id, hash, outbox_id) \
                   JOIN users u ON u.id = v.user_id AND u.deactivated_at IS NULL \
                   JOIN organizations o ON o.id = u.organization_id \
                   RETURNING user_id, expires_at) \
                 SELECT m.user_id, m.expires_at, u.username, u.first_name, u.last_name, o.name AS organization_name \
                 FROM minted m JOIN users u ON u.id = m.user_id JOIN organizations o ON o.id = u.organization_id",
            )
            .bind::<Array<SqlUuid>, _>(&user_ids)
            .bind::<Array<Bytea>, _>(&hashes)
            .bind::<Timestamptz, _>(now)
            .bind::<Array<SqlUuid>, _>(&outbox_ids)
            .bind::<Text, _>(TokenKind::PasswordReset))
            .load(conn)
            .await?;
            let templates = load_templates(conn, claimed, kind).await?;
            Ok::<_, Error>((minted, templates))
        })
        .await?;
    drop(conn);
    Ok(claimed
        .iter()
        .zip(tokens)
        .map(|(message, token)| {
            let Some(person) = message
                .user_id
                .and_then(|id| minted.iter().find(|m| m.user_id == id))
            else {
                return person_gone(message);
            };
            let mut vars = person_vars(
                &person.organization_name,
                &person.first_name,
                &person.last_name,
                &message.recipient,
                &person.username,
                person.expires_at,
            );
            vars.insert("link", state.config.links.reset_for(token.expose()));
            (message.id, render(state, message, &templates, kind, &vars))
        })
        .collect())
}
