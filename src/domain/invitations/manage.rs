//! One invitation at a time: read, list, resend, revoke; and the deliveries
//! (outbox rows) an admin checks to see that emails went out.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

pub use crate::lifecycle::invitation::Status as State;
use crate::{
    db::schema::{invitations, outbox, users},
    domain::outbox::cancel_queued,
    domain::{
        audit::{self, Actor},
        paging::Page,
    },
    error::{Error, Result},
    lifecycle::{
        delivery,
        email_kind::EmailKind,
        invitation::{self, Event},
        user::{self, Stage},
    },
    notify,
    services::Services,
};

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = invitations)]
pub struct Invitation {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub user_id: Uuid,
    pub batch_id: Option<Uuid>,
    pub email: String,
    pub service_area_id: Option<Uuid>,
    pub role_id: Option<Uuid>,
    pub state: invitation::State,
    pub send_count: i32,
    pub last_error: String,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub opened_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Invitation {
    /// The state as of `now`: a sent link past its expiry is EXPIRED, with
    /// no sweeper needed.
    pub fn state(&self, now: DateTime<Utc>) -> State {
        self.state.status(self.expires_at, now)
    }
}

/// One invitation of the organisation.
pub async fn get(app: &Services, organization_id: Uuid, id: Uuid) -> Result<Invitation> {
    find(&mut *app.pool.get().await?, organization_id, id).await
}

pub async fn find(conn: &mut AsyncPgConnection, organization_id: Uuid, id: Uuid) -> Result<Invitation> {
    invitations::table
        .filter(invitations::organization_id.eq(organization_id))
        .filter(invitations::id.eq(id))
        .select(Invitation::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| Error::not_found(format!("invitation {id} does not exist in this organisation")))
}

#[derive(Debug, Default)]
pub struct InvitationFilter {
    pub state: Option<State>,
    pub email: Option<String>,
    pub batch_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
}

/// Newest first.
pub async fn list(
    app: &Services,
    organization_id: Uuid,
    filter: InvitationFilter,
    page: Page,
) -> Result<(Vec<Invitation>, String)> {
    let now = app.clock.now();
    let mut query = invitations::table
        .filter(invitations::organization_id.eq(organization_id))
        .select(Invitation::as_select())
        .order(invitations::id.desc())
        .limit(page.fetch_limit())
        .into_boxed();
    if let Some(after) = page.after {
        query = query.filter(invitations::id.lt(after));
    }
    if let Some(email) = filter.email {
        query = query.filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("lower(email) = lower(")
                .bind::<diesel::sql_types::Text, _>(email)
                .sql(")"),
        );
    }
    if let Some(batch) = filter.batch_id {
        query = query.filter(invitations::batch_id.eq(batch));
    }
    if let Some(user) = filter.user_id {
        query = query.filter(invitations::user_id.eq(user));
    }
    let live = invitations::expires_at.gt(now);
    let lapsed = invitations::expires_at.le(now);
    use invitation::State as Stored;
    query = match filter.state {
        None => query,
        Some(State::Expired) => query
            .filter(invitations::state.eq_any([Stored::Sent, Stored::Opened]))
            .filter(lapsed),
        Some(State::Sent) => query.filter(invitations::state.eq(Stored::Sent)).filter(live),
        Some(State::Opened) => query.filter(invitations::state.eq(Stored::Opened)).filter(live),
        Some(State::Queued) => query.filter(invitations::state.eq(Stored::Queued)),
        Some(State::Accepted) => query.filter(invitations::state.eq(Stored::Accepted)),
        Some(State::Failed) => query.filter(invitations::state.eq(Stored::Failed)),
        Some(State::Revoked) => query.filter(invitations::state.eq(Stored::Revoked)),
    };
    let rows = query.load(&mut *app.pool.get().await?).await?;
    Ok(page.finish(rows, |i| i.id))
}

async fn lock(conn: &mut AsyncPgConnection, organization_id: Uuid, id: Uuid) -> Result<Invitation> {
    invitations::table
        .filter(invitations::organization_id.eq(organization_id))
        .filter(invitations::id.eq(id))
        .select(Invitation::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| Error::not_found(format!("invitation {id} does not exist in this organisation")))
}

/// Sends an invitation again with a new link: the old link stops working at
/// once and the expiry restarts when the new email goes out.
pub async fn resend(app: &Services, organization_id: Uuid, id: Uuid, actor: &Actor) -> Result<Invitation> {
    let now = app.clock.now();
    let message_domain = &*app.message_domain;
    let mut conn = app.pool.get().await?;
    conn.transaction(async |conn| {
        let found = find(conn, organization_id, id).await?;
        // Outbox rows before the invitation: the order workers lock them in.
        cancel_queued(conn, id, found.user_id, "replaced by a resend", now).await?;
        let invitation = lock(conn, organization_id, id).await?;
        match invitation.state(now) {
            State::Accepted => {
                return Err(Error::FailedPrecondition(
                    "the invitation was accepted: the person is registered".into(),
                ));
            }
            State::Revoked => {
                return Err(Error::FailedPrecondition(
                    "the invitation was revoked; send a new invitation instead".into(),
                ));
            }
            _ => {}
        }
        let deactivated: Option<DateTime<Utc>> = users::table
            .find(invitation.user_id)
            .select(users::deactivated_at)
            .first(conn)
            .await?;
        if deactivated.is_some() {
            return Err(Error::FailedPrecondition(
                "the user is deactivated; reactivate them before resending".into(),
            ));
        }
        let updated = diesel::update(invitations::table.find(id))
            .set((
                invitations::token_hash.eq(None::<Vec<u8>>),
                invitations::state.eq(invitation::State::Queued),
                invitations::expires_at.eq(None::<DateTime<Utc>>),
                invitations::last_error.eq(""),
            ))
            .returning(Invitation::as_returning())
            .get_result(conn)
            .await?;
        diesel::update(users::table.find(invitation.user_id))
            .set((
                users::lifecycle.eq(diesel::dsl::sql::<diesel::sql_types::Text>(&Stage::next_sql(
                    user::Event::Contacted,
                    "lifecycle",
                ))),
                users::invitation_expires_at.eq(None::<DateTime<Utc>>),
                users::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        let email = crate::domain::outbox::Email {
            organization_id,
            kind: EmailKind::Invitation,
            recipient: &invitation.email,
            user_id: invitation.user_id,
            invitation_id: Some(id),
            batch: None,
        };
        crate::domain::outbox::enqueue(conn, &[email], message_domain, now).await?;
        audit::record(
            conn,
            actor,
            organization_id,
            "invitation.resend",
            ("invitation", id),
            json!({"email": invitation.email}),
            now,
        )
        .await?;
        notify::tell_workers(conn).await?;
        Ok(updated)
    })
    .await
}

/// Withdraws an invitation: its link stops working, and a person it left
/// without a live invitation goes back to STAGED.
pub async fn revoke(app: &Services, organization_id: Uuid, id: Uuid, actor: &Actor) -> Result<Invitation> {
    let now = app.clock.now();
    let mut conn = app.pool.get().await?;
    conn.transaction(async |conn| {
        let found = find(conn, organization_id, id).await?;
        if found.state != invitation::State::Accepted {
            // Outbox rows before the invitation: the order workers lock them in.
            cancel_queued(conn, id, found.user_id, "the invitation was revoked", now).await?;
        }
        let invitation = lock(conn, organization_id, id).await?;
        match invitation.state.next(Event::Revoked) {
            None if invitation.state == invitation::State::Revoked => return Ok(invitation),
            None => {
                return Err(Error::FailedPrecondition(
                    "the invitation was accepted; deactivate the user instead".into(),
                ));
            }
            Some(_) => {}
        }
        let updated = diesel::update(invitations::table.find(id))
            // The hash stays, so the link can say it was revoked.
            .set((
                invitations::state.eq(invitation::State::Revoked),
                invitations::revoked_at.eq(now),
            ))
            .returning(Invitation::as_returning())
            .get_result(conn)
            .await?;
        // A person no invitation stands for any more was never reached.
        diesel::sql_query(format!(
            "UPDATE users SET lifecycle = {}, invitation_expires_at = NULL, updated_at = $2 \
             WHERE id = $1 AND lifecycle = {} AND NOT EXISTS ( \
               SELECT 1 FROM invitations WHERE user_id = $1 AND state IN {})",
            Stage::Pending.next(user::Event::Withdrawn).sql(),
            Stage::Pending.sql(),
            invitation::standing_sql()
        ))
        .bind::<diesel::sql_types::Uuid, _>(invitation.user_id)
        .bind::<diesel::sql_types::Timestamptz, _>(now)
        .execute(conn)
        .await?;
        audit::record(
            conn,
            actor,
            organization_id,
            "invitation.revoke",
            ("invitation", id),
            json!({"email": invitation.email}),
            now,
        )
        .await?;
        Ok(updated)
    })
    .await
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct Delivery {
    pub id: Uuid,
    pub kind: EmailKind,
    pub recipient: String,
    pub user_id: Option<Uuid>,
    pub batch_id: Option<Uuid>,
    pub state: delivery::State,
    pub attempts: i32,
    pub last_error: String,
    pub message_id: String,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// None once settled.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub opened_at: Option<DateTime<Utc>>,
}

/// Where one email stands: the outbox row's state, and OPENED once the link
/// it carried was viewed.
pub use delivery::Status as DeliveryState;

impl Delivery {
    pub fn state(&self) -> DeliveryState {
        self.state.status(self.opened_at.is_some())
    }
}

#[derive(Debug, Default)]
pub struct DeliveryFilter {
    pub user_id: Option<Uuid>,
    pub batch_id: Option<Uuid>,
    pub kind: Option<EmailKind>,
    pub state: Option<DeliveryState>,
}

/// Newest first.
pub async fn deliveries(
    app: &Services,
    organization_id: Uuid,
    filter: DeliveryFilter,
    page: Page,
) -> Result<(Vec<Delivery>, String)> {
    let mut query = outbox::table
        .filter(outbox::organization_id.eq(organization_id))
        .select(Delivery::as_select())
        .order(outbox::id.desc())
        .limit(page.fetch_limit())
        .into_boxed();
    if let Some(after) = page.after {
        query = query.filter(outbox::id.lt(after));
    }
    if let Some(user) = filter.user_id {
        query = query.filter(outbox::user_id.eq(user));
    }
    if let Some(batch) = filter.batch_id {
        query = query.filter(outbox::batch_id.eq(batch));
    }
    if let Some(kind) = filter.kind {
        query = query.filter(outbox::kind.eq(kind));
    }
    use delivery::State as Stored;
    query = match filter.state {
        None => query,
        Some(DeliveryState::Queued) => query.filter(outbox::state.eq(Stored::Queued)),
        Some(DeliveryState::Sending) => query.filter(outbox::state.eq(Stored::Sending)),
        Some(DeliveryState::Failed) => query.filter(outbox::state.eq(Stored::Failed)),
        Some(DeliveryState::Sent) => query
            .filter(outbox::state.eq(Stored::Sent))
            .filter(outbox::opened_at.is_null()),
        Some(DeliveryState::Opened) => query
            .filter(outbox::state.eq(Stored::Sent))
            .filter(outbox::opened_at.is_not_null()),
    };
    Ok(page.finish(query.load(&mut *app.pool.get().await?).await?, |d| d.id))
}
