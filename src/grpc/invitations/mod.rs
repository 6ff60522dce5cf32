//! The `Invitations` service.

mod manage;
pub mod send;
pub mod templates;

use tonic::{Request, Response, Status, Streaming};

use crate::{
    grpc::batches::BatchStream,
    pb::{self, invitations_server::Invitations},
    state::AppState,
};

pub struct InvitationsService {
    state: AppState,
}

impl InvitationsService {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

type Rpc<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Invitations for InvitationsService {
    type SendInvitationsStream = BatchStream;
    type StreamInvitationsStream = BatchStream;
    type WatchBatchStream = BatchStream;

    async fn send_invitations(&self, request: Request<pb::SendInvitationsRequest>) -> Rpc<BatchStream> {
        send::send_invitations(&self.state, request).await
    }

    async fn stream_invitations(
        &self,
        request: Request<Streaming<pb::StreamInvitationsRequest>>,
    ) -> Rpc<BatchStream> {
        send::stream_invitations(&self.state, request).await
    }

    async fn watch_batch(&self, request: Request<pb::WatchBatchRequest>) -> Rpc<BatchStream> {
        manage::watch(&self.state, request).await
    }

    async fn list_batches(&self, request: Request<pb::ListBatchesRequest>) -> Rpc<pb::ListBatchesResponse> {
        manage::list_batches(&self.state, request).await
    }

    async fn get_invitation(&self, request: Request<pb::GetInvitationRequest>) -> Rpc<pb::Invitation> {
        manage::get(&self.state, request).await
    }

    async fn list_invitations(
        &self,
        request: Request<pb::ListInvitationsRequest>,
    ) -> Rpc<pb::ListInvitationsResponse> {
        manage::list(&self.state, request).await
    }

    async fn resend_invitation(&self, request: Request<pb::ResendInvitationRequest>) -> Rpc<pb::Invitation> {
        manage::resend(&self.state, request).await
    }

    async fn revoke_invitation(&self, request: Request<pb::RevokeInvitationRequest>) -> Rpc<pb::Invitation> {
        manage::revoke(&self.state, request).await
    }

    async fn get_template(&self, request: Request<pb::GetTemplateRequest>) -> Rpc<pb::Template> {
        templates::get(&self.state, request).await
    }

    async fn update_template(&self, request: Request<pb::UpdateTemplateRequest>) -> Rpc<pb::Template> {
        templates::update(&self.state, request).await
    }

    async fn list_templates(
        &self,
        request: Request<pb::ListTemplatesRequest>,
    ) -> Rpc<pb::ListTemplatesResponse> {
        templates::list(&self.state, request).await
    }

    async fn render_template(&self, request: Request<pb::RenderTemplateRequest>) -> Rpc<pb::RenderedEmail> {
        templates::render(&self.state, request).await
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Rpc<pb::ListDeliveriesResponse> {
        manage::deliveries(&self.state, request).await
    }
}
