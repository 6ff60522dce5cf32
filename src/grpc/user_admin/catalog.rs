//! CreateServiceArea, ListServiceAreas, CreateRole, ListRoles.

use tonic::Status;

use crate::{
    domain::{
        audit::Actor,
        catalog::{self, Catalog, Entry},
        paging::Page,
        validate,
    },
    error::{Error, Violations},
    state::AppState,
};

const MAX_DESCRIPTION_LENGTH: usize = 2_000;

pub async fn create(
    state: &AppState,
    catalog: Catalog,
    organization_id: uuid::Uuid,
    actor: &Actor,
    name: &str,
    description: &str,
) -> Result<Entry, Status> {
    let mut violations = Violations::new();
    let name = violations.check("name", validate::name(name));
    let description = violations.check(
        "description",
        validate::optional_text(description, MAX_DESCRIPTION_LENGTH),
    );
    violations.into_result()?;
    let mut conn = state.pool.get().await.map_err(Error::from)?;
    Ok(catalog::create(
        &mut conn,
        catalog,
        organization_id,
        name.unwrap_or_default(),
        description.unwrap_or_default(),
        actor,
        state.clock.now(),
    )
    .await?)
}

pub async fn list(
    state: &AppState,
    catalog: Catalog,
    organization_id: uuid::Uuid,
    page_size: i32,
    page_token: &str,
) -> Result<(Vec<Entry>, String), Status> {
    let page = Page::parse(page_size, page_token)?;
    let mut conn = state.pool.get().await.map_err(Error::from)?;
    Ok(catalog::list(&mut conn, catalog, organization_id, page).await?)
}
