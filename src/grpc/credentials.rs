//! The `Credentials` service.

use tonic::{Request, Response, Status};

use crate::{
    grpc::{batches::BatchStream, caller, not_yet},
    pb::{self, credentials_server::Credentials},
    state::AppState,
};

pub struct CredentialsService {
    #[expect(dead_code, reason = "used as the service's RPCs are filled in")]
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
        caller(&request)?;
        Err(not_yet("SetPassword"))
    }

    async fn email_credentials(&self, request: Request<pb::EmailCredentialsRequest>) -> Rpc<BatchStream> {
        caller(&request)?;
        Err(not_yet("EmailCredentials"))
    }

    async fn send_reset_links(&self, request: Request<pb::SendResetLinksRequest>) -> Rpc<BatchStream> {
        caller(&request)?;
        Err(not_yet("SendResetLinks"))
    }

    async fn request_password_reset(&self, _request: Request<pb::RequestPasswordResetRequest>) -> Rpc<()> {
        Err(not_yet("RequestPasswordReset"))
    }

    async fn complete_password_reset(
        &self,
        _request: Request<pb::CompletePasswordResetRequest>,
    ) -> Rpc<pb::CompletePasswordResetResponse> {
        Err(not_yet("CompletePasswordReset"))
    }

    async fn change_password(&self, _request: Request<pb::ChangePasswordRequest>) -> Rpc<()> {
        Err(not_yet("ChangePassword"))
    }

    async fn authenticate(
        &self,
        _request: Request<pb::AuthenticateRequest>,
    ) -> Rpc<pb::AuthenticateResponse> {
        Err(not_yet("Authenticate"))
    }
}
