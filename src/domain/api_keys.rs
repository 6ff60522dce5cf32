//! API keys: random secrets shown once, stored as SHA-256 hashes, bound to an
//! organisation and scopes.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use super::{
    audit::{self, Actor},
    caller::{Caller, Scope},
    paging::Page,
    validate,
};
use crate::{
    db::schema::api_keys,
    error::{Error, Result, Violations},
    services::Services,
    tokens::PlainToken,
};

/// Every secret starts with this, so leaked keys are easy to spot.
pub const SECRET_PREFIX: &str = "onr_";
const SHOWN_PREFIX_LEN: usize = 12;

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub secret_hash: Vec<u8>,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    pub fn scopes(&self) -> Vec<Scope> {
        self.scopes.iter().filter_map(|s| Scope::parse(s)).collect()
    }
}

/// A key to create, as asked.
pub struct NewKey {
    pub organization_id: Uuid,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether a platform key asks: only it may make another.
    pub by_platform: bool,
}

/// Creates a key; answers it with its secret, shown this once.
pub async fn create(app: &Services, new: NewKey, actor: &Actor) -> Result<(ApiKey, PlainToken)> {
    let now = app.clock.now();
    let mut violations = Violations::new();
    let name = violations.check("name", validate::name(&new.name));
    if new.scopes.is_empty() {
        violations.add("scopes", "name at least one scope, such as API_KEY_SCOPE_ADMIN");
    }
    if new.scopes.contains(&Scope::Platform) && !new.by_platform {
        violations.add("scopes", "only a platform key may create platform keys");
    }
    if new.expires_at.is_some_and(|at| at <= now) {
        violations.add(
            "expire_time",
            "must be a time in the future, at most the year 9999",
        );
    }
    violations.into_result()?;
    let mut scopes: Vec<Scope> = Vec::new();
    for scope in new.scopes {
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    let mut conn = app.pool.get().await?;
    insert(
        &mut conn,
        new.organization_id,
        name.unwrap_or_default(),
        &scopes,
        new.expires_at,
        actor,
        now,
    )
    .await
}

/// Writes a key and its audit event, in a transaction of its own (or the
/// caller's).
pub async fn insert(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    name: String,
    scopes: &[Scope],
    expires_at: Option<DateTime<Utc>>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(ApiKey, PlainToken)> {
    let secret = PlainToken::generate(SECRET_PREFIX);
    let key = ApiKey {
        id: Uuid::now_v7(),
        organization_id,
        name,
        scopes: scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        secret_hash: secret.hash().0,
        prefix: secret.expose().chars().take(SHOWN_PREFIX_LEN).collect(),
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    conn.transaction(async move |conn| {
        diesel::insert_into(api_keys::table)
            .values(&key)
            .execute(conn)
            .await?;
        audit::record(
            conn,
            actor,
            organization_id,
            "api_key.create",
            ("api_key", key.id),
            json!({"name": key.name, "scopes": key.scopes}),
            now,
        )
        .await?;
        Ok((key, secret))
    })
    .await
}

pub async fn list(app: &Services, organization_id: Uuid, page: Page) -> Result<(Vec<ApiKey>, String)> {
    let mut conn = app.pool.get().await?;
    let mut query = api_keys::table
        .filter(api_keys::organization_id.eq(organization_id))
        .select(ApiKey::as_select())
        .order(api_keys::id)
        .limit(page.fetch_limit())
        .into_boxed();
    if let Some(after) = page.after {
        query = query.filter(api_keys::id.gt(after));
    }
    Ok(page.finish(query.load(&mut conn).await?, |k| k.id))
}

/// Revokes a key in the database; `key_cache::revoke` also stops it on
/// this replica at once.
pub async fn revoke(app: &Services, organization_id: Uuid, id: Uuid, actor: &Actor) -> Result<ApiKey> {
    let now = app.clock.now();
    let mut conn = app.pool.get().await?;
    let revoked = conn
        .transaction(async move |conn| {
            let key = api_keys::table
                .filter(api_keys::organization_id.eq(organization_id))
                .filter(api_keys::id.eq(id))
                .select(ApiKey::as_select())
                .for_update()
                .first(conn)
                .await
                .optional()?
                .ok_or_else(|| {
                    Error::not_found(format!("API key {id} does not exist in this organisation"))
                })?;
            if key.revoked_at.is_some() {
                return Ok::<_, Error>(key);
            }
            let key = diesel::update(api_keys::table.find(id))
                .set(api_keys::revoked_at.eq(now))
                .returning(ApiKey::as_returning())
                .get_result(conn)
                .await?;
            audit::record(
                conn,
                actor,
                organization_id,
                "api_key.revoke",
                ("api_key", id),
                json!({}),
                now,
            )
            .await?;
            Ok(key)
        })
        .await?;
    Ok(revoked)
}

/// The caller a presented secret stands for, if it is a live key, with the
/// time the key expires.
pub async fn authenticate(
    conn: &mut AsyncPgConnection,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<Option<(Caller, Option<DateTime<Utc>>)>> {
    let hash = PlainToken::from_presented(secret).hash();
    let key = api_keys::table
        .filter(api_keys::secret_hash.eq(hash.0))
        .select(ApiKey::as_select())
        .first(conn)
        .await
        .optional()?;
    Ok(key
        .filter(|k| k.revoked_at.is_none() && k.expires_at.is_none_or(|at| at > now))
        .map(|k| {
            let caller = Caller {
                api_key_id: Some(k.id),
                organization_id: Some(k.organization_id),
                scopes: k.scopes(),
            };
            (caller, k.expires_at)
        }))
}
