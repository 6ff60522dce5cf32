//! Users: creation, lookup and the filtered list with its per-status counts.
//! The status is computed from stored facts and the clock when read.

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Nullable, Text, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use super::{
    audit::{self, Actor},
    catalog::{self, Catalog},
};
use crate::{
    db::{
        Cached,
        schema::{access_grants, roles, service_areas, users},
    },
    error::{Error, Result},
    services::Services,
};

mod list;

use crate::lifecycle::user::Stage;
pub use crate::lifecycle::user::Status;
pub use list::{UserFilter, UserPage, list};

/// Every column of `UserRow`, from `users u`, as a literal for `concat!`:
/// kept statements must name their columns (PostgreSQL refuses one whose `*`
/// a migration has since widened). A test holds it to `UserRow`.
macro_rules! user_columns {
    () => {
        "u.id, u.organization_id, u.email, u.username, u.first_name, u.last_name, u.mobile, \
         u.lifecycle, u.deactivated_at, u.invitation_expires_at, u.password_hash, \
         u.must_change_password, u.password_expires_at, u.failed_sign_ins, u.locked_until, \
         u.created_at, u.updated_at, u.activated_at, u.last_sign_in_at"
    };
}

#[derive(Clone, Debug, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub email: String,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub mobile: String,
    pub lifecycle: Stage,
    pub deactivated_at: Option<DateTime<Utc>>,
    pub invitation_expires_at: Option<DateTime<Utc>>,
    pub password_hash: Option<String>,
    pub must_change_password: bool,
    pub password_expires_at: Option<DateTime<Utc>>,
    pub failed_sign_ins: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

impl UserRow {
    pub fn status(&self, now: DateTime<Utc>) -> Status {
        self.lifecycle
            .status(self.deactivated_at, self.invitation_expires_at, now)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, QueryableByName)]
pub struct Grant {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub service_area_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub role_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub service_area_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub role_name: String,
}

#[derive(Clone, Debug)]
pub struct User {
    pub row: UserRow,
    pub grants: Vec<Grant>,
    pub status: Status,
}

/// A validated user to create.
#[derive(Debug, Default)]
pub struct NewUser {
    pub email: String,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub mobile: String,
    pub grants: Vec<(Uuid, Uuid)>,
    /// An initial password, checked against the organisation's policy and
    /// stored only as its hash.
    pub password: Option<String>,
    pub must_change_password: bool,
}

/// Checks that each (service area, role) pair names entries of the
/// organisation; an unknown one is reported on the request field given.
pub async fn check_grants(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    grants: &[(Uuid, Uuid)],
) -> Result<()> {
    let (areas, roles): (Vec<Uuid>, Vec<Uuid>) = grants.iter().copied().unzip();
    for (catalog, ids, field) in [
        (Catalog::ServiceAreas, areas, "service_area_id"),
        (Catalog::Roles, roles, "role_id"),
    ] {
        if let Err(Error::NotFound(message)) =
            catalog::require_all(conn, catalog, organization_id, &ids).await
        {
            return Err(Error::invalid(field, message));
        }
    }
    Ok(())
}

/// Gives a user these (service area, role) grants, beside those it has.
pub async fn insert_grants(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    grants: &[(Uuid, Uuid)],
) -> Result<()> {
    let rows: Vec<_> = grants
        .iter()
        .map(|(area, role)| {
            (
                access_grants::user_id.eq(user_id),
                access_grants::service_area_id.eq(*area),
                access_grants::role_id.eq(*role),
            )
        })
        .collect();
    diesel::insert_into(access_grants::table)
        .values(&rows)
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct Clash {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    email: bool,
}

/// Refuses a sign-in name that could name two people: a username that is
/// another person's email, or an email that is another person's username.
/// (Sign-in also prefers an email match, for data written before this rule.)
pub async fn check_sign_in_names(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    user_id: Uuid,
    email: &str,
    username: &str,
) -> Result<()> {
    let clash: Option<Clash> = diesel::sql_query(
        // Where an email meets an email, or a username a username, the
        // unique indexes answer with their own messages.
        "SELECT lower(email) = lower($3) AS email FROM users WHERE organization_id = $1 AND id <> $2 \
         AND lower(email) <> lower($4) AND lower(username) <> lower($3) \
         AND (lower(email) = lower($3) OR lower(username) = lower($4)) LIMIT 1",
    )
    .bind::<diesel::sql_types::Uuid, _>(organization_id)
    .bind::<diesel::sql_types::Uuid, _>(user_id)
    .bind::<diesel::sql_types::Text, _>(username)
    .bind::<diesel::sql_types::Text, _>(email)
    .get_result(conn)
    .await
    .optional()?;
    match clash {
        None => Ok(()),
        Some(Clash { email: true }) => Err(Error::exists(
            "username",
            "another person of the organisation has this as their email, which signs in as them",
        )),
        Some(Clash { email: false }) => Err(Error::exists(
            "email",
            "another person of the organisation signs in with this as their username",
        )),
    }
}

/// Creates a person, STAGED until contacted.
pub async fn create(app: &Services, organization_id: Uuid, new: NewUser, actor: &Actor) -> Result<User> {
    let password_hash = match &new.password {
        None => None,
        Some(password) => {
            let organization = super::organizations::get(app, organization_id)
                .await?
                .organization;
            let policy = organization.password_policy();
            crate::passwords::check_password(policy, password, &new.username, &new.email)
                .map_err(|e| Error::invalid("password", e))?;
            Some(app.hasher.hash(password.clone()).await?)
        }
    };
    let now = app.clock.now();
    let mut conn = app.pool.get().await?;
    let created = conn
        .transaction(async move |conn| {
            check_grants(conn, organization_id, &new.grants).await?;
            check_sign_in_names(conn, organization_id, Uuid::nil(), &new.email, &new.username).await?;
            let row = UserRow {
                id: Uuid::now_v7(),
                organization_id,
                email: new.email,
                username: new.username,
                first_name: new.first_name,
                last_name: new.last_name,
                mobile: new.mobile,
                lifecycle: Stage::Staged,
                deactivated_at: None,
                invitation_expires_at: None,
                must_change_password: new.must_change_password && password_hash.is_some(),
                password_hash,
                password_expires_at: None,
                failed_sign_ins: 0,
                locked_until: None,
                created_at: now,
                updated_at: now,
                activated_at: None,
                last_sign_in_at: None,
            };
            diesel::insert_into(users::table)
                .values(&row)
                .execute(conn)
                .await?;
            insert_grants(conn, row.id, &new.grants).await?;
            audit::record(
                conn,
                actor,
                organization_id,
                "user.create",
                ("user", row.id),
                json!({
                    "email": row.email,
                    "username": row.username,
                    "grants": new.grants.len(),
                    "password_set": row.password_hash.is_some(),
                }),
                now,
            )
            .await?;
            let id = row.id;
            find(conn, organization_id, id, now).await
        })
        .await?;
    tracing::info!(user.id = %created.row.id, "user created");
    Ok(created)
}

/// One person with their status and grants.
pub async fn get(app: &Services, organization_id: Uuid, id: Uuid) -> Result<User> {
    find(&mut *app.pool.get().await?, organization_id, id, app.clock.now()).await
}

pub async fn find(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<User> {
    // One round trip: a row per grant (or one with none), the user repeated.
    // Fixed raw SQL, kept prepared: diesel renders a built query's text anew
    // on every call, which for this one cost the server about 30 µs a call,
    // nearly a third of all it spent on a GetUser.
    let rows: Vec<UserWithGrant> = Cached(
        diesel::sql_query(concat!(
            "SELECT ",
            user_columns!(),
            ", g.service_area_id AS grant_service_area_id, g.role_id AS grant_role_id, \
             a.name AS grant_service_area_name, r.name AS grant_role_name \
             FROM users u LEFT JOIN (access_grants g \
               JOIN service_areas a ON a.id = g.service_area_id \
               JOIN roles r ON r.id = g.role_id) ON g.user_id = u.id \
             WHERE u.organization_id = $1 AND u.id = $2 \
             ORDER BY a.name, r.name"
        ))
        .bind::<SqlUuid, _>(organization_id)
        .bind::<SqlUuid, _>(id),
    )
    .load(conn)
    .await?;
    let mut grants = Vec::with_capacity(rows.len());
    let mut found = None;
    for row in rows {
        if let (Some(service_area_id), Some(role_id), Some(service_area_name), Some(role_name)) = (
            row.grant_service_area_id,
            row.grant_role_id,
            row.grant_service_area_name,
            row.grant_role_name,
        ) {
            grants.push(Grant {
                service_area_id,
                role_id,
                service_area_name,
                role_name,
            });
        }
        found.get_or_insert(row.user);
    }
    let row =
        found.ok_or_else(|| Error::not_found(format!("user {id} does not exist in this organisation")))?;
    let status = row.status(now);
    Ok(User { row, grants, status })
}

/// A user, repeated on each of its grants (none when it has none).
#[derive(QueryableByName)]
struct UserWithGrant {
    #[diesel(embed)]
    user: UserRow,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    grant_service_area_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    grant_role_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    grant_service_area_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    grant_role_name: Option<String>,
}

/// Users with their grants and status, from rows already read.
pub async fn with_grants(
    conn: &mut AsyncPgConnection,
    rows: Vec<UserRow>,
    now: DateTime<Utc>,
) -> Result<Vec<User>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let grants: Vec<(Uuid, Uuid, Uuid, String, String)> = access_grants::table
        .inner_join(service_areas::table)
        .inner_join(roles::table)
        .filter(access_grants::user_id.eq_any(&ids))
        .select((
            access_grants::user_id,
            access_grants::service_area_id,
            access_grants::role_id,
            service_areas::name,
            roles::name,
        ))
        .order((access_grants::user_id, service_areas::name, roles::name))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let grants = grants
                .iter()
                .filter(|g| g.0 == row.id)
                .map(|g| Grant {
                    service_area_id: g.1,
                    role_id: g.2,
                    service_area_name: g.3.clone(),
                    role_name: g.4.clone(),
                })
                .collect();
            let status = row.status(now);
            User { row, grants, status }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::pg::Pg;

    #[test]
    fn the_kept_column_list_names_every_field_of_user_row() {
        let built = diesel::debug_query::<Pg, _>(&users::table.select(UserRow::as_select())).to_string();
        let selected = built
            .strip_prefix("SELECT ")
            .and_then(|rest| rest.split(" FROM ").next())
            .unwrap_or_default();
        let from_builder: Vec<String> = selected
            .split(", ")
            .map(|c| c.replace("\"users\".", "").replace('"', ""))
            .collect();
        let kept: Vec<String> = user_columns!()
            .split(',')
            .map(|c| c.trim().trim_start_matches("u.").to_owned())
            .collect();
        assert_eq!(kept, from_builder);
    }
}
