//! The merchant panel, on each store's host under `/merchant`.

use crate::auth::{AreaCtx, require};
use crate::error::WebResult;
use crate::session::AccountView;
use crate::state::AppState;
use crate::templates::ser;
use axum::extract::State;
use axum::response::Response;
use axum_extra::extract::PrivateCookieJar;
use minijinja::context;

pub async fn home(
    State(state): State<AppState>,
    ctx: AreaCtx,
    jar: PrivateCookieJar,
) -> WebResult<Response> {
    let me = match require(&state, &ctx, &jar, "/merchant").await? {
        Ok(me) => me,
        Err(redirect) => return Ok(redirect),
    };
    let tenant_id = ctx
        .realm
        .tenant()
        .ok_or_else(crate::error::WebError::not_found)?;
    let txn = state.db.tenant_txn(tenant_id).await?;
    let staff = ecom_store::accounts::list_staff(&txn, tenant_id).await?;
    txn.commit().await.map_err(ecom_store::StoreError::from)?;
    let domains = ecom_store::tenants::domains(&state.db, tenant_id).await?;
    let staff: Vec<AccountView> = staff.iter().map(AccountView::from).collect();
    Ok(ctx.page(
        "merchant/home.html",
        context! { me => ser(&AccountView::from(&me)), staff => ser(&staff), domains, storefront_url => format!("{}://{}/", state.config.public_scheme, ctx.host.0) },
    ))
}
