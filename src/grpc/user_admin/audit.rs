//! ListAuditEvents.

use tonic::{Request, Response, Status};

use crate::{
    domain::{
        audit::{self, AuditFilter},
        caller::Scope,
        paging::Page,
    },
    error::Violations,
    grpc::{caller, convert},
    pb,
    state::AppState,
};

pub async fn list(
    state: &AppState,
    request: Request<pb::ListAuditEventsRequest>,
) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
    let org = caller(&request)?.organization(&request.get_ref().organization_id, Scope::AuditRead)?;
    let req = request.into_inner();
    let page = Page::parse(req.page_size, &req.page_token)?;
    let mut v = Violations::new();
    let mut time = |field: &str, t: &Option<prost_types::Timestamp>| {
        t.as_ref().and_then(|t| {
            let parsed = convert::from_timestamp(t);
            if parsed.is_none() {
                v.add(field, "is not a valid time");
            }
            parsed
        })
    };
    let start = time("start_time", &req.start_time);
    let end = time("end_time", &req.end_time);
    v.into_result()?;
    let non_empty = |s: String| Some(s).filter(|s| !s.trim().is_empty());
    let filter = AuditFilter {
        target_id: non_empty(req.target_id),
        actor: non_empty(req.actor),
        action: non_empty(req.action),
        start,
        end,
    };
    let (events, next_page_token) = audit::list(state, org, filter, page).await?;
    Ok(Response::new(pb::ListAuditEventsResponse {
        audit_events: events.into_iter().map(convert::audit_event).collect(),
        next_page_token,
    }))
}
