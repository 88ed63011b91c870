//! GraphQL: the public Storefront API at `POST /graphql` and the Merchant API at
//! `POST /merchant/graphql` on a store's host.
//!
//! Errors carry `extensions.code`: `NOT_FOUND`, `VALIDATION`, `FORBIDDEN` (a missing
//! scope), `INTERNAL` from resolvers; `UNAUTHENTICATED` (HTTP 401) when the merchant
//! API gets no valid credentials; `GRAPHQL_VALIDATION_FAILED` (a query that does not
//! parse or does not fit the schema), `MAX_DEPTH_EXCEEDED` and
//! `MAX_COMPLEXITY_EXCEEDED` for queries refused before they run.

pub mod cost;
pub mod graphiql;
pub mod ids;
pub mod merchant;
pub mod storefront;
mod storefront_cart;
mod storefront_customer;

use crate::error::{WebError, WebResult};
use crate::state::AppState;
use async_graphql::{ErrorExtensions, Value};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::{FromRequestParts, State};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::PrivateCookieJar;
use ecom_core::{Realm, Tenant};
use ecom_services::{ServiceError, Site};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use std::sync::LazyLock;

/// The Storefront schema; it holds no data, so one serves every store.
static STOREFRONT: LazyLock<storefront::StorefrontSchema> = LazyLock::new(storefront::schema);
/// The Merchant schema, likewise one for every store.
static MERCHANT: LazyLock<merchant::MerchantSchema> = LazyLock::new(merchant::schema);

/// The Storefront API's schema in SDL, as committed in `schema/storefront.graphql`.
pub fn storefront_sdl() -> String {
    STOREFRONT.sdl()
}

/// The Merchant API's schema in SDL, as committed in `schema/merchant.graphql`.
pub fn merchant_sdl() -> String {
    MERCHANT.sdl()
}

/// What resolvers know about the request: the store and how to reach it.
pub struct Store {
    pub state: AppState,
    pub tenant: Tenant,
    /// The Host the request came on, e.g. `demo.localhost:8080`.
    pub host: String,
    pub ids: ids::IdCodec,
    /// The customer session cookie's claims, only for same-origin requests (checked
    /// against the database when used).
    pub session: Option<ecom_services::accounts::SignedIn>,
    /// The client's address, for rate limits on sign-in and sign-up.
    pub ip: String,
}

impl Store {
    /// The store's global id for `uuid` of this kind.
    pub fn gid(&self, kind: ids::Kind, uuid: uuid::Uuid) -> async_graphql::ID {
        async_graphql::ID(self.ids.encode(self.tenant.id, kind, uuid))
    }

    /// `https://demo.example.com`, for absolute URLs.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.state.config.public_scheme, self.host)
    }
}

/// A GraphQL error with `extensions.code`.
pub fn error(code: &'static str, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code))
}

/// A service failure as a GraphQL error; internal details are logged, not shown.
pub fn service_error(e: ServiceError) -> async_graphql::Error {
    match e {
        ServiceError::Invalid(i) => error("VALIDATION", i.to_string()),
        ServiceError::NotFound => error("NOT_FOUND", "not found"),
        ServiceError::Unauthorized(m) => error("UNAUTHENTICATED", m),
        ServiceError::RateLimited { retry_after_secs } => {
            error("THROTTLED", format!("too many attempts; try again in {retry_after_secs} s"))
        }
        ServiceError::Conflict(what) => error("VALIDATION", format!("{what} is already taken")),
        ServiceError::PlanLimit { limit, message } => async_graphql::Error::new(message).extend_with(|_, e| {
            e.set("code", "PLAN_LIMIT");
            e.set("limit", limit.code());
        }),
        other => {
            tracing::error!(error = %other, "GraphQL resolver failed");
            error("INTERNAL", "internal error")
        }
    }
}

/// An open store resolved from the Host header: unknown hosts are 404.
pub struct StoreHost {
    tenant: Tenant,
    host: String,
}

impl FromRequestParts<AppState> for StoreHost {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> WebResult<Self> {
        let (site, host) = crate::site::resolve(state, parts).await?;
        let Site::Store(tenant) = site else { return Err(crate::site::unknown_host()) };
        if !tenant.is_open() {
            return Err(WebError::StoreClosed { store_name: tenant.name });
        }
        Ok(Self { tenant: *tenant, host: host.0 })
    }
}

/// `POST /graphql` on a store host.
pub async fn storefront(
    State(state): State<AppState>,
    StoreHost { tenant, host }: StoreHost,
    crate::auth::ClientIp(ip): crate::auth::ClientIp,
    headers: http::HeaderMap,
    jar: axum_extra::extract::PrivateCookieJar,
    request: GraphQLRequest,
) -> Response {
    if let Some(refused) = over_plan(&state, tenant.id).await {
        return refused;
    }
    let ids = ids::IdCodec::new(state.gid_key.clone());
    // A cross-site request is served, but as nobody: the session cookie is ignored.
    let session = cookie_request_is_same_origin(&headers, &host)
        .then(|| crate::session::claims(&jar, ecom_core::Realm::Customer(tenant.id)))
        .flatten();
    let limits = state.config.api_limits;
    let meter = cost::Meter {
        buckets: state.api_buckets.clone(),
        keys: vec![
            (format!("sf:{}:{ip}", tenant.id), limits.storefront_client),
            (format!("store:{}", tenant.id), limits.store),
        ],
    };
    // Cached for the request, so a page can load every product's collections at once.
    let collections = async_graphql::dataloader::DataLoader::with_cache(
        storefront::CollectionsLoader { state: state.clone(), tenant: tenant.clone() },
        tokio::spawn,
        async_graphql::dataloader::HashMapCache::default(),
    );
    let store = Store { state, tenant, host, ids, session, ip };
    let request = request.into_inner().data(store).data(meter).data(collections);
    let mut response = STOREFRONT.execute(request).await;
    set_error_codes(&mut response, storefront::MAX_DEPTH, storefront::MAX_COMPLEXITY);
    GraphQLResponse::from(response).into_response()
}

/// `POST /merchant/graphql` on a store host, for a staff session or an app token.
pub async fn merchant(
    State(state): State<AppState>,
    MerchantCaller { tenant, host, caller }: MerchantCaller,
    crate::auth::ClientIp(ip): crate::auth::ClientIp,
    request: GraphQLRequest,
) -> Response {
    if let Some(refused) = over_plan(&state, tenant.id).await {
        return refused;
    }
    let ids = ids::IdCodec::new(state.gid_key.clone());
    let limits = state.config.api_limits;
    let meter = cost::Meter {
        buckets: state.api_buckets.clone(),
        keys: vec![
            (format!("mc:{}:{}", tenant.id, caller.bucket), limits.merchant_client),
            (format!("store:{}", tenant.id), limits.store),
        ],
    };
    let store = Store { state, tenant, host, ids, session: None, ip };
    let mut response = MERCHANT.execute(request.into_inner().data(store).data(caller).data(meter)).await;
    set_error_codes(&mut response, merchant::MAX_DEPTH, merchant::MAX_COMPLEXITY);
    GraphQLResponse::from(response).into_response()
}

/// Gives every error of a response an `extensions.code`: resolvers set their own;
/// errors async-graphql raised before running the query get one here (depth and
/// complexity limits, with the limit in the message; queries that do not fit the
/// schema), and anything else is `INTERNAL`.
pub fn set_error_codes(response: &mut async_graphql::Response, max_depth: usize, max_complexity: usize) {
    for e in &mut response.errors {
        let has_code = e.extensions.as_ref().is_some_and(|x| x.get("code").is_some());
        if has_code {
            continue;
        }
        let code = if e.message.contains("nested too deep") {
            e.message = format!("Query is nested too deep: at most {max_depth} levels.");
            "MAX_DEPTH_EXCEEDED"
        } else if e.message.contains("too complex") {
            e.message = format!(
                "Query is too complex: at most {max_complexity} (a field costs 1, a connection `first` times its node)."
            );
            "MAX_COMPLEXITY_EXCEEDED"
        } else if e.path.is_empty() {
            "GRAPHQL_VALIDATION_FAILED"
        } else {
            "INTERNAL"
        };
        e.extensions.get_or_insert_with(Default::default).set("code", Value::from(code));
    }
}

/// Whether a request that a browser may have sent with cookies is safe to act on.
///
/// The CSRF middleware exempts `/graphql` endpoints, and async-graphql reads any body
/// as JSON whatever its content type, so a cross-site `<form>` or a "simple" `fetch`
/// (`text/plain`) could otherwise ride on a session cookie. Browsers only send
/// `application/json` cross-site after a CORS preflight, which we never grant; and an
/// `Origin`, when sent, must name this host.
pub fn cookie_request_is_same_origin(headers: &HeaderMap, host: &str) -> bool {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return false;
    }
    match headers.get(header::ORIGIN).map(|o| o.to_str()) {
        None => true,
        Some(Ok(origin)) => {
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            origin != "null" && origin_host.trim_end_matches('/').eq_ignore_ascii_case(host)
        }
        Some(Err(_)) => false,
    }
}

/// A response with one GraphQL error, for requests refused before they run.
/// Counts a request against the store's plan allowance of API requests a minute:
/// `Some` when it is over (the request is then refused with 429 and `Retry-After`).
pub(crate) async fn plan_window(
    state: &AppState,
    tenant: ecom_core::TenantId,
) -> Option<ecom_services::plans::OverApiLimit> {
    match state.plans.take_api_request(tenant).await {
        Ok(Ok(())) => None,
        Ok(Err(over)) => {
            metrics::counter!("ecom_api_plan_throttled_total").increment(1);
            Some(over)
        }
        Err(e) => {
            // The plan could not be read: serve the request rather than fail it.
            tracing::warn!(error = %e, "plan allowance not checked");
            None
        }
    }
}

/// [`plan_window`] for the GraphQL APIs: a GraphQL error body, code `THROTTLED`.
async fn over_plan(state: &AppState, tenant: ecom_core::TenantId) -> Option<Response> {
    let over = plan_window(state, tenant).await?;
    let body = serde_json::json!({ "errors": [{ "message": over.message, "extensions": {
        "code": "THROTTLED", "limit": ecom_services::plans::Limit::ApiRequestsPerMinute.code(),
        "retryAfterSeconds": over.retry_after_secs } }] });
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&over.retry_after_secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Some(resp)
}

fn refused(status: StatusCode, code: &'static str, message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    let mut resp = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// The app token a request carries: `Authorization: Bearer ecm_…` or, as Shopify's
/// `X-Shopify-Access-Token`, `X-Ecom-Access-Token: ecm_…`.
pub(crate) fn access_token(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get("x-ecom-access-token") {
        return Some(v.to_str().unwrap_or_default().trim().to_owned());
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().unwrap_or_default().trim();
    let (scheme, token) = auth.split_once(' ').unwrap_or((auth, ""));
    Some(if scheme.eq_ignore_ascii_case("bearer") { token.trim().to_owned() } else { String::new() })
}

/// Who is calling the merchant API of the store the host names: an app by its token
/// (which then decides, even if a session cookie came along), or a signed-in staff
/// member. Anyone else gets 401 `UNAUTHENTICATED`.
pub struct MerchantCaller {
    tenant: Tenant,
    host: String,
    caller: merchant::Caller,
}

impl FromRequestParts<AppState> for MerchantCaller {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let (site, host) = crate::site::resolve(state, parts).await.map_err(IntoResponse::into_response)?;
        let Site::Store(tenant) = site else { return Err(crate::site::unknown_host().into_response()) };
        let (tenant, host) = (*tenant, host.0);
        let internal = |e: &dyn std::fmt::Display| {
            tracing::error!(error = %e, "merchant API authentication failed");
            refused(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error")
        };
        if let Some(token) = access_token(&parts.headers) {
            return match state.api_tokens.app_for(tenant.id, &token).await {
                Ok(Some(app)) => Ok(Self { tenant, host, caller: merchant::Caller::app(app) }),
                Ok(None) => Err(refused(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHENTICATED",
                    "This access token is not valid for this store: it may be mistyped or revoked.",
                )),
                Err(e) => Err(internal(&e)),
            };
        }
        let jar = PrivateCookieJar::<axum_extra::extract::cookie::Key>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match crate::session::current(state, &jar, Realm::Staff(tenant.id)).await {
            Ok(Some(me)) if cookie_request_is_same_origin(&parts.headers, &host) => {
                Ok(Self { tenant, host, caller: merchant::Caller::staff(&me) })
            }
            Ok(Some(_)) => Err(refused(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                "A request signed in by cookie must be sent as application/json from this store's own pages.",
            )),
            Ok(None) => Err(refused(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "Sign in to the merchant panel, or send an access token (Authorization: Bearer ecm_…).",
            )),
            Err(e) => Err(internal(&format!("{e:?}"))),
        }
    }
}

/// `GET /graphql`: GraphiQL for the Storefront API, when enabled (`ECOM_GRAPHIQL`).
pub async fn storefront_graphiql(State(state): State<AppState>, StoreHost { tenant, .. }: StoreHost) -> Response {
    if !state.config.graphiql {
        return graphiql_off();
    }
    let query = "query Shop {\n  shop { name currencyCode }\n  products(first: 5) {\n    nodes { id title handle priceRange { minVariantPrice { amount currencyCode } } }\n  }\n}\n";
    graphiql::page("/graphql", &format!("{} · Storefront API", tenant.name), query)
}

/// `GET /merchant/graphql`: GraphiQL for the merchant API, when enabled. Queries
/// run as the signed-in staff member, or with a token given in the headers editor.
pub async fn merchant_graphiql(State(state): State<AppState>, StoreHost { tenant, .. }: StoreHost) -> Response {
    if !state.config.graphiql {
        return graphiql_off();
    }
    let query = "query Orders {\n  shop { name }\n  orders(first: 5) {\n    nodes { id name displayFinancialStatus totalPrice { amount currencyCode } }\n  }\n}\n";
    graphiql::page("/merchant/graphql", &format!("{} · Merchant API", tenant.name), query)
}

fn graphiql_off() -> Response {
    let body =
        "GraphiQL is turned off here (ECOM_GRAPHIQL=true turns it on). POST GraphQL queries as JSON to this address.";
    (http::StatusCode::NOT_FOUND, body).into_response()
}
