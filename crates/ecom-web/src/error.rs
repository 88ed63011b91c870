//! One error type for handlers, rendered as a page. Internal details go to the log,
//! never to the client.

use crate::templates;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ecom_services::ServiceError;

#[derive(Debug)]
pub enum WebError {
    /// No such page (or no such store at this host).
    NotFound {
        message: String,
    },
    /// The store exists but is suspended.
    StoreClosed {
        store_name: String,
    },
    BadRequest(String),
    Forbidden(String),
    RateLimited {
        retry_after_secs: u64,
    },
    Internal(String),
    /// A page rendered already (e.g. the panel's "you need the Orders permission"
    /// page, which keeps the panel's navigation).
    Page(Box<Response>),
}

impl WebError {
    pub fn not_found() -> Self {
        Self::NotFound { message: "We looked everywhere, but there is no page at this address.".into() }
    }
}

impl From<ServiceError> for WebError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(i) => Self::BadRequest(i.to_string()),
            ServiceError::Unauthorized(m) => Self::Forbidden(m.into()),
            ServiceError::RateLimited { retry_after_secs } => Self::RateLimited { retry_after_secs },
            ServiceError::Conflict(what) => Self::BadRequest(format!("{what} is already taken")),
            ServiceError::NotFound => Self::not_found(),
            ServiceError::PlanLimit { message, .. } => Self::Forbidden(message),
            ServiceError::Internal(detail) => Self::Internal(detail),
        }
    }
}

impl From<ecom_core::Invalid> for WebError {
    fn from(e: ecom_core::Invalid) -> Self {
        Self::BadRequest(e.to_string())
    }
}

impl From<ecom_store::StoreError> for WebError {
    fn from(e: ecom_store::StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            Self::RateLimited { retry_after_secs } => HeaderValue::from_str(&retry_after_secs.to_string()).ok(),
            _ => None,
        };
        let (status, title, message) = match self {
            Self::Page(resp) => return *resp,
            Self::NotFound { message } => (StatusCode::NOT_FOUND, "Page not found".to_owned(), message),
            Self::StoreClosed { store_name } => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{store_name} is closed"),
                "This store is not open at the moment. Please come back later.".to_owned(),
            ),
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, "That did not work".to_owned(), m),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed".to_owned(), m),
            Self::RateLimited { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts".to_owned(),
                format!("Too many attempts. Try again in {retry_after_secs} s."),
            ),
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong".to_owned(),
                    "Something went wrong on our side. Please try again in a moment.".to_owned(),
                )
            }
        };
        let html =
            templates::render("errors/error.html", minijinja::context! { title, message, status => status.as_u16() });
        let mut resp = (status, html).into_response();
        if let Some(v) = retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

pub type WebResult<T> = Result<T, WebError>;
