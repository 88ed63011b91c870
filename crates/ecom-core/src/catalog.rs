//! The catalog's rules: products, their options and variants, collections. Plain
//! values, checked once when they enter the system.

use crate::{Invalid, Money};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Whether shoppers can see a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    Draft,
    Active,
    Archived,
}

impl ProductStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Active => "active",
            Self::Archived => "archived",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "draft" => Some(Self::Draft),
            "active" => Some(Self::Active),
            "archived" => Some(Self::Archived),
            _ => None,
        }
    }
}

/// A URL-safe name for a product or collection, unique within a store:
/// `blue-linen-shirt` in `/products/blue-linen-shirt`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Handle(String);

impl Handle {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let v = value.trim().to_lowercase();
        if v.is_empty() || v.len() > 120 {
            return Err(Invalid::new("handle", "use 1 to 120 characters"));
        }
        if !v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            || v.starts_with('-')
            || v.ends_with('-')
        {
            return Err(Invalid::new("handle", "use letters a-z, digits and hyphens between them"));
        }
        Ok(Self(v))
    }

    /// A handle made from a title: `Blue Linen Shirt!` → `blue-linen-shirt`.
    pub fn from_title(title: &str) -> Result<Self, Invalid> {
        let mut out = String::new();
        for c in title.to_lowercase().chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
        }
        let trimmed: String = out.trim_matches('-').chars().take(120).collect();
        Self::parse(trimmed.trim_end_matches('-'))
            .map_err(|_| Invalid::new("handle", "the title needs letters or digits to make a handle from"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Handle {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Handle> for String {
    fn from(value: Handle) -> Self {
        value.0
    }
}

/// An option such as Size with its values in display order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductOption {
    pub name: String,
    pub values: Vec<String>,
}

/// A variant as submitted: its option values (one per product option, in order),
/// price and stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantDraft {
    pub sku: Option<String>,
    pub option_values: Vec<String>,
    pub price: Money,
    pub compare_at: Option<Money>,
    pub weight_grams: Option<i32>,
    pub barcode: Option<String>,
    pub stock: i32,
}

/// A product as submitted, before it is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductDraft {
    pub handle: Handle,
    pub title: String,
    /// Sanitised HTML (the service sanitises what merchants send).
    pub body_html: String,
    pub status: ProductStatus,
    pub vendor: String,
    pub product_type: String,
    pub tags: Vec<String>,
    /// Free-form attributes, e.g. `{"screen": "6.1 in"}`: string values only.
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub options: Vec<ProductOption>,
    pub variants: Vec<VariantDraft>,
}

pub const MAX_OPTIONS: usize = 3;
pub const MAX_VARIANTS: usize = 100;

impl ProductDraft {
    /// Checks the catalog rules: a title, at most three uniquely named options, at
    /// least one variant, each naming exactly one known value per option, no two
    /// variants alike, prices in the store currency and stock not below zero.
    pub fn validate(&mut self, currency: crate::Currency) -> Result<(), Invalid> {
        self.title = self.title.trim().to_owned();
        if self.title.is_empty() || self.title.chars().count() > 255 {
            return Err(Invalid::new("title", "enter a title of at most 255 characters"));
        }
        self.vendor = self.vendor.trim().to_owned();
        self.product_type = self.product_type.trim().to_owned();
        let mut seen_tags = HashSet::new();
        self.tags = self
            .tags
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty() && seen_tags.insert(t.to_lowercase()))
            .collect();
        if self.tags.iter().any(|t| t.chars().count() > 100) {
            return Err(Invalid::new("tags", "a tag has at most 100 characters"));
        }
        if self.attributes.values().any(|v| !v.is_string()) {
            return Err(Invalid::new("attributes", "attribute values must be text"));
        }
        if self.options.len() > MAX_OPTIONS {
            return Err(Invalid::new("options", format!("a product has at most {MAX_OPTIONS} options")));
        }
        let mut names = HashSet::new();
        for o in &mut self.options {
            o.name = o.name.trim().to_owned();
            if o.name.is_empty() || !names.insert(o.name.to_lowercase()) {
                return Err(Invalid::new("options", "each option needs a name of its own"));
            }
        }
        if self.variants.is_empty() {
            return Err(Invalid::new("variants", "a product needs at least one variant"));
        }
        if self.variants.len() > MAX_VARIANTS {
            return Err(Invalid::new("variants", format!("a product has at most {MAX_VARIANTS} variants")));
        }
        let mut combos = HashSet::new();
        for (i, v) in self.variants.iter_mut().enumerate() {
            let n = i + 1;
            v.option_values = v.option_values.iter().map(|s| s.trim().to_owned()).collect();
            if v.option_values.len() != self.options.len() {
                return Err(Invalid::new(
                    "variants",
                    format!("variant {n} needs one value for each of the {} options", self.options.len()),
                ));
            }
            for (value, option) in v.option_values.iter().zip(&self.options) {
                if !option.values.iter().any(|ov| ov == value) {
                    return Err(Invalid::new(
                        "variants",
                        format!("variant {n}: \"{value}\" is not a value of {}", option.name),
                    ));
                }
            }
            if !combos.insert(v.option_values.clone()) {
                return Err(Invalid::new("variants", format!("variant {n} repeats the options of another variant")));
            }
            if v.price.currency != currency || v.compare_at.is_some_and(|c| c.currency != currency) {
                return Err(Invalid::new("variants", format!("variant {n}: prices are in {}", currency.code())));
            }
            if v.price.minor < 0 {
                return Err(Invalid::new("variants", format!("variant {n}: the price cannot be negative")));
            }
            if v.stock < 0 {
                return Err(Invalid::new("variants", format!("variant {n}: stock cannot be below zero")));
            }
            // A compare-at price only means something above the price.
            if v.compare_at.is_some_and(|c| c.minor <= v.price.minor) {
                v.compare_at = None;
            }
        }
        Ok(())
    }
}

/// Every combination of option values, in option order: Size × Color gives
/// S/Red, S/Blue, M/Red, … A product without options has one empty combination.
pub fn option_combinations(options: &[ProductOption]) -> Vec<Vec<String>> {
    let mut combos: Vec<Vec<String>> = vec![Vec::new()];
    for o in options {
        combos = combos
            .into_iter()
            .flat_map(|c| o.values.iter().map(move |v| c.iter().cloned().chain([v.clone()]).collect()))
            .collect();
    }
    combos
}

/// The variants for a set of options: one per combination, keeping the data of
/// existing variants with the same option values and giving new ones `template`'s
/// price and stock. Too many combinations is an error rather than a silent cut.
pub fn variants_for_options(
    options: &[ProductOption],
    existing: &[VariantDraft],
    template: &VariantDraft,
) -> Result<Vec<VariantDraft>, Invalid> {
    let combos = option_combinations(options);
    if combos.len() > MAX_VARIANTS {
        return Err(Invalid::new(
            "options",
            format!("these options make {} variants; a product has at most {MAX_VARIANTS}", combos.len()),
        ));
    }
    Ok(combos
        .into_iter()
        .map(|values| {
            existing.iter().find(|v| v.option_values == values).cloned().unwrap_or_else(|| VariantDraft {
                option_values: values,
                sku: None,
                ..template.clone()
            })
        })
        .collect())
}

/// How a listing is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ProductSort {
    #[default]
    Featured,
    Newest,
    PriceAsc,
    PriceDesc,
    TitleAsc,
}

impl ProductSort {
    pub const ALL: [ProductSort; 5] = [Self::Featured, Self::Newest, Self::PriceAsc, Self::PriceDesc, Self::TitleAsc];

    pub fn parse(value: &str) -> Self {
        match value {
            "newest" => Self::Newest,
            "price-asc" => Self::PriceAsc,
            "price-desc" => Self::PriceDesc,
            "title-asc" => Self::TitleAsc,
            _ => Self::Featured,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Featured => "featured",
            Self::Newest => "newest",
            Self::PriceAsc => "price-asc",
            Self::PriceDesc => "price-desc",
            Self::TitleAsc => "title-asc",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Featured => "Featured",
            Self::Newest => "Newest",
            Self::PriceAsc => "Price, low to high",
            Self::PriceDesc => "Price, high to low",
            Self::TitleAsc => "Name, A to Z",
        }
    }
}

/// One condition of a rule-based collection; a product belongs when it meets all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "field", content = "value", rename_all = "snake_case")]
pub enum CollectionRule {
    Tag(String),
    ProductType(String),
    Vendor(String),
    /// Lowest variant price at least this many minor units.
    PriceAtLeast(i64),
    /// Lowest variant price at most this many minor units.
    PriceAtMost(i64),
}

impl CollectionRule {
    /// Whether a product with these tags, type, vendor and lowest price meets the rule
    /// (text compared without regard to case, as the storefront's listing does).
    pub fn matches(&self, tags: &[String], product_type: &str, vendor: &str, price_min: i64) -> bool {
        match self {
            Self::Tag(t) => tags.iter().any(|x| x.to_lowercase() == t.to_lowercase()),
            Self::ProductType(t) => product_type.to_lowercase() == t.to_lowercase(),
            Self::Vendor(v) => vendor.to_lowercase() == v.to_lowercase(),
            Self::PriceAtLeast(p) => price_min >= *p,
            Self::PriceAtMost(p) => price_min <= *p,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap_or_else(|_| unreachable!())
    }

    fn draft() -> ProductDraft {
        let v = |size: &str, color: &str| VariantDraft {
            sku: None,
            option_values: vec![size.into(), color.into()],
            price: Money::new(2500, usd()),
            compare_at: None,
            weight_grams: None,
            barcode: None,
            stock: 3,
        };
        ProductDraft {
            handle: Handle::from_title("Linen Shirt").unwrap_or_else(|_| unreachable!()),
            title: " Linen Shirt ".into(),
            body_html: String::new(),
            status: ProductStatus::Active,
            vendor: "Acme".into(),
            product_type: "Shirts".into(),
            tags: vec!["summer".into(), " Summer ".into(), "".into()],
            attributes: serde_json::Map::new(),
            options: vec![
                ProductOption { name: "Size".into(), values: vec!["S".into(), "M".into()] },
                ProductOption { name: "Color".into(), values: vec!["Blue".into()] },
            ],
            variants: vec![v("S", "Blue"), v("M", "Blue")],
        }
    }

    #[test]
    fn a_valid_product_is_normalised() {
        let mut d = draft();
        assert_eq!(d.validate(usd()), Ok(()));
        assert_eq!(d.title, "Linen Shirt");
        assert_eq!(d.tags, vec!["summer".to_owned()]);
    }

    #[test]
    fn catalog_rules_are_enforced() {
        let mut d = draft();
        d.variants[1].option_values = vec!["S".into(), "Blue".into()];
        assert!(d.validate(usd()).is_err_and(|e| e.message.contains("repeats")));
        let mut d = draft();
        d.variants[0].option_values = vec!["XL".into(), "Blue".into()];
        assert!(d.validate(usd()).is_err_and(|e| e.message.contains("not a value of Size")));
        let mut d = draft();
        d.variants[0].option_values.pop();
        assert!(d.validate(usd()).is_err());
        let mut d = draft();
        d.options.push(ProductOption { name: "size".into(), values: vec![] });
        assert!(d.validate(usd()).is_err(), "option names are unique, case-insensitively");
        let mut d = draft();
        d.variants.clear();
        assert!(d.validate(usd()).is_err());
        let mut d = draft();
        d.variants[0].stock = -1;
        assert!(d.validate(usd()).is_err());
        let mut d = draft();
        d.variants[0].price = Money::new(100, Currency::parse("EUR").unwrap_or_else(|_| unreachable!()));
        assert!(d.validate(usd()).is_err());
        let mut d = draft();
        d.variants[0].compare_at = Some(Money::new(2000, usd()));
        assert_eq!(d.validate(usd()), Ok(()));
        assert_eq!(d.variants[0].compare_at, None, "a compare-at price below the price is dropped");
    }

    #[test]
    fn variants_follow_the_options_and_keep_their_data() {
        let d = draft();
        let template = VariantDraft { stock: 9, ..d.variants[0].clone() };
        let mut existing = d.variants.clone();
        existing[1].stock = 42;
        let mut options = d.options.clone();
        options[1].values.push("Red".into());
        let v = variants_for_options(&options, &existing, &template).unwrap_or_default();
        assert_eq!(v.len(), 4);
        assert_eq!(v.iter().find(|v| v.option_values == ["M", "Blue"]).map(|v| v.stock), Some(42));
        assert_eq!(v.iter().find(|v| v.option_values == ["M", "Red"]).map(|v| v.stock), Some(9));
        assert_eq!(option_combinations(&[]), vec![Vec::<String>::new()]);
        let many = vec![ProductOption { name: "N".into(), values: (0..101).map(|i| i.to_string()).collect() }];
        assert!(variants_for_options(&many, &[], &template).is_err());
    }

    #[test]
    fn handles_come_from_titles() {
        assert_eq!(
            Handle::from_title("Blue Linen Shirt — 100% cotton!").map(String::from),
            Ok("blue-linen-shirt-100-cotton".into())
        );
        assert!(Handle::from_title("!!!").is_err());
        assert!(Handle::parse("Has Space").is_err());
    }
}
