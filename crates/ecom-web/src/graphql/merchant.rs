//! The Merchant API (`POST /merchant/graphql`), in Shopify's Admin API names and
//! shapes where the concept exists: the shop; products with variants and images
//! (any status), created, updated, archived, given images by URL; stock adjusted;
//! orders listed, captured, fulfilled, refunded, cancelled; customers.
//!
//! Every resolver calls the same service functions as the merchant panel. Each field
//! and mutation declares the scope it needs with a [`Needs`] guard; a caller without
//! it gets `FORBIDDEN` naming the scope. Mutations answer `{ <thing>, userErrors }`:
//! bad input is a user error (`code: VALIDATION`, `NOT_FOUND`, `TAKEN`) and changes
//! nothing. Each change is audited as `staff <email>` or `app <token name>`.
//!
//! Where names differ from Shopify's, on purpose:
//! - `fulfillmentCreate(fulfillment: {orderId, lineItems: [{id, quantity}], trackingInfo})`
//!   takes the order and its line items directly (we have no fulfillment orders);
//! - `inventoryAdjustQuantities(input: {reason, changes: [{variantId, delta}]})` names
//!   variants (we have one location and no separate inventory items);
//! - `refundCreate(input: {orderId, amount, note})` refunds an amount, not line items;
//! - `orderCapture(input: {id})` captures the whole authorised amount;
//! - a webhook subscription has several `topics` (catalogue names such as
//!   `order.placed`) where Shopify's has one `topic` enum, and
//!   `webhookSubscriptionCreate` answers its signing `secret`, once.

use super::ids::Kind;
use super::storefront::{Cursor, Decimal, Html, Image, MoneyV2, Shop, Url, money, slice_connection, window};
use super::{Store, error, service_error};
use crate::state::AppState;
use async_graphql::connection::{Connection, Edge};
use async_graphql::{
    Context, EmptySubscription, Enum, Guard, ID, InputObject, InputValueError, InputValueResult, Object, Result,
    Scalar, ScalarType, Schema, SimpleObject, Value,
};
use ecom_core::catalog::{Handle, ProductDraft, ProductOption, ProductSort, ProductStatus as Status, VariantDraft};
use ecom_core::order::{OrderStatus, PaymentStatus};
use ecom_core::scope::{Area, Scope, Scopes};
use ecom_core::{Invalid, Money};
use ecom_services::ServiceError;
use ecom_services::api_tokens::AppCaller;
use ecom_services::catalog::{MerchantWindow, description_text};
use ecom_services::checkout::{Actor, CustomerSummary, OrderCommand, OrderSummary, OrderView};
use ecom_store::catalog::{ProductRecord, VariantRecord};
use ecom_store::orders::OrderFilter;
use std::sync::Arc;
use tokio::sync::OnceCell;
use uuid::Uuid;

/// Queries nested deeper than this are refused before they run. GraphiQL's and
/// Apollo's schema introspection query is 13 levels deep.
pub const MAX_DEPTH: usize = 15;
/// Queries costing more than this are refused before they run: a field costs 1, a
/// connection `first` times what one of its nodes costs.
pub const MAX_COMPLEXITY: usize = 5_000;

const READ_PRODUCTS: Scope = Scope::read(Area::Products);
const WRITE_PRODUCTS: Scope = Scope::write(Area::Products);
const WRITE_INVENTORY: Scope = Scope::write(Area::Inventory);
const READ_ORDERS: Scope = Scope::read(Area::Orders);
const WRITE_ORDERS: Scope = Scope::write(Area::Orders);
const READ_CUSTOMERS: Scope = Scope::read(Area::Customers);
const READ_WEBHOOKS: Scope = Scope::read(Area::Webhooks);
const WRITE_WEBHOOKS: Scope = Scope::write(Area::Webhooks);

pub type MerchantSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// The schema, with its depth and complexity limits.
pub fn schema() -> MerchantSchema {
    Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .extension(super::cost::CostMeter)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

// ---- who is calling ------------------------------------------------------------------

/// The authenticated caller: what it may do and how timelines and the audit log name it.
pub struct Caller {
    pub scopes: Scopes,
    pub actor: Actor,
    /// Whose query-cost budget a request spends: the staff member's or the token's.
    pub bucket: String,
    /// A staff session's role and areas: each scope also needs its panel area.
    pub staff: Option<ecom_core::staff::Access>,
}

impl Caller {
    /// A signed-in staff member: every scope, limited by the member's areas.
    pub fn staff(me: &ecom_store::accounts::Credential) -> Self {
        let email = &me.email;
        Self {
            scopes: Scopes::everything(),
            actor: Actor::Staff(email.clone()),
            bucket: format!("staff:{email}"),
            staff: me.access(),
        }
    }

    /// An app, with its token's scopes.
    pub fn app(app: AppCaller) -> Self {
        Self { bucket: format!("app:{}", app.token_id), scopes: app.scopes, actor: Actor::App(app.name), staff: None }
    }

    /// Writes an audit entry for a change that has committed; a failure is logged.
    async fn audit(&self, state: &AppState, store: &Store, action: &str, target: &str, detail: &str) {
        let actor = self.actor.label();
        if let Err(e) = ecom_services::audit::record(&state.db, store.tenant.id, &actor, action, target, detail).await {
            tracing::error!(error = %e, action, target, "audit entry not written");
        }
    }
}

/// A field or mutation that needs a scope: `#[graphql(guard = "Needs(READ_ORDERS)")]`.
pub struct Needs(pub Scope);

impl Guard for Needs {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        let caller = ctx.data::<Caller>()?;
        let area = ecom_core::staff::Permission::for_scope(self.0.area);
        if caller.staff.is_some_and(|a| !a.allows(area)) {
            return Err(error(
                "FORBIDDEN",
                format!("you need the {} permission to do this — ask an owner", area.label()),
            ));
        }
        if !caller.scopes.allows(self.0) {
            return Err(error("FORBIDDEN", format!("this needs the {} scope", self.0)));
        }
        // A suspended store can be read but not changed until the platform reopens it.
        let store = ctx.data::<Store>()?;
        if self.0.access == ecom_core::scope::Access::Write && !store.tenant.is_open() {
            return Err(error("FORBIDDEN", "this store is suspended by the platform: it can be read, not changed"));
        }
        Ok(())
    }
}

fn parts<'a>(ctx: &Context<'a>) -> Result<(&'a Store, &'a Caller)> {
    Ok((ctx.data::<Store>()?, ctx.data::<Caller>()?))
}

// ---- scalars and small types ---------------------------------------------------------

/// An ISO 8601 date and time in UTC, e.g. `2026-11-25T10:00:00Z`.
#[derive(Clone, Copy)]
pub struct DateTime(pub chrono::DateTime<chrono::Utc>);

#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| Self(d.with_timezone(&chrono::Utc)))
                .map_err(|_| InputValueError::custom("not an ISO 8601 date and time")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }
}

/// A problem with a mutation's input; nothing was changed.
#[derive(SimpleObject, Clone)]
pub struct UserError {
    /// The path to the input field at fault, e.g. `["input", "title"]`.
    field: Option<Vec<String>>,
    message: String,
    /// `VALIDATION`, `NOT_FOUND` or `TAKEN`.
    code: String,
}

fn user_error(field: &[&str], code: &str, message: impl Into<String>) -> Vec<UserError> {
    vec![UserError {
        field: Some(field.iter().map(|f| (*f).to_owned()).collect()).filter(|f: &Vec<String>| !f.is_empty()),
        message: message.into(),
        code: code.to_owned(),
    }]
}

/// A service refusal as user errors under `root` (e.g. `input`); failures that are
/// not the caller's to fix stay GraphQL errors.
fn user_errors(root: &str, e: ServiceError) -> Result<Vec<UserError>> {
    match e {
        ServiceError::Invalid(i) => Ok(user_error(&[root, i.field], "VALIDATION", i.message)),
        ServiceError::NotFound => Ok(user_error(&[root, "id"], "NOT_FOUND", "there is no such record in this store")),
        ServiceError::Conflict(what) => Ok(user_error(&[root, "handle"], "TAKEN", format!("{what} already exists"))),
        other => Err(service_error(other)),
    }
}

fn invalid(root: &str, i: Invalid) -> Vec<UserError> {
    user_error(&[root, i.field], "VALIDATION", i.message)
}

/// Whether shoppers can see a product.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ProductStatus {
    /// On sale.
    Active,
    /// Hidden; kept for the record.
    Archived,
    /// Not yet on sale.
    Draft,
}

impl From<Status> for ProductStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Active => Self::Active,
            Status::Archived => Self::Archived,
            Status::Draft => Self::Draft,
        }
    }
}

impl From<ProductStatus> for Status {
    fn from(s: ProductStatus) -> Self {
        match s {
            ProductStatus::Active => Self::Active,
            ProductStatus::Archived => Self::Archived,
            ProductStatus::Draft => Self::Draft,
        }
    }
}

/// How `products` can be sorted.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ProductSortKeys {
    Title,
    /// Oldest first.
    CreatedAt,
    /// By lowest variant price.
    Price,
    /// The store's own order.
    Relevance,
}

#[derive(SimpleObject)]
#[graphql(name = "ProductOption")]
pub struct ProductOptionType {
    name: String,
    values: Vec<String>,
}

#[derive(SimpleObject)]
pub struct SelectedOption {
    name: String,
    value: String,
}

#[derive(SimpleObject)]
pub struct ProductPriceRangeV2 {
    min_variant_price: MoneyV2,
    max_variant_price: MoneyV2,
}

// ---- products --------------------------------------------------------------------------

/// A product of any status.
#[derive(Clone)]
pub struct Product {
    p: Arc<ProductRecord>,
    variants: Arc<Vec<VariantRecord>>,
}

impl Product {
    fn new((p, variants): (ProductRecord, Vec<VariantRecord>)) -> Self {
        Self { p: Arc::new(p), variants: Arc::new(variants) }
    }
}

#[Object]
impl Product {
    async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        let store = ctx.data::<Store>()?;
        Ok(store.gid(Kind::Product, self.p.id))
    }

    async fn title(&self) -> &str {
        &self.p.title
    }

    async fn handle(&self) -> &str {
        &self.p.handle
    }

    async fn status(&self) -> ProductStatus {
        self.p.status.into()
    }

    /// The description as plain text.
    async fn description(&self) -> String {
        description_text(&self.p.body_html)
    }

    async fn description_html(&self) -> Html {
        Html(self.p.body_html.clone())
    }

    async fn vendor(&self) -> &str {
        &self.p.vendor
    }

    async fn product_type(&self) -> &str {
        &self.p.product_type
    }

    async fn tags(&self) -> &[String] {
        &self.p.tags
    }

    async fn created_at(&self) -> DateTime {
        DateTime(self.p.created_at)
    }

    async fn updated_at(&self) -> DateTime {
        DateTime(self.p.updated_at)
    }

    /// Units in stock across all variants.
    async fn total_inventory(&self) -> i32 {
        i32::try_from(self.variants.iter().map(|v| i64::from(v.stock)).sum::<i64>()).unwrap_or(i32::MAX)
    }

    /// The product's page on the storefront (shown to shoppers only when active).
    async fn online_store_url(&self, ctx: &Context<'_>) -> Result<Url> {
        Ok(Url(format!("{}/products/{}", ctx.data::<Store>()?.base_url(), self.p.handle)))
    }

    async fn options(&self) -> Vec<ProductOptionType> {
        self.p.options.iter().map(|o| ProductOptionType { name: o.name.clone(), values: o.values.clone() }).collect()
    }

    /// The lowest and highest variant prices.
    async fn price_range_v2(&self, ctx: &Context<'_>) -> Result<ProductPriceRangeV2> {
        let store = ctx.data::<Store>()?;
        let prices = self.variants.iter().map(|v| v.price);
        let (min, max) = (prices.clone().min().unwrap_or(0), prices.max().unwrap_or(0));
        Ok(ProductPriceRangeV2 { min_variant_price: money(store, min), max_variant_price: money(store, max) })
    }

    #[graphql(complexity = "1 + first.unwrap_or(20).clamp(0, 250) as usize * child_complexity")]
    async fn variants(&self, first: Option<i32>, after: Option<String>) -> Result<Connection<Cursor, ProductVariant>> {
        slice_connection(&self.variants, first, after.as_deref(), |v| ProductVariant {
            v: v.clone(),
            product: self.clone(),
        })
    }

    /// The product's images, in order.
    #[graphql(complexity = "1 + first.unwrap_or(20).clamp(0, 250) as usize * child_complexity")]
    async fn images(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, Image>> {
        let store = ctx.data::<Store>()?;
        let images = store.state.catalog.images(&store.tenant, self.p.id).await.map_err(service_error)?;
        slice_connection(&images, first, after.as_deref(), |i| Image(i.clone()))
    }
}

/// One purchasable combination of a product's options.
pub struct ProductVariant {
    v: VariantRecord,
    product: Product,
}

#[Object]
impl ProductVariant {
    async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        let store = ctx.data::<Store>()?;
        Ok(store.gid(Kind::ProductVariant, self.v.id))
    }

    /// "M / Blue", or "Default Title" for a product without options (as Shopify).
    async fn title(&self) -> String {
        if self.v.option_values.is_empty() { "Default Title".into() } else { self.v.option_values.join(" / ") }
    }

    async fn sku(&self) -> Option<&str> {
        self.v.sku.as_deref()
    }

    async fn barcode(&self) -> Option<&str> {
        self.v.barcode.as_deref()
    }

    async fn position(&self) -> i32 {
        self.v.position + 1
    }

    /// The price, a decimal in the store's currency (Shopify's `Money`).
    async fn price(&self, ctx: &Context<'_>) -> Result<Decimal> {
        Ok(Decimal(Money::new(self.v.price, ctx.data::<Store>()?.tenant.currency).decimal()))
    }

    async fn compare_at_price(&self, ctx: &Context<'_>) -> Result<Option<Decimal>> {
        let currency = ctx.data::<Store>()?.tenant.currency;
        Ok(self.v.compare_at.map(|c| Decimal(Money::new(c, currency).decimal())))
    }

    /// Units in stock.
    async fn inventory_quantity(&self) -> i32 {
        self.v.stock
    }

    async fn available_for_sale(&self) -> bool {
        self.v.stock > 0 && self.product.p.status == Status::Active
    }

    async fn selected_options(&self) -> Vec<SelectedOption> {
        self.product
            .p
            .options
            .iter()
            .zip(&self.v.option_values)
            .map(|(o, v)| SelectedOption { name: o.name.clone(), value: v.clone() })
            .collect()
    }

    async fn product(&self) -> &Product {
        &self.product
    }
}

/// The product an id names in this store, if any.
async fn load_product(store: &Store, id: &str) -> Result<Option<Product>> {
    let Some(uuid) = store.ids.decode(store.tenant.id, Kind::Product, id) else { return Ok(None) };
    let found = store.state.catalog.product_for_edit(&store.tenant, uuid).await.map_err(service_error)?;
    Ok(found.map(Product::new))
}

/// `status:active title words` → (status, free text).
fn product_query(query: Option<&str>) -> Result<(Option<Status>, Option<String>)> {
    let (mut status, mut words) = (None, Vec::new());
    for term in query.unwrap_or_default().split_whitespace() {
        match term.split_once(':') {
            Some(("status", v)) => {
                status = Some(Status::parse(v).ok_or_else(|| {
                    error("VALIDATION", format!("query: status is active, draft or archived, not \"{v}\""))
                })?)
            }
            Some((key, _)) => return Err(error("VALIDATION", format!("query: unknown filter \"{key}\"; use status"))),
            None => words.push(term),
        }
    }
    Ok((status, Some(words.join(" ")).filter(|w| !w.is_empty())))
}

// ---- orders ------------------------------------------------------------------------------

/// The payment state, as Shopify names it.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum OrderDisplayFinancialStatus {
    Pending,
    Authorized,
    Paid,
    PartiallyRefunded,
    Refunded,
    Voided,
}

/// The fulfilment state, as Shopify names it.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum OrderDisplayFulfillmentStatus {
    Unfulfilled,
    PartiallyFulfilled,
    Fulfilled,
}

fn financial(s: &str) -> OrderDisplayFinancialStatus {
    use OrderDisplayFinancialStatus as F;
    match PaymentStatus::parse(s) {
        Some(PaymentStatus::Authorized) => F::Authorized,
        Some(PaymentStatus::Paid) => F::Paid,
        Some(PaymentStatus::PartiallyRefunded) => F::PartiallyRefunded,
        Some(PaymentStatus::Refunded) => F::Refunded,
        Some(PaymentStatus::Voided) => F::Voided,
        Some(PaymentStatus::Pending) | None => F::Pending,
    }
}

fn fulfillment(s: &str) -> OrderDisplayFulfillmentStatus {
    use OrderDisplayFulfillmentStatus as F;
    match OrderStatus::parse(s) {
        Some(OrderStatus::PartiallyFulfilled) => F::PartiallyFulfilled,
        Some(OrderStatus::Fulfilled | OrderStatus::Shipped | OrderStatus::OutForDelivery | OrderStatus::Delivered) => {
            F::Fulfilled
        }
        _ => F::Unfulfilled,
    }
}

/// An order: from a list (summary) until a field needs the whole of it, which is
/// then read once.
pub struct Order {
    id: Uuid,
    summary: Option<OrderSummary>,
    full: OnceCell<OrderView>,
}

impl Order {
    fn from_view(view: OrderView) -> Self {
        Self { id: view.id, summary: None, full: OnceCell::new_with(Some(view)) }
    }

    fn from_summary(summary: OrderSummary) -> Self {
        Self { id: summary.id, summary: Some(summary), full: OnceCell::new() }
    }

    async fn full(&self, ctx: &Context<'_>) -> Result<&OrderView> {
        self.full
            .get_or_try_init(|| async {
                let store = ctx.data::<Store>()?;
                store
                    .state
                    .checkout
                    .order_by_id(&store.tenant, self.id)
                    .await
                    .map_err(service_error)?
                    .ok_or_else(|| error("NOT_FOUND", "there is no such order"))
            })
            .await
    }
}

/// A shipping or billing address.
#[derive(SimpleObject)]
pub struct MailingAddress {
    name: String,
    address1: String,
    address2: Option<String>,
    city: String,
    /// State, province or county code.
    province_code: Option<String>,
    zip: String,
    /// ISO 3166-1 alpha-2.
    country_code_v2: String,
}

#[derive(SimpleObject)]
pub struct ShippingLine {
    title: String,
    original_price: MoneyV2,
}

#[derive(SimpleObject)]
pub struct FulfillmentTrackingInfo {
    /// The carrier.
    company: String,
    number: String,
}

/// Something that happened to an order, newest last.
#[derive(SimpleObject, Clone)]
pub struct OrderEvent {
    /// `placed`, `paid`, `fulfilled`, `shipped`, `refunded`, `cancelled`, …
    action: String,
    message: String,
    /// `customer …`, `staff …`, `app …`, `system (…)`.
    author: String,
    created_at: DateTime,
}

/// A line of an order.
#[derive(Clone)]
pub struct LineItem(ecom_services::checkout::OrderLineView);

#[Object]
impl LineItem {
    async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        let store = ctx.data::<Store>()?;
        Ok(store.gid(Kind::LineItem, self.0.id))
    }

    /// The product title when ordered.
    async fn title(&self) -> &str {
        &self.0.title
    }

    async fn variant_title(&self) -> Option<&str> {
        Some(self.0.variant_title.as_str()).filter(|t| !t.is_empty())
    }

    async fn sku(&self) -> Option<&str> {
        Some(self.0.sku.as_str()).filter(|t| !t.is_empty())
    }

    /// The variant ordered, if it still exists.
    async fn variant_id(&self, ctx: &Context<'_>) -> Result<Option<ID>> {
        let store = ctx.data::<Store>()?;
        Ok(self.0.variant_id.map(|v| store.gid(Kind::ProductVariant, v)))
    }

    async fn quantity(&self) -> i32 {
        self.0.quantity
    }

    /// Units not fulfilled yet.
    async fn unfulfilled_quantity(&self) -> i32 {
        (self.0.quantity - self.0.fulfilled).max(0)
    }

    async fn original_unit_price(&self, ctx: &Context<'_>) -> Result<MoneyV2> {
        Ok(money(ctx.data::<Store>()?, self.0.unit_price_minor))
    }

    async fn original_total(&self, ctx: &Context<'_>) -> Result<MoneyV2> {
        Ok(money(ctx.data::<Store>()?, self.0.unit_price_minor.saturating_mul(i64::from(self.0.quantity))))
    }
}

#[Object]
impl Order {
    async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        let store = ctx.data::<Store>()?;
        Ok(store.gid(Kind::Order, self.id))
    }

    /// `#1001`.
    async fn name(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(match &self.summary {
            Some(s) => s.name.clone(),
            None => self.full(ctx).await?.name.clone(),
        })
    }

    async fn email(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(match &self.summary {
            Some(s) => s.email.clone(),
            None => self.full(ctx).await?.email.clone(),
        })
    }

    async fn phone(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(Some(self.full(ctx).await?.phone.clone()).filter(|p| !p.is_empty()))
    }

    /// When the order was placed.
    async fn created_at(&self, ctx: &Context<'_>) -> Result<DateTime> {
        Ok(DateTime(match &self.summary {
            Some(s) => s.placed_at,
            None => self.full(ctx).await?.placed_at,
        }))
    }

    async fn display_financial_status(&self, ctx: &Context<'_>) -> Result<OrderDisplayFinancialStatus> {
        Ok(financial(match &self.summary {
            Some(s) => s.payment_status,
            None => self.full(ctx).await?.payment_status,
        }))
    }

    async fn display_fulfillment_status(&self, ctx: &Context<'_>) -> Result<OrderDisplayFulfillmentStatus> {
        Ok(fulfillment(match &self.summary {
            Some(s) => s.status,
            None => self.full(ctx).await?.status,
        }))
    }

    /// Our order status: `pending_payment`, `paid`, `partially_fulfilled`,
    /// `fulfilled`, `shipped`, `delivered`, `cancelled` or `expired`.
    async fn status(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(match &self.summary {
            Some(s) => s.status,
            None => self.full(ctx).await?.status,
        }
        .to_owned())
    }

    /// When the order was cancelled, if it was.
    async fn cancelled_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime>> {
        let full = self.full(ctx).await?;
        Ok(full.events.iter().rev().find(|e| e.kind == "cancelled").map(|e| DateTime(e.at)))
    }

    async fn total_price(&self, ctx: &Context<'_>) -> Result<MoneyV2> {
        let store = ctx.data::<Store>()?;
        Ok(money(
            store,
            match &self.summary {
                Some(s) => s.total_minor,
                None => self.full(ctx).await?.totals.raw.total,
            },
        ))
    }

    async fn subtotal_price(&self, ctx: &Context<'_>) -> Result<MoneyV2> {
        Ok(money(ctx.data::<Store>()?, self.full(ctx).await?.totals.raw.subtotal))
    }

    async fn total_discounts(&self, ctx: &Context<'_>) -> Result<MoneyV2> {
        Ok(money(ctx.data::<Store>()?, self.full(ctx).await?.totals.raw.discount))
    }

    async fn total_shipping_price(&self, ctx: &Context<'_>) -> Result<MoneyV2> {
        Ok(money(ctx.data::<Store>()?, self.full(ctx).await?.totals.raw.shipping))
    }

    async fn total_tax(&self, ctx: &Context<'_>) -> Result<MoneyV2> {
        Ok(money(ctx.data::<Store>()?, self.full(ctx).await?.totals.raw.tax))
    }

    async fn taxes_included(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(self.full(ctx).await?.totals.raw.taxes_included)
    }

    async fn total_refunded(&self, ctx: &Context<'_>) -> Result<MoneyV2> {
        Ok(money(ctx.data::<Store>()?, self.full(ctx).await?.refunded_minor))
    }

    /// What can still be refunded.
    async fn total_refundable(&self, ctx: &Context<'_>) -> Result<MoneyV2> {
        Ok(money(ctx.data::<Store>()?, self.full(ctx).await?.refundable_minor))
    }

    async fn payment_gateway_names(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(vec![self.full(ctx).await?.payment_provider.clone()])
    }

    #[graphql(complexity = "1 + first.unwrap_or(20).clamp(0, 250) as usize * child_complexity")]
    async fn line_items(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, LineItem>> {
        slice_connection(&self.full(ctx).await?.lines, first, after.as_deref(), |l| LineItem(l.clone()))
    }

    async fn shipping_address(&self, ctx: &Context<'_>) -> Result<Option<MailingAddress>> {
        let a = &self.full(ctx).await?.address;
        if a.line1.is_empty() && a.city.is_empty() {
            return Ok(None);
        }
        Ok(Some(MailingAddress {
            name: a.name.clone(),
            address1: a.line1.clone(),
            address2: Some(a.line2.clone()).filter(|l| !l.is_empty()),
            city: a.city.clone(),
            province_code: Some(a.region.clone()).filter(|r| !r.is_empty()),
            zip: a.postal_code.clone(),
            country_code_v2: a.country.clone(),
        }))
    }

    async fn shipping_line(&self, ctx: &Context<'_>) -> Result<Option<ShippingLine>> {
        let store = ctx.data::<Store>()?;
        let full = self.full(ctx).await?;
        Ok(Some(&full.shipping_title)
            .filter(|t| !t.is_empty())
            .map(|t| ShippingLine { title: t.clone(), original_price: money(store, full.totals.raw.shipping) }))
    }

    /// The carrier and tracking number, once shipped with them.
    async fn tracking_info(&self, ctx: &Context<'_>) -> Result<Option<FulfillmentTrackingInfo>> {
        let full = self.full(ctx).await?;
        Ok((!full.carrier.is_empty())
            .then(|| FulfillmentTrackingInfo { company: full.carrier.clone(), number: full.tracking_number.clone() }))
    }

    /// The order's timeline, oldest first.
    #[graphql(complexity = "1 + first.unwrap_or(20).clamp(0, 250) as usize * child_complexity")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, OrderEvent>> {
        let full = self.full(ctx).await?;
        slice_connection(&full.events, first, after.as_deref(), |e| OrderEvent {
            action: e.kind.clone(),
            message: e.message.clone(),
            author: e.actor.clone(),
            created_at: DateTime(e.at),
        })
    }

    /// The customer who placed it, when signed in.
    #[graphql(guard = "Needs(READ_CUSTOMERS)")]
    async fn customer(&self, ctx: &Context<'_>) -> Result<Option<Customer>> {
        let Some(id) = self.full(ctx).await?.customer_id else { return Ok(None) };
        let store = ctx.data::<Store>()?;
        let found = store.state.checkout.customer(&store.tenant, id).await.map_err(service_error)?;
        Ok(found.map(|(c, orders)| Customer { c, orders: Some(orders) }))
    }
}

async fn load_order(store: &Store, id: &str) -> Result<Option<OrderView>> {
    let Some(uuid) = store.ids.decode(store.tenant.id, Kind::Order, id) else { return Ok(None) };
    store.state.checkout.order_by_id(&store.tenant, uuid).await.map_err(service_error)
}

/// Orders' `query`: `status:open|closed|cancelled|any`,
/// `financial_status:paid|pending|authorized|partially_refunded|refunded|voided`,
/// `fulfillment_status:unfulfilled|partial|fulfilled|shipped|delivered`, and free
/// text (an order number or part of an email).
fn order_filter(query: Option<&str>) -> Result<OrderFilter> {
    let mut f = OrderFilter::default();
    let mut words = Vec::new();
    let strs = |list: &[OrderStatus]| list.iter().map(|s| s.as_str().to_owned()).collect::<Vec<_>>();
    use OrderStatus as S;
    for term in query.unwrap_or_default().split_whitespace() {
        let Some((key, value)) = term.split_once(':') else {
            words.push(term);
            continue;
        };
        let bad = |allowed: &str| error("VALIDATION", format!("query: {key} is one of {allowed}, not \"{value}\""));
        match key {
            "status" => {
                f.status_in = match value {
                    "open" => strs(&[S::PendingPayment, S::Paid, S::PartiallyFulfilled, S::Fulfilled, S::Shipped]),
                    "closed" => strs(&[S::Delivered]),
                    "cancelled" => strs(&[S::Cancelled, S::Expired]),
                    "any" => Vec::new(),
                    _ => return Err(bad("open, closed, cancelled, any")),
                }
            }
            "financial_status" => {
                let s = PaymentStatus::parse(value)
                    .ok_or_else(|| bad("pending, authorized, paid, partially_refunded, refunded, voided"))?;
                f.payment_status = Some(s.as_str().to_owned());
            }
            "fulfillment_status" => {
                f.status_in = match value {
                    "unfulfilled" => strs(&[S::PendingPayment, S::Paid]),
                    "partial" => strs(&[S::PartiallyFulfilled]),
                    "fulfilled" => strs(&[S::Fulfilled, S::Shipped, S::OutForDelivery, S::Delivered]),
                    "shipped" => strs(&[S::Shipped, S::OutForDelivery]),
                    "delivered" => strs(&[S::Delivered]),
                    _ => return Err(bad("unfulfilled, partial, fulfilled, shipped, delivered")),
                }
            }
            "email" | "name" => words.push(value),
            _ => {
                return Err(error(
                    "VALIDATION",
                    format!("query: unknown filter \"{key}\"; use status, financial_status, fulfillment_status, email"),
                ));
            }
        }
    }
    f.search = Some(words.join(" ")).filter(|w| !w.is_empty());
    Ok(f)
}

// ---- customers --------------------------------------------------------------------------

/// A customer with their order count and what they spent (paid, net of refunds).
pub struct Customer {
    c: CustomerSummary,
    /// Their orders when already read (one customer); read on demand in lists.
    orders: Option<Vec<OrderSummary>>,
}

#[Object]
impl Customer {
    async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        let store = ctx.data::<Store>()?;
        Ok(store.gid(Kind::Customer, self.c.id))
    }

    async fn email(&self) -> &str {
        &self.c.email
    }

    async fn display_name(&self) -> &str {
        &self.c.name
    }

    /// Paid orders.
    async fn orders_count(&self) -> i32 {
        i32::try_from(self.c.orders).unwrap_or(i32::MAX)
    }

    async fn amount_spent(&self, ctx: &Context<'_>) -> Result<MoneyV2> {
        Ok(money(ctx.data::<Store>()?, self.c.lifetime_value_minor))
    }

    /// Their orders, newest first (`null` without the `read_orders` scope).
    #[graphql(
        guard = "Needs(READ_ORDERS)",
        complexity = "1 + first.unwrap_or(20).clamp(0, 250) as usize * child_complexity"
    )]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Option<Connection<Cursor, Order>>> {
        let list = match &self.orders {
            Some(list) => list.clone(),
            None => {
                let store = ctx.data::<Store>()?;
                let found = store.state.checkout.customer(&store.tenant, self.c.id).await.map_err(service_error)?;
                found.map(|(_, orders)| orders).unwrap_or_default()
            }
        };
        slice_connection(&list, first, after.as_deref(), |o| Order::from_summary(o.clone())).map(Some)
    }
}

// ---- queries ----------------------------------------------------------------------------

pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// The store this host serves.
    async fn shop(&self, ctx: &Context<'_>) -> Result<Shop> {
        Ok(Shop::of(ctx.data::<Store>()?))
    }

    /// The store's products, every status unless `query` says `status:active` (or
    /// `draft`, `archived`); other words search titles, vendors, types and tags.
    #[graphql(
        guard = "Needs(READ_PRODUCTS)",
        complexity = "1 + first.unwrap_or(20).clamp(0, 250) as usize * child_complexity"
    )]
    async fn products(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        query: Option<String>,
        sort_key: Option<ProductSortKeys>,
        reverse: Option<bool>,
    ) -> Result<Connection<Cursor, Product>> {
        let store = ctx.data::<Store>()?;
        let (offset, limit) = window(first, after.as_deref())?;
        let (status, search) = product_query(query.as_deref())?;
        let reverse = reverse.unwrap_or(false);
        let (sort, backwards) = match sort_key.unwrap_or(ProductSortKeys::Title) {
            ProductSortKeys::Title => (ProductSort::TitleAsc, reverse),
            ProductSortKeys::Price => (ProductSort::PriceAsc, reverse),
            // Newest is "created, descending": oldest first is its reverse.
            ProductSortKeys::CreatedAt => (ProductSort::Newest, !reverse),
            ProductSortKeys::Relevance => (ProductSort::Featured, reverse),
        };
        let (rows, total) = store
            .state
            .catalog
            .merchant_product_window(
                &store.tenant,
                MerchantWindow { search, status, sort, reverse: backwards, offset, limit },
            )
            .await
            .map_err(service_error)?;
        let shown = offset.saturating_add(rows.len() as u64);
        let mut conn = Connection::new(offset > 0 && total > 0, shown < total);
        conn.edges
            .extend(rows.into_iter().enumerate().map(|(i, r)| Edge::new(Cursor(offset + i as u64), Product::new(r))));
        Ok(conn)
    }

    /// A product of any status by id. `null` with a `NOT_FOUND` error when there is
    /// none: another store's id is not found either.
    #[graphql(guard = "Needs(READ_PRODUCTS)")]
    async fn product(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Product>> {
        let store = ctx.data::<Store>()?;
        load_product(store, &id).await?.map(Some).ok_or_else(|| error("NOT_FOUND", "there is no such product"))
    }

    /// A variant by id.
    #[graphql(guard = "Needs(READ_PRODUCTS)")]
    async fn product_variant(&self, ctx: &Context<'_>, id: ID) -> Result<Option<ProductVariant>> {
        let store = ctx.data::<Store>()?;
        let not_found = || error("NOT_FOUND", "there is no such variant");
        let uuid = store.ids.decode(store.tenant.id, Kind::ProductVariant, &id).ok_or_else(not_found)?;
        let product = store.state.catalog.product_of_variant(&store.tenant, uuid).await.map_err(service_error)?;
        let product = product.map(Product::new).ok_or_else(not_found)?;
        let v = product.variants.iter().find(|v| v.id == uuid).cloned().ok_or_else(not_found)?;
        Ok(Some(ProductVariant { v, product }))
    }

    /// The store's webhook subscriptions, oldest first.
    #[graphql(
        guard = "Needs(READ_WEBHOOKS)",
        complexity = "1 + first.unwrap_or(20).clamp(0, 250) as usize * child_complexity"
    )]
    async fn webhook_subscriptions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, WebhookSubscription>> {
        let store = ctx.data::<Store>()?;
        let all = store
            .state
            .webhooks
            .list(store.tenant.id, None, ecom_services::webhooks::MAX_SUBSCRIPTIONS)
            .await
            .map_err(service_error)?;
        slice_connection(&all, first, after.as_deref(), |s| WebhookSubscription::new(store, s.clone()))
    }

    /// A webhook subscription by id; `NOT_FOUND` when there is none in this store.
    #[graphql(guard = "Needs(READ_WEBHOOKS)")]
    async fn webhook_subscription(&self, ctx: &Context<'_>, id: ID) -> Result<Option<WebhookSubscription>> {
        let store = ctx.data::<Store>()?;
        let not_found = || error("NOT_FOUND", "there is no such webhook subscription");
        let uuid = store.ids.decode(store.tenant.id, Kind::WebhookSubscription, &id).ok_or_else(not_found)?;
        let sub = store.state.webhooks.get(store.tenant.id, uuid).await.map_err(service_error)?;
        Ok(Some(WebhookSubscription::new(store, sub.ok_or_else(not_found)?)))
    }

    /// Orders, newest first. `query` filters: `status:open` (or `closed`,
    /// `cancelled`, `any`), `financial_status:paid` (or `pending`, `authorized`,
    /// `partially_refunded`, `refunded`, `voided`), `fulfillment_status:unfulfilled`
    /// (or `partial`, `fulfilled`, `shipped`, `delivered`); other words match the
    /// order number or the email.
    #[graphql(
        guard = "Needs(READ_ORDERS)",
        complexity = "1 + first.unwrap_or(20).clamp(0, 250) as usize * child_complexity"
    )]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        query: Option<String>,
    ) -> Result<Connection<Cursor, Order>> {
        let store = ctx.data::<Store>()?;
        let (offset, limit) = window(first, after.as_deref())?;
        let mut filter = order_filter(query.as_deref())?;
        (filter.offset, filter.limit) = (offset, limit);
        if limit == 0 {
            return Ok(Connection::new(offset > 0, false));
        }
        let (rows, total) = store.state.checkout.orders(&store.tenant, &filter).await.map_err(service_error)?;
        let shown = offset.saturating_add(rows.len() as u64);
        let mut conn = Connection::new(offset > 0 && total > 0, shown < total);
        conn.edges.extend(
            rows.into_iter().enumerate().map(|(i, o)| Edge::new(Cursor(offset + i as u64), Order::from_summary(o))),
        );
        Ok(conn)
    }

    /// An order by id; `NOT_FOUND` when there is none in this store.
    #[graphql(guard = "Needs(READ_ORDERS)")]
    async fn order(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Order>> {
        let store = ctx.data::<Store>()?;
        let view = load_order(store, &id).await?.ok_or_else(|| error("NOT_FOUND", "there is no such order"))?;
        Ok(Some(Order::from_view(view)))
    }

    /// Customers by email; `query` matches part of the email or name.
    #[graphql(
        guard = "Needs(READ_CUSTOMERS)",
        complexity = "1 + first.unwrap_or(20).clamp(0, 250) as usize * child_complexity"
    )]
    async fn customers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        query: Option<String>,
    ) -> Result<Connection<Cursor, Customer>> {
        let store = ctx.data::<Store>()?;
        let (offset, limit) = window(first, after.as_deref())?;
        let search = query.unwrap_or_default();
        let (rows, total) = if limit == 0 {
            (Vec::new(), 0)
        } else {
            store.state.checkout.customers_window(&store.tenant, &search, limit, offset).await.map_err(service_error)?
        };
        let total = u64::try_from(total).unwrap_or(0);
        let shown = offset.saturating_add(rows.len() as u64);
        let mut conn = Connection::new(offset > 0 && total > 0, shown < total);
        conn.edges.extend(
            rows.into_iter()
                .enumerate()
                .map(|(i, c)| Edge::new(Cursor(offset + i as u64), Customer { c, orders: None })),
        );
        Ok(conn)
    }

    /// A customer by id; `NOT_FOUND` when there is none in this store.
    #[graphql(guard = "Needs(READ_CUSTOMERS)")]
    async fn customer(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Customer>> {
        let store = ctx.data::<Store>()?;
        let not_found = || error("NOT_FOUND", "there is no such customer");
        let uuid = store.ids.decode(store.tenant.id, Kind::Customer, &id).ok_or_else(not_found)?;
        let found = store.state.checkout.customer(&store.tenant, uuid).await.map_err(service_error)?;
        let (c, orders) = found.ok_or_else(not_found)?;
        Ok(Some(Customer { c, orders: Some(orders) }))
    }
}

// ---- mutation inputs and payloads ---------------------------------------------------------

/// A product to create (`id` absent) or update (`id` given; absent fields keep
/// their values).
#[derive(InputObject)]
pub struct ProductInput {
    /// The product to update; only for `productUpdate`.
    id: Option<ID>,
    title: Option<String>,
    /// Made from the title when absent on create.
    handle: Option<String>,
    /// Sanitised: scripts and styles go.
    description_html: Option<String>,
    vendor: Option<String>,
    product_type: Option<String>,
    tags: Option<Vec<String>>,
    /// `DRAFT` on create unless given; `ARCHIVED` archives.
    status: Option<ProductStatus>,
    /// Option names, e.g. `["Size", "Color"]`, in order; their values are those the
    /// variants use. Give `variants` with them.
    product_options: Option<Vec<String>>,
    /// Replaces the variants: one with the same option values as an existing one
    /// keeps its id, stock and anything not given. Absent on create: one variant
    /// priced 0.00.
    variants: Option<Vec<ProductVariantInput>>,
}

#[derive(InputObject)]
pub struct ProductVariantInput {
    /// One value per product option, in order; empty for a product without options.
    #[graphql(default)]
    options: Vec<String>,
    /// A decimal in the store's currency, e.g. `"25.00"`.
    price: Option<Decimal>,
    compare_at_price: Option<Decimal>,
    sku: Option<String>,
    barcode: Option<String>,
    weight_grams: Option<i32>,
    /// Stock for a new variant (adjust existing stock with `inventoryAdjustQuantities`).
    inventory_quantity: Option<i32>,
}

#[derive(SimpleObject)]
pub struct ProductCreatePayload {
    product: Option<Product>,
    user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct ProductUpdatePayload {
    product: Option<Product>,
    user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct CreateMediaInput {
    /// An `http(s)` URL of a JPEG, PNG or WebP image; fetched from the public
    /// internet only.
    original_source: String,
    alt: Option<String>,
}

#[derive(SimpleObject)]
pub struct ProductCreateMediaPayload {
    /// The images added, in the order given.
    media: Vec<Image>,
    product: Option<Product>,
    user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct InventoryChangeInput {
    variant_id: ID,
    /// Units to add (negative to remove).
    delta: i32,
}

#[derive(InputObject)]
pub struct InventoryAdjustQuantitiesInput {
    /// Why, e.g. `received`, `correction`, `damaged`: kept in the audit log.
    reason: String,
    /// Always `available` (the only quantity we keep).
    #[graphql(default_with = "\"available\".to_owned()")]
    name: String,
    changes: Vec<InventoryChangeInput>,
}

#[derive(SimpleObject)]
pub struct InventoryChange {
    variant_id: ID,
    name: String,
    delta: i32,
    quantity_after_change: i32,
}

#[derive(SimpleObject)]
pub struct InventoryAdjustmentGroup {
    reason: String,
    created_at: DateTime,
    changes: Vec<InventoryChange>,
}

#[derive(SimpleObject)]
pub struct InventoryAdjustQuantitiesPayload {
    inventory_adjustment_group: Option<InventoryAdjustmentGroup>,
    user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct OrderCaptureInput {
    /// The order whose authorised payment to capture, in full.
    id: ID,
}

/// What an order mutation answers: the order as it is now.
#[derive(SimpleObject)]
pub struct OrderPayload {
    order: Option<Order>,
    user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct FulfillmentLineItemInput {
    id: ID,
    quantity: i32,
}

#[derive(InputObject)]
pub struct FulfillmentTrackingInput {
    company: String,
    number: String,
}

#[derive(InputObject)]
pub struct FulfillmentInput {
    order_id: ID,
    /// What to fulfil; absent or empty means everything left.
    line_items: Option<Vec<FulfillmentLineItemInput>>,
    /// Marks the order shipped with this carrier and number; only when this
    /// fulfilment leaves nothing unfulfilled.
    tracking_info: Option<FulfillmentTrackingInput>,
}

#[derive(InputObject)]
pub struct RefundInput {
    order_id: ID,
    /// A decimal in the store's currency; at most what is left to refund.
    amount: Decimal,
    note: Option<String>,
}

#[derive(SimpleObject)]
pub struct Refund {
    amount: MoneyV2,
    note: Option<String>,
}

#[derive(SimpleObject)]
pub struct RefundCreatePayload {
    refund: Option<Refund>,
    order: Option<Order>,
    user_errors: Vec<UserError>,
}

/// Why an order is cancelled (kept in the audit log).
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum OrderCancelReason {
    Customer,
    Declined,
    Fraud,
    Inventory,
    Other,
    Staff,
}

// ---- mutations ------------------------------------------------------------------------------

fn parse_money(store: &Store, field: &'static str, d: &Decimal) -> Result<Money, Invalid> {
    Money::parse(field, &d.0, store.tenant.currency)
}

/// The draft a create or update asks for: the input over the product as it is
/// (`None` on create). The rules are checked by the catalog service.
fn draft_of(store: &Store, input: &ProductInput, current: Option<&Product>) -> Result<ProductDraft, Invalid> {
    let currency = store.tenant.currency;
    let title = input.title.clone().or_else(|| current.map(|c| c.p.title.clone())).unwrap_or_default();
    let handle = match (&input.handle, current) {
        (Some(h), _) => Handle::parse(h)?,
        (None, Some(c)) => Handle::parse(&c.p.handle)?,
        (None, None) => Handle::from_title(&title)?,
    };
    let existing: Vec<VariantDraft> = current
        .map(|c| {
            c.variants
                .iter()
                .map(|v| VariantDraft {
                    sku: v.sku.clone(),
                    option_values: v.option_values.clone(),
                    price: Money::new(v.price, currency),
                    compare_at: v.compare_at.map(|m| Money::new(m, currency)),
                    weight_grams: v.weight_grams,
                    barcode: v.barcode.clone(),
                    stock: v.stock,
                })
                .collect()
        })
        .unwrap_or_default();
    let option_names: Vec<String> = match (&input.product_options, current) {
        (Some(names), _) => names.clone(),
        (None, Some(c)) => c.p.options.iter().map(|o| o.name.clone()).collect(),
        (None, None) => Vec::new(),
    };
    let variants = match &input.variants {
        None if current.is_some() => existing,
        None => vec![VariantDraft {
            sku: None,
            option_values: Vec::new(),
            price: Money::new(0, currency),
            compare_at: None,
            weight_grams: None,
            barcode: None,
            stock: 0,
        }],
        Some(list) => {
            let mut out = Vec::with_capacity(list.len());
            for (i, v) in list.iter().enumerate() {
                let label = |m: String| Invalid::new("variants", format!("variant {}: {m}", i + 1));
                let old = existing.iter().find(|e| e.option_values == v.options);
                let price = match (&v.price, old) {
                    (Some(p), _) => parse_money(store, "price", p).map_err(|e| label(e.message))?,
                    (None, Some(o)) => o.price,
                    (None, None) => return Err(label("give a price".into())),
                };
                let compare_at = match (&v.compare_at_price, old) {
                    (Some(p), _) if p.0.trim().is_empty() => None,
                    (Some(p), _) => Some(parse_money(store, "compareAtPrice", p).map_err(|e| label(e.message))?),
                    (None, o) => o.and_then(|o| o.compare_at),
                };
                out.push(VariantDraft {
                    sku: v.sku.clone().or_else(|| old.and_then(|o| o.sku.clone())),
                    option_values: v.options.clone(),
                    price,
                    compare_at,
                    weight_grams: v.weight_grams.or_else(|| old.and_then(|o| o.weight_grams)),
                    barcode: v.barcode.clone().or_else(|| old.and_then(|o| o.barcode.clone())),
                    stock: match (old, v.inventory_quantity) {
                        (Some(o), _) => o.stock,
                        (None, q) => q.unwrap_or(0),
                    },
                });
            }
            out
        }
    };
    // An option's values are those its variants use, in the order they first appear.
    let options = option_names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut values: Vec<String> = Vec::new();
            for v in &variants {
                if let Some(value) = v.option_values.get(i).map(|s| s.trim().to_owned())
                    && !values.contains(&value)
                {
                    values.push(value);
                }
            }
            ProductOption { name: name.clone(), values }
        })
        .collect();
    Ok(ProductDraft {
        handle,
        title,
        body_html: input
            .description_html
            .clone()
            .or_else(|| current.map(|c| c.p.body_html.clone()))
            .unwrap_or_default(),
        status: input.status.map(Status::from).or_else(|| current.map(|c| c.p.status)).unwrap_or(Status::Draft),
        vendor: input.vendor.clone().or_else(|| current.map(|c| c.p.vendor.clone())).unwrap_or_default(),
        product_type: input
            .product_type
            .clone()
            .or_else(|| current.map(|c| c.p.product_type.clone()))
            .unwrap_or_default(),
        tags: input.tags.clone().or_else(|| current.map(|c| c.p.tags.clone())).unwrap_or_default(),
        attributes: current.map(|c| c.p.attributes.clone()).unwrap_or_default(),
        options,
        variants,
    })
}

/// The category a product keeps when the API updates it (the API does not set one).
async fn category_handle(store: &Store, product: &Product) -> Result<Option<String>> {
    let Some(id) = product.p.category_id else { return Ok(None) };
    let all = store.state.catalog.categories(&store.tenant).await.map_err(service_error)?;
    Ok(all.iter().find(|c| c.id == id).map(|c| c.handle.clone()))
}

/// Runs an order command as the caller; answers the order as it is afterwards.
async fn order_command(
    ctx: &Context<'_>,
    id: &str,
    root: &str,
    command: impl FnOnce(&OrderView) -> std::result::Result<OrderCommand, Vec<UserError>>,
) -> Result<OrderPayload> {
    let (store, caller) = parts(ctx)?;
    let Some(order) = load_order(store, id).await? else {
        return Ok(OrderPayload {
            order: None,
            user_errors: user_error(&[root, "id"], "NOT_FOUND", "there is no such order"),
        });
    };
    let command = match command(&order) {
        Ok(c) => c,
        Err(user_errors) => return Ok(OrderPayload { order: None, user_errors }),
    };
    match store.state.checkout.command(&store.tenant, order.id, command, &caller.actor).await {
        Ok(()) => {
            let now = store.state.checkout.order_by_id(&store.tenant, order.id).await.map_err(service_error)?;
            Ok(OrderPayload { order: now.map(Order::from_view), user_errors: Vec::new() })
        }
        Err(e) => Ok(OrderPayload { order: None, user_errors: user_errors(root, e)? }),
    }
}

pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Subscribes a URL to topics. The answer carries the subscription's signing
    /// secret, this once: keep it to verify `X-Ecom-Signature`.
    #[graphql(guard = "Needs(WRITE_WEBHOOKS)")]
    async fn webhook_subscription_create(
        &self,
        ctx: &Context<'_>,
        webhook_subscription: WebhookSubscriptionInput,
    ) -> Result<WebhookSubscriptionCreatePayload> {
        let (store, caller) = parts(ctx)?;
        let input = webhook_subscription;
        let actor = caller.actor.label();
        match store.state.webhooks.create(store.tenant.id, &input.callback_url, &input.topics, &actor).await {
            Ok((sub, secret)) => Ok(WebhookSubscriptionCreatePayload {
                webhook_subscription: Some(WebhookSubscription::new(store, sub)),
                secret: Some(secret),
                user_errors: Vec::new(),
            }),
            Err(e) => Ok(WebhookSubscriptionCreatePayload {
                webhook_subscription: None,
                secret: None,
                user_errors: webhook_errors(e)?,
            }),
        }
    }

    /// Changes a subscription's URL or topics, or turns it on or off (`active`).
    #[graphql(guard = "Needs(WRITE_WEBHOOKS)")]
    async fn webhook_subscription_update(
        &self,
        ctx: &Context<'_>,
        id: ID,
        webhook_subscription: WebhookSubscriptionUpdateInput,
    ) -> Result<WebhookSubscriptionUpdatePayload> {
        let (store, caller) = parts(ctx)?;
        let fail = |user_errors| Ok(WebhookSubscriptionUpdatePayload { webhook_subscription: None, user_errors });
        let Some(uuid) = store.ids.decode(store.tenant.id, Kind::WebhookSubscription, &id) else {
            return fail(user_error(&["id"], "NOT_FOUND", "there is no such webhook subscription"));
        };
        let input = webhook_subscription;
        let actor = caller.actor.label();
        let hooks = &store.state.webhooks;
        let mut sub = None;
        if input.callback_url.is_some() || input.topics.is_some() {
            let topics = input.topics.as_deref();
            match hooks.update(store.tenant.id, uuid, input.callback_url.as_deref(), topics, &actor).await {
                Ok(s) => sub = Some(s),
                Err(e) => return fail(webhook_errors(e)?),
            }
        }
        if let Some(active) = input.active {
            match hooks.set_active(store.tenant.id, uuid, active, &actor).await {
                Ok(s) => sub = Some(s),
                Err(e) => return fail(webhook_errors(e)?),
            }
        }
        let sub = match sub {
            Some(s) => Some(s),
            None => hooks.get(store.tenant.id, uuid).await.map_err(service_error)?,
        };
        match sub {
            Some(s) => Ok(WebhookSubscriptionUpdatePayload {
                webhook_subscription: Some(WebhookSubscription::new(store, s)),
                user_errors: Vec::new(),
            }),
            None => fail(user_error(&["id"], "NOT_FOUND", "there is no such webhook subscription")),
        }
    }

    /// Deletes a subscription and its delivery log.
    #[graphql(guard = "Needs(WRITE_WEBHOOKS)")]
    async fn webhook_subscription_delete(&self, ctx: &Context<'_>, id: ID) -> Result<WebhookSubscriptionDeletePayload> {
        let (store, caller) = parts(ctx)?;
        let fail =
            |user_errors| Ok(WebhookSubscriptionDeletePayload { deleted_webhook_subscription_id: None, user_errors });
        let Some(uuid) = store.ids.decode(store.tenant.id, Kind::WebhookSubscription, &id) else {
            return fail(user_error(&["id"], "NOT_FOUND", "there is no such webhook subscription"));
        };
        match store.state.webhooks.delete(store.tenant.id, uuid, &caller.actor.label()).await {
            Ok(()) => Ok(WebhookSubscriptionDeletePayload {
                deleted_webhook_subscription_id: Some(id),
                user_errors: Vec::new(),
            }),
            Err(e) => fail(webhook_errors(e)?),
        }
    }

    /// Creates a product (a draft unless `status` says otherwise).
    #[graphql(guard = "Needs(WRITE_PRODUCTS)")]
    async fn product_create(&self, ctx: &Context<'_>, input: ProductInput) -> Result<ProductCreatePayload> {
        let (store, caller) = parts(ctx)?;
        let fail = |user_errors| Ok(ProductCreatePayload { product: None, user_errors });
        if input.id.is_some() {
            return fail(user_error(&["input", "id"], "VALIDATION", "a new product has no id; use productUpdate"));
        }
        let draft = match draft_of(store, &input, None) {
            Ok(d) => d,
            Err(e) => return fail(invalid("input", e)),
        };
        let title = draft.title.clone();
        match store.state.catalog.create_product(&store.tenant, draft, None).await {
            Ok(id) => {
                caller.audit(&store.state, store, "product.create", &format!("product {id}"), &title).await;
                let found = store.state.catalog.product_for_edit(&store.tenant, id).await.map_err(service_error)?;
                Ok(ProductCreatePayload { product: found.map(Product::new), user_errors: Vec::new() })
            }
            Err(e) => fail(user_errors("input", e)?),
        }
    }

    /// Changes a product: the fields given, the rest kept. `status: ARCHIVED`
    /// archives it (it leaves the storefront), `ACTIVE` puts it on sale.
    #[graphql(guard = "Needs(WRITE_PRODUCTS)")]
    async fn product_update(&self, ctx: &Context<'_>, input: ProductInput) -> Result<ProductUpdatePayload> {
        let (store, caller) = parts(ctx)?;
        let fail = |user_errors| Ok(ProductUpdatePayload { product: None, user_errors });
        let Some(id) = input.id.as_deref() else {
            return fail(user_error(&["input", "id"], "VALIDATION", "give the id of the product to update"));
        };
        let Some(current) = load_product(store, id).await? else {
            return fail(user_error(&["input", "id"], "NOT_FOUND", "there is no such product"));
        };
        let draft = match draft_of(store, &input, Some(&current)) {
            Ok(d) => d,
            Err(e) => return fail(invalid("input", e)),
        };
        let (title, status) = (draft.title.clone(), draft.status);
        let category = category_handle(store, &current).await?;
        let pid = current.p.id;
        match store.state.catalog.update_product(&store.tenant, pid, draft, category.as_deref()).await {
            Ok(()) => {
                let target = format!("product {pid}");
                caller.audit(&store.state, store, "product.update", &target, &title).await;
                if status != current.p.status {
                    caller.audit(&store.state, store, "product.status", &target, status.as_str()).await;
                }
                let found = store.state.catalog.product_for_edit(&store.tenant, pid).await.map_err(service_error)?;
                Ok(ProductUpdatePayload { product: found.map(Product::new), user_errors: Vec::new() })
            }
            Err(e) => fail(user_errors("input", e)?),
        }
    }

    /// Adds images to a product from URLs, all or none: when one cannot be fetched or
    /// is not an image, none is added and a user error names it.
    #[graphql(guard = "Needs(WRITE_PRODUCTS)")]
    async fn product_create_media(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
        media: Vec<CreateMediaInput>,
    ) -> Result<ProductCreateMediaPayload> {
        let (store, caller) = parts(ctx)?;
        let fail = |user_errors| Ok(ProductCreateMediaPayload { media: Vec::new(), product: None, user_errors });
        let Some(product) = load_product(store, &product_id).await? else {
            return fail(user_error(&["productId"], "NOT_FOUND", "there is no such product"));
        };
        if media.is_empty() || media.len() > 10 {
            return fail(user_error(&["media"], "VALIDATION", "give 1 to 10 images"));
        }
        let images: Vec<(String, String)> =
            media.iter().map(|m| (m.original_source.trim().to_owned(), m.alt.clone().unwrap_or_default())).collect();
        let state = &store.state;
        let pid = product.p.id;
        let attached =
            state.catalog.attach_images_from_urls(&store.tenant, &state.media, &state.outbound, pid, &images).await;
        match attached {
            Ok(Ok(ids)) => {
                let sources: Vec<&str> = images.iter().map(|(s, _)| s.as_str()).collect();
                caller.audit(state, store, "product.image.add", &format!("product {pid}"), &sources.join(" ")).await;
                let all = state.catalog.images(&store.tenant, pid).await.map_err(service_error)?;
                let added = ids
                    .iter()
                    .filter_map(|id| all.iter().find(|i| i.id == id.to_string()).cloned().map(Image))
                    .collect();
                let found = state.catalog.product_for_edit(&store.tenant, pid).await.map_err(service_error)?;
                Ok(ProductCreateMediaPayload {
                    media: added,
                    product: found.map(Product::new),
                    user_errors: Vec::new(),
                })
            }
            Ok(Err((i, why))) => {
                let index = i.to_string();
                fail(user_error(
                    &["media", &index, "originalSource"],
                    "VALIDATION",
                    format!("image {} was not added: {why}", images[i].0),
                ))
            }
            Err(e) => fail(user_errors("media", e)?),
        }
    }

    /// Adds `delta` to each variant's stock, all or none: a change that would take a
    /// variant below zero is refused and nothing changes.
    #[graphql(guard = "Needs(WRITE_INVENTORY)")]
    async fn inventory_adjust_quantities(
        &self,
        ctx: &Context<'_>,
        input: InventoryAdjustQuantitiesInput,
    ) -> Result<InventoryAdjustQuantitiesPayload> {
        let (store, caller) = parts(ctx)?;
        let fail = |user_errors| Ok(InventoryAdjustQuantitiesPayload { inventory_adjustment_group: None, user_errors });
        if input.name != "available" {
            return fail(user_error(&["input", "name"], "VALIDATION", "the only quantity is \"available\""));
        }
        let reason = input.reason.trim().to_owned();
        if reason.is_empty() || reason.chars().count() > 100 {
            return fail(user_error(&["input", "reason"], "VALIDATION", "give a reason of 1 to 100 characters"));
        }
        let mut changes = Vec::with_capacity(input.changes.len());
        for (i, c) in input.changes.iter().enumerate() {
            let index = i.to_string();
            match store.ids.decode(store.tenant.id, Kind::ProductVariant, &c.variant_id) {
                Some(v) => changes.push((v, c.delta)),
                None => {
                    return fail(user_error(
                        &["input", "changes", &index, "variantId"],
                        "NOT_FOUND",
                        "there is no such variant",
                    ));
                }
            }
        }
        match store.state.catalog.adjust_stock(&store.tenant, &changes).await {
            Ok(after) => {
                let detail: Vec<String> = changes.iter().map(|(v, d)| format!("{v} {d:+}")).collect();
                let detail = format!("{reason}: {}", detail.join(", "));
                caller.audit(&store.state, store, "inventory.adjust", "stock", &detail).await;
                let changes = input
                    .changes
                    .into_iter()
                    .zip(after)
                    .map(|(c, q)| InventoryChange {
                        variant_id: c.variant_id,
                        name: "available".into(),
                        delta: c.delta,
                        quantity_after_change: q,
                    })
                    .collect();
                Ok(InventoryAdjustQuantitiesPayload {
                    inventory_adjustment_group: Some(InventoryAdjustmentGroup {
                        reason,
                        created_at: DateTime(chrono::Utc::now()),
                        changes,
                    }),
                    user_errors: Vec::new(),
                })
            }
            Err(ServiceError::NotFound) => {
                fail(user_error(&["input", "changes"], "NOT_FOUND", "there is no such variant"))
            }
            Err(e) => fail(user_errors("input", e)?),
        }
    }

    /// Captures an order's authorised payment in full.
    #[graphql(guard = "Needs(WRITE_ORDERS)")]
    async fn order_capture(&self, ctx: &Context<'_>, input: OrderCaptureInput) -> Result<OrderPayload> {
        order_command(ctx, &input.id, "input", |_| Ok(OrderCommand::Capture)).await
    }

    /// Fulfils line items of an order (all that is left when none are given), and
    /// with `trackingInfo` marks it shipped.
    #[graphql(guard = "Needs(WRITE_ORDERS)")]
    async fn fulfillment_create(&self, ctx: &Context<'_>, fulfillment: FulfillmentInput) -> Result<OrderPayload> {
        let store = ctx.data::<Store>()?;
        let mut wanted = Vec::new();
        for (i, l) in fulfillment.line_items.iter().flatten().enumerate() {
            let index = i.to_string();
            let Some(line) = store.ids.decode(store.tenant.id, Kind::LineItem, &l.id) else {
                let field = ["fulfillment", "lineItems", index.as_str(), "id"];
                return Ok(OrderPayload {
                    order: None,
                    user_errors: user_error(&field, "NOT_FOUND", "there is no such line item"),
                });
            };
            wanted.push((line, l.quantity));
        }
        let tracking = fulfillment.tracking_info;
        order_command(ctx, &fulfillment.order_id, "fulfillment", move |order| {
            if let Some((id, _)) = wanted.iter().find(|(id, _)| !order.lines.iter().any(|l| l.id == *id)) {
                return Err(user_error(
                    &["fulfillment", "lineItems"],
                    "NOT_FOUND",
                    format!(
                        "line item {} is not in this order",
                        store.ids.encode(store.tenant.id, Kind::LineItem, *id)
                    ),
                ));
            }
            let Some(t) = tracking else { return Ok(OrderCommand::Fulfil(wanted)) };
            // Shipping fulfils everything left, so it is only for a fulfilment that
            // leaves nothing behind.
            let leaves_some = !wanted.is_empty()
                && order.lines.iter().any(|l| {
                    let now: i32 = wanted.iter().filter(|(id, _)| *id == l.id).map(|(_, q)| *q).sum();
                    l.fulfilled + now < l.quantity
                });
            if leaves_some {
                return Err(user_error(
                    &["fulfillment", "trackingInfo"],
                    "VALIDATION",
                    "tracking marks the order shipped, so give it with the fulfilment that leaves nothing unfulfilled",
                ));
            }
            Ok(OrderCommand::Ship { carrier: t.company, tracking: t.number })
        })
        .await
    }

    /// Refunds an amount of an order's payment (to the card for card payments).
    #[graphql(guard = "Needs(WRITE_ORDERS)")]
    async fn refund_create(&self, ctx: &Context<'_>, input: RefundInput) -> Result<RefundCreatePayload> {
        let store = ctx.data::<Store>()?;
        let amount = match parse_money(store, "amount", &input.amount) {
            Ok(m) => m.minor,
            Err(e) => return Ok(RefundCreatePayload { refund: None, order: None, user_errors: invalid("input", e) }),
        };
        let note = input.note.clone().unwrap_or_default();
        let reason = note.clone();
        let done =
            order_command(ctx, &input.order_id, "input", move |_| Ok(OrderCommand::Refund { amount, reason })).await?;
        let refund = done
            .user_errors
            .is_empty()
            .then(|| Refund { amount: money(store, amount), note: Some(note).filter(|n| !n.trim().is_empty()) });
        Ok(RefundCreatePayload { refund, order: done.order, user_errors: done.user_errors })
    }

    /// Cancels an order not yet shipped, voiding an authorised payment; `restock`
    /// puts the unfulfilled items back in stock. Refund a paid order separately.
    #[graphql(guard = "Needs(WRITE_ORDERS)")]
    async fn order_cancel(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        restock: bool,
        reason: OrderCancelReason,
    ) -> Result<OrderPayload> {
        let (store, caller) = parts(ctx)?;
        let done = order_command(ctx, &order_id, "orderId", |_| Ok(OrderCommand::Cancel { restock })).await?;
        if let Some(order) = done.order.as_ref().and_then(|o| o.full.get()) {
            let detail = format!("reason {reason:?}, restock {restock}");
            caller.audit(&store.state, store, "order.cancel", &format!("order #{}", order.number), &detail).await;
        }
        Ok(done)
    }
}

// ---- webhooks ------------------------------------------------------------------------

/// Whether a webhook subscription receives deliveries.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum WebhookSubscriptionStatus {
    Active,
    /// Turned off by the merchant, or automatically after failing for a day
    /// (`disabledReason` says which).
    Disabled,
}

/// A URL subscribed to event topics. Its signing secret is never shown here.
#[derive(SimpleObject)]
pub struct WebhookSubscription {
    id: ID,
    /// Where deliveries are POSTed.
    callback_url: String,
    /// Catalogue topic names, e.g. `order.placed`.
    topics: Vec<String>,
    status: WebhookSubscriptionStatus,
    /// Why it is disabled.
    disabled_reason: Option<String>,
    /// Since when every attempt has failed; `null` after a success.
    failing_since: Option<DateTime>,
    last_attempt_at: Option<DateTime>,
    /// The latest attempt's outcome, e.g. `200 in 35 ms`.
    last_result: Option<String>,
    created_at: DateTime,
}

impl WebhookSubscription {
    fn new(store: &Store, s: ecom_services::webhooks::Subscription) -> Self {
        let status =
            if s.is_active() { WebhookSubscriptionStatus::Active } else { WebhookSubscriptionStatus::Disabled };
        Self {
            id: store.gid(Kind::WebhookSubscription, s.id),
            callback_url: s.callback_url,
            topics: s.topics,
            status,
            disabled_reason: Some(s.disabled_reason).filter(|r| !r.is_empty()),
            failing_since: s.failing_since.map(DateTime),
            last_attempt_at: s.last_attempt_at.map(DateTime),
            last_result: Some(s.last_result).filter(|r| !r.is_empty()),
            created_at: DateTime(s.created_at),
        }
    }
}

#[derive(InputObject)]
pub struct WebhookSubscriptionInput {
    /// An `https://` URL on the public internet.
    callback_url: String,
    /// Catalogue topic names, e.g. `["order.placed", "order.paid"]`.
    topics: Vec<String>,
}

#[derive(InputObject)]
pub struct WebhookSubscriptionUpdateInput {
    callback_url: Option<String>,
    topics: Option<Vec<String>>,
    /// `true` turns it on (its failure clock starts again), `false` off.
    active: Option<bool>,
}

#[derive(SimpleObject)]
pub struct WebhookSubscriptionCreatePayload {
    webhook_subscription: Option<WebhookSubscription>,
    /// The signing secret (`whsec_…`), shown only in this answer.
    secret: Option<String>,
    user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct WebhookSubscriptionUpdatePayload {
    webhook_subscription: Option<WebhookSubscription>,
    user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct WebhookSubscriptionDeletePayload {
    deleted_webhook_subscription_id: Option<ID>,
    user_errors: Vec<UserError>,
}

/// A webhook service refusal as user errors under `webhookSubscription`.
fn webhook_errors(e: ServiceError) -> Result<Vec<UserError>> {
    match e {
        ServiceError::Invalid(i) => {
            let field = match i.field {
                "callback_url" => "callbackUrl",
                other => other,
            };
            Ok(user_error(&["webhookSubscription", field], "VALIDATION", i.message))
        }
        ServiceError::NotFound => Ok(user_error(&["id"], "NOT_FOUND", "there is no such webhook subscription")),
        other => user_errors("webhookSubscription", other),
    }
}
