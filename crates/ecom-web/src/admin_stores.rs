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
    /// A plan's code.
    #[serde(default)]
    plan: String,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    created_from: String,
    /// `YYYY-MM-DD`, included.
    #[serde(default)]
    created_to: String,
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
    let created_before = match f.created_to.trim() {
        "" => None,
        d => Some(
            (chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| WebError::BadRequest("created to: use a date such as 2026-11-30".into()))?
                + chrono::Duration::days(1))
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc(),
        ),
    };
    let plans = state.plans.list().await?;
    let plan = match f.plan.trim() {
        "" => None,
        code => Some(
            plans
                .iter()
                .find(|(p, _)| p.code == code)
                .map(|(p, _)| p.id)
                .ok_or_else(|| WebError::BadRequest(format!("plan: there is no plan \"{code}\"")))?,
        ),
    };
    let number = f.page.unwrap_or(1).max(1);
    let search = StoreSearch {
        text: Some(f.q.clone()),
        status,
        plan,
        created_from,
        created_before,
        limit: PAGE,
        offset: (number - 1) * PAGE,
    };
    let (rows, total) = tenants::search(&state.db, &search).await?;
    let ids: Vec<_> = rows.iter().map(|r| r.tenant.id).collect();
    // One grouped query for the whole page of stores.
    let sales = tenants::sales_since(&state.db, &ids, crate::admin_plans::thirty_days_start()).await?;
    let port = page.ctx.host.0.rsplit_once(':').map(|(_, p)| format!(":{p}")).unwrap_or_default();
    let stores: Vec<_> = rows
        .iter()
        .map(|r| {
            let t = &r.tenant;
            let (orders, sold) = sales.iter().find(|(id, _, _)| *id == t.id).map_or((0, 0), |(_, n, s)| (*n, *s));
            let plan = plans.iter().find(|(p, _)| Some(p.id) == r.plan_id).map(|(p, _)| p);
            context! {
                slug => t.slug.as_str(), name => t.name.clone(), status => t.status.as_str(),
                created => r.created_at.format("%Y-%m-%d").to_string(),
                plan => plan.map(|p| p.name.clone()), plan_code => plan.map(|p| p.code.clone()),
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
            plans => plans.iter().map(|(p, _)| context! { code => p.code.clone(), name => p.name.clone() }).collect::<Vec<_>>(),
            q => f.q, status => f.status, plan => f.plan, created_from => f.created_from, created_to => f.created_to,
            page_title => "Stores",
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
    Ok(Redirect::to(&format!("/admin/stores/{slug}?saved=status")).into_response())
}

/// What operators did, across stores.
pub async fn audit(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    // Actions on stores (from the stores' own logs) and on the platform (plans),
    // newest first.
    let mut entries: Vec<(chrono::DateTime<chrono::Utc>, minijinja::Value)> = tenants::operator_audit(&state.db, 200)
        .await?
        .into_iter()
        .map(|(slug, a)| {
            (a.created_at, context! { store => slug, actor => a.actor, action => a.action, detail => a.detail, at => a.created_at.to_rfc3339() })
        })
        .collect();
    for a in ecom_store::plans::operator_log(&state.db, 200).await? {
        entries.push((
            a.created_at,
            context! { store => "(platform)", actor => a.actor, action => a.action, detail => format!("{} {}", a.target, a.detail).trim().to_owned(), at => a.created_at.to_rfc3339() },
        ));
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    let entries: Vec<_> = entries.into_iter().take(200).map(|(_, v)| v).collect();
    Ok(page.page("admin/audit.html", context! { entries, page_title => "Operator log" }))
}
