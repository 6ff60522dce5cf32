//! CreateOrganization, GetOrganization, UpdateOrganization, ListTerms.

use tonic::{Request, Response, Status};

use crate::{
    domain::{
        caller::Scope,
        organizations::{self, NewTerms, PolicyChanges, SECOND_FACTOR_METHODS},
        paging::Page,
        validate,
    },
    error::Violations,
    grpc::{actor, caller, convert},
    pb,
    state::AppState,
};

const TTL_RANGES: [(&str, i64, i64); 3] = [
    ("policy.invitation_ttl", 3_600, 90 * 86_400),
    ("policy.reset_link_ttl", 300, 7 * 86_400),
    ("policy.temporary_password_ttl", 3_600, 90 * 86_400),
];
const MAX_TERMS_LENGTH: usize = 100_000;
/// The policy's fields an update mask may name.
const POLICY_PATHS: [&str; 7] = [
    "policy.invitation_ttl",
    "policy.reset_link_ttl",
    "policy.temporary_password_ttl",
    "policy.second_factor_required",
    "policy.second_factor_methods",
    "policy.password_min_length",
    "policy.terms",
];

pub async fn create(
    state: &AppState,
    request: Request<pb::CreateOrganizationRequest>,
) -> Result<Response<pb::Organization>, Status> {
    caller(&request)?.require(Scope::Platform)?;
    let actor = actor(&request)?;
    let req = request.into_inner();
    let mut violations = Violations::new();
    let name = violations.check("name", validate::name(&req.name));
    let policy = req.policy.unwrap_or_default();
    let (changes, terms) = policy_changes(&policy, None, &mut violations);
    violations.into_result()?;
    let changes = PolicyChanges {
        name: None,
        ..changes
    };
    let org = organizations::create(state, name.unwrap_or_default(), changes, terms, &actor).await?;
    Ok(Response::new(convert::organization(org)))
}

pub async fn get(
    state: &AppState,
    request: Request<pb::GetOrganizationRequest>,
) -> Result<Response<pb::Organization>, Status> {
    let id = caller(&request)?.organization(&request.get_ref().organization_id, Scope::Read)?;
    Ok(Response::new(convert::organization(
        organizations::get(state, id).await?,
    )))
}

pub async fn list_terms(
    state: &AppState,
    request: Request<pb::ListTermsRequest>,
) -> Result<Response<pb::ListTermsResponse>, Status> {
    let id = caller(&request)?.organization(&request.get_ref().organization_id, Scope::Read)?;
    let req = request.into_inner();
    let page = Page::parse(req.page_size, &req.page_token)?;
    let (found, next_page_token) = organizations::terms_history(state, id, page).await?;
    Ok(Response::new(pb::ListTermsResponse {
        terms: found.into_iter().map(convert::terms).collect(),
        next_page_token,
    }))
}

pub async fn update(
    state: &AppState,
    request: Request<pb::UpdateOrganizationRequest>,
) -> Result<Response<pb::Organization>, Status> {
    let requested = request
        .get_ref()
        .organization
        .as_ref()
        .map(|o| o.id.clone())
        .unwrap_or_default();
    let id = caller(&request)?.organization(&requested, Scope::Admin)?;
    let actor = actor(&request)?;
    let req = request.into_inner();
    let org = req.organization.unwrap_or_default();
    let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
    let mut violations = Violations::new();
    if paths.is_empty() {
        violations.add(
            "update_mask",
            "name the fields to change, such as 'name' or 'policy.invitation_ttl'",
        );
    }
    let mut name = None;
    for path in &paths {
        match path.as_str() {
            "name" => name = violations.check("organization.name", validate::name(&org.name)),
            "policy" => {}
            p if POLICY_PATHS.contains(&p) => {}
            other => violations.add(
                "update_mask",
                format!("{} is not a field that can be changed", validate::quote(other)),
            ),
        }
    }
    let policy = org.policy.unwrap_or_default();
    let (changes, terms) = policy_changes(&policy, Some(&paths), &mut violations);
    violations.into_result()?;
    let updated = organizations::update(state, id, PolicyChanges { name, ..changes }, terms, &actor).await?;
    Ok(Response::new(convert::organization(updated)))
}

/// Reads the policy fields named by `paths` (all set ones when `None`),
/// recording what is wrong in `violations`.
fn policy_changes(
    policy: &pb::OnboardingPolicy,
    paths: Option<&[String]>,
    violations: &mut Violations,
) -> (PolicyChanges, Option<NewTerms>) {
    let wanted = |field: &str| match paths {
        None => true,
        Some(paths) => paths
            .iter()
            .any(|p| p == "policy" || p == &format!("policy.{field}")),
    };
    let mut changes = PolicyChanges::default();
    let ttls = [
        &policy.invitation_ttl,
        &policy.reset_link_ttl,
        &policy.temporary_password_ttl,
    ];
    let mut secs = [None; 3];
    for (i, (field, min, max)) in TTL_RANGES.iter().enumerate() {
        let short = field.trim_start_matches("policy.");
        match ttls[i] {
            Some(d) if wanted(short) => {
                if d.seconds < *min || d.seconds > *max {
                    violations.add(
                        *field,
                        format!("must be between {} and {}", human(*min), human(*max)),
                    );
                } else {
                    secs[i] = i32::try_from(d.seconds).ok();
                }
            }
            None if paths.is_some() && paths.is_some_and(|p| p.iter().any(|p| p == *field)) => {
                violations.add(*field, "is required when named in update_mask");
            }
            _ => {}
        }
    }
    changes.invitation_ttl_secs = secs[0];
    changes.reset_link_ttl_secs = secs[1];
    changes.temporary_password_ttl_secs = secs[2];
    if wanted("second_factor_required") && (paths.is_some() || policy.second_factor_required) {
        changes.second_factor_required = Some(policy.second_factor_required);
    }
    if wanted("second_factor_methods") && (paths.is_some() || !policy.second_factor_methods.is_empty()) {
        let mut methods = Vec::new();
        for m in &policy.second_factor_methods {
            match pb::SecondFactorMethod::try_from(*m)
                .ok()
                .and_then(convert::second_factor_method_name)
            {
                Some(name) if !methods.contains(&name.to_owned()) => methods.push(name.to_owned()),
                Some(_) => {}
                None => violations.add(
                    "policy.second_factor_methods",
                    format!("must be among {}", SECOND_FACTOR_METHODS.join(", ")),
                ),
            }
        }
        changes.second_factor_methods = Some(methods);
    }
    if wanted("password_min_length") && (paths.is_some() || policy.password_min_length != 0) {
        if (8..=128).contains(&policy.password_min_length) {
            changes.password_min_length = Some(policy.password_min_length);
        } else {
            violations.add("policy.password_min_length", "must be between 8 and 128");
        }
    }
    let terms = match &policy.terms {
        Some(t) if wanted("terms") => {
            let title = violations.check("policy.terms.title", validate::name(&t.title));
            let body = violations.check(
                "policy.terms.text",
                validate::optional_text(&t.text, MAX_TERMS_LENGTH),
            );
            let url = t.url.trim().to_owned();
            if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
                violations.add("policy.terms.url", "must be an http:// or https:// URL");
            }
            if t.text.trim().is_empty() && url.is_empty() {
                violations.add("policy.terms", "needs a text or a url");
            }
            Some(NewTerms {
                title: title.unwrap_or_default(),
                body: body.unwrap_or_default(),
                url,
            })
        }
        None if paths.is_some_and(|p| p.iter().any(|p| p == "policy.terms")) => {
            violations.add(
                "organization.policy.terms",
                "is required when named in update_mask",
            );
            None
        }
        _ => None,
    };
    (changes, terms)
}

fn human(secs: i64) -> String {
    let (n, unit) = match secs {
        s if s % 86_400 == 0 => (s / 86_400, "day"),
        s if s % 3_600 == 0 => (s / 3_600, "hour"),
        s => (s / 60, "minute"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}
