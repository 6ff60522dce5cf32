//! Setting up a second factor at sign-in, for an active account that has
//! none when its organisation requires one (it came to require it after the
//! person registered). The password proves the person; the factor counts only
//! once its first code proves it, and an account that has a factor cannot
//! replace it this way (a stolen password must not move the factor).

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use crate::lifecycle::token::TokenKind;
use crate::{
    db::schema::second_factor_enrollments,
    domain::outbox,
    domain::{
        accounts::{self, Verified},
        audit::{self, Actor},
        organizations::{self, Organization},
        rate_limit,
        second_factor::{self, CODE_TTL},
    },
    error::{Error, Result},
    services::Services,
    sms,
};

/// How long a begun set-up waits for its first code.
const ENROLLMENT_TTL: TimeDelta = TimeDelta::minutes(15);
/// Wrong codes before a set-up must be begun again.
const MAX_ATTEMPTS: i32 = 5;
/// Codes one account may be sent per hour while setting up.
const CODES_PER_HOUR: i32 = 5;

/// The methods an organisation allows (all when it names none), less an
/// authenticator app when the server cannot seal its secret.
pub fn allowed_methods(org: &Organization, can_seal: bool) -> Vec<String> {
    organizations::second_factor_methods(org)
        .into_iter()
        .filter(|m| can_seal || m != "totp")
        .collect()
}

/// Where a set-up's code went, or the authenticator's secret.
pub enum Begun {
    Totp {
        secret: Vec<u8>,
        issuer: String,
        account: String,
    },
    Email {
        to: String,
        expires_at: DateTime<Utc>,
    },
    Sms {
        to: String,
        expires_at: DateTime<Utc>,
    },
}

/// The account behind a sign-in that may set up a factor: the password is
/// right, and it has none.
async fn account(
    state: &Services,
    organization_id: Uuid,
    login: &str,
    password: &str,
    client_address: &str,
) -> Result<Verified> {
    let verified = accounts::verify(state, organization_id, login, password, client_address).await?;
    if verified.second_factor.is_some() {
        return Err(Error::FailedPrecondition(
            "this account already has a second factor; an administrator can remove it".into(),
        ));
    }
    let mut conn = state.pool.get().await?;
    // The right password, with no factor to present: the attempt is done.
    accounts::settle(&mut conn, verified.user.id).await?;
    Ok(verified)
}

pub async fn begin(
    state: &Services,
    organization_id: Uuid,
    login: &str,
    password: &str,
    method: &str,
    client_address: &str,
) -> Result<Begun> {
    let message_domain = &*state.message_domain;
    let Verified {
        user, organization, ..
    } = account(state, organization_id, login, password, client_address).await?;
    let allowed = allowed_methods(&organization, state.secrets.is_some());
    if !allowed.iter().any(|m| m == method) {
        return Err(Error::invalid(
            "method",
            format!("the organisation allows {}", allowed.join(", ")),
        ));
    }
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    if method != "totp"
        && !rate_limit::allow(
            &mut conn,
            &format!("enrollment-codes:{}", user.id),
            CODES_PER_HOUR,
            TimeDelta::hours(1),
            now,
        )
        .await?
    {
        return Err(Error::ResourceExhausted(
            "too many codes were sent for this account; wait an hour".into(),
        ));
    }
    let (sealed, secret) = match (method, state.secrets.as_deref()) {
        ("totp", Some(secrets)) => {
            let secret = second_factor::new_totp_secret();
            (Some(secrets.seal(&secret)?), secret)
        }
        _ => (None, Vec::new()),
    };
    diesel::insert_into(second_factor_enrollments::table)
        .values((
            second_factor_enrollments::user_id.eq(user.id),
            second_factor_enrollments::method.eq(method),
            second_factor_enrollments::secret_ciphertext.eq(&sealed),
            second_factor_enrollments::attempts.eq(0),
            second_factor_enrollments::created_at.eq(now),
            second_factor_enrollments::expires_at.eq(now + ENROLLMENT_TTL),
        ))
        .on_conflict(second_factor_enrollments::user_id)
        .do_update()
        .set((
            second_factor_enrollments::method.eq(method),
            second_factor_enrollments::secret_ciphertext.eq(&sealed),
            second_factor_enrollments::attempts.eq(0),
            second_factor_enrollments::created_at.eq(now),
            second_factor_enrollments::expires_at.eq(now + ENROLLMENT_TTL),
        ))
        .execute(&mut conn)
        .await?;
    match method {
        "totp" => Ok(Begun::Totp {
            secret,
            issuer: organization.name,
            account: user.email,
        }),
        "email" => {
            let email = outbox::Email {
                organization_id: user.organization_id,
                kind: crate::lifecycle::email_kind::EmailKind::EmailCode,
                recipient: &user.email,
                user_id: user.id,
                invitation_id: None,
                batch: None,
            };
            outbox::enqueue(&mut conn, &[email], message_domain, now).await?;
            Ok(Begun::Email {
                to: user.email,
                expires_at: now + CODE_TTL,
            })
        }
        _ => {
            if user.mobile.is_empty() {
                return Err(Error::FailedPrecondition(
                    "this account has no mobile number; choose another method or ask an administrator to add one"
                        .into(),
                ));
            }
            let (code, expires_at) = second_factor::issue_code(
                &mut conn,
                state.secrets.as_deref(),
                &user,
                None,
                TokenKind::SmsCode.name(),
                now,
            )
            .await?;
            drop(conn);
            sms::send_verification_code(
                state.config.sms_webhook_url.as_deref(),
                &user.mobile,
                &code,
                &organization.name,
            )
            .await?;
            Ok(Begun::Sms {
                to: user.mobile,
                expires_at,
            })
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = second_factor_enrollments)]
struct Pending {
    method: String,
    secret_ciphertext: Option<Vec<u8>>,
    attempts: i32,
    expires_at: DateTime<Utc>,
}

pub async fn complete(
    state: &Services,
    organization_id: Uuid,
    login: &str,
    password: &str,
    method: &str,
    code: &str,
    client_address: &str,
) -> Result<()> {
    let Verified { user, .. } = account(state, organization_id, login, password, client_address).await?;
    let now = state.clock.now();
    let secrets = state.secrets.as_deref();
    let mut conn = state.pool.get().await?;
    let pending: Option<Pending> = second_factor_enrollments::table
        .find(user.id)
        .select(Pending::as_select())
        .first(&mut conn)
        .await
        .optional()?;
    let Some(pending) =
        pending.filter(|p| p.method == method && p.expires_at > now && p.attempts < MAX_ATTEMPTS)
    else {
        return Err(Error::FailedPrecondition(
            "start setting up this method first (BeginSecondFactorEnrollment); a set-up lasts 15 minutes and five tries"
                .into(),
        ));
    };
    let proof = if method == "totp" {
        let secret = pending
            .secret_ciphertext
            .as_deref()
            .and_then(|s| secrets.and_then(|b| b.open(s)));
        secret
            .and_then(|s| second_factor::totp_step(&s, code, now))
            .map(|step| (pending.secret_ciphertext.clone(), Some(step)))
    } else {
        second_factor::check_code(&mut conn, secrets, user.id, &format!("{method}_code"), code, now)
            .await?
            .then_some((None, None))
    };
    let Some((sealed, step)) = proof else {
        diesel::update(second_factor_enrollments::table.find(user.id))
            .set(second_factor_enrollments::attempts.eq(second_factor_enrollments::attempts + 1))
            .execute(&mut conn)
            .await?;
        return Err(Error::invalid(
            "code",
            "is wrong or has expired; after five wrong tries, start the set-up again",
        ));
    };
    let actor = Actor {
        name: format!("user:{}", user.id),
        client_address: client_address.to_owned(),
    };
    conn.transaction(async |conn| {
        second_factor::enroll(conn, user.id, method, sealed, step, now).await?;
        diesel::delete(second_factor_enrollments::table.find(user.id))
            .execute(conn)
            .await?;
        audit::record(
            conn,
            &actor,
            organization_id,
            "credentials.second_factor_enrolled",
            ("user", user.id),
            json!({"method": method}),
            now,
        )
        .await
    })
    .await
}
