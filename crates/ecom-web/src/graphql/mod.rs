//! GraphQL: the public Storefront API at `POST /graphql` on a store's host.
//!
//! Errors carry `extensions.code`: `NOT_FOUND`, `VALIDATION`, `INTERNAL` from
//! resolvers; `GRAPHQL_VALIDATION_FAILED` (a query that does not parse or does not
//! fit the schema), `MAX_DEPTH_EXCEEDED` and `MAX_COMPLEXITY_EXCEEDED` for queries
//! refused before they run.

pub mod ids;
pub mod storefront;

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

/// `POST /graphql` on a store host.
pub async fn storefront(
    State(state): State<AppState>,
    StoreHost { tenant, host }: StoreHost,
    request: GraphQLRequest,
) -> Response {
    let ids = ids::IdCodec::new(state.gid_key.clone());
    let store = Store { state, tenant, host, ids };
    let mut response = STOREFRONT.execute(request.into_inner().data(store)).await;
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
