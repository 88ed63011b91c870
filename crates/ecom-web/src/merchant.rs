//! The merchant panel, on each store's host under `/merchant`.

use crate::auth::SignedIn;
use crate::error::{WebError, WebResult};
use crate::session::AccountView;
use crate::state::AppState;
use crate::templates::ser;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use ecom_store::StoreError;
use minijinja::context;

#[derive(serde::Deserialize)]
pub struct HomeQuery {
    welcome: Option<String>,
    sent: Option<String>,
    joined: Option<String>,
}

pub async fn home(
    State(state): State<AppState>,
    page: SignedIn,
    axum::extract::Query(q): axum::extract::Query<HomeQuery>,
) -> WebResult<Response> {
    let tenant_id = page.ctx.realm.tenant().ok_or_else(WebError::not_found)?;
    let who =
        ecom_services::accounts::SignedIn { realm: page.ctx.realm, id: page.me.id, auth_version: page.me.auth_version };
    let verified = state.accounts.email_verified(&who).await?;
    let checklist = ecom_services::onboarding::checklist(&state.db, &page.store()?, verified, page.me.access()).await?;
    let txn = state.db.tenant_txn(tenant_id).await?;
    let staff = ecom_store::accounts::list_staff(&txn, tenant_id).await?;
    txn.commit().await.map_err(StoreError::from)?;
    let domains = ecom_store::tenants::domains(&state.db, tenant_id).await?;
    let staff: Vec<AccountView> = staff.iter().map(AccountView::from).collect();
    let storefront_url = format!("{}://{}/", state.config.public_scheme, page.ctx.host.0);
    Ok(page.page(
        "merchant/home.html",
        context! {
            staff => ser(&staff), domains, storefront_url, checklist => ser(&checklist),
            welcome => q.welcome.is_some(), sent => q.sent.is_some(), joined => q.joined.is_some(),
        },
    ))
}

/// Store settings: name, brand colour and logo.
pub async fn settings(
    page: SignedIn,
    axum::extract::Query(q): axum::extract::Query<crate::merchant_catalog::SavedQuery>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    settings_page(&page, None, q.saved.is_some())
}

fn settings_page(page: &SignedIn, error: Option<String>, saved: bool) -> WebResult<Response> {
    let tenant = page.store()?;
    let color = tenant.brand.color_or_default().hex();
    Ok(page.page("merchant/settings.html", context! { error, saved, color, page_title => "Store settings" }))
}

/// Saves the settings form (multipart: `name`, `color`, `logo` file, `remove_logo`).
pub async fn save_settings(
    State(state): State<AppState>,
    page: SignedIn,
    mut multipart: axum::extract::Multipart,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    let (mut name, mut color, mut logo, mut remove_logo) = (tenant.name.clone(), None, None, false);
    let unreadable =
        |e: axum::extract::multipart::MultipartError| WebError::BadRequest(format!("The form could not be read: {e}"));
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        match field.name() {
            Some("name") => name = field.text().await.map_err(unreadable)?,
            Some("color") => color = Some(field.text().await.map_err(unreadable)?),
            Some("remove_logo") => remove_logo = true,
            Some("logo") => logo = Some(field.bytes().await.map_err(unreadable)?).filter(|b| !b.is_empty()),
            _ => {}
        }
    }
    let mut brand = tenant.brand.clone();
    match color.as_deref().map(str::trim).filter(|c| !c.is_empty()).map(ecom_core::BrandColor::parse) {
        Some(Ok(c)) => brand.color = Some(c),
        Some(Err(e)) => return settings_page(&page, Some(e.to_string()), false),
        None => brand.color = None,
    }
    if remove_logo {
        brand.logo = None;
    }
    if let Some(bytes) = logo {
        match state.media.ingest(tenant.id, bytes).await {
            Ok(stored) => brand.logo = Some(format!("{}.{}", stored.hash, stored.ext)),
            Err(ecom_media::MediaError::Rejected(why)) => {
                return settings_page(&page, Some(format!("That logo was refused: {why}.")), false);
            }
            Err(other) => return Err(WebError::Internal(other.to_string())),
        }
    }
    match state.directory.update_profile(&tenant, &name, &brand).await {
        Ok(()) => {}
        Err(ecom_services::ServiceError::Invalid(e)) => return settings_page(&page, Some(e.to_string()), false),
        Err(e) => return Err(e.into()),
    }
    // Rendered pages carry the old name and colours.
    state.catalog.invalidate(tenant.id);
    let detail = format!(
        "name {name:?}, colour {}, logo {}",
        brand.color.map(|c| c.hex()).unwrap_or_default(),
        brand.logo.as_deref().unwrap_or("none")
    );
    page.audit(&state, "store.branding", "store settings", &detail).await;
    Ok(axum::response::Redirect::to("/merchant/settings?saved=1").into_response())
}

/// The store's audit log: who changed what, newest first.
pub async fn audit(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Analytics)?;
    let tenant = page.store()?;
    let entries: Vec<_> = ecom_services::audit::recent(&state.db, tenant.id, 200)
        .await?
        .into_iter()
        .map(|a| context! { actor => a.actor, action => a.action, target => a.target, detail => a.detail, at => a.created_at.to_rfc3339() })
        .collect();
    Ok(page.page("merchant/audit.html", context! { entries, page_title => "Audit log" }))
}

/// A scope as the tokens page shows it.
#[derive(serde::Serialize)]
struct ScopeRow {
    area: &'static str,
    read: String,
    write: String,
}

/// The merchant API tokens page: the store's tokens, and a form to create one.
async fn api_page(
    state: &AppState,
    page: &SignedIn,
    error: Option<String>,
    created: Option<(String, String)>,
) -> WebResult<Response> {
    use ecom_core::scope::{Area, Scope};
    let tenant = page.store()?;
    let tokens: Vec<minijinja::Value> = state
        .api_tokens
        .app_tokens(tenant.id)
        .await?
        .into_iter()
        .map(|t| {
            let when = |d: chrono::DateTime<chrono::Utc>| d.format("%Y-%m-%d %H:%M").to_string();
            context! {
                id => t.id.to_string(), name => t.name, created_by => t.created_by,
                scopes => t.scopes.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect::<Vec<_>>(),
                created_at => when(t.created_at), last_used_at => t.last_used_at.map(when),
                revoked_at => t.revoked_at.map(when),
            }
        })
        .collect();
    let scopes: Vec<ScopeRow> = Area::ALL
        .iter()
        .map(|a| ScopeRow { area: a.as_str(), read: Scope::read(*a).to_string(), write: Scope::write(*a).to_string() })
        .collect();
    let endpoint = format!("{}://{}/merchant/graphql", state.config.public_scheme, page.ctx.host.0);
    let (created_name, created_token) = created.unzip();
    let shows_token = created_token.is_some();
    let mut resp = page.page(
        "merchant/api.html",
        context! {
            tokens, scopes => ser(&scopes), error, created_name, created_token, endpoint,
            page_title => "API access",
        },
    );
    if shows_token {
        // The token is shown once: no cache may keep a copy.
        resp.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    }
    Ok(resp)
}

pub async fn api_tokens(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    api_page(&state, &page, None, None).await
}

/// Creates a token (form: `name`, one `scope` field per checked scope) and shows it once.
pub async fn create_api_token(
    State(state): State<AppState>,
    page: SignedIn,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    let name = pairs.iter().find(|(k, _)| k == "name").map(|(_, v)| v.clone()).unwrap_or_default();
    let chosen: Vec<&str> = pairs.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.as_str()).collect();
    let scopes = match ecom_core::scope::Scopes::parse(&chosen.join(",")) {
        Ok(s) => s,
        Err(e) => return unprocessable(api_page(&state, &page, Some(e.to_string()), None).await),
    };
    let actor = format!("staff {}", page.me.email);
    match state.api_tokens.create_app_token(tenant.id, &name, &scopes, &actor).await {
        Ok((_, token)) => api_page(&state, &page, None, Some((name.trim().to_owned(), token))).await,
        Err(ecom_services::ServiceError::Invalid(e)) => {
            unprocessable(api_page(&state, &page, Some(e.to_string()), None).await)
        }
        Err(e) => Err(e.into()),
    }
}

fn unprocessable(page: WebResult<Response>) -> WebResult<Response> {
    let mut resp = page?;
    *resp.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    Ok(resp)
}

/// Revokes a token at once; apps using it get 401 from then on.
pub async fn revoke_api_token(
    State(state): State<AppState>,
    page: SignedIn,
    axum::extract::Path(id): axum::extract::Path<uuid::Uuid>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    state.api_tokens.revoke_app_token(tenant.id, id, &format!("staff {}", page.me.email)).await?;
    Ok(axum::response::Redirect::to("/merchant/settings/api").into_response())
}
