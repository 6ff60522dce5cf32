//! The audit log: who changed what, when, and from where. Written in the same
//! transaction as the change, so the log and the data never disagree.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use super::paging::Page;
use crate::{db::schema::audit_events, error::Result, services::Services};

/// Who is acting, for the audit log.
#[derive(Clone, Debug)]
pub struct Actor {
    pub name: String,
    pub client_address: String,
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: Uuid,
    pub organization_id: Option<Uuid>,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub client_address: String,
    pub details: Value,
    pub created_at: DateTime<Utc>,
}

/// Records one event. `details` says what changed, never a secret.
pub async fn record(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    organization_id: Uuid,
    action: &str,
    target: (&str, Uuid),
    details: Value,
    now: DateTime<Utc>,
) -> Result<()> {
    diesel::insert_into(audit_events::table)
        .values(AuditEvent {
            id: Uuid::now_v7(),
            organization_id: Some(organization_id),
            actor: actor.name.clone(),
            action: action.to_owned(),
            target_type: target.0.to_owned(),
            target_id: target.1.to_string(),
            client_address: actor.client_address.clone(),
            details,
            created_at: now,
        })
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Default)]
pub struct AuditFilter {
    pub target_id: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

/// Newest first.
pub async fn list(
    app: &Services,
    organization_id: Uuid,
    filter: AuditFilter,
    page: Page,
) -> Result<(Vec<AuditEvent>, String)> {
    let mut conn = app.pool.get().await?;
    let mut query = audit_events::table
        .filter(audit_events::organization_id.eq(organization_id))
        .select(AuditEvent::as_select())
        .order(audit_events::id.desc())
        .limit(page.fetch_limit())
        .into_boxed();
    if let Some(after) = page.after {
        query = query.filter(audit_events::id.lt(after));
    }
    if let Some(target) = filter.target_id {
        query = query.filter(audit_events::target_id.eq(target));
    }
    if let Some(actor) = filter.actor {
        query = query.filter(audit_events::actor.eq(actor));
    }
    if let Some(action) = filter.action {
        query = query.filter(audit_events::action.eq(action));
    }
    if let Some(start) = filter.start {
        query = query.filter(audit_events::created_at.ge(start));
    }
    if let Some(end) = filter.end {
        query = query.filter(audit_events::created_at.lt(end));
    }
    let rows = query.load(&mut conn).await?;
    Ok(page.finish(rows, |e| e.id))
}
