//! CreateServiceArea, ListServiceAreas, CreateRole, ListRoles.

use tonic::Status;

use crate::{
    domain::{
        audit::Actor,
        catalog::{self, Catalog, Entry},
        paging::Page,
    },
    state::AppState,
};

pub async fn create(
    state: &AppState,
    catalog: Catalog,
    organization_id: uuid::Uuid,
    actor: &Actor,
    name: &str,
    description: &str,
) -> Result<Entry, Status> {
    Ok(catalog::create(state, catalog, organization_id, name, description, actor).await?)
}

pub async fn list(
    state: &AppState,
    catalog: Catalog,
    organization_id: uuid::Uuid,
    page_size: i32,
    page_token: &str,
) -> Result<(Vec<Entry>, String), Status> {
    let page = Page::parse(page_size, page_token)?;
    Ok(catalog::list(state, catalog, organization_id, page).await?)
}
