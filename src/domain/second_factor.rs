//! Second factors: TOTP secrets (encrypted at rest with the configured key),
//! and six-digit codes sent by email or SMS (stored as keyed hashes,
//! short-lived, limited in attempts).

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rand::Rng;
use totp_rs::{Builder, Secret, Totp};
use uuid::Uuid;

use super::users::UserRow;
use crate::{
    db::schema::{action_tokens, second_factors},
    error::Result,
    secrets::SecretBox,
    services::Services,
};

/// How long an emailed or texted code works.
pub const CODE_TTL: TimeDelta = TimeDelta::minutes(10);
/// Wrong tries before a code stops working.
pub const MAX_CODE_ATTEMPTS: i32 = 5;
const TOTP_STEP_SECS: i64 = 30;
const TOTP_SECRET_BYTES: usize = 20;

/// RFC 4648 base32 without padding, as authenticator apps expect.
pub fn base32(bytes: &[u8]) -> String {
    Secret::from(bytes.to_vec()).to_base32()
}

/// RFC 6238 with what every authenticator app assumes: HMAC-SHA1, six
/// digits, 30-second steps, and the step either side accepted for clock
/// drift between phone and server.
fn authenticator(secret: &[u8]) -> Totp {
    Builder::new()
        .with_secret(secret.to_vec())
        .with_step_duration(TOTP_STEP_SECS as u64)
        // Older secrets may be shorter than RFC 4226's 128 bits; new ones
        // are 160 (`new_totp_secret`).
        .build_noncompliant()
}

/// The code for time step `counter`.
pub fn totp(secret: &[u8], counter: u64) -> String {
    authenticator(secret)
        .generate(counter.saturating_mul(TOTP_STEP_SECS as u64))
        .to_string()
}

/// Accepts the code of this time step or of the one either side.
pub fn verify_totp(secret: &[u8], code: &str, now: DateTime<Utc>) -> bool {
    totp_step(secret, code, now).is_some()
}

/// The time step whose code `code` is, among this one and those either side.
pub fn totp_step(secret: &[u8], code: &str, now: DateTime<Utc>) -> Option<i64> {
    let time = u64::try_from(now.timestamp()).ok()?;
    let step = authenticator(secret).check(code.trim(), time)?;
    i64::try_from(step).ok()
}

pub fn new_totp_secret() -> Vec<u8> {
    let mut secret = vec![0u8; TOTP_SECRET_BYTES];
    rand::rng().fill(&mut secret[..]);
    secret
}

/// The `otpauth://` URI an authenticator app reads from a QR code.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                    char::from(b).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect::<String>()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period={TOTP_STEP_SECS}",
        encode(issuer),
        encode(account),
        base32(secret),
        encode(issuer)
    )
}

pub fn new_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// The stored form of a code: keyed by the server's secret and salted by
/// the token's id, so a database dump does not reveal codes.
pub fn code_hash(secrets: Option<&SecretBox>, token_id: Uuid, code: &str) -> Vec<u8> {
    match secrets {
        Some(secrets) => secrets.mac(&[token_id.as_bytes(), code.as_bytes()]),
        None => {
            use sha2::Digest;
            let mut hasher = sha2::Sha256::new();
            hasher.update(token_id.as_bytes());
            hasher.update(code.as_bytes());
            hasher.finalize().to_vec()
        }
    }
}

/// Mints a code for `user` (and the invitation being completed, if any),
/// replacing older unused ones of the same kind. Call inside a transaction.
pub async fn issue_code(
    conn: &mut AsyncPgConnection,
    secrets: Option<&SecretBox>,
    user: &UserRow,
    invitation_id: Option<Uuid>,
    kind: &str,
    now: DateTime<Utc>,
) -> Result<(String, DateTime<Utc>)> {
    diesel::update(
        action_tokens::table
            .filter(action_tokens::user_id.eq(user.id))
            .filter(action_tokens::kind.eq(kind))
            .filter(action_tokens::consumed_at.is_null()),
    )
    .set(action_tokens::consumed_at.eq(now))
    .execute(conn)
    .await?;
    let id = Uuid::now_v7();
    let code = new_code();
    let expires_at = now + CODE_TTL;
    diesel::insert_into(action_tokens::table)
        .values((
            action_tokens::id.eq(id),
            action_tokens::organization_id.eq(user.organization_id),
            action_tokens::user_id.eq(user.id),
            action_tokens::invitation_id.eq(invitation_id),
            action_tokens::kind.eq(kind),
            action_tokens::token_hash.eq(code_hash(secrets, id, &code)),
            action_tokens::created_at.eq(now),
            action_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await?;
    Ok((code, expires_at))
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = action_tokens)]
struct CodeToken {
    id: Uuid,
    token_hash: Option<Vec<u8>>,
    attempts: i32,
    expires_at: DateTime<Utc>,
}

/// Checks a code against the newest live one of `kind`; a right code is
/// spent, a wrong one counts towards the limit.
pub async fn check_code(
    conn: &mut AsyncPgConnection,
    secrets: Option<&SecretBox>,
    user_id: Uuid,
    kind: &str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let token = action_tokens::table
        .filter(action_tokens::user_id.eq(user_id))
        .filter(action_tokens::kind.eq(kind))
        .filter(action_tokens::consumed_at.is_null())
        .order(action_tokens::created_at.desc())
        .select(CodeToken::as_select())
        .first(conn)
        .await
        .optional()?;
    let Some(token) = token.filter(|t| t.expires_at > now && t.attempts < MAX_CODE_ATTEMPTS) else {
        return Ok(false);
    };
    if token.token_hash.as_deref() == Some(code_hash(secrets, token.id, code.trim()).as_slice()) {
        diesel::update(action_tokens::table.find(token.id))
            .set(action_tokens::consumed_at.eq(now))
            .execute(conn)
            .await?;
        return Ok(true);
    }
    diesel::update(action_tokens::table.find(token.id))
        .set(action_tokens::attempts.eq(action_tokens::attempts + 1))
        .execute(conn)
        .await?;
    Ok(false)
}

/// The user's second factor: its method and, for TOTP, the sealed secret.
pub async fn enrolled(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> Result<Option<(String, Option<Vec<u8>>)>> {
    Ok(second_factors::table
        .find(user_id)
        .select((second_factors::method, second_factors::secret_ciphertext))
        .first(conn)
        .await
        .optional()?)
}

/// Records the user's second factor, replacing any earlier one, with the
/// time step of the authenticator code that proved it, already spent.
pub async fn enroll(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    method: &str,
    sealed_secret: Option<Vec<u8>>,
    spent_step: Option<i64>,
    now: DateTime<Utc>,
) -> Result<()> {
    diesel::insert_into(second_factors::table)
        .values((
            second_factors::user_id.eq(user_id),
            second_factors::method.eq(method),
            second_factors::secret_ciphertext.eq(&sealed_secret),
            second_factors::created_at.eq(now),
            second_factors::last_totp_step.eq(spent_step),
        ))
        .on_conflict(second_factors::user_id)
        .do_update()
        .set((
            second_factors::method.eq(method),
            second_factors::secret_ciphertext.eq(&sealed_secret),
            second_factors::created_at.eq(now),
            second_factors::last_totp_step.eq(spent_step),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether `code` proves the user's enrolled second factor now.
pub async fn verify_sign_in(
    state: &Services,
    conn: &mut AsyncPgConnection,
    user: &UserRow,
    code: &str,
) -> Result<bool> {
    let now = state.clock.now();
    let secrets = state.secrets.as_deref();
    match enrolled(conn, user.id).await? {
        None => Ok(false),
        Some((method, sealed)) if method == "totp" => {
            let secret: Option<Vec<u8>> = sealed.as_deref().and_then(|s| secrets.and_then(|b| b.open(s)));
            let Some(step) = secret.and_then(|secret| totp_step(&secret, code, now)) else {
                return Ok(false);
            };
            // Spends this step and every one before it, in one statement, so
            // of two sign-ins racing with one code only one gets through.
            let spent = diesel::update(
                second_factors::table.find(user.id).filter(
                    second_factors::last_totp_step
                        .is_null()
                        .or(second_factors::last_totp_step.lt(step)),
                ),
            )
            .set(second_factors::last_totp_step.eq(step))
            .execute(conn)
            .await?;
            Ok(spent == 1)
        }
        Some((method, _)) => check_code(conn, secrets, user.id, &format!("{method}_code"), code, now).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_matches_the_rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        // RFC 6238 appendix B, SHA-1, truncated to six digits.
        for (time, expected) in [
            (59u64, 287_082),
            (1_111_111_109, 81_804),
            (1_234_567_890, 5_924),
            (2_000_000_000, 279_037),
        ] {
            assert_eq!(totp(secret, time / 30), format!("{expected:06}"), "t = {time}");
        }
        let now = DateTime::from_timestamp(59, 0).unwrap_or_default();
        assert!(verify_totp(secret, "287082", now));
        assert!(!verify_totp(secret, "287083", now));
    }

    #[test]
    fn base32_is_rfc_4648_without_padding() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }
}
