//! Setting up a second factor while registering: an authenticator's secret
//! to scan, or a code sent by email or SMS, proved when the registration
//! completes.

use chrono::TimeDelta;

use super::find;
use crate::{
    domain::outbox,
    domain::{enrollment::Begun, rate_limit, second_factor, validate},
    error::{Error, Result},
    lifecycle::{email_kind::EmailKind, token::TokenKind},
    services::Services,
    sms,
};

/// Codes one invitation may be sent per hour.
const CODES_PER_HOUR: i32 = 5;

/// Begins setting up `method` for the person of an invitation link; an SMS
/// goes to `mobile`, or to the number on file when it is empty.
pub async fn begin_second_factor(app: &Services, token: &str, method: &str, mobile: &str) -> Result<Begun> {
    let now = app.clock.now();
    let mut conn = app.pool.get().await?;
    let invited = find(&mut conn, token, now).await?;
    let allowed = invited.methods();
    if !allowed.iter().any(|m| m == method) {
        return Err(Error::invalid(
            "method",
            format!("the organisation allows {}", allowed.join(", ")),
        ));
    }
    let bucket = format!("codes:{}", invited.invitation.id);
    if method != "totp"
        && !rate_limit::allow(&mut conn, &bucket, CODES_PER_HOUR, TimeDelta::hours(1), now).await?
    {
        return Err(Error::ResourceExhausted(
            "too many codes were sent for this invitation; wait an hour".into(),
        ));
    }
    let user = &invited.user;
    let organization_name = &invited.organization.organization.name;
    match method {
        "totp" => {
            let secrets = app.secrets.as_deref().ok_or_else(|| {
                Error::FailedPrecondition("authenticator apps need ONRAMP_SECRET_KEY on the server".into())
            })?;
            let secret = second_factor::new_totp_secret();
            let sealed = Some(secrets.seal(&secret)?);
            second_factor::enroll(&mut conn, user.id, "totp", sealed, None, now).await?;
            Ok(Begun::Totp {
                secret,
                issuer: organization_name.clone(),
                account: user.email.clone(),
            })
        }
        "email" => {
            let email = outbox::Email {
                organization_id: user.organization_id,
                kind: EmailKind::EmailCode,
                recipient: &user.email,
                user_id: user.id,
                invitation_id: Some(invited.invitation.id),
                batch: None,
            };
            outbox::enqueue(&mut conn, &[email], &app.message_domain, now).await?;
            Ok(Begun::Email {
                to: user.email.clone(),
                expires_at: now + second_factor::CODE_TTL,
            })
        }
        _ => {
            let mobile = if mobile.trim().is_empty() {
                &user.mobile
            } else {
                mobile
            };
            let mobile = validate::mobile(mobile).map_err(|e| Error::invalid("mobile", e))?;
            let secrets = app.secrets.as_deref();
            let invitation = Some(invited.invitation.id);
            let (code, expires_at) = second_factor::issue_code(
                &mut conn,
                secrets,
                user,
                invitation,
                TokenKind::SmsCode.name(),
                now,
            )
            .await?;
            drop(conn);
            let webhook = app.config.sms_webhook_url.as_deref();
            sms::send_verification_code(webhook, &mobile, &code, organization_name).await?;
            Ok(Begun::Sms {
                to: mobile,
                expires_at,
            })
        }
    }
}
