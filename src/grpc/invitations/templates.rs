//! GetTemplate, UpdateTemplate, ListTemplates and RenderTemplate.

use tonic::{Request, Response, Status};

use crate::{
    domain::{
        caller::Scope,
        templates::{
            Kind, Template,
            edit::{self, Change, editing_scope, locale},
        },
        validate,
    },
    error::Error,
    grpc::{actor, caller, convert},
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
    let template = edit::get(state, org, kind, &locale).await?;
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
    let templates = edit::list(state, org, &locale)
        .await?
        .into_iter()
        .map(|(kind, template)| template_pb(&org.to_string(), kind, &locale, template))
        .collect();
    Ok(Response::new(pb::ListTemplatesResponse { templates }))
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
    let change = if req.reset_to_default {
        Change::Default
    } else {
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        if let Some(path) = paths
            .iter()
            .find(|p| !["subject", "text_body", "html_body"].contains(&p.as_str()))
        {
            return Err(Error::invalid(
                "update_mask",
                format!("{} is not a field that can be changed", validate::quote(path)),
            )
            .into());
        }
        let wanted = |name: &str| paths.is_empty() || paths.iter().any(|p| p == name);
        Change::Parts {
            subject: wanted("subject").then_some(given.subject),
            text_body: wanted("text_body").then_some(given.text_body),
            html_body: wanted("html_body").then_some(given.html_body),
        }
    };
    let template = edit::update(state, org, kind, &locale, change, &actor).await?;
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
    let unsaved = req.template.map(|t| Template {
        subject: t.subject,
        text_body: t.text_body,
        html_body: t.html_body,
        updated_at: None,
    });
    let user_id = if req.user_id.trim().is_empty() {
        None
    } else {
        Some(validate::id(&req.user_id).map_err(|e| Error::invalid("user_id", e))?)
    };
    let preview = edit::preview(state, org, kind, &locale, unsaved, user_id).await?;
    Ok(Response::new(pb::RenderedEmail {
        to: preview.to,
        subject: preview.rendered.subject,
        text_body: preview.rendered.text,
        html_body: preview.rendered.html,
    }))
}
