//! Stores (tenants): their address, status, currency and locale.

use crate::Invalid;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The store's sub-domain label: `demo` in `demo.example.com`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

/// Labels that name parts of the platform itself and so can never be a store.
const RESERVED_SLUGS: &[&str] = &[
    "admin",
    "api",
    "app",
    "assets",
    "auth",
    "billing",
    "blog",
    "cdn",
    "dashboard",
    "docs",
    "ecom",
    "help",
    "login",
    "mail",
    "merchant",
    "metrics",
    "platform",
    "root",
    "shop",
    "signup",
    "static",
    "status",
    "store",
    "support",
    "www",
];

impl Slug {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let value = value.trim().to_lowercase();
        if value.len() < 2 || value.len() > 40 {
            return Err(Invalid::new("slug", "use 2 to 40 characters"));
        }
        if !value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(Invalid::new("slug", "use only letters a-z, digits and hyphens"));
        }
        if value.starts_with('-') || value.ends_with('-') || value.contains("--") {
            return Err(Invalid::new("slug", "hyphens go between letters or digits, one at a time"));
        }
        if RESERVED_SLUGS.contains(&value.as_str()) {
            return Err(Invalid::new("slug", format!("\"{value}\" is reserved by the platform")));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Slug {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Slug> for String {
    fn from(value: Slug) -> Self {
        value.0
    }
}

/// Whether a store is open to shoppers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Active,
    Suspended,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }
}

/// An ISO 4217 currency code and the number of minor units it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency {
    code: [u8; 3],
    minor_units: u8,
}

/// The ISO 4217 currencies a store can sell in, with their minor units.
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("BGN", 2),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EGP", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("ISK", 0),
    ("JPY", 0),
    ("KES", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("MAD", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("NGN", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("PEN", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TRY", 2),
    ("TWD", 2),
    ("UAH", 2),
    ("USD", 2),
    ("VND", 0),
    ("ZAR", 2),
];

impl Currency {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let upper = value.trim().to_ascii_uppercase();
        CURRENCIES
            .iter()
            .find(|(code, _)| *code == upper)
            .map(|(code, minor_units)| {
                let b = code.as_bytes();
                Self { code: [b[0], b[1], b[2]], minor_units: *minor_units }
            })
            .ok_or_else(|| {
                Invalid::new(
                    "currency",
                    format!("\"{value}\" is not a supported ISO 4217 currency code (e.g. USD, EUR)"),
                )
            })
    }

    pub fn code(&self) -> &str {
        // The bytes come from the ASCII table above.
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    pub fn minor_units(&self) -> u8 {
        self.minor_units
    }
}

impl TryFrom<String> for Currency {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.code().to_owned()
    }
}

/// A BCP 47 language tag such as `en`, `en-US` or `pt-BR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Locale(String);

impl Locale {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let invalid = || Invalid::new("locale", format!("\"{value}\" is not a language tag like en or en-US"));
        let mut parts = value.trim().split(['-', '_']);
        let lang = parts
            .next()
            .filter(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic()))
            .ok_or_else(invalid)?;
        let mut tag = lang.to_ascii_lowercase();
        if let Some(region) = parts.next() {
            let ok = (region.len() == 2 && region.chars().all(|c| c.is_ascii_alphabetic()))
                || (region.len() == 3 && region.chars().all(|c| c.is_ascii_digit()));
            if !ok {
                return Err(invalid());
            }
            tag.push('-');
            tag.push_str(&region.to_ascii_uppercase());
        }
        if parts.next().is_some() {
            return Err(invalid());
        }
        Ok(Self(tag))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Locale {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Locale> for String {
    fn from(value: Locale) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_dns_labels_and_not_reserved() {
        assert_eq!(Slug::parse(" Demo-Shop ").map(String::from), Ok("demo-shop".into()));
        for bad in ["a", "-demo", "demo-", "de--mo", "dé", "admin", "www", "my shop", &"x".repeat(41)] {
            assert!(Slug::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn currencies_are_iso_4217_with_minor_units() {
        let jpy = Currency::parse("jpy").map(|c| (c.code().to_owned(), c.minor_units()));
        assert_eq!(jpy, Ok(("JPY".into(), 0)));
        assert!(Currency::parse("XYZ").is_err());
        assert!(Currency::parse("US").is_err());
    }

    #[test]
    fn locales_are_normalised_language_tags() {
        assert_eq!(Locale::parse("en_us").map(String::from), Ok("en-US".into()));
        assert_eq!(Locale::parse("es-419").map(String::from), Ok("es-419".into()));
        for bad in ["", "e", "english", "en-USA-x", "en-1"] {
            assert!(Locale::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}

/// A store as the rest of the platform sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tenant {
    pub id: crate::TenantId,
    pub slug: Slug,
    pub name: String,
    pub status: TenantStatus,
    pub currency: Currency,
    pub locale: Locale,
}

impl Tenant {
    pub fn is_open(&self) -> bool {
        self.status == TenantStatus::Active
    }
}
