//! The organisations' own templates, stored per kind and locale; a kind
//! without one uses the system default.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{Kind, Template, default_template};
use crate::{db::schema::templates, error::Result};

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = templates)]
struct TemplateRow {
    organization_id: Uuid,
    kind: String,
    locale: String,
    subject: String,
    text_body: String,
    html_body: String,
    updated_at: DateTime<Utc>,
}

/// The organisation's template for `kind`, or the default.
pub async fn load(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    kind: Kind,
    locale: &str,
) -> Result<Template> {
    let row = templates::table
        .find((organization_id, kind.name(), locale))
        .select(TemplateRow::as_select())
        .first(conn)
        .await
        .optional()?;
    Ok(match row {
        Some(r) => Template {
            subject: r.subject,
            text_body: r.text_body,
            html_body: r.html_body,
            updated_at: Some(r.updated_at),
        },
        None => default_template(kind),
    })
}

pub async fn save(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    kind: Kind,
    locale: &str,
    template: &Template,
    now: DateTime<Utc>,
) -> Result<()> {
    let row = TemplateRow {
        organization_id,
        kind: kind.name().into(),
        locale: locale.into(),
        subject: template.subject.clone(),
        text_body: template.text_body.clone(),
        html_body: template.html_body.clone(),
        updated_at: now,
    };
    diesel::insert_into(templates::table)
        .values(&row)
        .on_conflict((templates::organization_id, templates::kind, templates::locale))
        .do_update()
        .set(&row)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn reset(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    kind: Kind,
    locale: &str,
) -> Result<()> {
    diesel::delete(templates::table.find((organization_id, kind.name(), locale)))
        .execute(conn)
        .await?;
    Ok(())
}
