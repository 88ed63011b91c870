//! The storefront. The catalog issue fills it; for now, the home page and the
//! customer's account page.

use crate::auth::{AreaCtx, require};
use crate::error::WebResult;
use crate::session::AccountView;
use crate::state::AppState;
use crate::templates::ser;
use axum::extract::State;
use axum::response::Response;
use axum_extra::extract::PrivateCookieJar;
use minijinja::context;

pub async fn account(
    State(state): State<AppState>,
    ctx: AreaCtx,
    jar: PrivateCookieJar,
) -> WebResult<Response> {
    let me = match require(&state, &ctx, &jar, "/account").await? {
        Ok(me) => me,
        Err(redirect) => return Ok(redirect),
    };
    Ok(ctx.page(
        "storefront/account.html",
        context! { me => ser(&AccountView::from(&me)) },
    ))
}
