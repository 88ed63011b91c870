//! Accounts: who can sign in, and the rules for their credentials.

use crate::Invalid;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The three kinds of account. Staff and customers belong to one store; the same
/// email in two stores is two unrelated accounts. Platform admins belong to no store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Admin,
    Staff,
    Customer,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Staff => "staff",
            Self::Customer => "customer",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "admin" => Some(Self::Admin),
            "staff" => Some(Self::Staff),
            "customer" => Some(Self::Customer),
            _ => None,
        }
    }

    /// Whether accounts of this kind live inside a store.
    pub fn is_tenant_scoped(self) -> bool {
        !matches!(self, Self::Admin)
    }
}

/// A merchant staff member's role in their store. Owners and admins may do
/// everything in the panel; staff only what their areas allow (see
/// [`crate::staff::Permissions`]). Only an owner manages owners and admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    Owner,
    Admin,
    Staff,
}

impl StaffRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Staff => "staff",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "owner" => Some(Self::Owner),
            "admin" => Some(Self::Admin),
            "staff" => Some(Self::Staff),
            _ => None,
        }
    }

    /// Owners and admins have every area.
    pub fn has_every_area(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
    }
}

/// An email address, trimmed and lower-cased so that lookups are case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let value = value.trim().to_lowercase();
        let invalid = || Invalid::new("email", "enter an email address like name@example.com");
        if value.is_empty() {
            return Err(Invalid::new("email", "enter your email address"));
        }
        if value.len() > 254 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = value.split_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !domain.contains('@');
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

/// A password someone is choosing. Length is what matters (NIST SP 800-63B): at least
/// 10 characters, at most 128 so that hashing cannot be used to burn CPU.
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN_CHARS: usize = 10;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let chars = value.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(Invalid::new("password", format!("use at least {} characters", Self::MIN_CHARS)));
        }
        if chars > Self::MAX_CHARS {
            return Err(Invalid::new("password", format!("use at most {} characters", Self::MAX_CHARS)));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse("  Ann@Example.COM ").map(String::from), Ok("ann@example.com".into()));
        for bad in ["", "ann", "ann@", "@example.com", "ann@example", "a b@example.com", "ann@.com", "ann@ex..com"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn passwords_need_ten_to_128_characters() {
        assert!(NewPassword::parse("short").is_err());
        assert!(NewPassword::parse("long enough!").is_ok());
        assert!(NewPassword::parse(&"x".repeat(129)).is_err());
        assert_eq!(format!("{:?}", NewPassword::parse("long enough!")), "Ok(NewPassword(..))");
    }
}

/// Where an account lives and what kind it is: the scope of every credential lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "tenant", rename_all = "snake_case")]
pub enum Realm {
    /// Platform admins, on the platform host.
    Admin,
    /// Merchant staff of one store.
    Staff(crate::TenantId),
    /// Customers of one store.
    Customer(crate::TenantId),
}

impl Realm {
    pub fn kind(self) -> AccountKind {
        match self {
            Self::Admin => AccountKind::Admin,
            Self::Staff(_) => AccountKind::Staff,
            Self::Customer(_) => AccountKind::Customer,
        }
    }

    pub fn tenant(self) -> Option<crate::TenantId> {
        match self {
            Self::Admin => None,
            Self::Staff(t) | Self::Customer(t) => Some(t),
        }
    }
}
