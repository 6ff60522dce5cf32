//! Completing a registration: the profile, the password, the second factor
//! and the terms, from an invitation link to an active account.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Jsonb, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use super::{Invited, accept_terms, find, refusal};
use crate::{
    db::{
        Cached,
        schema::{invitations, users as users_table},
    },
    domain::{
        accounts,
        audit::Actor,
        invitations::manage::Invitation,
        second_factor,
        users::{self, User, UserRow},
    },
    error::{Error, Result},
    lifecycle::{invitation, user::Stage},
    services::Services,
};

/// What a person gives to finish registering, already validated.
pub struct Completion {
    pub first_name: String,
    pub last_name: String,
    pub mobile: String,
    pub password: String,
    /// The second factor chosen, with its proof.
    pub second_factor: Option<(String, String)>,
    pub accepted_terms_version: i32,
}

/// Registers the person of a link. The password is hashed before any
/// transaction; the invitation is locked and checked again inside it, so of
/// two completions of one link exactly one succeeds.
pub async fn complete(state: &Services, token: &str, form: Completion, client_address: &str) -> Result<User> {
    let now = state.clock.now();
    let invited = {
        let mut conn = state.pool.get().await?;
        find(&mut conn, token, now).await?
    };
    let org = &invited.organization.organization;
    let current_terms = org.terms_version;
    if current_terms > 0 && form.accepted_terms_version != current_terms {
        return Err(Error::invalid(
            "accepted_terms_version",
            format!("accept the current terms, version {current_terms}"),
        ));
    }
    let allowed = invited.methods();
    match &form.second_factor {
        Some((method, _)) if !allowed.contains(method) => {
            return Err(Error::invalid(
                "second_factor_method",
                format!("the organisation allows {}", allowed.join(", ")),
            ));
        }
        None if org.second_factor_required => {
            return Err(Error::invalid(
                "second_factor_method",
                format!(
                    "the organisation requires a second factor: one of {}",
                    allowed.join(", ")
                ),
            ));
        }
        _ => {}
    }
    accounts::check_policy(org, &invited.user, &form.password, "password")?;
    let mut totp_step = None;
    if let Some((method, code)) = &form.second_factor {
        // Checked on its own, before the transaction: a wrong try must count
        // even though the registration then fails.
        totp_step = prove(state, &invited.user, method, code).await?.ok_or_else(|| {
            Error::invalid(
                "second_factor_code",
                "the code is wrong or has expired; after five wrong tries, ask for a new one",
            )
        })?;
    }
    let hash = state.hasher.hash(form.password.clone()).await?;
    let actor = Actor {
        name: format!("user:{}", invited.user.id),
        client_address: client_address.to_owned(),
    };
    let registering = Registering {
        invited: &invited,
        form: &form,
        hash,
        totp_step,
        actor,
        current_terms,
        now,
    };
    let mut conn = state.pool.get().await?;
    // One statement accepts the invitation and does the rest; a second
    // factor or terms to record make it a transaction of several.
    if form.second_factor.is_some() || current_terms > 0 {
        conn.transaction(async |conn| registering.write(conn).await)
            .await?;
    } else {
        registering.write(&mut conn).await?;
    }
    users::find(&mut conn, org.id, invited.user.id, now).await
}

/// Accepts the invitation (only if it still works and its person is neither
/// active nor paused: of two completions racing, the second finds it
/// accepted), then the profile, the password, activation, the invited
/// access, the retirement of other ways in and the audit event.
static COMPLETE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH accepted AS (UPDATE invitations SET state = {accepted}, accepted_at = $6 \
           WHERE id = $11 AND {usable} \
             AND EXISTS (SELECT 1 FROM users WHERE id = $1 AND lifecycle <> {active} \
               AND deactivated_at IS NULL) \
           RETURNING service_area_id, role_id), \
         updated AS (UPDATE users SET first_name = $2, last_name = $3, mobile = $4, \
             password_hash = $5, must_change_password = false, password_expires_at = NULL, \
             failed_sign_ins = 0, locked_until = NULL, updated_at = $6, activated_at = $6, \
             invitation_expires_at = NULL, lifecycle = {active} \
           WHERE id = $1 AND EXISTS (SELECT 1 FROM accepted) RETURNING id, organization_id), \
         granted AS (INSERT INTO access_grants (user_id, service_area_id, role_id) \
           SELECT u.id, a.service_area_id, a.role_id FROM updated u, accepted a \
           WHERE a.service_area_id IS NOT NULL AND a.role_id IS NOT NULL \
           ON CONFLICT DO NOTHING), \
         {retiring}, \
         audit AS (INSERT INTO audit_events (id, organization_id, actor, action, target_type, \
             target_id, client_address, details, created_at) \
           SELECT $7, organization_id, $8, 'registration.complete', 'user', id::text, $9, $10, $6 \
           FROM updated) \
         SELECT id FROM updated",
        accepted = invitation::State::Accepted.sql(),
        usable = invitation::usable_sql("", "$6"),
        active = Stage::Active.sql(),
        retiring = accounts::retiring_ctes("$1", "$6", "updated", "$11")
    )
});

/// A registration's writes, once its password is hashed.
struct Registering<'a> {
    invited: &'a Invited,
    form: &'a Completion,
    hash: String,
    totp_step: Option<i64>,
    actor: Actor,
    current_terms: i32,
    now: DateTime<Utc>,
}

impl Registering<'_> {
    async fn write(&self, conn: &mut AsyncPgConnection) -> Result<()> {
        let (user_id, now) = (self.invited.user.id, self.now);
        if let Some((method, _)) = &self.form.second_factor {
            let sealed = if method == "totp" {
                second_factor::enrolled(conn, user_id).await?.and_then(|(_, s)| s)
            } else {
                None
            };
            second_factor::enroll(conn, user_id, method, sealed, self.totp_step, now).await?;
        }
        if self.current_terms > 0 {
            accept_terms(
                conn,
                &self.invited.user,
                self.current_terms,
                &self.actor.client_address,
                now,
            )
            .await?;
        }
        let details = json!({
            "invitation_id": self.invited.invitation.id.to_string(),
            "second_factor": self.form.second_factor.as_ref().map(|(m, _)| m.clone()),
            "terms_version": self.current_terms,
        });
        let finished = Cached(
            diesel::sql_query(COMPLETE.as_str())
                .bind::<SqlUuid, _>(user_id)
                .bind::<Text, _>(&self.form.first_name)
                .bind::<Text, _>(&self.form.last_name)
                .bind::<Text, _>(&self.form.mobile)
                .bind::<Text, _>(&self.hash)
                .bind::<Timestamptz, _>(now)
                .bind::<SqlUuid, _>(Uuid::now_v7())
                .bind::<Text, _>(&self.actor.name)
                .bind::<Text, _>(&self.actor.client_address)
                .bind::<Jsonb, _>(details)
                .bind::<SqlUuid, _>(self.invited.invitation.id),
        )
        .execute(conn)
        .await?;
        if finished == 1 {
            return Ok(());
        }
        // Not accepted: say why, from the invitation and person as they are
        // now.
        let (current, user): (Invitation, UserRow) = invitations::table
            .inner_join(users_table::table)
            .filter(invitations::id.eq(self.invited.invitation.id))
            .select((Invitation::as_select(), UserRow::as_select()))
            .first(conn)
            .await?;
        Err(refusal(&current, &user, now).unwrap_or_else(|| Error::Refused {
            reason: "INVITATION_EXPIRED",
            message: "this invitation no longer works; you can ask for a new one".into(),
        }))
    }
}

/// Whether `code` proves the second factor being set up.
/// `None` when it does not; for an authenticator app, the time step of the
/// code, which is then spent: it cannot sign in as well.
async fn prove(state: &Services, user: &UserRow, method: &str, code: &str) -> Result<Option<Option<i64>>> {
    let now = state.clock.now();
    let secrets = state.secrets.as_deref();
    let mut conn = state.pool.get().await?;
    if method == "totp" {
        let sealed = second_factor::enrolled(&mut conn, user.id)
            .await?
            .and_then(|(_, s)| s);
        let secret = sealed.as_deref().and_then(|s| secrets.and_then(|b| b.open(s)));
        return Ok(secret
            .and_then(|s| second_factor::totp_step(&s, code, now))
            .map(Some));
    }
    let right =
        second_factor::check_code(&mut conn, secrets, user.id, &format!("{method}_code"), code, now).await?;
    Ok(right.then_some(None))
}
