//! The storefront. The catalog issue fills it; for now, the home page (in `site`) and
//! the customer's account page.

use crate::auth::SignedIn;
use axum::response::Response;
use minijinja::context;

pub async fn account(page: SignedIn) -> Response {
    page.page("storefront/account.html", context! {})
}
