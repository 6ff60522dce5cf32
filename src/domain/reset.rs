//! Password resets: a single-use, expiring token sent by email (minted by the
//! outbox worker at send time, stored only as a hash), redeemed once to set
//! a new password.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use serde_json::json;

use super::{
    accounts,
    audit::{self, Actor},
    organizations::Organization,
    rate_limit,
    users::UserRow,
};
use crate::{
    db::{
        Cached,
        schema::{action_tokens, organizations, users},
    },
    domain::outbox,
    error::{Error, Result},
    lifecycle::{token::TokenKind, user::Stage},
    services::Services,
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
        kind: crate::lifecycle::email_kind::EmailKind::PasswordReset,
        recipient: &user.email,
        user_id: user.id,
        invitation_id: None,
        batch: None,
    };
    outbox::enqueue(conn, &[email], message_domain, now).await
}

/// Reset emails one account may be sent per hour.
const RESETS_PER_ACCOUNT_PER_HOUR: i32 = 3;

/// A person asking for a reset link by email or username: an active
/// account is sent one, at most three an hour, and the request is audited;
/// anything else (no such account, a deactivated one, the hourly limit)
/// quietly sends nothing, so the caller's answer never tells them apart.
pub async fn request(app: &Services, organization_id: Uuid, login: &str, client_address: &str) -> Result<()> {
    let now = app.clock.now();
    let mut pooled = app.pool.get().await?;
    let conn = &mut *pooled;
    let Some((_, Some(accounts::Account { user, .. }))) =
        accounts::find_with_organization(conn, organization_id, login).await?
    else {
        return Ok(());
    };
    if user.deactivated_at.is_some() {
        return Ok(());
    }
    let bucket = format!("reset-account:{}", user.id);
    let hour = chrono::TimeDelta::hours(1);
    if !rate_limit::allow(conn, &bucket, RESETS_PER_ACCOUNT_PER_HOUR, hour, now).await? {
        return Ok(());
    }
    let actor = Actor {
        name: "public".into(),
        client_address: client_address.to_owned(),
    };
    queue(conn, &user, &app.message_domain, now).await?;
    let target = ("user", user.id);
    audit::record(
        conn,
        &actor,
        organization_id,
        "credentials.reset_requested",
        target,
        json!({}),
        now,
    )
    .await
}

static COMPLETE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH spent AS (UPDATE action_tokens SET consumed_at = $1 WHERE id = $2 AND consumed_at IS NULL \
           RETURNING id), \
         updated AS (UPDATE users SET password_hash = $3, must_change_password = false, \
             password_expires_at = NULL, failed_sign_ins = 0, locked_until = NULL, updated_at = $1, \
             activated_at = CASE WHEN lifecycle = {active} THEN activated_at ELSE $1 END, \
             invitation_expires_at = CASE WHEN lifecycle = {active} THEN invitation_expires_at END, \
             lifecycle = {active} \
           WHERE id = $4 AND EXISTS (SELECT 1 FROM spent) RETURNING id, organization_id), \
         {retiring}, \
         audit AS (INSERT INTO audit_events (id, organization_id, actor, action, target_type, target_id, \
             client_address, details, created_at) \
           SELECT $5, organization_id, 'user:' || id::text, 'credentials.password_reset', 'user', id::text, \
             $6, '{{}}'::jsonb, $1 FROM updated) \
         SELECT id FROM updated",
        active = Stage::Active.sql(),
        retiring = accounts::retiring_ctes("$4", "$1", "updated", "$2")
    )
});

#[derive(Queryable, Selectable)]
#[diesel(table_name = action_tokens)]
struct Token {
    id: Uuid,
    expires_at: DateTime<Utc>,
    consumed_at: Option<DateTime<Utc>>,
}

/// What a live reset link is for.
pub struct Offered {
    pub organization: Organization,
    pub expires_at: DateTime<Utc>,
}

/// The token of a reset link, its account and the organisation, checked
/// as completing it would check them.
async fn live(
    conn: &mut AsyncPgConnection,
    token: &str,
    now: DateTime<Utc>,
) -> Result<(Token, UserRow, Organization)> {
    let hash = PlainToken::from_presented(token.trim()).hash();
    let (found, user, organization) = action_tokens::table
        .inner_join(users::table.on(users::id.nullable().eq(action_tokens::user_id)))
        .inner_join(organizations::table.on(organizations::id.eq(users::organization_id)))
        .filter(action_tokens::token_hash.eq(hash.0))
        .filter(action_tokens::kind.eq(TokenKind::PasswordReset))
        .select((
            Token::as_select(),
            UserRow::as_select(),
            Organization::as_select(),
        ))
        .first::<(Token, UserRow, Organization)>(conn)
        .await
        .optional()?
        .ok_or_else(|| Error::not_found("this reset link is not valid; ask for a new one"))?;
    if found.consumed_at.is_some() {
        return Err(Error::Refused {
            reason: "RESET_LINK_USED",
            message: "this reset link was already used or replaced by a newer one; ask for a new one".into(),
        });
    }
    if found.expires_at <= now {
        return Err(Error::Refused {
            reason: "RESET_LINK_EXPIRED",
            message: "this reset link has expired; ask for a new one".into(),
        });
    }
    if user.deactivated_at.is_some() {
        return Err(Error::PermissionDenied(
            "the account is deactivated; ask your administrator".into(),
        ));
    }
    Ok((found, user, organization))
}

/// What a reset link is for, without spending it (mail scanners open
/// links); the email that carried it is marked opened.
pub async fn offered(app: &Services, token: &str) -> Result<Offered> {
    let now = app.clock.now();
    let mut pooled = app.pool.get().await?;
    let conn = &mut *pooled;
    let (found, _, organization) = live(conn, token, now).await?;
    Cached(
        diesel::sql_query(
            "UPDATE outbox SET opened_at = $2 \
             WHERE id = (SELECT outbox_id FROM action_tokens WHERE id = $1) AND opened_at IS NULL",
        )
        .bind::<SqlUuid, _>(found.id)
        .bind::<Timestamptz, _>(now),
    )
    .execute(conn)
    .await?;
    Ok(Offered {
        organization,
        expires_at: found.expires_at,
    })
}

#[derive(QueryableByName)]
struct Updated {
    #[diesel(sql_type = SqlUuid)]
    #[allow(dead_code, reason = "a row at all is the answer")]
    id: Uuid,
}

/// Sets a new password with a reset token; answers the account (as read
/// before the change: its id and username), so the person learns their
/// username.
pub async fn complete(
    state: &Services,
    token: &str,
    new_password: &str,
    client_address: &str,
) -> Result<UserRow> {
    let now = state.clock.now();
    // The token, its account and the organisation's policy in one query.
    let (found, user, organization) = {
        let mut conn = state.pool.get().await?;
        live(&mut conn, token, now).await?
    };
    accounts::check_policy(&organization, &user, new_password, "new_password")?;
    let new_hash = state.hasher.hash(new_password.to_owned()).await?;
    // Spending the token, the new password, activation, retiring the other
    // ways in and the audit event in one statement: all or nothing, in one
    // round trip.
    let mut conn = state.pool.get().await?;
    let updated: Option<Updated> = Cached(
        diesel::sql_query(COMPLETE.as_str())
            .bind::<Timestamptz, _>(now)
            .bind::<SqlUuid, _>(found.id)
            .bind::<Text, _>(new_hash)
            .bind::<SqlUuid, _>(user.id)
            .bind::<SqlUuid, _>(Uuid::now_v7())
            .bind::<Text, _>(client_address),
    )
    .get_result(&mut conn)
    .await
    .optional()?;
    updated.map(|_| user).ok_or_else(|| {
        Error::FailedPrecondition("this reset link was already used; ask for a new one".into())
    })
}
