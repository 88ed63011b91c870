//! GraphQL: the public Storefront API at `POST /graphql` on a store's host.
//!
//! Errors carry `extensions.code`: `NOT_FOUND`, `VALIDATION`, `INTERNAL` from
//! resolvers; `GRAPHQL_VALIDATION_FAILED` (a query that does not parse or does not
//! fit the schema), `MAX_DEPTH_EXCEEDED` and `MAX_COMPLEXITY_EXCEEDED` for queries
//! refused before they run.

pub mod cost;
pub mod ids;
pub mod storefront;
mod storefront_cart;
mod storefront_customer;

use crate::error::{WebError, WebResult};
use crate::state::AppState;
use async_graphql::{ErrorExtensions, Value};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::{FromRequestParts, State};
use axum::response::{IntoResponse, Response};
use ecom_core::Tenant;
use ecom_services::{ServiceError, Site};
use http::request::Parts;
use std::sync::LazyLock;

/// The Storefront schema; it holds no data, so one serves every store.
static STOREFRONT: LazyLock<storefront::StorefrontSchema> = LazyLock::new(storefront::schema);

/// The Storefront API's schema in SDL, as committed in `schema/storefront.graphql`.
pub fn storefront_sdl() -> String {
    STOREFRONT.sdl()
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
        other => {
            tracing::error!(error = %other, "storefront GraphQL resolver failed");
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

/// Whether a request may be trusted with the cookies it carries: browsers send
/// cookies on cross-site requests too, and async-graphql reads any body as JSON, so only
/// a JSON request (which another site cannot send without a CORS preflight we never
/// grant) whose Origin, if any, is this host counts.
pub fn cookie_request_is_same_origin(headers: &http::HeaderMap, host: &str) -> bool {
    let json = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("application/json"));
    let origin_ok = match headers.get(http::header::ORIGIN).and_then(|o| o.to_str().ok()) {
        None => true,
        Some(origin) => origin.split_once("://").is_some_and(|(_, h)| h.eq_ignore_ascii_case(host)),
    };
    json && origin_ok
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
    let collections = async_graphql::dataloader::DataLoader::new(
        storefront::CollectionsLoader { state: state.clone(), tenant: tenant.clone() },
        tokio::spawn,
    );
    let store = Store { state, tenant, host, ids, session, ip };
    let request = request.into_inner().data(store).data(meter).data(collections);
    let mut response = STOREFRONT.execute(request).await;
    for e in &mut response.errors {
        let has_code = e.extensions.as_ref().is_some_and(|x| x.get("code").is_some());
        if has_code {
            continue;
        }
        let code = if e.message.contains("nested too deep") {
            e.message = format!("Query is nested too deep: at most {} levels.", storefront::MAX_DEPTH);
            "MAX_DEPTH_EXCEEDED"
        } else if e.message.contains("too complex") {
            e.message = format!(
                "Query is too complex: at most {} (a field costs 1, a connection `first` times its node).",
                storefront::MAX_COMPLEXITY
            );
            "MAX_COMPLEXITY_EXCEEDED"
        } else if e.path.is_empty() {
            "GRAPHQL_VALIDATION_FAILED"
        } else {
            "INTERNAL"
        };
        e.extensions.get_or_insert_with(Default::default).set("code", Value::from(code));
    }
    GraphQLResponse::from(response).into_response()
}
