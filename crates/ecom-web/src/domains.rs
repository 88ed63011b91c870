//! Custom domains in the web layer: the merchant's page (`/merchant/settings/domains`),
//! the HTTP verification file every host serves (`/.well-known/ecom-verify/<token>`),
//! the store's public address (its primary domain when it has one), and the 301 from
//! the platform address to the primary domain for storefront pages.

use crate::auth::SignedIn;
use crate::error::{WebError, WebResult};
use crate::state::AppState;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use ecom_core::{HostTarget, Tenant, resolve_host};
use ecom_services::domains::{self as svc, CheckOutcome};
use ecom_services::{ServiceError, Site};
use minijinja::context;
use uuid::Uuid;

const PAGE: &str = "/merchant/settings/domains";

/// The `:port` of a `Host` header, or nothing.
fn port_suffix(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((_, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => {
            &host[host.len() - port.len() - 1..]
        }
        _ => "",
    }
}

/// The store's public address for links: `scheme://<primary domain>` when it has one
/// (with the port this request came in on, for development), else this request's host.
pub fn store_base(state: &AppState, tenant: &Tenant, host: &str) -> String {
    match &tenant.primary_domain {
        Some(primary) => format!("{}://{primary}{}", state.config.public_scheme, port_suffix(host)),
        None => format!("{}://{host}", state.config.public_scheme),
    }
}

/// Paths that stay on the platform address when a store has a primary domain: the
/// panel, the APIs, provider webhooks, assets and operations endpoints.
fn stays(path: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "/merchant",
        "/api",
        "/graphql",
        "/static",
        "/media",
        "/icons",
        "/webhooks",
        "/.well-known",
        "/healthz",
        "/readyz",
        "/metrics",
        "/brand.css",
    ];
    PREFIXES.iter().any(|p| path.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
}

/// Sends storefront page views on `<slug>.<platform domain>` to the store's primary
/// domain with a 301, path and query kept. Only reads (GET, HEAD): a form posted to
/// the old address still works.
pub async fn redirect_to_primary(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD) || stays(req.uri().path()) {
        return next.run(req).await;
    }
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned();
    if !matches!(resolve_host(&host, state.directory.platform_domain()), HostTarget::StoreSlug(_)) {
        return next.run(req).await;
    }
    let Ok(Site::Store(tenant)) = state.directory.resolve(&host).await else { return next.run(req).await };
    let Some(primary) = tenant.primary_domain.as_deref() else { return next.run(req).await };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let target = format!("{}://{primary}{}{path}", state.config.public_scheme, port_suffix(&host));
    match HeaderValue::from_str(&target) {
        Ok(location) => (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, location)]).into_response(),
        Err(_) => next.run(req).await,
    }
}

/// `GET /.well-known/ecom-verify/{token}` on any host: `ecom-verify=<token>` when a
/// domain of this host name holds that token, so a GET through the domain proves it
/// points at the platform.
pub async fn well_known(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Path(token): Path<String>,
) -> WebResult<Response> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    match state.domains.well_known(host, &token).await? {
        Some(body) => Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()),
        None => Err(WebError::not_found()),
    }
}

fn when(d: chrono::DateTime<chrono::Utc>) -> String {
    d.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn actor(page: &SignedIn) -> String {
    format!("staff {}", page.me.email)
}

async fn render_page(
    state: &AppState,
    page: &SignedIn,
    error: Option<String>,
    notice: Option<String>,
    form_domain: Option<String>,
) -> WebResult<Response> {
    let tenant = page.store()?;
    let platform_address = format!("{}.{}", tenant.slug.as_str(), state.directory.platform_domain());
    let domains: Vec<minijinja::Value> = state
        .domains
        .list(tenant.id)
        .await?
        .into_iter()
        .map(|d| {
            let display = svc::unicode_name(&d.domain);
            let gave_up = d.status == ecom_store::domains::PENDING && d.next_check_at.is_none();
            context! {
                id => d.id.to_string(),
                domain => d.domain.clone(),
                display => (display != d.domain).then_some(display),
                verified => d.status == ecom_store::domains::VERIFIED,
                primary => d.is_primary,
                txt_name => format!("{}.{}", svc::TXT_LABEL, d.domain),
                txt_value => svc::expected_value(&d.token),
                http_url => state.domains.http_url(&d.domain, &d.token),
                last_error => (!d.last_error.is_empty()).then_some(d.last_error.clone()),
                last_checked_at => d.last_checked_at.map(when),
                next_check_at => d.next_check_at.map(when),
                gave_up,
                verified_at => d.verified_at.map(when),
                created_at => when(d.created_at),
                url => format!("{}://{}{}", state.config.public_scheme, d.domain, port_suffix(&page.ctx.host.0)),
            }
        })
        .collect();
    let has_primary = tenant.primary_domain.is_some();
    Ok(page.page(
        "merchant/domains.html",
        context! {
            domains, error, notice, form_domain, platform_address, has_primary,
            platform_domain => state.directory.platform_domain(),
            page_title => "Domains",
        },
    ))
}

fn unprocessable(resp: WebResult<Response>) -> WebResult<Response> {
    let mut resp = resp?;
    *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    Ok(resp)
}

#[derive(serde::Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    page: SignedIn,
    axum::extract::Query(q): axum::extract::Query<NoticeQuery>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let notice = q.notice.as_deref().and_then(|n| match n {
        "added" => Some("Domain added. Publish the token by one of the two ways below, then press Verify now."),
        "verified" => Some("Verified: the domain now reaches your store."),
        "primary" => Some("Primary domain saved: links and your platform address now lead there."),
        "platform" => Some("Your platform address is the primary address again."),
        "removed" => Some("Domain removed."),
        _ => None,
    });
    render_page(&state, &page, None, notice.map(str::to_owned), None).await
}

#[derive(serde::Deserialize)]
pub struct AddForm {
    #[serde(default)]
    domain: String,
}

pub async fn add(
    State(state): State<AppState>,
    page: SignedIn,
    axum::Form(form): axum::Form<AddForm>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    match state.domains.add(tenant.id, &form.domain, &actor(&page)).await {
        Ok(_) => Ok(Redirect::to(&format!("{PAGE}?notice=added")).into_response()),
        Err(ServiceError::Invalid(e)) => {
            unprocessable(render_page(&state, &page, Some(e.message), None, Some(form.domain)).await)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn verify(State(state): State<AppState>, page: SignedIn, Path(id): Path<Uuid>) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    match state.domains.verify_now(tenant.id, id, &actor(&page)).await? {
        CheckOutcome::Verified { .. } => Ok(Redirect::to(&format!("{PAGE}?notice=verified")).into_response()),
        CheckOutcome::NotYet(why) => {
            unprocessable(render_page(&state, &page, Some(format!("Not verified yet. {why}")), None, None).await)
        }
    }
}

pub async fn make_primary(State(state): State<AppState>, page: SignedIn, Path(id): Path<Uuid>) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    match state.domains.set_primary(tenant.id, Some(id), &actor(&page)).await {
        Ok(()) => {
            // Cached pages carry the old address in their links.
            state.pages.invalidate_all();
            Ok(Redirect::to(&format!("{PAGE}?notice=primary")).into_response())
        }
        Err(ServiceError::Invalid(e)) => unprocessable(render_page(&state, &page, Some(e.message), None, None).await),
        Err(e) => Err(e.into()),
    }
}

pub async fn use_platform_address(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    state.domains.set_primary(tenant.id, None, &actor(&page)).await?;
    state.pages.invalidate_all();
    Ok(Redirect::to(&format!("{PAGE}?notice=platform")).into_response())
}

pub async fn remove(State(state): State<AppState>, page: SignedIn, Path(id): Path<Uuid>) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    state.domains.remove(tenant.id, id, &actor(&page)).await?;
    state.pages.invalidate_all();
    Ok(Redirect::to(&format!("{PAGE}?notice=removed")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_staying_paths() {
        assert_eq!(port_suffix("demo.localhost:8080"), ":8080");
        assert_eq!(port_suffix("demo.localhost"), "");
        assert!(stays("/merchant") && stays("/merchant/settings") && stays("/api/v1/x") && stays("/graphql"));
        assert!(!stays("/") && !stays("/products/hat") && !stays("/account/login") && !stays("/merchantile"));
    }
}
