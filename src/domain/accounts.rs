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
    passwords::{PasswordPolicy, Verification, check_password},
    state::AppState,
};

/// Failed sign-ins before the account locks.
pub const LOCK_AFTER: i32 = 5;
const FIRST_LOCK_MINUTES: i64 = 1;
const LONGEST_LOCK_HOURS: i64 = 24;

/// The answer to a wrong username and a wrong password alike.
pub const WRONG_LOGIN: &str = "the username or password is wrong";

/// How long the account locks after `failures` failed sign-ins: a minute at
/// the fifth, doubling with each one after, at most a day.
pub fn lock_duration(failures: i32) -> Option<TimeDelta> {
    if failures < LOCK_AFTER {
        return None;
    }
    let doublings = u32::try_from(failures - LOCK_AFTER).unwrap_or(0).min(20);
    let minutes = FIRST_LOCK_MINUTES.saturating_mul(1 << doublings);
    Some(TimeDelta::minutes(minutes).min(TimeDelta::hours(LONGEST_LOCK_HOURS)))
}

pub fn policy(org: &Organization) -> PasswordPolicy {
    PasswordPolicy {
        min_length: usize::try_from(org.password_min_length).unwrap_or(12),
    }
}

/// An account with the method of its second factor, if it has one.
pub struct Account {
    pub user: UserRow,
    pub second_factor: Option<String>,
}

diesel::define_sql_function!(fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// The organisation, and in the same query the account whose username or
/// email is `login` (in any case) with its second factor: sign-ins read both.
pub async fn find_with_organization(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    login: &str,
) -> Result<Option<(Organization, Option<Account>)>> {
    use crate::db::schema::{organizations, second_factors};
    let login = login.trim().to_lowercase();
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
        .order(users::id)
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

async fn dummy_hash(state: &AppState) -> Result<String> {
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

/// Checks a login and password. Wrong usernames and wrong passwords get the
/// same answer and take as long; failures count towards a lockout; a paused
/// account or an expired temporary password is told only to someone who
/// knows the password.
pub async fn verify(
    state: &AppState,
    organization_id: Uuid,
    login: &str,
    password: &str,
    client_address: &str,
) -> Result<Verified> {
    let now = state.clock.now();
    let (organization, user) = {
        let mut conn = state.pool.get().await?;
        find_with_organization(&mut conn, organization_id, login)
            .await?
            .ok_or_else(|| Error::Unauthenticated(WRONG_LOGIN.into()))?
    };
    let Some(Account { user, second_factor }) = user.filter(|a| a.user.password_hash.is_some()) else {
        state
            .hasher
            .verify(password.to_owned(), dummy_hash(state).await?)
            .await?;
        return Err(Error::Unauthenticated(WRONG_LOGIN.into()));
    };
    if let Some(until) = user.locked_until.filter(|until| *until > now) {
        return Err(Error::Refused {
            reason: "ACCOUNT_LOCKED",
            message: format!(
                "the account is locked after too many failed sign-ins; try again after {} UTC",
                until.format("%Y-%m-%d %H:%M:%S")
            ),
        });
    }
    let stored = user.password_hash.clone().unwrap_or_default();
    let verification = state.hasher.verify(password.to_owned(), stored).await?;
    let actor = Actor {
        name: format!("user:{}", user.id),
        client_address: client_address.to_owned(),
    };
    if verification == Verification::Mismatch {
        record_failure(state, &user, &actor, now).await?;
        return Err(Error::Unauthenticated(WRONG_LOGIN.into()));
    }
    if user.deactivated_at.is_some() {
        return Err(Error::PermissionDenied(
            "the account is deactivated; ask your administrator".into(),
        ));
    }
    if user.must_change_password && user.password_expires_at.is_some_and(|at| at <= now) {
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

async fn record_failure(state: &AppState, user: &UserRow, actor: &Actor, now: DateTime<Utc>) -> Result<()> {
    let mut conn = state.pool.get().await?;
    let failures: i32 = diesel::update(users::table.find(user.id))
        .set(users::failed_sign_ins.eq(users::failed_sign_ins + 1))
        .returning(users::failed_sign_ins)
        .get_result(&mut conn)
        .await?;
    let lock = lock_duration(failures);
    if let Some(lock) = lock {
        diesel::update(users::table.find(user.id))
            .set(users::locked_until.eq(now + lock))
            .execute(&mut conn)
            .await?;
    }
    let details = json!({"failures": failures, "locked_minutes": lock.map(|l| l.num_minutes())});
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
    check_password(policy(org), password, &user.username, &user.email).map_err(|e| Error::invalid(field, e))
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

/// Makes a pending account active: it finished onboarding.
pub async fn activate(conn: &mut AsyncPgConnection, user_id: Uuid, now: DateTime<Utc>) -> Result<()> {
    diesel::update(users::table.find(user_id).filter(users::lifecycle.ne("active")))
        .set((
            users::lifecycle.eq("active"),
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
