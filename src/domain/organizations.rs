//! Organisations and their onboarding policy, including versioned terms.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use super::{
    audit::{self, Actor},
    paging::Page,
};
use crate::services::Services;
use crate::{
    db::schema::{organizations, terms_versions},
    error::{Error, Result},
};

pub const DEFAULT_INVITATION_TTL_SECS: i32 = 7 * 24 * 3600;
pub const DEFAULT_RESET_LINK_TTL_SECS: i32 = 3600;
pub const DEFAULT_TEMPORARY_PASSWORD_TTL_SECS: i32 = 7 * 24 * 3600;
pub const DEFAULT_PASSWORD_MIN_LENGTH: i32 = 12;
pub const SECOND_FACTOR_METHODS: [&str; 3] = ["totp", "email", "sms"];

/// The second-factor methods an organisation allows: those it names, or all
/// when it names none.
pub fn second_factor_methods(org: &Organization) -> Vec<String> {
    if org.second_factor_methods.is_empty() {
        SECOND_FACTOR_METHODS.iter().map(|m| (*m).to_owned()).collect()
    } else {
        org.second_factor_methods.clone()
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = organizations)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub invitation_ttl_secs: i32,
    pub reset_link_ttl_secs: i32,
    pub temporary_password_ttl_secs: i32,
    pub second_factor_required: bool,
    pub second_factor_methods: Vec<String>,
    pub password_min_length: i32,
    pub terms_version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Organization {
    /// The rules a password of this organisation must meet.
    pub fn password_policy(&self) -> crate::passwords::PasswordPolicy {
        crate::passwords::PasswordPolicy {
            min_length: usize::try_from(self.password_min_length).unwrap_or(12),
        }
    }
}

/// Policy values to set; `None` leaves a value as it is (or at its default).
#[derive(Clone, Debug, Default, AsChangeset)]
#[diesel(table_name = organizations)]
pub struct PolicyChanges {
    pub name: Option<String>,
    pub invitation_ttl_secs: Option<i32>,
    pub reset_link_ttl_secs: Option<i32>,
    pub temporary_password_ttl_secs: Option<i32>,
    pub second_factor_required: Option<bool>,
    pub second_factor_methods: Option<Vec<String>>,
    pub password_min_length: Option<i32>,
}

#[derive(Clone, Debug, Default)]
pub struct NewTerms {
    pub title: String,
    pub body: String,
    pub url: String,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = terms_versions)]
pub struct TermsVersion {
    pub organization_id: Uuid,
    pub version: i32,
    pub title: String,
    pub body: String,
    pub url: String,
    pub published_at: DateTime<Utc>,
}

/// An organisation with its current terms, if it published any.
#[derive(Clone, Debug)]
pub struct OrganizationWithTerms {
    pub organization: Organization,
    pub terms: Option<TermsVersion>,
}

/// Creates an organisation with its policy (and terms, when given).
pub async fn create(
    app: &Services,
    name: String,
    policy: PolicyChanges,
    terms: Option<NewTerms>,
    actor: &Actor,
) -> Result<OrganizationWithTerms> {
    needs_key(app, &policy)?;
    let mut conn = app.pool.get().await?;
    let created = insert(&mut conn, name, policy, terms, actor, app.clock.now()).await?;
    tracing::info!(organization.id = %created.organization.id, "organization created");
    Ok(created)
}

/// Second-factor secrets are encrypted with the server's key: a policy that
/// requires them needs one.
fn needs_key(app: &Services, changes: &PolicyChanges) -> Result<()> {
    if changes.second_factor_required == Some(true) && app.secrets.is_none() {
        return Err(Error::FailedPrecondition(
            "a second factor cannot be required until the server has ONRAMP_SECRET_KEY to encrypt its secrets".into(),
        ));
    }
    Ok(())
}

/// Writes an organisation, its audit event and its first terms, in a
/// transaction of its own (or the caller's).
pub async fn insert(
    conn: &mut AsyncPgConnection,
    name: String,
    policy: PolicyChanges,
    terms: Option<NewTerms>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<OrganizationWithTerms> {
    let org = Organization {
        id: Uuid::now_v7(),
        name,
        invitation_ttl_secs: policy.invitation_ttl_secs.unwrap_or(DEFAULT_INVITATION_TTL_SECS),
        reset_link_ttl_secs: policy.reset_link_ttl_secs.unwrap_or(DEFAULT_RESET_LINK_TTL_SECS),
        temporary_password_ttl_secs: policy
            .temporary_password_ttl_secs
            .unwrap_or(DEFAULT_TEMPORARY_PASSWORD_TTL_SECS),
        second_factor_required: policy.second_factor_required.unwrap_or(false),
        second_factor_methods: policy.second_factor_methods.unwrap_or_default(),
        password_min_length: policy.password_min_length.unwrap_or(DEFAULT_PASSWORD_MIN_LENGTH),
        terms_version: 0,
        created_at: now,
        updated_at: now,
    };
    conn.transaction(async move |conn| {
        diesel::insert_into(organizations::table)
            .values(&org)
            .execute(conn)
            .await?;
        audit::record(
            conn,
            actor,
            org.id,
            "organization.create",
            ("organization", org.id),
            json!({"name": org.name}),
            now,
        )
        .await?;
        match terms {
            Some(terms) => publish_terms(conn, org.id, terms, actor, now).await,
            None => Ok(OrganizationWithTerms {
                organization: org,
                terms: None,
            }),
        }
    })
    .await
}

/// Whether any organisation asks its people for a second factor.
pub async fn any_require_second_factor(conn: &mut AsyncPgConnection) -> Result<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        organizations::table.filter(organizations::second_factor_required.eq(true)),
    ))
    .get_result(conn)
    .await?)
}

/// The organisation alone, without its terms.
pub async fn find_row(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Organization>> {
    Ok(organizations::table
        .find(id)
        .select(Organization::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// An organisation with its current terms.
pub async fn get(app: &Services, id: Uuid) -> Result<OrganizationWithTerms> {
    find(&mut *app.pool.get().await?, id).await
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> Result<OrganizationWithTerms> {
    let organization = organizations::table
        .find(id)
        .select(Organization::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| Error::not_found(format!("organization {id} does not exist")))?;
    let terms = current_terms(conn, &organization).await?;
    Ok(OrganizationWithTerms { organization, terms })
}

/// `organization` with its current terms, read only when it publishes any.
pub async fn with_terms(
    conn: &mut AsyncPgConnection,
    organization: Organization,
) -> Result<OrganizationWithTerms> {
    let terms = current_terms(conn, &organization).await?;
    Ok(OrganizationWithTerms { organization, terms })
}

async fn current_terms(conn: &mut AsyncPgConnection, org: &Organization) -> Result<Option<TermsVersion>> {
    if org.terms_version == 0 {
        return Ok(None);
    }
    Ok(terms_versions::table
        .find((org.id, org.terms_version))
        .select(TermsVersion::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Every published version of the organisation's terms, newest first. A
/// page token holds the version the previous page ended at.
pub async fn terms_history(
    app: &Services,
    organization_id: Uuid,
    page: Page,
) -> Result<(Vec<TermsVersion>, String)> {
    let mut pooled = app.pool.get().await?;
    let conn = &mut *pooled;
    let mut query = terms_versions::table
        .filter(terms_versions::organization_id.eq(organization_id))
        .select(TermsVersion::as_select())
        .order(terms_versions::version.desc())
        .limit(page.fetch_limit())
        .into_boxed();
    if let Some(after) = page.after {
        let version = i32::try_from(after.as_u128()).unwrap_or(i32::MAX);
        query = query.filter(terms_versions::version.lt(version));
    }
    let found = query.load(conn).await?;
    Ok(page.finish(found, |t: &TermsVersion| {
        Uuid::from_u128(u128::try_from(t.version).unwrap_or_default())
    }))
}

pub async fn update(
    app: &Services,
    id: Uuid,
    changes: PolicyChanges,
    terms: Option<NewTerms>,
    actor: &Actor,
) -> Result<OrganizationWithTerms> {
    needs_key(app, &changes)?;
    let now = app.clock.now();
    let mut pooled = app.pool.get().await?;
    let conn = &mut *pooled;
    conn.transaction(async move |conn| {
        let details = json!({
            "name": changes.name,
            "invitation_ttl_secs": changes.invitation_ttl_secs,
            "reset_link_ttl_secs": changes.reset_link_ttl_secs,
            "temporary_password_ttl_secs": changes.temporary_password_ttl_secs,
            "second_factor_required": changes.second_factor_required,
            "second_factor_methods": changes.second_factor_methods,
            "password_min_length": changes.password_min_length,
        });
        let updated = diesel::update(organizations::table.find(id))
            .set((&changes, organizations::updated_at.eq(now)))
            .returning(Organization::as_returning())
            .get_result(conn)
            .await
            .optional()?
            .ok_or_else(|| Error::not_found(format!("organization {id} does not exist")))?;
        audit::record(
            conn,
            actor,
            id,
            "organization.update",
            ("organization", id),
            strip_nulls(details),
            now,
        )
        .await?;
        match terms {
            Some(terms) => publish_terms(conn, id, terms, actor, now).await,
            None => {
                let terms = current_terms(conn, &updated).await?;
                Ok(OrganizationWithTerms {
                    organization: updated,
                    terms,
                })
            }
        }
    })
    .await
}

/// Publishes the next terms version. Call inside a transaction.
async fn publish_terms(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    terms: NewTerms,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<OrganizationWithTerms> {
    let organization = diesel::update(organizations::table.find(id))
        .set((
            organizations::terms_version.eq(organizations::terms_version + 1),
            organizations::updated_at.eq(now),
        ))
        .returning(Organization::as_returning())
        .get_result(conn)
        .await?;
    let version = TermsVersion {
        organization_id: id,
        version: organization.terms_version,
        title: terms.title,
        body: terms.body,
        url: terms.url,
        published_at: now,
    };
    diesel::insert_into(terms_versions::table)
        .values(&version)
        .execute(conn)
        .await?;
    audit::record(
        conn,
        actor,
        id,
        "terms.publish",
        ("organization", id),
        json!({"version": version.version}),
        now,
    )
    .await?;
    Ok(OrganizationWithTerms {
        organization,
        terms: Some(version),
    })
}

fn strip_nulls(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => map.into_iter().filter(|(_, v)| !v.is_null()).collect(),
        other => other,
    }
}
