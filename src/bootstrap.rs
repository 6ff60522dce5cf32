//! The first-run experience: a development organisation with a service area,
//! a role and an admin API key, created when the database has no organisation.

use diesel::{prelude::*, sql_types::BigInt};
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::{
    domain::{
        api_keys,
        audit::Actor,
        caller::Scope,
        catalog::{self, Catalog},
        organizations::{self, PolicyChanges},
    },
    error::Result,
    services::Services,
};

/// Serialises the check-and-create across replicas starting together.
const BOOTSTRAP_LOCK: i64 = 0x6f6e_7261_6d70;

pub struct DevOrganization {
    pub organization_id: uuid::Uuid,
    pub name: String,
    pub api_key: String,
    pub service_area_id: uuid::Uuid,
    pub role_id: uuid::Uuid,
}

/// Creates the development organisation if no organisation exists. Answers it
/// with its key (shown only now), or `None` when there was one already.
pub async fn dev_organization(state: &Services) -> Result<Option<DevOrganization>> {
    let mut conn = state.pool.get().await?;
    let now = state.clock.now();
    let actor = Actor {
        name: "system".into(),
        client_address: String::new(),
    };
    conn.transaction(async move |conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<BigInt, _>(BOOTSTRAP_LOCK)
            .execute(conn)
            .await?;
        let existing: i64 = crate::db::schema::organizations::table
            .count()
            .get_result(conn)
            .await?;
        if existing > 0 {
            return Ok(None);
        }
        let org = organizations::insert(
            conn,
            "Development".into(),
            PolicyChanges::default(),
            None,
            &actor,
            now,
        )
        .await?
        .organization;
        let area = catalog::insert(
            conn,
            Catalog::ServiceAreas,
            org.id,
            "Head office".into(),
            String::new(),
            &actor,
            now,
        )
        .await?;
        let role = catalog::insert(
            conn,
            Catalog::Roles,
            org.id,
            "Member".into(),
            String::new(),
            &actor,
            now,
        )
        .await?;
        let (_, secret) = api_keys::insert(
            conn,
            org.id,
            "development".into(),
            &[Scope::Admin],
            None,
            &actor,
            now,
        )
        .await?;
        Ok(Some(DevOrganization {
            organization_id: org.id,
            name: org.name,
            api_key: secret.expose().to_owned(),
            service_area_id: area.id,
            role_id: role.id,
        }))
    })
    .await
}
