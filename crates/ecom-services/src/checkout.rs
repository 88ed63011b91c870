//! Carts, checkout and orders: the use cases where money moves.
//!
//! Rules kept here: prices always come from the catalog at the moment of pricing (a
//! cart stores variant and quantity only); placing an order takes stock, numbers the
//! order, writes its lines, its first timeline entry and its outbox event in one
//! transaction; every later state change is checked by `ecom_core::order`, applied
//! only if the order is still in the state it was read in, and written together with
//! its timeline entry, outbox event and audit entry.

use crate::payments::{ChargeOutcome, ChargeRequest, PaymentError, Payments};
use crate::{Catalog, Result, ServiceError};
use chrono::{DateTime, Utc};
use ecom_bus::Topic;
use ecom_core::checkout::{
    Address, Discount, DiscountKind, MAX_CART_LINES, MAX_LINE_QUANTITY, PricedLine, ShippingMethod, TaxRate, Totals,
    price, rates_for,
};
use ecom_core::order::{OrderAction, OrderState, OrderStatus, PaymentStatus, ReturnStatus};
use ecom_core::{AccountId, Email, Invalid, Money, Tenant, TenantId};
use ecom_store::orders::{self as repo, OrderRow};
use ecom_store::{DatabaseTransaction, Db, StoreError};
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

/// Below this many units the default theme's product page shows the exact stock
/// ("only 3 left"), so an order that leaves less must refresh the rendered pages.
pub const LOW_STOCK_SHOWN: i32 = 5;

/// Who did something to an order, for the timeline and the audit log.
#[derive(Debug, Clone)]
pub enum Actor {
    Shopper(String),
    Staff(String),
    /// An app using an API token, by the token's name.
    App(String),
    System(&'static str),
    Provider(&'static str),
}

impl Actor {
    pub fn label(&self) -> String {
        match self {
            Actor::Shopper(email) => format!("customer {email}"),
            Actor::Staff(email) => format!("staff {email}"),
            Actor::App(name) => format!("app {name}"),
            Actor::System(what) => format!("system ({what})"),
            Actor::Provider(p) => format!("payment provider {p}"),
        }
    }
}

/// One cart line, priced now.
#[derive(Debug, Clone, Serialize)]
pub struct CartLine {
    pub variant_id: Uuid,
    pub product_handle: String,
    pub title: String,
    pub variant_title: String,
    pub sku: String,
    pub unit_price: String,
    pub unit_price_minor: i64,
    pub quantity: u32,
    pub line_total: String,
    pub available: i64,
    pub weight_grams: i64,
    /// Why this line cannot be bought as it is ("Only 2 left").
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ShippingOption {
    pub code: String,
    pub title: String,
    pub cost: String,
    pub cost_minor: i64,
}

/// Totals as shown.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TotalsView {
    pub subtotal: String,
    pub discount: String,
    pub shipping: String,
    pub tax: String,
    pub total: String,
    pub taxes_included: bool,
    pub has_discount: bool,
    pub has_shipping: bool,
    pub raw: Totals,
}

fn totals_view(t: &Totals, currency: ecom_core::Currency) -> TotalsView {
    let m = |v: i64| Money::new(v, currency).display();
    TotalsView {
        subtotal: m(t.subtotal),
        discount: m(t.discount),
        shipping: m(t.shipping),
        tax: m(t.tax),
        total: m(t.total),
        taxes_included: t.taxes_included,
        has_discount: t.discount > 0,
        has_shipping: false,
        raw: t.clone(),
    }
}

/// A cart as the shopper sees it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CartView {
    pub id: Option<Uuid>,
    /// The customer the cart belongs to, if any.
    pub customer_id: Option<Uuid>,
    pub lines: Vec<CartLine>,
    pub item_count: u32,
    pub totals: TotalsView,
    pub email: String,
    pub phone: String,
    pub address: Option<Address>,
    pub shipping_code: String,
    pub shipping_options: Vec<ShippingOption>,
    pub discount_code: String,
    pub discount_problem: Option<String>,
    /// Everything standing between this cart and an order, for the shopper.
    pub problems: Vec<String>,
}

impl CartView {
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// What the checkout form sends.
#[derive(Debug, Clone, Default)]
pub struct CheckoutDetails {
    pub email: String,
    pub phone: String,
    pub address: Address,
    pub shipping_code: String,
    pub discount_code: String,
}

/// Which payment attempt a charge is, for its idempotency key.
#[derive(Debug, Clone, Copy)]
enum Attempt<'a> {
    /// The n-th attempt (the number of payment rows before it).
    Count(usize),
    /// An attempt named by the client's idempotency key.
    Client(&'a str),
}

/// Which cart lines are added to.
#[derive(Debug, Clone, Copy)]
pub enum CartTarget {
    /// This cart; `NotFound` when it is not the store's.
    Existing(Uuid),
    /// This cart if it is the store's, else a new one (for this customer).
    OrNew(Option<Uuid>, Option<AccountId>),
}

/// Cart details to change; `None` leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct CartPatch {
    pub email: Option<String>,
    pub phone: Option<String>,
    /// `Some(None)` clears the address.
    pub address: Option<Option<Address>>,
    pub shipping_code: Option<String>,
    pub discount_code: Option<String>,
    pub customer: Option<AccountId>,
}

/// How the shopper pays.
#[derive(Debug, Clone)]
pub struct PaymentChoice {
    pub provider: String,
    /// A test card number or a provider token; empty for manual payment.
    pub token: String,
}

/// The answer to "place my order".
#[derive(Debug, Clone)]
pub enum PlaceOutcome {
    /// The order exists (new, or found again for a cart placed before). When the
    /// payment failed, `payment_error` says why and the order waits for another try.
    Placed { number: i64, token: String, payment_error: Option<String> },
    /// Nothing was placed; the message is for the shopper (sold out, missing address…).
    Refused(String),
}

/// A merchant's (or the system's) action on an order.
#[derive(Debug, Clone)]
pub enum OrderCommand {
    MarkPaid,
    Capture,
    /// `(line id, quantity)`; empty means everything left.
    Fulfil(Vec<(Uuid, i32)>),
    Ship {
        carrier: String,
        tracking: String,
    },
    /// The carrier has the parcel on its last leg.
    OutForDelivery,
    Deliver,
    Cancel {
        restock: bool,
    },
    Refund {
        amount: i64,
        reason: String,
    },
    RequestReturn {
        reason: String,
    },
    /// Returned goods arrived: `(line id, quantity)` (empty means everything sent),
    /// put back in stock when `restock`.
    ReceiveReturn {
        lines: Vec<(Uuid, i32)>,
        restock: bool,
    },
}

/// An order with its lines, timeline and payments.
#[derive(Debug, Clone, Serialize)]
pub struct OrderView {
    pub id: Uuid,
    pub number: i64,
    pub name: String,
    pub token: String,
    pub email: String,
    pub phone: String,
    pub customer_id: Option<Uuid>,
    pub address: Address,
    pub address_line: String,
    pub shipping_title: String,
    pub status: &'static str,
    pub status_label: &'static str,
    pub payment_status: &'static str,
    pub payment_label: &'static str,
    pub return_status: &'static str,
    pub return_label: &'static str,
    pub payment_provider: String,
    pub carrier: String,
    pub tracking_number: String,
    pub totals: TotalsView,
    pub refunded: String,
    pub refunded_minor: i64,
    pub refundable_minor: i64,
    pub currency: String,
    pub placed_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub lines: Vec<OrderLineView>,
    pub events: Vec<EventView>,
    pub payments: Vec<PaymentView>,
    pub discount_code: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrderLineView {
    pub id: Uuid,
    pub variant_id: Option<Uuid>,
    pub title: String,
    pub variant_title: String,
    pub sku: String,
    pub unit_price: String,
    /// The unit price in minor units of the store's currency.
    pub unit_price_minor: i64,
    pub quantity: i32,
    pub fulfilled: i32,
    pub line_total: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    pub kind: String,
    pub message: String,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PaymentView {
    pub provider: String,
    pub kind: String,
    pub amount: String,
    pub status: String,
    pub reference: String,
    pub error: String,
    pub at: DateTime<Utc>,
}

/// An order in a list.
#[derive(Debug, Clone, Serialize)]
pub struct OrderSummary {
    pub id: Uuid,
    pub number: i64,
    pub name: String,
    pub token: String,
    pub email: String,
    pub total: String,
    /// The total in minor units of the store's currency.
    pub total_minor: i64,
    pub status: &'static str,
    pub status_label: &'static str,
    pub payment_status: &'static str,
    pub payment_label: &'static str,
    pub placed_at: DateTime<Utc>,
    pub items: i64,
}

fn state_of(row: &OrderRow) -> Result<OrderState> {
    let corrupt = || ServiceError::Internal(format!("order {} has an unknown state", row.id));
    Ok(OrderState {
        status: OrderStatus::parse(&row.status).ok_or_else(corrupt)?,
        payment: PaymentStatus::parse(&row.payment_status).ok_or_else(corrupt)?,
        returns: ReturnStatus::parse(&row.return_status).ok_or_else(corrupt)?,
    })
}

fn discount_of(row: &repo::DiscountRow) -> Discount {
    Discount {
        code: row.code.clone(),
        kind: if row.kind == "fixed" { DiscountKind::Fixed } else { DiscountKind::Percent },
        value: row.value,
        min_subtotal: row.min_subtotal,
        usage_limit: row.usage_limit,
        used: row.used,
        expires_at: row.expires_at,
        active: row.active,
    }
}

fn method_of(row: &repo::ShippingRow) -> ShippingMethod {
    ShippingMethod {
        code: row.code.clone(),
        title: row.title.clone(),
        base: row.base,
        per_kg: row.per_kg,
        free_over: row.free_over,
        countries: row.countries.split(',').map(|c| c.trim().to_ascii_uppercase()).filter(|c| !c.is_empty()).collect(),
    }
}

fn tax_of(row: &repo::TaxRow) -> TaxRate {
    TaxRate {
        country: row.country.clone(),
        region: row.region.clone(),
        name: row.name.clone(),
        basis_points: u32::try_from(row.basis_points).unwrap_or(0),
    }
}

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 24]>())
}

async fn commit(txn: DatabaseTransaction) -> Result<()> {
    txn.commit().await.map_err(|e| ServiceError::from(StoreError::from(e)))
}

/// Carts, checkout and orders.
#[derive(Clone)]
pub struct Checkout {
    db: Db,
    catalog: Catalog,
    payments: Payments,
    /// Each store's checkout configuration, read on every cart view. Cleared on this
    /// node when the merchant changes it; other nodes see the change within the TTL.
    config: moka::future::Cache<TenantId, Arc<StoreConfig>>,
}

/// What pricing a cart needs from the store's settings.
#[derive(Debug)]
struct StoreConfig {
    prices_include_tax: bool,
    order_expiry_minutes: i32,
    auto_capture: bool,
    methods: Vec<ShippingMethod>,
    rates: Vec<TaxRate>,
}

impl Checkout {
    pub fn new(db: Db, catalog: Catalog, payments: Payments) -> Self {
        let config = moka::future::Cache::builder()
            .max_capacity(50_000)
            .time_to_live(std::time::Duration::from_secs(30))
            .build();
        Self { db, catalog, payments, config }
    }

    /// The store's checkout configuration. Read (and on first use created) in its own
    /// committed transaction, before the caller opens one: a settings row created
    /// inside a placing transaction would be cached while uncommitted, and a second
    /// checkout taking the order number would wait on it while holding the stock lock
    /// the first one needs (a deadlock PostgreSQL reported under load). Callers must
    /// not hold a transaction (SQLite has one connection).
    async fn config(&self, tenant: TenantId) -> Result<Arc<StoreConfig>> {
        if let Some(c) = self.config.get(&tenant).await {
            return Ok(c);
        }
        let txn = self.db.tenant_txn(tenant).await?;
        let s = repo::settings(&txn, tenant).await?;
        let config = Arc::new(StoreConfig {
            prices_include_tax: s.prices_include_tax,
            order_expiry_minutes: s.order_expiry_minutes,
            auto_capture: s.auto_capture,
            methods: repo::shipping_methods(&txn, tenant).await?.iter().map(method_of).collect(),
            rates: repo::tax_rates(&txn, tenant).await?.iter().map(tax_of).collect(),
        });
        commit(txn).await?;
        self.config.insert(tenant, config.clone()).await;
        Ok(config)
    }

    /// After a settings change: the next read loads them again.
    async fn config_changed(&self, tenant: TenantId) {
        self.config.invalidate(&tenant).await;
    }

    pub fn payments(&self) -> &Payments {
        &self.payments
    }

    // ---- carts ------------------------------------------------------------------------

    /// The cart as it stands, priced now. An unknown or foreign id gives an empty cart.
    pub async fn cart(&self, tenant: &Tenant, cart: Option<Uuid>) -> Result<CartView> {
        let Some(cart_id) = cart else { return Ok(CartView::default()) };
        let config = self.config(tenant.id).await?;
        let txn = self.db.tenant_txn(tenant.id).await?;
        let view = self.cart_in(&txn, tenant, cart_id, &config).await?;
        commit(txn).await?;
        Ok(view.unwrap_or_default())
    }

    async fn cart_in(
        &self,
        txn: &DatabaseTransaction,
        tenant: &Tenant,
        cart_id: Uuid,
        config: &StoreConfig,
    ) -> Result<Option<CartView>> {
        let Some(cart) = repo::cart(txn, tenant.id, cart_id).await? else { return Ok(None) };
        let lines = repo::cart_lines(txn, tenant.id, cart_id).await?;
        let ids: Vec<Uuid> = lines.iter().map(|(v, _)| *v).collect();
        let variants = ecom_store::catalog::variants_by_ids(txn, tenant.id, &ids).await?;
        let (methods, rates) = (&config.methods, &config.rates);
        let money = |v: i64| Money::new(v, tenant.currency).display();
        let mut view = CartView {
            id: Some(cart_id),
            customer_id: cart.customer_id,
            email: cart.email.clone(),
            phone: cart.phone.clone(),
            address: cart.address.as_ref().and_then(|a| serde_json::from_value(a.clone()).ok()),
            shipping_code: cart.shipping_code.clone(),
            discount_code: cart.discount_code.clone(),
            ..Default::default()
        };
        let mut priced = Vec::new();
        for (variant_id, quantity) in lines {
            let quantity = u32::try_from(quantity).unwrap_or(0);
            let Some(v) = variants.iter().find(|v| v.variant.id == variant_id) else { continue };
            let sellable = v.product_status == ecom_core::catalog::ProductStatus::Active;
            let available = i64::from(v.variant.stock.max(0));
            let problem = if !sellable {
                Some(format!("{} is no longer sold.", v.product_title))
            } else if available == 0 {
                Some(format!("{} is sold out.", v.product_title))
            } else if i64::from(quantity) > available {
                Some(format!("Only {available} of {} left.", v.product_title))
            } else {
                None
            };
            if let Some(p) = &problem {
                view.problems.push(p.clone());
            }
            let weight = i64::from(v.variant.weight_grams.unwrap_or(0));
            priced.push(PricedLine { unit_price: v.variant.price, quantity, weight_grams: weight });
            view.item_count += quantity;
            view.lines.push(CartLine {
                variant_id,
                product_handle: v.product_handle.clone(),
                title: v.product_title.clone(),
                variant_title: v.variant.option_values.join(" / "),
                sku: v.variant.sku.clone().unwrap_or_default(),
                unit_price: money(v.variant.price),
                unit_price_minor: v.variant.price,
                quantity,
                line_total: money(v.variant.price.saturating_mul(i64::from(quantity))),
                available,
                weight_grams: weight,
                problem,
            });
        }
        // Discount: checked against the subtotal before it.
        let subtotal: i64 = priced.iter().map(|l| l.unit_price * i64::from(l.quantity)).sum();
        let mut discount = None;
        if !cart.discount_code.is_empty() {
            match repo::discount_by_code(txn, tenant.id, &cart.discount_code).await? {
                None => view.discount_problem = Some(format!("There is no discount code {}.", cart.discount_code)),
                Some(row) => {
                    let d = discount_of(&row);
                    match d.refusal(subtotal, Utc::now(), tenant.currency) {
                        Some(why) => view.discount_problem = Some(why),
                        None => discount = Some(d),
                    }
                }
            }
        }
        let goods = subtotal - discount.as_ref().map_or(0, |d| d.amount_off(subtotal));
        let weight: i64 = priced.iter().map(|l| l.weight_grams * i64::from(l.quantity)).sum();
        let country = view.address.as_ref().map(|a| a.country.clone());
        view.shipping_options = methods
            .iter()
            .filter(|m| country.as_deref().is_none_or(|c| m.ships_to(c)))
            .map(|m| {
                let cost = m.cost(goods, weight);
                ShippingOption { code: m.code.clone(), title: m.title.clone(), cost: money(cost), cost_minor: cost }
            })
            .collect();
        let chosen = methods
            .iter()
            .find(|m| m.code == cart.shipping_code && view.shipping_options.iter().any(|o| o.code == m.code));
        let applicable: Vec<&TaxRate> = view.address.as_ref().map(|a| rates_for(rates, a)).unwrap_or_default();
        let totals = price(&priced, discount.as_ref(), chosen, &applicable, config.prices_include_tax);
        view.totals = totals_view(&totals, tenant.currency);
        view.totals.has_shipping = chosen.is_some();
        Ok(Some(view))
    }

    /// Adds to the cart (making one when `cart` is None or not this store's), checking
    /// stock. Returns the cart's id.
    pub async fn add_to_cart(
        &self,
        tenant: &Tenant,
        cart: Option<Uuid>,
        customer: Option<AccountId>,
        variant: Uuid,
        quantity: u32,
    ) -> Result<Uuid> {
        self.add_lines(tenant, CartTarget::OrNew(cart, customer), &[(variant, quantity)]).await
    }

    /// Adds lines to a cart, all or none, checking each against stock (quantities
    /// already in the cart count). Returns the cart's id.
    pub async fn add_lines(&self, tenant: &Tenant, target: CartTarget, lines: &[(Uuid, u32)]) -> Result<Uuid> {
        for (_, quantity) in lines {
            if *quantity == 0 || *quantity > MAX_LINE_QUANTITY {
                return Err(Invalid::new("quantity", format!("must be 1 to {MAX_LINE_QUANTITY}")).into());
            }
        }
        let txn = self.db.tenant_txn(tenant.id).await?;
        let ids: Vec<Uuid> = lines.iter().map(|(v, _)| *v).collect();
        let found = ecom_store::catalog::variants_by_ids(&txn, tenant.id, &ids).await?;
        let existing = match target {
            CartTarget::Existing(id) | CartTarget::OrNew(Some(id), _) => repo::cart(&txn, tenant.id, id).await?,
            CartTarget::OrNew(None, _) => None,
        };
        let (cart_id, new_cart) = match (existing, target) {
            (Some(c), _) => (c.id, false),
            (None, CartTarget::Existing(_)) => return Err(ServiceError::NotFound),
            (None, CartTarget::OrNew(_, customer)) => {
                let id = Uuid::new_v4();
                repo::create_cart(&txn, tenant.id, id, customer.map(|c| c.0)).await?;
                (id, true)
            }
        };
        // A cart made just now has no lines to read.
        let mut current = if new_cart { Vec::new() } else { repo::cart_lines(&txn, tenant.id, cart_id).await? };
        for (variant, quantity) in lines {
            let Some(v) = found
                .iter()
                .find(|v| v.variant.id == *variant && v.product_status == ecom_core::catalog::ProductStatus::Active)
            else {
                return Err(ServiceError::NotFound);
            };
            let had = current.iter().find(|(id, _)| id == variant).map_or(0, |(_, q)| *q);
            if had == 0 && current.len() >= MAX_CART_LINES {
                return Err(
                    Invalid::new("cart", format!("a cart holds at most {MAX_CART_LINES} different items")).into()
                );
            }
            let wanted = i64::from(had) + i64::from(*quantity);
            let stock = i64::from(v.variant.stock.max(0));
            if stock == 0 {
                return Err(Invalid::new("quantity", format!("{} is sold out", v.product_title)).into());
            }
            if wanted > stock {
                return Err(Invalid::new(
                    "quantity",
                    format!(
                        "only {stock} of {} left{}",
                        v.product_title,
                        if had > 0 { format!(" (you have {had} in your cart)") } else { String::new() }
                    ),
                )
                .into());
            }
            let wanted = i32::try_from(wanted.min(i64::from(MAX_LINE_QUANTITY))).unwrap_or(1);
            if had == 0 && new_cart {
                repo::insert_cart_line(&txn, tenant.id, cart_id, *variant, wanted).await?;
            } else {
                repo::set_cart_line(&txn, tenant.id, cart_id, *variant, wanted).await?;
            }
            match current.iter_mut().find(|(id, _)| id == variant) {
                Some(line) => line.1 = wanted,
                None => current.push((*variant, wanted)),
            }
        }
        commit(txn).await?;
        Ok(cart_id)
    }

    /// Makes an empty cart.
    pub async fn create_cart(&self, tenant: &Tenant, customer: Option<AccountId>) -> Result<Uuid> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let id = Uuid::new_v4();
        repo::create_cart(&txn, tenant.id, id, customer.map(|c| c.0)).await?;
        commit(txn).await?;
        Ok(id)
    }

    /// Sets a line's quantity (0 removes it). More than in stock is refused.
    pub async fn set_quantity(&self, tenant: &Tenant, cart: Uuid, variant: Uuid, quantity: u32) -> Result<()> {
        self.set_quantities(tenant, cart, &[(variant, quantity)]).await
    }

    /// Sets lines' quantities (0 removes), all or none; more than in stock is refused.
    pub async fn set_quantities(&self, tenant: &Tenant, cart: Uuid, lines: &[(Uuid, u32)]) -> Result<()> {
        if lines.iter().any(|(_, q)| *q > MAX_LINE_QUANTITY) {
            return Err(Invalid::new("quantity", format!("must be 0 to {MAX_LINE_QUANTITY}")).into());
        }
        let txn = self.db.tenant_txn(tenant.id).await?;
        if repo::cart(&txn, tenant.id, cart).await?.is_none() {
            return Err(ServiceError::NotFound);
        }
        let ids: Vec<Uuid> = lines.iter().filter(|(_, q)| *q > 0).map(|(v, _)| *v).collect();
        let found = if ids.is_empty() {
            Vec::new()
        } else {
            ecom_store::catalog::variants_by_ids(&txn, tenant.id, &ids).await?
        };
        for (variant, quantity) in lines {
            if *quantity > 0 {
                let Some(v) = found.iter().find(|v| v.variant.id == *variant) else {
                    return Err(ServiceError::NotFound);
                };
                if i64::from(*quantity) > i64::from(v.variant.stock.max(0)) {
                    return Err(Invalid::new(
                        "quantity",
                        format!("only {} of {} left", v.variant.stock.max(0), v.product_title),
                    )
                    .into());
                }
            }
            repo::set_cart_line(&txn, tenant.id, cart, *variant, i32::try_from(*quantity).unwrap_or(0)).await?;
        }
        commit(txn).await
    }

    /// At sign-in: the guest cart's lines join the customer's saved cart (quantities
    /// added, capped at stock), and the result is the customer's cart from then on.
    pub async fn merge_at_login(
        &self,
        tenant: &Tenant,
        guest: Option<Uuid>,
        customer: AccountId,
    ) -> Result<Option<Uuid>> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let saved = repo::customer_cart(&txn, tenant.id, customer.0).await?;
        let guest = match guest {
            Some(id) => {
                repo::cart(&txn, tenant.id, id).await?.filter(|c| c.customer_id.is_none_or(|c| c == customer.0))
            }
            None => None,
        };
        let result = match (guest, saved) {
            (None, None) => None,
            (None, Some(saved)) => Some(saved.id),
            (Some(guest), None) => {
                repo::set_cart_customer(&txn, tenant.id, guest.id, customer.0).await?;
                Some(guest.id)
            }
            (Some(guest), Some(saved)) if guest.id == saved.id => Some(saved.id),
            (Some(guest), Some(saved)) => {
                let theirs = repo::cart_lines(&txn, tenant.id, saved.id).await?;
                let ours = repo::cart_lines(&txn, tenant.id, guest.id).await?;
                let ids: Vec<Uuid> = ours.iter().map(|(v, _)| *v).collect();
                let stock = ecom_store::catalog::variants_by_ids(&txn, tenant.id, &ids).await?;
                for (variant, q) in ours {
                    let had = theirs.iter().find(|(v, _)| *v == variant).map_or(0, |(_, q)| *q);
                    let cap = stock.iter().find(|s| s.variant.id == variant).map_or(0, |s| s.variant.stock.max(0));
                    let merged = (had + q).min(cap.max(had)).min(MAX_LINE_QUANTITY as i32);
                    repo::set_cart_line(&txn, tenant.id, saved.id, variant, merged).await?;
                }
                repo::delete_cart(&txn, tenant.id, guest.id).await?;
                Some(saved.id)
            }
        };
        commit(txn).await?;
        Ok(result)
    }

    /// Saves contact, address, shipping choice and discount code. The address is
    /// checked only once the shopper has typed one.
    pub async fn save_details(&self, tenant: &Tenant, cart: Uuid, d: CheckoutDetails) -> Result<()> {
        let d = checked_details(d)?;
        let txn = self.db.tenant_txn(tenant.id).await?;
        if !repo::set_cart_details(&txn, tenant.id, cart, &d.as_repo()).await? {
            return Err(ServiceError::NotFound);
        }
        commit(txn).await
    }

    /// Changes some of a cart's details, leaving the rest as they are; checked as the
    /// checkout form's are. `customer` attaches the cart to a signed-in customer.
    pub async fn update_cart(&self, tenant: &Tenant, cart: Uuid, patch: CartPatch) -> Result<()> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let Some(row) = repo::cart(&txn, tenant.id, cart).await? else { return Err(ServiceError::NotFound) };
        let current: Option<Address> = row.address.as_ref().and_then(|a| serde_json::from_value(a.clone()).ok());
        let details = CheckoutDetails {
            email: patch.email.unwrap_or(row.email),
            phone: patch.phone.unwrap_or(row.phone),
            address: patch.address.unwrap_or(current).unwrap_or_default(),
            shipping_code: patch.shipping_code.unwrap_or(row.shipping_code),
            discount_code: patch.discount_code.unwrap_or(row.discount_code),
        };
        let d = checked_details(details)?;
        repo::set_cart_details(&txn, tenant.id, cart, &d.as_repo()).await?;
        if let Some(customer) = patch.customer {
            repo::set_cart_customer(&txn, tenant.id, cart, customer.0).await?;
        }
        commit(txn).await
    }

    // ---- placing orders --------------------------------------------------------------------

    /// Places the cart as an order and charges it. Safe to call twice for the same
    /// cart (a double click, a retry after a timeout): the second call finds the order.
    pub async fn place_order(
        &self,
        tenant: &Tenant,
        cart_id: Uuid,
        customer: Option<AccountId>,
        choice: &PaymentChoice,
    ) -> Result<PlaceOutcome> {
        self.place(tenant, cart_id, customer, None, choice, None).await
    }

    /// Places the cart and charges it, for API clients that send an idempotency key
    /// with each payment attempt: the same key again returns the same outcome without
    /// charging twice; a new key after a decline is a new charge of the same order.
    pub async fn complete(
        &self,
        tenant: &Tenant,
        cart_id: Uuid,
        customer: Option<AccountId>,
        choice: &PaymentChoice,
        key: &str,
    ) -> Result<PlaceOutcome> {
        let key = key.trim();
        if key.is_empty() || key.len() > 64 || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) {
            return Err(Invalid::new("idempotency key", "use 1 to 64 letters, digits and - _ . :").into());
        }
        let txn = self.db.tenant_txn(tenant.id).await?;
        let existing = repo::order_by_cart(&txn, tenant.id, cart_id).await?;
        commit(txn).await?;
        match existing {
            Some(order) => {
                let (number, token) = (order.number, order.access_token.clone());
                let payment_error = self.charge(tenant, order, Attempt::Client(key), choice, None).await?;
                Ok(PlaceOutcome::Placed { number, token, payment_error })
            }
            None => self.place(tenant, cart_id, customer, None, choice, Some(key)).await,
        }
    }

    /// Saves the checkout form's details and places the order, in one transaction
    /// (what the checkout page's "Place order" does). Bad details are an `Invalid` error.
    pub async fn save_and_place(
        &self,
        tenant: &Tenant,
        cart_id: Uuid,
        customer: Option<AccountId>,
        details: CheckoutDetails,
        choice: &PaymentChoice,
    ) -> Result<PlaceOutcome> {
        let details = checked_details(details)?;
        self.place(tenant, cart_id, customer, Some(details), choice, None).await
    }

    async fn place(
        &self,
        tenant: &Tenant,
        cart_id: Uuid,
        customer: Option<AccountId>,
        details: Option<CheckedDetails>,
        choice: &PaymentChoice,
        key: Option<&str>,
    ) -> Result<PlaceOutcome> {
        let Some(provider) = self.payments.get(&choice.provider).cloned() else {
            return Ok(PlaceOutcome::Refused("Choose how you want to pay.".into()));
        };
        let settings = self.config(tenant.id).await?;
        let txn = self.db.tenant_txn(tenant.id).await?;
        if let Some(order) = repo::order_by_cart(&txn, tenant.id, cart_id).await? {
            commit(txn).await?;
            return Ok(PlaceOutcome::Placed { number: order.number, token: order.access_token, payment_error: None });
        }
        if let Some(d) = &details
            && !repo::set_cart_details(&txn, tenant.id, cart_id, &d.as_repo()).await?
        {
            return Ok(PlaceOutcome::Refused("Your cart is empty.".into()));
        }
        let Some(view) = self.cart_in(&txn, tenant, cart_id, &settings).await? else {
            return Ok(PlaceOutcome::Refused("Your cart is empty.".into()));
        };
        if view.lines.is_empty() {
            return Ok(PlaceOutcome::Refused("Your cart is empty.".into()));
        }
        if let Some(problem) = view.problems.first() {
            return Ok(PlaceOutcome::Refused(problem.clone()));
        }
        if view.email.is_empty() {
            return Ok(PlaceOutcome::Refused("Enter your email address.".into()));
        }
        let Some(address) = view.address.clone() else {
            return Ok(PlaceOutcome::Refused("Enter a shipping address.".into()));
        };
        let Some(shipping) = view.shipping_options.iter().find(|o| o.code == view.shipping_code) else {
            return Ok(PlaceOutcome::Refused("Choose a shipping method.".into()));
        };
        if let Some(why) = &view.discount_problem {
            return Ok(PlaceOutcome::Refused(why.clone()));
        }
        // Take the stock: all lines or none (the transaction rolls back on a refusal).
        let mut low_stock = false;
        for line in &view.lines {
            let q = i32::try_from(line.quantity).unwrap_or(i32::MAX);
            if let Some(left) = repo::take_stock(&txn, tenant.id, line.variant_id, q).await? {
                low_stock |= left < LOW_STOCK_SHOWN;
                // Crossing the low-stock line, or selling out: tell the integrations.
                let before = left.saturating_add(q);
                crate::catalog::inventory_low_if_crossed(&txn, tenant.id, line.variant_id, &line.sku, before, left)
                    .await?;
            } else {
                txn.rollback().await.map_err(StoreError::from)?;
                return Ok(PlaceOutcome::Refused(format!(
                    "Sorry, {} sold out while you were checking out.",
                    line.title
                )));
            }
        }
        if view.totals.has_discount && !repo::use_discount(&txn, tenant.id, &view.discount_code).await? {
            txn.rollback().await.map_err(StoreError::from)?;
            return Ok(PlaceOutcome::Refused(format!("The code {} has just been used up.", view.discount_code)));
        }
        let now = Utc::now();
        let order_id = Uuid::now_v7();
        let t = &view.totals.raw;
        let mut row = OrderRow {
            id: order_id,
            tenant_id: tenant.id.0,
            number: 0,
            cart_id,
            access_token: random_token(),
            customer_id: customer.map(|c| c.0).or(view.customer_id),
            email: view.email.clone(),
            phone: view.phone.clone(),
            address: serde_json::to_value(&address).unwrap_or_default(),
            shipping_code: shipping.code.clone(),
            shipping_title: shipping.title.clone(),
            currency: tenant.currency.code().to_owned(),
            subtotal: t.subtotal,
            discount: t.discount,
            shipping: t.shipping,
            tax: t.tax,
            taxes_included: t.taxes_included,
            total: t.total,
            refunded: 0,
            discount_code: if t.discount > 0 { view.discount_code.clone() } else { String::new() },
            status: OrderStatus::PendingPayment.as_str().into(),
            payment_status: PaymentStatus::Pending.as_str().into(),
            return_status: ReturnStatus::None.as_str().into(),
            payment_provider: provider.code().into(),
            carrier: String::new(),
            tracking_number: String::new(),
            placed_at: now,
            expires_at: Some(now + chrono::Duration::minutes(i64::from(settings.order_expiry_minutes.max(1)))),
            updated_at: now,
        };
        let lines: Vec<repo::LineRow> = view
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| repo::LineRow {
                id: Uuid::now_v7(),
                tenant_id: tenant.id.0,
                order_id,
                product_id: None,
                variant_id: Some(l.variant_id),
                title: l.title.clone(),
                variant_title: l.variant_title.clone(),
                sku: l.sku.clone(),
                unit_price: l.unit_price_minor,
                quantity: i32::try_from(l.quantity).unwrap_or(i32::MAX),
                fulfilled: 0,
                weight_grams: i32::try_from(l.weight_grams).unwrap_or(0),
                position: i32::try_from(i).unwrap_or(0),
            })
            .collect();
        if let Some(c) = customer {
            repo::save_address(&txn, tenant.id, c.0, serde_json::to_value(&address).unwrap_or_default()).await?;
        }
        repo::delete_cart(&txn, tenant.id, cart_id).await?;
        // The number last: taking it locks the store's counter until commit, and every
        // checkout of the store waits on that lock, so it is held for as little as can be.
        let number = repo::take_order_number(&txn, tenant.id).await?;
        row.number = number;
        let token = row.access_token.clone();
        let actor = Actor::Shopper(view.email.clone());
        let payload = order_payload(&row, &view.lines.iter().map(|l| (l.variant_id, l.quantity)).collect::<Vec<_>>());
        let placed = row.clone();
        if let Err(e) = repo::insert_order(&txn, row, lines).await {
            // A concurrent request placed this cart first: give back its order.
            let _ = txn.rollback().await;
            let txn = self.db.tenant_txn(tenant.id).await?;
            let existing = repo::order_by_cart(&txn, tenant.id, cart_id).await?;
            commit(txn).await?;
            return match existing {
                Some(o) => Ok(PlaceOutcome::Placed { number: o.number, token: o.access_token, payment_error: None }),
                None => Err(e.into()),
            };
        }
        repo::add_event(&txn, tenant.id, order_id, "placed", &format!("Order #{number} placed."), &actor.label())
            .await?;
        repo::outbox(&txn, tenant.id, Topic::OrderPlaced.as_str(), payload).await?;
        commit(txn).await?;
        // Pages say "only N left" below LOW_STOCK_SHOWN and "sold out" at 0; above
        // that an order changes nothing a page shows, so rendered pages stay cached.
        if low_stock {
            self.catalog.invalidate(tenant.id);
        }

        // The order as just written, with no payment yet: no need to read it back.
        let attempt = key.map_or(Attempt::Count(0), Attempt::Client);
        let payment_error = self.charge(tenant, placed, attempt, choice, Some(settings.auto_capture)).await?;
        Ok(PlaceOutcome::Placed { number, token, payment_error })
    }

    /// Charges an order waiting for payment (at checkout, or again after a decline).
    /// Returns the shopper-facing reason when the charge did not go through.
    pub async fn pay(
        &self,
        tenant: &Tenant,
        order_id: Uuid,
        choice: &PaymentChoice,
        capture: bool,
    ) -> Result<Option<String>> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let order = repo::order_by_id(&txn, tenant.id, order_id).await?.ok_or(ServiceError::NotFound)?;
        let attempts = repo::payments_of(&txn, tenant.id, order_id).await?.len();
        commit(txn).await?;
        self.charge(tenant, order, Attempt::Count(attempts), choice, Some(capture)).await
    }

    /// Charges `order` (as read) in the given attempt; `capture` None means the store's
    /// setting.
    async fn charge(
        &self,
        tenant: &Tenant,
        order: OrderRow,
        attempt: Attempt<'_>,
        choice: &PaymentChoice,
        capture: Option<bool>,
    ) -> Result<Option<String>> {
        let order_id = order.id;
        let state = state_of(&order)?;
        if state.status != OrderStatus::PendingPayment || state.payment != PaymentStatus::Pending {
            return Ok(None);
        }
        let Some(provider) = self.payments.get(&choice.provider).cloned() else {
            return Ok(Some("Choose how you want to pay.".into()));
        };
        let capture = match capture {
            Some(c) => c,
            None => self.config(tenant.id).await?.auto_capture,
        };
        // One key per attempt: retrying the same attempt cannot charge twice, a new
        // attempt after a decline is a new charge.
        let key = match attempt {
            Attempt::Count(n) => format!("{order_id}:charge:{n}"),
            Attempt::Client(k) => format!("{order_id}:charge:key:{k}"),
        };
        if let Attempt::Client(_) = attempt {
            // This attempt was made before: its outcome stands (a declined card stays
            // declined under the same key, as at the provider).
            let txn = self.db.tenant_txn(tenant.id).await?;
            let earlier = repo::payment_by_key(&txn, tenant.id, &key).await?;
            commit(txn).await?;
            if let Some(p) = earlier {
                return Ok((p.status == "declined").then_some(p.error));
            }
        }
        let request = ChargeRequest {
            amount: order.total,
            currency: order.currency.clone(),
            token: choice.token.clone(),
            capture,
            idempotency_key: key.clone(),
            tenant_id: tenant.id.0,
            order_id,
        };
        let outcome = match provider.charge(&request).await {
            Ok(o) => o,
            Err(PaymentError::Unavailable(e)) => {
                tracing::warn!(error = %e, order = %order_id, "payment provider unavailable");
                // No payment is recorded, so the next try uses the same idempotency key
                // and cannot charge twice; the timeline tells the shopper's order page.
                let message = "The payment service is not answering; your order is saved, try paying again.";
                let txn = self.db.tenant_txn(tenant.id).await?;
                let actor = Actor::Provider(provider.code());
                repo::add_event(&txn, tenant.id, order_id, "payment_failed", message, &actor.label()).await?;
                commit(txn).await?;
                return Ok(Some(message.into()));
            }
            Err(PaymentError::Refused(e)) => return Ok(Some(e)),
        };
        let (status, reference, error, action) = match &outcome {
            ChargeOutcome::Captured { reference } => {
                ("succeeded", reference.clone(), String::new(), Some(OrderAction::Pay))
            }
            ChargeOutcome::Authorized { reference } => {
                ("authorized", reference.clone(), String::new(), Some(OrderAction::Authorize))
            }
            ChargeOutcome::Pending => ("pending", String::new(), String::new(), None),
            ChargeOutcome::Declined { message } => ("declined", String::new(), message.clone(), None),
        };
        let txn = self.db.tenant_txn(tenant.id).await?;
        repo::record_payment(
            &txn,
            repo::PaymentRow {
                id: Uuid::now_v7(),
                tenant_id: tenant.id.0,
                order_id,
                provider: provider.code().into(),
                kind: if capture { "sale".into() } else { "authorization".into() },
                amount: order.total,
                status: status.into(),
                reference: reference.clone(),
                idempotency_key: key,
                error: error.clone(),
                created_at: Utc::now(),
            },
        )
        .await?;
        let actor = Actor::Provider(provider.code());
        match (&outcome, action) {
            (_, Some(action)) => {
                let message = match action {
                    OrderAction::Pay => format!(
                        "Payment of {} received ({reference}).",
                        Money::new(order.total, tenant.currency).display()
                    ),
                    _ => format!(
                        "Payment of {} authorised ({reference}).",
                        Money::new(order.total, tenant.currency).display()
                    ),
                };
                // The provider's webhook for this very charge may have been applied
                // while we waited for the provider: lock and re-read the order, and leave
                // it be when it already shows the payment.
                repo::lock_order(&txn, tenant.id, order_id).await?;
                let current = repo::order_by_id(&txn, tenant.id, order_id).await?.ok_or(ServiceError::NotFound)?;
                let target = state_of(&order)?.apply(action).map_err(|why| Invalid::new("order", why))?.payment;
                if state_of(&current)?.payment != target {
                    self.transition_in(&txn, tenant, &current, action, &message, &actor, |_| {}).await?;
                }
            }
            (ChargeOutcome::Declined { message }, None) => {
                repo::add_event(
                    &txn,
                    tenant.id,
                    order_id,
                    "payment_failed",
                    &format!("Payment declined: {message}"),
                    &actor.label(),
                )
                .await?;
            }
            _ => {
                let message = if provider.code() == "manual" {
                    "Waiting for a manual payment.".to_owned()
                } else {
                    format!("Waiting for {} to confirm the payment.", provider.title())
                };
                repo::add_event(&txn, tenant.id, order_id, "awaiting_payment", &message, &actor.label()).await?;
            }
        }
        commit(txn).await?;
        Ok(match outcome {
            ChargeOutcome::Declined { message } => Some(message),
            _ => None,
        })
    }

    /// Applies a state change inside `txn`: checked, written only if the order is still
    /// as read, with its timeline entry and outbox event. `edit` changes other fields.
    #[allow(clippy::too_many_arguments)]
    async fn transition_in(
        &self,
        txn: &DatabaseTransaction,
        tenant: &Tenant,
        order: &OrderRow,
        action: OrderAction,
        message: &str,
        actor: &Actor,
        edit: impl FnOnce(&mut OrderRow),
    ) -> Result<OrderRow> {
        self.transition_with(txn, tenant, order, action, message, actor, edit, serde_json::Value::Null).await
    }

    /// [`Self::transition_in`], with `extra` fields in the event's data.
    #[allow(clippy::too_many_arguments)]
    async fn transition_with(
        &self,
        txn: &DatabaseTransaction,
        tenant: &Tenant,
        order: &OrderRow,
        action: OrderAction,
        message: &str,
        actor: &Actor,
        edit: impl FnOnce(&mut OrderRow),
        extra: serde_json::Value,
    ) -> Result<OrderRow> {
        let before = state_of(order)?;
        let after = before.apply(action).map_err(|why| Invalid::new("order", why))?;
        let mut next = order.clone();
        next.status = after.status.as_str().into();
        next.payment_status = after.payment.as_str().into();
        next.return_status = after.returns.as_str().into();
        if after.status != OrderStatus::PendingPayment {
            next.expires_at = None;
        }
        edit(&mut next);
        let expected = (order.status.as_str(), order.payment_status.as_str(), order.return_status.as_str());
        if !repo::update_order(txn, tenant.id, &next, expected).await? {
            return Err(
                Invalid::new("order", "it was changed by someone else a moment ago; reload and try again").into()
            );
        }
        let topic = topic_of(action, after);
        repo::add_event(txn, tenant.id, order.id, topic.trim_start_matches("order."), message, &actor.label()).await?;
        let mut payload = order_payload(&next, &[]);
        if let (Some(data), serde_json::Value::Object(extra)) = (payload.as_object_mut(), extra) {
            data.extend(extra);
        }
        repo::outbox(txn, tenant.id, topic, payload).await?;
        Ok(next)
    }

    /// A merchant's action on an order. Provider calls (capture, refund, void) happen
    /// first, with idempotency keys derived from the order and the action, so a retry
    /// after a failure cannot move money twice.
    pub async fn command(&self, tenant: &Tenant, order_id: Uuid, command: OrderCommand, actor: &Actor) -> Result<()> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let order = repo::order_by_id(&txn, tenant.id, order_id).await?.ok_or(ServiceError::NotFound)?;
        let payments = repo::payments_of(&txn, tenant.id, order_id).await?;
        let lines = repo::order_lines(&txn, tenant.id, &[order_id]).await?;
        commit(txn).await?;
        let state = state_of(&order)?;
        let money = |v: i64| Money::new(v, tenant.currency).display();
        let provider = self.payments.get(&order.payment_provider).cloned();
        let charge_ref = payments
            .iter()
            .rev()
            .find(|p| matches!(p.status.as_str(), "succeeded" | "authorized") && !p.reference.is_empty())
            .map(|p| p.reference.clone());
        let provider_call = |e: PaymentError| match e {
            PaymentError::Unavailable(m) => ServiceError::Internal(m),
            PaymentError::Refused(m) => Invalid::new("payment", m).into(),
        };
        let txn = self.db.tenant_txn(tenant.id).await?;
        match command {
            OrderCommand::MarkPaid => {
                if order.payment_provider != "manual" {
                    return Err(Invalid::new(
                        "order",
                        "only manual payments are marked paid by hand; capture card payments",
                    )
                    .into());
                }
                self.transition_in(
                    &txn,
                    tenant,
                    &order,
                    OrderAction::Pay,
                    &format!("Marked paid ({}).", money(order.total)),
                    actor,
                    |_| {},
                )
                .await?;
            }
            OrderCommand::Capture => {
                state.apply(OrderAction::Pay).map_err(|w| Invalid::new("order", w))?;
                if state.payment != PaymentStatus::Authorized {
                    return Err(Invalid::new("order", "there is no authorised payment to capture").into());
                }
                let (Some(p), Some(reference)) = (&provider, &charge_ref) else {
                    return Err(Invalid::new("order", "there is no authorised payment to capture").into());
                };
                let key = format!("{order_id}:capture");
                p.capture(reference, order.total, &key).await.map_err(provider_call)?;
                self.record(&txn, tenant, &order, p.code(), "capture", order.total, reference, &key).await?;
                self.transition_in(
                    &txn,
                    tenant,
                    &order,
                    OrderAction::Pay,
                    &format!("Captured {}.", money(order.total)),
                    actor,
                    |_| {},
                )
                .await?;
            }
            OrderCommand::Fulfil(wanted) => {
                let mut changes = Vec::new();
                for line in &lines {
                    let left = line.quantity - line.fulfilled;
                    let q = if wanted.is_empty() {
                        left
                    } else {
                        wanted.iter().filter(|(id, _)| *id == line.id).map(|(_, q)| *q).sum::<i32>()
                    };
                    if q < 0 || q > left {
                        return Err(Invalid::new("quantity", format!("{}: {left} left to fulfil", line.title)).into());
                    }
                    if q > 0 {
                        changes.push((line, q));
                    }
                }
                if changes.is_empty() {
                    return Err(Invalid::new("quantity", "choose what to fulfil").into());
                }
                let all = lines.iter().all(|l| {
                    l.fulfilled + changes.iter().find(|(c, _)| c.id == l.id).map_or(0, |(_, q)| *q) >= l.quantity
                });
                let what: Vec<String> = changes.iter().map(|(l, q)| format!("{q} × {}", l.title)).collect();
                for (line, q) in &changes {
                    repo::set_line_fulfilled(&txn, tenant.id, line.id, line.fulfilled + q).await?;
                }
                self.transition_in(
                    &txn,
                    tenant,
                    &order,
                    OrderAction::Fulfil { all },
                    &format!("Fulfilled {}.", what.join(", ")),
                    actor,
                    |_| {},
                )
                .await?;
            }
            OrderCommand::Ship { carrier, tracking } => {
                let (carrier, tracking) = (carrier.trim().to_owned(), tracking.trim().to_owned());
                if carrier.is_empty() || tracking.is_empty() || carrier.len() > 100 || tracking.len() > 100 {
                    return Err(Invalid::new("tracking", "enter the carrier and the tracking number").into());
                }
                let message = format!("Shipped with {carrier}, tracking number {tracking}.");
                let all_lines = lines.iter().all(|l| l.fulfilled >= l.quantity);
                if !all_lines {
                    // Shipping fulfils whatever was left.
                    for l in &lines {
                        repo::set_line_fulfilled(&txn, tenant.id, l.id, l.quantity).await?;
                    }
                }
                self.transition_in(&txn, tenant, &order, OrderAction::Ship, &message, actor, |o| {
                    o.carrier = carrier.clone();
                    o.tracking_number = tracking.clone();
                })
                .await?;
            }
            OrderCommand::OutForDelivery => {
                self.transition_in(
                    &txn,
                    tenant,
                    &order,
                    OrderAction::OutForDelivery,
                    "Out for delivery.",
                    actor,
                    |_| {},
                )
                .await?;
            }
            OrderCommand::Deliver => {
                self.transition_in(&txn, tenant, &order, OrderAction::Deliver, "Delivered.", actor, |_| {}).await?;
            }
            OrderCommand::Cancel { restock } => {
                state.apply(OrderAction::Cancel).map_err(|w| Invalid::new("order", w))?;
                if state.payment == PaymentStatus::Authorized
                    && let (Some(p), Some(reference)) = (&provider, &charge_ref)
                {
                    p.void(reference, &format!("{order_id}:void")).await.map_err(provider_call)?;
                }
                if restock {
                    for l in &lines {
                        if let Some(v) = l.variant_id {
                            repo::release_stock(&txn, tenant.id, v, l.quantity - l.fulfilled).await?;
                        }
                    }
                }
                let message = if restock { "Cancelled; items put back in stock." } else { "Cancelled." };
                self.transition_in(&txn, tenant, &order, OrderAction::Cancel, message, actor, |_| {}).await?;
                self.catalog.invalidate(tenant.id);
            }
            OrderCommand::Refund { amount, reason } => {
                let left = order.total - order.refunded;
                if amount <= 0 || amount > left {
                    return Err(
                        Invalid::new("amount", format!("refund between {} and {}", money(1), money(left))).into()
                    );
                }
                let all = amount == left;
                state.apply(OrderAction::Refund { all }).map_err(|w| Invalid::new("order", w))?;
                let key = format!("{order_id}:refund:{}:{amount}", order.refunded);
                let code = provider.as_ref().map_or("manual", |p| p.code());
                if let Some(p) = &provider {
                    p.refund(charge_ref.as_deref().unwrap_or(""), amount, &key).await.map_err(provider_call)?;
                }
                self.record(&txn, tenant, &order, code, "refund", amount, charge_ref.as_deref().unwrap_or(""), &key)
                    .await?;
                let reason = reason.trim();
                let message = if reason.is_empty() {
                    format!("Refunded {}.", money(amount))
                } else {
                    format!("Refunded {}: {reason}", money(amount))
                };
                self.transition_in(&txn, tenant, &order, OrderAction::Refund { all }, &message, actor, |o| {
                    o.refunded += amount
                })
                .await?;
            }
            OrderCommand::RequestReturn { reason } => {
                let reason = reason.trim();
                let message = if reason.is_empty() {
                    "Return requested.".to_owned()
                } else {
                    format!("Return requested: {reason}")
                };
                self.transition_in(&txn, tenant, &order, OrderAction::RequestReturn, &message, actor, |_| {}).await?;
            }
            OrderCommand::ReceiveReturn { lines: wanted, restock } => {
                let returned = crate::returns::returned_lines(&lines, &wanted)?;
                let message = crate::returns::timeline_message(&returned, restock);
                let extra = crate::returns::event_data(&returned, restock);
                // The transition's conditional update lets one recording win; the stock
                // goes back in the same transaction, so it goes back once.
                self.transition_with(&txn, tenant, &order, OrderAction::ReceiveReturn, &message, actor, |_| {}, extra)
                    .await?;
                if restock {
                    for (line, q) in &returned {
                        if let Some(v) = line.variant_id {
                            repo::release_stock(&txn, tenant.id, v, *q).await?;
                        }
                    }
                    self.catalog.invalidate(tenant.id);
                }
            }
        }
        if let Actor::Staff(_) | Actor::App(_) = actor {
            repo::audit(&txn, tenant.id, &actor.label(), "order.update", &format!("order #{}", order.number), "")
                .await?;
        }
        commit(txn).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        txn: &DatabaseTransaction,
        tenant: &Tenant,
        order: &OrderRow,
        provider: &str,
        kind: &str,
        amount: i64,
        reference: &str,
        key: &str,
    ) -> Result<()> {
        repo::record_payment(
            txn,
            repo::PaymentRow {
                id: Uuid::now_v7(),
                tenant_id: tenant.id.0,
                order_id: order.id,
                provider: provider.into(),
                kind: kind.into(),
                amount,
                status: "succeeded".into(),
                reference: reference.into(),
                idempotency_key: key.into(),
                error: String::new(),
                created_at: Utc::now(),
            },
        )
        .await?;
        Ok(())
    }

    /// Applies a verified provider webhook. Replays (same event id) change nothing;
    /// an event that the order's state already reflects is recorded and ignored.
    pub async fn apply_webhook(&self, provider: &str, event: &crate::payments::WebhookEvent) -> Result<bool> {
        let tenant_id = TenantId(event.tenant_id);
        let txn = self.db.tenant_txn(tenant_id).await?;
        if !repo::first_sight_of_webhook(&txn, tenant_id, provider, &event.id).await? {
            commit(txn).await?;
            return Ok(false);
        }
        // Events the provider sends that mean nothing here (Stripe's `charge.succeeded`,
        // `payment_intent.created`…): remembered, so a replay is known, and that is all.
        if event.kind == "ignored" {
            commit(txn).await?;
            return Ok(true);
        }
        let Some(order) = repo::order_by_id(&txn, tenant_id, event.order_id).await? else {
            commit(txn).await?;
            return Ok(true);
        };
        let state = state_of(&order)?;
        let action = match event.kind.as_str() {
            "charge.captured" => Some(OrderAction::Pay),
            "charge.authorized" => Some(OrderAction::Authorize),
            _ => None,
        };
        let actor = Actor::Provider(if provider == "stripe" { "stripe" } else { "test_card" });
        // Money confirmed for less than the order's total does not pay it.
        let enough = event.amount >= order.total;
        let shown = |minor: i64| match ecom_core::Currency::parse(&order.currency) {
            Ok(c) => Money::new(minor, c).display(),
            Err(_) => format!("{minor} (minor units of {})", order.currency),
        };
        match action {
            Some(a) if state.apply(a).is_ok() && enough && !event.reference.is_empty() => {
                let message = format!("Payment confirmed by the provider ({}).", event.reference);
                let before = order.clone();
                let after = state.apply(a).map_err(|w| Invalid::new("order", w))?;
                let mut next = before.clone();
                next.status = after.status.as_str().into();
                next.payment_status = after.payment.as_str().into();
                if after.status != OrderStatus::PendingPayment {
                    next.expires_at = None;
                }
                let expected = (before.status.as_str(), before.payment_status.as_str(), before.return_status.as_str());
                if repo::update_order(&txn, tenant_id, &next, expected).await? {
                    // The payment's reference, so that capture, refund and void find it
                    // (the charge's own answer may never have arrived).
                    repo::record_payment(
                        &txn,
                        repo::PaymentRow {
                            id: Uuid::now_v7(),
                            tenant_id: tenant_id.0,
                            order_id: order.id,
                            provider: provider.into(),
                            kind: if a == OrderAction::Pay { "sale".into() } else { "authorization".into() },
                            amount: event.amount,
                            status: if a == OrderAction::Pay { "succeeded".into() } else { "authorized".into() },
                            reference: event.reference.clone(),
                            idempotency_key: format!("webhook:{provider}:{}", event.id),
                            error: String::new(),
                            created_at: Utc::now(),
                        },
                    )
                    .await?;
                    let topic = topic_of(a, after);
                    repo::add_event(
                        &txn,
                        tenant_id,
                        order.id,
                        topic.trim_start_matches("order."),
                        &message,
                        &actor.label(),
                    )
                    .await?;
                    repo::outbox(&txn, tenant_id, topic, order_payload(&next, &[])).await?;
                }
            }
            Some(a) if state.apply(a).is_ok() => {
                repo::add_event(
                    &txn,
                    tenant_id,
                    order.id,
                    "webhook",
                    &format!(
                        "Provider event {} ({}) not applied: it confirms {} of {}.",
                        event.kind,
                        event.id,
                        shown(event.amount),
                        shown(order.total)
                    ),
                    &actor.label(),
                )
                .await?;
            }
            _ => {
                repo::add_event(
                    &txn,
                    tenant_id,
                    order.id,
                    "webhook",
                    &format!("Provider event {} ({}).", event.kind, event.id),
                    &actor.label(),
                )
                .await?;
            }
        }
        commit(txn).await?;
        Ok(true)
    }

    /// Expires unpaid orders past their time and puts their stock back. Returns how
    /// many expired.
    pub async fn expire_due(&self, now: DateTime<Utc>) -> Result<usize> {
        let txn = self.db.platform_txn().await?;
        let due = repo::expired_orders(&txn, now, 200).await?;
        commit(txn).await?;
        let mut expired = 0;
        for (tenant_id, order_id) in due {
            let tenant_id = TenantId(tenant_id);
            let txn = self.db.tenant_txn(tenant_id).await?;
            let Some(order) = repo::order_by_id(&txn, tenant_id, order_id).await? else { continue };
            let lines = repo::order_lines(&txn, tenant_id, &[order_id]).await?;
            let state = state_of(&order)?;
            let Ok(after) = state.apply(OrderAction::Expire) else { continue };
            let mut next = order.clone();
            next.status = after.status.as_str().into();
            next.payment_status = after.payment.as_str().into();
            next.expires_at = None;
            let expected = (order.status.as_str(), order.payment_status.as_str(), order.return_status.as_str());
            if !repo::update_order(&txn, tenant_id, &next, expected).await? {
                continue; // Paid a moment ago.
            }
            for l in &lines {
                if let Some(v) = l.variant_id {
                    repo::release_stock(&txn, tenant_id, v, l.quantity).await?;
                }
            }
            let actor = Actor::System("expiry");
            repo::add_event(
                &txn,
                tenant_id,
                order_id,
                "expired",
                "Not paid in time; items put back in stock.",
                &actor.label(),
            )
            .await?;
            repo::outbox(&txn, tenant_id, Topic::OrderExpired.as_str(), order_payload(&next, &[])).await?;
            commit(txn).await?;
            self.catalog.invalidate(tenant_id);
            expired += 1;
        }
        Ok(expired)
    }

    // ---- reading orders ---------------------------------------------------------------------

    async fn view_of(&self, txn: &DatabaseTransaction, tenant: &Tenant, row: OrderRow) -> Result<OrderView> {
        let lines = repo::order_lines(txn, tenant.id, &[row.id]).await?;
        let events = repo::events(txn, tenant.id, row.id).await?;
        let payments = repo::payments_of(txn, tenant.id, row.id).await?;
        let state = state_of(&row)?;
        let m = |v: i64| Money::new(v, tenant.currency).display();
        let address: Address = serde_json::from_value(row.address.clone()).unwrap_or_default();
        let totals = Totals {
            subtotal: row.subtotal,
            discount: row.discount,
            shipping: row.shipping,
            tax: row.tax,
            taxes_included: row.taxes_included,
            total: row.total,
            weight_grams: 0,
        };
        let mut totals = totals_view(&totals, tenant.currency);
        totals.has_shipping = true;
        Ok(OrderView {
            id: row.id,
            number: row.number,
            name: format!("#{}", row.number),
            token: row.access_token.clone(),
            email: row.email.clone(),
            phone: row.phone.clone(),
            customer_id: row.customer_id,
            address_line: address.one_line(),
            address,
            shipping_title: row.shipping_title.clone(),
            status: state.status.as_str(),
            status_label: state.status.label(),
            payment_status: state.payment.as_str(),
            payment_label: state.payment.label(),
            return_status: state.returns.as_str(),
            return_label: state.returns.label(),
            payment_provider: row.payment_provider.clone(),
            carrier: row.carrier.clone(),
            tracking_number: row.tracking_number.clone(),
            totals,
            refunded: m(row.refunded),
            refunded_minor: row.refunded,
            refundable_minor: if matches!(state.payment, PaymentStatus::Paid | PaymentStatus::PartiallyRefunded) {
                row.total - row.refunded
            } else {
                0
            },
            currency: row.currency.clone(),
            placed_at: row.placed_at,
            expires_at: row.expires_at,
            lines: lines
                .into_iter()
                .map(|l| OrderLineView {
                    id: l.id,
                    variant_id: l.variant_id,
                    line_total: m(l.unit_price * i64::from(l.quantity)),
                    unit_price: m(l.unit_price),
                    unit_price_minor: l.unit_price,
                    title: l.title,
                    variant_title: l.variant_title,
                    sku: l.sku,
                    quantity: l.quantity,
                    fulfilled: l.fulfilled,
                })
                .collect(),
            events: events
                .into_iter()
                .map(|e| EventView { kind: e.kind, message: e.message, actor: e.actor, at: e.created_at })
                .collect(),
            payments: payments
                .into_iter()
                .map(|p| PaymentView {
                    provider: p.provider,
                    kind: p.kind,
                    amount: m(p.amount),
                    status: p.status,
                    reference: p.reference,
                    error: p.error,
                    at: p.created_at,
                })
                .collect(),
            discount_code: row.discount_code,
        })
    }

    /// Ships order `number` with this tracking, as a logistics system reports it, and
    /// moves it on to the delivery stage the carrier reports (`status`). The same
    /// tracking or a stage the order has reached already changes nothing, so a retried
    /// or late report is harmless.
    pub async fn add_tracking(
        &self,
        tenant: &Tenant,
        number: i64,
        carrier: &str,
        tracking: &str,
        status: Option<crate::returns::CarrierStatus>,
        actor: &Actor,
    ) -> Result<OrderView> {
        use crate::returns::{CarrierStatus, stage_of};
        let mut order = self.order(tenant, number).await?.ok_or(ServiceError::NotFound)?;
        let (carrier, tracking) = (carrier.trim(), tracking.trim());
        if tracking.is_empty() || order.carrier != carrier || order.tracking_number != tracking {
            let ship = OrderCommand::Ship { carrier: carrier.to_owned(), tracking: tracking.to_owned() };
            self.command(tenant, order.id, ship, actor).await?;
            order = self.order(tenant, number).await?.ok_or(ServiceError::NotFound)?;
        }
        let Some(status) = status else { return Ok(order) };
        if status.rank() <= stage_of(order.status) {
            return Ok(order);
        }
        let step = match status {
            CarrierStatus::InTransit => return Ok(order),
            CarrierStatus::OutForDelivery => OrderCommand::OutForDelivery,
            CarrierStatus::Delivered => OrderCommand::Deliver,
        };
        self.command(tenant, order.id, step, actor).await?;
        self.order(tenant, number).await?.ok_or(ServiceError::NotFound)
    }

    /// An order by its number (merchant panel).
    pub async fn order(&self, tenant: &Tenant, number: i64) -> Result<Option<OrderView>> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let view = match repo::order_by_number(&txn, tenant.id, number).await? {
            Some(row) => Some(self.view_of(&txn, tenant, row).await?),
            None => None,
        };
        commit(txn).await?;
        Ok(view)
    }

    /// An order by id (APIs, tests).
    pub async fn order_by_id(&self, tenant: &Tenant, id: Uuid) -> Result<Option<OrderView>> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let view = match repo::order_by_id(&txn, tenant.id, id).await? {
            Some(row) => Some(self.view_of(&txn, tenant, row).await?),
            None => None,
        };
        commit(txn).await?;
        Ok(view)
    }

    /// An order by its secret token (the guest's confirmation page).
    pub async fn order_by_token(&self, tenant: &Tenant, token: &str) -> Result<Option<OrderView>> {
        if token.len() != 48 || !token.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let txn = self.db.tenant_txn(tenant.id).await?;
        let view = match repo::order_by_token(&txn, tenant.id, token).await? {
            Some(row) => Some(self.view_of(&txn, tenant, row).await?),
            None => None,
        };
        commit(txn).await?;
        Ok(view)
    }

    /// Orders, newest first, with the number matching in all.
    pub async fn orders(&self, tenant: &Tenant, filter: &repo::OrderFilter) -> Result<(Vec<OrderSummary>, u64)> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let (rows, total) = repo::list_orders(&txn, tenant.id, filter).await?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let lines = repo::order_lines(&txn, tenant.id, &ids).await?;
        commit(txn).await?;
        let list = rows
            .into_iter()
            .map(|r| {
                let state = state_of(&r)?;
                Ok(OrderSummary {
                    id: r.id,
                    number: r.number,
                    name: format!("#{}", r.number),
                    token: r.access_token.clone(),
                    email: r.email.clone(),
                    total: Money::new(r.total, tenant.currency).display(),
                    total_minor: r.total,
                    status: state.status.as_str(),
                    status_label: state.status.label(),
                    payment_status: state.payment.as_str(),
                    payment_label: state.payment.label(),
                    placed_at: r.placed_at,
                    items: lines.iter().filter(|l| l.order_id == r.id).map(|l| i64::from(l.quantity)).sum(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((list, total))
    }

    /// "Order again": the order's items into the customer's cart at today's prices,
    /// as many as are in stock. Returns the cart and what could not be added.
    pub async fn order_again(
        &self,
        tenant: &Tenant,
        customer: AccountId,
        number: i64,
        cart: Option<Uuid>,
    ) -> Result<(Uuid, Vec<String>)> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let order = repo::order_by_number(&txn, tenant.id, number)
            .await?
            .filter(|o| o.customer_id == Some(customer.0))
            .ok_or(ServiceError::NotFound)?;
        let lines = repo::order_lines(&txn, tenant.id, &[order.id]).await?;
        commit(txn).await?;
        let mut cart = cart;
        let mut missing = Vec::new();
        for l in lines {
            let Some(v) = l.variant_id else { continue };
            match self.add_to_cart(tenant, cart, Some(customer), v, u32::try_from(l.quantity).unwrap_or(1)).await {
                Ok(id) => cart = Some(id),
                Err(ServiceError::NotFound) => missing.push(format!("{} is no longer sold.", l.title)),
                Err(ServiceError::Invalid(e)) => missing.push(format!("{}: {}", l.title, e.message)),
                Err(e) => return Err(e),
            }
        }
        let cart = match cart {
            Some(c) => c,
            None => {
                let txn = self.db.tenant_txn(tenant.id).await?;
                let id = Uuid::new_v4();
                repo::create_cart(&txn, tenant.id, id, Some(customer.0)).await?;
                commit(txn).await?;
                id
            }
        };
        Ok((cart, missing))
    }

    // ---- settings -----------------------------------------------------------------------------

    pub async fn settings(&self, tenant: &Tenant) -> Result<CheckoutSettings> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let s = repo::settings(&txn, tenant.id).await?;
        let shipping = repo::shipping_methods(&txn, tenant.id).await?;
        let taxes = repo::tax_rates(&txn, tenant.id).await?;
        let discounts = repo::discounts(&txn, tenant.id).await?;
        commit(txn).await?;
        let m = |v: i64| Money::new(v, tenant.currency).decimal();
        Ok(CheckoutSettings {
            prices_include_tax: s.prices_include_tax,
            order_expiry_minutes: s.order_expiry_minutes,
            auto_capture: s.auto_capture,
            manual_instructions: s.manual_instructions,
            shipping: shipping
                .iter()
                .map(|r| ShippingSetting {
                    code: r.code.clone(),
                    title: r.title.clone(),
                    base: m(r.base),
                    per_kg: m(r.per_kg),
                    free_over: r.free_over.map(m).unwrap_or_default(),
                    countries: r.countries.clone(),
                })
                .collect(),
            taxes: taxes
                .iter()
                .map(|r| TaxSetting {
                    id: r.id,
                    country: r.country.clone(),
                    region: r.region.clone(),
                    name: r.name.clone(),
                    percent: format!("{}", f64::from(r.basis_points) / 100.0),
                })
                .collect(),
            discounts: discounts
                .iter()
                .map(|r| DiscountSetting {
                    code: r.code.clone(),
                    description: match r.kind.as_str() {
                        "fixed" => format!("{} off", Money::new(r.value, tenant.currency).display()),
                        _ => format!("{}% off", f64::from(u32::try_from(r.value).unwrap_or(0)) / 100.0),
                    },
                    min_subtotal: if r.min_subtotal > 0 {
                        Money::new(r.min_subtotal, tenant.currency).display()
                    } else {
                        String::new()
                    },
                    usage: match r.usage_limit {
                        Some(limit) => format!("{} of {limit}", r.used),
                        None => format!("{} (no limit)", r.used),
                    },
                    expires_at: r.expires_at,
                    active: r.active,
                })
                .collect(),
        })
    }

    pub async fn save_general_settings(
        &self,
        tenant: &Tenant,
        prices_include_tax: bool,
        order_expiry_minutes: i32,
        auto_capture: bool,
        manual_instructions: &str,
        actor: &Actor,
    ) -> Result<()> {
        if !(5..=10_080).contains(&order_expiry_minutes) {
            return Err(Invalid::new("order expiry", "between 5 minutes and 7 days (10080 minutes)").into());
        }
        let txn = self.db.tenant_txn(tenant.id).await?;
        repo::save_settings(
            &txn,
            tenant.id,
            prices_include_tax,
            order_expiry_minutes,
            auto_capture,
            manual_instructions.trim(),
        )
        .await?;
        let detail = format!(
            "prices include tax: {prices_include_tax}, expiry: {order_expiry_minutes} min, auto capture: {auto_capture}"
        );
        repo::audit(&txn, tenant.id, &actor.label(), "settings.checkout", "checkout settings", &detail).await?;
        commit(txn).await?;
        self.config_changed(tenant.id).await;
        Ok(())
    }

    /// Adds or replaces a shipping method; amounts as typed (decimal).
    #[allow(clippy::too_many_arguments)]
    pub async fn save_shipping(
        &self,
        tenant: &Tenant,
        code: &str,
        title: &str,
        base: &str,
        per_kg: &str,
        free_over: &str,
        countries: &str,
        actor: &Actor,
    ) -> Result<()> {
        let code = code.trim().to_lowercase();
        if code.is_empty()
            || code.len() > 60
            || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Invalid::new("code", "letters, digits, - and _ (e.g. standard)").into());
        }
        let title = title.trim();
        if title.is_empty() || title.len() > 200 {
            return Err(Invalid::new("title", "enter a name shoppers see, e.g. Standard shipping").into());
        }
        let amount = |field: &'static str, v: &str| -> Result<i64> {
            if v.trim().is_empty() { Ok(0) } else { Ok(Money::parse(field, v, tenant.currency)?.minor) }
        };
        let base = amount("price", base)?;
        let per_kg = amount("per kg", per_kg)?;
        let free_over = if free_over.trim().is_empty() { None } else { Some(amount("free over", free_over)?) };
        let mut list = Vec::new();
        for c in countries.split(',').map(|c| c.trim().to_ascii_uppercase()).filter(|c| !c.is_empty()) {
            if !ecom_core::checkout::COUNTRIES.iter().any(|(code, ..)| *code == c) {
                return Err(Invalid::new("countries", format!("{c} is not a country checkout ships to")).into());
            }
            list.push(c);
        }
        let txn = self.db.tenant_txn(tenant.id).await?;
        let position = i32::try_from(repo::shipping_methods(&txn, tenant.id).await?.len()).unwrap_or(0);
        repo::save_shipping_method(&txn, tenant.id, &code, title, base, per_kg, free_over, &list.join(","), position)
            .await?;
        repo::audit(&txn, tenant.id, &actor.label(), "settings.shipping", &code, title).await?;
        commit(txn).await?;
        self.config_changed(tenant.id).await;
        Ok(())
    }

    pub async fn delete_shipping(&self, tenant: &Tenant, code: &str, actor: &Actor) -> Result<()> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        if !repo::delete_shipping_method(&txn, tenant.id, code).await? {
            return Err(ServiceError::NotFound);
        }
        repo::audit(&txn, tenant.id, &actor.label(), "settings.shipping.delete", code, "").await?;
        commit(txn).await?;
        self.config_changed(tenant.id).await;
        Ok(())
    }

    /// Sets a tax rate, `percent` as typed ("20", "8.875").
    pub async fn save_tax(
        &self,
        tenant: &Tenant,
        country: &str,
        region: &str,
        name: &str,
        percent: &str,
        actor: &Actor,
    ) -> Result<()> {
        let country = country.trim().to_ascii_uppercase();
        if !ecom_core::checkout::COUNTRIES.iter().any(|(c, ..)| *c == country) {
            return Err(Invalid::new("country", "choose a country checkout ships to").into());
        }
        let bp = parse_percent(percent)?;
        let name = if name.trim().is_empty() { "Tax" } else { name.trim() };
        let txn = self.db.tenant_txn(tenant.id).await?;
        repo::save_tax_rate(&txn, tenant.id, &country, region.trim(), name, bp).await?;
        repo::audit(
            &txn,
            tenant.id,
            &actor.label(),
            "settings.tax",
            &format!("{country} {}", region.trim()),
            &format!("{name} {percent}%"),
        )
        .await?;
        commit(txn).await?;
        self.config_changed(tenant.id).await;
        Ok(())
    }

    pub async fn delete_tax(&self, tenant: &Tenant, id: Uuid, actor: &Actor) -> Result<()> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        if !repo::delete_tax_rate(&txn, tenant.id, id).await? {
            return Err(ServiceError::NotFound);
        }
        repo::audit(&txn, tenant.id, &actor.label(), "settings.tax.delete", &id.to_string(), "").await?;
        commit(txn).await?;
        self.config_changed(tenant.id).await;
        Ok(())
    }

    /// Creates a discount code. `value` is a percentage ("15") or an amount ("10.00").
    #[allow(clippy::too_many_arguments)]
    pub async fn create_discount(
        &self,
        tenant: &Tenant,
        code: &str,
        kind: &str,
        value: &str,
        min_subtotal: &str,
        usage_limit: &str,
        expires_at: Option<DateTime<Utc>>,
        actor: &Actor,
    ) -> Result<()> {
        let code = Discount::normalise(code);
        if code.is_empty()
            || code.len() > 60
            || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Invalid::new("code", "letters, digits, - and _ (e.g. SUMMER15)").into());
        }
        let (kind, value) = match kind {
            "percent" => {
                let bp = parse_percent(value)?;
                if bp == 0 || bp > 10_000 {
                    return Err(Invalid::new("value", "a percentage between 0 and 100").into());
                }
                ("percent", i64::from(bp))
            }
            "fixed" => ("fixed", Money::parse("value", value, tenant.currency)?.minor),
            _ => return Err(Invalid::new("kind", "percentage or fixed amount").into()),
        };
        let min = if min_subtotal.trim().is_empty() {
            0
        } else {
            Money::parse("minimum subtotal", min_subtotal, tenant.currency)?.minor
        };
        let limit = match usage_limit.trim() {
            "" => None,
            n => Some(
                n.parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| Invalid::new("usage limit", "a whole number above 0, or empty for no limit"))?,
            ),
        };
        let txn = self.db.tenant_txn(tenant.id).await?;
        repo::insert_discount(&txn, tenant.id, &code, kind, value, min, limit, expires_at).await?;
        repo::audit(&txn, tenant.id, &actor.label(), "settings.discount", &code, &format!("{kind} {value}")).await?;
        commit(txn).await
    }

    pub async fn set_discount_active(&self, tenant: &Tenant, code: &str, active: bool, actor: &Actor) -> Result<()> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        if !repo::set_discount_active(&txn, tenant.id, code, active).await? {
            return Err(ServiceError::NotFound);
        }
        repo::audit(
            &txn,
            tenant.id,
            &actor.label(),
            if active { "settings.discount.enable" } else { "settings.discount.disable" },
            code,
            "",
        )
        .await?;
        commit(txn).await
    }

    /// A customer's saved addresses.
    pub async fn addresses(&self, tenant: &Tenant, customer: AccountId) -> Result<Vec<(Uuid, Address, bool)>> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let rows = repo::addresses(&txn, tenant.id, customer.0).await?;
        commit(txn).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| Some((r.id, serde_json::from_value(r.address).ok()?, r.is_default)))
            .collect())
    }

    pub async fn save_address(&self, tenant: &Tenant, customer: AccountId, address: Address) -> Result<()> {
        let address = address.validate()?;
        let txn = self.db.tenant_txn(tenant.id).await?;
        repo::save_address(&txn, tenant.id, customer.0, serde_json::to_value(address).unwrap_or_default()).await?;
        commit(txn).await
    }

    pub async fn delete_address(&self, tenant: &Tenant, customer: AccountId, id: Uuid) -> Result<()> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        if !repo::delete_address(&txn, tenant.id, customer.0, id).await? {
            return Err(ServiceError::NotFound);
        }
        commit(txn).await
    }

    /// The store's customers with their order count and lifetime value (paid orders,
    /// net of refunds), 50 a page.
    pub async fn customers(&self, tenant: &Tenant, search: &str, page: u64) -> Result<(Vec<CustomerSummary>, i64)> {
        self.customers_window(tenant, search, 50, page.saturating_sub(1) * 50).await
    }

    /// `limit` customers from `offset` on (the APIs' pages), with how many match in all.
    pub async fn customers_window(
        &self,
        tenant: &Tenant,
        search: &str,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<CustomerSummary>, i64)> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let (rows, total) = ecom_store::accounts::list_customers(&txn, tenant.id, Some(search), limit, offset).await?;
        let ids: Vec<Uuid> = rows.iter().map(|c| c.id.0).collect();
        let totals = repo::customer_totals(&txn, tenant.id, &ids).await?;
        commit(txn).await?;
        let list = rows
            .into_iter()
            .map(|c| {
                let (orders, spent) =
                    totals.iter().find(|(id, ..)| *id == c.id.0).map_or((0, 0), |(_, n, spent)| (*n, *spent));
                CustomerSummary {
                    id: c.id.0,
                    email: c.email,
                    name: c.name,
                    orders,
                    lifetime_value: Money::new(spent, tenant.currency).display(),
                    lifetime_value_minor: spent,
                }
            })
            .collect();
        Ok((list, total))
    }

    /// One customer with their orders.
    pub async fn customer(&self, tenant: &Tenant, id: Uuid) -> Result<Option<(CustomerSummary, Vec<OrderSummary>)>> {
        let txn = self.db.tenant_txn(tenant.id).await?;
        let found =
            ecom_store::accounts::find_by_id(&txn, ecom_core::Realm::Customer(tenant.id), AccountId(id)).await?;
        let totals = repo::customer_totals(&txn, tenant.id, &[id]).await?;
        commit(txn).await?;
        let Some(c) = found else { return Ok(None) };
        let (orders, spent) = totals.first().map_or((0, 0), |(_, n, s)| (*n, *s));
        let filter = repo::OrderFilter { customer: Some(id), limit: 200, ..Default::default() };
        let (list, _) = self.orders(tenant, &filter).await?;
        let summary = CustomerSummary {
            id,
            email: c.email,
            name: c.name,
            orders,
            lifetime_value: Money::new(spent, tenant.currency).display(),
            lifetime_value_minor: spent,
        };
        Ok(Some((summary, list)))
    }

    /// The store's audit log, newest first.
    pub async fn audit_log(
        &self,
        tenant: &Tenant,
        limit: u64,
    ) -> Result<Vec<ecom_store::entities::audit_entry::Model>> {
        crate::audit::recent(&self.db, tenant.id, limit).await
    }
}

/// A customer in the merchant panel's list.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerSummary {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub orders: i64,
    pub lifetime_value: String,
    pub lifetime_value_minor: i64,
}

/// Checkout details, checked and normalised.
struct CheckedDetails {
    email: String,
    phone: String,
    address: Option<serde_json::Value>,
    shipping_code: String,
    discount_code: String,
}

impl CheckedDetails {
    fn as_repo(&self) -> repo::CartDetails<'_> {
        repo::CartDetails {
            email: &self.email,
            phone: &self.phone,
            address: self.address.clone(),
            shipping_code: &self.shipping_code,
            discount_code: &self.discount_code,
        }
    }
}

impl CartPatch {
    /// Checks the given fields as `update_cart` would, without a cart: lets a caller
    /// refuse bad input before making anything.
    pub fn check(&self) -> Result<()> {
        checked_details(CheckoutDetails {
            email: self.email.clone().unwrap_or_default(),
            phone: self.phone.clone().unwrap_or_default(),
            address: self.address.clone().flatten().unwrap_or_default(),
            shipping_code: self.shipping_code.clone().unwrap_or_default(),
            discount_code: self.discount_code.clone().unwrap_or_default(),
        })
        .map(|_| ())
    }
}

/// Checks contact, address and code as typed. The address is checked only once the
/// shopper has typed one (the country select alone is not an address).
fn checked_details(d: CheckoutDetails) -> Result<CheckedDetails> {
    let email = d.email.trim().to_lowercase();
    if !email.is_empty() {
        Email::parse(&email)?;
    }
    let phone = d.phone.trim().to_owned();
    if phone.len() > 40 || phone.chars().any(|c| !(c.is_ascii_digit() || " +-().".contains(c))) {
        return Err(Invalid::new("phone", "use digits, spaces and + - ( ) only").into());
    }
    let typed = d.address != Address { country: d.address.country.clone(), ..Default::default() };
    let address = if typed { Some(d.address.validate()?) } else { None };
    let discount_code = Discount::normalise(&d.discount_code);
    if discount_code.len() > 60 {
        return Err(Invalid::new("discount code", "codes are at most 60 characters").into());
    }
    Ok(CheckedDetails {
        email,
        phone,
        address: address.map(|a| serde_json::to_value(a).unwrap_or_default()),
        shipping_code: d.shipping_code.trim().to_owned(),
        discount_code,
    })
}

/// The store's checkout configuration, for the settings page.
#[derive(Debug, Clone, Serialize)]
pub struct CheckoutSettings {
    pub prices_include_tax: bool,
    pub order_expiry_minutes: i32,
    pub auto_capture: bool,
    pub manual_instructions: String,
    pub shipping: Vec<ShippingSetting>,
    pub taxes: Vec<TaxSetting>,
    pub discounts: Vec<DiscountSetting>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ShippingSetting {
    pub code: String,
    pub title: String,
    pub base: String,
    pub per_kg: String,
    pub free_over: String,
    pub countries: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaxSetting {
    pub id: Uuid,
    pub country: String,
    pub region: String,
    pub name: String,
    pub percent: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiscountSetting {
    pub code: String,
    pub description: String,
    pub min_subtotal: String,
    pub usage: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub active: bool,
}

/// "20" → 2000 basis points, "8.875" → 888 (rounded to 2 decimals of a percent).
fn parse_percent(text: &str) -> Result<i32> {
    let bad = || Invalid::new("rate", format!("\"{}\" is not a percentage like 20 or 8.25", text.trim()));
    let t = text.trim().trim_end_matches('%').trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 2
    {
        return Err(bad().into());
    }
    let whole: i32 = whole.parse().map_err(|_| bad())?;
    let frac: i32 = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse().map_err(|_| bad())? };
    let bp = whole.checked_mul(100).and_then(|w| w.checked_add(frac)).ok_or_else(bad)?;
    if bp > 10_000 {
        return Err(Invalid::new("rate", "at most 100%").into());
    }
    Ok(bp)
}

/// The outbox topic for a transition (from the bus's event catalogue).
fn topic_of(action: OrderAction, after: OrderState) -> &'static str {
    let topic = match action {
        OrderAction::Authorize => Topic::OrderAuthorized,
        OrderAction::Pay => Topic::OrderPaid,
        OrderAction::Fulfil { all: true } => Topic::OrderFulfilled,
        OrderAction::Fulfil { all: false } => Topic::OrderPartiallyFulfilled,
        OrderAction::Ship => Topic::OrderShipped,
        OrderAction::OutForDelivery => Topic::OrderOutForDelivery,
        OrderAction::Deliver => Topic::OrderDelivered,
        OrderAction::Cancel => Topic::OrderCancelled,
        OrderAction::Expire => Topic::OrderExpired,
        OrderAction::Refund { .. } if after.payment == PaymentStatus::Refunded => Topic::OrderRefunded,
        OrderAction::Refund { .. } => Topic::OrderPartiallyRefunded,
        OrderAction::RequestReturn => Topic::OrderReturnRequested,
        OrderAction::ReceiveReturn => Topic::OrderReturnReceived,
    };
    topic.as_str()
}

/// What order events carry: enough for a consumer to act without reading back.
fn order_payload(row: &OrderRow, lines: &[(Uuid, u32)]) -> serde_json::Value {
    let mut v = serde_json::json!({
        "order_id": row.id,
        "number": row.number,
        "status": row.status,
        "payment_status": row.payment_status,
        "return_status": row.return_status,
        "total": row.total,
        "refunded": row.refunded,
        "currency": row.currency,
        "email": row.email,
        "carrier": row.carrier,
        "tracking_number": row.tracking_number,
    });
    if !lines.is_empty() {
        v["lines"] =
            lines.iter().map(|(variant, q)| serde_json::json!({ "variant_id": variant, "quantity": q })).collect();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_parse_to_basis_points() {
        assert_eq!(parse_percent("20").unwrap(), 2000);
        assert_eq!(parse_percent("8.25%").unwrap(), 825);
        assert_eq!(parse_percent("0.5").unwrap(), 50);
        for bad in ["", "abc", "-5", "8.875", "101", "1.2.3"] {
            assert!(parse_percent(bad).is_err(), "{bad:?}");
        }
    }
}
