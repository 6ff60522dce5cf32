//! CreateUser, GetUser, ListUsers.

use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    domain::{
        caller::Scope,
        paging::Page,
        user_lifecycle::{self, UserChanges},
        users::{self, NewUser, UserFilter},
        validate,
    },
    error::{Error, Violations},
    grpc::{actor, caller, convert},
    pb,
    state::AppState,
};

/// Names and similar free text on a user.
const MAX_PERSON_NAME_LENGTH: usize = 200;
/// Keeps one user's grants to what an admin screen can show.
const MAX_GRANTS: usize = 100;

pub async fn create(
    state: &AppState,
    request: Request<pb::CreateUserRequest>,
) -> Result<Response<pb::User>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::UsersWrite)?;
    let actor = actor(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let email = v.check("email", validate::email(&req.email));
    let username = if req.username.trim().is_empty() {
        email.clone()
    } else {
        v.check("username", validate::username(&req.username))
    };
    let first_name = v.check(
        "first_name",
        validate::line(&req.first_name, MAX_PERSON_NAME_LENGTH),
    );
    let last_name = v.check(
        "last_name",
        validate::line(&req.last_name, MAX_PERSON_NAME_LENGTH),
    );
    let mobile = v.check("mobile", validate::optional_mobile(&req.mobile));
    let grants = grants(&req, &mut v);
    v.into_result()?;
    let new = NewUser {
        email: email.unwrap_or_default(),
        username: username.unwrap_or_default(),
        first_name: first_name.unwrap_or_default(),
        last_name: last_name.unwrap_or_default(),
        mobile: mobile.unwrap_or_default(),
        grants,
        password: Some(req.password).filter(|p| !p.is_empty()),
        must_change_password: req.must_change_password,
    };
    let user = users::create(state, org, new, &actor).await?;
    Ok(Response::new(convert::user(user)))
}

/// The access grants of a create request: the `service_area_id` + `role_id`
/// shorthand and the `access_grants` list, without repeats.
fn grants(req: &pb::CreateUserRequest, v: &mut Violations) -> Vec<(Uuid, Uuid)> {
    let mut pairs = Vec::new();
    let shorthand = (req.service_area_id.trim(), req.role_id.trim());
    match shorthand {
        ("", "") => {}
        (area, "") if !area.is_empty() => v.add("role_id", "is required with service_area_id"),
        ("", _) => v.add("service_area_id", "is required with role_id"),
        (area, role) => {
            let area = v.check("service_area_id", validate::id(area));
            let role = v.check("role_id", validate::id(role));
            if let (Some(a), Some(r)) = (area, role) {
                pairs.push((a, r));
            }
        }
    }
    for (i, g) in req.access_grants.iter().enumerate() {
        let area = v.check(
            &format!("access_grants[{i}].service_area_id"),
            validate::id(&g.service_area_id),
        );
        let role = v.check(&format!("access_grants[{i}].role_id"), validate::id(&g.role_id));
        if let (Some(a), Some(r)) = (area, role) {
            if !pairs.contains(&(a, r)) {
                pairs.push((a, r));
            }
        }
    }
    if pairs.len() > MAX_GRANTS {
        v.add(
            "access_grants",
            format!("at most {MAX_GRANTS} access grants per user"),
        );
    }
    pairs
}

pub async fn get(
    state: &AppState,
    request: Request<pb::GetUserRequest>,
) -> Result<Response<pb::User>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::Read)?;
    let id = validate::id(&request.get_ref().user_id).map_err(|e| Error::invalid("user_id", e))?;
    let user = users::get(state, org, id).await?;
    Ok(Response::new(convert::user(user)))
}

pub async fn list(
    state: &AppState,
    request: Request<pb::ListUsersRequest>,
) -> Result<Response<pb::ListUsersResponse>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::Read)?;
    let req = request.into_inner();
    let page = Page::parse(req.page_size, &req.page_token)?;
    let mut v = Violations::new();
    let optional_id = |field: &str, raw: &str, v: &mut Violations| {
        if raw.trim().is_empty() {
            None
        } else {
            v.check(field, validate::id(raw))
        }
    };
    let filter = UserFilter {
        status: pb::UserStatus::try_from(req.status)
            .ok()
            .and_then(convert::status_from_pb),
        service_area_id: optional_id("service_area_id", &req.service_area_id, &mut v),
        role_id: optional_id("role_id", &req.role_id, &mut v),
        query: Some(req.query).filter(|q| !q.trim().is_empty()),
    };
    if pb::UserStatus::try_from(req.status).is_err() {
        v.add("status", format!("{} is not a status", req.status));
    }
    v.into_result()?;
    let result = users::list(state, org, filter, page).await?;
    Ok(Response::new(pb::ListUsersResponse {
        users: result.users.into_iter().map(convert::user).collect(),
        next_page_token: result.next_page_token,
        total_size: i32::try_from(result.total).unwrap_or(i32::MAX),
        status_counts: result
            .counts
            .into_iter()
            .map(|(status, count)| pb::StatusCount {
                status: convert::status(status) as i32,
                count: i32::try_from(count).unwrap_or(i32::MAX),
            })
            .collect(),
    }))
}

pub async fn update(
    state: &AppState,
    request: Request<pb::UpdateUserRequest>,
) -> Result<Response<pb::User>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::UsersWrite)?;
    let actor = actor(&request)?;
    let req = request.into_inner();
    let id = validate::id(&req.user_id).map_err(|e| Error::invalid("user_id", e))?;
    let user = req.user.unwrap_or_default();
    let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
    let mut v = Violations::new();
    if paths.is_empty() {
        v.add(
            "update_mask",
            "name the fields to change, such as 'first_name' or 'access_grants'",
        );
    }
    let mut changes = UserChanges::default();
    let mut grants = None;
    for path in &paths {
        match path.as_str() {
            "email" => changes.email = v.check("user.email", validate::email(&user.email)),
            "username" => changes.username = v.check("user.username", validate::username(&user.username)),
            "first_name" => {
                changes.first_name = v.check(
                    "user.first_name",
                    validate::line(&user.first_name, MAX_PERSON_NAME_LENGTH),
                )
            }
            "last_name" => {
                changes.last_name = v.check(
                    "user.last_name",
                    validate::line(&user.last_name, MAX_PERSON_NAME_LENGTH),
                )
            }
            "mobile" => changes.mobile = v.check("user.mobile", validate::optional_mobile(&user.mobile)),
            "must_change_password" => changes.must_change_password = Some(user.must_change_password),
            "access_grants" => {
                let request = pb::CreateUserRequest {
                    access_grants: user.access_grants.clone(),
                    ..Default::default()
                };
                grants = Some(self::grants(&request, &mut v));
            }
            other => v.add(
                "update_mask",
                format!("{} is not a field that can be changed", validate::quote(other)),
            ),
        }
    }
    v.into_result()?;
    let user = user_lifecycle::update(state, org, id, changes, grants, &actor).await?;
    Ok(Response::new(convert::user(user)))
}

pub async fn deactivate(
    state: &AppState,
    request: Request<pb::DeactivateUserRequest>,
) -> Result<Response<pb::User>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::UsersWrite)?;
    let actor = actor(&request)?;
    let req = request.into_inner();
    let id = validate::id(&req.user_id).map_err(|e| Error::invalid("user_id", e))?;
    let reason = validate::optional_text(&req.reason, MAX_PERSON_NAME_LENGTH * 5)
        .map_err(|e| Error::invalid("reason", e))?;
    let user = user_lifecycle::deactivate(state, org, id, reason, &actor).await?;
    Ok(Response::new(convert::user(user)))
}

pub async fn reactivate(
    state: &AppState,
    request: Request<pb::ReactivateUserRequest>,
) -> Result<Response<pb::User>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::UsersWrite)?;
    let actor = actor(&request)?;
    let id = validate::id(&request.get_ref().user_id).map_err(|e| Error::invalid("user_id", e))?;
    let user = user_lifecycle::reactivate(state, org, id, &actor).await?;
    Ok(Response::new(convert::user(user)))
}

pub async fn delete(
    state: &AppState,
    request: Request<pb::DeleteUserRequest>,
) -> Result<Response<()>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::UsersWrite)?;
    let actor = actor(&request)?;
    let id = validate::id(&request.get_ref().user_id).map_err(|e| Error::invalid("user_id", e))?;
    user_lifecycle::delete(state, org, id, &actor).await?;
    Ok(Response::new(()))
}
