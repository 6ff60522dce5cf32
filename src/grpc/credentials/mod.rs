//! The `Credentials` service.

mod admin;
mod enrollment;
mod public;

use tonic::{Request, Response, Status};

use crate::{
    grpc::batches::BatchStream,
    pb::{self, credentials_server::Credentials},
    state::AppState,
};

pub struct CredentialsService {
    state: AppState,
}

impl CredentialsService {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

type Rpc<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Credentials for CredentialsService {
    type EmailCredentialsStream = BatchStream;
    type SendResetLinksStream = BatchStream;

    async fn set_password(&self, request: Request<pb::SetPasswordRequest>) -> Rpc<pb::User> {
        admin::set_password(&self.state, request).await
    }

    async fn email_credentials(&self, request: Request<pb::EmailCredentialsRequest>) -> Rpc<BatchStream> {
        admin::email_credentials(&self.state, request).await
    }

    async fn send_reset_links(&self, request: Request<pb::SendResetLinksRequest>) -> Rpc<BatchStream> {
        admin::send_reset_links(&self.state, request).await
    }

    async fn request_password_reset(&self, request: Request<pb::RequestPasswordResetRequest>) -> Rpc<()> {
        public::request_reset(&self.state, request).await
    }

    async fn get_password_reset(
        &self,
        request: Request<pb::GetPasswordResetRequest>,
    ) -> Rpc<pb::PasswordResetInfo> {
        public::get_reset(&self.state, request).await
    }

    async fn complete_password_reset(
        &self,
        request: Request<pb::CompletePasswordResetRequest>,
    ) -> Rpc<pb::CompletePasswordResetResponse> {
        public::complete_reset(&self.state, request).await
    }

    async fn change_password(&self, request: Request<pb::ChangePasswordRequest>) -> Rpc<()> {
        public::change_password(&self.state, request).await
    }

    async fn begin_second_factor_enrollment(
        &self,
        request: Request<pb::BeginSecondFactorEnrollmentRequest>,
    ) -> Rpc<pb::BeginSecondFactorResponse> {
        enrollment::begin(&self.state, request).await
    }

    async fn complete_second_factor_enrollment(
        &self,
        request: Request<pb::CompleteSecondFactorEnrollmentRequest>,
    ) -> Rpc<()> {
        enrollment::complete(&self.state, request).await
    }

    async fn authenticate(&self, request: Request<pb::AuthenticateRequest>) -> Rpc<pb::AuthenticateResponse> {
        public::authenticate(&self.state, request).await
    }
}
