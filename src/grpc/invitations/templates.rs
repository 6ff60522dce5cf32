//! GetTemplate, UpdateTemplate, ListTemplates and RenderTemplate.

use tonic::{Request, Response, Status};

use crate::{
    domain::{
        caller::Scope,
        organizations,
        templates::{self, DEFAULT_LOCALE, Kind, Template},
        users, validate,
    },
    error::Error,
    grpc::{actor, caller, convert},
    outbox::compose::person_vars,
    pb,
    state::AppState,
};

pub fn kind_pb(kind: Kind) -> pb::EmailKind {
    match kind {
        Kind::Invitation => pb::EmailKind::Invitation,
        Kind::Credentials => pb::EmailKind::Credentials,
        Kind::PasswordReset => pb::EmailKind::PasswordReset,
        Kind::Welcome => pb::EmailKind::Welcome,
        Kind::EmailCode => pb::EmailKind::EmailCode,
    }
}

pub fn kind_from_pb(kind: pb::EmailKind) -> Option<Kind> {
    Kind::ALL.iter().copied().find(|k| kind_pb(*k) == kind)
}

fn kind(raw: i32, field: &str) -> Result<Kind, Error> {
    pb::EmailKind::try_from(raw)
        .ok()
        .and_then(kind_from_pb)
        .ok_or_else(|| Error::invalid(field, "name a kind of email, such as EMAIL_KIND_INVITATION"))
}

/// The scope that may edit a kind of email: the invitation belongs to
/// whoever sends invitations; every email that carries a credential (a
/// temporary password, a reset link, a code) to whoever manages credentials.
fn editing_scope(kind: Kind) -> Scope {
    match kind {
        Kind::Invitation => Scope::InvitationsWrite,
        Kind::Credentials | Kind::PasswordReset | Kind::Welcome | Kind::EmailCode => Scope::CredentialsWrite,
    }
}

fn locale(raw: &str) -> Result<String, Error> {
    match raw.trim() {
        "" | DEFAULT_LOCALE => Ok(DEFAULT_LOCALE.into()),
        other => Err(Error::invalid(
            "locale",
            format!(
                "{} is not available; the locale is '{DEFAULT_LOCALE}'",
                validate::quote(other)
            ),
        )),
    }
}

fn template_pb(organization_id: &str, kind: Kind, locale: &str, t: Template) -> pb::Template {
    pb::Template {
        organization_id: organization_id.to_owned(),
        kind: kind_pb(kind) as i32,
        locale: locale.to_owned(),
        subject: t.subject,
        text_body: t.text_body,
        html_body: t.html_body,
        is_default: t.updated_at.is_none(),
        update_time: convert::opt_timestamp(t.updated_at),
    }
}

pub async fn get(
    state: &AppState,
    request: Request<pb::GetTemplateRequest>,
) -> Result<Response<pb::Template>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::Read)?;
    let req = request.into_inner();
    let kind = kind(req.kind, "kind")?;
    let locale = locale(&req.locale)?;
    let mut conn = state.pool.get().await.map_err(Error::from)?;
    let template = templates::load(&mut conn, org, kind, &locale).await?;
    Ok(Response::new(template_pb(
        &org.to_string(),
        kind,
        &locale,
        template,
    )))
}

pub async fn list(
    state: &AppState,
    request: Request<pb::ListTemplatesRequest>,
) -> Result<Response<pb::ListTemplatesResponse>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::Read)?;
    let locale = locale(&request.get_ref().locale)?;
    let mut conn = state.pool.get().await.map_err(Error::from)?;
    let mut found = Vec::new();
    for &kind in Kind::ALL {
        let template = templates::load(&mut conn, org, kind, &locale).await?;
        found.push(template_pb(&org.to_string(), kind, &locale, template));
    }
    Ok(Response::new(pb::ListTemplatesResponse { templates: found }))
}

pub async fn update(
    state: &AppState,
    request: Request<pb::UpdateTemplateRequest>,
) -> Result<Response<pb::Template>, Status> {
    let requested = request
        .get_ref()
        .template
        .as_ref()
        .map(|t| t.organization_id.clone())
        .unwrap_or_default();
    let given_kind = request.get_ref().template.as_ref().map_or(0, |t| t.kind);
    let kind = kind(given_kind, "template.kind")?;
    let org = caller(&request)?.organization(&requested, editing_scope(kind))?;
    let actor = actor(&request)?;
    let req = request.into_inner();
    let given = req.template.unwrap_or_default();
    let locale = locale(&given.locale)?;
    let now = state.clock.now();
    let mut conn = state.pool.get().await.map_err(Error::from)?;
    if req.reset_to_default {
        templates::reset(&mut conn, org, kind, &locale).await?;
    } else {
        let mut template = templates::load(&mut conn, org, kind, &locale).await?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let all = paths.is_empty();
        for path in &paths {
            if !["subject", "text_body", "html_body"].contains(&path.as_str()) {
                return Err(Error::invalid(
                    "update_mask",
                    format!("{} is not a field that can be changed", validate::quote(path)),
                )
                .into());
            }
        }
        let wanted = |name: &str| all || paths.iter().any(|p| p == name);
        if wanted("subject") {
            template.subject = given.subject;
        }
        if wanted("text_body") {
            template.text_body = given.text_body;
        }
        if wanted("html_body") {
            template.html_body = given.html_body;
        }
        templates::validate(kind, &template).map_err(Error::InvalidArgument)?;
        templates::save(&mut conn, org, kind, &locale, &template, now).await?;
    }
    crate::domain::audit::record(
        &mut conn,
        &actor,
        org,
        if req.reset_to_default {
            "template.reset"
        } else {
            "template.update"
        },
        ("organization", org),
        serde_json::json!({"kind": kind.name(), "locale": locale}),
        now,
    )
    .await?;
    let template = templates::load(&mut conn, org, kind, &locale).await?;
    Ok(Response::new(template_pb(
        &org.to_string(),
        kind,
        &locale,
        template,
    )))
}

pub async fn render(
    state: &AppState,
    request: Request<pb::RenderTemplateRequest>,
) -> Result<Response<pb::RenderedEmail>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::Read)?;
    let req = request.into_inner();
    let kind = kind(req.kind, "kind")?;
    let locale = locale(&req.locale)?;
    let mut conn = state.pool.get().await.map_err(Error::from)?;
    let template = match req.template {
        Some(t) => {
            let template = Template {
                subject: t.subject,
                text_body: t.text_body,
                html_body: t.html_body,
                updated_at: None,
            };
            templates::validate(kind, &template).map_err(Error::InvalidArgument)?;
            template
        }
        None => templates::load(&mut conn, org, kind, &locale).await?,
    };
    let organization = organizations::find(&mut conn, org).await?.organization;
    let mut vars = templates::sample_vars(kind, &organization.name);
    // The organisation's real sign-in page, not a sample one.
    vars.insert("sign_in_url", state.config.links.sign_in_for(org));
    let mut to = vars.get("email").cloned().unwrap_or_default();
    if !req.user_id.trim().is_empty() {
        let user_id = validate::id(&req.user_id).map_err(|e| Error::invalid("user_id", e))?;
        let user = users::find(&mut conn, org, user_id, state.clock.now()).await?.row;
        let expires =
            state.clock.now() + chrono::TimeDelta::seconds(i64::from(organization.invitation_ttl_secs));
        for (key, value) in person_vars(
            &organization.name,
            &user.first_name,
            &user.last_name,
            &user.email,
            &user.username,
            expires,
        ) {
            vars.insert(key, value);
        }
        to = user.email;
    }
    let rendered = templates::render(&template, &vars);
    Ok(Response::new(pb::RenderedEmail {
        to,
        subject: rendered.subject,
        text_body: rendered.text,
        html_body: rendered.html,
    }))
}
