//! The `Invitations` service.

use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::{
    grpc::{caller, not_yet},
    pb::{self, invitations_server::Invitations},
    state::AppState,
};

pub struct InvitationsService {
    #[expect(dead_code, reason = "used as the service's RPCs are filled in")]
    state: AppState,
}

impl InvitationsService {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

pub type BatchStream = Pin<Box<dyn Stream<Item = Result<pb::BatchEvent, Status>> + Send>>;
type Rpc<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Invitations for InvitationsService {
    type SendInvitationsStream = BatchStream;
    type WatchBatchStream = BatchStream;

    async fn send_invitations(&self, request: Request<pb::SendInvitationsRequest>) -> Rpc<BatchStream> {
        caller(&request)?;
        Err(not_yet("SendInvitations"))
    }

    async fn watch_batch(&self, request: Request<pb::WatchBatchRequest>) -> Rpc<BatchStream> {
        caller(&request)?;
        Err(not_yet("WatchBatch"))
    }

    async fn get_invitation(&self, request: Request<pb::GetInvitationRequest>) -> Rpc<pb::Invitation> {
        caller(&request)?;
        Err(not_yet("GetInvitation"))
    }

    async fn list_invitations(
        &self,
        request: Request<pb::ListInvitationsRequest>,
    ) -> Rpc<pb::ListInvitationsResponse> {
        caller(&request)?;
        Err(not_yet("ListInvitations"))
    }

    async fn resend_invitation(&self, request: Request<pb::ResendInvitationRequest>) -> Rpc<pb::Invitation> {
        caller(&request)?;
        Err(not_yet("ResendInvitation"))
    }

    async fn revoke_invitation(&self, request: Request<pb::RevokeInvitationRequest>) -> Rpc<pb::Invitation> {
        caller(&request)?;
        Err(not_yet("RevokeInvitation"))
    }

    async fn get_template(&self, request: Request<pb::GetTemplateRequest>) -> Rpc<pb::Template> {
        caller(&request)?;
        Err(not_yet("GetTemplate"))
    }

    async fn update_template(&self, request: Request<pb::UpdateTemplateRequest>) -> Rpc<pb::Template> {
        caller(&request)?;
        Err(not_yet("UpdateTemplate"))
    }

    async fn list_templates(
        &self,
        request: Request<pb::ListTemplatesRequest>,
    ) -> Rpc<pb::ListTemplatesResponse> {
        caller(&request)?;
        Err(not_yet("ListTemplates"))
    }

    async fn render_template(&self, request: Request<pb::RenderTemplateRequest>) -> Rpc<pb::RenderedEmail> {
        caller(&request)?;
        Err(not_yet("RenderTemplate"))
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Rpc<pb::ListDeliveriesResponse> {
        caller(&request)?;
        Err(not_yet("ListDeliveries"))
    }
}
