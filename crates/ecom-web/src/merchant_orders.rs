//! The merchant panel's orders and checkout settings.

use crate::auth::SignedIn;
use crate::checkout::staff_actor;
use crate::error::{WebError, WebResult};
use crate::state::AppState;
use crate::templates::ser;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use ecom_core::Money;
use ecom_core::order::{OrderStatus, PaymentStatus};
use ecom_services::ServiceError;
use ecom_services::checkout::OrderCommand;
use ecom_store::orders::OrderFilter;
use minijinja::context;
use serde::Deserialize;
use uuid::Uuid;

const PAGE: u64 = 50;

#[derive(Deserialize, Default)]
pub struct OrdersQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    payment: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    page: Option<u64>,
}

fn day(field: &'static str, raw: &str) -> WebResult<Option<chrono::DateTime<chrono::Utc>>> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    let d = chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| WebError::BadRequest(format!("{field}: \"{}\" is not a date like 2026-11-25.", raw.trim())))?;
    Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()))
}

pub async fn list(State(state): State<AppState>, page: SignedIn, Query(q): Query<OrdersQuery>) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Orders)?;
    let tenant = page.store()?;
    let status = OrderStatus::parse(&q.status).map(|s| s.as_str().to_owned());
    let payment = PaymentStatus::parse(&q.payment).map(|s| s.as_str().to_owned());
    let n = q.page.unwrap_or(1).clamp(1, 10_000);
    let filter = OrderFilter {
        status,
        payment_status: payment,
        search: Some(q.q.clone()).filter(|s| !s.trim().is_empty()),
        placed_from: day("From", &q.from)?,
        placed_to: day("To", &q.to)?.map(|d| d + chrono::Duration::days(1)),
        limit: PAGE,
        offset: (n - 1) * PAGE,
        ..Default::default()
    };
    let (orders, total) = state.checkout.orders(&tenant, &filter).await?;
    let statuses: Vec<_> =
        OrderStatus::ALL.iter().map(|s| context! { value => s.as_str(), label => s.label() }).collect();
    let payments: Vec<_> =
        PaymentStatus::ALL.iter().map(|s| context! { value => s.as_str(), label => s.label() }).collect();
    Ok(page.page(
        "merchant/orders.html",
        context! {
            orders => ser(&orders), total, statuses, payments, page_title => "Orders",
            q => context! { status => q.status, payment => q.payment, q => q.q, from => q.from, to => q.to },
            page_no => n, has_next => n * PAGE < total,
        },
    ))
}

async fn detail_page(state: &AppState, page: &SignedIn, number: i64, error: Option<String>) -> WebResult<Response> {
    let tenant = page.store()?;
    let Some(order) = state.checkout.order(&tenant, number).await? else { return Err(WebError::not_found()) };
    let refundable = Money::new(order.refundable_minor, tenant.currency).decimal();
    let title = format!("Order {}", order.name);
    let mut resp = page.page(
        "merchant/order.html",
        context! { order => ser(&order), error => error.clone(), refundable, page_title => title },
    );
    if error.is_some() {
        *resp.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

pub async fn detail(State(state): State<AppState>, page: SignedIn, Path(number): Path<i64>) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Orders)?;
    detail_page(&state, &page, number, None).await
}

#[derive(Deserialize, Default)]
pub struct ActionForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    carrier: String,
    #[serde(default)]
    tracking: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    restock: Option<String>,
    /// `line:<uuid>` → quantity, for partial fulfilment.
    #[serde(flatten)]
    rest: std::collections::HashMap<String, String>,
}

pub async fn act(
    State(state): State<AppState>,
    page: SignedIn,
    Path(number): Path<i64>,
    Form(f): Form<ActionForm>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Orders)?;
    let tenant = page.store()?;
    let Some(order) = state.checkout.order(&tenant, number).await? else { return Err(WebError::not_found()) };
    let command = match f.action.as_str() {
        "mark_paid" => OrderCommand::MarkPaid,
        "capture" => OrderCommand::Capture,
        "fulfil" => {
            let mut lines = Vec::new();
            for (k, v) in &f.rest {
                if let Some(id) = k.strip_prefix("line:").and_then(|id| Uuid::parse_str(id).ok()) {
                    let q: i32 = v.trim().parse().unwrap_or(-1);
                    if q < 0 {
                        return detail_page(&state, &page, number, Some(format!("\"{v}\" is not a quantity."))).await;
                    }
                    if q > 0 {
                        lines.push((id, q));
                    }
                }
            }
            if lines.is_empty() && f.rest.keys().any(|k| k.starts_with("line:")) {
                return detail_page(&state, &page, number, Some("Enter how many of each item to fulfil.".into())).await;
            }
            OrderCommand::Fulfil(lines)
        }
        "ship" => OrderCommand::Ship { carrier: f.carrier, tracking: f.tracking },
        "out_for_delivery" => OrderCommand::OutForDelivery,
        "deliver" => OrderCommand::Deliver,
        "cancel" => OrderCommand::Cancel { restock: f.restock.is_some() },
        "refund" => match Money::parse("amount", &f.amount, tenant.currency) {
            Ok(m) => OrderCommand::Refund { amount: m.minor, reason: f.reason },
            Err(e) => return detail_page(&state, &page, number, Some(e.to_string())).await,
        },
        "request_return" => OrderCommand::RequestReturn { reason: f.reason },
        "receive_return" => {
            let mut lines = Vec::new();
            for (k, v) in &f.rest {
                if let Some(id) = k.strip_prefix("return:").and_then(|id| Uuid::parse_str(id).ok()) {
                    match v.trim().parse::<i32>() {
                        Ok(q) if q >= 0 => lines.push((id, q)),
                        _ => {
                            let why = format!("Returned quantity: \"{}\" is not a number of items.", v.trim());
                            return detail_page(&state, &page, number, Some(why)).await;
                        }
                    }
                }
            }
            if !lines.is_empty() && lines.iter().all(|(_, q)| *q == 0) {
                let why = "Enter how many of each item came back.".to_owned();
                return detail_page(&state, &page, number, Some(why)).await;
            }
            lines.retain(|(_, q)| *q > 0);
            OrderCommand::ReceiveReturn { lines, restock: f.restock.is_some() }
        }
        _ => return Err(WebError::BadRequest("Unknown action.".into())),
    };
    match state.checkout.command(&tenant, order.id, command, &staff_actor(&page)).await {
        Ok(()) => Ok(Redirect::to(&format!("/merchant/orders/{number}")).into_response()),
        Err(ServiceError::Invalid(e)) => detail_page(&state, &page, number, Some(e.to_string())).await,
        Err(e) => Err(e.into()),
    }
}

async fn settings_page(state: &AppState, page: &SignedIn, error: Option<String>) -> WebResult<Response> {
    let tenant = page.store()?;
    let settings = state.checkout.settings(&tenant).await?;
    let audit: Vec<_> = state
        .checkout
        .audit_log(&tenant, 20)
        .await?
        .into_iter()
        .map(|a| context! { actor => a.actor, action => a.action, target => a.target, detail => a.detail, at => a.created_at.to_rfc3339() })
        .collect();
    let countries: Vec<_> = ecom_core::checkout::COUNTRIES
        .iter()
        .map(|(code, name, _)| context! { code => *code, name => *name })
        .collect();
    let mut resp = page.page(
        "merchant/checkout_settings.html",
        context! { settings => ser(&settings), error => error.clone(), countries, audit, page_title => "Checkout settings" },
    );
    if error.is_some() {
        *resp.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

pub async fn settings(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    settings_page(&state, &page, None).await
}

#[derive(Deserialize, Default)]
pub struct SettingsForm {
    #[serde(default)]
    section: String,
    #[serde(default)]
    prices_include_tax: Option<String>,
    #[serde(default)]
    auto_capture: Option<String>,
    #[serde(default)]
    order_expiry_minutes: String,
    #[serde(default)]
    manual_instructions: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    base: String,
    #[serde(default)]
    per_kg: String,
    #[serde(default)]
    free_over: String,
    #[serde(default)]
    countries: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    percent: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    min_subtotal: String,
    #[serde(default)]
    usage_limit: String,
    #[serde(default)]
    expires: String,
}

pub async fn save_settings(
    State(state): State<AppState>,
    page: SignedIn,
    Form(f): Form<SettingsForm>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    let actor = staff_actor(&page);
    let c = &state.checkout;
    let result = match f.section.as_str() {
        "general" => match f.order_expiry_minutes.trim().parse::<i32>() {
            Ok(minutes) => {
                c.save_general_settings(
                    &tenant,
                    f.prices_include_tax.is_some(),
                    minutes,
                    f.auto_capture.is_some(),
                    &f.manual_instructions,
                    &actor,
                )
                .await
            }
            Err(_) => Err(ecom_core::Invalid::new("order expiry", "a number of minutes").into()),
        },
        "shipping" => {
            c.save_shipping(&tenant, &f.code, &f.title, &f.base, &f.per_kg, &f.free_over, &f.countries, &actor).await
        }
        "shipping_delete" => c.delete_shipping(&tenant, &f.code, &actor).await,
        "tax" => c.save_tax(&tenant, &f.country, &f.region, &f.name, &f.percent, &actor).await,
        "tax_delete" => match Uuid::parse_str(f.id.trim()) {
            Ok(id) => c.delete_tax(&tenant, id, &actor).await,
            Err(_) => Err(ServiceError::NotFound),
        },
        "discount" => match day("Expires", &f.expires) {
            Ok(expires) => {
                c.create_discount(
                    &tenant,
                    &f.code,
                    &f.kind,
                    &f.value,
                    &f.min_subtotal,
                    &f.usage_limit,
                    expires.map(|d| d + chrono::Duration::days(1)),
                    &actor,
                )
                .await
            }
            Err(WebError::BadRequest(why)) => return settings_page(&state, &page, Some(why)).await,
            Err(e) => return Err(e),
        },
        "discount_on" | "discount_off" => {
            c.set_discount_active(&tenant, &f.code, f.section == "discount_on", &actor).await
        }
        _ => return Err(WebError::BadRequest("Unknown settings section.".into())),
    };
    match result {
        Ok(()) => Ok(Redirect::to("/merchant/settings/checkout").into_response()),
        Err(ServiceError::Invalid(e)) => settings_page(&state, &page, Some(e.to_string())).await,
        Err(ServiceError::Conflict(what)) => {
            settings_page(&state, &page, Some(format!("{what} is already taken."))).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
pub struct CustomersQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<u64>,
}

/// Customers with their orders and lifetime value.
pub async fn customers(
    State(state): State<AppState>,
    page: SignedIn,
    Query(q): Query<CustomersQuery>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Customers)?;
    let tenant = page.store()?;
    let n = q.page.unwrap_or(1).clamp(1, 10_000);
    let (customers, total) = state.checkout.customers(&tenant, &q.q, n).await?;
    Ok(page.page(
        "merchant/customers.html",
        context! {
            customers => ser(&customers), total, q => q.q, page_no => n,
            has_next => i64::try_from(n * 50).unwrap_or(i64::MAX) < total, page_title => "Customers",
        },
    ))
}

pub async fn customer(State(state): State<AppState>, page: SignedIn, Path(id): Path<Uuid>) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Customers)?;
    let tenant = page.store()?;
    let Some((customer, orders)) = state.checkout.customer(&tenant, id).await? else {
        return Err(WebError::not_found());
    };
    let title = customer.email.clone();
    Ok(page.page(
        "merchant/customer.html",
        context! { customer => ser(&customer), orders => ser(&orders), page_title => title },
    ))
}
