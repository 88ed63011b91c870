//! The customer account's phone form (verification by one-time code) and the Web Push
//! endpoints behind "Get notified on this device" (account) and "Alert me on new
//! orders on this device" (merchant panel). The buttons are `static/push.js`; the
//! messages are shown by `static/sw.js`.

use crate::auth::SignedIn;
use crate::error::{WebError, WebResult};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ecom_core::Realm;
use ecom_services::ServiceError;
use ecom_services::channels::SubscriptionJson;
use ecom_store::channels::{OWNER_CUSTOMER, OWNER_STAFF};
use minijinja::{Value, context};

/// What the account page shows about phone and push (merged into its context);
/// `query` is the page's query string (`?phone=verified` after a code was accepted).
pub async fn account_extras(state: &AppState, page: &SignedIn, query: Option<&str>) -> WebResult<Value> {
    let tenant = page.store()?;
    let phone = state.phones.status(tenant.id, page.me.id.0).await?;
    let devices = state.push.devices(tenant.id, OWNER_CUSTOMER, page.me.id.0).await?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default()).unwrap_or_default();
    let request_phone = pairs.into_iter().find(|(k, _)| k == "phone").map(|(_, v)| v);
    Ok(context! { phone => crate::templates::ser(&phone), push_devices => devices, request_phone })
}

async fn account_page(state: &AppState, page: &SignedIn, extra: Value, status: StatusCode) -> WebResult<Response> {
    let extras = account_extras(state, page, None).await?;
    let mut resp = page.page("storefront/account.html", context! { ..extra, ..extras });
    *resp.status_mut() = status;
    Ok(resp)
}

/// A refused phone or code: the account page again with the message by the form.
async fn phone_refused(state: &AppState, page: &SignedIn, e: ServiceError) -> WebResult<Response> {
    match e {
        ServiceError::Invalid(i) => {
            account_page(
                state,
                page,
                context! { phone_error => i.message, phone_field => i.field },
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        ServiceError::RateLimited { retry_after_secs } => {
            let message = if retry_after_secs >= 600 {
                "Too many codes were sent to this number; try again in an hour.".to_owned()
            } else {
                format!("A code was sent a moment ago; you can ask for another in {retry_after_secs} s.")
            };
            account_page(
                state,
                page,
                context! { phone_error => message, phone_field => "phone" },
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await
        }
        other => Err(other.into()),
    }
}

#[derive(serde::Deserialize)]
pub struct PhoneForm {
    #[serde(default)]
    phone: String,
}

/// `POST /account/phone`: saves the number (unverified) and texts it a code.
pub async fn send_code(
    State(state): State<AppState>,
    page: SignedIn,
    axum::Form(f): axum::Form<PhoneForm>,
) -> WebResult<Response> {
    let tenant = page.store()?;
    match state.phones.send_code(&tenant, page.me.id.0, &f.phone).await {
        Ok(()) => Ok(Redirect::to("/account?code=sent#phone").into_response()),
        Err(e) => phone_refused(&state, &page, e).await,
    }
}

#[derive(serde::Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// `POST /account/phone/verify`: checks the code.
pub async fn verify_code(
    State(state): State<AppState>,
    page: SignedIn,
    axum::Form(f): axum::Form<CodeForm>,
) -> WebResult<Response> {
    let tenant = page.store()?;
    match state.phones.verify(tenant.id, page.me.id.0, &f.code).await {
        Ok(()) => Ok(Redirect::to("/account?phone=verified#phone").into_response()),
        Err(e) => phone_refused(&state, &page, e).await,
    }
}

/// `POST /account/phone/remove`.
pub async fn remove_phone(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    let tenant = page.store()?;
    state.phones.remove(tenant.id, page.me.id.0).await?;
    Ok(Redirect::to("/account?phone=removed#phone").into_response())
}

/// The signed-in account as a push subscription owner.
fn owner(page: &SignedIn) -> WebResult<(ecom_core::TenantId, &'static str)> {
    match page.ctx.realm {
        Realm::Customer(t) => Ok((t, OWNER_CUSTOMER)),
        Realm::Staff(t) => Ok((t, OWNER_STAFF)),
        Realm::Admin => Err(WebError::not_found()),
    }
}

fn json_error(status: StatusCode, field: &str, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message, "field": field }))).into_response()
}

fn json_refused(e: ServiceError) -> WebResult<Response> {
    match e {
        ServiceError::Invalid(i) => Ok(json_error(StatusCode::UNPROCESSABLE_ENTITY, i.field, &i.message)),
        other => Err(other.into()),
    }
}

/// `GET /account/push/key`, `GET /merchant/push/key`: the VAPID public key.
pub async fn public_key(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    owner(&page)?;
    let key = state.push.public_key().await?;
    Ok(Json(serde_json::json!({ "publicKey": key })).into_response())
}

/// `POST /account/push`, `POST /merchant/push`: saves this browser's subscription
/// (the JSON of `PushSubscription.toJSON()`, CSRF token in `x-csrf-token`).
pub async fn subscribe(State(state): State<AppState>, page: SignedIn, body: axum::body::Bytes) -> WebResult<Response> {
    let (tenant, kind) = owner(&page)?;
    let sub: SubscriptionJson = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            return Ok(json_error(
                StatusCode::BAD_REQUEST,
                "body",
                &format!("expected a push subscription as JSON: {e}"),
            ));
        }
    };
    match state.push.subscribe(tenant, kind, page.me.id.0, &sub).await {
        Ok(()) => Ok((StatusCode::CREATED, Json(serde_json::json!({ "subscribed": true }))).into_response()),
        Err(e) => json_refused(e),
    }
}

#[derive(serde::Deserialize)]
pub struct Unsubscribe {
    #[serde(default)]
    endpoint: String,
}

/// `POST /account/push/unsubscribe`, `POST /merchant/push/unsubscribe`.
pub async fn unsubscribe(
    State(state): State<AppState>,
    page: SignedIn,
    body: axum::body::Bytes,
) -> WebResult<Response> {
    let (tenant, kind) = owner(&page)?;
    let Ok(u) = serde_json::from_slice::<Unsubscribe>(&body) else {
        return Ok(json_error(StatusCode::BAD_REQUEST, "endpoint", "expected {\"endpoint\": …} as JSON"));
    };
    if u.endpoint.trim().is_empty() {
        return Ok(json_error(StatusCode::UNPROCESSABLE_ENTITY, "endpoint", "expected the subscription's endpoint"));
    }
    match state.push.unsubscribe(tenant, kind, page.me.id.0, &u.endpoint).await {
        Ok(()) => Ok(Json(serde_json::json!({ "subscribed": false })).into_response()),
        Err(e) => json_refused(e),
    }
}
