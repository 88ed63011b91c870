//! The super-admin panel, on the platform host under `/admin`.

use crate::auth::SignedIn;
use crate::error::WebResult;
use crate::state::AppState;
use crate::templates::ser;
use axum::extract::State;
use axum::response::Response;
use minijinja::context;

pub async fn home(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    let stores = ecom_store::tenants::list(&state.db, 50, 0).await?;
    let store_count = ecom_store::tenants::count(&state.db).await?;
    let port = page.ctx.host.0.rsplit_once(':').map(|(_, p)| format!(":{p}")).unwrap_or_default();
    let stores: Vec<_> = stores
        .iter()
        .map(|t| {
            context! {
                slug => t.slug.as_str(), name => t.name.clone(), status => t.status.as_str(),
                currency => t.currency.code(), locale => t.locale.as_str(),
                url => state.directory.store_url(t, &state.config.public_scheme, &port),
            }
        })
        .collect();
    Ok(page.page("admin/home.html", context! { stores, store_count }))
}

pub async fn mailbox(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    let mails = ecom_store::mailbox::list_all(&state.db, 100).await?;
    Ok(page.page("admin/mailbox.html", context! { mails => ser(&mails) }))
}
