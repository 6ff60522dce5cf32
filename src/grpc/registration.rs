//! The `Registration` service (public: the invitation token is the
//! credential).

use tonic::{Request, Response, Status};

use crate::{
    grpc::not_yet,
    pb::{self, registration_server::Registration},
    state::AppState,
};

pub struct RegistrationService {
    #[expect(dead_code, reason = "used as the service's RPCs are filled in")]
    state: AppState,
}

impl RegistrationService {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

type Rpc<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Registration for RegistrationService {
    async fn get_registration(
        &self,
        _request: Request<pb::GetRegistrationRequest>,
    ) -> Rpc<pb::RegistrationInfo> {
        Err(not_yet("GetRegistration"))
    }

    async fn begin_second_factor(
        &self,
        _request: Request<pb::BeginSecondFactorRequest>,
    ) -> Rpc<pb::BeginSecondFactorResponse> {
        Err(not_yet("BeginSecondFactor"))
    }

    async fn complete_registration(
        &self,
        _request: Request<pb::CompleteRegistrationRequest>,
    ) -> Rpc<pb::User> {
        Err(not_yet("CompleteRegistration"))
    }

    async fn accept_terms(&self, _request: Request<pb::AcceptTermsRequest>) -> Rpc<()> {
        Err(not_yet("AcceptTerms"))
    }

    async fn request_new_invitation(&self, _request: Request<pb::RequestNewInvitationRequest>) -> Rpc<()> {
        Err(not_yet("RequestNewInvitation"))
    }
}
