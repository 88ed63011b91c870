//! The merchant panel's webhooks page (`/merchant/settings/webhooks`): subscriptions
//! with their last result, a form to create one (the signing secret is shown once),
//! on / off / delete, and each subscription's delivery log with "Redeliver".
//! Every change is audited by the service, in the transaction that makes it.

use crate::auth::SignedIn;
use crate::error::{WebError, WebResult};
use crate::state::AppState;
use crate::templates::ser;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use ecom_services::ServiceError;
use minijinja::context;
use uuid::Uuid;

const LIST: &str = "/merchant/settings/webhooks";

fn when(d: chrono::DateTime<chrono::Utc>) -> String {
    d.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn actor(page: &SignedIn) -> String {
    format!("staff {}", page.me.email)
}

/// The list page, with an error or a just-created subscription's secret.
async fn list_page(
    state: &AppState,
    page: &SignedIn,
    error: Option<String>,
    form: Option<(String, Vec<String>)>,
    created: Option<(String, String)>,
) -> WebResult<Response> {
    let tenant = page.store()?;
    let subs: Vec<minijinja::Value> = state
        .webhooks
        .list(tenant.id, None, ecom_services::webhooks::MAX_SUBSCRIPTIONS)
        .await?
        .into_iter()
        .map(|s| {
            let active = s.is_active();
            context! {
                id => s.id.to_string(), url => s.callback_url, topics => s.topics, active,
                disabled_reason => s.disabled_reason, last_result => s.last_result,
                last_attempt_at => s.last_attempt_at.map(when), failing_since => s.failing_since.map(when),
                created_by => s.created_by, created_at => when(s.created_at),
            }
        })
        .collect();
    let (form_url, form_topics) = form.unwrap_or_default();
    let topics: Vec<minijinja::Value> = ecom_bus::Topic::ALL
        .iter()
        .map(|t| context! { name => t.as_str(), checked => form_topics.iter().any(|f| f == t.as_str()) })
        .collect();
    let (created_url, created_secret) = created.unzip();
    let shows_secret = created_secret.is_some();
    let mut resp = page.page(
        "merchant/webhooks.html",
        context! {
            subs, topics, error, form_url, created_url, created_secret,
            private_ok => state.outbound.allows_private_network(),
            page_title => "Webhooks",
        },
    );
    if shows_secret {
        // The secret is shown once: no cache may keep a copy.
        resp.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    }
    Ok(resp)
}

fn unprocessable(page: WebResult<Response>) -> WebResult<Response> {
    let mut resp = page?;
    *resp.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    Ok(resp)
}

pub async fn list(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    list_page(&state, &page, None, None, None).await
}

/// Creates a subscription (form: `callback_url`, one `topic` per checked topic).
pub async fn create(
    State(state): State<AppState>,
    page: SignedIn,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    let url = pairs.iter().find(|(k, _)| k == "callback_url").map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
    let topics: Vec<String> = pairs.iter().filter(|(k, _)| k == "topic").map(|(_, v)| v.clone()).collect();
    match state.webhooks.create(tenant.id, &url, &topics, &actor(&page)).await {
        Ok((sub, secret)) => list_page(&state, &page, None, None, Some((sub.callback_url, secret))).await,
        Err(ServiceError::Invalid(e)) => {
            unprocessable(list_page(&state, &page, Some(e.message), Some((url, topics)), None).await)
        }
        Err(e) => Err(e.into()),
    }
}

/// One subscription and its newest deliveries with every attempt.
pub async fn detail(State(state): State<AppState>, page: SignedIn, Path(id): Path<Uuid>) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    let sub = state.webhooks.get(tenant.id, id).await?.ok_or_else(WebError::not_found)?;
    let deliveries: Vec<minijinja::Value> = state
        .webhooks
        .deliveries(tenant.id, id, 100)
        .await?
        .into_iter()
        .map(|d| {
            let log: Vec<minijinja::Value> = d
                .log
                .iter()
                .rev()
                .map(|a| {
                    context! {
                        at => when(a.at), status_code => a.status_code, error => a.error.clone(),
                        latency_ms => a.latency_ms, excerpt => a.response_excerpt.clone(),
                    }
                })
                .collect();
            context! {
                id => d.id.to_string(), event_id => d.event_id.to_string(), topic => d.topic, status => d.status,
                attempts => d.attempts, last_status_code => d.last_status_code, last_error => d.last_error,
                next_attempt_at => when(d.next_attempt_at), created_at => when(d.created_at), log,
            }
        })
        .collect();
    let sub = context! {
        id => sub.id.to_string(), url => sub.callback_url.clone(), topics => sub.topics.clone(),
        active => sub.is_active(), disabled_reason => sub.disabled_reason.clone(),
        last_result => sub.last_result.clone(), created_at => when(sub.created_at),
    };
    Ok(page.page(
        "merchant/webhook.html",
        context! { sub, deliveries => ser(&deliveries), page_title => "Webhook deliveries" },
    ))
}

#[derive(serde::Deserialize)]
pub struct StatusForm {
    /// `true` to turn on, anything else to turn off.
    active: String,
}

pub async fn set_status(
    State(state): State<AppState>,
    page: SignedIn,
    Path(id): Path<Uuid>,
    axum::Form(form): axum::Form<StatusForm>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    state.webhooks.set_active(tenant.id, id, form.active == "true", &actor(&page)).await?;
    Ok(Redirect::to(LIST).into_response())
}

pub async fn delete(State(state): State<AppState>, page: SignedIn, Path(id): Path<Uuid>) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    state.webhooks.delete(tenant.id, id, &actor(&page)).await?;
    Ok(Redirect::to(LIST).into_response())
}

/// Queues a new attempt of one delivery now.
pub async fn redeliver(
    State(state): State<AppState>,
    page: SignedIn,
    Path((id, delivery)): Path<(Uuid, Uuid)>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Settings)?;
    let tenant = page.store()?;
    state.webhooks.redeliver(tenant.id, id, delivery, &actor(&page)).await?;
    Ok(Redirect::to(&format!("{LIST}/{id}")).into_response())
}
