//! The super-admin panel, on the platform host under `/admin`.

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
    let me = match require(&state, &ctx, &jar, "/admin").await? {
        Ok(me) => me,
        Err(redirect) => return Ok(redirect),
    };
    let stores = ecom_store::tenants::list(&state.db, 50, 0).await?;
    let store_count = ecom_store::tenants::count(&state.db).await?;
    let port = ctx
        .host
        .0
        .rsplit_once(':')
        .map(|(_, p)| format!(":{p}"))
        .unwrap_or_default();
    let stores: Vec<_> = stores
        .iter()
        .map(|t| context! { slug => t.slug.as_str(), name => t.name.clone(), status => t.status.as_str(), currency => t.currency.code(), locale => t.locale.as_str(),
            url => state.directory.store_url(t, &state.config.public_scheme, &port) })
        .collect();
    Ok(ctx.page(
        "admin/home.html",
        context! { me => ser(&AccountView::from(&me)), stores, store_count },
    ))
}

pub async fn mailbox(
    State(state): State<AppState>,
    ctx: AreaCtx,
    jar: PrivateCookieJar,
) -> WebResult<Response> {
    let me = match require(&state, &ctx, &jar, "/admin/mailbox").await? {
        Ok(me) => me,
        Err(redirect) => return Ok(redirect),
    };
    let mails = ecom_store::mailbox::list_all(&state.db, 100).await?;
    Ok(ctx.page(
        "admin/mailbox.html",
        context! { me => ser(&AccountView::from(&me)), mails => ser(&mails) },
    ))
}
