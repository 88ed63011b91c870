//! Which site a request is for, as extractors: a handler that takes a `StoreSite`
//! only runs on a store's host, one that takes `PlatformSite` only on the platform
//! host; anything else gets the right error page.

use crate::error::{WebError, WebResult};
use crate::state::AppState;
use crate::templates::render;
use axum::extract::State;
use axum::http::header::HOST;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use ecom_services::Site;
use minijinja::context;

/// The `Host` header as sent (with port), for building links back to this site.
#[derive(Debug, Clone)]
pub struct HostHeader(pub String);

impl HostHeader {
    fn from_parts(parts: &Parts) -> Self {
        let host = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .unwrap_or_default();
        Self(host.to_owned())
    }
}

pub async fn resolve(state: &AppState, parts: &Parts) -> WebResult<(Site, HostHeader)> {
    let host = HostHeader::from_parts(parts);
    let site = state.directory.resolve(&host.0).await?;
    Ok((site, host))
}

pub(crate) fn unknown_host() -> WebError {
    WebError::NotFound { message: "There is no store at this address. Check the spelling of the link.".into() }
}

/// `/`: the storefront on a store host, the landing page on the platform host.
pub async fn home(State(state): State<AppState>, req: axum::extract::Request) -> WebResult<Response> {
    let (mut parts, _) = req.into_parts();
    match resolve(&state, &parts).await? {
        (Site::Platform, _) => {
            Ok(render("platform/home.html", context! { platform_domain => state.directory.platform_domain() })
                .into_response())
        }
        (Site::Store(tenant), host) => {
            let shop = crate::storefront::Shop::for_store(*tenant, host, &mut parts, &state).await?;
            crate::storefront::home(&state, shop).await
        }
        (Site::Unknown | Site::Invalid, _) => Err(unknown_host()),
    }
}

/// Any other path.
pub async fn not_found() -> WebError {
    WebError::not_found()
}
