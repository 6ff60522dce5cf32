//! Password resets: a single-use, expiring token sent by email (minted by the
//! outbox worker at send time, stored only as a hash), redeemed once to set
//! a new password.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use super::{
    accounts,
    audit::{self, Actor},
    organizations,
    users::UserRow,
};
use crate::{
    db::schema::{action_tokens, users},
    error::{Error, Result},
    outbox,
    state::AppState,
    tokens::PlainToken,
};

/// Queues a reset email to `user`. Call inside the caller's transaction.
pub async fn queue(
    conn: &mut AsyncPgConnection,
    user: &UserRow,
    message_domain: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let email = outbox::Email {
        organization_id: user.organization_id,
        kind: "password_reset",
        recipient: &user.email,
        user_id: user.id,
        invitation_id: None,
    };
    outbox::enqueue(conn, email, message_domain, now).await
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = action_tokens)]
struct Token {
    id: Uuid,
    user_id: Option<Uuid>,
    expires_at: DateTime<Utc>,
    consumed_at: Option<DateTime<Utc>>,
}

/// Sets a new password with a reset token; answers the account, so the
/// person learns their username.
pub async fn complete(
    state: &AppState,
    token: &str,
    new_password: &str,
    client_address: &str,
) -> Result<UserRow> {
    let now = state.clock.now();
    let hash = PlainToken::from_presented(token.trim()).hash();
    let (found, user, organization) = {
        let mut conn = state.pool.get().await?;
        let found = action_tokens::table
            .filter(action_tokens::token_hash.eq(hash.0))
            .filter(action_tokens::kind.eq("password_reset"))
            .select(Token::as_select())
            .first(&mut conn)
            .await
            .optional()?
            .ok_or_else(|| Error::not_found("this reset link is not valid; ask for a new one"))?;
        let user_id = found
            .user_id
            .ok_or_else(|| Error::not_found("this reset link is not valid"))?;
        let user: UserRow = users::table
            .find(user_id)
            .select(UserRow::as_select())
            .first(&mut conn)
            .await?;
        let organization = organizations::find(&mut conn, user.organization_id)
            .await?
            .organization;
        (found, user, organization)
    };
    if found.consumed_at.is_some() {
        return Err(Error::FailedPrecondition(
            "this reset link was already used or replaced by a newer one; ask for a new one".into(),
        ));
    }
    if found.expires_at <= now {
        return Err(Error::FailedPrecondition(
            "this reset link has expired; ask for a new one".into(),
        ));
    }
    if user.deactivated_at.is_some() {
        return Err(Error::PermissionDenied(
            "the account is deactivated; ask your administrator".into(),
        ));
    }
    accounts::check_policy(&organization, &user, new_password, "new_password")?;
    let new_hash = state.hasher.hash(new_password.to_owned()).await?;
    let actor = Actor {
        name: format!("user:{}", user.id),
        client_address: client_address.to_owned(),
    };
    let mut conn = state.pool.get().await?;
    conn.transaction(async |conn| {
        let spent = diesel::update(
            action_tokens::table
                .find(found.id)
                .filter(action_tokens::consumed_at.is_null()),
        )
        .set(action_tokens::consumed_at.eq(now))
        .execute(conn)
        .await?;
        if spent == 0 {
            return Err(Error::FailedPrecondition(
                "this reset link was already used; ask for a new one".into(),
            ));
        }
        let updated = accounts::store_password(conn, user.id, new_hash, false, now).await?;
        accounts::activate(conn, user.id, now).await?;
        audit::record(
            conn,
            &actor,
            user.organization_id,
            "credentials.password_reset",
            ("user", user.id),
            json!({}),
            now,
        )
        .await?;
        Ok(updated)
    })
    .await
}
