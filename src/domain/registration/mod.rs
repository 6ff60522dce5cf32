//! From an invitation link to an active account. The link's token is the
//! credential: it names its invitation, which holds the token's hash;
//! viewing it never spends it, and only completing does, once.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    invitations::manage::{Invitation, State},
    organizations::{self, Organization, OrganizationWithTerms},
    users::UserRow,
};
use crate::{
    db::{
        Cached,
        schema::{
            invitation_links_before_selectors, invitations, organizations as organizations_table,
            terms_acceptances, users as users_table,
        },
    },
    error::{Error, Result},
    lifecycle::{invitation, user::Stage},
    tokens::PlainToken,
};

mod complete;
mod factor;
mod offer;
mod terms;

pub use complete::{Completion, complete};
pub use factor::begin_second_factor;
pub use offer::{Offer, offer, request_new_invitation};
pub use terms::accept_current_terms;

/// A live invitation with its person and organisation.
pub struct Invited {
    pub invitation: Invitation,
    pub user: UserRow,
    pub organization: OrganizationWithTerms,
}

impl Invited {
    /// The second-factor methods the organisation allows.
    pub fn methods(&self) -> Vec<String> {
        organizations::second_factor_methods(&self.organization.organization)
    }
}

/// The invitation a link's token names, with the hash it must still hold:
/// a replaced or withdrawn link holds none. A link sent before links named
/// their invitation is found through the hash kept for it.
async fn named_by(conn: &mut AsyncPgConnection, token: &str) -> Result<Option<(Uuid, Vec<u8>)>> {
    let token = PlainToken::from_presented(token.trim());
    let hash = token.hash().0;
    let id = match token.named() {
        Some(id) => Some(id),
        None => invitation_links_before_selectors::table
            .filter(invitation_links_before_selectors::token_hash.eq(&hash))
            .select(invitation_links_before_selectors::invitation_id)
            .first(conn)
            .await
            .optional()?,
    };
    Ok(id.map(|id| (id, hash)))
}

/// The invitation of a link's token, whatever its state.
async fn by_token(conn: &mut AsyncPgConnection, token: &str) -> Result<Option<Invitation>> {
    let Some((id, hash)) = named_by(conn, token).await? else {
        return Ok(None);
    };
    Ok(invitations::table
        .filter(invitations::id.eq(id))
        .filter(invitations::token_hash.eq(hash))
        .select(Invitation::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Checks that a link still works: each way it can fail has its own reason.
pub async fn find(conn: &mut AsyncPgConnection, token: &str, now: DateTime<Utc>) -> Result<Invited> {
    if token.trim().is_empty() {
        return Err(Error::invalid(
            "token",
            "is required: the token from the invitation link",
        ));
    }
    let not_found = || {
        Error::not_found("this invitation link is not valid; it may have been replaced by a newer invitation")
    };
    let (id, hash) = named_by(conn, token).await?.ok_or_else(not_found)?;
    // The invitation with its person and organisation, in one query.
    let (invitation, user, organization) = invitations::table
        .inner_join(users_table::table)
        .inner_join(organizations_table::table.on(organizations_table::id.eq(invitations::organization_id)))
        .filter(invitations::id.eq(id))
        .filter(invitations::token_hash.eq(hash))
        .select((
            Invitation::as_select(),
            UserRow::as_select(),
            Organization::as_select(),
        ))
        .first::<(Invitation, UserRow, Organization)>(conn)
        .await
        .optional()?
        .ok_or_else(not_found)?;
    if let Some(refused) = refusal(&invitation, &user, now) {
        return Err(refused);
    }
    let organization = organizations::with_terms(conn, organization).await?;
    Ok(Invited {
        invitation,
        user,
        organization,
    })
}

/// Why a link cannot register its person now, if it cannot. An active
/// person is never registered again, whatever the invitation row says: that
/// would hand their account to whoever holds an old link.
fn refusal(invitation: &Invitation, user: &UserRow, now: DateTime<Utc>) -> Option<Error> {
    let lapsed = invitation.expires_at.is_some_and(|at| at <= now);
    let refused = |reason, message: &str| {
        Some(Error::Refused {
            reason,
            message: message.into(),
        })
    };
    match invitation.state(now) {
        State::Accepted => refused(
            "INVITATION_USED",
            "this invitation was already used to register; sign in instead",
        ),
        _ if user.lifecycle == Stage::Active => refused(
            "ALREADY_REGISTERED",
            "this account is already registered; sign in, or reset your password if you forgot it",
        ),
        _ if user.deactivated_at.is_some() => Some(Error::PermissionDenied(
            "this account is deactivated; ask the organisation's administrator".into(),
        )),
        State::Revoked => refused(
            "INVITATION_REVOKED",
            "this invitation was withdrawn by the organisation",
        ),
        State::Expired => refused(
            "INVITATION_EXPIRED",
            "this invitation has expired; you can ask for a new one",
        ),
        State::Failed | State::Queued if lapsed => refused(
            "INVITATION_EXPIRED",
            "this invitation has expired; you can ask for a new one",
        ),
        State::Failed | State::Queued | State::Sent | State::Opened => None,
    }
}

static MARK_OPENED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH opened AS (UPDATE invitations SET state = {opened}, opened_at = $2 \
           WHERE id = $1 AND state IN {from}) \
         UPDATE outbox SET opened_at = $2 \
         WHERE id = (SELECT outbox_id FROM invitations WHERE id = $1) AND opened_at IS NULL",
        opened = invitation::State::Opened.sql(),
        from = invitation::accepting_sql(invitation::Event::Opened),
    )
});

/// Records that the link was viewed, on the invitation and on the email
/// that carried it. Never spends it: mail scanners open links too.
async fn mark_opened(conn: &mut AsyncPgConnection, invitation_id: Uuid, now: DateTime<Utc>) -> Result<()> {
    Cached(
        diesel::sql_query(&*MARK_OPENED)
            .bind::<SqlUuid, _>(invitation_id)
            .bind::<Timestamptz, _>(now),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that the user accepted a terms version. Accepting twice changes
/// nothing.
async fn accept_terms(
    conn: &mut AsyncPgConnection,
    user: &UserRow,
    version: i32,
    client_address: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    diesel::insert_into(terms_acceptances::table)
        .values((
            terms_acceptances::user_id.eq(user.id),
            terms_acceptances::organization_id.eq(user.organization_id),
            terms_acceptances::version.eq(version),
            terms_acceptances::accepted_at.eq(now),
            terms_acceptances::client_address.eq(client_address),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// The invitation of a link's token when it has expired and may be renewed:
/// not revoked, not used, its person not paused.
async fn renewable(
    conn: &mut AsyncPgConnection,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<Invitation>> {
    let Some(invitation) = by_token(conn, token).await? else {
        return Ok(None);
    };
    if invitation.state(now) != State::Expired {
        return Ok(None);
    }
    let paused: Option<DateTime<Utc>> = users_table::table
        .find(invitation.user_id)
        .select(users_table::deactivated_at)
        .first(conn)
        .await?;
    Ok(paused.is_none().then_some(invitation))
}
