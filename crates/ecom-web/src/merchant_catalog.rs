//! The merchant panel's catalog pages: product list, create and edit forms (options,
//! generated variants), archive, and bulk price and stock editing. Forms work
//! without JavaScript; the rules live in `ecom_core::catalog` and the catalog service.

use crate::auth::SignedIn;
use crate::error::{WebError, WebResult};
use crate::state::AppState;
use crate::templates::ser;
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use ecom_core::catalog::{Handle, ProductDraft, ProductOption, ProductStatus, VariantDraft, variants_for_options};
use ecom_core::{Invalid, Money, Tenant};
use ecom_services::ServiceError;
use ecom_store::catalog::{ProductRecord, VariantChange, VariantRecord};
use minijinja::context;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    status: Option<String>,
    page: Option<u64>,
}

pub async fn list(State(state): State<AppState>, page: SignedIn, Query(q): Query<ListQuery>) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Catalog)?;
    let tenant = page.store()?;
    let status = q.status.as_deref().and_then(ProductStatus::parse);
    let n = q.page.unwrap_or(1).clamp(1, 10_000);
    let search = q.q.clone().filter(|s| !s.trim().is_empty());
    let (rows, total) = state.catalog.merchant_products(&tenant, search, status, n).await?;
    let money = |m: i64| Money::new(m, tenant.currency).display();
    let products: Vec<_> = rows
        .iter()
        .map(|(p, vs)| {
            context! {
                id => p.id.to_string(), title => p.title.clone(), handle => p.handle.clone(), status => p.status.as_str(),
                vendor => p.vendor.clone(), product_type => p.product_type.clone(), variants => vs.len(),
                stock => p.total_stock,
                price => if p.price_min == p.price_max { money(p.price_min) } else { format!("{} – {}", money(p.price_min), money(p.price_max)) },
            }
        })
        .collect();
    let pages = total.div_ceil(50).max(1);
    Ok(page.page(
        "merchant/products.html",
        context! { products, total, page_no => n, pages, q => q.q.unwrap_or_default(), status => q.status.unwrap_or_default(), page_title => "Products" },
    ))
}

/// The product form as typed, kept as text so it can be shown again with errors.
#[derive(Debug, Clone, Default, Serialize)]
struct ProductForm {
    title: String,
    handle: String,
    body: String,
    status: String,
    vendor: String,
    product_type: String,
    category: String,
    tags: String,
    attributes: String,
    options: Vec<(String, String)>,
    default_price: String,
    default_stock: String,
    variants: Vec<VariantRow>,
}

#[derive(Debug, Clone, Default, Serialize)]
struct VariantRow {
    values: Vec<String>,
    sku: String,
    price: String,
    compare_at: String,
    stock: String,
    barcode: String,
    grams: String,
}

impl From<&VariantDraft> for VariantRow {
    fn from(v: &VariantDraft) -> Self {
        Self {
            values: v.option_values.clone(),
            sku: v.sku.clone().unwrap_or_default(),
            price: v.price.decimal(),
            compare_at: v.compare_at.map(|c| c.decimal()).unwrap_or_default(),
            stock: v.stock.to_string(),
            barcode: v.barcode.clone().unwrap_or_default(),
            grams: v.weight_grams.map(|g| g.to_string()).unwrap_or_default(),
        }
    }
}

impl ProductForm {
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
        let mut variants: Vec<VariantRow> = Vec::new();
        for i in 0..ecom_core::catalog::MAX_VARIANTS {
            let p = |f: &str| format!("v{i}_{f}");
            if !pairs.iter().any(|(k, _)| *k == p("price")) {
                break;
            }
            variants.push(VariantRow {
                values: (0..3).map(|j| get(&p(&format!("o{j}")))).take_while(|v| !v.is_empty()).collect(),
                sku: get(&p("sku")),
                price: get(&p("price")),
                compare_at: get(&p("compare")),
                stock: get(&p("stock")),
                barcode: get(&p("barcode")),
                grams: get(&p("grams")),
            });
        }
        Self {
            title: get("title"),
            handle: get("handle"),
            body: get("body"),
            status: get("status"),
            vendor: get("vendor"),
            product_type: get("product_type"),
            category: get("category"),
            tags: get("tags"),
            attributes: get("attributes"),
            options: (1..=3).map(|i| (get(&format!("option{i}_name")), get(&format!("option{i}_values")))).collect(),
            default_price: get("default_price"),
            default_stock: get("default_stock"),
            variants,
        }
    }

    fn from_record(p: &ProductRecord, vs: &[VariantRecord], category: String, tenant: &Tenant) -> Self {
        let money = |m: i64| Money::new(m, tenant.currency).decimal();
        let mut options: Vec<(String, String)> =
            p.options.iter().map(|o| (o.name.clone(), o.values.join(", "))).collect();
        options.resize(3, (String::new(), String::new()));
        Self {
            title: p.title.clone(),
            handle: p.handle.clone(),
            body: p.body_html.clone(),
            status: p.status.as_str().into(),
            vendor: p.vendor.clone(),
            product_type: p.product_type.clone(),
            category,
            tags: p.tags.join(", "),
            attributes: p
                .attributes
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}: {v}")))
                .collect::<Vec<_>>()
                .join("\n"),
            options,
            default_price: vs.first().map(|v| money(v.price)).unwrap_or_default(),
            default_stock: "0".into(),
            variants: vs
                .iter()
                .map(|v| {
                    VariantRow::from(&VariantDraft {
                        sku: v.sku.clone(),
                        option_values: v.option_values.clone(),
                        price: Money::new(v.price, tenant.currency),
                        compare_at: v.compare_at.map(|c| Money::new(c, tenant.currency)),
                        weight_grams: v.weight_grams,
                        barcode: v.barcode.clone(),
                        stock: v.stock,
                    })
                })
                .collect(),
        }
    }

    /// Turns the form into a product; the variants follow the options (new
    /// combinations get the default price and stock, removed ones go).
    fn to_draft(&self, tenant: &Tenant) -> Result<ProductDraft, Invalid> {
        let currency = tenant.currency;
        let options: Vec<ProductOption> = self
            .options
            .iter()
            .filter(|(name, _)| !name.trim().is_empty())
            .map(|(name, values)| {
                let mut seen = std::collections::HashSet::new();
                ProductOption {
                    name: name.trim().to_owned(),
                    values: values
                        .split(',')
                        .map(|v| v.trim().to_owned())
                        .filter(|v| !v.is_empty() && seen.insert(v.clone()))
                        .collect(),
                }
            })
            .collect();
        if let Some(o) = options.iter().find(|o| o.values.is_empty()) {
            return Err(Invalid::new("options", format!("give {} at least one value", o.name)));
        }
        let stock = |field: &'static str, s: &str| -> Result<i32, Invalid> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(0);
            }
            s.parse::<i32>().map_err(|_| Invalid::new(field, format!("\"{s}\" is not a whole number")))
        };
        let mut existing = Vec::new();
        for (i, row) in self.variants.iter().enumerate() {
            let n = i + 1;
            let label = |what: &str| format!("variant {n} {what}");
            existing.push(VariantDraft {
                sku: Some(row.sku.trim().to_owned()).filter(|s| !s.is_empty()),
                option_values: row.values.clone(),
                price: Money::parse("price", &row.price, currency)
                    .map_err(|e| Invalid::new("variants", format!("{}: {}", label("price"), e.message)))?,
                compare_at: if row.compare_at.trim().is_empty() {
                    None
                } else {
                    Some(Money::parse("compare_at", &row.compare_at, currency).map_err(|e| {
                        Invalid::new("variants", format!("{}: {}", label("compare-at price"), e.message))
                    })?)
                },
                weight_grams: if row.grams.trim().is_empty() {
                    None
                } else {
                    Some(row.grams.trim().parse().map_err(|_| {
                        Invalid::new("variants", format!("{}: weight is a whole number of grams", label("")))
                    })?)
                },
                barcode: Some(row.barcode.trim().to_owned()).filter(|s| !s.is_empty()),
                stock: stock("variants", &row.stock)?,
            });
        }
        let template = VariantDraft {
            sku: None,
            option_values: Vec::new(),
            price: if self.default_price.trim().is_empty() && !existing.is_empty() {
                existing[0].price
            } else {
                Money::parse("default price", &self.default_price, currency)?
            },
            compare_at: None,
            weight_grams: None,
            barcode: None,
            stock: stock("default stock", &self.default_stock)?,
        };
        let variants = variants_for_options(&options, &existing, &template)?;
        let attributes = self
            .attributes
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                l.split_once(':')
                    .map(|(k, v)| (k.trim().to_owned(), serde_json::Value::String(v.trim().to_owned())))
                    .ok_or_else(|| Invalid::new("attributes", format!("\"{}\" needs the form name: value", l.trim())))
            })
            .collect::<Result<serde_json::Map<_, _>, _>>()?;
        Ok(ProductDraft {
            handle: if self.handle.trim().is_empty() {
                Handle::from_title(&self.title)?
            } else {
                Handle::parse(&self.handle)?
            },
            title: self.title.clone(),
            body_html: self.body.clone(),
            status: ProductStatus::parse(&self.status).unwrap_or(ProductStatus::Draft),
            vendor: self.vendor.clone(),
            product_type: self.product_type.clone(),
            tags: self.tags.split(',').map(str::to_owned).collect(),
            attributes,
            options,
            variants,
        })
    }

    /// The form again, with its variant rows regenerated from the options.
    fn with_variants_of(mut self, draft: &ProductDraft) -> Self {
        self.variants = draft.variants.iter().map(VariantRow::from).collect();
        self
    }
}

async fn form_page(
    state: &AppState,
    page: &SignedIn,
    tenant: &Tenant,
    form: &ProductForm,
    id: Option<Uuid>,
    error: Option<String>,
    saved: bool,
) -> WebResult<Response> {
    let failed = error.is_some();
    let images = match id {
        Some(id) => state.catalog.images(tenant, id).await?,
        None => Vec::new(),
    };
    let categories = state.catalog.categories(tenant).await?;
    let cats: Vec<_> =
        categories.iter().map(|c| context! { handle => c.handle.clone(), name => c.name.clone() }).collect();
    let mut resp = page.page(
        "merchant/product_form.html",
        context! {
            form => ser(form), id => id.map(|i| i.to_string()), error, saved, categories => cats, images => ser(&images),
            option_names => form.options.iter().map(|(n, _)| n.clone()).filter(|n| !n.is_empty()).collect::<Vec<_>>(),
            statuses => ["draft", "active", "archived"], currency => tenant.currency.code(),
            page_title => if id.is_some() { "Edit product" } else { "New product" },
        },
    );
    if failed {
        *resp.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

pub async fn new_form(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Catalog)?;
    let tenant = page.store()?;
    let mut form = ProductForm { status: "draft".into(), default_stock: "0".into(), ..Default::default() };
    form.options.resize(3, (String::new(), String::new()));
    form_page(&state, &page, &tenant, &form, None, None, false).await
}

fn category_of(records: &[ecom_store::catalog::CategoryRecord], id: Option<Uuid>) -> String {
    id.and_then(|id| records.iter().find(|c| c.id == id)).map(|c| c.handle.clone()).unwrap_or_default()
}

pub async fn edit_form(
    State(state): State<AppState>,
    page: SignedIn,
    Path(id): Path<Uuid>,
    Query(q): Query<SavedQuery>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Catalog)?;
    let tenant = page.store()?;
    let Some((p, vs)) = state.catalog.product_for_edit(&tenant, id).await? else { return Err(WebError::not_found()) };
    let categories = state.catalog.categories(&tenant).await?;
    let form = ProductForm::from_record(&p, &vs, category_of(&categories, p.category_id), &tenant);
    form_page(&state, &page, &tenant, &form, Some(id), None, q.saved.is_some()).await
}

#[derive(Deserialize)]
pub struct SavedQuery {
    pub saved: Option<String>,
}

/// Create (`id` = None) or update a product. `action=variants` only regenerates the
/// variant table from the options and shows the form again.
async fn submit(
    state: AppState,
    page: SignedIn,
    id: Option<Uuid>,
    pairs: Vec<(String, String)>,
) -> WebResult<Response> {
    let tenant = page.store()?;
    let form = ProductForm::from_pairs(&pairs);
    let action = pairs.iter().find(|(k, _)| k == "action").map(|(_, v)| v.as_str()).unwrap_or("save");
    let draft = match form.to_draft(&tenant) {
        Ok(d) => d,
        Err(e) => return form_page(&state, &page, &tenant, &form, id, Some(e.to_string()), false).await,
    };
    if action == "variants" {
        let form = form.with_variants_of(&draft);
        return form_page(&state, &page, &tenant, &form, id, None, false).await;
    }
    let category = Some(form.category.as_str()).filter(|c| !c.is_empty());
    let (was, title) = (id, draft.title.clone());
    let result = match id {
        Some(id) => state.catalog.update_product(&tenant, id, draft.clone(), category).await.map(|()| id),
        None => state.catalog.create_product(&tenant, draft.clone(), category).await,
    };
    match result {
        Ok(id) => {
            let what = if was.is_some() { "product.update" } else { "product.create" };
            page.audit(&state, what, &format!("product {id}"), &title).await;
            Ok(Redirect::to(&format!("/merchant/products/{id}?saved=1")).into_response())
        }
        Err(ServiceError::Invalid(e)) => {
            form_page(&state, &page, &tenant, &form.with_variants_of(&draft), id, Some(e.to_string()), false).await
        }
        Err(ServiceError::PlanLimit { message, .. }) => {
            form_page(&state, &page, &tenant, &form.with_variants_of(&draft), id, Some(message), false).await
        }
        Err(ServiceError::Conflict(what)) => {
            form_page(
                &state,
                &page,
                &tenant,
                &form,
                id,
                Some(format!("{what} already exists in this store; choose another handle")),
                false,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

pub async fn create(
    State(state): State<AppState>,
    page: SignedIn,
    Form(pairs): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Catalog)?;
    submit(state, page, None, pairs).await
}

pub async fn update(
    State(state): State<AppState>,
    page: SignedIn,
    Path(id): Path<Uuid>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Catalog)?;
    submit(state, page, Some(id), pairs).await
}

#[derive(Deserialize)]
pub struct StatusForm {
    status: String,
}

pub async fn set_status(
    State(state): State<AppState>,
    page: SignedIn,
    Path(id): Path<Uuid>,
    Form(f): Form<StatusForm>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Catalog)?;
    let tenant = page.store()?;
    let status = ProductStatus::parse(&f.status)
        .ok_or_else(|| WebError::BadRequest(format!("\"{}\" is not a product status", f.status)))?;
    state.catalog.set_status(&tenant, id, status).await?;
    page.audit(&state, "product.status", &format!("product {id}"), status.as_str()).await;
    Ok(Redirect::to(&format!("/merchant/products/{id}?saved=1")).into_response())
}

#[derive(Deserialize)]
pub struct PageQuery {
    page: Option<u64>,
    q: Option<String>,
    saved: Option<u64>,
}

/// Bulk price and stock editing: every variant of a page of products in one form.
pub async fn inventory(
    State(state): State<AppState>,
    page: SignedIn,
    Query(q): Query<PageQuery>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Catalog)?;
    let tenant = page.store()?;
    let n = q.page.unwrap_or(1).clamp(1, 10_000);
    let search = q.q.clone().filter(|s| !s.trim().is_empty());
    let (rows, total) = state.catalog.merchant_products(&tenant, search, None, n).await?;
    let money = |m: i64| Money::new(m, tenant.currency).decimal();
    let items: Vec<_> = rows
        .iter()
        .flat_map(|(p, vs)| {
            vs.iter().map(move |v| {
                context! {
                    id => v.id.to_string(), product => p.title.clone(), product_id => p.id.to_string(),
                    variant => if v.option_values.is_empty() { String::new() } else { v.option_values.join(" / ") },
                    sku => v.sku.clone().unwrap_or_default(), price => money(v.price), stock => v.stock,
                }
            })
        })
        .collect();
    Ok(page.page(
        "merchant/inventory.html",
        context! { items, total, page_no => n, pages => total.div_ceil(50).max(1), q => q.q.unwrap_or_default(), saved => q.saved, currency => tenant.currency.code(), page_title => "Prices and stock" },
    ))
}

pub async fn save_inventory(
    State(state): State<AppState>,
    page: SignedIn,
    Form(pairs): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Catalog)?;
    let tenant = page.store()?;
    let mut changes = Vec::new();
    for (key, value) in &pairs {
        let Some(id) = key.strip_prefix("price_") else { continue };
        let variant = Uuid::parse_str(id)
            .map_err(|_| WebError::BadRequest("The form refers to a variant that does not exist.".into()))?;
        let price = Money::parse("price", value, tenant.currency)?;
        let stock_text = pairs.iter().find(|(k, _)| *k == format!("stock_{id}")).map(|(_, v)| v.trim()).unwrap_or("0");
        let stock: i32 = stock_text
            .parse()
            .map_err(|_| WebError::BadRequest(format!("Stock: \"{stock_text}\" is not a whole number")))?;
        changes.push(VariantChange { variant, price: price.minor, stock });
    }
    let n = state.catalog.update_variants(&tenant, &changes).await?;
    page.audit(&state, "inventory.update", "prices and stock", &format!("{n} variants changed")).await;
    let back = pairs.iter().find(|(k, _)| k == "page").map(|(_, v)| v.clone()).unwrap_or_else(|| "1".into());
    Ok(Redirect::to(&format!("/merchant/inventory?page={back}&saved={n}")).into_response())
}

/// Files larger than this are refused before parsing (Shopify's own limit is 15 MB).
pub const MAX_IMPORT_BYTES: usize = 16 * 1024 * 1024;

pub async fn import_form(page: SignedIn) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Catalog)?;
    Ok(page.page("merchant/import.html", context! { page_title => "Import products" }))
}

/// Upload of a Shopify product CSV: checked whole, imported whole or not at all.
pub async fn import(
    State(state): State<AppState>,
    page: SignedIn,
    mut multipart: axum::extract::Multipart,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Catalog)?;
    let tenant = page.store()?;
    let mut bytes = None;
    while let Some(field) =
        multipart.next_field().await.map_err(|e| WebError::BadRequest(format!("The upload could not be read: {e}")))?
    {
        if field.name() == Some("file") {
            let data =
                field.bytes().await.map_err(|e| WebError::BadRequest(format!("The upload could not be read: {e}")))?;
            bytes = Some(data);
        }
    }
    let Some(bytes) = bytes.filter(|b| !b.is_empty()) else {
        return Ok(page.page(
            "merchant/import.html",
            context! { errors => vec!["Choose a CSV file to upload."], page_title => "Import products" },
        ));
    };
    let products = match ecom_services::catalog_csv::parse_shopify_csv(&bytes[..], tenant.currency) {
        Ok(p) => p,
        Err(errors) => {
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            let mut resp = page.page("merchant/import.html", context! { errors, page_title => "Import products" });
            *resp.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(resp);
        }
    };
    let mut summary = match state.catalog.import_products(&tenant, products, &|_, _| {}).await {
        Ok(summary) => summary,
        Err(ServiceError::PlanLimit { message, .. }) => {
            let mut resp = page
                .page("merchant/import.html", context! { errors => vec![message], page_title => "Import products" });
            *resp.status_mut() = axum::http::StatusCode::FORBIDDEN;
            return Ok(resp);
        }
        Err(e) => return Err(e.into()),
    };
    let detail = format!("{} created, {} updated", summary.created, summary.updated);
    page.audit(&state, "products.import", "CSV import", &detail).await;
    // The products are saved; now their images. In a task of its own, so that they are
    // all attached even if the merchant leaves the page before the downloads finish.
    let pending = std::mem::take(&mut summary.pending_images);
    let images = if pending.is_empty() {
        None
    } else {
        let (catalog, media, outbound, store) =
            (state.catalog.clone(), state.media.clone(), state.outbound.clone(), tenant.clone());
        let attach = tokio::spawn(async move {
            catalog.attach_imported_images(&store, &media, &outbound, pending, &|_, _| {}).await
        });
        Some(attach.await.map_err(|e| WebError::Internal(format!("attaching imported images: {e}")))??)
    };
    let image_problems: Vec<String> =
        images.as_ref().map(|r| r.problems.iter().map(ToString::to_string).collect()).unwrap_or_default();
    Ok(page.page(
        "merchant/import.html",
        context! { summary => ser(&summary), images => ser(&images), image_problems, page_title => "Import products" },
    ))
}

pub async fn export(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Catalog)?;
    let tenant = page.store()?;
    let products = state.catalog.export_catalog(&tenant).await?;
    // Image URLs on the address the merchant uses for this store.
    let store_url = format!("{}://{}", state.config.public_scheme, page.ctx.host.0);
    let mut out = Vec::new();
    ecom_services::catalog_csv::write_shopify_csv(&mut out, &products, tenant.currency, &store_url)
        .map_err(|e| WebError::Internal(format!("csv export: {e}")))?;
    let filename = format!("attachment; filename=\"{}-products.csv\"", tenant.slug);
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, filename),
        ],
        out,
    )
        .into_response())
}

/// Upload of a product image (multipart: `file`, `alt`), checked and stored, with
/// thumbnails made in the background.
pub async fn upload_image(
    State(state): State<AppState>,
    page: SignedIn,
    Path(id): Path<Uuid>,
    mut multipart: axum::extract::Multipart,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Catalog)?;
    let tenant = page.store()?;
    let (mut bytes, mut alt) = (None, String::new());
    while let Some(field) =
        multipart.next_field().await.map_err(|e| WebError::BadRequest(format!("The upload could not be read: {e}")))?
    {
        match field.name() {
            Some("file") => {
                bytes = Some(
                    field
                        .bytes()
                        .await
                        .map_err(|e| WebError::BadRequest(format!("The upload could not be read: {e}")))?,
                )
            }
            Some("alt") => alt = field.text().await.unwrap_or_default(),
            _ => {}
        }
    }
    let Some(bytes) = bytes.filter(|b| !b.is_empty()) else {
        return Err(WebError::BadRequest("Choose an image file to upload.".into()));
    };
    if state.catalog.product_for_edit(&tenant, id).await?.is_none() {
        return Err(WebError::not_found());
    }
    let size = bytes.len() as u64;
    if let Err(e) = state.catalog.ensure_storage_for(&tenant, size).await {
        return plan_refused(&state, &page, &tenant, id, e).await;
    }
    let stored = state.media.ingest(tenant.id, bytes).await.map_err(|e| match e {
        ecom_media::MediaError::Rejected(why) => WebError::BadRequest(format!("That image was refused: {why}.")),
        other => WebError::Internal(other.to_string()),
    })?;
    if let Err(e) =
        state.catalog.add_image(&tenant, id, &stored.hash, stored.ext, (stored.width, stored.height), &alt, size).await
    {
        return plan_refused(&state, &page, &tenant, id, e).await;
    }
    page.audit(&state, "product.image.add", &format!("product {id}"), &format!("{}.{}", stored.hash, stored.ext)).await;
    Ok(Redirect::to(&format!("/merchant/products/{id}?saved=1")).into_response())
}

/// A refused upload: the plan's storage is shown on the product's form; other
/// failures are error pages.
async fn plan_refused(
    state: &AppState,
    page: &SignedIn,
    tenant: &ecom_core::Tenant,
    id: Uuid,
    e: ServiceError,
) -> WebResult<Response> {
    let ServiceError::PlanLimit { message, .. } = e else { return Err(e.into()) };
    let Some((p, vs)) = state.catalog.product_for_edit(tenant, id).await? else {
        return Err(WebError::not_found());
    };
    let categories = state.catalog.categories(tenant).await?;
    let form = ProductForm::from_record(&p, &vs, category_of(&categories, p.category_id), tenant);
    let mut resp = form_page(state, page, tenant, &form, Some(id), Some(message), false).await?;
    *resp.status_mut() = axum::http::StatusCode::FORBIDDEN;
    Ok(resp)
}

pub async fn delete_image(
    State(state): State<AppState>,
    page: SignedIn,
    Path((id, image)): Path<(Uuid, Uuid)>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Catalog)?;
    let tenant = page.store()?;
    state.catalog.delete_image(&tenant, id, image).await?;
    page.audit(&state, "product.image.delete", &format!("product {id}"), &image.to_string()).await;
    Ok(Redirect::to(&format!("/merchant/products/{id}?saved=1")).into_response())
}

/// Collections and categories: list and create.
pub async fn organise(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Catalog)?;
    organise_page(&state, &page, None, false).await
}

async fn organise_page(state: &AppState, page: &SignedIn, error: Option<String>, saved: bool) -> WebResult<Response> {
    let tenant = page.store()?;
    let collections = state.catalog.collections(&tenant).await?;
    let categories = state.catalog.categories(&tenant).await?;
    let cols: Vec<_> = collections
        .iter()
        .map(|c| context! { title => c.title.clone(), handle => c.handle.clone(), manual => c.rules.is_none(), rules => c.rules.as_ref().map(|r| r.len()).unwrap_or(0) })
        .collect();
    let cats: Vec<_> = categories
        .iter()
        .map(|c| {
            let parent = c.parent_id.and_then(|p| categories.iter().find(|x| x.id == p)).map(|p| p.name.clone());
            context! { id => c.id.to_string(), name => c.name.clone(), handle => c.handle.clone(), parent }
        })
        .collect();
    let failed = error.is_some();
    let mut resp = page.page(
        "merchant/organise.html",
        context! { collections => cols, categories => cats, error, saved, currency => tenant.currency.code(), page_title => "Collections and categories" },
    );
    if failed {
        *resp.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

#[derive(Deserialize)]
pub struct CollectionForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    handles: String,
}

pub async fn create_collection(
    State(state): State<AppState>,
    page: SignedIn,
    Form(f): Form<CollectionForm>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Catalog)?;
    use ecom_core::catalog::CollectionRule;
    let tenant = page.store()?;
    let value = f.value.trim().to_owned();
    let price = |v: &str| Money::parse("value", v, tenant.currency).map(|m| m.minor);
    let rules = match f.kind.as_str() {
        "manual" => Ok(None),
        _ if value.is_empty() => Err(Invalid::new("value", "enter the value the rule matches")),
        "tag" => Ok(Some(vec![CollectionRule::Tag(value)])),
        "type" => Ok(Some(vec![CollectionRule::ProductType(value)])),
        "vendor" => Ok(Some(vec![CollectionRule::Vendor(value)])),
        "price_at_most" => price(&value).map(|p| Some(vec![CollectionRule::PriceAtMost(p)])),
        "price_at_least" => price(&value).map(|p| Some(vec![CollectionRule::PriceAtLeast(p)])),
        other => Err(Invalid::new("kind", format!("\"{other}\" is not a kind of collection"))),
    };
    let rules = match rules {
        Ok(r) => r,
        Err(e) => return organise_page(&state, &page, Some(e.to_string()), false).await,
    };
    let handles: Vec<String> =
        f.handles.split(['\n', ',']).map(|h| h.trim().to_owned()).filter(|h| !h.is_empty()).collect();
    let result = async {
        let ids = if rules.is_none() { state.catalog.ids_for_handles(&tenant, &handles).await? } else { Vec::new() };
        state.catalog.create_collection(&tenant, &f.title, &f.body, rules, &ids).await
    }
    .await;
    match result {
        Ok(_) => {
            page.audit(&state, "collection.create", &f.title, "").await;
            organise_page(&state, &page, None, true).await
        }
        Err(ServiceError::Invalid(e)) => organise_page(&state, &page, Some(e.to_string()), false).await,
        Err(ServiceError::Conflict(what)) => {
            organise_page(&state, &page, Some(format!("{what} already exists")), false).await
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub struct CategoryForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    parent: String,
}

pub async fn create_category(
    State(state): State<AppState>,
    page: SignedIn,
    Form(f): Form<CategoryForm>,
) -> WebResult<Response> {
    page.require(ecom_core::staff::Permission::Catalog)?;
    let tenant = page.store()?;
    let parent = if f.parent.is_empty() {
        None
    } else {
        let id = Uuid::parse_str(&f.parent).map_err(|_| WebError::BadRequest("Unknown parent category.".into()))?;
        if !state.catalog.categories(&tenant).await?.iter().any(|c| c.id == id) {
            return Err(WebError::BadRequest("Unknown parent category.".into()));
        }
        Some(id)
    };
    match state.catalog.create_category(&tenant, parent, &f.name).await {
        Ok(_) => {
            page.audit(&state, "category.create", &f.name, "").await;
            organise_page(&state, &page, None, true).await
        }
        Err(ServiceError::Invalid(e)) => organise_page(&state, &page, Some(e.to_string()), false).await,
        Err(ServiceError::Conflict(what)) => {
            organise_page(&state, &page, Some(format!("{what} already exists")), false).await
        }
        Err(other) => Err(other.into()),
    }
}
