//! WatchBatch, ListBatches, GetInvitation, ListInvitations, ResendInvitation,
//! RevokeInvitation and ListDeliveries.

use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    domain::{
        caller::Scope,
        invitations::follow,
        invitations::manage::{
            self, Delivery, DeliveryFilter, DeliveryState, Invitation, InvitationFilter, State,
        },
        paging::Page,
        validate,
    },
    error::{Error, Violations},
    grpc::{
        actor,
        batches::{self, BatchStream},
        caller, convert,
    },
    pb,
    state::AppState,
};

fn id(field: &str, raw: &str) -> Result<Uuid, Error> {
    validate::id(raw).map_err(|e| Error::invalid(field, e))
}

fn optional_id(v: &mut Violations, field: &str, raw: &str) -> Option<Uuid> {
    if raw.trim().is_empty() {
        None
    } else {
        v.check(field, validate::id(raw))
    }
}

pub fn state_pb(s: State) -> pb::InvitationState {
    match s {
        State::Queued => pb::InvitationState::Queued,
        State::Sent => pb::InvitationState::Sent,
        State::Opened => pb::InvitationState::Opened,
        State::Accepted => pb::InvitationState::Accepted,
        State::Failed => pb::InvitationState::Failed,
        State::Expired => pb::InvitationState::Expired,
        State::Revoked => pb::InvitationState::Revoked,
    }
}

fn state_from_pb(s: pb::InvitationState) -> Option<State> {
    [
        State::Queued,
        State::Sent,
        State::Opened,
        State::Accepted,
        State::Failed,
        State::Expired,
        State::Revoked,
    ]
    .into_iter()
    .find(|state| state_pb(*state) == s)
}

pub fn invitation(i: Invitation, now: chrono::DateTime<chrono::Utc>) -> pb::Invitation {
    pb::Invitation {
        state: state_pb(i.state(now)) as i32,
        id: i.id.to_string(),
        organization_id: i.organization_id.to_string(),
        user_id: i.user_id.to_string(),
        email: i.email,
        service_area_id: i.service_area_id.map(|x| x.to_string()).unwrap_or_default(),
        role_id: i.role_id.map(|x| x.to_string()).unwrap_or_default(),
        batch_id: i.batch_id.map(|x| x.to_string()).unwrap_or_default(),
        create_time: Some(convert::timestamp(i.created_at)),
        send_time: convert::opt_timestamp(i.sent_at),
        open_time: convert::opt_timestamp(i.opened_at),
        accept_time: convert::opt_timestamp(i.accepted_at),
        revoke_time: convert::opt_timestamp(i.revoked_at),
        expire_time: convert::opt_timestamp(i.expires_at),
        last_error: i.last_error,
        send_count: i.send_count,
    }
}

pub async fn watch(
    state: &AppState,
    request: Request<pb::WatchBatchRequest>,
) -> Result<Response<BatchStream>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::Read)?;
    let batch_id = id("batch_id", &request.get_ref().batch_id)?;
    let batch = follow::find(state, org, batch_id).await?;
    Ok(Response::new(batches::follow(state.clone(), batch, true)))
}

pub async fn list_batches(
    state: &AppState,
    request: Request<pb::ListBatchesRequest>,
) -> Result<Response<pb::ListBatchesResponse>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::Read)?;
    let req = request.into_inner();
    let page = Page::parse(req.page_size, &req.page_token)?;
    let kind = pb::EmailKind::try_from(req.kind)
        .ok()
        .and_then(super::templates::kind_from_pb);
    let (found, next_page_token) = follow::list(state, org, kind, page).await?;
    let count = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
    Ok(Response::new(pb::ListBatchesResponse {
        batches: found
            .into_iter()
            .map(|p| pb::Batch {
                id: p.batch.id.to_string(),
                organization_id: p.batch.organization_id.to_string(),
                kind: super::templates::kind_pb(p.batch.kind) as i32,
                actor: p.batch.actor,
                total: p.batch.total,
                recognized: p.batch.recognized,
                invalid: p.batch.invalid,
                duplicates: p.batch.duplicates,
                outstanding: p.batch.outstanding,
                sent: count(p.sent),
                failed: count(p.failed),
                create_time: Some(convert::timestamp(p.batch.created_at)),
                complete_time: convert::opt_timestamp(p.batch.completed_at),
            })
            .collect(),
        next_page_token,
    }))
}

pub async fn get(
    state: &AppState,
    request: Request<pb::GetInvitationRequest>,
) -> Result<Response<pb::Invitation>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::Read)?;
    let invitation_id = id("invitation_id", &request.get_ref().invitation_id)?;
    let found = manage::get(state, org, invitation_id).await?;
    Ok(Response::new(invitation(found, state.clock.now())))
}

pub async fn list(
    state: &AppState,
    request: Request<pb::ListInvitationsRequest>,
) -> Result<Response<pb::ListInvitationsResponse>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::Read)?;
    let req = request.into_inner();
    let page = Page::parse(req.page_size, &req.page_token)?;
    let mut v = Violations::new();
    let filter = InvitationFilter {
        state: pb::InvitationState::try_from(req.state)
            .ok()
            .and_then(state_from_pb),
        email: Some(req.email.trim().to_owned()).filter(|e| !e.is_empty()),
        batch_id: optional_id(&mut v, "batch_id", &req.batch_id),
        user_id: optional_id(&mut v, "user_id", &req.user_id),
    };
    v.into_result()?;
    let (rows, next_page_token) = manage::list(state, org, filter, page).await?;
    let now = state.clock.now();
    Ok(Response::new(pb::ListInvitationsResponse {
        invitations: rows.into_iter().map(|i| invitation(i, now)).collect(),
        next_page_token,
    }))
}

pub async fn resend(
    state: &AppState,
    request: Request<pb::ResendInvitationRequest>,
) -> Result<Response<pb::Invitation>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::InvitationsWrite)?;
    let actor = actor(&request)?;
    let invitation_id = id("invitation_id", &request.get_ref().invitation_id)?;
    let updated = manage::resend(state, org, invitation_id, &actor).await?;
    Ok(Response::new(invitation(updated, state.clock.now())))
}

pub async fn revoke(
    state: &AppState,
    request: Request<pb::RevokeInvitationRequest>,
) -> Result<Response<pb::Invitation>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::InvitationsWrite)?;
    let actor = actor(&request)?;
    let invitation_id = id("invitation_id", &request.get_ref().invitation_id)?;
    let updated = manage::revoke(state, org, invitation_id, &actor).await?;
    Ok(Response::new(invitation(updated, state.clock.now())))
}

const DELIVERY_STATES: [(DeliveryState, pb::DeliveryState); 5] = [
    (DeliveryState::Queued, pb::DeliveryState::Queued),
    (DeliveryState::Sending, pb::DeliveryState::Sending),
    (DeliveryState::Sent, pb::DeliveryState::Sent),
    (DeliveryState::Failed, pb::DeliveryState::Failed),
    (DeliveryState::Opened, pb::DeliveryState::Opened),
];

fn delivery(d: Delivery) -> pb::Delivery {
    let state = d.state();
    pb::Delivery {
        id: d.id.to_string(),
        kind: super::templates::kind_pb(d.kind) as i32,
        email: d.recipient,
        user_id: d.user_id.map(|u| u.to_string()).unwrap_or_default(),
        batch_id: d.batch_id.map(|b| b.to_string()).unwrap_or_default(),
        state: DELIVERY_STATES
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(pb::DeliveryState::Unspecified, |(_, p)| *p) as i32,
        attempts: d.attempts,
        last_error: d.last_error,
        message_id: d.message_id,
        create_time: Some(convert::timestamp(d.created_at)),
        send_time: convert::opt_timestamp(d.sent_at),
        next_attempt_time: d
            .next_attempt_at
            .filter(|_| state == DeliveryState::Queued)
            .map(convert::timestamp),
        open_time: convert::opt_timestamp(d.opened_at),
    }
}

pub async fn deliveries(
    state: &AppState,
    request: Request<pb::ListDeliveriesRequest>,
) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::Read)?;
    let req = request.into_inner();
    let page = Page::parse(req.page_size, &req.page_token)?;
    let mut v = Violations::new();
    let filter = DeliveryFilter {
        user_id: optional_id(&mut v, "user_id", &req.user_id),
        batch_id: optional_id(&mut v, "batch_id", &req.batch_id),
        kind: pb::EmailKind::try_from(req.kind)
            .ok()
            .and_then(super::templates::kind_from_pb),
        state: DELIVERY_STATES
            .iter()
            .find(|(_, p)| *p as i32 == req.state)
            .map(|(s, _)| *s),
    };
    v.into_result()?;
    let (rows, next_page_token) = manage::deliveries(state, org, filter, page).await?;
    Ok(Response::new(pb::ListDeliveriesResponse {
        deliveries: rows.into_iter().map(delivery).collect(),
        next_page_token,
    }))
}
