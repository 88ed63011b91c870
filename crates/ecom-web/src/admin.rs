//! The super-admin panel, on the platform host under `/admin`.

use crate::auth::SignedIn;
use crate::error::WebResult;
use crate::state::AppState;
use crate::templates::ser;
use axum::extract::State;
use axum::response::Response;
use minijinja::context;

pub async fn mailbox(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    let mails = ecom_store::mailbox::list_all(&state.db, 100).await?;
    Ok(page.page("admin/mailbox.html", context! { mails => ser(&mails) }))
}
