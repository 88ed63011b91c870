//! Domain types and rules for ECOM. Nothing in this crate does I/O: values are parsed
//! once at the boundary (`parse`) and trusted everywhere after.

pub mod account;
pub mod catalog;
pub mod checkout;
pub mod host;
pub mod ids;
pub mod money;
pub mod order;
pub mod scope;
pub mod sealed;
pub mod staff;
pub mod tenant;

pub use account::{AccountKind, Email, NewPassword, Realm, StaffRole};
pub use host::{HostTarget, resolve_host};
pub use ids::{AccountId, TenantId};
pub use money::Money;
pub use tenant::{BrandColor, Branding, Currency, Locale, Slug, Tenant, TenantStatus};

/// A value that failed to parse, with a message fit to show the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", label(field))]
pub struct Invalid {
    /// The field or setting the value was meant for, e.g. `email`.
    pub field: &'static str,
    /// What was wrong and what was expected.
    pub message: String,
}

/// `platform_domain` → `Platform domain`, for messages people read.
fn label(field: &str) -> String {
    let spaced = field.replace('_', " ");
    let mut chars = spaced.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

impl Invalid {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}
