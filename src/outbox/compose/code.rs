//! Composing emailed second-factor codes: each code is minted when its email
//! is sent and stored only as a keyed hash.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::message::{Composed, load_templates, person_gone, person_vars, render};
use crate::{
    db::schema::{organizations, users},
    domain::{second_factor, templates::Kind, users::UserRow},
    error::{Error, Result},
    lifecycle::token::TokenKind,
    outbox::claim::Claimed,
    services::Services,
};

pub async fn prepare(state: &Services, claimed: &[&Claimed]) -> Result<Composed> {
    let now = state.clock.now();
    let secrets = state.secrets.as_deref();
    let mut conn = state.pool.get().await?;
    let (codes, templates) = conn
        .transaction(async |conn| {
            let mut codes = Vec::new();
            for message in claimed {
                let Some(user_id) = message.user_id else {
                    continue;
                };
                let found: Option<(UserRow, String)> = users::table
                    .inner_join(organizations::table)
                    .filter(users::id.eq(user_id))
                    .filter(users::deactivated_at.is_null())
                    .select((UserRow::as_select(), organizations::name))
                    .first(conn)
                    .await
                    .optional()?;
                if let Some((user, organization_name)) = found {
                    let (code, expires_at) = second_factor::issue_code(
                        conn,
                        secrets,
                        &user,
                        message.invitation_id,
                        TokenKind::EmailCode.name(),
                        now,
                    )
                    .await?;
                    codes.push((message.id, user, organization_name, code, expires_at));
                }
            }
            let templates = load_templates(conn, claimed, Kind::EmailCode).await?;
            Ok::<_, Error>((codes, templates))
        })
        .await?;
    drop(conn);
    Ok(claimed
        .iter()
        .map(|message| {
            let Some((_, user, organization_name, code, expires_at)) =
                codes.iter().find(|c| c.0 == message.id)
            else {
                return person_gone(message);
            };
            let mut vars = person_vars(
                organization_name,
                &user.first_name,
                &user.last_name,
                &message.recipient,
                &user.username,
                *expires_at,
            );
            vars.insert("code", code.clone());
            (
                message.id,
                render(state, message, &templates, Kind::EmailCode, &vars),
            )
        })
        .collect())
}
