//! SendInvitations: the request converted to a bulk send, and its stream.

use tonic::{Request, Response, Status};

use crate::{
    domain::{
        caller::Scope,
        invitations::{
            bulk::{self, InvitationRequest},
            plan::Recipients,
        },
    },
    grpc::{
        actor,
        batches::{self, BatchStream},
        caller,
    },
    pb,
    state::AppState,
};

pub async fn send_invitations(
    state: &AppState,
    request: Request<pb::SendInvitationsRequest>,
) -> Result<Response<BatchStream>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::InvitationsWrite)?;
    let actor = actor(&request)?;
    let req = request.into_inner();
    let send = bulk::invitations(
        state,
        InvitationRequest {
            organization_id: org,
            recipients: Recipients {
                text: req.recipients_text,
                emails: req.emails,
                user_ids: req.user_ids,
                all_staged: req.all_staged,
            },
            service_area_id: req.service_area_id,
            role_id: req.role_id,
            idempotency_key: req.idempotency_key,
            dry_run: req.dry_run,
        },
    )
    .await?;
    Ok(Response::new(batches::start(state, send, &actor).await?))
}
