//! Money: integer minor units plus an ISO 4217 currency. Never floats.

use crate::{Currency, Invalid};
use serde::{Deserialize, Serialize};

/// An amount of money in a currency's minor units (cents for USD, yen for JPY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// Parses a decimal amount as people type it (`12`, `12.5`, `12.50`, `1,299.00`)
    /// into minor units, refusing more decimals than the currency has, negatives and
    /// amounts over a billion major units.
    pub fn parse(field: &'static str, text: &str, currency: Currency) -> Result<Self, Invalid> {
        let cleaned: String = text.trim().chars().filter(|c| *c != ',' && *c != '_' && !c.is_whitespace()).collect();
        let invalid = || Invalid::new(field, format!("\"{}\" is not an amount like 12.50", text.trim()));
        if cleaned.is_empty() || cleaned.starts_with('-') {
            return Err(invalid());
        }
        let (whole, frac) = cleaned.split_once('.').unwrap_or((&cleaned, ""));
        if whole.is_empty() && frac.is_empty() {
            return Err(invalid());
        }
        if !whole.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid());
        }
        let digits = usize::from(currency.minor_units());
        if frac.len() > digits {
            return Err(Invalid::new(field, format!("{} takes at most {digits} decimals", currency.code())));
        }
        let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| invalid())? };
        if whole > 1_000_000_000 {
            return Err(Invalid::new(field, "amounts stop at one billion"));
        }
        let scale = 10i64.pow(u32::from(currency.minor_units()));
        let frac_minor: i64 =
            if frac.is_empty() { 0 } else { format!("{frac:0<digits$}").parse().map_err(|_| invalid())? };
        Ok(Self { minor: whole * scale + frac_minor, currency })
    }

    /// The amount as a plain decimal string, `1234.50`: for forms, CSV and JSON-LD.
    pub fn decimal(&self) -> String {
        let digits = u32::from(self.currency.minor_units());
        if digits == 0 {
            return self.minor.to_string();
        }
        let scale = 10i64.pow(digits);
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        format!("{sign}{}.{:0width$}", abs / scale.unsigned_abs(), abs % scale.unsigned_abs(), width = digits as usize)
    }

    /// The amount for people: symbol, thousands separators, `$1,234.50`.
    pub fn display(&self) -> String {
        let plain = self.decimal();
        let (int_part, frac_part) = plain.split_once('.').map_or((plain.as_str(), None), |(i, f)| (i, Some(f)));
        let (sign, digits) = int_part.strip_prefix('-').map_or(("", int_part), |d| ("-", d));
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        let number = match frac_part {
            Some(f) => format!("{grouped}.{f}"),
            None => grouped,
        };
        match symbol(self.currency.code()) {
            Some(sym) => format!("{sign}{sym}{number}"),
            None => format!("{sign}{number} {}", self.currency.code()),
        }
    }
}

fn symbol(code: &str) -> Option<&'static str> {
    Some(match code {
        "USD" | "AUD" | "CAD" | "NZD" | "HKD" | "SGD" | "MXN" => "$",
        "EUR" => "€",
        "GBP" => "£",
        "JPY" | "CNY" => "¥",
        "INR" => "₹",
        "KRW" => "₩",
        "BRL" => "R$",
        "CHF" => "CHF ",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn amounts_parse_to_minor_units() {
        assert_eq!(Money::parse("price", "12", usd()).map(|m| m.minor), Ok(1200));
        assert_eq!(Money::parse("price", "12.5", usd()).map(|m| m.minor), Ok(1250));
        assert_eq!(Money::parse("price", " 1,299.99 ", usd()).map(|m| m.minor), Ok(129_999));
        assert_eq!(Money::parse("price", ".5", usd()).map(|m| m.minor), Ok(50));
        for bad in ["", "-1", "1.234", "abc", "1.2.3", ".", "9999999999"] {
            assert!(Money::parse("price", bad, usd()).is_err(), "{bad:?}");
        }
        let jpy = Currency::parse("JPY").unwrap_or_else(|_| unreachable!());
        assert_eq!(Money::parse("price", "1200", jpy).map(|m| m.minor), Ok(1200));
        assert!(Money::parse("price", "12.5", jpy).is_err());
    }

    #[test]
    fn amounts_display_with_symbol_and_grouping() {
        assert_eq!(Money::new(129_999, usd()).display(), "$1,299.99");
        assert_eq!(Money::new(5, usd()).display(), "$0.05");
        assert_eq!(Money::new(5, usd()).decimal(), "0.05");
        let jpy = Currency::parse("JPY").unwrap_or_else(|_| unreachable!());
        assert_eq!(Money::new(1_234_567, jpy).display(), "¥1,234,567");
        let sek = Currency::parse("SEK").unwrap_or_else(|_| unreachable!());
        assert_eq!(Money::new(1000, sek).display(), "10.00 SEK");
    }
}
