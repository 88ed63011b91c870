//! Money and dates the way a locale writes them, for messages. A small table of
//! conventions by language (not full CLDR): English writes `$1,234.50` and
//! `December 1, 2026`; most of Europe `1.234,50 €` and `1 December 2026`.

use chrono::{DateTime, Datelike, Utc};
use ecom_core::{Currency, Money};

struct Convention {
    group: &'static str,
    decimal: &'static str,
    symbol_first: bool,
}

fn convention(locale: &str) -> Convention {
    let lang = locale.split(['-', '_']).next().unwrap_or("en").to_ascii_lowercase();
    match lang.as_str() {
        "de" | "nl" | "it" | "es" | "pt" | "da" | "id" | "tr" => {
            Convention { group: ".", decimal: ",", symbol_first: false }
        }
        "fr" | "sv" | "nb" | "fi" | "pl" | "cs" | "ru" | "uk" => {
            Convention { group: "\u{202f}", decimal: ",", symbol_first: false }
        }
        _ => Convention { group: ",", decimal: ".", symbol_first: true },
    }
}

/// `minor` units of `currency` written for `locale`, e.g. `$1,234.50` (en-US),
/// `1.234,50 €` (de-DE).
pub fn format_money(minor: i64, currency: Currency, locale: &str) -> String {
    let c = convention(locale);
    let english = Money::new(minor, currency).display();
    if c.symbol_first {
        return english;
    }
    // Re-punctuate the plain decimal and put the symbol after the number.
    let plain = Money::new(minor, currency).decimal();
    let (sign, digits) = plain.strip_prefix('-').map_or(("", plain.as_str()), |d| ("-", d));
    let (int_part, frac) = digits.split_once('.').map_or((digits, None), |(i, f)| (i, Some(f)));
    let mut grouped = String::new();
    for (i, ch) in int_part.chars().enumerate() {
        if i > 0 && (int_part.len() - i) % 3 == 0 {
            grouped.push_str(c.group);
        }
        grouped.push(ch);
    }
    let number = match frac {
        Some(f) => format!("{grouped}{}{f}", c.decimal),
        None => grouped,
    };
    // The symbol Money::display chose (everything that is not part of the number).
    let symbol: String = english.chars().filter(|ch| !(ch.is_ascii_digit() || ",.-".contains(*ch))).collect();
    let symbol = symbol.trim();
    let symbol = if symbol.is_empty() { currency.code() } else { symbol };
    format!("{sign}{number}\u{a0}{symbol}")
}

const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTHS_DE: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];
const MONTHS_FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// A date written for `locale`: `December 1, 2026` (en-US), `1 December 2026` (en-GB),
/// `1. Dezember 2026` (de), `1 décembre 2026` (fr), `2026-12-01` elsewhere.
pub fn format_date(at: DateTime<Utc>, locale: &str) -> String {
    let (d, m, y) = (at.day(), at.month0() as usize, at.year());
    let lower = locale.to_ascii_lowercase().replace('_', "-");
    let lang = lower.split('-').next().unwrap_or("en");
    match lang {
        "en" if lower == "en-us" || lower == "en" => format!("{} {d}, {y}", MONTHS_EN[m]),
        "en" => format!("{d} {} {y}", MONTHS_EN[m]),
        "de" => format!("{d}. {} {y}", MONTHS_DE[m]),
        "fr" => format!("{d} {} {y}", MONTHS_FR[m]),
        _ => at.format("%Y-%m-%d").to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn money_follows_the_locale() {
        let usd = Currency::parse("USD").unwrap();
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(format_money(123_450, usd, "en-US"), "$1,234.50");
        assert_eq!(format_money(123_450, eur, "de-DE"), "1.234,50\u{a0}€");
        assert_eq!(format_money(-500, eur, "de-DE"), "-5,00\u{a0}€");
        assert_eq!(format_money(12_345_000, eur, "fr-FR"), "123\u{202f}450,00\u{a0}€");
    }

    #[test]
    fn dates_follow_the_locale() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(format_date(at, "en-US"), "December 1, 2026");
        assert_eq!(format_date(at, "en-GB"), "1 December 2026");
        assert_eq!(format_date(at, "de-DE"), "1. Dezember 2026");
        assert_eq!(format_date(at, "ja-JP"), "2026-12-01");
    }
}
