//! What every scenario needs: an organisation with a service area and a role.

use onramp::pb::{self, user_admin_client::UserAdminClient};
use tonic::{Request, transport::Channel};

pub fn authed<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().expect("header"));
    request
}

pub struct Org {
    pub id: String,
    pub service_area_id: String,
    pub role_id: String,
}

pub async fn organisation(channel: &Channel, key: &str) -> Org {
    let mut admin = UserAdminClient::new(channel.clone());
    let org = admin
        .create_organization(authed(
            pb::CreateOrganizationRequest {
                name: "Bench".into(),
                policy: None,
            },
            key,
        ))
        .await
        .expect("organisation")
        .into_inner();
    let area = admin
        .create_service_area(authed(
            pb::CreateServiceAreaRequest {
                organization_id: org.id.clone(),
                name: "North ward".into(),
                description: String::new(),
            },
            key,
        ))
        .await
        .expect("service area")
        .into_inner();
    let role = admin
        .create_role(authed(
            pb::CreateRoleRequest {
                organization_id: org.id.clone(),
                name: "Nurse".into(),
                description: String::new(),
            },
            key,
        ))
        .await
        .expect("role")
        .into_inner();
    Org {
        id: org.id,
        service_area_id: area.id,
        role_id: role.id,
    }
}
