//! Changing, pausing, resuming and deleting users.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{
    audit::{self, Actor},
    users::{self, User, UserRow, check_grants},
};
use crate::{
    db::schema::{access_grants, users as users_table},
    error::{Error, Result},
    services::Services,
};

/// Profile fields to set; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, AsChangeset)]
#[diesel(table_name = users_table)]
pub struct UserChanges {
    pub email: Option<String>,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub mobile: Option<String>,
    pub must_change_password: Option<bool>,
}

impl UserChanges {
    /// What the audit log records: the fields set and their new values.
    fn describe(&self) -> Map<String, Value> {
        let mut map = Map::new();
        for (name, value) in [
            ("email", &self.email),
            ("username", &self.username),
            ("first_name", &self.first_name),
            ("last_name", &self.last_name),
            ("mobile", &self.mobile),
        ] {
            if let Some(v) = value {
                map.insert(name.into(), Value::String(v.clone()));
            }
        }
        if let Some(v) = self.must_change_password {
            map.insert("must_change_password".into(), Value::Bool(v));
        }
        map
    }
}

async fn lock(conn: &mut AsyncPgConnection, organization_id: Uuid, id: Uuid) -> Result<UserRow> {
    users_table::table
        .filter(users_table::organization_id.eq(organization_id))
        .filter(users_table::id.eq(id))
        .select(UserRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| Error::not_found(format!("user {id} does not exist in this organisation")))
}

pub async fn update(
    app: &Services,
    organization_id: Uuid,
    id: Uuid,
    changes: UserChanges,
    grants: Option<Vec<(Uuid, Uuid)>>,
    actor: &Actor,
) -> Result<User> {
    let now = app.clock.now();
    let mut pooled = app.pool.get().await?;
    let conn = &mut *pooled;
    conn.transaction(async move |conn| {
        let current = lock(conn, organization_id, id).await?;
        if changes.must_change_password == Some(true) && current.password_hash.is_none() {
            return Err(Error::FailedPrecondition(
                "the user has no password yet, so there is none to change".into(),
            ));
        }
        if changes.email.is_some() || changes.username.is_some() {
            let email = changes.email.as_deref().unwrap_or(&current.email);
            let username = changes.username.as_deref().unwrap_or(&current.username);
            users::check_sign_in_names(conn, organization_id, id, email, username).await?;
        }
        let mut details = changes.describe();
        diesel::update(users_table::table.find(id))
            .set((&changes, users_table::updated_at.eq(now)))
            .execute(conn)
            .await?;
        if let Some(grants) = grants {
            check_grants(conn, organization_id, &grants).await?;
            diesel::delete(access_grants::table.filter(access_grants::user_id.eq(id)))
                .execute(conn)
                .await?;
            users::insert_grants(conn, id, &grants).await?;
            details.insert("access_grants".into(), json!(grants.len()));
        }
        audit::record(
            conn,
            actor,
            organization_id,
            "user.update",
            ("user", id),
            Value::Object(details),
            now,
        )
        .await?;
        users::find(conn, organization_id, id, now).await
    })
    .await
}

/// Pauses a user. Pausing a paused user changes nothing.
pub async fn deactivate(
    app: &Services,
    organization_id: Uuid,
    id: Uuid,
    reason: String,
    actor: &Actor,
) -> Result<User> {
    let now = app.clock.now();
    let mut pooled = app.pool.get().await?;
    let conn = &mut *pooled;
    conn.transaction(async move |conn| {
        let current = lock(conn, organization_id, id).await?;
        if current.deactivated_at.is_none() {
            diesel::update(users_table::table.find(id))
                .set((
                    users_table::deactivated_at.eq(now),
                    users_table::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            let details = json!({"reason": reason, "status_before": current.status(now).name()});
            audit::record(
                conn,
                actor,
                organization_id,
                "user.deactivate",
                ("user", id),
                details,
                now,
            )
            .await?;
        }
        users::find(conn, organization_id, id, now).await
    })
    .await
}

/// Returns a paused user to the status it had; a user that is not paused is
/// left as it is.
pub async fn reactivate(app: &Services, organization_id: Uuid, id: Uuid, actor: &Actor) -> Result<User> {
    let now = app.clock.now();
    let mut pooled = app.pool.get().await?;
    let conn = &mut *pooled;
    conn.transaction(async move |conn| {
        let current = lock(conn, organization_id, id).await?;
        if current.deactivated_at.is_some() {
            diesel::update(users_table::table.find(id))
                .set((
                    users_table::deactivated_at.eq(None::<DateTime<Utc>>),
                    users_table::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            audit::record(
                conn,
                actor,
                organization_id,
                "user.reactivate",
                ("user", id),
                json!({}),
                now,
            )
            .await?;
        }
        users::find(conn, organization_id, id, now).await
    })
    .await
}

/// Deletes a user with its grants, invitations, tokens and queued emails
/// (by cascade). The audit log keeps who it was.
pub async fn delete(app: &Services, organization_id: Uuid, id: Uuid, actor: &Actor) -> Result<()> {
    let now = app.clock.now();
    let mut pooled = app.pool.get().await?;
    let conn = &mut *pooled;
    conn.transaction(async move |conn| {
        let current = lock(conn, organization_id, id).await?;
        diesel::delete(users_table::table.find(id)).execute(conn).await?;
        let details = json!({"email": current.email, "username": current.username});
        audit::record(
            conn,
            actor,
            organization_id,
            "user.delete",
            ("user", id),
            details,
            now,
        )
        .await
    })
    .await
}
