//! Theme editing in the merchant panel: a store's storefront templates, edited as
//! drafts (checked when saved, with the error's line), previewed, then published.
//! A published template that fails at run time falls back to the built-in one.

use crate::auth::SignedIn;
use crate::error::{WebError, WebResult};
use crate::state::AppState;
use crate::storefront::Shop;
use crate::templates;
use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use ecom_core::Tenant;
use ecom_store::StoreError;
use ecom_store::themes::{self as repo, DRAFT, PUBLISHED};
use minijinja::{Environment, context};
use serde::Deserialize;
use std::sync::Arc;

/// Built theme environments by (store, catalog generation, preview).
pub type ThemeCache = moka::future::Cache<(ecom_core::TenantId, u64, bool), Arc<Environment<'static>>>;

pub fn new_theme_cache() -> ThemeCache {
    moka::future::Cache::builder().max_capacity(1_000).time_to_live(std::time::Duration::from_secs(300)).build()
}

/// The environment a store's pages render with: published templates, or drafts over
/// them for a preview. Cached until the store's next catalog or theme change.
pub async fn store_env(state: &AppState, tenant: &Tenant, preview: bool) -> WebResult<Arc<Environment<'static>>> {
    let key = (tenant.id, state.catalog.generation(tenant.id), preview);
    let (db, id) = (state.db.clone(), tenant.id);
    state
        .themes
        .try_get_with(key, async move {
            let txn = db.tenant_txn(id).await?;
            let rows = repo::list(&txn, id).await?;
            txn.commit().await.map_err(StoreError::from)?;
            let mut chosen: Vec<(String, String)> =
                rows.iter().filter(|t| t.status == PUBLISHED).map(|t| (t.name.clone(), t.source.clone())).collect();
            if preview {
                for d in rows.iter().filter(|t| t.status == DRAFT) {
                    chosen.retain(|(n, _)| *n != d.name);
                    chosen.push((d.name.clone(), d.source.clone()));
                }
            }
            Ok::<_, StoreError>(Arc::new(templates::store_env(&chosen)))
        })
        .await
        .map_err(|e| WebError::Internal(e.to_string()))
}

pub async fn index(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    let txn = state.db.tenant_txn(tenant.id).await?;
    let rows = repo::list(&txn, tenant.id).await?;
    txn.commit().await.map_err(StoreError::from)?;
    let items: Vec<_> = templates::editable()
        .into_iter()
        .map(|name| {
            let draft = rows.iter().any(|t| t.name == name && t.status == DRAFT);
            let published = rows.iter().any(|t| t.name == name && t.status == PUBLISHED);
            context! { name, draft, published }
        })
        .collect();
    let drafts = rows.iter().filter(|t| t.status == DRAFT).count();
    Ok(page.page("merchant/theme.html", context! { items, drafts, page_title => "Theme" }))
}

#[derive(Deserialize)]
pub struct NameQuery {
    name: String,
}

async fn current_source(state: &AppState, tenant: &Tenant, name: &str) -> WebResult<String> {
    let txn = state.db.tenant_txn(tenant.id).await?;
    let rows = repo::list(&txn, tenant.id).await?;
    txn.commit().await.map_err(StoreError::from)?;
    let pick = |status: &str| rows.iter().find(|t| t.name == name && t.status == status).map(|t| t.source.clone());
    pick(DRAFT).or_else(|| pick(PUBLISHED)).or_else(|| templates::builtin_source(name)).ok_or_else(WebError::not_found)
}

pub async fn edit_form(
    State(state): State<AppState>,
    page: SignedIn,
    Query(q): Query<NameQuery>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    if !templates::editable().contains(&q.name.as_str()) {
        return Err(WebError::not_found());
    }
    let source = current_source(&state, &tenant, &q.name).await?;
    Ok(page.page("merchant/theme_edit.html", context! { name => q.name, source, page_title => "Edit template" }))
}

#[derive(Deserialize)]
pub struct EditForm {
    name: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    action: String,
}

pub async fn save(State(state): State<AppState>, page: SignedIn, Form(f): Form<EditForm>) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    if !templates::editable().contains(&f.name.as_str()) {
        return Err(WebError::not_found());
    }
    if f.source.len() > 256 * 1024 {
        return Err(WebError::BadRequest("A template can be at most 256 KB.".into()));
    }
    let txn = state.db.tenant_txn(tenant.id).await?;
    if f.action == "revert" {
        repo::revert(&txn, tenant.id, &f.name).await?;
        ecom_store::orders::audit(&txn, tenant.id, &format!("staff {}", page.me.email), "theme.revert", &f.name, "")
            .await?;
        txn.commit().await.map_err(StoreError::from)?;
        state.catalog.invalidate(tenant.id);
        return Ok(Redirect::to("/merchant/theme").into_response());
    }
    if let Err(problem) = templates::check(&f.name, &f.source) {
        txn.rollback().await.map_err(StoreError::from)?;
        let mut resp = page.page(
            "merchant/theme_edit.html",
            context! { name => f.name, source => f.source, problem => crate::templates::ser(&problem), page_title => "Edit template" },
        );
        *resp.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(resp);
    }
    repo::save_draft(&txn, tenant.id, &f.name, &f.source).await?;
    ecom_store::orders::audit(&txn, tenant.id, &format!("staff {}", page.me.email), "theme.draft", &f.name, "").await?;
    txn.commit().await.map_err(StoreError::from)?;
    state.catalog.invalidate(tenant.id);
    Ok(page.page(
        "merchant/theme_edit.html",
        context! { name => f.name, source => f.source, saved => true, page_title => "Edit template" },
    ))
}

pub async fn publish(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    let txn = state.db.tenant_txn(tenant.id).await?;
    repo::publish(&txn, tenant.id).await?;
    ecom_store::orders::audit(&txn, tenant.id, &format!("staff {}", page.me.email), "theme.publish", "theme", "")
        .await?;
    txn.commit().await.map_err(StoreError::from)?;
    state.catalog.invalidate(tenant.id);
    Ok(Redirect::to("/merchant/theme").into_response())
}

/// The store's home page rendered with the drafts, for the merchant only.
pub async fn preview(
    State(state): State<AppState>,
    page: SignedIn,
    req: axum::extract::Request,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    let (mut parts, _) = req.into_parts();
    let mut shop = Shop::for_store(tenant, page.ctx.host.clone(), &mut parts, &state).await?;
    shop.preview = true;
    crate::storefront::home(&state, shop).await
}
