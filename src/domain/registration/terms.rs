//! Accepting newer terms at sign-in, with the password as the credential.

use serde_json::json;
use uuid::Uuid;

use super::accept_terms;
use crate::{
    domain::{
        accounts,
        audit::{self, Actor},
    },
    error::{Error, Result},
    services::Services,
};

/// Records that the account of `login` accepted the organisation's current
/// terms, `version`. Without a second factor the right password completes
/// the call; with one, its attempt stays counted until a sign-in presents
/// it.
pub async fn accept_current_terms(
    app: &Services,
    organization_id: Uuid,
    login: &str,
    password: &str,
    version: i32,
    client_address: &str,
) -> Result<()> {
    let verified = accounts::verify(app, organization_id, login, password, client_address).await?;
    if verified.second_factor.is_none() {
        accounts::settle(&mut *app.pool.get().await?, verified.user.id).await?;
    }
    let current = verified.organization.terms_version;
    if current == 0 || version != current {
        return Err(Error::invalid(
            "terms_version",
            format!("the current terms are version {current}"),
        ));
    }
    let now = app.clock.now();
    let mut conn = app.pool.get().await?;
    accept_terms(&mut conn, &verified.user, current, client_address, now).await?;
    let actor = Actor {
        name: format!("user:{}", verified.user.id),
        client_address: client_address.to_owned(),
    };
    let target = ("user", verified.user.id);
    let details = json!({"version": current});
    audit::record(
        &mut conn,
        &actor,
        organization_id,
        "terms.accept",
        target,
        details,
        now,
    )
    .await
}
