//! The Storefront API's read side, in Shopify's Storefront API names and shapes:
//! the shop, products (connection, search, sort), a product by handle or id, and
//! collections. Every resolver reads through `ecom_services::Catalog`.

use super::ids::Kind;
use super::{Store, error, service_error};
use async_graphql::connection::{Connection, CursorType, Edge};
use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{
    Context, EmptySubscription, Enum, ID, InputValueError, InputValueResult, MergedObject, Object, Result, Scalar,
    ScalarType, Schema, SimpleObject, Value,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ecom_core::Money;
use ecom_core::catalog::ProductSort;
use ecom_services::catalog::{ImageView, ListingQuery, ProductView, VariantView, description_text};
use ecom_store::catalog::CollectionRecord;
use std::collections::HashMap;
use std::sync::Arc;

/// Queries nested deeper than this are refused before they run. GraphiQL's and
/// Apollo's schema introspection query is 13 levels deep.
pub const MAX_DEPTH: usize = 15;
/// Queries costing more than this are refused before they run: a field costs 1, a
/// connection `first` times what one of its nodes costs.
pub const MAX_COMPLEXITY: usize = 5_000;
/// Items in a connection page when `first` is not given.
const DEFAULT_FIRST: i32 = 20;
/// Most items in one connection page.
const MAX_FIRST: i32 = 250;

pub type StorefrontSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Everything the Storefront API can read.
#[derive(MergedObject, Default)]
pub struct QueryRoot(CatalogQuery, super::storefront_cart::CartQuery, super::storefront_customer::CustomerQuery);

/// Everything the Storefront API can change.
#[derive(MergedObject, Default)]
pub struct MutationRoot(super::storefront_cart::CartMutation, super::storefront_customer::CustomerMutation);

/// The schema, with its depth and complexity limits.
pub fn schema() -> StorefrontSchema {
    Schema::build(QueryRoot::default(), MutationRoot::default(), EmptySubscription)
        .extension(super::cost::CostMeter)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

macro_rules! string_scalar {
    ($(#[$doc:meta])* $name:ident, $gql:literal) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(pub String);

        #[Scalar(name = $gql)]
        impl ScalarType for $name {
            fn parse(value: Value) -> InputValueResult<Self> {
                match value {
                    Value::String(s) => Ok(Self(s)),
                    other => Err(InputValueError::expected_type(other)),
                }
            }

            fn to_value(&self) -> Value {
                Value::String(self.0.clone())
            }
        }
    };
}

string_scalar!(
    /// A decimal amount as a string, e.g. `"25.00"`: never a float.
    Decimal,
    "Decimal"
);
string_scalar!(
    /// An HTML fragment (sanitised merchant HTML).
    Html,
    "HTML"
);
string_scalar!(
    /// An absolute URL.
    Url,
    "URL"
);

/// A position in a list, opaque to clients.
pub struct Cursor(pub(super) u64);

impl CursorType for Cursor {
    type Error = &'static str;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        const BAD: &str = "not a cursor this API gave out";
        let bytes = URL_SAFE_NO_PAD.decode(s.trim()).map_err(|_| BAD)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| BAD)?;
        text.strip_prefix("pos:").and_then(|n| n.parse().ok()).map(Self).ok_or(BAD)
    }

    fn encode_cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("pos:{}", self.0))
    }
}

/// The offset and size of the page `first`/`after` ask for.
pub(super) fn window(first: Option<i32>, after: Option<&str>) -> Result<(u64, u64)> {
    let first = first.unwrap_or(DEFAULT_FIRST);
    if !(0..=MAX_FIRST).contains(&first) {
        return Err(error("VALIDATION", format!("first must be between 0 and {MAX_FIRST}, not {first}")));
    }
    let offset = match after {
        Some(a) => Cursor::decode_cursor(a).map_err(|e| error("VALIDATION", format!("after: {e}")))?.0 + 1,
        None => 0,
    };
    Ok((offset, u64::try_from(first).unwrap_or(0)))
}

/// A page of an in-memory list as a connection.
pub(super) fn slice_connection<T, N: async_graphql::OutputType>(
    items: &[T],
    first: Option<i32>,
    after: Option<&str>,
    node: impl Fn(&T) -> N,
) -> Result<Connection<Cursor, N>> {
    let (offset, limit) = window(first, after)?;
    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(items.len());
    let end = start.saturating_add(usize::try_from(limit).unwrap_or(usize::MAX)).min(items.len());
    let mut conn = Connection::new(start > 0, end < items.len());
    conn.edges.extend((start..end).map(|i| Edge::new(Cursor(i as u64), node(&items[i]))));
    Ok(conn)
}

/// How `products` can be sorted.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ProductSortKeys {
    /// By title, A–Z.
    Title,
    /// By lowest price, low to high.
    Price,
    /// By creation, oldest first.
    CreatedAt,
    /// The store's own order (no sales ranking yet).
    BestSelling,
    /// The store's own order.
    Relevance,
}

/// How a collection's products can be sorted.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ProductCollectionSortKeys {
    Title,
    Price,
    /// By creation, oldest first.
    Created,
    BestSelling,
    Manual,
    CollectionDefault,
    Relevance,
}

/// The listing order and whether to walk it backwards.
fn product_sort(key: ProductSortKeys, reverse: bool) -> (ProductSort, bool) {
    match key {
        ProductSortKeys::Title => (ProductSort::TitleAsc, reverse),
        ProductSortKeys::Price => (ProductSort::PriceAsc, reverse),
        // Newest is "created, descending": oldest first is its reverse.
        ProductSortKeys::CreatedAt => (ProductSort::Newest, !reverse),
        ProductSortKeys::BestSelling | ProductSortKeys::Relevance => (ProductSort::Featured, reverse),
    }
}

fn collection_sort(key: ProductCollectionSortKeys, reverse: bool) -> (ProductSort, bool) {
    product_sort(
        match key {
            ProductCollectionSortKeys::Title => ProductSortKeys::Title,
            ProductCollectionSortKeys::Price => ProductSortKeys::Price,
            ProductCollectionSortKeys::Created => ProductSortKeys::CreatedAt,
            ProductCollectionSortKeys::BestSelling
            | ProductCollectionSortKeys::Manual
            | ProductCollectionSortKeys::CollectionDefault
            | ProductCollectionSortKeys::Relevance => ProductSortKeys::Relevance,
        },
        reverse,
    )
}

/// A page of products of a listing; `None` when its collection does not exist.
async fn product_connection(
    ctx: &Context<'_>,
    q: ListingQuery,
    first: Option<i32>,
    after: Option<&str>,
    reverse: bool,
) -> Result<Option<Connection<Cursor, Product>>> {
    let store = ctx.data::<Store>()?;
    let (offset, limit) = window(first, after)?;
    let catalog = &store.state.catalog;
    let Some(found) = catalog.listing_window(&store.tenant, &q, offset, limit, reverse).await.map_err(service_error)?
    else {
        return Ok(None);
    };
    let shown = offset.saturating_add(found.products.len() as u64);
    let mut conn = Connection::new(offset > 0 && found.total > 0, shown < found.total);
    // One batch for the page: cached views, with every miss loaded together.
    let handles: Vec<String> = found.products.iter().map(|p| p.handle.clone()).collect();
    let views = catalog.products(&store.tenant, &handles).await.map_err(service_error)?;
    // When the query asks for the products' collections, load them for the whole page
    // now, in one go; each product's field then reads the loader's cache. (Left to
    // the loader's own batching window, a slow machine splits the page into batches.)
    let look = ctx.look_ahead();
    if look.field("nodes").field("collections").exists()
        || look.field("edges").field("node").field("collections").exists()
    {
        let loader = ctx.data::<CollectionsData>()?;
        loader.load_many(views.iter().flatten().map(|v| ProductKey(v.clone()))).await?;
    }
    for (i, view) in views.into_iter().enumerate() {
        if let Some(view) = view {
            conn.edges.push(Edge::new(Cursor(offset + i as u64), Product(view)));
        }
    }
    Ok(Some(conn))
}

pub(super) fn uuid_of(id: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(id).map_err(|_| error("INTERNAL", "internal error"))
}

pub(super) fn money(store: &Store, minor: i64) -> MoneyV2 {
    let m = Money::new(minor, store.tenant.currency);
    MoneyV2 { amount: Decimal(m.decimal()), currency_code: m.currency.code().to_owned() }
}

#[derive(Default)]
pub struct CatalogQuery;

#[Object]
impl CatalogQuery {
    /// The store this host serves.
    async fn shop(&self, ctx: &Context<'_>) -> Result<Shop> {
        Ok(Shop::of(ctx.data::<Store>()?))
    }

    /// The store's active products. `query` searches titles, vendors, types, tags and
    /// option values.
    #[graphql(complexity = "1 + first.unwrap_or(20).clamp(0, 250) as usize * child_complexity")]
    async fn products(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        query: Option<String>,
        sort_key: Option<ProductSortKeys>,
        reverse: Option<bool>,
    ) -> Result<Connection<Cursor, Product>> {
        let (sort, backwards) =
            product_sort(sort_key.unwrap_or(ProductSortKeys::BestSelling), reverse.unwrap_or(false));
        let q = ListingQuery { search: query.filter(|q| !q.trim().is_empty()), sort, ..ListingQuery::default() };
        product_connection(ctx, q, first, after.as_deref(), backwards)
            .await?
            .ok_or_else(|| error("INTERNAL", "internal error"))
    }

    /// An active product by handle or by id (one of them). `null` with a `NOT_FOUND`
    /// error when there is none: another store's id is not found either.
    async fn product(&self, ctx: &Context<'_>, handle: Option<String>, id: Option<ID>) -> Result<Option<Product>> {
        let store = ctx.data::<Store>()?;
        let catalog = &store.state.catalog;
        let found = match (handle, id) {
            (Some(handle), None) => catalog.product(&store.tenant, &handle).await.map_err(service_error)?,
            (None, Some(id)) => match store.ids.decode(store.tenant.id, Kind::Product, &id) {
                Some(uuid) => catalog.product_by_id(&store.tenant, uuid).await.map_err(service_error)?,
                None => None,
            },
            _ => return Err(error("VALIDATION", "give either handle or id")),
        };
        found.map(|p| Some(Product(p))).ok_or_else(|| error("NOT_FOUND", "there is no such product"))
    }

    /// The store's collections.
    #[graphql(complexity = "1 + first.unwrap_or(20).clamp(0, 250) as usize * child_complexity")]
    async fn collections(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, Collection>> {
        let store = ctx.data::<Store>()?;
        let all = store.state.catalog.collections(&store.tenant).await.map_err(service_error)?;
        slice_connection(&all, first, after.as_deref(), |c| Collection(c.clone()))
    }

    /// A collection by handle. `null` with a `NOT_FOUND` error when there is none.
    async fn collection(&self, ctx: &Context<'_>, handle: String) -> Result<Option<Collection>> {
        let store = ctx.data::<Store>()?;
        let all = store.state.catalog.collections(&store.tenant).await.map_err(service_error)?;
        all.iter()
            .find(|c| c.handle == handle)
            .map(|c| Some(Collection(c.clone())))
            .ok_or_else(|| error("NOT_FOUND", "there is no such collection"))
    }
}

/// The store.
#[derive(SimpleObject)]
pub struct Shop {
    name: String,
    /// The ISO 4217 code of the store's currency.
    currency_code: String,
    primary_domain: Domain,
}

impl Shop {
    pub(super) fn of(store: &Store) -> Self {
        Self {
            name: store.tenant.name.clone(),
            currency_code: store.tenant.currency.code().to_owned(),
            primary_domain: Domain { host: store.host.clone(), url: Url(store.base_url()) },
        }
    }
}

/// Where the store is served.
#[derive(SimpleObject)]
pub struct Domain {
    host: String,
    url: Url,
}

/// An amount with its currency.
#[derive(SimpleObject, Clone)]
pub struct MoneyV2 {
    /// A decimal string, e.g. `"25.00"`.
    pub(super) amount: Decimal,
    /// ISO 4217, e.g. `USD`.
    pub(super) currency_code: String,
}

#[derive(SimpleObject)]
pub struct ProductPriceRange {
    min_variant_price: MoneyV2,
    max_variant_price: MoneyV2,
}

#[derive(SimpleObject)]
pub struct ProductOption {
    name: String,
    values: Vec<String>,
}

#[derive(SimpleObject)]
pub struct SelectedOption {
    name: String,
    value: String,
}

/// A product for sale.
pub struct Product(Arc<ProductView>);

#[Object]
impl Product {
    async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        let store = ctx.data::<Store>()?;
        Ok(store.gid(Kind::Product, uuid_of(&self.0.id)?))
    }

    async fn title(&self) -> &str {
        &self.0.title
    }

    async fn handle(&self) -> &str {
        &self.0.handle
    }

    /// The description as plain text.
    async fn description(&self) -> String {
        description_text(&self.0.body_html)
    }

    async fn description_html(&self) -> Html {
        Html(self.0.body_html.clone())
    }

    async fn vendor(&self) -> &str {
        &self.0.vendor
    }

    async fn product_type(&self) -> &str {
        &self.0.product_type
    }

    async fn tags(&self) -> &[String] {
        &self.0.tags
    }

    /// Whether any variant is in stock.
    async fn available_for_sale(&self) -> bool {
        self.0.in_stock
    }

    /// The product's page on the storefront.
    async fn online_store_url(&self, ctx: &Context<'_>) -> Result<Url> {
        Ok(Url(format!("{}/products/{}", ctx.data::<Store>()?.base_url(), self.0.handle)))
    }

    async fn options(&self) -> Vec<ProductOption> {
        self.0.options.iter().map(|o| ProductOption { name: o.name.clone(), values: o.values.clone() }).collect()
    }

    /// The lowest and highest variant prices.
    async fn price_range(&self, ctx: &Context<'_>) -> Result<ProductPriceRange> {
        let store = ctx.data::<Store>()?;
        let prices = self.0.variants.iter().map(|v| v.price_minor);
        let (min, max) = (prices.clone().min().unwrap_or(0), prices.max().unwrap_or(0));
        Ok(ProductPriceRange { min_variant_price: money(store, min), max_variant_price: money(store, max) })
    }

    #[graphql(complexity = "1 + first.unwrap_or(20).clamp(0, 250) as usize * child_complexity")]
    async fn variants(&self, first: Option<i32>, after: Option<String>) -> Result<Connection<Cursor, ProductVariant>> {
        slice_connection(&self.0.variants, first, after.as_deref(), |v| ProductVariant {
            variant: v.clone(),
            product: self.0.clone(),
        })
    }

    #[graphql(complexity = "1 + first.unwrap_or(20).clamp(0, 250) as usize * child_complexity")]
    async fn images(&self, first: Option<i32>, after: Option<String>) -> Result<Connection<Cursor, Image>> {
        slice_connection(&self.0.images, first, after.as_deref(), |i| Image(i.clone()))
    }

    /// The first image.
    async fn featured_image(&self) -> Option<Image> {
        self.0.images.first().map(|i| Image(i.clone()))
    }

    /// The collections the product is in. Loaded for every product of a page at once.
    #[graphql(complexity = "1 + first.unwrap_or(20).clamp(0, 250) as usize * child_complexity")]
    async fn collections(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, Collection>> {
        let loader = ctx.data::<CollectionsData>()?;
        let mine = loader.load_one(ProductKey(self.0.clone())).await?.unwrap_or_default();
        slice_connection(&mine, first, after.as_deref(), |c| Collection(c.clone()))
    }
}

/// A product as a dataloader key: the same product is the same key.
#[derive(Clone)]
pub struct ProductKey(Arc<ProductView>);

impl PartialEq for ProductKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for ProductKey {}

impl std::hash::Hash for ProductKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.id.hash(state);
    }
}

/// The request's collections loader, with its per-request cache.
pub type CollectionsData = DataLoader<CollectionsLoader, async_graphql::dataloader::HashMapCache>;

/// Loads the collections of all the products a response shows in one go.
pub struct CollectionsLoader {
    pub state: crate::state::AppState,
    pub tenant: ecom_core::Tenant,
}

impl Loader<ProductKey> for CollectionsLoader {
    type Value = Vec<CollectionRecord>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[ProductKey]) -> Result<HashMap<ProductKey, Self::Value>> {
        let views: Vec<Arc<ProductView>> = keys.iter().map(|k| k.0.clone()).collect();
        let mut by_id = self.state.catalog.collections_of(&self.tenant, &views).await.map_err(service_error)?;
        Ok(keys.iter().map(|k| (k.clone(), by_id.remove(&k.0.id).unwrap_or_default())).collect())
    }
}

/// One purchasable combination of a product's options.
pub struct ProductVariant {
    variant: VariantView,
    product: Arc<ProductView>,
}

impl ProductVariant {
    /// The variant `id` of `product`, if it has it.
    pub(super) fn of(product: Arc<ProductView>, id: uuid::Uuid) -> Option<Self> {
        let variant = product.variants.iter().find(|v| v.id == id.to_string())?.clone();
        Some(Self { variant, product })
    }
}

#[Object]
impl ProductVariant {
    async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        let store = ctx.data::<Store>()?;
        Ok(store.gid(Kind::ProductVariant, uuid_of(&self.variant.id)?))
    }

    async fn title(&self) -> &str {
        &self.variant.title
    }

    async fn sku(&self) -> Option<&str> {
        self.variant.sku.as_deref()
    }

    async fn available_for_sale(&self) -> bool {
        self.variant.available
    }

    async fn quantity_available(&self) -> i32 {
        self.variant.stock.max(0)
    }

    async fn price(&self, ctx: &Context<'_>) -> Result<MoneyV2> {
        Ok(money(ctx.data::<Store>()?, self.variant.price_minor))
    }

    /// The price before a reduction; only when above the price.
    async fn compare_at_price(&self, ctx: &Context<'_>) -> Result<Option<MoneyV2>> {
        let store = ctx.data::<Store>()?;
        Ok(self.variant.compare_at_minor.map(|m| money(store, m)))
    }

    /// The product this is a variant of.
    async fn product(&self) -> Product {
        Product(self.product.clone())
    }

    async fn selected_options(&self) -> Vec<SelectedOption> {
        self.product
            .options
            .iter()
            .zip(&self.variant.option_values)
            .map(|(o, v)| SelectedOption { name: o.name.clone(), value: v.clone() })
            .collect()
    }
}

/// A product image (the same type in both APIs).
pub struct Image(pub(super) ImageView);

#[Object]
impl Image {
    async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        let store = ctx.data::<Store>()?;
        Ok(store.gid(Kind::Image, uuid_of(&self.0.id)?))
    }

    /// The original image.
    async fn url(&self, ctx: &Context<'_>) -> Result<Url> {
        Ok(Url(format!("{}/media/{}.{}", ctx.data::<Store>()?.base_url(), self.0.hash, self.0.ext)))
    }

    async fn alt_text(&self) -> Option<&str> {
        Some(self.0.alt.as_str()).filter(|a| !a.is_empty())
    }

    async fn width(&self) -> i32 {
        self.0.width
    }

    async fn height(&self) -> i32 {
        self.0.height
    }
}

/// A group of products.
pub struct Collection(CollectionRecord);

#[Object]
impl Collection {
    async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        let store = ctx.data::<Store>()?;
        Ok(store.gid(Kind::Collection, self.0.id))
    }

    async fn title(&self) -> &str {
        &self.0.title
    }

    async fn handle(&self) -> &str {
        &self.0.handle
    }

    async fn description(&self) -> String {
        description_text(&self.0.body_html)
    }

    async fn description_html(&self) -> Html {
        Html(self.0.body_html.clone())
    }

    #[graphql(complexity = "1 + first.unwrap_or(20).clamp(0, 250) as usize * child_complexity")]
    async fn products(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        sort_key: Option<ProductCollectionSortKeys>,
        reverse: Option<bool>,
    ) -> Result<Connection<Cursor, Product>> {
        let (sort, backwards) =
            collection_sort(sort_key.unwrap_or(ProductCollectionSortKeys::CollectionDefault), reverse.unwrap_or(false));
        let q = ListingQuery { collection: Some(self.0.handle.clone()), sort, ..ListingQuery::default() };
        product_connection(ctx, q, first, after.as_deref(), backwards)
            .await?
            .ok_or_else(|| error("NOT_FOUND", "there is no such collection"))
    }
}
