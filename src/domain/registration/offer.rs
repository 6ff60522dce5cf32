//! What an invitation link offers, and a fresh invitation for one that
//! expired.

use chrono::TimeDelta;

use super::{Invited, find, mark_opened, renewable};
use crate::{
    domain::{
        audit::Actor,
        catalog::{self, Catalog},
        invitations::manage,
        rate_limit,
    },
    error::Result,
    services::Services,
};

/// Fresh invitations one expired link may ask for per day.
const RENEWALS_PER_DAY: i32 = 3;

/// A working invitation link, with what the registration page shows.
pub struct Offer {
    pub invited: Invited,
    pub service_area_name: String,
    pub role_name: String,
    /// The second-factor methods the person may choose.
    pub methods: Vec<String>,
}

/// What a link is for, without spending it (mail scanners open links): the
/// invitation and the email that carried it are marked opened.
pub async fn offer(app: &Services, token: &str) -> Result<Offer> {
    let now = app.clock.now();
    let mut conn = app.pool.get().await?;
    let invited = find(&mut conn, token, now).await?;
    mark_opened(&mut conn, invited.invitation.id, now).await?;
    let invitation = &invited.invitation;
    let service_area_name =
        catalog::name(&mut conn, Catalog::ServiceAreas, invitation.service_area_id).await?;
    let role_name = catalog::name(&mut conn, Catalog::Roles, invitation.role_id).await?;
    // An authenticator's secret is sealed with ONRAMP_SECRET_KEY: without
    // one, it is not offered rather than refused later.
    let methods = invited
        .methods()
        .into_iter()
        .filter(|m| app.secrets.is_some() || m != "totp")
        .collect();
    Ok(Offer {
        invited,
        service_area_name,
        role_name,
        methods,
    })
}

/// Sends a fresh invitation for an expired link, at most three a day; the
/// caller's answer is the same whether or not anything is sent.
pub async fn request_new_invitation(app: &Services, token: &str, client_address: &str) -> Result<()> {
    let now = app.clock.now();
    let renewing = {
        let mut conn = app.pool.get().await?;
        match renewable(&mut conn, token, now).await? {
            Some(invitation) => {
                let bucket = format!("renew:{}", invitation.id);
                let day = TimeDelta::days(1);
                rate_limit::allow(&mut conn, &bucket, RENEWALS_PER_DAY, day, now)
                    .await?
                    .then_some(invitation)
            }
            None => None,
        }
    };
    if let Some(invitation) = renewing {
        let actor = Actor {
            name: "public".into(),
            client_address: client_address.to_owned(),
        };
        manage::resend(app, invitation.organization_id, invitation.id, &actor).await?;
    }
    Ok(())
}
