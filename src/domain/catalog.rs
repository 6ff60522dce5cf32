//! Service areas and roles: the two named lists an access grant points into.
//! They have the same shape, so one implementation serves both.

use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    sql_types::{BigInt, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use super::{
    audit::{self, Actor},
    paging::Page,
    validate,
};
use crate::{
    error::{Error, Result, Violations},
    services::Services,
};

const MAX_DESCRIPTION_LENGTH: usize = 2_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Catalog {
    ServiceAreas,
    Roles,
}

impl Catalog {
    fn table(self) -> &'static str {
        match self {
            Catalog::ServiceAreas => "service_areas",
            Catalog::Roles => "roles",
        }
    }

    /// The singular noun, for messages and the audit log.
    pub fn noun(self) -> &'static str {
        match self {
            Catalog::ServiceAreas => "service area",
            Catalog::Roles => "role",
        }
    }

    fn audit_type(self) -> &'static str {
        match self {
            Catalog::ServiceAreas => "service_area",
            Catalog::Roles => "role",
        }
    }
}

#[derive(Clone, Debug, QueryableByName)]
pub struct Entry {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub organization_id: Uuid,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub description: String,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

/// Creates a service area or role; the name and description are checked
/// here.
pub async fn create(
    app: &Services,
    catalog: Catalog,
    organization_id: Uuid,
    name: &str,
    description: &str,
    actor: &Actor,
) -> Result<Entry> {
    let mut violations = Violations::new();
    let name = violations.check("name", validate::name(name)).unwrap_or_default();
    let description = violations
        .check(
            "description",
            validate::optional_text(description, MAX_DESCRIPTION_LENGTH),
        )
        .unwrap_or_default();
    violations.into_result()?;
    let mut conn = app.pool.get().await?;
    insert(
        &mut conn,
        catalog,
        organization_id,
        name,
        description,
        actor,
        app.clock.now(),
    )
    .await
}

/// Writes an entry and its audit event, in a transaction of its own (or
/// the caller's).
pub async fn insert(
    conn: &mut AsyncPgConnection,
    catalog: Catalog,
    organization_id: Uuid,
    name: String,
    description: String,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Entry> {
    let sql = format!(
        "INSERT INTO {} (id, organization_id, name, description, created_at) VALUES ($1, $2, $3, $4, $5) \
         RETURNING id, organization_id, name, description, created_at",
        catalog.table()
    );
    conn.transaction(async move |conn| {
        let entry: Entry = diesel::sql_query(sql)
            .bind::<SqlUuid, _>(Uuid::now_v7())
            .bind::<SqlUuid, _>(organization_id)
            .bind::<Text, _>(&name)
            .bind::<Text, _>(&description)
            .bind::<Timestamptz, _>(now)
            .get_result(conn)
            .await?;
        audit::record(
            conn,
            actor,
            organization_id,
            &format!("{}.create", catalog.audit_type()),
            (catalog.audit_type(), entry.id),
            json!({"name": entry.name}),
            now,
        )
        .await?;
        Ok(entry)
    })
    .await
}

/// In creation order.
pub async fn list(
    app: &Services,
    catalog: Catalog,
    organization_id: Uuid,
    page: Page,
) -> Result<(Vec<Entry>, String)> {
    let mut conn = app.pool.get().await?;
    let sql = format!(
        "SELECT id, organization_id, name, description, created_at FROM {} \
         WHERE organization_id = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
        catalog.table()
    );
    let rows = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(organization_id)
        .bind::<diesel::sql_types::Nullable<SqlUuid>, _>(page.after)
        .bind::<BigInt, _>(page.fetch_limit())
        .load(&mut conn)
        .await?;
    Ok(page.finish(rows, |e: &Entry| e.id))
}

/// Every entry of the organisation, for look-ups by name.
pub async fn all(
    conn: &mut AsyncPgConnection,
    catalog: Catalog,
    organization_id: Uuid,
) -> Result<Vec<Entry>> {
    let sql = format!(
        "SELECT id, organization_id, name, description, created_at FROM {} WHERE organization_id = $1",
        catalog.table()
    );
    Ok(diesel::sql_query(sql)
        .bind::<SqlUuid, _>(organization_id)
        .load(conn)
        .await?)
}

/// The name of an entry, if it exists.
pub async fn name(conn: &mut AsyncPgConnection, catalog: Catalog, id: Option<Uuid>) -> Result<String> {
    let Some(id) = id else {
        return Ok(String::new());
    };
    let sql = format!(
        "SELECT id, organization_id, name, description, created_at FROM {} WHERE id = $1",
        catalog.table()
    );
    let found: Vec<Entry> = diesel::sql_query(sql).bind::<SqlUuid, _>(id).load(conn).await?;
    Ok(found.into_iter().next().map(|e| e.name).unwrap_or_default())
}

/// Checks that every id names an entry of the organisation; answers the
/// entries in the order asked.
pub async fn require_all(
    conn: &mut AsyncPgConnection,
    catalog: Catalog,
    organization_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Entry>> {
    let sql = format!(
        "SELECT id, organization_id, name, description, created_at FROM {} \
         WHERE organization_id = $1 AND id = ANY($2)",
        catalog.table()
    );
    let found: Vec<Entry> = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(organization_id)
        .bind::<diesel::sql_types::Array<SqlUuid>, _>(ids)
        .load(conn)
        .await?;
    ids.iter()
        .map(|id| {
            found.iter().find(|e| e.id == *id).cloned().ok_or_else(|| {
                Error::NotFound(format!(
                    "{} {id} does not exist in this organisation",
                    catalog.noun()
                ))
            })
        })
        .collect()
}
