//! Product catalogs in Shopify's product CSV format, the de-facto exchange format
//! for catalogs: merchants moving to ECOM bring a Shopify export, and an ECOM
//! export opens in any spreadsheet and imports back into Shopify.
//!
//! Import is all or nothing: a merchant fixing a file wants every problem at once,
//! each pointing at a line of the file, rather than a half-imported catalog.
//! Line numbers count CSV records with the header as line 1, which is the row
//! number a spreadsheet shows even when a description spans several text lines.
//!
//! Shopify has no column for ECOM's free-form attributes, so export writes none and
//! import leaves them empty. Body HTML is passed through as written: the catalog
//! service sanitises it when it stores it.
//!
//! Images travel as Shopify has them: `Image Src` (an absolute URL of the original,
//! `{store URL}/media/{hash}.{ext}` on export), `Image Position` and `Image Alt Text`;
//! a product's first image on its first row, the others on image-only rows after
//! its variants. This module only reads and writes the columns: attaching the
//! images an import names (fetching them, or finding them in the store's own media)
//! happens after the products are saved, in `catalog_images`, where a failed image
//! is reported rather than failing the import.

use ecom_core::catalog::{Handle, ProductDraft, ProductOption, ProductStatus, VariantDraft};
use ecom_core::{Currency, Invalid, Money};
use ecom_store::catalog::{ImageRecord, ProductRecord, VariantRecord};
use std::collections::HashMap;
use std::fmt;
use std::io::{Read, Write};

/// One product read from the file, with the 1-based line (CSV record line, header = line 1) where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedProduct {
    pub draft: ProductDraft,
    /// Where the product starts, so that later steps (saving, handle clashes with
    /// the existing catalog) can point the merchant at the right row too.
    pub line: usize,
    /// In Image Position order, each once; attached after the products are saved.
    pub images: Vec<ImageRef>,
}

/// An image as the file names it: Shopify files carry URLs, not image data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub src: String,
    pub alt: String,
    /// 1-based display order.
    pub position: u32,
    /// The row that names it, for a report on it.
    pub line: usize,
}

/// A problem with one line of the file, for the merchant to fix.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Past this many, more errors only bury the first ones; the merchant fixes these
/// (usually one systematic mistake) and uploads again.
const MAX_ERRORS: usize = 200;

/// The columns this module knows. Import finds them by name; export writes them in
/// this order, which is Shopify's own, so the file imports into Shopify unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Handle,
    Title,
    Body,
    Vendor,
    ProductCategory,
    Type,
    Tags,
    Published,
    Option1Name,
    Option1Value,
    Option2Name,
    Option2Value,
    Option3Name,
    Option3Value,
    Sku,
    Grams,
    InventoryTracker,
    InventoryQty,
    InventoryPolicy,
    FulfillmentService,
    Price,
    CompareAt,
    RequiresShipping,
    Taxable,
    Barcode,
    ImageSrc,
    ImagePosition,
    ImageAlt,
    GiftCard,
    SeoTitle,
    SeoDescription,
    VariantImage,
    WeightUnit,
    CostPerItem,
    Status,
}

const COLUMNS: [(Col, &str); 35] = [
    (Col::Handle, "Handle"),
    (Col::Title, "Title"),
    (Col::Body, "Body (HTML)"),
    (Col::Vendor, "Vendor"),
    (Col::ProductCategory, "Product Category"),
    (Col::Type, "Type"),
    (Col::Tags, "Tags"),
    (Col::Published, "Published"),
    (Col::Option1Name, "Option1 Name"),
    (Col::Option1Value, "Option1 Value"),
    (Col::Option2Name, "Option2 Name"),
    (Col::Option2Value, "Option2 Value"),
    (Col::Option3Name, "Option3 Name"),
    (Col::Option3Value, "Option3 Value"),
    (Col::Sku, "Variant SKU"),
    (Col::Grams, "Variant Grams"),
    (Col::InventoryTracker, "Variant Inventory Tracker"),
    (Col::InventoryQty, "Variant Inventory Qty"),
    (Col::InventoryPolicy, "Variant Inventory Policy"),
    (Col::FulfillmentService, "Variant Fulfillment Service"),
    (Col::Price, "Variant Price"),
    (Col::CompareAt, "Variant Compare At Price"),
    (Col::RequiresShipping, "Variant Requires Shipping"),
    (Col::Taxable, "Variant Taxable"),
    (Col::Barcode, "Variant Barcode"),
    (Col::ImageSrc, "Image Src"),
    (Col::ImagePosition, "Image Position"),
    (Col::ImageAlt, "Image Alt Text"),
    (Col::GiftCard, "Gift Card"),
    (Col::SeoTitle, "SEO Title"),
    (Col::SeoDescription, "SEO Description"),
    (Col::VariantImage, "Variant Image"),
    (Col::WeightUnit, "Variant Weight Unit"),
    (Col::CostPerItem, "Cost per item"),
    (Col::Status, "Status"),
];

const OPTION_NAMES: [Col; 3] = [Col::Option1Name, Col::Option2Name, Col::Option3Name];
const OPTION_VALUES: [Col; 3] = [Col::Option1Value, Col::Option2Value, Col::Option3Value];

/// What makes a row after a product's first one a variant rather than an image
/// row. Shopify's defaults columns (tracker, policy, taxable, …) are left out: some
/// tools fill them on every row, and they say nothing about a variant on their own.
const VARIANT_SIGNALS: [Col; 9] = [
    Col::Option1Value,
    Col::Option2Value,
    Col::Option3Value,
    Col::Sku,
    Col::Grams,
    Col::InventoryQty,
    Col::Price,
    Col::CompareAt,
    Col::Barcode,
];

/// What Shopify writes for a product without options; read back as "no options".
const DEFAULT_OPTION_NAME: &str = "Title";
const DEFAULT_OPTION_VALUE: &str = "Default Title";

fn name_of(col: Col) -> &'static str {
    COLUMNS.iter().find(|(c, _)| *c == col).map_or("", |(_, name)| name)
}

/// Where each known column sits in this file, since files come in any order.
struct Header {
    /// By `Col as usize`: the cell index of that column in this file.
    index: [Option<usize>; COLUMNS.len()],
    /// The header cells as written, to name a column in an error about it.
    names: Vec<String>,
}

impl Header {
    fn parse(cells: &[&str]) -> Result<Self, Vec<LineError>> {
        let mut index = [None; COLUMNS.len()];
        let mut errors = Vec::new();
        let names: Vec<String> = cells.iter().map(|c| c.trim_start_matches('\u{feff}').trim().to_owned()).collect();
        for (at, name) in names.iter().enumerate() {
            let Some(&(col, _)) = COLUMNS.iter().find(|(_, n)| n.eq_ignore_ascii_case(name)) else { continue };
            let Some(slot) = index.get_mut(col as usize) else { continue };
            if slot.replace(at).is_some() {
                errors.push(LineError { line: 1, message: format!("the column \"{name}\" appears more than once") });
            }
        }
        // Without these every product would fail the same way; one message says it once.
        for required in [Col::Handle, Col::Title, Col::Price] {
            if index.get(required as usize).is_none_or(Option::is_none) {
                errors.push(LineError {
                    line: 1,
                    message: format!("the header row has no \"{}\" column", name_of(required)),
                });
            }
        }
        if errors.is_empty() { Ok(Self { index, names }) } else { Err(errors) }
    }
}

/// One data row, its cells looked up by column.
struct Row<'a> {
    line: usize,
    header: &'a Header,
    cells: Vec<&'a str>,
}

impl Row<'_> {
    /// The cell, untrimmed; empty when the file has no such column.
    fn raw(&self, col: Col) -> &str {
        self.header.index.get(col as usize).copied().flatten().and_then(|i| self.cells.get(i)).copied().unwrap_or("")
    }

    fn get(&self, col: Col) -> &str {
        self.raw(col).trim()
    }

    fn optional(&self, col: Col) -> Option<String> {
        Some(self.get(col)).filter(|s| !s.is_empty()).map(str::to_owned)
    }
}

/// Collects errors up to the cap, so a file with the same mistake on every row
/// neither floods the merchant nor costs unbounded memory.
#[derive(Default)]
struct Errors(Vec<LineError>);

impl Errors {
    fn push(&mut self, line: usize, message: impl Into<String>) {
        if self.0.len() < MAX_ERRORS {
            self.0.push(LineError { line, message: message.into() });
        }
    }

    fn push_error(&mut self, error: LineError) {
        self.push(error.line, error.message);
    }

    fn invalid(&mut self, line: usize, e: &Invalid) {
        self.push(line, e.to_string());
    }

    fn full(&self) -> bool {
        self.0.len() >= MAX_ERRORS
    }

    fn count(&self) -> usize {
        self.0.len()
    }
}

/// A product while its rows are read.
struct Building {
    draft: ProductDraft,
    line: usize,
    currency: Currency,
    /// Option values of each variant read so far → the line it came from, so a
    /// repeat names the row it repeats.
    combos: HashMap<Vec<String>, usize>,
    /// (position as written, src, alt, line)
    images: Vec<(Option<u32>, String, String, usize)>,
    /// Errors were reported for this product: validating it would only repeat
    /// them in vaguer words, and it must not be kept.
    failed: bool,
}

impl Building {
    fn start(handle: Handle, row: &Row<'_>, currency: Currency, errors: &mut Errors) -> Self {
        let before = errors.count();
        let line = row.line;
        if row.get(Col::Title).is_empty() {
            errors.push(line, "Title: the first row of a product needs its title");
        }
        let status = match (row.get(Col::Status), row.get(Col::Published)) {
            ("", published) if published.eq_ignore_ascii_case("true") => ProductStatus::Active,
            // Without a word either way, an import does not put a product live.
            ("", published) if published.is_empty() || published.eq_ignore_ascii_case("false") => ProductStatus::Draft,
            ("", published) => {
                errors.push(line, format!("Published: use TRUE or FALSE, not \"{published}\""));
                ProductStatus::Draft
            }
            (status, _) => ProductStatus::parse(status).unwrap_or_else(|| {
                errors.push(line, format!("Status: use active, draft or archived, not \"{status}\""));
                ProductStatus::Draft
            }),
        };
        let draft = ProductDraft {
            handle,
            title: row.get(Col::Title).to_owned(),
            body_html: row.raw(Col::Body).to_owned(),
            status,
            vendor: row.get(Col::Vendor).to_owned(),
            product_type: row.get(Col::Type).to_owned(),
            tags: row.get(Col::Tags).split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect(),
            attributes: serde_json::Map::new(),
            options: option_names(row, errors),
            variants: Vec::new(),
        };
        let mut product =
            Self { draft, line, currency, combos: HashMap::new(), images: Vec::new(), failed: errors.count() > before };
        // Shopify's first row of a product always carries its first variant.
        product.add_variant(row, errors);
        product.add_image(row, errors);
        product
    }

    fn add_row(&mut self, row: &Row<'_>, errors: &mut Errors) {
        if VARIANT_SIGNALS.iter().any(|&c| !row.get(c).is_empty()) {
            self.add_variant(row, errors);
        }
        self.add_image(row, errors);
    }

    fn add_variant(&mut self, row: &Row<'_>, errors: &mut Errors) {
        let before = errors.count();
        let line = row.line;
        let mut values = Vec::new();
        for (i, &col) in OPTION_VALUES.iter().enumerate() {
            let value = row.get(col);
            match self.draft.options.get(i) {
                Some(option) if value.is_empty() => {
                    let option = if option.name.is_empty() { name_of(OPTION_NAMES[i]) } else { option.name.as_str() };
                    errors.push(line, format!("{}: this variant needs a value for {option}", name_of(col)));
                }
                Some(_) => values.push(value.to_owned()),
                None if value.is_empty() || (i == 0 && value == DEFAULT_OPTION_VALUE) => {}
                None => errors.push(
                    line,
                    format!(
                        "{}: \"{value}\" belongs to no option; name the option in {} on line {}",
                        name_of(col),
                        name_of(OPTION_NAMES[i]),
                        self.line
                    ),
                ),
            }
        }
        if errors.count() == before
            && let Some(first) = self.combos.get(&values)
        {
            if values.is_empty() {
                errors.push(
                    line,
                    format!(
                        "the product has no options, so its one variant is the one on line {first}; \
                         to sell more, name an option in Option1 Name on line {}",
                        self.line
                    ),
                );
            } else {
                errors.push(line, format!("the options {} repeat those of line {first}", values.join(" / ")));
            }
        }
        let price = Money::parse("Variant Price", row.get(Col::Price), self.currency)
            .map_err(|e| errors.invalid(line, &e))
            .ok();
        let compare_at = match row.get(Col::CompareAt) {
            "" => None,
            text => {
                Money::parse("Variant Compare At Price", text, self.currency).map_err(|e| errors.invalid(line, &e)).ok()
            }
        };
        let weight_grams = parse_grams(row.get(Col::Grams)).map_err(|m| errors.push(line, m)).ok().flatten();
        let stock = parse_stock(row.get(Col::InventoryQty)).map_err(|m| errors.push(line, m)).unwrap_or(0);
        match price {
            Some(price) if errors.count() == before => {
                for (option, value) in self.draft.options.iter_mut().zip(&values) {
                    if !option.values.contains(value) {
                        option.values.push(value.clone());
                    }
                }
                self.combos.insert(values.clone(), line);
                self.draft.variants.push(VariantDraft {
                    sku: row.optional(Col::Sku),
                    option_values: values,
                    price,
                    compare_at,
                    weight_grams,
                    barcode: row.optional(Col::Barcode),
                    stock,
                });
            }
            _ => self.failed = true,
        }
    }

    fn add_image(&mut self, row: &Row<'_>, errors: &mut Errors) {
        let src = row.get(Col::ImageSrc);
        if src.is_empty() {
            return;
        }
        let position = match row.get(Col::ImagePosition) {
            "" => None,
            text => match text.parse::<u32>() {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    errors.push(row.line, format!("Image Position: \"{text}\" is not a position like 1, 2, 3"));
                    self.failed = true;
                    None
                }
            },
        };
        let alt = row.get(Col::ImageAlt);
        if alt.chars().count() > crate::catalog::MAX_ALT_CHARS {
            errors.push(row.line, format!("Image Alt Text: use at most {} characters", crate::catalog::MAX_ALT_CHARS));
            self.failed = true;
        }
        self.images.push((position, src.to_owned(), alt.to_owned(), row.line));
    }

    fn finish(mut self, errors: &mut Errors) -> Option<ImportedProduct> {
        if self.failed {
            return None;
        }
        // The rows checked what one row can; the catalog rules need the whole product.
        if let Err(e) = self.draft.validate(self.currency) {
            errors.invalid(self.line, &e);
            return None;
        }
        let mut images: Vec<ImageRef> = Vec::new();
        let mut next = 1;
        for (position, src, alt, line) in self.images {
            // Rows without a position follow the one before, as in Shopify.
            let position = position.unwrap_or(next);
            next = position.saturating_add(1);
            if !images.iter().any(|i| i.src == src) {
                images.push(ImageRef { src, alt, position, line });
            }
        }
        images.sort_by_key(|i| i.position);
        Some(ImportedProduct { draft: self.draft, line: self.line, images })
    }
}

/// The options named on a product's first row. Shopify's "Title" / "Default Title"
/// is its way of writing "no options", not an option shoppers choose.
fn option_names(row: &Row<'_>, errors: &mut Errors) -> Vec<ProductOption> {
    let names: Vec<&str> = OPTION_NAMES.iter().map(|&c| row.get(c)).collect();
    let count = names.iter().rposition(|n| !n.is_empty()).map_or(0, |i| i + 1);
    let named = names.get(..count).unwrap_or_default();
    if let Some(gap) = named.iter().position(|n| n.is_empty()) {
        errors.push(
            row.line,
            format!("{}: name the options in order, without leaving one out", name_of(OPTION_NAMES[gap])),
        );
    }
    if count == 1
        && names[0].eq_ignore_ascii_case(DEFAULT_OPTION_NAME)
        && row.get(Col::Option1Value) == DEFAULT_OPTION_VALUE
    {
        return Vec::new();
    }
    named.iter().map(|n| ProductOption { name: (*n).to_owned(), values: Vec::new() }).collect()
}

/// Grams as a whole number; exports from Shopify and other tools may write `250.0`, so decimals are
/// accepted and rounded to the gram.
fn parse_grams(text: &str) -> Result<Option<i32>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let bad = || format!("Variant Grams: \"{text}\" is not a weight in grams like 250");
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let grams: i32 = whole.parse().map_err(|_| bad())?;
    let round_up = fraction.bytes().next().is_some_and(|b| b >= b'5');
    grams.checked_add(i32::from(round_up)).map(Some).ok_or_else(bad)
}

/// Stock on hand. Shopify allows oversold (negative) stock and ECOM does not; the
/// merchant decides what it should be rather than the import guessing.
fn parse_stock(text: &str) -> Result<i32, String> {
    if text.is_empty() {
        return Ok(0);
    }
    match text.parse::<i32>() {
        Ok(n) if n >= 0 => Ok(n),
        Ok(n) => Err(format!("Variant Inventory Qty: stock cannot be below zero ({n}); enter 0 for none")),
        Err(_) => Err(format!("Variant Inventory Qty: \"{text}\" is not a whole number")),
    }
}

/// A record the CSV reader could not read, in words a merchant can act on.
fn read_error(e: &csv::Error, fallback_line: usize) -> LineError {
    let line_of = |pos: Option<&csv::Position>| {
        pos.and_then(|p| usize::try_from(p.record()).ok()).map_or(fallback_line, |r| r + 1)
    };
    match e.kind() {
        csv::ErrorKind::UnequalLengths { pos, expected_len, len } => LineError {
            line: line_of(pos.as_ref()),
            message: format!(
                "this row has {len} cells but the header has {expected_len}; \
                 check for a stray comma or an unclosed quote"
            ),
        },
        csv::ErrorKind::Io(io) => {
            LineError { line: fallback_line, message: format!("the file could not be read past here: {io}") }
        }
        _ => LineError { line: line_of(e.position()), message: format!("this row is not valid CSV: {e}") },
    }
}

fn not_utf8(line: usize, column: Option<&str>) -> LineError {
    let place = column.map_or_else(|| "this row".to_owned(), |c| format!("the column \"{c}\""));
    LineError {
        line,
        message: format!("{place} is not UTF-8 text; save the file as \"CSV UTF-8\" and upload it again"),
    }
}

/// Parses the whole file. Either every product parses and validates, or the caller gets every error found (not just the first), each with its line number; capped at 200 errors.
pub fn parse_shopify_csv<R: Read>(input: R, currency: Currency) -> Result<Vec<ImportedProduct>, Vec<LineError>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(input);
    let mut header_record = csv::ByteRecord::new();
    match reader.read_byte_record(&mut header_record) {
        Ok(true) => {}
        Ok(false) => return Err(vec![empty_file()]),
        Err(e) => return Err(vec![read_error(&e, 1)]),
    }
    let Ok(header_cells) = header_record.iter().map(std::str::from_utf8).collect::<Result<Vec<&str>, _>>() else {
        return Err(vec![not_utf8(1, None)]);
    };
    if header_cells.iter().all(|c| c.trim_start_matches('\u{feff}').trim().is_empty()) {
        return Err(vec![empty_file()]);
    }
    let header = Header::parse(&header_cells)?;

    let mut errors = Errors::default();
    let mut products = Vec::new();
    let mut current: Option<Building> = None;
    // Handles of finished products → their first line, to catch split products.
    let mut finished: HashMap<Handle, usize> = HashMap::new();
    // A bad handle is usually repeated on each row of its product: say it once.
    let mut last_bad_handle: Option<String> = None;
    let mut record = csv::ByteRecord::new();
    let mut line = 1;
    while !errors.full() {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let error = read_error(&e, line + 1);
                line = error.line.max(line + 1);
                errors.push_error(error);
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    break;
                }
                continue;
            }
        }
        line = record.position().and_then(|p| usize::try_from(p.record()).ok()).map_or(line + 1, |r| r + 1);
        let cells = match record.iter().map(std::str::from_utf8).collect::<Result<Vec<&str>, _>>() {
            Ok(cells) => cells,
            Err(_) => {
                let column = record.iter().position(|f| std::str::from_utf8(f).is_err());
                errors.push_error(not_utf8(line, column.and_then(|i| header.names.get(i)).map(String::as_str)));
                continue;
            }
        };
        let row = Row { line, header: &header, cells };
        // Spreadsheets leave rows of empty cells behind; they mean nothing.
        if row.cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let raw_handle = row.get(Col::Handle);
        if raw_handle.is_empty() {
            errors.push(line, "Handle: every row needs the handle of its product");
            continue;
        }
        let handle = match Handle::parse(raw_handle) {
            Ok(handle) => handle,
            Err(e) => {
                if last_bad_handle.as_deref() != Some(raw_handle) {
                    errors.push(line, format!("Handle: \"{raw_handle}\": {}", e.message));
                    last_bad_handle = Some(raw_handle.to_owned());
                }
                continue;
            }
        };
        last_bad_handle = None;
        match current.as_mut() {
            Some(product) if product.draft.handle == handle => product.add_row(&row, &mut errors),
            _ => {
                if let Some(first) = finished.get(&handle) {
                    errors.push(
                        line,
                        format!(
                            "rows of handle {} must be together: the product starts on line {first}, \
                             with other products in between",
                            handle.as_str()
                        ),
                    );
                    continue;
                }
                if let Some(done) = current.take() {
                    finished.insert(done.draft.handle.clone(), done.line);
                    products.extend(done.finish(&mut errors));
                }
                current = Some(Building::start(handle, &row, currency, &mut errors));
            }
        }
    }
    if let Some(done) = current.take() {
        products.extend(done.finish(&mut errors));
    }
    let mut errors = errors.0;
    if errors.is_empty() && products.is_empty() {
        errors.push(LineError { line: 2, message: "the file has a header row but no products".into() });
    }
    if errors.is_empty() {
        Ok(products)
    } else {
        // Whole-product errors are found after the product's later rows.
        errors.sort_by_key(|e| e.line);
        Err(errors)
    }
}

fn set(row: &mut [String], col: Col, value: String) {
    if let Some(cell) = row.get_mut(col as usize) {
        *cell = value;
    }
}

fn empty_file() -> LineError {
    LineError { line: 1, message: "the file is empty; it needs a header row starting with Handle,Title,…".into() }
}

/// A stored product with what an export writes of it.
#[derive(Debug, Clone)]
pub struct ExportedProduct {
    pub product: ProductRecord,
    pub variants: Vec<VariantRecord>,
    /// In display order.
    pub images: Vec<ImageRecord>,
}

/// The URL an export gives a stored image: its original, on the store's address.
pub fn image_url(store_url: &str, image: &ImageRecord) -> String {
    format!("{}/media/{}.{}", store_url.trim_end_matches('/'), image.hash, image.ext)
}

fn set_image(row: &mut [String], store_url: &str, image: &ImageRecord, position: usize) {
    set(row, Col::ImageSrc, image_url(store_url, image));
    set(row, Col::ImagePosition, position.to_string());
    set(row, Col::ImageAlt, image.alt.clone());
}

/// Writes products in the same format, one row per variant (product fields on the first row of each product), so that parse(export(x)) gives back the same drafts.
///
/// Images are written as Shopify does: the first on the product's first row, each
/// other on a row of its own (handle and image columns only) after the variants.
/// `store_url` (`https://shop.example.com`) makes their URLs absolute.
///
/// Shopify's default columns (inventory tracked by Shopify, deny overselling, manual
/// fulfilment, shipping and tax on) are filled in so the file imports into Shopify
/// as ECOM sells: stock-tracked physical goods. Tags holding a comma cannot survive
/// the round trip, since the Tags cell is comma-separated.
pub fn write_shopify_csv<W: Write>(
    out: W,
    products: &[ExportedProduct],
    currency: Currency,
    store_url: &str,
) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(COLUMNS.iter().map(|(_, name)| *name))?;
    for ExportedProduct { product, variants, images } in products {
        let mut variants: Vec<&VariantRecord> = variants.iter().collect();
        // Import rebuilds option value order from row order, so rows go in display order.
        variants.sort_by_key(|v| v.position);
        let mut first = vec![String::new(); COLUMNS.len()];
        set(&mut first, Col::Title, product.title.clone());
        set(&mut first, Col::Body, product.body_html.clone());
        set(&mut first, Col::Vendor, product.vendor.clone());
        set(&mut first, Col::Type, product.product_type.clone());
        set(&mut first, Col::Tags, product.tags.join(", "));
        let published = if product.status == ProductStatus::Active { "TRUE" } else { "FALSE" };
        set(&mut first, Col::Published, published.into());
        set(&mut first, Col::Status, product.status.as_str().into());
        set(&mut first, Col::GiftCard, "FALSE".into());
        if product.options.is_empty() {
            set(&mut first, Col::Option1Name, DEFAULT_OPTION_NAME.into());
        }
        for (option, &col) in product.options.iter().zip(&OPTION_NAMES) {
            set(&mut first, col, option.name.clone());
        }
        if let Some(image) = images.first() {
            set_image(&mut first, store_url, image, 1);
        }
        if variants.is_empty() {
            // Not a valid product, but dropping it silently would lose it.
            set(&mut first, Col::Handle, product.handle.clone());
            writer.write_record(&first)?;
        }
        for (i, variant) in variants.into_iter().enumerate() {
            let mut row = if i == 0 { std::mem::take(&mut first) } else { vec![String::new(); COLUMNS.len()] };
            set(&mut row, Col::Handle, product.handle.clone());
            if product.options.is_empty() {
                set(&mut row, Col::Option1Value, DEFAULT_OPTION_VALUE.into());
            }
            for (value, &col) in variant.option_values.iter().zip(&OPTION_VALUES) {
                set(&mut row, col, value.clone());
            }
            set(&mut row, Col::Sku, variant.sku.clone().unwrap_or_default());
            if let Some(grams) = variant.weight_grams {
                set(&mut row, Col::Grams, grams.to_string());
                set(&mut row, Col::WeightUnit, "g".into());
            }
            set(&mut row, Col::InventoryTracker, "shopify".into());
            set(&mut row, Col::InventoryQty, variant.stock.to_string());
            set(&mut row, Col::InventoryPolicy, "deny".into());
            set(&mut row, Col::FulfillmentService, "manual".into());
            set(&mut row, Col::Price, Money::new(variant.price, currency).decimal());
            set(
                &mut row,
                Col::CompareAt,
                variant.compare_at.map(|c| Money::new(c, currency).decimal()).unwrap_or_default(),
            );
            set(&mut row, Col::RequiresShipping, "TRUE".into());
            set(&mut row, Col::Taxable, "TRUE".into());
            set(&mut row, Col::Barcode, variant.barcode.clone().unwrap_or_default());
            writer.write_record(&row)?;
        }
        for (i, image) in images.iter().enumerate().skip(1) {
            let mut row = vec![String::new(); COLUMNS.len()];
            set(&mut row, Col::Handle, product.handle.clone());
            set_image(&mut row, store_url, image, i + 1);
            writer.write_record(&row)?;
        }
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    fn parse(text: &str) -> Result<Vec<ImportedProduct>, Vec<LineError>> {
        parse_shopify_csv(text.as_bytes(), usd())
    }

    fn errors(text: &str) -> Vec<LineError> {
        parse(text).expect_err("the file should be refused")
    }

    fn usd_money(minor: i64) -> Money {
        Money::new(minor, usd())
    }

    /// A Shopify export as it comes out of the admin: every column, a description
    /// over two text lines, a column ECOM does not know, an image-only row.
    const SHOPIFY_SAMPLE: &str = r#"Handle,Title,Body (HTML),Vendor,Product Category,Type,Tags,Published,Option1 Name,Option1 Value,Option2 Name,Option2 Value,Option3 Name,Option3 Value,Variant SKU,Variant Grams,Variant Inventory Tracker,Variant Inventory Qty,Variant Inventory Policy,Variant Fulfillment Service,Variant Price,Variant Compare At Price,Variant Requires Shipping,Variant Taxable,Variant Barcode,Image Src,Image Position,Image Alt Text,Gift Card,SEO Title,SEO Description,Google Shopping / Gender,Variant Image,Variant Weight Unit,Cost per item,Status
linen-shirt,Linen Shirt,"<p>Breathable linen, cut ""relaxed"".</p>
<p>Machine wash.</p>",Acme,Apparel & Accessories > Clothing > Shirts & Tops,Shirts,"summer, linen, Summer",TRUE,Size,S,Color,Blue,,,LS-S-BLU,180.0,shopify,5,deny,manual,45.00,60.00,TRUE,TRUE,0123456789012,https://cdn.example.com/linen-front.jpg,1,"Linen shirt, front",FALSE,,,unisex,,g,20.00,active
linen-shirt,,,,,,,,,S,,White,,,LS-S-WHT,180.0,shopify,0,deny,manual,45.00,,TRUE,TRUE,,,,,,,,,,g,,
linen-shirt,,,,,,,,,M,,Blue,,,LS-M-BLU,190,shopify,3,deny,manual,45.00,60.00,TRUE,TRUE,,,,,,,,,,g,,
linen-shirt,,,,,,,,,M,,White,,,LS-M-WHT,190,shopify,,deny,manual,"1,045.50",,TRUE,TRUE,,,,,,,,,,g,,
linen-shirt,,,,,,,,,,,,,,,,,,,,,,,,,https://cdn.example.com/linen-back.jpg,2,"Linen shirt, back",,,,,,,,
gift-mug,Gift Mug,<p>Holds coffee.</p>,Mugworks,,Kitchen,,FALSE,Title,Default Title,,,,,MUG-1,350,shopify,12,deny,manual,12.5,,TRUE,TRUE,,,,,FALSE,,,,,kg,,
"#;

    fn variant(
        values: &[&str],
        sku: &str,
        price: i64,
        compare_at: Option<i64>,
        grams: i32,
        stock: i32,
    ) -> VariantDraft {
        VariantDraft {
            sku: Some(sku.into()),
            option_values: values.iter().map(|v| (*v).to_owned()).collect(),
            price: usd_money(price),
            compare_at: compare_at.map(usd_money),
            weight_grams: Some(grams),
            barcode: None,
            stock,
        }
    }

    #[test]
    fn a_shopify_export_parses() {
        let products = parse(SHOPIFY_SAMPLE).unwrap();
        assert_eq!(products.len(), 2);

        let shirt = &products[0];
        assert_eq!(shirt.line, 2);
        let mut first = variant(&["S", "Blue"], "LS-S-BLU", 4500, Some(6000), 180, 5);
        first.barcode = Some("0123456789012".into());
        let expected = ProductDraft {
            handle: Handle::parse("linen-shirt").unwrap(),
            title: "Linen Shirt".into(),
            body_html: "<p>Breathable linen, cut \"relaxed\".</p>\n<p>Machine wash.</p>".into(),
            status: ProductStatus::Active,
            vendor: "Acme".into(),
            product_type: "Shirts".into(),
            tags: vec!["summer".into(), "linen".into()],
            attributes: serde_json::Map::new(),
            options: vec![
                ProductOption { name: "Size".into(), values: vec!["S".into(), "M".into()] },
                ProductOption { name: "Color".into(), values: vec!["Blue".into(), "White".into()] },
            ],
            variants: vec![
                first,
                variant(&["S", "White"], "LS-S-WHT", 4500, None, 180, 0),
                variant(&["M", "Blue"], "LS-M-BLU", 4500, Some(6000), 190, 3),
                variant(&["M", "White"], "LS-M-WHT", 104_550, None, 190, 0),
            ],
        };
        assert_eq!(shirt.draft, expected);
        assert_eq!(
            shirt.images,
            vec![
                ImageRef {
                    src: "https://cdn.example.com/linen-front.jpg".into(),
                    alt: "Linen shirt, front".into(),
                    position: 1,
                    line: 2
                },
                ImageRef {
                    src: "https://cdn.example.com/linen-back.jpg".into(),
                    alt: "Linen shirt, back".into(),
                    position: 2,
                    line: 6
                },
            ]
        );

        let mug = &products[1];
        assert_eq!(mug.line, 7, "lines count records: the two-line description is one");
        assert_eq!(mug.draft.handle.as_str(), "gift-mug");
        assert_eq!(mug.draft.status, ProductStatus::Draft, "Published FALSE and no Status");
        assert!(mug.draft.options.is_empty(), "Default Title means no options");
        assert_eq!(mug.draft.variants, vec![variant(&[], "MUG-1", 1250, None, 350, 12)]);
        assert!(mug.draft.tags.is_empty());
        assert!(mug.images.is_empty());
    }

    const STORE: &str = "https://demo.example.com";

    /// What the store would hold after saving these drafts.
    fn records_of(drafts: &[ProductDraft]) -> Vec<ExportedProduct> {
        drafts
            .iter()
            .map(|d| {
                let prices = d.variants.iter().map(|v| v.price.minor);
                let mut attributes = serde_json::Map::new();
                attributes.insert("material".into(), "linen".into());
                let product = ProductRecord {
                    id: uuid::Uuid::now_v7(),
                    handle: d.handle.as_str().to_owned(),
                    title: d.title.clone(),
                    body_html: d.body_html.clone(),
                    status: d.status,
                    vendor: d.vendor.clone(),
                    product_type: d.product_type.clone(),
                    tags: d.tags.clone(),
                    attributes,
                    options: d.options.clone(),
                    price_min: prices.clone().min().unwrap(),
                    price_max: prices.max().unwrap(),
                    compare_at_max: d.variants.iter().filter_map(|v| v.compare_at.map(|c| c.minor)).max(),
                    total_stock: d.variants.iter().map(|v| i64::from(v.stock)).sum(),
                    category_id: None,
                    created_at: chrono::Utc::now(),
                    updated_at: chrono::Utc::now(),
                };
                let mut variants: Vec<VariantRecord> = d
                    .variants
                    .iter()
                    .enumerate()
                    .map(|(i, v)| VariantRecord {
                        id: uuid::Uuid::now_v7(),
                        position: i32::try_from(i).unwrap(),
                        sku: v.sku.clone(),
                        option_values: v.option_values.clone(),
                        price: v.price.minor,
                        compare_at: v.compare_at.map(|c| c.minor),
                        weight_grams: v.weight_grams,
                        barcode: v.barcode.clone(),
                        stock: v.stock,
                    })
                    .collect();
                // The store hands variants back in any order; position decides.
                variants.reverse();
                ExportedProduct { product, variants, images: Vec::new() }
            })
            .collect()
    }

    #[test]
    fn export_then_parse_gives_the_same_drafts() {
        let mut drafts: Vec<ProductDraft> = parse(SHOPIFY_SAMPLE).unwrap().into_iter().map(|p| p.draft).collect();
        let mut archived = drafts[0].clone();
        archived.handle = Handle::parse("old-tote").unwrap();
        archived.title = "Old Tote, \"classic\"".into();
        archived.body_html = "<p>Line one,\r\nline two</p>".into();
        archived.status = ProductStatus::Archived;
        archived.vendor = String::new();
        archived.tags = vec!["Sale".into(), "last pieces".into()];
        archived.options = vec![
            ProductOption { name: "Size".into(), values: vec!["One size".into()] },
            ProductOption { name: "Color".into(), values: vec!["Red".into(), "Black".into()] },
            ProductOption { name: "Strap".into(), values: vec!["Short".into()] },
        ];
        archived.variants = vec![
            VariantDraft {
                sku: None,
                option_values: vec!["One size".into(), "Red".into(), "Short".into()],
                price: usd_money(5),
                compare_at: None,
                weight_grams: None,
                barcode: Some("4006381333931".into()),
                stock: 0,
            },
            VariantDraft {
                sku: Some("TOTE-BLK".into()),
                option_values: vec!["One size".into(), "Black".into(), "Short".into()],
                price: usd_money(100_000_000_000),
                compare_at: None,
                weight_grams: Some(0),
                barcode: None,
                stock: 1_000_000,
            },
        ];
        drafts.push(archived);

        let mut out = Vec::new();
        write_shopify_csv(&mut out, &records_of(&drafts), usd(), STORE).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("Handle,Title,Body (HTML),Vendor,"));
        assert!(text.contains(",Title,Default Title,"), "Shopify's way of writing no options:\n{text}");

        let back = parse(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        let back_drafts: Vec<ProductDraft> = back.iter().map(|p| p.draft.clone()).collect();
        assert_eq!(back_drafts, drafts, "attributes are not exported, so they come back empty");
        assert_eq!(back.iter().map(|p| p.line).collect::<Vec<_>>(), vec![2, 6, 7]);

        // And once more: the export of an import of an export is the same file.
        let mut again = Vec::new();
        write_shopify_csv(&mut again, &records_of(&back_drafts), usd(), STORE).unwrap();
        assert_eq!(String::from_utf8(again).unwrap(), text);
    }

    fn image(product: &ProductRecord, n: u8, alt: &str) -> ImageRecord {
        ImageRecord {
            id: uuid::Uuid::now_v7(),
            product_id: product.id,
            hash: format!("{n:02x}").repeat(32),
            ext: if n.is_multiple_of(2) { "png".into() } else { "jpg".into() },
            width: 800,
            height: 600,
            alt: alt.into(),
        }
    }

    #[test]
    fn images_are_written_as_shopify_writes_them() {
        let drafts: Vec<ProductDraft> = parse(SHOPIFY_SAMPLE).unwrap().into_iter().map(|p| p.draft).collect();
        let mut records = records_of(&drafts);
        let shirt = records[0].product.clone();
        records[0].images = vec![
            image(&shirt, 1, "Linen shirt, front"),
            image(&shirt, 2, ""),
            image(&shirt, 3, "Back, \"relaxed\" cut"),
        ];
        let mug = records[1].product.clone();
        records[1].images = vec![image(&mug, 4, "Mug")];
        let mut out = Vec::new();
        write_shopify_csv(&mut out, &records, usd(), "https://demo.example.com/").unwrap();
        let text = String::from_utf8(out).unwrap();

        let rows: Vec<Vec<String>> = csv::Reader::from_reader(text.as_bytes())
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect();
        let cell = |row: &[String], col: Col| row[col as usize].clone();
        // Four variant rows, then the two extra images; then the mug's one row.
        assert_eq!(rows.len(), 4 + 2 + 1, "{text}");
        let hash1 = "01".repeat(32);
        assert_eq!(cell(&rows[0], Col::ImageSrc), format!("https://demo.example.com/media/{hash1}.jpg"));
        assert_eq!(cell(&rows[0], Col::ImagePosition), "1");
        assert_eq!(cell(&rows[0], Col::ImageAlt), "Linen shirt, front");
        for variant_row in &rows[1..4] {
            assert_eq!(cell(variant_row, Col::ImageSrc), "", "variant rows carry no image");
        }
        for (row, n, alt) in [(&rows[4], 2, ""), (&rows[5], 3, "Back, \"relaxed\" cut")] {
            assert_eq!(cell(row, Col::Handle), "linen-shirt");
            assert_eq!(cell(row, Col::ImagePosition), n.to_string());
            assert_eq!(cell(row, Col::ImageAlt), alt);
            let filled: Vec<usize> = (0..row.len()).filter(|&i| !row[i].is_empty()).collect();
            let mut expected = vec![Col::Handle as usize, Col::ImageSrc as usize, Col::ImagePosition as usize];
            if !alt.is_empty() {
                expected.push(Col::ImageAlt as usize);
            }
            assert_eq!(filled, expected, "an image row holds the handle and the image only");
        }
        assert_eq!(cell(&rows[6], Col::ImageSrc), format!("https://demo.example.com/media/{}.png", "04".repeat(32)));

        // Read back: the same products, with the images in order.
        let back = parse(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        assert_eq!(back.iter().map(|p| p.draft.clone()).collect::<Vec<_>>(), drafts);
        let images: Vec<(u32, String, usize)> =
            back[0].images.iter().map(|i| (i.position, i.alt.clone(), i.line)).collect();
        assert_eq!(
            images,
            vec![(1, "Linen shirt, front".into(), 2), (2, String::new(), 6), (3, "Back, \"relaxed\" cut".into(), 7)]
        );
        assert_eq!(back[0].images[2].src, format!("https://demo.example.com/media/{}.jpg", "03".repeat(32)));
        assert_eq!(back[1].line, 8);
        assert_eq!(back[1].images.len(), 1);
    }

    #[test]
    fn a_too_long_alt_text_is_reported_on_its_line() {
        let long = "a".repeat(501);
        let e = errors(&format!(
            "Handle,Title,Variant Price,Image Src,Image Alt Text\ncap,Cap,5,https://x.example/a.jpg,ok\n\
             cap,,,https://x.example/b.jpg,{long}\n"
        ));
        assert_eq!(e, vec![LineError { line: 3, message: "Image Alt Text: use at most 500 characters".into() }]);
    }

    #[test]
    fn money_round_trips_in_currencies_without_cents() {
        let jpy = Currency::parse("JPY").unwrap();
        let text = "Handle,Title,Variant Price,Variant Compare At Price\nfan,Paper Fan,1200,1500\n";
        let drafts: Vec<ProductDraft> =
            parse_shopify_csv(text.as_bytes(), jpy).unwrap().into_iter().map(|p| p.draft).collect();
        assert_eq!(drafts[0].variants[0].price, Money::new(1200, jpy));
        let mut out = Vec::new();
        write_shopify_csv(&mut out, &records_of(&drafts), jpy, STORE).unwrap();
        let back: Vec<ProductDraft> =
            parse_shopify_csv(out.as_slice(), jpy).unwrap().into_iter().map(|p| p.draft).collect();
        assert_eq!(back, drafts);
    }

    #[test]
    fn columns_are_found_by_name_in_any_order() {
        // Excel's "CSV UTF-8" starts with a byte-order mark and ends lines with CRLF.
        let text = "\u{feff} variant price ,STATUS,Unknown Column,title,HANDLE,published,Tags\r\n\
                    9.99,draft,x,Cap,cap,TRUE,\r\n\
                    ,,,,,,\r\n\
                    3,,y,Sock,Sock,TRUE,\"a,b\"\r\n";
        let products = parse(text).unwrap();
        assert_eq!(products.len(), 2);
        assert_eq!(products[0].draft.status, ProductStatus::Draft, "Status wins over Published");
        assert_eq!(products[0].draft.variants[0].price, usd_money(999));
        assert_eq!(products[0].draft.variants[0].stock, 0, "no stock column means none in stock");
        assert_eq!(products[0].draft.variants[0].weight_grams, None);
        assert_eq!(products[1].draft.status, ProductStatus::Active, "Published TRUE without a Status");
        assert_eq!(products[1].draft.handle.as_str(), "sock", "handles are lower-cased");
        assert_eq!(products[1].draft.tags, vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(products[1].line, 4, "the blank row still counts as a line");
    }

    #[test]
    fn the_column_table_follows_the_enum() {
        for (i, (col, _)) in COLUMNS.iter().enumerate() {
            assert_eq!(*col as usize, i);
        }
    }

    #[test]
    fn grams_and_stock_parse_as_shopify_writes_them() {
        assert_eq!(parse_grams(""), Ok(None));
        assert_eq!(parse_grams("250"), Ok(Some(250)));
        assert_eq!(parse_grams("250.0"), Ok(Some(250)));
        assert_eq!(parse_grams("453.592"), Ok(Some(454)));
        for bad in ["-1", "1e3", "abc", ".5", "99999999999"] {
            assert!(parse_grams(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_stock(""), Ok(0));
        assert_eq!(parse_stock("7"), Ok(7));
        assert!(parse_stock("-2").is_err_and(|m| m.contains("below zero")));
        assert!(parse_stock("2.5").is_err());
    }

    const HEAD: &str =
        "Handle,Title,Option1 Name,Option1 Value,Option2 Name,Option2 Value,Variant Price,Variant Inventory Qty\n";

    #[test]
    fn a_bad_price_is_reported_on_its_line() {
        let e = errors(&format!("{HEAD}shirt,Shirt,Size,S,,,10,1\nshirt,,,M,,,ten,1\n"));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, 3);
        assert!(e[0].message.starts_with("Variant Price: \"ten\""), "{}", e[0].message);
        let e = errors(&format!("{HEAD}shirt,Shirt,Size,S,,,,1\n"));
        assert_eq!(e[0].line, 2, "a missing price too");
        assert!(e[0].message.contains("Variant Price"));
    }

    #[test]
    fn a_repeated_option_combination_names_both_lines() {
        let e =
            errors(&format!("{HEAD}shirt,Shirt,Size,S,Color,Blue,10,1\nshirt,,,M,,Blue,10,1\nshirt,,,S,,Blue,12,1\n"));
        assert_eq!(e, vec![LineError { line: 4, message: "the options S / Blue repeat those of line 2".into() }]);
        // A product without options has one variant only.
        let e = errors(&format!("{HEAD}mug,Mug,Title,Default Title,,,10,1\nmug,,,Default Title,,,11,1\n"));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, 3);
        assert!(e[0].message.contains("no options"), "{}", e[0].message);
    }

    #[test]
    fn option_values_need_their_option() {
        let e = errors(&format!("{HEAD}shirt,Shirt,Size,S,,Blue,10,1\nshirt,,,,,,10,1\n"));
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(e[0].line, 2);
        assert!(e[0].message.starts_with("Option2 Value: \"Blue\" belongs to no option"), "{}", e[0].message);
        assert_eq!(e[1].line, 3);
        assert!(e[1].message.contains("needs a value for Size"), "{}", e[1].message);
    }

    #[test]
    fn a_missing_title_is_reported_on_the_products_first_line() {
        let e = errors(&format!("{HEAD}shirt,Shirt,,,,,10,1\nhat,,,,,,10,1\nhat,,,,,,,\n"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].line, 3);
        assert!(e[0].message.starts_with("Title:"));
    }

    #[test]
    fn rows_of_a_product_must_be_together() {
        let e = errors(&format!("{HEAD}shirt,Shirt,Size,S,,,10,1\nhat,Hat,,,,,5,1\nshirt,,,M,,,10,1\nhat,,,,,,,\n"));
        assert_eq!(
            e,
            vec![LineError {
                line: 4,
                message: "rows of handle shirt must be together: the product starts on line 2, \
                          with other products in between"
                    .into()
            }]
        );
    }

    #[test]
    fn the_catalog_rules_are_reported_on_the_products_first_line() {
        let long_tag = "x".repeat(101);
        let e = errors(&format!("Handle,Title,Tags,Variant Price\ncap,Cap,,3\nhat,Hat,{long_tag},5\n"));
        assert_eq!(e, vec![LineError { line: 3, message: "Tags: a tag has at most 100 characters".into() }]);
    }

    #[test]
    fn every_error_in_the_file_is_reported_in_line_order() {
        let text = format!(
            "{HEAD}\
             shirt,Shirt,Size,S,,,abc,1\n\
             shirt,,,M,,,10,-4\n\
             Bad Handle,Thing,,,,,1,1\n\
             Bad Handle,,,,,,,\n\
             ,Orphan,,,,,1,1\n\
             hat,,,,,,5,1\n\
             mug,Mug,,,,,5,many\n\
             shirt,,,L,,,10,1\n\
             cap,Cap,,,,,5,1\n"
        );
        let e = errors(&text);
        let lines: Vec<usize> = e.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 6, 7, 8, 9], "{e:#?}");
        assert!(e[0].message.starts_with("Variant Price"));
        assert!(e[1].message.contains("below zero"));
        assert!(e[2].message.starts_with("Handle: \"Bad Handle\""), "reported once for its two rows");
        assert!(e[3].message.starts_with("Handle: every row"));
        assert!(e[4].message.starts_with("Title:"));
        assert!(e[5].message.starts_with("Variant Inventory Qty: \"many\""));
        assert!(e[6].message.starts_with("rows of handle shirt"));
    }

    #[test]
    fn errors_stop_at_two_hundred() {
        let mut text = String::from(HEAD);
        for i in 0..500 {
            text.push_str(&format!("p{i},Product,,,,,free,1\n"));
        }
        let e = errors(&text);
        assert_eq!(e.len(), MAX_ERRORS);
        assert_eq!(e.last().map(|e| e.line), Some(201));
    }

    #[test]
    fn problems_with_the_file_itself_are_clear() {
        let e = errors("");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, 1);
        assert!(e[0].message.contains("empty"));
        assert!(errors("\u{feff}\n")[0].message.contains("empty"));

        let e = errors(HEAD);
        assert_eq!(e[0].line, 2);
        assert!(e[0].message.contains("no products"));

        let e = errors("Title,Variant Price\nShirt,10\n");
        assert_eq!(e, vec![LineError { line: 1, message: "the header row has no \"Handle\" column".into() }]);

        let e = errors("Handle,Title,Variant Price,handle\nshirt,Shirt,1,shirt\n");
        assert_eq!(e[0].line, 1);
        assert!(e[0].message.contains("more than once"));

        // Windows-1252 from an old Excel: "Café" with é as one byte.
        let mut bytes = b"Handle,Title,Variant Price\ncap,Cap,1\ncafe,Caf".to_vec();
        bytes.extend([0xE9, b',', b'2', b'\n']);
        let e = parse_shopify_csv(bytes.as_slice(), usd()).unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, 3);
        assert!(e[0].message.starts_with("the column \"Title\" is not UTF-8"), "{}", e[0].message);

        let e = parse_shopify_csv(&b"Handle,T\xE9tle\n"[..], usd()).unwrap_err();
        assert_eq!(e[0].line, 1);
        assert!(e[0].message.contains("UTF-8"));

        // A stray comma shifts every cell after it; the row is refused, not misread.
        let e = errors("Handle,Title,Variant Price\ncap,Cap,1\nhat,Hat,1,5\nmug,Mug,1\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, 3);
        assert!(e[0].message.contains("4 cells but the header has 3"), "{}", e[0].message);
        // An unclosed quote swallows the rest of the file into one cell.
        let e = errors("Handle,Title,Variant Price\ncap,\"Cap,1\nhat,Hat,1\n");
        assert_eq!(e[0].line, 2);
    }

    #[test]
    fn line_errors_read_as_sentences() {
        let e = LineError { line: 4, message: "Title: the first row of a product needs its title".into() };
        assert_eq!(e.to_string(), "line 4: Title: the first row of a product needs its title");
    }
}
