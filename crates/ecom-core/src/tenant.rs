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

/// Words no store address may be made of. Whole hyphen-separated parts are compared
/// (so `scunthorpe-books` is fine); the first few are refused anywhere in the slug.
const OFFENSIVE_ANYWHERE: &[&str] = &["fuck", "nigger", "nigga", "faggot", "motherfuck"];
const OFFENSIVE_WORDS: &[&str] = &[
    "ass", "asshole", "bastard", "bitch", "bollocks", "cock", "cunt", "dick", "dildo", "fag", "nazi", "penis", "piss",
    "porn", "pussy", "rape", "rapist", "retard", "shit", "shitty", "slut", "twat", "wank", "wanker", "whore",
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

    /// A slug a merchant may pick for themselves: [`Slug::parse`] and not offensive
    /// (the operator's CLI is not held to this list).
    pub fn parse_for_signup(value: &str) -> Result<Self, Invalid> {
        let slug = Self::parse(value)?;
        let offensive = OFFENSIVE_ANYWHERE.iter().any(|w| slug.0.contains(w))
            || slug.0.split('-').any(|part| OFFENSIVE_WORDS.contains(&part));
        if offensive {
            return Err(Invalid::new("slug", "this address is not allowed; please choose another"));
        }
        Ok(slug)
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
    /// Every currency a store can sell in, by code.
    pub fn codes() -> impl Iterator<Item = &'static str> {
        CURRENCIES.iter().map(|(code, _)| *code)
    }

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
    fn signup_slugs_refuse_offensive_words_but_not_their_neighbours() {
        assert!(Slug::parse_for_signup("fuckery").is_err());
        assert!(Slug::parse_for_signup("big-shit-store").is_err());
        assert!(Slug::parse_for_signup("scunthorpe-books").is_ok());
        assert!(Slug::parse_for_signup("grapes-and-wine").is_ok());
        assert!(Slug::parse_for_signup("glass-works").is_ok());
        assert!(Slug::parse_for_signup("admin").is_err());
    }

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
    pub brand: Branding,
    /// The verified custom domain that links to the store use, when it has one.
    pub primary_domain: Option<String>,
}

impl Tenant {
    pub fn is_open(&self) -> bool {
        self.status == TenantStatus::Active
    }
}

/// How a store looks: its colour and logo. Both optional; the default theme has its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Branding {
    pub color: Option<BrandColor>,
    /// The logo's media file name (`{hash}.{ext}`), served under `/media/`.
    pub logo: Option<String>,
}

impl Branding {
    /// The colour to use: the store's, or the platform default.
    pub fn color_or_default(&self) -> BrandColor {
        self.color.unwrap_or(BrandColor::DEFAULT)
    }
}

/// A brand colour, `#rrggbb`. Knows which text colour reads on it, and a shade of
/// itself that reads on white, so any colour a merchant picks stays accessible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BrandColor(pub [u8; 3]);

impl BrandColor {
    pub const DEFAULT: BrandColor = BrandColor([0x2f, 0x5b, 0xd3]);

    /// Accepts `#rrggbb`, `rrggbb` and `#rgb`, any case.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let bad = || Invalid::new("colour", "must be a hex colour such as #2f5bd3");
        let hex = raw.trim().trim_start_matches('#');
        let expanded: String = match hex.len() {
            3 => hex.chars().flat_map(|c| [c, c]).collect(),
            6 => hex.to_owned(),
            _ => return Err(bad()),
        };
        let mut rgb = [0u8; 3];
        for (i, slot) in rgb.iter_mut().enumerate() {
            *slot = u8::from_str_radix(expanded.get(i * 2..i * 2 + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
        }
        Ok(Self(rgb))
    }

    pub fn hex(&self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0[0], self.0[1], self.0[2])
    }

    /// WCAG relative luminance.
    fn luminance(rgb: [u8; 3]) -> f64 {
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.03928 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
        };
        0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2])
    }

    /// WCAG contrast ratio between two colours (1 to 21).
    pub fn contrast(a: [u8; 3], b: [u8; 3]) -> f64 {
        let (la, lb) = (Self::luminance(a), Self::luminance(b));
        (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
    }

    /// White or near-black, whichever reads better on this colour.
    pub fn ink(&self) -> BrandColor {
        let (white, dark) = ([255, 255, 255], [0x11, 0x14, 0x1c]);
        if Self::contrast(self.0, white) >= Self::contrast(self.0, dark) { Self(white) } else { Self(dark) }
    }

    /// This colour, darkened until text in it reads on white (4.5:1, WCAG AA).
    pub fn on_white(&self) -> BrandColor {
        let mut rgb = self.0;
        for _ in 0..100 {
            if Self::contrast(rgb, [255, 255, 255]) >= 4.5 {
                break;
            }
            rgb = rgb.map(|c| (f64::from(c) * 0.92) as u8);
        }
        Self(rgb)
    }
}

impl Serialize for BrandColor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

#[cfg(test)]
mod brand_tests {
    use super::*;

    #[test]
    fn brand_colours_parse_and_stay_readable() {
        assert_eq!(BrandColor::parse("#2F5BD3").map(|c| c.hex()), Ok("#2f5bd3".into()));
        assert_eq!(BrandColor::parse("fc0").map(|c| c.hex()), Ok("#ffcc00".into()));
        for bad in ["", "#12345", "blue", "#gg0000", "#1234567"] {
            assert!(BrandColor::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let yellow = BrandColor([0xff, 0xcc, 0x00]);
        assert_eq!(yellow.ink().hex(), "#11141c", "dark text on yellow");
        assert_eq!(BrandColor::DEFAULT.ink().hex(), "#ffffff");
        assert!(BrandColor::contrast(yellow.on_white().0, [255, 255, 255]) >= 4.5);
        assert_eq!(BrandColor::DEFAULT.on_white(), BrandColor::DEFAULT, "already readable");
    }
}
