//! What every scenario needs: an organisation with a service area and a role,
//! and invitations sent to it.

use onramp::pb::{self, invitations_client::InvitationsClient, user_admin_client::UserAdminClient};
use tonic::{Request, Streaming, transport::Channel};

use crate::server::PLATFORM_KEY;

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

/// A user of `org` to read back, and the `GetUser` request that reads it.
pub async fn one_user(channel: &Channel, org: &Org) -> pb::GetUserRequest {
    let user = UserAdminClient::new(channel.clone())
        .create_user(authed(
            pb::CreateUserRequest {
                organization_id: org.id.clone(),
                email: "ada@bench.example".into(),
                first_name: "Ada".into(),
                service_area_id: org.service_area_id.clone(),
                role_id: org.role_id.clone(),
                ..Default::default()
            },
            PLATFORM_KEY,
        ))
        .await
        .expect("user")
        .into_inner();
    pb::GetUserRequest {
        organization_id: org.id.clone(),
        user_id: user.id,
    }
}

/// Invites every address in `text` (one a line) to `org`'s service area and
/// role; the results stream back as the emails are sent.
/// Addresses a part of `invite_in_parts` holds: one chunk of the server's.
pub const PART: usize = 5_000;

/// Invites the addresses of `text` (one a line) through `StreamInvitations`,
/// `PART` lines a message.
pub async fn invite_in_parts(channel: &Channel, org: &Org, text: &str) -> Streaming<pb::BatchEvent> {
    use pb::stream_invitations_request::Item;
    let send = pb::SendInvitationsRequest {
        organization_id: org.id.clone(),
        service_area_id: org.service_area_id.clone(),
        role_id: org.role_id.clone(),
        ..Default::default()
    };
    let lines: Vec<&str> = text.lines().collect();
    let parts = lines.chunks(PART).map(|part| pb::StreamInvitationsRequest {
        item: Some(Item::Recipients(pb::InvitationRecipients {
            recipients_text: part.join("\n"),
            ..Default::default()
        })),
    });
    let messages: Vec<_> = std::iter::once(pb::StreamInvitationsRequest {
        item: Some(Item::Send(send)),
    })
    .chain(parts)
    .collect();
    InvitationsClient::new(channel.clone())
        .stream_invitations(authed(tokio_stream::iter(messages), PLATFORM_KEY))
        .await
        .expect("invite in parts")
        .into_inner()
}

pub async fn invite(channel: &Channel, org: &Org, text: String) -> Streaming<pb::BatchEvent> {
    InvitationsClient::new(channel.clone())
        .max_decoding_message_size(64 << 20)
        .send_invitations(authed(
            pb::SendInvitationsRequest {
                organization_id: org.id.clone(),
                recipients_text: text,
                service_area_id: org.service_area_id.clone(),
                role_id: org.role_id.clone(),
                ..Default::default()
            },
            PLATFORM_KEY,
        ))
        .await
        .expect("invite")
        .into_inner()
}
