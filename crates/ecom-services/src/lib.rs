//! Use cases shared by the storefront, the panels and the APIs. Handlers and
//! resolvers call these; no business rule lives in a handler or a template.

pub mod accounts;
pub mod api_tokens;
pub mod audit;
pub mod catalog;
pub mod catalog_csv;
pub mod catalog_images;
pub mod channels;
pub mod checkout;
pub mod demo;
mod demo_catalog;
pub mod directory;
pub mod domains;
pub mod idempotency;
pub mod mail;
pub mod onboarding;
pub mod outbound;
pub mod passwords;
pub mod payments;
pub mod plans;
pub mod ratelimit;
pub mod retention;
pub mod returns;
pub mod staff;
pub mod stripe;
pub mod view_as;
pub mod webhooks;

pub use accounts::Accounts;
pub use api_tokens::ApiTokens;
pub use catalog::Catalog;
pub use checkout::Checkout;
pub use directory::{Directory, MerchantSignup, SignedUp, Site};
pub use domains::Domains;
pub use mail::Mailer;
pub use outbound::Outbound;
pub use ratelimit::{Limit, RateLimits};
pub use webhooks::Webhooks;

use ecom_core::Invalid;
use ecom_store::StoreError;

/// Why a use case refused or failed. Each variant maps to one HTTP status and one
/// GraphQL error code in the web layer.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Input that does not parse; the message is for the person who typed it.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// Wrong email or password, or an expired token. Deliberately vague.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Too many attempts; try again after this many seconds.
    #[error("too many attempts; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// Something the request wanted to create exists already.
    #[error("{0} is already taken")]
    Conflict(&'static str),
    #[error("not found")]
    NotFound,
    /// The store's plan does not allow more of this; the message names the plan, the
    /// limit and the way up.
    #[error("{message}")]
    PlanLimit { limit: plans::Limit, message: String },
    /// Everything else: logged in full, shown as an opaque 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(what),
            other => Self::Internal(other.to_string()),
        }
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;
