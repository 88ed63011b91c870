//! The catalog as shoppers and merchants use it: writing products and collections
//! (validated, HTML sanitised) and reading listings and product pages (cached per
//! node, dropped on every write to the store's catalog).

use crate::{Result, ServiceError};
use ecom_bus::Topic;
use ecom_core::catalog::{CollectionRule, Handle, ProductDraft, ProductSort, ProductStatus};
use ecom_core::{Money, Tenant, TenantId};
use ecom_store::catalog::{
    self as repo, CategoryRecord, CollectionRecord, ImageRecord, Listing, ProductRecord, VariantRecord,
};
use ecom_store::{Db, StoreError};
use moka::future::Cache;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Products per listing page.
pub const PAGE_SIZE: u64 = 24;

/// An image's alt text is at most this long.
pub const MAX_ALT_CHARS: usize = 500;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub created: usize,
    pub updated: usize,
    /// The images the file names, by saved product: not attached yet. Hand them to
    /// [`Catalog::attach_imported_images`] (it fetches, so it is a step of its own).
    #[serde(skip)]
    pub pending_images: Vec<crate::catalog_images::PendingImages>,
}

/// An image as pages use it: `/media/{hash}.{ext}` is the original,
/// `/media/{hash}-{w}.jpg` a thumbnail (w = 200, 400, 800).
#[derive(Debug, Clone, Serialize)]
pub struct ImageView {
    pub id: String,
    pub hash: String,
    pub ext: String,
    pub alt: String,
    pub width: i32,
    pub height: i32,
}

impl From<&ImageRecord> for ImageView {
    fn from(i: &ImageRecord) -> Self {
        Self {
            id: i.id.to_string(),
            hash: i.hash.clone(),
            ext: i.ext.clone(),
            alt: i.alt.clone(),
            width: i.width,
            height: i.height,
        }
    }
}

/// A product tile in a listing.
#[derive(Debug, Clone, Serialize)]
pub struct ProductCard {
    pub handle: String,
    pub title: String,
    pub vendor: String,
    pub product_type: String,
    /// "$25.00" or "From $25.00".
    pub price: String,
    pub compare_at: Option<String>,
    pub on_sale: bool,
    pub in_stock: bool,
    /// A stable palette index (0–7) for the image placeholder until media lands.
    pub swatch: u8,
    /// The product's initials for the placeholder.
    pub initials: String,
    /// The first image, if any.
    pub image: Option<ImageView>,
}

/// A stable small number from a handle, so a product keeps its placeholder colour.
fn swatch(handle: &str) -> u8 {
    let hash = handle.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    (hash % 8) as u8
}

/// First letters of the first and last word: "Merino Crew Sweater" → "MS".
fn initials(title: &str) -> String {
    let words: Vec<char> = title.split_whitespace().filter_map(|w| w.chars().find(|c| c.is_alphanumeric())).collect();
    let picked: String = match words.as_slice() {
        [] => String::new(),
        [one] => one.to_string(),
        [first, .., last] => [*first, *last].iter().collect(),
    };
    picked.to_uppercase()
}

/// One variant as the product page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct VariantView {
    pub id: String,
    /// "M / Blue", or the product title for a product without options.
    pub title: String,
    pub option_values: Vec<String>,
    pub sku: Option<String>,
    pub price: String,
    pub price_decimal: String,
    /// The price in minor units of the store's currency.
    pub price_minor: i64,
    pub compare_at: Option<String>,
    /// The compare-at price in minor units, when above the price.
    pub compare_at_minor: Option<i64>,
    pub stock: i32,
    pub available: bool,
}

/// Everything the product page needs.
#[derive(Debug, Clone, Serialize)]
pub struct ProductView {
    pub id: String,
    pub handle: String,
    pub title: String,
    pub body_html: String,
    /// The description as plain text, for meta descriptions.
    pub summary: String,
    pub status: &'static str,
    pub vendor: String,
    pub product_type: String,
    pub tags: Vec<String>,
    pub attributes: Vec<(String, String)>,
    pub options: Vec<ecom_core::catalog::ProductOption>,
    pub variants: Vec<VariantView>,
    pub price: String,
    pub currency: String,
    pub in_stock: bool,
    pub swatch: u8,
    pub initials: String,
    pub compare_at: Option<String>,
    pub images: Vec<ImageView>,
}

/// A filter group in the sidebar (e.g. Color) with its values.
#[derive(Debug, Clone, Serialize)]
pub struct FacetGroup {
    /// `option:Color`.
    pub key: String,
    /// `Color`.
    pub name: String,
    pub values: Vec<FacetValue>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FacetValue {
    pub value: String,
    pub count: i64,
    pub selected: bool,
}

/// A page of a listing.
#[derive(Debug, Clone, Serialize)]
pub struct ListingView {
    pub products: Vec<ProductCard>,
    pub total: u64,
    pub page: u64,
    pub pages: u64,
    pub facets: Vec<FacetGroup>,
}

/// A product in a [`ListingWindow`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRef {
    pub id: uuid::Uuid,
    pub handle: String,
}

/// Products at some positions of a listing, and how many the listing has in all.
#[derive(Debug, Clone)]
pub struct ListingWindow {
    pub products: Vec<ProductRef>,
    pub total: u64,
}

/// What a shopper asked a listing for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ListingQuery {
    pub collection: Option<String>,
    pub category: Option<String>,
    /// (`option:Color`, values)
    pub facets: Vec<(String, Vec<String>)>,
    pub price_at_least: Option<i64>,
    pub price_at_most: Option<i64>,
    pub search: Option<String>,
    pub sort: ProductSort,
    /// 1-based.
    pub page: u64,
}

/// Which of the merchant's products an API page shows.
#[derive(Debug, Clone, Default)]
pub struct MerchantWindow {
    pub search: Option<String>,
    /// Only this status; every status (archived too) when `None`.
    pub status: Option<ProductStatus>,
    pub sort: ProductSort,
    /// The exact reverse of `sort`.
    pub reverse: bool,
    pub offset: u64,
    pub limit: u64,
}

/// A category with its children, for navigation.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryNode {
    pub handle: String,
    pub name: String,
    pub children: Vec<CategoryNode>,
}

#[derive(Clone)]
enum Cached {
    Product(Option<Arc<ProductView>>),
    Window(Option<Arc<ListingWindow>>),
    Listing(Option<Arc<ListingView>>),
    Collections(Arc<Vec<CollectionRecord>>),
    Categories(Arc<Vec<CategoryRecord>>),
}

impl Cached {
    /// A rough size in bytes, for the cache's memory bound.
    fn approx_bytes(&self) -> u32 {
        let bytes = match self {
            Self::Product(Some(p)) => 512 + p.body_html.len() + 160 * p.variants.len() + 128 * p.images.len(),
            Self::Listing(Some(l)) => {
                256 + 320 * l.products.len() + 64 * l.facets.iter().map(|f| f.values.len()).sum::<usize>()
            }
            Self::Collections(c) => 64 + c.iter().map(|c| 128 + c.body_html.len()).sum::<usize>(),
            Self::Categories(c) => 64 + 96 * c.len(),
            Self::Window(Some(w)) => 64 + 48 * w.products.len(),
            Self::Product(None) | Self::Listing(None) | Self::Window(None) => 64,
        };
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

/// The catalog use cases. Cheap to clone.
#[derive(Clone)]
pub struct Catalog {
    pub(crate) db: Db,
    cache: Cache<(TenantId, u64, String), Cached>,
    /// Bumped on every catalog write to a store: cached entries of older generations
    /// are never read again and age out.
    generations: Arc<RwLock<HashMap<TenantId, Arc<AtomicU64>>>>,
}

/// Sanitises merchant HTML: formatting, lists, links, tables and images stay; scripts,
/// styles, event handlers and `javascript:` URLs go.
pub fn sanitize_html(html: &str) -> String {
    ammonia::Builder::default().link_rel(Some("noopener noreferrer nofollow")).clean(html).to_string()
}

/// Merchant HTML as plain text, whole: a product's description for APIs.
pub fn description_text(html: &str) -> String {
    plain_text(html, usize::MAX)
}

fn plain_text(html: &str, max_chars: usize) -> String {
    let text = ammonia::Builder::empty().clean(&html.replace('<', " <")).to_string();
    let decoded = text
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'");
    let collapsed = decoded.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= max_chars {
        collapsed
    } else {
        let cut: String = collapsed.chars().take(max_chars.saturating_sub(1)).collect();
        format!("{}…", cut.trim_end())
    }
}

fn card(p: &ProductRecord, image: Option<&ImageRecord>, tenant: &Tenant) -> ProductCard {
    let money = |m| Money::new(m, tenant.currency).display();
    ProductCard {
        handle: p.handle.clone(),
        title: p.title.clone(),
        vendor: p.vendor.clone(),
        product_type: p.product_type.clone(),
        price: if p.price_min == p.price_max { money(p.price_min) } else { format!("From {}", money(p.price_min)) },
        compare_at: p.compare_at_max.filter(|c| *c > p.price_min).map(money),
        on_sale: p.compare_at_max.is_some_and(|c| c > p.price_min),
        in_stock: p.total_stock > 0,
        swatch: swatch(&p.handle),
        initials: initials(&p.title),
        image: image.map(ImageView::from),
    }
}

fn product_view(
    p: ProductRecord,
    variants: Vec<VariantRecord>,
    images: &[ImageRecord],
    tenant: &Tenant,
) -> ProductView {
    let money = |m| Money::new(m, tenant.currency);
    let card = card(&p, images.first(), tenant);
    ProductView {
        images: images.iter().map(ImageView::from).collect(),
        id: p.id.to_string(),
        summary: plain_text(&p.body_html, 160),
        status: p.status.as_str(),
        attributes: p.attributes.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned()))).collect(),
        in_stock: p.total_stock > 0,
        variants: variants
            .into_iter()
            .map(|v| VariantView {
                id: v.id.to_string(),
                title: if v.option_values.is_empty() { p.title.clone() } else { v.option_values.join(" / ") },
                option_values: v.option_values,
                sku: v.sku,
                price: money(v.price).display(),
                price_decimal: money(v.price).decimal(),
                price_minor: v.price,
                compare_at_minor: v.compare_at.filter(|c| *c > v.price),
                compare_at: v.compare_at.filter(|c| *c > v.price).map(|c| money(c).display()),
                stock: v.stock,
                available: v.stock > 0,
            })
            .collect(),
        price: card.price,
        compare_at: card.compare_at,
        swatch: card.swatch,
        initials: card.initials,
        currency: tenant.currency.code().to_owned(),
        handle: p.handle,
        title: p.title,
        body_html: p.body_html,
        vendor: p.vendor,
        product_type: p.product_type,
        tags: p.tags,
        options: p.options,
    }
}

/// The id of a category given by handle; `None` for no category.
async fn category_id(
    txn: &ecom_store::DatabaseTransaction,
    tenant: &Tenant,
    handle: Option<&str>,
) -> Result<Option<uuid::Uuid>> {
    let Some(handle) = handle.filter(|h| !h.is_empty()) else { return Ok(None) };
    Ok(Some(
        repo::list_categories(txn, tenant.id)
            .await?
            .into_iter()
            .find(|c| c.handle == handle)
            .ok_or_else(|| ecom_core::Invalid::new("category", format!("there is no category \"{handle}\"")))?
            .id,
    ))
}

/// Writes `inventory.low` in the caller's transaction when a variant's stock went from
/// `before` to `after` across the low-stock line, or sold out.
pub(crate) async fn inventory_low_if_crossed(
    txn: &ecom_store::DatabaseTransaction,
    tenant: TenantId,
    variant: uuid::Uuid,
    sku: &str,
    before: i32,
    after: i32,
) -> Result<()> {
    let line = crate::checkout::LOW_STOCK_SHOWN;
    if (before >= line && after < line) || (after == 0 && before > 0) {
        let data =
            ecom_bus::events::InventoryLowData { variant_id: variant, sku: sku.to_owned(), stock: i64::from(after) };
        let payload = serde_json::to_value(data).map_err(|e| ServiceError::Internal(e.to_string()))?;
        ecom_store::orders::outbox(txn, tenant, Topic::InventoryLow.as_str(), payload).await?;
    }
    Ok(())
}

/// Writes a `product.created` / `product.updated` event in the caller's transaction.
async fn product_event(
    txn: &ecom_store::DatabaseTransaction,
    tenant: &Tenant,
    topic: Topic,
    id: uuid::Uuid,
    handle: &str,
    title: &str,
) -> Result<()> {
    let data = ecom_bus::events::ProductData { product_id: id, handle: handle.to_owned(), title: title.to_owned() };
    let payload = serde_json::to_value(data).map_err(|e| ServiceError::Internal(e.to_string()))?;
    ecom_store::orders::outbox(txn, tenant.id, topic.as_str(), payload).await?;
    Ok(())
}

impl Catalog {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            // Bounded by (approximate) bytes, not entries: ten thousand small stores'
            // listings weigh less than a few big ones, and both should fit.
            cache: Cache::builder()
                .weigher(|_, v: &Cached| v.approx_bytes())
                .max_capacity(96 * 1024 * 1024)
                .time_to_live(Duration::from_secs(300))
                .build(),
            generations: Arc::default(),
        }
    }

    /// The store's catalog version: changes on every catalog write. Caches of
    /// anything derived from the catalog key on it.
    pub fn generation(&self, tenant: TenantId) -> u64 {
        if let Ok(map) = self.generations.read()
            && let Some(g) = map.get(&tenant)
        {
            return g.load(Ordering::Acquire);
        }
        0
    }

    /// Drops every cached catalog read of a store (after any catalog write).
    pub fn invalidate(&self, tenant: TenantId) {
        if let Ok(mut map) = self.generations.write() {
            map.entry(tenant).or_default().fetch_add(1, Ordering::AcqRel);
        }
    }

    /// A cached read. Concurrent misses of the same key share one load, so a burst of
    /// shoppers on a page nobody has seen yet costs one set of queries, not hundreds.
    async fn cached<F, Fut>(&self, tenant: TenantId, key: String, load: F) -> Result<Cached>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Cached>>,
    {
        let key = (tenant, self.generation(tenant), key);
        self.cache.try_get_with(key, load()).await.map_err(|e| match &*e {
            ServiceError::NotFound => ServiceError::NotFound,
            other => ServiceError::Internal(other.to_string()),
        })
    }

    /// Validates, sanitises and stores a new product.
    pub async fn create_product(
        &self,
        tenant: &Tenant,
        mut draft: ProductDraft,
        category: Option<&str>,
    ) -> Result<uuid::Uuid> {
        draft.body_html = sanitize_html(&draft.body_html);
        draft.validate(tenant.currency)?;
        let txn = self.db.tenant_txn(tenant.id).await?;
        let category_id = category_id(&txn, tenant, category).await?;
        crate::plans::take_turn(&txn, tenant.id, crate::plans::Limit::Products).await?;
        let count = repo::count_products(&txn, tenant.id).await?;
        crate::plans::ensure_within_txn(&txn, tenant.id, crate::plans::Limit::Products, count + 1).await?;
        let position = i32::try_from(count).unwrap_or(i32::MAX);
        let id = repo::insert_product(&txn, tenant.id, &draft, category_id, position).await?;
        product_event(&txn, tenant, Topic::ProductCreated, id, draft.handle.as_str(), &draft.title).await?;
        txn.commit().await.map_err(StoreError::from)?;
        self.invalidate(tenant.id);
        Ok(id)
    }

    /// Validates, sanitises and saves changes to a product; `NotFound` when the id is
    /// not one of this store's products.
    pub async fn update_product(
        &self,
        tenant: &Tenant,
        id: uuid::Uuid,
        mut draft: ProductDraft,
        category: Option<&str>,
    ) -> Result<()> {
        draft.body_html = sanitize_html(&draft.body_html);
        draft.validate(tenant.currency)?;
        let txn = self.db.tenant_txn(tenant.id).await?;
        let category_id = category_id(&txn, tenant, category).await?;
        if !repo::update_product(&txn, tenant.id, id, &draft, category_id).await? {
            return Err(ServiceError::NotFound);
        }
        product_event(&txn, tenant, Topic::ProductUpdated, id, draft.handle.as_str(), &draft.title).await?;
        txn.commit().await.map_err(StoreError::from)?;
        self.invalidate(tenant.id);
        Ok(())
    }

    pub async fn set_status(&self, tenant: &Tenant, id: uuid::Uuid, status: ProductStatus) -> Result<()> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        if !repo::set_product_status(&txn, tenant.id, id, status).await? {
            return Err(ServiceError::NotFound);
        }
        if let Some((p, _)) = repo::product_by_id(&txn, tenant.id, id).await? {
            product_event(&txn, tenant, Topic::ProductUpdated, id, &p.handle, &p.title).await?;
        }
        txn.commit().await.map_err(StoreError::from)?;
        self.invalidate(tenant.id);
        Ok(())
    }

    /// Bulk price and stock edit. Prices are validated like everywhere else.
    pub async fn update_variants(&self, tenant: &Tenant, changes: &[repo::VariantChange]) -> Result<u64> {
        if let Some(bad) = changes.iter().find(|c| c.price < 0 || c.stock < 0) {
            return Err(ecom_core::Invalid::new(
                "variants",
                format!("variant {}: price and stock cannot be negative", bad.variant),
            )
            .into());
        }
        let txn = self.db.tenant_txn(tenant.id).await?;
        let n = repo::update_variants(&txn, tenant.id, changes).await?;
        txn.commit().await.map_err(StoreError::from)?;
        self.invalidate(tenant.id);
        Ok(n)
    }

    /// Adds each `(variant, delta)` to its stock, all or none: a change that would
    /// leave a variant below zero is refused (`Invalid`) and nothing changes; an id
    /// that is not one of the store's variants is `NotFound`. Returns the stock after
    /// each change.
    pub async fn adjust_stock(&self, tenant: &Tenant, changes: &[(uuid::Uuid, i32)]) -> Result<Vec<i32>> {
        if changes.is_empty() {
            return Err(ecom_core::Invalid::new("changes", "give at least one change").into());
        }
        let txn = self.db.tenant_txn(tenant.id).await?;
        match repo::adjust_stock(&txn, tenant.id, changes).await? {
            Ok(after) => {
                txn.commit().await.map_err(StoreError::from)?;
                self.invalidate(tenant.id);
                Ok(after)
            }
            // Dropping the transaction rolls back the changes made before this one.
            Err(repo::StockRefused::Missing(_)) => Err(ServiceError::NotFound),
            Err(repo::StockRefused::BelowZero { variant, available, delta }) => Err(ecom_core::Invalid::new(
                "changes",
                format!("variant {variant} has {available} in stock; a change of {delta} would take it below zero"),
            )
            .into()),
        }
    }

    /// Sets the stock of variants named by SKU to absolute levels (an inventory or
    /// warehouse system reporting what it holds), all or none. Each SKU must name one
    /// variant of the store; a level crossing the low-stock line writes `inventory.low`.
    pub async fn set_stock_levels(
        &self,
        tenant: &Tenant,
        levels: &[(String, i64)],
        actor: &str,
    ) -> Result<Vec<repo::StockLevel>> {
        const MAX_LEVELS: usize = 250;
        if levels.is_empty() || levels.len() > MAX_LEVELS {
            return Err(
                ecom_core::Invalid::new("levels", format!("give between 1 and {MAX_LEVELS} stock levels")).into()
            );
        }
        let mut seen = std::collections::HashSet::new();
        let mut checked = Vec::with_capacity(levels.len());
        for (sku, level) in levels {
            let sku = sku.trim();
            if sku.is_empty() || sku.chars().count() > 100 {
                return Err(ecom_core::Invalid::new("sku", "every level needs a SKU of at most 100 characters").into());
            }
            if !seen.insert(sku) {
                return Err(ecom_core::Invalid::new("sku", format!("SKU {sku} is given twice")).into());
            }
            let level = i32::try_from(*level).ok().filter(|l| (0..=1_000_000_000).contains(l)).ok_or_else(|| {
                ecom_core::Invalid::new("available", format!("the level for {sku} must be between 0 and 1000000000"))
            })?;
            checked.push((sku.to_owned(), level));
        }
        let txn = self.db.tenant_txn(tenant.id).await?;
        let set = match repo::set_stock_by_sku(&txn, tenant.id, &checked).await? {
            Ok(set) => set,
            Err(repo::SkuRefused::Unknown(skus)) => {
                return Err(
                    ecom_core::Invalid::new("sku", format!("no variant has the SKU {}", skus.join(", "))).into()
                );
            }
            Err(repo::SkuRefused::Ambiguous(skus)) => {
                return Err(ecom_core::Invalid::new(
                    "sku",
                    format!("more than one variant has the SKU {}; give each variant its own SKU", skus.join(", ")),
                )
                .into());
            }
        };
        for l in &set {
            inventory_low_if_crossed(&txn, tenant.id, l.variant, &l.sku, l.before, l.after).await?;
        }
        let detail = set.iter().map(|l| format!("{} {}→{}", l.sku, l.before, l.after)).collect::<Vec<_>>().join(", ");
        let detail: String = detail.chars().take(1000).collect();
        ecom_store::orders::audit(&txn, tenant.id, actor, "inventory.set", &format!("{} variants", set.len()), &detail)
            .await?;
        txn.commit().await.map_err(StoreError::from)?;
        self.invalidate(tenant.id);
        Ok(set)
    }

    /// The product (any status, with its variants) a variant belongs to.
    pub async fn product_of_variant(
        &self,
        tenant: &Tenant,
        variant: uuid::Uuid,
    ) -> Result<Option<(ProductRecord, Vec<VariantRecord>)>> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let found = match repo::variants_by_ids(&txn, tenant.id, &[variant]).await?.first() {
            Some(v) => repo::product_by_id(&txn, tenant.id, v.product_id).await?,
            None => None,
        };
        txn.commit().await.map_err(StoreError::from)?;
        Ok(found)
    }

    /// A product with its variants, any status, for the merchant panel.
    pub async fn product_for_edit(
        &self,
        tenant: &Tenant,
        id: uuid::Uuid,
    ) -> Result<Option<(ProductRecord, Vec<VariantRecord>)>> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let found = repo::product_by_id(&txn, tenant.id, id).await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(found)
    }

    /// The merchant's product list: search, status filter, pages of 50 (not cached:
    /// merchants expect to see their own writes and the list is not on the hot path).
    pub async fn merchant_products(
        &self,
        tenant: &Tenant,
        search: Option<String>,
        status: Option<ProductStatus>,
        page: u64,
    ) -> Result<(Vec<(ProductRecord, Vec<VariantRecord>)>, u64)> {
        let listing = Listing {
            status,
            search,
            sort: ProductSort::TitleAsc,
            limit: 50,
            offset: page.saturating_sub(1) * 50,
            ..Default::default()
        };
        let txn = self.db.tenant_txn(tenant.id).await?;
        let (rows, total) = repo::list_products(&txn, tenant.id, &listing).await?;
        let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id).collect();
        let mut variants = repo::variants_of(&txn, tenant.id, &ids).await?;
        txn.commit().await.map_err(StoreError::from)?;
        let out = rows
            .into_iter()
            .map(|p| {
                let (mine, rest): (Vec<_>, Vec<_>) =
                    std::mem::take(&mut variants).into_iter().partition(|(pid, _)| *pid == p.id);
                variants = rest;
                (p, mine.into_iter().map(|(_, v)| v).collect())
            })
            .collect();
        Ok((out, total))
    }

    /// A window of the merchant's products by position, for the merchant API's cursor
    /// pages: any status (archived too) unless `status` picks one, `search` as in the
    /// panel, from `offset`, at most `limit` (capped at 250), in `sort` order or its
    /// exact reverse. Returns the products with variants and how many match in all.
    pub async fn merchant_product_window(
        &self,
        tenant: &Tenant,
        w: MerchantWindow,
    ) -> Result<(Vec<(ProductRecord, Vec<VariantRecord>)>, u64)> {
        let MerchantWindow { search, status, sort, reverse, offset, limit } = w;
        let mut listing = Listing {
            status,
            include_archived: true,
            search,
            sort,
            limit: limit.min(250),
            offset,
            ..Default::default()
        };
        let txn = self.db.tenant_txn(tenant.id).await?;
        let (mut rows, total) = if reverse {
            // The reverse of the forward order, so ties break the same way both ways.
            let (_, total) =
                repo::list_products(&txn, tenant.id, &Listing { limit: 0, offset: 0, ..listing.clone() }).await?;
            let end = total.saturating_sub(offset);
            listing.offset = end.saturating_sub(listing.limit);
            listing.limit = end - listing.offset;
            let rows =
                if listing.limit == 0 { Vec::new() } else { repo::list_products(&txn, tenant.id, &listing).await?.0 };
            (rows, total)
        } else {
            repo::list_products(&txn, tenant.id, &listing).await?
        };
        if reverse {
            rows.reverse();
        }
        let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id).collect();
        let variants = repo::variants_of(&txn, tenant.id, &ids).await?;
        txn.commit().await.map_err(StoreError::from)?;
        let mut by_product: HashMap<uuid::Uuid, Vec<VariantRecord>> = HashMap::new();
        for (pid, v) in variants {
            by_product.entry(pid).or_default().push(v);
        }
        Ok((
            rows.into_iter().map(|p| (by_product.remove(&p.id).unwrap_or_default(), p)).map(|(v, p)| (p, v)).collect(),
            total,
        ))
    }

    /// Imports products read from a CSV file in one transaction: all of them or none.
    /// A product whose handle exists is updated (so a re-import or a round trip does
    /// not duplicate), others are created. `progress(done, total)` is called as it goes.
    /// The images the file names are returned in the summary, for
    /// [`Catalog::attach_imported_images`] once the products are saved.
    pub async fn import_products(
        &self,
        tenant: &Tenant,
        products: Vec<crate::catalog_csv::ImportedProduct>,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<ImportSummary> {
        let total = products.len();
        let txn = self.db.tenant_txn(tenant.id).await?;
        crate::plans::take_turn(&txn, tenant.id, crate::plans::Limit::Products).await?;
        let existing = repo::count_products(&txn, tenant.id).await?;
        let new_products = self.new_handles(&txn, tenant, &products).await?;
        // All or none: refused before anything is written when the new ones do not fit.
        crate::plans::ensure_within_txn(&txn, tenant.id, crate::plans::Limit::Products, existing + new_products)
            .await
            .map_err(|e| match e {
                ServiceError::PlanLimit { limit, message } => ServiceError::PlanLimit {
                    limit,
                    message: format!(
                        "The file adds {new_products} new product{} to the {existing} this store has, and nothing was imported. {message}",
                        if new_products == 1 { "" } else { "s" }
                    ),
                },
                other => other,
            })?;
        let mut position = i32::try_from(existing).unwrap_or(i32::MAX);
        let mut summary = ImportSummary::default();
        for (i, imported) in products.into_iter().enumerate() {
            let mut draft = imported.draft;
            draft.body_html = sanitize_html(&draft.body_html);
            draft
                .validate(tenant.currency)
                .map_err(|e| ecom_core::Invalid::new("file", format!("line {}: {}", imported.line, e)))?;
            let (id, topic) = match repo::product_by_handle(&txn, tenant.id, draft.handle.as_str()).await? {
                Some((existing, _)) => {
                    repo::update_product(&txn, tenant.id, existing.id, &draft, existing.category_id).await?;
                    summary.updated += 1;
                    (existing.id, Topic::ProductUpdated)
                }
                None => {
                    let id = repo::insert_product(&txn, tenant.id, &draft, None, position).await?;
                    position = position.saturating_add(1);
                    summary.created += 1;
                    (id, Topic::ProductCreated)
                }
            };
            product_event(&txn, tenant, topic, id, draft.handle.as_str(), &draft.title).await?;
            if !imported.images.is_empty() {
                summary
                    .pending_images
                    .push(crate::catalog_images::PendingImages { product: id, images: imported.images });
            }
            progress(i + 1, total);
        }
        txn.commit().await.map_err(StoreError::from)?;
        self.invalidate(tenant.id);
        if let Err(e) = self.db.analyze(&["products", "variants", "product_facets", "collection_products"]).await {
            tracing::warn!(error = %e, "refreshing planner statistics after the import failed");
        }
        Ok(summary)
    }

    /// How many of an import's products (distinct handles) the store does not have yet.
    async fn new_handles(
        &self,
        txn: &ecom_store::DatabaseTransaction,
        tenant: &Tenant,
        products: &[crate::catalog_csv::ImportedProduct],
    ) -> Result<u64> {
        let handles: std::collections::HashSet<String> =
            products.iter().map(|p| p.draft.handle.as_str().to_owned()).collect();
        let handles: Vec<String> = handles.into_iter().collect();
        let mut known = 0usize;
        for chunk in handles.chunks(500) {
            known += repo::existing_handles(txn, tenant.id, chunk).await?;
        }
        Ok((handles.len() - known.min(handles.len())) as u64)
    }

    /// Every product of the store, archived ones too, with variants.
    pub async fn export_products(&self, tenant: &Tenant) -> Result<Vec<(ProductRecord, Vec<VariantRecord>)>> {
        Ok(self.export(tenant, false).await?.into_iter().map(|e| (e.product, e.variants)).collect())
    }

    /// Every product of the store, archived ones too, with variants and images: for
    /// CSV export. A fixed number of queries, however large the catalog.
    pub async fn export_catalog(&self, tenant: &Tenant) -> Result<Vec<crate::catalog_csv::ExportedProduct>> {
        self.export(tenant, true).await
    }

    async fn export(&self, tenant: &Tenant, with_images: bool) -> Result<Vec<crate::catalog_csv::ExportedProduct>> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let listing =
            Listing { include_archived: true, sort: ProductSort::TitleAsc, limit: u64::MAX >> 1, ..Default::default() };
        let (rows, _) = repo::list_products(&txn, tenant.id, &listing).await?;
        let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id).collect();
        let variants = repo::variants_of(&txn, tenant.id, &ids).await?;
        let images = if with_images { repo::images_of_store(&txn, tenant.id).await? } else { Vec::new() };
        txn.commit().await.map_err(StoreError::from)?;
        let mut by_product: HashMap<uuid::Uuid, Vec<VariantRecord>> = HashMap::new();
        for (pid, v) in variants {
            by_product.entry(pid).or_default().push(v);
        }
        let mut images_by_product: HashMap<uuid::Uuid, Vec<ImageRecord>> = HashMap::new();
        for image in images {
            images_by_product.entry(image.product_id).or_default().push(image);
        }
        Ok(rows
            .into_iter()
            .map(|p| crate::catalog_csv::ExportedProduct {
                variants: by_product.remove(&p.id).unwrap_or_default(),
                images: images_by_product.remove(&p.id).unwrap_or_default(),
                product: p,
            })
            .collect())
    }

    /// Refuses an upload of `incoming` bytes that the store's plan has no room for:
    /// checked before the file is stored (and again when it is recorded).
    pub async fn ensure_storage_for(&self, tenant: &Tenant, incoming: u64) -> Result<()> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let used = ecom_store::plans::storage_bytes(&txn, tenant.id).await?;
        let result = crate::plans::ensure_within_txn(
            &txn,
            tenant.id,
            crate::plans::Limit::Storage,
            used.saturating_add(incoming),
        )
        .await;
        txn.commit().await.map_err(StoreError::from)?;
        result
    }

    /// Records an image already stored in media storage (`bytes` its size) as the
    /// product's last image, within the plan's storage.
    #[expect(clippy::too_many_arguments, reason = "an image's stored fields, each a plain value")]
    pub async fn add_image(
        &self,
        tenant: &Tenant,
        product: uuid::Uuid,
        hash: &str,
        ext: &str,
        size: (u32, u32),
        alt: &str,
        bytes: u64,
    ) -> Result<uuid::Uuid> {
        let alt = alt.trim();
        if alt.chars().count() > MAX_ALT_CHARS {
            return Err(ecom_core::Invalid::new("alt", format!("use at most {MAX_ALT_CHARS} characters")).into());
        }
        let txn = self.db.tenant_txn(tenant.id).await?;
        crate::plans::take_turn(&txn, tenant.id, crate::plans::Limit::Storage).await?;
        let used = ecom_store::plans::storage_bytes(&txn, tenant.id).await?;
        crate::plans::ensure_within_txn(&txn, tenant.id, crate::plans::Limit::Storage, used.saturating_add(bytes))
            .await?;
        let id = repo::insert_image(&txn, tenant.id, product, hash, ext, size, alt, bytes)
            .await?
            .ok_or(ServiceError::NotFound)?;
        txn.commit().await.map_err(StoreError::from)?;
        self.invalidate(tenant.id);
        Ok(id)
    }

    pub async fn delete_image(&self, tenant: &Tenant, product: uuid::Uuid, image: uuid::Uuid) -> Result<()> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        if !repo::delete_image(&txn, tenant.id, product, image).await? {
            return Err(ServiceError::NotFound);
        }
        txn.commit().await.map_err(StoreError::from)?;
        self.invalidate(tenant.id);
        Ok(())
    }

    /// A product's images, for the merchant panel.
    pub async fn images(&self, tenant: &Tenant, product: uuid::Uuid) -> Result<Vec<ImageView>> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let rows = repo::images_of(&txn, tenant.id, &[product]).await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(rows.iter().map(ImageView::from).collect())
    }

    pub async fn categories(&self, tenant: &Tenant) -> Result<Arc<Vec<CategoryRecord>>> {
        self.category_records(tenant).await
    }

    pub async fn create_collection(
        &self,
        tenant: &Tenant,
        title: &str,
        body_html: &str,
        rules: Option<Vec<CollectionRule>>,
        products: &[uuid::Uuid],
    ) -> Result<uuid::Uuid> {
        let title = title.trim();
        if title.is_empty() {
            return Err(ecom_core::Invalid::new("title", "enter a title").into());
        }
        let handle = Handle::from_title(title)?;
        let txn = self.db.tenant_txn(tenant.id).await?;
        let position = i32::try_from(repo::list_collections(&txn, tenant.id).await?.len()).unwrap_or(i32::MAX);
        let id = repo::insert_collection(
            &txn,
            tenant.id,
            handle.as_str(),
            title,
            &sanitize_html(body_html),
            rules.as_deref(),
            position,
        )
        .await?;
        if rules.is_none() {
            repo::add_to_collection(&txn, tenant.id, id, products).await?;
        }
        txn.commit().await.map_err(StoreError::from)?;
        self.invalidate(tenant.id);
        Ok(id)
    }

    /// Product ids for handles typed by a merchant, in the order given; unknown
    /// handles are an error naming them.
    pub async fn ids_for_handles(&self, tenant: &Tenant, handles: &[String]) -> Result<Vec<uuid::Uuid>> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let found = repo::ids_by_handles(&txn, tenant.id, handles).await?;
        txn.commit().await.map_err(StoreError::from)?;
        let missing: Vec<&str> =
            handles.iter().filter(|h| !found.iter().any(|(f, _)| f == *h)).map(String::as_str).collect();
        if !missing.is_empty() {
            return Err(ecom_core::Invalid::new(
                "products",
                format!("no product with the handle {}", missing.join(", ")),
            )
            .into());
        }
        Ok(handles.iter().filter_map(|h| found.iter().find(|(f, _)| f == h).map(|(_, id)| *id)).collect())
    }

    pub async fn create_category(&self, tenant: &Tenant, parent: Option<uuid::Uuid>, name: &str) -> Result<uuid::Uuid> {
        let handle = Handle::from_title(name)?;
        let txn = self.db.tenant_txn(tenant.id).await?;
        let position = i32::try_from(repo::list_categories(&txn, tenant.id).await?.len()).unwrap_or(i32::MAX);
        let id = repo::insert_category(&txn, tenant.id, parent, handle.as_str(), name.trim(), position).await?;
        txn.commit().await.map_err(StoreError::from)?;
        self.invalidate(tenant.id);
        Ok(id)
    }

    /// An active product's page, or `None`.
    pub async fn product(&self, tenant: &Tenant, handle: &str) -> Result<Option<Arc<ProductView>>> {
        let (db, t, h) = (self.db.clone(), tenant.clone(), handle.to_owned());
        let hit = self
            .cached(tenant.id, format!("p:{handle}"), || async move {
                let txn = db.tenant_txn(t.id).await?;
                let found =
                    repo::product_by_handle(&txn, t.id, &h).await?.filter(|(p, _)| p.status == ProductStatus::Active);
                let images = match &found {
                    Some((p, _)) => repo::images_of(&txn, t.id, &[p.id]).await?,
                    None => Vec::new(),
                };
                txn.commit().await.map_err(StoreError::from)?;
                Ok(Cached::Product(found.map(|(p, v)| Arc::new(product_view(p, v, &images, &t)))))
            })
            .await?;
        match hit {
            Cached::Product(p) => Ok(p),
            _ => Err(ServiceError::Internal("catalog cache held the wrong kind of entry".into())),
        }
    }

    /// Active products by handle, in the order asked (`None` where there is none): read
    /// from the cache, with every miss loaded together in three queries, whatever
    /// their number (for API pages, where one query per product would add up).
    pub async fn products(&self, tenant: &Tenant, handles: &[String]) -> Result<Vec<Option<Arc<ProductView>>>> {
        let generation = self.generation(tenant.id);
        let key = |h: &str| (tenant.id, generation, format!("p:{h}"));
        let mut out = vec![None; handles.len()];
        let mut missing = Vec::new();
        for (i, h) in handles.iter().enumerate() {
            match self.cache.get(&key(h)).await {
                Some(Cached::Product(p)) => out[i] = p,
                _ => missing.push(i),
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let wanted: Vec<String> = missing.iter().map(|i| handles[*i].clone()).collect();
        let txn = self.db.tenant_txn(tenant.id).await?;
        let found = repo::products_by_handles(&txn, tenant.id, &wanted).await?;
        let ids: Vec<uuid::Uuid> = found.iter().map(|(p, _)| p.id).collect();
        let images = if ids.is_empty() { Vec::new() } else { repo::images_of(&txn, tenant.id, &ids).await? };
        txn.commit().await.map_err(StoreError::from)?;
        let mut views: HashMap<String, Arc<ProductView>> = HashMap::new();
        for (p, variants) in found.into_iter().filter(|(p, _)| p.status == ProductStatus::Active) {
            let mine: Vec<ImageRecord> = images.iter().filter(|i| i.product_id == p.id).cloned().collect();
            let handle = p.handle.clone();
            views.insert(handle, Arc::new(product_view(p, variants, &mine, tenant)));
        }
        for i in missing {
            let view = views.get(&handles[i]).cloned();
            self.cache.insert(key(&handles[i]), Cached::Product(view.clone())).await;
            out[i] = view;
        }
        Ok(out)
    }

    /// The collections each product is in, by product id: hand-picked ones from one
    /// query for all the products, rule-based ones worked out from the product.
    pub async fn collections_of(
        &self,
        tenant: &Tenant,
        products: &[Arc<ProductView>],
    ) -> Result<HashMap<String, Vec<CollectionRecord>>> {
        let all = self.collections(tenant).await?;
        let ids: Vec<uuid::Uuid> = products.iter().filter_map(|p| uuid::Uuid::parse_str(&p.id).ok()).collect();
        let manual = if all.iter().any(|c| c.rules.is_none()) && !ids.is_empty() {
            let txn = self.db.tenant_txn(tenant.id).await?;
            let pairs = repo::manual_memberships(&txn, tenant.id, &ids).await?;
            txn.commit().await.map_err(StoreError::from)?;
            pairs
        } else {
            Vec::new()
        };
        Ok(products
            .iter()
            .map(|p| {
                let price_min = p.variants.iter().map(|v| v.price_minor).min().unwrap_or(0);
                let member = |c: &CollectionRecord| match &c.rules {
                    None => manual.iter().any(|(pid, cid)| pid.to_string() == p.id && *cid == c.id),
                    Some(rules) => rules.iter().all(|r| r.matches(&p.tags, &p.product_type, &p.vendor, price_min)),
                };
                (p.id.clone(), all.iter().filter(|c| member(c)).cloned().collect())
            })
            .collect())
    }

    pub async fn collections(&self, tenant: &Tenant) -> Result<Arc<Vec<CollectionRecord>>> {
        let (db, id) = (self.db.clone(), tenant.id);
        match self
            .cached(tenant.id, "collections".into(), || async move {
                let txn = db.tenant_txn(id).await?;
                let all = repo::list_collections(&txn, id).await?;
                txn.commit().await.map_err(StoreError::from)?;
                Ok(Cached::Collections(Arc::new(all)))
            })
            .await?
        {
            Cached::Collections(c) => Ok(c),
            _ => Err(ServiceError::Internal("catalog cache held the wrong kind of entry".into())),
        }
    }

    async fn category_records(&self, tenant: &Tenant) -> Result<Arc<Vec<CategoryRecord>>> {
        let (db, id) = (self.db.clone(), tenant.id);
        match self
            .cached(tenant.id, "categories".into(), || async move {
                let txn = db.tenant_txn(id).await?;
                let all = repo::list_categories(&txn, id).await?;
                txn.commit().await.map_err(StoreError::from)?;
                Ok(Cached::Categories(Arc::new(all)))
            })
            .await?
        {
            Cached::Categories(c) => Ok(c),
            _ => Err(ServiceError::Internal("catalog cache held the wrong kind of entry".into())),
        }
    }

    /// The category tree for navigation.
    pub async fn category_tree(&self, tenant: &Tenant) -> Result<Vec<CategoryNode>> {
        let all = self.category_records(tenant).await?;
        fn children(all: &[CategoryRecord], parent: Option<uuid::Uuid>, depth: usize) -> Vec<CategoryNode> {
            if depth > 8 {
                return Vec::new();
            }
            all.iter()
                .filter(|c| c.parent_id == parent)
                .map(|c| CategoryNode {
                    handle: c.handle.clone(),
                    name: c.name.clone(),
                    children: children(all, Some(c.id), depth + 1),
                })
                .collect()
        }
        Ok(children(&all, None, 0))
    }

    /// The collection and category ids a listing is limited to; `None` when the
    /// collection or category does not exist.
    async fn listing_scope(
        &self,
        tenant: &Tenant,
        q: &ListingQuery,
    ) -> Result<Option<(Option<CollectionRecord>, Vec<uuid::Uuid>)>> {
        let collection = match &q.collection {
            Some(h) => match self.collections(tenant).await?.iter().find(|c| &c.handle == h) {
                Some(c) => Some(c.clone()),
                None => return Ok(None),
            },
            None => None,
        };
        let category_ids = match &q.category {
            Some(h) => {
                let all = self.category_records(tenant).await?;
                let Some(root) = all.iter().find(|c| &c.handle == h) else { return Ok(None) };
                let mut ids = vec![root.id];
                let mut i = 0;
                while i < ids.len() && ids.len() < 10_000 {
                    let parent = ids[i];
                    ids.extend(all.iter().filter(|c| c.parent_id == Some(parent)).map(|c| c.id));
                    i += 1;
                }
                ids
            }
            None => Vec::new(),
        };
        Ok(Some((collection, category_ids)))
    }

    /// A listing page; `None` when the collection or category does not exist.
    pub async fn listing(&self, tenant: &Tenant, q: &ListingQuery) -> Result<Option<Arc<ListingView>>> {
        let Some((collection, category_ids)) = self.listing_scope(tenant, q).await? else { return Ok(None) };
        let page = q.page.max(1);
        let listing = Listing {
            include_archived: false,
            status: Some(ProductStatus::Active),
            collection,
            category_ids,
            facets: q.facets.clone(),
            price_at_least: q.price_at_least,
            price_at_most: q.price_at_most,
            search: q.search.clone(),
            sort: q.sort,
            limit: PAGE_SIZE,
            offset: (page - 1).saturating_mul(PAGE_SIZE),
        };
        let (db, t, selected) = (self.db.clone(), tenant.clone(), q.facets.clone());
        let hit = self
            .cached(tenant.id, format!("l:{q:?}"), || async move {
                let txn = db.tenant_txn(t.id).await?;
                let (rows, total) = repo::list_products(&txn, t.id, &listing).await?;
                let counts = repo::facet_counts(&txn, t.id, &listing, "option:").await?;
                let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id).collect();
                let images = repo::images_of(&txn, t.id, &ids).await?;
                txn.commit().await.map_err(StoreError::from)?;
                let mut facets: Vec<FacetGroup> = Vec::new();
                for (key, value, count) in counts {
                    let is_selected = selected.iter().any(|(k, vs)| k == &key && vs.contains(&value));
                    match facets.last_mut() {
                        Some(g) if g.key == key => g.values.push(FacetValue { value, count, selected: is_selected }),
                        _ => facets.push(FacetGroup {
                            name: key.trim_start_matches("option:").to_owned(),
                            key,
                            values: vec![FacetValue { value, count, selected: is_selected }],
                        }),
                    }
                }
                Ok(Cached::Listing(Some(Arc::new(ListingView {
                    products: rows.iter().map(|p| card(p, images.iter().find(|i| i.product_id == p.id), &t)).collect(),
                    total,
                    page,
                    pages: total.div_ceil(PAGE_SIZE).max(1),
                    facets,
                }))))
            })
            .await?;
        match hit {
            Cached::Listing(l) => Ok(l),
            _ => Err(ServiceError::Internal("catalog cache held the wrong kind of entry".into())),
        }
    }

    /// A window of a listing by position rather than page (`q.page` is ignored), for
    /// APIs that page with cursors: active products from `offset`, at most `limit`
    /// (capped at 250), in `q.sort` order or its exact reverse. `None` when the
    /// collection or category does not exist.
    pub async fn listing_window(
        &self,
        tenant: &Tenant,
        q: &ListingQuery,
        offset: u64,
        limit: u64,
        reverse: bool,
    ) -> Result<Option<Arc<ListingWindow>>> {
        let key = format!("w:{q:?}:{offset}:{limit}:{reverse}");
        let (this, t, q) = (self.clone(), tenant.clone(), q.clone());
        let hit = self
            .cached(tenant.id, key, || async move {
                let found = this.load_window(&t, &q, offset, limit, reverse).await?;
                Ok(Cached::Window(found.map(Arc::new)))
            })
            .await?;
        match hit {
            Cached::Window(w) => Ok(w),
            _ => Err(ServiceError::Internal("catalog cache held the wrong kind of entry".into())),
        }
    }

    async fn load_window(
        &self,
        tenant: &Tenant,
        q: &ListingQuery,
        offset: u64,
        limit: u64,
        reverse: bool,
    ) -> Result<Option<ListingWindow>> {
        let Some((collection, category_ids)) = self.listing_scope(tenant, q).await? else { return Ok(None) };
        let mut listing = Listing {
            include_archived: false,
            status: Some(ProductStatus::Active),
            collection,
            category_ids,
            facets: q.facets.clone(),
            price_at_least: q.price_at_least,
            price_at_most: q.price_at_most,
            search: q.search.clone(),
            sort: q.sort,
            limit: limit.min(250),
            offset,
        };
        let txn = self.db.tenant_txn(tenant.id).await?;
        let (rows, total) = if reverse {
            // The reverse of the forward order, so ties break the same way both ways.
            let (_, total) =
                repo::list_products(&txn, tenant.id, &Listing { limit: 0, offset: 0, ..listing.clone() }).await?;
            let end = total.saturating_sub(offset);
            listing.offset = end.saturating_sub(listing.limit);
            listing.limit = end - listing.offset;
            let (mut rows, total) = if listing.limit == 0 {
                (Vec::new(), total)
            } else {
                repo::list_products(&txn, tenant.id, &listing).await?
            };
            rows.reverse();
            (rows, total)
        } else {
            repo::list_products(&txn, tenant.id, &listing).await?
        };
        txn.commit().await.map_err(StoreError::from)?;
        Ok(Some(ListingWindow {
            products: rows.into_iter().map(|r| ProductRef { id: r.id, handle: r.handle }).collect(),
            total,
        }))
    }

    /// An active product's page by id, or `None` (also for another store's id).
    pub async fn product_by_id(&self, tenant: &Tenant, id: uuid::Uuid) -> Result<Option<Arc<ProductView>>> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let found = repo::product_by_id(&txn, tenant.id, id).await?;
        txn.commit().await.map_err(StoreError::from)?;
        match found {
            Some((p, _)) if p.status == ProductStatus::Active => self.product(tenant, &p.handle).await,
            _ => Ok(None),
        }
    }

    /// The active product a variant belongs to, or `None`.
    pub async fn active_product_of_variant(
        &self,
        tenant: &Tenant,
        variant: uuid::Uuid,
    ) -> Result<Option<Arc<ProductView>>> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let found = repo::variants_by_ids(&txn, tenant.id, &[variant]).await?;
        txn.commit().await.map_err(StoreError::from)?;
        match found.first() {
            Some(v) if v.product_status == ProductStatus::Active => self.product(tenant, &v.product_handle).await,
            _ => Ok(None),
        }
    }

    /// Active products' handles with their last change, for the sitemap.
    pub async fn sitemap_entries(&self, tenant: &Tenant) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let rows = repo::active_handles(&txn, tenant.id).await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merchant_html_is_sanitised() {
        let clean = sanitize_html(
            r#"<p onclick="x()">Hi <script>alert(1)</script><a href="javascript:alert(1)">x</a><b>bold</b></p>"#,
        );
        assert!(!clean.contains("script") && !clean.contains("onclick") && !clean.contains("javascript"), "{clean}");
        assert!(clean.contains("<b>bold</b>"));
        assert_eq!(plain_text("<p>Soft &amp; warm</p>\n<ul><li>wool</li></ul>", 160), "Soft & warm wool");
        assert_eq!(plain_text("<p>abcdefghij</p>", 5), "abcd…");
    }
}
