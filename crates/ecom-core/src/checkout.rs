//! Checkout rules: addresses, shipping methods, taxes, discount codes, and the price of a
//! cart. Everything is integer minor units; rounding happens once per amount, half away
//! from zero, so the totals a shopper sees add up exactly.

use crate::{Currency, Invalid};
use serde::{Deserialize, Serialize};

/// The most of one variant a cart can hold; also bounds arithmetic.
pub const MAX_LINE_QUANTITY: u32 = 999;
/// The most distinct lines in one cart.
pub const MAX_CART_LINES: usize = 100;

/// A postal address as the shopper typed it, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub name: String,
    pub line1: String,
    #[serde(default)]
    pub line2: String,
    pub city: String,
    /// State, province or county; required where the country has them in addresses.
    #[serde(default)]
    pub region: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
}

/// Countries that checkout ships to, with whether an address there needs a region.
pub const COUNTRIES: &[(&str, &str, bool)] = &[
    ("AT", "Austria", false),
    ("AU", "Australia", true),
    ("BE", "Belgium", false),
    ("CA", "Canada", true),
    ("CH", "Switzerland", false),
    ("DE", "Germany", false),
    ("DK", "Denmark", false),
    ("ES", "Spain", false),
    ("FI", "Finland", false),
    ("FR", "France", false),
    ("GB", "United Kingdom", false),
    ("IE", "Ireland", false),
    ("IT", "Italy", false),
    ("JP", "Japan", true),
    ("NL", "Netherlands", false),
    ("NO", "Norway", false),
    ("NZ", "New Zealand", false),
    ("PL", "Poland", false),
    ("PT", "Portugal", false),
    ("SE", "Sweden", false),
    ("US", "United States", true),
];

impl Address {
    /// Trims every field and checks what a carrier needs.
    pub fn validate(mut self) -> Result<Self, Invalid> {
        for f in
            [&mut self.name, &mut self.line1, &mut self.line2, &mut self.city, &mut self.region, &mut self.postal_code]
        {
            *f = f.trim().to_owned();
            if f.chars().count() > 200 {
                return Err(Invalid::new("address", "lines stop at 200 characters"));
            }
        }
        self.country = self.country.trim().to_ascii_uppercase();
        let Some(&(_, country_name, needs_region)) = COUNTRIES.iter().find(|(code, ..)| *code == self.country) else {
            return Err(Invalid::new("country", "choose a country we ship to"));
        };
        if self.name.is_empty() {
            return Err(Invalid::new("name", "enter the recipient's name"));
        }
        if self.line1.is_empty() {
            return Err(Invalid::new("address", "enter a street address"));
        }
        if self.city.is_empty() {
            return Err(Invalid::new("city", "enter a city"));
        }
        if needs_region && self.region.is_empty() {
            return Err(Invalid::new("region", format!("addresses in {country_name} need a state or province")));
        }
        self.postal_code = self.postal_code.to_ascii_uppercase();
        let pc = &self.postal_code;
        let digits = |n: usize| pc.len() == n && pc.chars().all(|c| c.is_ascii_digit());
        let ok = match self.country.as_str() {
            "US" => {
                digits(5)
                    || (pc.len() == 10
                        && pc.as_bytes().get(5) == Some(&b'-')
                        && pc.chars().filter(char::is_ascii_digit).count() == 9)
            }
            "DE" | "FR" | "IT" | "ES" | "FI" => digits(5),
            "AT" | "BE" | "CH" | "DK" | "NO" | "AU" | "NZ" => digits(4),
            "NL" => pc.len() >= 6 && pc.chars().take(4).all(|c| c.is_ascii_digit()),
            "IE" => true, // Eircodes are optional in practice.
            _ => (2..=10).contains(&pc.len()),
        };
        if !ok || (pc.is_empty() && self.country != "IE") {
            return Err(Invalid::new("postal_code", format!("\"{pc}\" is not a postal code in {country_name}")));
        }
        Ok(self)
    }

    /// One line for lists: "Pat Doe, 1 Main St, Springfield, IL 62701, US".
    pub fn one_line(&self) -> String {
        [
            &self.name,
            &self.line1,
            &self.line2,
            &self.city,
            &format!("{} {}", self.region, self.postal_code),
            &self.country,
        ]
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// A shipping method a store offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingMethod {
    /// Stable code, e.g. `standard`; what the cart stores.
    pub code: String,
    pub title: String,
    /// The fee before any free-shipping threshold.
    pub base: i64,
    /// Per started kilogram of the cart's weight (0 for a flat rate).
    pub per_kg: i64,
    /// Free when the discounted subtotal reaches this.
    pub free_over: Option<i64>,
    /// Countries it ships to (ISO codes); empty = everywhere checkout ships.
    pub countries: Vec<String>,
}

impl ShippingMethod {
    pub fn ships_to(&self, country: &str) -> bool {
        self.countries.is_empty() || self.countries.iter().any(|c| c == country)
    }

    /// The fee for a cart of this subtotal and weight.
    pub fn cost(&self, subtotal: i64, weight_grams: i64) -> i64 {
        if self.free_over.is_some_and(|limit| subtotal >= limit) {
            return 0;
        }
        let kilos = (weight_grams.max(0) + 999) / 1000;
        self.base.saturating_add(self.per_kg.saturating_mul(kilos))
    }
}

/// A tax rate for a country, or one region of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxRate {
    pub country: String,
    /// Empty: the whole country.
    pub region: String,
    pub name: String,
    /// In basis points: 2000 = 20 %.
    pub basis_points: u32,
}

/// The rates that apply to an address: the country-wide rate plus any rate for its
/// region (US state tax on top of nothing federal; Canadian GST + PST).
pub fn rates_for<'a>(rates: &'a [TaxRate], address: &Address) -> Vec<&'a TaxRate> {
    rates
        .iter()
        .filter(|r| {
            r.country == address.country && (r.region.is_empty() || r.region.eq_ignore_ascii_case(&address.region))
        })
        .collect()
}

/// How a discount code takes money off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscountKind {
    /// Basis points off the subtotal: 1500 = 15 %.
    Percent,
    /// A fixed amount off, in minor units.
    Fixed,
}

/// A discount code as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discount {
    pub code: String,
    pub kind: DiscountKind,
    pub value: i64,
    pub min_subtotal: i64,
    pub usage_limit: Option<i64>,
    pub used: i64,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub active: bool,
}

impl Discount {
    /// Normalises a code as shoppers type it.
    pub fn normalise(code: &str) -> String {
        code.trim().to_uppercase()
    }

    /// Why this code cannot be used on a cart of `subtotal` now, if it cannot.
    pub fn refusal(&self, subtotal: i64, now: chrono::DateTime<chrono::Utc>, currency: Currency) -> Option<String> {
        if !self.active {
            return Some(format!("The code {} is not active.", self.code));
        }
        if self.expires_at.is_some_and(|at| at <= now) {
            return Some(format!("The code {} has expired.", self.code));
        }
        if self.usage_limit.is_some_and(|limit| self.used >= limit) {
            return Some(format!("The code {} has been used up.", self.code));
        }
        if subtotal < self.min_subtotal {
            let min = crate::Money::new(self.min_subtotal, currency);
            return Some(format!("The code {} needs a subtotal of at least {}.", self.code, min.display()));
        }
        None
    }

    /// The amount off a subtotal (never more than the subtotal).
    pub fn amount_off(&self, subtotal: i64) -> i64 {
        let off = match self.kind {
            DiscountKind::Percent => div_round(subtotal.saturating_mul(self.value.clamp(0, 10_000)), 10_000),
            DiscountKind::Fixed => self.value.max(0),
        };
        off.min(subtotal)
    }
}

/// `a / b` rounded half away from zero, for non-negative `b`.
fn div_round(a: i64, b: i64) -> i64 {
    if b == 0 {
        return 0;
    }
    let (q, r) = (a / b, a % b);
    if r.abs() * 2 >= b { q + a.signum() } else { q }
}

/// One cart line as priced: the price always comes from the catalog, never the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLine {
    pub unit_price: i64,
    pub quantity: u32,
    pub weight_grams: i64,
}

/// What a cart costs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub subtotal: i64,
    pub discount: i64,
    pub shipping: i64,
    /// Tax on the goods and shipping: added on top when prices exclude tax, the part
    /// already contained in the prices when they include it.
    pub tax: i64,
    pub taxes_included: bool,
    pub total: i64,
    pub weight_grams: i64,
}

/// Prices a cart. `shipping` is the chosen method (if any); `rates` the tax rates for
/// the shipping address (empty before there is one).
pub fn price(
    lines: &[PricedLine],
    discount: Option<&Discount>,
    shipping: Option<&ShippingMethod>,
    rates: &[&TaxRate],
    taxes_included: bool,
) -> Totals {
    let subtotal: i64 = lines.iter().map(|l| l.unit_price.saturating_mul(i64::from(l.quantity))).sum();
    let weight_grams: i64 = lines.iter().map(|l| l.weight_grams.saturating_mul(i64::from(l.quantity))).sum();
    let discount = discount.map_or(0, |d| d.amount_off(subtotal));
    let goods = subtotal - discount;
    let shipping = shipping.map_or(0, |m| m.cost(goods, weight_grams));
    let taxable = goods + shipping;
    let bp: i64 = rates.iter().map(|r| i64::from(r.basis_points)).sum();
    let (tax, total) = if taxes_included {
        // The tax contained in a gross amount: gross × rate / (1 + rate).
        (div_round(taxable.saturating_mul(bp), 10_000 + bp), taxable)
    } else {
        let tax = div_round(taxable.saturating_mul(bp), 10_000);
        (tax, taxable + tax)
    };
    Totals { subtotal, discount, shipping, tax, taxes_included, total, weight_grams }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(country: &str, region: &str, postal: &str) -> Address {
        Address {
            name: "Pat Doe".into(),
            line1: "1 Main St".into(),
            city: "Springfield".into(),
            region: region.into(),
            postal_code: postal.into(),
            country: country.into(),
            ..Default::default()
        }
    }

    #[test]
    fn addresses_are_checked_per_country() {
        assert!(address("us", "IL", " 62701 ").validate().is_ok_and(|a| a.country == "US" && a.postal_code == "62701"));
        assert!(address("US", "IL", "62701-1234").validate().is_ok());
        assert_eq!(address("US", "", "62701").validate().unwrap_err().field, "region");
        assert_eq!(address("US", "IL", "6270").validate().unwrap_err().field, "postal_code");
        assert_eq!(address("ZZ", "", "1").validate().unwrap_err().field, "country");
        assert!(address("DE", "", "10115").validate().is_ok());
        assert!(address("GB", "", "SW1A 1AA").validate().is_ok());
        let mut no_street = address("DE", "", "10115");
        no_street.line1 = "  ".into();
        assert_eq!(no_street.validate().unwrap_err().field, "address");
    }

    fn method(base: i64, per_kg: i64, free_over: Option<i64>) -> ShippingMethod {
        ShippingMethod { code: "m".into(), title: "M".into(), base, per_kg, free_over, countries: vec![] }
    }

    #[test]
    fn shipping_is_flat_by_weight_or_free_above_a_subtotal() {
        assert_eq!(method(500, 0, None).cost(10_000, 5_000), 500);
        assert_eq!(method(500, 0, Some(5_000)).cost(5_000, 0), 0);
        assert_eq!(method(500, 0, Some(5_000)).cost(4_999, 0), 500);
        // 2.1 kg is three started kilograms.
        assert_eq!(method(300, 200, None).cost(0, 2_100), 900);
        assert_eq!(method(300, 200, None).cost(0, 0), 300);
    }

    fn discount(kind: DiscountKind, value: i64) -> Discount {
        Discount {
            code: "SAVE".into(),
            kind,
            value,
            min_subtotal: 0,
            usage_limit: None,
            used: 0,
            expires_at: None,
            active: true,
        }
    }

    #[test]
    fn discounts_respect_minimums_limits_and_expiry() {
        let usd = Currency::parse("USD").unwrap();
        let now = chrono::Utc::now();
        let mut d = discount(DiscountKind::Percent, 1500);
        assert_eq!(d.amount_off(1999), 300, "15 % of 19.99 is 2.9985, rounded to 3.00");
        d.min_subtotal = 5000;
        assert!(d.refusal(4999, now, usd).is_some_and(|m| m.contains("at least $50.00")));
        assert!(d.refusal(5000, now, usd).is_none());
        d.usage_limit = Some(3);
        d.used = 3;
        assert!(d.refusal(5000, now, usd).is_some_and(|m| m.contains("used up")));
        d.used = 0;
        d.expires_at = Some(now - chrono::Duration::seconds(1));
        assert!(d.refusal(5000, now, usd).is_some_and(|m| m.contains("expired")));
        assert_eq!(discount(DiscountKind::Fixed, 5000).amount_off(1200), 1200, "never below zero");
    }

    #[test]
    fn totals_add_up_with_tax_on_top_or_included() {
        let lines = [
            PricedLine { unit_price: 1999, quantity: 2, weight_grams: 300 },
            PricedLine { unit_price: 500, quantity: 1, weight_grams: 100 },
        ];
        let ship = method(495, 0, None);
        let vat = TaxRate { country: "DE".into(), region: String::new(), name: "VAT".into(), basis_points: 1900 };
        let excl = price(&lines, None, Some(&ship), &[&vat], false);
        assert_eq!((excl.subtotal, excl.shipping, excl.weight_grams), (4498, 495, 700));
        assert_eq!(excl.tax, 949, "19 % of 49.93 = 9.4867");
        assert_eq!(excl.total, 4498 + 495 + 949);
        let incl = price(&lines, None, Some(&ship), &[&vat], true);
        assert_eq!(incl.total, 4993);
        assert_eq!(incl.tax, 797, "49.93 × 19/119 = 7.972");
        let d = discount(DiscountKind::Percent, 1000);
        let disc = price(&lines, Some(&d), None, &[], false);
        assert_eq!((disc.discount, disc.total), (450, 4048));
    }

    #[test]
    fn region_rates_stack_on_country_rates() {
        let rates = vec![
            TaxRate { country: "CA".into(), region: String::new(), name: "GST".into(), basis_points: 500 },
            TaxRate { country: "CA".into(), region: "BC".into(), name: "PST".into(), basis_points: 700 },
            TaxRate { country: "CA".into(), region: "ON".into(), name: "HST".into(), basis_points: 800 },
        ];
        let names: Vec<&str> =
            rates_for(&rates, &address("CA", "bc", "V5K0A1")).iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["GST", "PST"]);
    }
}
