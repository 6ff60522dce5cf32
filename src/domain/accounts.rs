//! Signing in: finding an account by username or email, checking its
//! password with lockout after repeated failures, and setting passwords.
//! Hashing never runs while a database connection is held.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::{
    audit::{self, Actor},
    organizations::Organization,
    users::UserRow,
};
use crate::{
    db::schema::users,
    error::{Error, Result},
    lifecycle::{invitation, token::TokenKind, user::Stage},
    passwords::{Verification, check_password},
    services::Services,
};

/// Failed sign-ins before the account locks.
pub const LOCK_AFTER: i32 = 5;
const FIRST_LOCK_MINUTES: i32 = 1;
const LONGEST_LOCK_HOURS: i32 = 24;

/// The answer to a wrong username, a wrong password and a locked account.
pub const WRONG_LOGIN: &str = "the username or password is wrong, or the account is locked for a while \
     after repeated failures; wait and try again, or reset your password";

/// How long the account locks after `failures` failed sign-ins: a minute at
/// the fifth, doubling with each one after, at most a day.
pub fn lock_duration(failures: i32) -> Option<TimeDelta> {
    if failures < LOCK_AFTER {
        return None;
    }
    let doublings = u32::try_from(failures - LOCK_AFTER).unwrap_or(0).min(20);
    let minutes = i64::from(FIRST_LOCK_MINUTES).saturating_mul(1 << doublings);
    Some(TimeDelta::minutes(minutes).min(TimeDelta::hours(i64::from(LONGEST_LOCK_HOURS))))
}

/// An account with the method of its second factor, if it has one.
pub struct Account {
    pub user: UserRow,
    pub second_factor: Option<String>,
}

diesel::define_sql_function!(fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// The organisation, and in the same query the account whose username or
/// email is `login` (in any case) with its second factor: sign-ins read both.
/// Where one person's username is another's email, the email's owner is
/// the one named.
pub async fn find_with_organization(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    login: &str,
) -> Result<Option<(Organization, Option<Account>)>> {
    use crate::db::schema::{organizations, second_factors};
    let login = login.trim().to_lowercase();
    let login_again = login.clone();
    let found: Option<(Organization, Option<UserRow>, Option<String>)> = organizations::table
        .left_join(
            users::table.on(users::organization_id.eq(organizations::id).and(
                lower(users::username)
                    .eq(login.clone())
                    .or(lower(users::email).eq(login)),
            )),
        )
        .left_join(second_factors::table.on(second_factors::user_id.eq(users::id)))
        .filter(organizations::id.eq(organization_id))
        // An email names its owner before anyone whose username it is.
        .order((lower(users::email).eq(login_again).desc(), users::id))
        .select((
            Organization::as_select(),
            Option::<UserRow>::as_select(),
            second_factors::method.nullable(),
        ))
        .first(conn)
        .await
        .optional()?;
    Ok(found.map(|(organization, user, second_factor)| {
        (organization, user.map(|user| Account { user, second_factor }))
    }))
}

/// A hash to check unknown logins against, so they take as long as known
/// ones.
static DUMMY_HASH: OnceCell<String> = OnceCell::const_new();

async fn dummy_hash(state: &Services) -> Result<String> {
    DUMMY_HASH
        .get_or_try_init(|| {
            state
                .hasher
                .hash("no such account; this hash only burns time".into())
        })
        .await
        .cloned()
}

/// A sign-in whose password was right.
pub struct Verified {
    pub user: UserRow,
    pub organization: Organization,
    /// The method of the user's second factor, if enrolled.
    pub second_factor: Option<String>,
}

/// Checks a login and password. Every attempt on an account is counted in
/// the database before its hash is checked, and none is checked once the
/// count locks the account: concurrent guesses, on any number of replicas,
/// never check more passwords than the lockout allows. A wrong username, a
/// wrong password and a locked account get the same answer after the same
/// work (one hash); a paused account or an expired temporary password is
/// told only to someone who gave the right password.
///
/// A right password leaves its attempt counted: the caller settles it
/// (`settle`) once the sign-in is complete, so a second factor still to be
/// presented keeps its wrong codes counted.
pub async fn verify(
    state: &Services,
    organization_id: Uuid,
    login: &str,
    password: &str,
    client_address: &str,
) -> Result<Verified> {
    let now = state.clock.now();
    let (found, attempt) = {
        let mut conn = state.pool.get().await?;
        let found = find_with_organization(&mut conn, organization_id, login).await?;
        let account = found
            .as_ref()
            .and_then(|(_, account)| account.as_ref())
            .filter(|a| a.user.password_hash.is_some());
        let attempt = match account {
            Some(account) => reserve_attempt(&mut conn, account.user.id, now).await?,
            None => None,
        };
        (found, attempt)
    };
    // An account with a password that counted no attempt is locked.
    let locked = attempt.is_none()
        && found
            .as_ref()
            .and_then(|(_, a)| a.as_ref())
            .is_some_and(|a| a.user.password_hash.is_some());
    let (Some((organization, Some(Account { user, second_factor }))), Some(attempt)) = (found, attempt)
    else {
        count_sign_in(if locked { "locked" } else { "wrong_password" });
        burn_a_hash(state, password).await?;
        return Err(wrong_login());
    };
    let stored = user.password_hash.clone().unwrap_or_default();
    let verification = state.hasher.verify(password.to_owned(), stored).await?;
    if verification == Verification::Mismatch {
        let actor = Actor {
            name: format!("user:{}", user.id),
            client_address: client_address.to_owned(),
        };
        count_sign_in("wrong_password");
        record_failure(state, &user, &actor, attempt, "password", now).await?;
        return Err(wrong_login());
    }
    if user.deactivated_at.is_some() {
        settle(&mut *state.pool.get().await?, user.id).await?;
        return Err(Error::PermissionDenied(
            "the account is deactivated; ask your administrator".into(),
        ));
    }
    if user.must_change_password && user.password_expires_at.is_some_and(|at| at <= now) {
        settle(&mut *state.pool.get().await?, user.id).await?;
        return Err(Error::Refused {
            reason: "TEMPORARY_PASSWORD_EXPIRED",
            message: "the temporary password has expired; ask your administrator to send a new one".into(),
        });
    }
    if verification == Verification::MatchNeedsRehash {
        let fresh = state.hasher.hash(password.to_owned()).await?;
        let mut conn = state.pool.get().await?;
        diesel::update(users::table.find(user.id))
            .set(users::password_hash.eq(fresh))
            .execute(&mut conn)
            .await?;
    }
    Ok(Verified {
        user,
        organization,
        second_factor,
    })
}

/// Counts a password check in `onramp_sign_ins_total` by `result`. The
/// failures are counted here for every RPC that checks a password (an
/// attack may come through any of them); the sign-ins that succeed, by
/// `Authenticate`.
pub fn count_sign_in(result: &'static str) {
    crate::metrics::get()
        .sign_ins
        .add(1, &[crate::metrics::kv("result", result)]);
}

/// The answer to a wrong username, a wrong password and a locked account
/// alike, so none tells whether an account exists or is locked.
pub fn wrong_login() -> Error {
    Error::Unauthenticated(WRONG_LOGIN.into())
}

/// Costs what checking a real password costs, for answers that must take as
/// long as one.
async fn burn_a_hash(state: &Services, password: &str) -> Result<()> {
    state
        .hasher
        .verify(password.to_owned(), dummy_hash(state).await?)
        .await
        .map(drop)
}

#[derive(diesel::QueryableByName)]
struct Attempt {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    failed_sign_ins: i32,
}

/// Counts an attempt on the account unless it is locked, and locks it in the
/// same statement when this attempt reaches the limit (a minute at the
/// fifth, doubling with each after, at most a day: `lock_duration`). Answers
/// the attempt's number, or `None` when the account is locked.
async fn reserve_attempt(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<i32>> {
    use diesel::sql_types::{Integer, Timestamptz, Uuid as SqlUuid};
    let attempt: Option<Attempt> = crate::db::Cached(
        diesel::sql_query(
            "UPDATE users SET failed_sign_ins = failed_sign_ins + 1, \
               locked_until = CASE WHEN failed_sign_ins + 1 >= $3 THEN $2 + least( \
                 make_interval(mins => $4) * power(2, least(failed_sign_ins + 1 - $3, 20)), \
                 make_interval(hours => $5)) ELSE locked_until END \
             WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $2) \
             RETURNING failed_sign_ins",
        )
        .bind::<SqlUuid, _>(user_id)
        .bind::<Timestamptz, _>(now)
        .bind::<Integer, _>(LOCK_AFTER)
        .bind::<Integer, _>(FIRST_LOCK_MINUTES)
        .bind::<Integer, _>(LONGEST_LOCK_HOURS),
    )
    .get_result(conn)
    .await
    .optional()?;
    Ok(attempt.map(|a| a.failed_sign_ins))
}

/// Clears the attempts of a sign-in that succeeded, and any lock they set.
pub async fn settle(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<()> {
    diesel::update(users::table.find(user_id))
        .set((
            users::failed_sign_ins.eq(0),
            users::locked_until.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Audits a failed attempt, already counted by `reserve_attempt`: a wrong
/// password or a wrong second-factor code.
pub async fn record_failure(
    state: &Services,
    user: &UserRow,
    actor: &Actor,
    attempt: i32,
    what: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut conn = state.pool.get().await?;
    let lock = lock_duration(attempt);
    if lock.is_some() {
        crate::metrics::get().lockouts.add(1, &[]);
    }
    let details =
        json!({"failures": attempt, "wrong": what, "locked_minutes": lock.map(|l| l.num_minutes())});
    audit::record(
        &mut conn,
        actor,
        user.organization_id,
        "credentials.sign_in_failed",
        ("user", user.id),
        details,
        now,
    )
    .await
}

/// Checks `password` against the organisation's policy for this account.
pub fn check_policy(org: &Organization, user: &UserRow, password: &str, field: &str) -> Result<()> {
    check_password(org.password_policy(), password, &user.username, &user.email)
        .map_err(|e| Error::invalid(field, e))
}

/// Stores a new password hash (made by the caller, off the connection):
/// not temporary, failures cleared, and a pending account becomes active.
pub async fn store_password(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    hash: String,
    must_change: bool,
    now: DateTime<Utc>,
) -> Result<UserRow> {
    Ok(diesel::update(users::table.find(user_id))
        .set((
            users::password_hash.eq(hash),
            users::must_change_password.eq(must_change),
            users::password_expires_at.eq(None::<DateTime<Utc>>),
            users::failed_sign_ins.eq(0),
            users::locked_until.eq(None::<DateTime<Utc>>),
            users::updated_at.eq(now),
        ))
        .returning(UserRow::as_returning())
        .get_result(conn)
        .await?)
}

/// The statements that retire a person's other ways in once their account
/// is active: live invitations are revoked and unspent reset links spent, in
/// the caller's statement. `user` and `now` are its placeholders for the
/// user's id and the time; the CTEs run only when the CTE `after` returned a
/// row, so a refused activation retires nothing. `keep` is the placeholder
/// of the invitation or reset token the statement spends itself: a
/// statement may change a row only once.
pub fn retiring_ctes(user: &str, now: &str, after: &str, keep: &str) -> String {
    format!(
        "retired_invitations AS (UPDATE invitations SET state = {revoked}, revoked_at = {now} \
           WHERE user_id = {user} AND state IN {standing} AND id <> {keep} \
             AND EXISTS (SELECT 1 FROM {after})), \
         retired_resets AS (UPDATE action_tokens SET consumed_at = {now} \
           WHERE user_id = {user} AND kind = {reset} AND consumed_at IS NULL \
             AND id <> {keep} AND EXISTS (SELECT 1 FROM {after}))",
        revoked = invitation::State::Revoked.sql(),
        standing = invitation::standing_sql(),
        reset = TokenKind::PasswordReset.sql(),
    )
}

/// Retires a person's other ways in (see `retiring_ctes`). Call in the
/// transaction that sets their password.
pub async fn retire_other_ways_in(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    use crate::db::schema::{action_tokens, invitations};
    diesel::update(
        invitations::table
            .filter(invitations::user_id.eq(user_id))
            .filter(invitations::state.eq_any(invitation::STANDING)),
    )
    .set((
        invitations::state.eq(invitation::State::Revoked),
        invitations::revoked_at.eq(now),
    ))
    .execute(conn)
    .await?;
    diesel::update(
        action_tokens::table
            .filter(action_tokens::user_id.eq(user_id))
            .filter(action_tokens::kind.eq(TokenKind::PasswordReset))
            .filter(action_tokens::consumed_at.is_null()),
    )
    .set(action_tokens::consumed_at.eq(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// A new password for an account, hashed by the caller off the connection.
pub struct NewPassword<'a> {
    pub user_id: Uuid,
    pub organization_id: Uuid,
    pub hash: String,
    /// A temporary password, to be changed at the next sign-in.
    pub must_change: bool,
    pub actor: &'a Actor,
    pub action: &'static str,
    pub details: serde_json::Value,
}

/// Stores a password in one transaction with what follows from it: a final
/// password makes a pending account active, any password retires the
/// invitations and reset links still out, and the change is audited.
pub async fn replace_password(
    conn: &mut AsyncPgConnection,
    change: NewPassword<'_>,
    now: DateTime<Utc>,
) -> Result<UserRow> {
    use diesel_async::AsyncConnection;
    conn.transaction(async |conn| {
        let user = store_password(conn, change.user_id, change.hash, change.must_change, now).await?;
        if !change.must_change {
            activate(conn, change.user_id, now).await?;
        }
        retire_other_ways_in(conn, change.user_id, now).await?;
        audit::record(
            conn,
            change.actor,
            change.organization_id,
            change.action,
            ("user", change.user_id),
            change.details,
            now,
        )
        .await?;
        Ok(user)
    })
    .await
}

/// An admin's new password for a user: checked against the policy, and
/// stored with what follows from it (`replace_password`).
pub async fn set_password(
    app: &Services,
    organization_id: Uuid,
    user_id: Uuid,
    password: String,
    must_change: bool,
    actor: &Actor,
) -> Result<super::users::User> {
    let now = app.clock.now();
    let (user, organization) = {
        let mut conn = app.pool.get().await?;
        let user = super::users::find(&mut conn, organization_id, user_id, now)
            .await?
            .row;
        (
            user,
            super::organizations::find(&mut conn, organization_id)
                .await?
                .organization,
        )
    };
    check_policy(&organization, &user, &password, "password")?;
    let hash = app.hasher.hash(password).await?;
    let mut conn = app.pool.get().await?;
    let change = NewPassword {
        user_id,
        organization_id,
        hash,
        must_change,
        actor,
        action: "credentials.set_password",
        details: json!({"must_change_password": must_change}),
    };
    replace_password(&mut conn, change, now).await?;
    super::users::find(&mut conn, organization_id, user_id, now).await
}

/// Makes a pending account active: it finished onboarding.
pub async fn activate(conn: &mut AsyncPgConnection, user_id: Uuid, now: DateTime<Utc>) -> Result<()> {
    diesel::update(
        users::table
            .find(user_id)
            .filter(users::lifecycle.ne(Stage::Active)),
    )
    .set((
        users::lifecycle.eq(Stage::Active),
        users::activated_at.eq(now),
        users::invitation_expires_at.eq(None::<DateTime<Utc>>),
        users::updated_at.eq(now),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_grows_with_each_failure_after_the_fifth() {
        assert_eq!(lock_duration(4), None);
        assert_eq!(lock_duration(5), Some(TimeDelta::minutes(1)));
        assert_eq!(lock_duration(6), Some(TimeDelta::minutes(2)));
        assert_eq!(lock_duration(8), Some(TimeDelta::minutes(8)));
        assert_eq!(lock_duration(40), Some(TimeDelta::hours(24)));
    }
}
