//! Integrations in: JSON endpoints for outside systems (inventory, warehouse and
//! logistics software) that set stock levels and report shipments, with an app token
//! and an `Idempotency-Key` on every request.
//!
//! - `POST /api/v1/inventory/levels` (scope `write_inventory`):
//!   `{"levels": [{"sku": "TEE-S", "available": 12}, …]}` sets absolute levels, all or none.
//! - `POST /api/v1/orders/{number}/tracking` (scope `write_orders`):
//!   `{"carrier": "UPS", "tracking_number": "1Z…", "status"?: "in_transit" |
//!   "out_for_delivery" | "delivered"}` ships the order with that tracking and moves it
//!   on to the delivery stage the carrier reports (a stage already reached is a no-op).
//!
//! Errors are `{"error": {"code", "message", "field"?}}` with a fitting status. A retry
//! with the same key and body gets the first answer again (`Idempotent-Replayed: true`)
//! without a second change; the same key with another body is refused.

use crate::graphql::access_token;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ecom_core::Tenant;
use ecom_core::scope::{Area, Scope};
use ecom_services::ServiceError;
use ecom_services::Site;
use ecom_services::api_tokens::AppCaller;
use ecom_services::checkout::Actor;
use ecom_services::idempotency::{Idempotency, Keyed};
use serde::Deserialize;
use serde_json::{Value, json};

/// An error answer: `{"error": {"code", "message", "field"?}}`.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None }
    }

    fn body(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        json!({ "error": error })
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(i) => Self {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "INVALID",
                message: i.message,
                field: Some(i.field),
            },
            ServiceError::NotFound => {
                Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "There is no such order in this store.")
            }
            ServiceError::Conflict(what) => {
                Self::new(StatusCode::CONFLICT, "CONFLICT", format!("{what} is already taken"))
            }
            ServiceError::Unauthorized(m) => Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", m),
            ServiceError::PlanLimit { message, .. } => Self::new(StatusCode::FORBIDDEN, "PLAN_LIMIT", message),
            ServiceError::RateLimited { retry_after_secs } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "THROTTLED",
                format!("too many requests; try again in {retry_after_secs} s"),
            ),
            ServiceError::Internal(detail) => {
                tracing::error!(error = %detail, "integration request failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "Something went wrong on our side; retry with the same key.",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// The store the host names and the app calling it by token.
pub struct Integration {
    tenant: Tenant,
    app: AppCaller,
}

impl FromRequestParts<AppState> for Integration {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let (site, _) = crate::site::resolve(state, parts).await.map_err(IntoResponse::into_response)?;
        let Site::Store(tenant) = site else {
            return Err(
                ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "There is no store at this address.").into_response()
            );
        };
        let unauthenticated = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", m).into_response();
        let Some(token) = access_token(&parts.headers) else {
            return Err(unauthenticated(
                "Send an app token: Authorization: Bearer ecm_… (made at /merchant/settings/api).",
            ));
        };
        match state.api_tokens.app_for(tenant.id, &token).await {
            Ok(Some(app)) => match crate::graphql::plan_window(state, tenant.id).await {
                Some(over) => {
                    let mut resp =
                        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "THROTTLED", over.message).into_response();
                    if let Ok(v) = HeaderValue::from_str(&over.retry_after_secs.to_string()) {
                        resp.headers_mut().insert(header::RETRY_AFTER, v);
                    }
                    Err(resp)
                }
                None => Ok(Self { tenant: *tenant, app }),
            },
            Ok(None) => {
                Err(unauthenticated("This access token is not valid for this store: it may be mistyped or revoked."))
            }
            Err(e) => Err(ApiError::from(e).into_response()),
        }
    }
}

impl Integration {
    /// Refuses a caller without `scope`, or any write to a suspended store.
    fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if !self.app.scopes.allows(scope) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                format!("this needs the {scope} scope; the token has {}", self.app.scopes),
            ));
        }
        if !self.tenant.is_open() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                "this store is suspended by the platform: it can be read, not changed",
            ));
        }
        Ok(())
    }

    fn actor(&self) -> Actor {
        Actor::App(self.app.name.clone())
    }
}

/// Parses the JSON body into `T`, with an error that says what is wrong.
fn parse<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, ApiError> {
    T::deserialize(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", format!("the JSON body does not fit: {e}")))
}

/// Runs a change once per idempotency key: checks the key and the body, then hands the
/// parsed body to `change`, whose answer (or error) is kept for retries.
async fn keyed<F, Fut>(
    state: &AppState,
    who: &Integration,
    headers: &HeaderMap,
    path: &str,
    body: &Bytes,
    change: F,
) -> Response
where
    F: FnOnce(Value) -> Fut,
    Fut: std::future::Future<Output = Result<Value, ApiError>>,
{
    let Some(raw_key) = headers.get("idempotency-key") else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "IDEMPOTENCY_KEY_REQUIRED",
            "Send an Idempotency-Key header (e.g. a UUID), the same on every retry of this change.",
        )
        .into_response();
    };
    // A header that is not visible ASCII reads as empty, which the check refuses.
    let key = match Idempotency::parse_key(raw_key.to_str().unwrap_or_default()) {
        Ok(k) => k,
        Err(e) => return ApiError::from(ServiceError::from(e)).into_response(),
    };
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", format!("the body is not JSON: {e}"))
                .into_response();
        }
    };
    // The fingerprint is of the parsed body, so a retry that formats it differently
    // still matches.
    let canonical = serde_json::to_vec(&value).unwrap_or_default();
    let fingerprint = Idempotency::fingerprint(&[Method::POST.as_str().as_bytes(), path.as_bytes(), &canonical]);
    let client = format!("app:{}", who.app.token_id);
    let run = state.idempotency.run(who.tenant.id, &client, &key, &fingerprint, || async move {
        let (status, body) = match change(value).await {
            Ok(v) => (StatusCode::OK, v),
            Err(e) => (e.status, e.body()),
        };
        (status.as_u16(), body.to_string())
    });
    match run.await {
        Ok(Keyed::Answer { status, body, replayed }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
            if replayed {
                resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            }
            resp
        }
        Ok(Keyed::Mismatch) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "IDEMPOTENCY_KEY_REUSED",
            "This Idempotency-Key was used for a different request; use a new key for a new change.",
        )
        .into_response(),
        Ok(Keyed::InProgress) => {
            let mut resp = ApiError::new(
                StatusCode::CONFLICT,
                "IDEMPOTENCY_KEY_IN_USE",
                "A request with this Idempotency-Key is still being processed; retry in a moment.",
            )
            .into_response();
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            resp
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LevelsBody {
    levels: Vec<LevelInput>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LevelInput {
    sku: String,
    available: i64,
}

/// `POST /api/v1/inventory/levels`.
pub async fn set_levels(State(state): State<AppState>, who: Integration, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = who.require(Scope::write(Area::Inventory)) {
        return e.into_response();
    }
    let (catalog, tenant, actor) = (state.catalog.clone(), who.tenant.clone(), who.actor().label());
    keyed(&state, &who, &headers, "/api/v1/inventory/levels", &body, |value| async move {
        let input: LevelsBody = parse(&value)?;
        let levels: Vec<(String, i64)> = input.levels.into_iter().map(|l| (l.sku, l.available)).collect();
        let set = catalog.set_stock_levels(&tenant, &levels, &actor).await?;
        let levels: Vec<Value> =
            set.iter().map(|l| json!({ "sku": l.sku, "available": l.after, "previous": l.before })).collect();
        Ok(json!({ "levels": levels }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackingBody {
    carrier: String,
    tracking_number: String,
    #[serde(default)]
    status: Option<String>,
}

/// `POST /api/v1/orders/{number}/tracking`; the number with or without its `#`.
pub async fn add_tracking(
    State(state): State<AppState>,
    who: Integration,
    Path(number): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = who.require(Scope::write(Area::Orders)) {
        return e.into_response();
    }
    let Ok(number) = number.trim_start_matches('#').parse::<i64>() else {
        return ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "Order numbers look like 1001.").into_response();
    };
    let path = format!("/api/v1/orders/{number}/tracking");
    let (checkout, tenant, actor) = (state.checkout.clone(), who.tenant.clone(), who.actor());
    keyed(&state, &who, &headers, &path, &body, |value| async move {
        let input: TrackingBody = parse(&value)?;
        let status = input.status.as_deref().map(ecom_services::returns::CarrierStatus::parse).transpose()?;
        let order =
            checkout.add_tracking(&tenant, number, &input.carrier, &input.tracking_number, status, &actor).await?;
        Ok(json!({ "order": {
            "number": order.number,
            "name": order.name,
            "status": order.status,
            "payment_status": order.payment_status,
            "carrier": order.carrier,
            "tracking_number": order.tracking_number,
        }}))
    })
    .await
}
