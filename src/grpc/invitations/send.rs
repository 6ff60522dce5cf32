//! SendInvitations and StreamInvitations: the request converted to a bulk
//! send, and its stream.

use tokio_stream::StreamExt;
use tonic::{Code, Request, Response, Status, Streaming};

use crate::{
    domain::{
        caller::Scope,
        invitations::{
            bulk::{self, InvitationRequest},
            parts::LaterParts,
            plan::Recipients,
        },
    },
    error::Error,
    grpc::{
        actor,
        batches::{self, BatchStream},
        caller,
    },
    pb::{self, stream_invitations_request::Item},
    state::AppState,
};

pub async fn send_invitations(
    state: &AppState,
    request: Request<pb::SendInvitationsRequest>,
) -> Result<Response<BatchStream>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::InvitationsWrite)?;
    let actor = actor(&request)?;
    let send = bulk::invitations(state, invitation_request(org, request.into_inner(), None)).await?;
    Ok(Response::new(batches::start(state, send, &actor).await?))
}

/// StreamInvitations: the first message is the send, and the parts after it
/// are read as the batch is written.
pub async fn stream_invitations(
    state: &AppState,
    request: Request<Streaming<pb::StreamInvitationsRequest>>,
) -> Result<Response<BatchStream>, Status> {
    let who = caller(&request)?.clone();
    let actor = actor(&request)?;
    let mut inbound = request.into_inner();
    let first = match inbound.message().await.map_err(unreadable)?.and_then(|m| m.item) {
        Some(Item::Send(send)) => send,
        _ => {
            return Err(Error::invalid(
                "send",
                "the first message must be the send (SendInvitationsRequest)",
            )
            .into());
        }
    };
    let org = who.organization(&first.organization_id, Scope::InvitationsWrite)?;
    let later: LaterParts = Box::pin(inbound.map(|message| match message.map_err(unreadable)?.item {
        Some(Item::Recipients(part)) => Ok(Recipients {
            text: part.recipients_text,
            emails: part.emails,
            user_ids: part.user_ids,
            all_staged: false,
        }),
        Some(Item::Send(_)) => Err(Error::invalid(
            "send",
            "only the first message may be the send: each later one holds recipients",
        )),
        None => Ok(Recipients::default()),
    }));
    let send = bulk::invitations(state, invitation_request(org, first, Some(later))).await?;
    Ok(Response::new(batches::start(state, send, &actor).await?))
}

fn invitation_request(
    organization_id: uuid::Uuid,
    req: pb::SendInvitationsRequest,
    later: Option<LaterParts>,
) -> InvitationRequest {
    InvitationRequest {
        organization_id,
        recipients: Recipients {
            text: req.recipients_text,
            emails: req.emails,
            user_ids: req.user_ids,
            all_staged: req.all_staged,
        },
        later,
        service_area_id: req.service_area_id,
        role_id: req.role_id,
        idempotency_key: req.idempotency_key,
        dry_run: req.dry_run,
    }
}

/// What a client is told of a part the server could not read, or of a
/// stream that ended early: either way nothing was stored.
fn unreadable(status: Status) -> Error {
    match status.code() {
        Code::OutOfRange => Error::invalid(
            "recipients",
            format!(
                "a part is larger than the server accepts ({} MiB): send smaller parts; nothing was stored",
                crate::server::MAX_REQUEST_BYTES >> 20
            ),
        ),
        Code::InvalidArgument => Error::invalid("recipients", status.message()),
        _ => Error::Cancelled("the request's stream ended before its last part; nothing was stored".into()),
    }
}
