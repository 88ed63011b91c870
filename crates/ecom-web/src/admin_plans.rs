//! The super-admin's plans (`/admin/plans`), a store's page (`/admin/stores/{slug}`)
//! with its 30-day figures, chart, plan and status, and "view as merchant".

use crate::auth::{AreaCtx, SignedIn};
use crate::error::{WebError, WebResult};
use crate::session;
use crate::state::AppState;
use crate::templates::ser;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::PrivateCookieJar;
use ecom_core::Money;
use ecom_services::ServiceError;
use ecom_services::plans::{Limit, PlanForm, format_bytes};
use ecom_store::plans::Plan;
use minijinja::{Value, context};
use serde::Deserialize;

fn actor(page: &SignedIn) -> String {
    format!("operator {}", page.me.email)
}

/// A plan as the pages show it: limits in words, "unlimited" for none.
fn plan_view(plan: &Plan, stores: Option<u64>) -> Value {
    let n = |v: Option<u64>| v.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    context! {
        code => plan.code.clone(), name => plan.name.clone(), price => plan.price.clone(),
        products => n(plan.max_products), staff => n(plan.max_staff), api => n(plan.api_per_minute),
        storage => plan.max_storage_bytes.map_or_else(|| "unlimited".to_owned(), format_bytes),
        is_default => plan.is_default, stores,
    }
}

async fn plans_page(
    state: &AppState,
    page: &SignedIn,
    form: &PlanForm,
    error: Option<String>,
    saved: Option<&str>,
) -> WebResult<Response> {
    let plans: Vec<_> = state.plans.list().await?.iter().map(|(p, n)| plan_view(p, Some(*n))).collect();
    let mut resp = page.page(
        "admin/plans.html",
        context! { plans, form => ser(&FormView::from(form)), error => error.clone(), saved, page_title => "Plans" },
    );
    if error.is_some() {
        *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

/// The plan form's fields for the template.
#[derive(serde::Serialize)]
struct FormView {
    code: String,
    name: String,
    price: String,
    max_products: String,
    max_staff: String,
    api_per_minute: String,
    max_storage_mb: String,
}

impl From<&PlanForm> for FormView {
    fn from(f: &PlanForm) -> Self {
        Self {
            code: f.code.clone(),
            name: f.name.clone(),
            price: f.price.clone(),
            max_products: f.max_products.clone(),
            max_staff: f.max_staff.clone(),
            api_per_minute: f.api_per_minute.clone(),
            max_storage_mb: f.max_storage_mb.clone(),
        }
    }
}

#[derive(Deserialize, Default)]
pub struct SavedQuery {
    saved: Option<String>,
}

pub async fn list(State(state): State<AppState>, page: SignedIn, Query(q): Query<SavedQuery>) -> WebResult<Response> {
    plans_page(&state, &page, &PlanForm::default(), None, q.saved.as_deref()).await
}

pub async fn create(State(state): State<AppState>, page: SignedIn, Form(f): Form<PlanForm>) -> WebResult<Response> {
    match state.plans.create(&actor(&page), &f).await {
        Ok(plan) => Ok(Redirect::to(&format!("/admin/plans?saved={}", plan.code)).into_response()),
        Err(ServiceError::Invalid(i)) => plans_page(&state, &page, &f, Some(i.to_string()), None).await,
        Err(e) => Err(e.into()),
    }
}

async fn edit_page(page: &SignedIn, plan: &Plan, form: &PlanForm, error: Option<String>) -> Response {
    let mut resp = page.page(
        "admin/plan.html",
        context! {
            plan => plan_view(plan, None), form => ser(&FormView::from(form)), error => error.clone(),
            page_title => format!("Plan {}", plan.name),
        },
    );
    if error.is_some() {
        *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    resp
}

pub async fn edit_form(State(state): State<AppState>, page: SignedIn, Path(code): Path<String>) -> WebResult<Response> {
    let plan = state.plans.find(&code).await?.ok_or_else(WebError::not_found)?;
    Ok(edit_page(&page, &plan, &PlanForm::of(&plan), None).await)
}

pub async fn update(
    State(state): State<AppState>,
    page: SignedIn,
    Path(code): Path<String>,
    Form(f): Form<PlanForm>,
) -> WebResult<Response> {
    let plan = state.plans.find(&code).await?.ok_or_else(WebError::not_found)?;
    match state.plans.update(&actor(&page), &code, &f).await {
        Ok(()) => Ok(Redirect::to(&format!("/admin/plans?saved={code}")).into_response()),
        Err(ServiceError::Invalid(i)) => {
            Ok(edit_page(&page, &plan, &PlanForm { code, ..f }, Some(i.to_string())).await)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete(State(state): State<AppState>, page: SignedIn, Path(code): Path<String>) -> WebResult<Response> {
    match state.plans.delete(&actor(&page), &code).await {
        Ok(()) => Ok(Redirect::to("/admin/plans").into_response()),
        Err(ServiceError::Invalid(i)) => {
            plans_page(
                &state,
                &page,
                &PlanForm::default(),
                Some(format!("Plan \"{code}\" was not deleted: {}", i.message)),
                None,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn make_default(
    State(state): State<AppState>,
    page: SignedIn,
    Path(code): Path<String>,
) -> WebResult<Response> {
    state.plans.make_default(&actor(&page), &code).await?;
    Ok(Redirect::to(&format!("/admin/plans?saved={code}")).into_response())
}

/// The start of the 30 days the figures cover: midnight UTC 29 days ago, so the
/// window is today and the 29 days before it, the same as the chart's bars.
pub fn thirty_days_start() -> chrono::DateTime<chrono::Utc> {
    let today = chrono::Utc::now().date_naive();
    (today - chrono::Duration::days(29)).and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// One bar of the 30-day chart, in SVG units.
#[derive(serde::Serialize)]
struct Bar {
    x: u32,
    y: u32,
    height: u32,
    label: String,
    day: String,
}

const CHART_HEIGHT: u32 = 120;
const BAR_STEP: u32 = 20;

fn chart(days: &[(chrono::NaiveDate, i64, i64)], currency: ecom_core::Currency) -> Vec<Bar> {
    let max = days.iter().map(|d| d.2).max().unwrap_or(0).max(1);
    days.iter()
        .enumerate()
        .map(|(i, (day, orders, sales))| {
            let h = if *sales > 0 {
                u32::try_from((i128::from(*sales) * i128::from(CHART_HEIGHT) / i128::from(max)).max(2)).unwrap_or(2)
            } else {
                0
            };
            let i = u32::try_from(i).unwrap_or(0);
            Bar {
                x: i * BAR_STEP + 2,
                y: CHART_HEIGHT - h,
                height: h,
                label: format!(
                    "{}: {} order{}, {}",
                    day.format("%b %-d"),
                    orders,
                    if *orders == 1 { "" } else { "s" },
                    Money::new(*sales, currency).display()
                ),
                day: day.format("%-d").to_string(),
            }
        })
        .collect()
}

#[derive(Deserialize, Default)]
pub struct DetailQuery {
    saved: Option<String>,
}

/// A store's page: figures, chart, plan and usage, status, view as merchant.
pub async fn detail(
    State(state): State<AppState>,
    page: SignedIn,
    Path(slug): Path<String>,
    Query(q): Query<DetailQuery>,
) -> WebResult<Response> {
    detail_page(&state, &page, &slug, q.saved.as_deref(), None).await
}

async fn detail_page(
    state: &AppState,
    page: &SignedIn,
    slug: &str,
    saved: Option<&str>,
    error: Option<String>,
) -> WebResult<Response> {
    let row = ecom_store::tenants::store_row(&state.db, slug).await?.ok_or_else(WebError::not_found)?;
    let t = &row.tenant;
    let since = thirty_days_start();
    let totals = ecom_store::tenants::order_totals_since(&state.db, t.id, since).await?;
    let today = chrono::Utc::now().date_naive();
    let mut days: Vec<(chrono::NaiveDate, i64, i64)> =
        (0..30).map(|i| (today - chrono::Duration::days(29 - i), 0, 0)).collect();
    for (at, total) in &totals {
        let d = at.date_naive();
        if let Some(day) = days.iter_mut().find(|(day, _, _)| *day == d) {
            day.1 += 1;
            day.2 += total;
        }
    }
    let (orders, sales): (i64, i64) = days.iter().fold((0, 0), |(o, s), d| (o + d.1, s + d.2));
    let plan = state.plans.of_store(t.id).await?;
    let usage = state.plans.usage(t.id).await?;
    let plans: Vec<_> = state.plans.list().await?.iter().map(|(p, _)| plan_view(p, None)).collect();
    let over: Vec<String> = plan
        .as_ref()
        .map(|p| {
            [(Limit::Products, usage.products), (Limit::Staff, usage.staff), (Limit::Storage, usage.storage_bytes)]
                .into_iter()
                .filter_map(|(l, used)| l.of(p).filter(|allowed| used > *allowed).map(|a| l.describe(a)))
                .collect()
        })
        .unwrap_or_default();
    let port = page.ctx.host.0.rsplit_once(':').map(|(_, p)| format!(":{p}")).unwrap_or_default();
    let domains = ecom_store::tenants::domains(&state.db, t.id).await?;
    let log: Vec<_> = ecom_services::audit::recent(&state.db, t.id, 10)
        .await?
        .into_iter()
        .map(|a| context! { actor => a.actor, action => a.action, detail => a.detail, at => a.created_at.to_rfc3339() })
        .collect();
    let mut resp = page.page(
        "admin/store.html",
        context! {
            page_title => t.name.clone(),
            s => context! {
                slug => t.slug.as_str(), name => t.name.clone(), status => t.status.as_str(),
                currency => t.currency.code(), created => row.created_at.format("%Y-%m-%d").to_string(),
                url => state.directory.store_url(t, &state.config.public_scheme, &port), domains,
            },
            orders, sales => Money::new(sales, t.currency).display(),
            bars => ser(&chart(&days, t.currency)), chart_height => CHART_HEIGHT, chart_width => BAR_STEP * 30,
            first_day => days.first().map(|d| d.0.format("%b %-d").to_string()),
            last_day => days.last().map(|d| d.0.format("%b %-d").to_string()),
            mid_day => days.get(15).map(|d| d.0.format("%b %-d").to_string()),
            plan => plan.as_ref().map(|p| plan_view(p, None)), plans,
            usage => context! {
                products => usage.products, staff => usage.staff, storage => format_bytes(usage.storage_bytes),
            },
            over, log, saved, error => error.clone(),
        },
    );
    if error.is_some() {
        *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

#[derive(Deserialize)]
pub struct PlanChange {
    #[serde(default)]
    plan: String,
    /// Where to go back to: `list` for the store list, else the store's page.
    #[serde(default)]
    back: String,
}

/// Puts a store on another plan, audited in the store's log and the operator log.
pub async fn change_plan(
    State(state): State<AppState>,
    page: SignedIn,
    Path(slug): Path<String>,
    Form(f): Form<PlanChange>,
) -> WebResult<Response> {
    let tenant = ecom_store::tenants::find_by_slug(&state.db, &slug).await?.ok_or_else(WebError::not_found)?;
    match state.plans.change_store_plan(&actor(&page), tenant.id, f.plan.trim()).await {
        Ok(_) if f.back == "list" => Ok(Redirect::to(&format!("/admin/stores?q={slug}")).into_response()),
        Ok(_) => Ok(Redirect::to(&format!("/admin/stores/{slug}?saved=plan")).into_response()),
        Err(ServiceError::Invalid(i)) => detail_page(&state, &page, &slug, None, Some(i.to_string())).await,
        Err(e) => Err(e.into()),
    }
}

/// Makes a one-time link that opens the store's panel read-only on the store's own
/// host. The link is shown, not redirected to: the CSP's `form-action 'self'` stops a
/// form post from being redirected to another host.
pub async fn view_as(State(state): State<AppState>, page: SignedIn, Path(slug): Path<String>) -> WebResult<Response> {
    let tenant = ecom_store::tenants::find_by_slug(&state.db, &slug).await?.ok_or_else(WebError::not_found)?;
    let token = ecom_services::view_as::grant(&state.db, tenant.id, page.me.id).await?;
    let port = page.ctx.host.0.rsplit_once(':').map(|(_, p)| format!(":{p}")).unwrap_or_default();
    let base = state.directory.store_url(&tenant, &state.config.public_scheme, &port);
    Ok(page.page(
        "admin/view_as.html",
        context! {
            page_title => format!("View {} as merchant", tenant.name),
            slug => tenant.slug.as_str(), name => tenant.name.clone(),
            link => format!("{base}/merchant/view-as?token={token}"),
            link_minutes => ecom_services::view_as::LINK_TTL_SECS / 60,
            view_minutes => ecom_services::view_as::SESSION_TTL_SECS / 60,
        },
    ))
}

#[derive(Deserialize, Default)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// On the store's host: exchanges the one-time link for a read-only view.
pub async fn open_view(
    State(state): State<AppState>,
    ctx: AreaCtx,
    jar: PrivateCookieJar,
    Query(q): Query<TokenQuery>,
) -> WebResult<Response> {
    let tenant = ctx.tenant.clone().ok_or_else(WebError::not_found)?;
    match ecom_services::view_as::open(&state.db, tenant.id, &q.token).await {
        Ok(operator) => {
            // Any staff session on this browser ends: the view is the operator's alone.
            let jar = session::end(jar, ecom_core::AccountKind::Staff);
            Ok((session::start_view_as(&state, jar, tenant.id, &operator), Redirect::to("/merchant")).into_response())
        }
        Err(ServiceError::Unauthorized(m)) => Err(WebError::Forbidden(m.into())),
        Err(e) => Err(e.into()),
    }
}
