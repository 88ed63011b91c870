//! The merchant panel, on each store's host under `/merchant`.

use crate::auth::SignedIn;
use crate::error::{WebError, WebResult};
use crate::session::AccountView;
use crate::state::AppState;
use crate::templates::ser;
use axum::extract::State;
use axum::response::Response;
use ecom_store::StoreError;
use minijinja::context;

pub async fn home(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    let tenant_id = page.ctx.realm.tenant().ok_or_else(WebError::not_found)?;
    let txn = state.db.tenant_txn(tenant_id).await?;
    let staff = ecom_store::accounts::list_staff(&txn, tenant_id).await?;
    txn.commit().await.map_err(StoreError::from)?;
    let domains = ecom_store::tenants::domains(&state.db, tenant_id).await?;
    let staff: Vec<AccountView> = staff.iter().map(AccountView::from).collect();
    let storefront_url = format!("{}://{}/", state.config.public_scheme, page.ctx.host.0);
    Ok(page.page("merchant/home.html", context! { staff => ser(&staff), domains, storefront_url }))
}
