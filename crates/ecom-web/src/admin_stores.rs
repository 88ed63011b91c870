//! The super-admin's stores: list with search and filters and each store's orders and
//! sales over the last 30 days; suspend and reopen; the log of operator actions.
//! Operator actions are written to the store's own audit log (the merchant sees what
//! the platform did to their store) with the actor `operator <email>`.

use crate::auth::SignedIn;
use crate::error::{WebError, WebResult};
use crate::state::AppState;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use ecom_core::{Money, TenantStatus};
use ecom_store::tenants::{self, StoreSearch};
use minijinja::context;
use serde::Deserialize;

const PAGE: u64 = 50;

#[derive(Deserialize, Default)]
pub struct StoresQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    created_from: String,
    #[serde(default)]
    page: Option<u64>,
}

pub async fn list(State(state): State<AppState>, page: SignedIn, Query(f): Query<StoresQuery>) -> WebResult<Response> {
    let status = match f.status.as_str() {
        "" => None,
        s => Some(TenantStatus::parse(s).ok_or_else(|| WebError::BadRequest(format!("no status \"{s}\"")))?),
    };
    let created_from = match f.created_from.trim() {
        "" => None,
        d => Some(
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| WebError::BadRequest("created from: use a date such as 2026-11-01".into()))?
                .and_hms_opt(0, 0, 0)
                .unwrap_or_default()
                .and_utc(),
        ),
    };
    let number = f.page.unwrap_or(1).max(1);
    let search =
        StoreSearch { text: Some(f.q.clone()), status, created_from, limit: PAGE, offset: (number - 1) * PAGE };
    let (rows, total) = tenants::search(&state.db, &search).await?;
    let ids: Vec<_> = rows.iter().map(|r| r.tenant.id).collect();
    let since = chrono::Utc::now() - chrono::Duration::days(30);
    let sales = tenants::sales_since(&state.db, &ids, since).await?;
    let port = page.ctx.host.0.rsplit_once(':').map(|(_, p)| format!(":{p}")).unwrap_or_default();
    let stores: Vec<_> = rows
        .iter()
        .map(|r| {
            let t = &r.tenant;
            let (orders, sold) = sales.iter().find(|(id, _, _)| *id == t.id).map_or((0, 0), |(_, n, s)| (*n, *s));
            context! {
                slug => t.slug.as_str(), name => t.name.clone(), status => t.status.as_str(),
                created => r.created_at.format("%Y-%m-%d").to_string(),
                orders, sales => Money::new(sold, t.currency).display(),
                url => state.directory.store_url(t, &state.config.public_scheme, &port),
            }
        })
        .collect();
    let pages = total.div_ceil(PAGE).max(1);
    Ok(page.page(
        "admin/stores.html",
        context! {
            stores, total, page_number => number, pages,
            q => f.q, status => f.status, created_from => f.created_from, page_title => "Stores",
        },
    ))
}

#[derive(Deserialize)]
pub struct StatusForm {
    /// `suspended` or `active`.
    status: String,
    #[serde(default)]
    reason: String,
}

/// Suspends or reopens a store, audited in the store's log.
pub async fn set_status(
    State(state): State<AppState>,
    page: SignedIn,
    Path(slug): Path<String>,
    Form(f): Form<StatusForm>,
) -> WebResult<Response> {
    let status =
        TenantStatus::parse(&f.status).ok_or_else(|| WebError::BadRequest(format!("no status \"{}\"", f.status)))?;
    let tenant = state.directory.set_status(&slug, status).await?;
    let action = if status == TenantStatus::Suspended { "store.suspended" } else { "store.reopened" };
    let actor = format!("operator {}", page.me.email);
    let reason = f.reason.trim().chars().take(500).collect::<String>();
    if let Err(e) = ecom_services::audit::record(&state.db, tenant.id, &actor, action, &slug, &reason).await {
        tracing::error!(error = %e, action, "audit entry not written");
    }
    Ok(Redirect::to(&format!("/admin/stores?q={slug}")).into_response())
}

/// What operators did, across stores.
pub async fn audit(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    let entries: Vec<_> = tenants::operator_audit(&state.db, 200)
        .await?
        .into_iter()
        .map(|(slug, a)| {
            context! { store => slug, actor => a.actor, action => a.action, detail => a.detail, at => a.created_at.to_rfc3339() }
        })
        .collect();
    Ok(page.page("admin/audit.html", context! { entries, page_title => "Operator log" }))
}
