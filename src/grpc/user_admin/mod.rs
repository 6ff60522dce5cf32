//! The `UserAdmin` service.

mod api_keys;
mod audit;
mod catalog;
pub mod import;
mod organizations;
mod users;

use tonic::{Request, Response, Status, Streaming};

use crate::{
    domain::{caller::Scope, catalog::Catalog},
    grpc::{actor, caller, convert},
    pb::{self, user_admin_server::UserAdmin},
    state::AppState,
};

pub struct UserAdminService {
    state: AppState,
}

impl UserAdminService {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

type Rpc<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl UserAdmin for UserAdminService {
    async fn create_organization(
        &self,
        request: Request<pb::CreateOrganizationRequest>,
    ) -> Rpc<pb::Organization> {
        organizations::create(&self.state, request).await
    }

    async fn get_organization(&self, request: Request<pb::GetOrganizationRequest>) -> Rpc<pb::Organization> {
        organizations::get(&self.state, request).await
    }

    async fn update_organization(
        &self,
        request: Request<pb::UpdateOrganizationRequest>,
    ) -> Rpc<pb::Organization> {
        organizations::update(&self.state, request).await
    }

    async fn list_terms(&self, request: Request<pb::ListTermsRequest>) -> Rpc<pb::ListTermsResponse> {
        organizations::list_terms(&self.state, request).await
    }

    async fn create_service_area(
        &self,
        request: Request<pb::CreateServiceAreaRequest>,
    ) -> Rpc<pb::ServiceArea> {
        let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::UsersWrite)?;
        let actor = actor(&request)?;
        let req = request.get_ref();
        let entry = catalog::create(
            &self.state,
            Catalog::ServiceAreas,
            org,
            &actor,
            &req.name,
            &req.description,
        )
        .await?;
        Ok(Response::new(convert::service_area(entry)))
    }

    async fn list_service_areas(
        &self,
        request: Request<pb::ListServiceAreasRequest>,
    ) -> Rpc<pb::ListServiceAreasResponse> {
        let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::Read)?;
        let req = request.get_ref();
        let (entries, next_page_token) = catalog::list(
            &self.state,
            Catalog::ServiceAreas,
            org,
            req.page_size,
            &req.page_token,
        )
        .await?;
        Ok(Response::new(pb::ListServiceAreasResponse {
            service_areas: entries.into_iter().map(convert::service_area).collect(),
            next_page_token,
        }))
    }

    async fn create_role(&self, request: Request<pb::CreateRoleRequest>) -> Rpc<pb::Role> {
        let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::UsersWrite)?;
        let actor = actor(&request)?;
        let req = request.get_ref();
        let entry = catalog::create(
            &self.state,
            Catalog::Roles,
            org,
            &actor,
            &req.name,
            &req.description,
        )
        .await?;
        Ok(Response::new(convert::role(entry)))
    }

    async fn list_roles(&self, request: Request<pb::ListRolesRequest>) -> Rpc<pb::ListRolesResponse> {
        let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::Read)?;
        let req = request.get_ref();
        let (entries, next_page_token) =
            catalog::list(&self.state, Catalog::Roles, org, req.page_size, &req.page_token).await?;
        Ok(Response::new(pb::ListRolesResponse {
            roles: entries.into_iter().map(convert::role).collect(),
            next_page_token,
        }))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Rpc<pb::CreateApiKeyResponse> {
        api_keys::create(&self.state, request).await
    }

    async fn list_api_keys(&self, request: Request<pb::ListApiKeysRequest>) -> Rpc<pb::ListApiKeysResponse> {
        api_keys::list(&self.state, request).await
    }

    async fn revoke_api_key(&self, request: Request<pb::RevokeApiKeyRequest>) -> Rpc<pb::ApiKey> {
        api_keys::revoke(&self.state, request).await
    }

    async fn create_user(&self, request: Request<pb::CreateUserRequest>) -> Rpc<pb::User> {
        users::create(&self.state, request).await
    }

    async fn get_user(&self, request: Request<pb::GetUserRequest>) -> Rpc<pb::User> {
        users::get(&self.state, request).await
    }

    async fn list_users(&self, request: Request<pb::ListUsersRequest>) -> Rpc<pb::ListUsersResponse> {
        users::list(&self.state, request).await
    }

    async fn update_user(&self, request: Request<pb::UpdateUserRequest>) -> Rpc<pb::User> {
        users::update(&self.state, request).await
    }

    async fn deactivate_user(&self, request: Request<pb::DeactivateUserRequest>) -> Rpc<pb::User> {
        users::deactivate(&self.state, request).await
    }

    async fn reactivate_user(&self, request: Request<pb::ReactivateUserRequest>) -> Rpc<pb::User> {
        users::reactivate(&self.state, request).await
    }

    async fn delete_user(&self, request: Request<pb::DeleteUserRequest>) -> Rpc<()> {
        users::delete(&self.state, request).await
    }

    type ImportUsersStream = import::ImportStream;

    async fn import_users(
        &self,
        request: Request<Streaming<pb::ImportUsersRequest>>,
    ) -> Rpc<Self::ImportUsersStream> {
        import::import(&self.state, request).await
    }

    type ImportUsersCsvStream = import::ImportStream;

    async fn import_users_csv(
        &self,
        request: Request<pb::ImportUsersCsvRequest>,
    ) -> Rpc<Self::ImportUsersCsvStream> {
        import::import_csv(&self.state, request).await
    }

    async fn get_caller(&self, request: Request<pb::GetCallerRequest>) -> Rpc<pb::CallerInfo> {
        let who = caller(&request)?;
        Ok(Response::new(pb::CallerInfo {
            api_key_id: who.api_key_id.map(|id| id.to_string()).unwrap_or_default(),
            organization_id: who.organization_id.map(|id| id.to_string()).unwrap_or_default(),
            scopes: who.scopes.iter().map(|s| convert::scope(*s) as i32).collect(),
        }))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Rpc<pb::ListAuditEventsResponse> {
        audit::list(&self.state, request).await
    }
}
