//! A person signing in, and changing their password with the current one:
//! the password check (`accounts::verify`), the second factor, what they
//! must still do, and the sign-in recorded with its audit event.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Jsonb, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use super::{
    accounts::{self, Verified},
    audit::Actor,
    enrollment,
    organizations::{self, Organization, OrganizationWithTerms},
    second_factor,
    users::{self, Grant, UserRow},
};
use crate::{
    db::{Cached, schema::terms_acceptances},
    domain::outbox,
    error::{Error, Result},
    lifecycle::{email_kind::EmailKind, token::TokenKind},
    services::Services,
};

/// What a signed-in person must still do, in the order they do it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequiredAction {
    /// The password is temporary.
    ChangePassword,
    /// The organisation published terms the person has not accepted.
    AcceptTerms,
    /// The organisation requires a second factor the person has none of.
    EnrollSecondFactor,
    /// A second-factor code is needed to finish signing in.
    SecondFactor,
}

impl RequiredAction {
    fn name(self) -> &'static str {
        match self {
            RequiredAction::ChangePassword => "change_password",
            RequiredAction::AcceptTerms => "accept_terms",
            RequiredAction::EnrollSecondFactor => "enroll_second_factor",
            RequiredAction::SecondFactor => "second_factor",
        }
    }
}

/// A sign-in attempt: the organisation, the username or email, the
/// password, and the second-factor code if the person has one to give.
pub struct SignInAttempt<'a> {
    pub organization_id: Uuid,
    pub login: &'a str,
    pub password: &'a str,
    pub second_factor_code: &'a str,
    pub client_address: &'a str,
}

/// A right password, and what follows.
pub struct SignedIn {
    pub user: users::User,
    pub required_actions: Vec<RequiredAction>,
    /// The method of the person's second factor, if enrolled.
    pub second_factor: Option<String>,
    /// The organisation with the terms to accept, when they must.
    pub terms: Option<OrganizationWithTerms>,
    pub organization: Organization,
    /// The methods the person may enrol, when they must.
    pub enrollable_methods: Vec<String>,
}

impl SignedIn {
    pub fn code_due(&self) -> bool {
        self.required_actions.contains(&RequiredAction::SecondFactor)
    }
}

/// Signs a person in. A wrong code counts like a wrong password. A sign-in
/// whose second-factor code is still due is not one yet: the code is sent
/// (by email or SMS), its attempt stays counted and nothing is recorded.
pub async fn authenticate(app: &Services, attempt: SignInAttempt<'_>) -> Result<SignedIn> {
    let Verified {
        user,
        organization,
        second_factor,
    } = accounts::verify(
        app,
        attempt.organization_id,
        attempt.login,
        attempt.password,
        attempt.client_address,
    )
    .await?;
    let now = app.clock.now();
    let mut pooled = app.pool.get().await?;
    let conn = &mut *pooled;
    let code = attempt.second_factor_code.trim();
    if !code.is_empty() && !second_factor::verify_sign_in(app, conn, &user, code).await? {
        // The attempt `verify` reserved stays counted.
        drop(pooled);
        let actor = Actor {
            name: format!("user:{}", user.id),
            client_address: attempt.client_address.to_owned(),
        };
        accounts::count_sign_in("wrong_code");
        accounts::record_failure(
            app,
            &user,
            &actor,
            user.failed_sign_ins + 1,
            "second_factor_code",
            now,
        )
        .await?;
        return Err(Error::Unauthenticated(
            "the second-factor code is wrong, has expired or was used already".into(),
        ));
    }
    let actions = required_actions(
        conn,
        &user,
        &organization,
        second_factor.as_deref(),
        !code.is_empty(),
    )
    .await?;
    let code_due = actions.contains(&RequiredAction::SecondFactor);
    let terms = if actions.contains(&RequiredAction::AcceptTerms) {
        Some(organizations::with_terms(conn, organization.clone()).await?)
    } else {
        None
    };
    let enrollable_methods = if actions.contains(&RequiredAction::EnrollSecondFactor) {
        enrollment::allowed_methods(&organization, app.secrets.is_some())
    } else {
        Vec::new()
    };
    let text = if code_due {
        send_code(app, conn, &user, second_factor.as_deref(), now).await?
    } else {
        None
    };
    let grants = record(conn, &user, &actions, attempt.client_address, now).await?;
    accounts::count_sign_in(if code_due { "second_factor_required" } else { "ok" });
    let mut row = user;
    if !code_due {
        row.last_sign_in_at = Some(now);
        row.failed_sign_ins = 0;
    }
    let status = row.status(now);
    drop(pooled);
    if let Some((mobile, body)) = text {
        crate::sms::send(app.config.sms_webhook_url.as_deref(), &mobile, &body)
            .await
            .map_err(|why| Error::Unavailable(format!("the code could not be sent by SMS: {why}")))?;
    }
    Ok(SignedIn {
        user: users::User { row, grants, status },
        required_actions: actions,
        second_factor,
        terms,
        organization,
        enrollable_methods,
    })
}

async fn required_actions(
    conn: &mut AsyncPgConnection,
    user: &UserRow,
    organization: &Organization,
    factor: Option<&str>,
    code_given: bool,
) -> Result<Vec<RequiredAction>> {
    let mut actions = Vec::new();
    if user.must_change_password {
        actions.push(RequiredAction::ChangePassword);
    }
    if organization.terms_version > 0 {
        let accepted: i64 = terms_acceptances::table
            .filter(terms_acceptances::user_id.eq(user.id))
            .filter(terms_acceptances::version.eq(organization.terms_version))
            .count()
            .get_result(conn)
            .await?;
        if accepted == 0 {
            actions.push(RequiredAction::AcceptTerms);
        }
    }
    match factor {
        None if organization.second_factor_required => actions.push(RequiredAction::EnrollSecondFactor),
        Some(_) if !code_given => actions.push(RequiredAction::SecondFactor),
        _ => {}
    }
    Ok(actions)
}

/// Sends the code of an email or SMS second factor, for the next call. An
/// email is queued on `conn`; a text is answered, to be sent once the
/// connection is back in the pool.
async fn send_code(
    app: &Services,
    conn: &mut AsyncPgConnection,
    user: &UserRow,
    method: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<(String, String)>> {
    match method {
        Some("email") => {
            let email = outbox::Email {
                organization_id: user.organization_id,
                kind: EmailKind::EmailCode,
                recipient: &user.email,
                user_id: user.id,
                invitation_id: None,
                batch: None,
            };
            outbox::enqueue(conn, &[email], &app.message_domain, now).await?;
            Ok(None)
        }
        Some("sms") => {
            let secrets = app.secrets.as_deref();
            let (code, _) =
                second_factor::issue_code(conn, secrets, user, None, TokenKind::SmsCode.name(), now).await?;
            Ok(Some((
                user.mobile.clone(),
                format!("{code} is your sign-in code."),
            )))
        }
        _ => Ok(None),
    }
}

/// The sign-in, its audit event and the user's grants in one round trip; a
/// sign-in whose code is still due records nothing.
async fn record(
    conn: &mut AsyncPgConnection,
    user: &UserRow,
    actions: &[RequiredAction],
    client_address: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Grant>> {
    let complete = !actions.contains(&RequiredAction::SecondFactor);
    let details = json!({"required_actions": actions.iter().map(|a| a.name()).collect::<Vec<_>>()});
    Ok(Cached(
        diesel::sql_query(
            "WITH signed_in AS (UPDATE users SET failed_sign_ins = 0, locked_until = NULL, last_sign_in_at = $2 \
               WHERE id = $1 AND $8 RETURNING id), \
             audit AS (INSERT INTO audit_events (id, organization_id, actor, action, target_type, target_id, \
               client_address, details, created_at) \
               SELECT $3, $4, $5, 'credentials.sign_in', 'user', id::text, $6, $7, $2 FROM signed_in) \
             SELECT g.service_area_id, g.role_id, a.name AS service_area_name, r.name AS role_name \
             FROM access_grants g JOIN service_areas a ON a.id = g.service_area_id JOIN roles r ON r.id = g.role_id \
             WHERE g.user_id = $1 ORDER BY a.name, r.name",
        )
        .bind::<SqlUuid, _>(user.id)
        .bind::<Timestamptz, _>(now)
        .bind::<SqlUuid, _>(Uuid::now_v7())
        .bind::<SqlUuid, _>(user.organization_id)
        .bind::<Text, _>(format!("user:{}", user.id))
        .bind::<Text, _>(client_address)
        .bind::<Jsonb, _>(details)
        .bind::<Bool, _>(complete),
    )
    .load(conn)
    .await?)
}

/// A password change by someone who knows the current one.
pub struct PasswordChange<'a> {
    pub organization_id: Uuid,
    pub login: &'a str,
    pub password: &'a str,
    pub new_password: &'a str,
    pub client_address: &'a str,
}

/// Changes a password with the current one (a temporary password that
/// expired cannot be changed either): the new one must meet the policy and
/// differ; storing it activates a pending account and retires the other
/// ways in, in one transaction with its audit event.
pub async fn change_password(app: &Services, change: PasswordChange<'_>) -> Result<()> {
    let Verified {
        user, organization, ..
    } = accounts::verify(
        app,
        change.organization_id,
        change.login,
        change.password,
        change.client_address,
    )
    .await?;
    if change.new_password == change.password {
        return Err(Error::invalid(
            "new_password",
            "must differ from the current password",
        ));
    }
    accounts::check_policy(&organization, &user, change.new_password, "new_password")?;
    let hash = app.hasher.hash(change.new_password.to_owned()).await?;
    let now = app.clock.now();
    let actor = Actor {
        name: format!("user:{}", user.id),
        client_address: change.client_address.to_owned(),
    };
    let new = accounts::NewPassword {
        user_id: user.id,
        organization_id: change.organization_id,
        hash,
        must_change: false,
        actor: &actor,
        action: "credentials.password_changed",
        details: json!({}),
    };
    let mut conn = app.pool.get().await?;
    accounts::replace_password(&mut conn, new, now).await?;
    Ok(())
}
