//! The use cases of the organisations' templates: read one or all, change or
//! reset one, and preview one (stored or unsaved) for a sample person or a
//! real one.

use uuid::Uuid;

use super::{DEFAULT_LOCALE, Kind, Template, load, person_vars, render, reset, sample_vars, save, validate};
use crate::{
    domain::{
        audit::{self, Actor},
        caller::Scope,
        organizations, users,
    },
    error::{Error, Result},
    services::Services,
};

/// The scope that may edit a kind of email: the invitation belongs to
/// whoever sends invitations; every email that carries a credential (a
/// temporary password, a reset link, a code) to whoever manages credentials.
pub fn editing_scope(kind: Kind) -> Scope {
    match kind {
        Kind::Invitation => Scope::InvitationsWrite,
        Kind::Credentials | Kind::PasswordReset | Kind::Welcome | Kind::EmailCode => Scope::CredentialsWrite,
    }
}

/// The locale asked for, of those there are (only the default so far).
pub fn locale(raw: &str) -> Result<String> {
    match raw.trim() {
        "" | DEFAULT_LOCALE => Ok(DEFAULT_LOCALE.into()),
        other => Err(Error::invalid(
            "locale",
            format!(
                "{} is not available; the locale is '{DEFAULT_LOCALE}'",
                crate::domain::validate::quote(other)
            ),
        )),
    }
}

/// The organisation's template of `kind`, or the default.
pub async fn get(app: &Services, organization_id: Uuid, kind: Kind, locale: &str) -> Result<Template> {
    load(&mut *app.pool.get().await?, organization_id, kind, locale).await
}

/// The template of every kind, in the kinds' order.
pub async fn list(app: &Services, organization_id: Uuid, locale: &str) -> Result<Vec<(Kind, Template)>> {
    let mut conn = app.pool.get().await?;
    let mut found = Vec::new();
    for &kind in Kind::ALL {
        found.push((kind, load(&mut conn, organization_id, kind, locale).await?));
    }
    Ok(found)
}

/// A change to a template: new values for the parts named, or back to the
/// default.
pub enum Change {
    /// `None` for a part leaves it as it is.
    Parts {
        subject: Option<String>,
        text_body: Option<String>,
        html_body: Option<String>,
    },
    Default,
}

/// Changes the organisation's template of `kind`, checked before it is
/// stored, and audited; answers the template now in use.
pub async fn update(
    app: &Services,
    organization_id: Uuid,
    kind: Kind,
    locale: &str,
    change: Change,
    actor: &Actor,
) -> Result<Template> {
    let now = app.clock.now();
    let mut conn = app.pool.get().await?;
    let action = match change {
        Change::Default => {
            reset(&mut conn, organization_id, kind, locale).await?;
            "template.reset"
        }
        Change::Parts {
            subject,
            text_body,
            html_body,
        } => {
            let mut template = load(&mut conn, organization_id, kind, locale).await?;
            template.subject = subject.unwrap_or(template.subject);
            template.text_body = text_body.unwrap_or(template.text_body);
            template.html_body = html_body.unwrap_or(template.html_body);
            validate(kind, &template).map_err(Error::InvalidArgument)?;
            save(&mut conn, organization_id, kind, locale, &template, now).await?;
            "template.update"
        }
    };
    audit::record(
        &mut conn,
        actor,
        organization_id,
        action,
        ("organization", organization_id),
        serde_json::json!({"kind": kind.name(), "locale": locale}),
        now,
    )
    .await?;
    load(&mut conn, organization_id, kind, locale).await
}

/// An email as a preview renders it.
pub struct Preview {
    pub to: String,
    pub rendered: super::Rendered,
}

/// Renders `unsaved` (checked first), or the stored template, with sample
/// values or those of the person `user_id`, and the organisation's real
/// sign-in page.
pub async fn preview(
    app: &Services,
    organization_id: Uuid,
    kind: Kind,
    locale: &str,
    unsaved: Option<Template>,
    user_id: Option<Uuid>,
) -> Result<Preview> {
    let template = match unsaved {
        Some(template) => {
            validate(kind, &template).map_err(Error::InvalidArgument)?;
            template
        }
        None => get(app, organization_id, kind, locale).await?,
    };
    let organization = organizations::get(app, organization_id).await?.organization;
    let mut vars = sample_vars(kind, &organization.name);
    vars.insert("sign_in_url", app.config.links.sign_in_for(organization_id));
    let mut to = vars.get("email").cloned().unwrap_or_default();
    if let Some(user_id) = user_id {
        let user = users::get(app, organization_id, user_id).await?.row;
        let expires =
            app.clock.now() + chrono::TimeDelta::seconds(i64::from(organization.invitation_ttl_secs));
        vars.extend(person_vars(
            &organization.name,
            &user.first_name,
            &user.last_name,
            &user.email,
            &user.username,
            expires,
        ));
        to = user.email;
    }
    Ok(Preview {
        to,
        rendered: render(&template, &vars),
    })
}
