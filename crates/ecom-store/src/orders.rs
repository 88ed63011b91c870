//! Carts, orders, payments, checkout settings, the outbox and the audit log. Every
//! function takes the transaction and the tenant; the caller decides what is one unit
//! of work (placing an order is: stock, order, lines, event, outbox row, together).

use crate::entities::{
    audit_entry, cart, cart_line, checkout_setting, customer_address, discount_code, order, order_event, order_line,
    outbox_event, payment, payment_webhook, product, shipping_method, tax_rate, variant,
};
use crate::{Result, StoreError};
use chrono::{DateTime, Utc};
use ecom_core::TenantId;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

pub use crate::entities::cart::Model as CartRow;
pub use crate::entities::checkout_setting::Model as SettingsRow;
pub use crate::entities::customer_address::Model as AddressRow;
pub use crate::entities::discount_code::Model as DiscountRow;
pub use crate::entities::order::Model as OrderRow;
pub use crate::entities::order_event::Model as EventRow;
pub use crate::entities::order_line::Model as LineRow;
pub use crate::entities::outbox_event::Model as OutboxRow;
pub use crate::entities::payment::Model as PaymentRow;
pub use crate::entities::shipping_method::Model as ShippingRow;
pub use crate::entities::tax_rate::Model as TaxRow;

fn now() -> DateTime<Utc> {
    Utc::now()
}

// ---- settings and order numbers ---------------------------------------------------

/// The store's checkout settings, created with defaults on first use.
pub async fn settings(txn: &DatabaseTransaction, tenant: TenantId) -> Result<SettingsRow> {
    if let Some(row) =
        checkout_setting::Entity::find().filter(checkout_setting::Column::TenantId.eq(tenant.0)).one(txn).await?
    {
        return Ok(row);
    }
    checkout_setting::Entity::insert(checkout_setting::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0),
        prices_include_tax: Set(false),
        order_expiry_minutes: Set(60),
        auto_capture: Set(true),
        manual_instructions: Set(String::new()),
        next_order_number: Set(1001),
    })
    .on_conflict(OnConflict::column(checkout_setting::Column::TenantId).do_nothing().to_owned())
    .exec_without_returning(txn)
    .await?;
    checkout_setting::Entity::find()
        .filter(checkout_setting::Column::TenantId.eq(tenant.0))
        .one(txn)
        .await?
        .ok_or_else(|| StoreError::Corrupt { table: "checkout_settings", detail: "row vanished".into() })
}

pub async fn save_settings(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    prices_include_tax: bool,
    order_expiry_minutes: i32,
    auto_capture: bool,
    manual_instructions: &str,
) -> Result<()> {
    settings(txn, tenant).await?;
    checkout_setting::Entity::update_many()
        .col_expr(checkout_setting::Column::PricesIncludeTax, Expr::value(prices_include_tax))
        .col_expr(checkout_setting::Column::OrderExpiryMinutes, Expr::value(order_expiry_minutes))
        .col_expr(checkout_setting::Column::AutoCapture, Expr::value(auto_capture))
        .col_expr(checkout_setting::Column::ManualInstructions, Expr::value(manual_instructions.to_owned()))
        .filter(checkout_setting::Column::TenantId.eq(tenant.0))
        .exec(txn)
        .await?;
    Ok(())
}

/// The next order number. The update locks the store's settings row until the
/// transaction ends, so numbers are gap-free and never handed out twice; it is one
/// statement (`RETURNING`), taken as late as possible so the lock is held briefly.
pub async fn take_order_number(txn: &DatabaseTransaction, tenant: TenantId) -> Result<i64> {
    let stmt = Query::update()
        .table(checkout_setting::Entity)
        .value(checkout_setting::Column::NextOrderNumber, Expr::col(checkout_setting::Column::NextOrderNumber).add(1))
        .and_where(Expr::col(checkout_setting::Column::TenantId).eq(tenant.0))
        .returning_col(checkout_setting::Column::NextOrderNumber)
        .to_owned();
    let row = match txn.query_one(&stmt).await? {
        Some(row) => row,
        None => {
            settings(txn, tenant).await?;
            txn.query_one(&stmt)
                .await?
                .ok_or_else(|| StoreError::Corrupt { table: "checkout_settings", detail: "no row".into() })?
        }
    };
    let next: i64 = row.try_get("", "next_order_number")?;
    Ok(next - 1)
}

// ---- shipping, taxes, discounts -----------------------------------------------------

pub async fn shipping_methods(txn: &DatabaseTransaction, tenant: TenantId) -> Result<Vec<ShippingRow>> {
    Ok(shipping_method::Entity::find()
        .filter(shipping_method::Column::TenantId.eq(tenant.0))
        .order_by_asc(shipping_method::Column::Position)
        .order_by_asc(shipping_method::Column::Title)
        .all(txn)
        .await?)
}

/// Adds or replaces (by code) a shipping method.
#[allow(clippy::too_many_arguments)]
pub async fn save_shipping_method(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    code: &str,
    title: &str,
    base: i64,
    per_kg: i64,
    free_over: Option<i64>,
    countries: &str,
    position: i32,
) -> Result<()> {
    shipping_method::Entity::delete_many()
        .filter(shipping_method::Column::TenantId.eq(tenant.0))
        .filter(shipping_method::Column::Code.eq(code))
        .exec(txn)
        .await?;
    shipping_method::Entity::insert(shipping_method::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0),
        code: Set(code.to_owned()),
        title: Set(title.to_owned()),
        base: Set(base),
        per_kg: Set(per_kg),
        free_over: Set(free_over),
        countries: Set(countries.to_owned()),
        position: Set(position),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

pub async fn delete_shipping_method(txn: &DatabaseTransaction, tenant: TenantId, code: &str) -> Result<bool> {
    let res = shipping_method::Entity::delete_many()
        .filter(shipping_method::Column::TenantId.eq(tenant.0))
        .filter(shipping_method::Column::Code.eq(code))
        .exec(txn)
        .await?;
    Ok(res.rows_affected > 0)
}

pub async fn tax_rates(txn: &DatabaseTransaction, tenant: TenantId) -> Result<Vec<TaxRow>> {
    Ok(tax_rate::Entity::find()
        .filter(tax_rate::Column::TenantId.eq(tenant.0))
        .order_by_asc(tax_rate::Column::Country)
        .order_by_asc(tax_rate::Column::Region)
        .all(txn)
        .await?)
}

/// Sets the rate for a country (and region); replaces an existing one.
pub async fn save_tax_rate(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    country: &str,
    region: &str,
    name: &str,
    basis_points: i32,
) -> Result<()> {
    tax_rate::Entity::delete_many()
        .filter(tax_rate::Column::TenantId.eq(tenant.0))
        .filter(tax_rate::Column::Country.eq(country))
        .filter(tax_rate::Column::Region.eq(region))
        .exec(txn)
        .await?;
    tax_rate::Entity::insert(tax_rate::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0),
        country: Set(country.to_owned()),
        region: Set(region.to_owned()),
        name: Set(name.to_owned()),
        basis_points: Set(basis_points),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

pub async fn delete_tax_rate(txn: &DatabaseTransaction, tenant: TenantId, id: Uuid) -> Result<bool> {
    let res = tax_rate::Entity::delete_many()
        .filter(tax_rate::Column::TenantId.eq(tenant.0))
        .filter(tax_rate::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(res.rows_affected > 0)
}

pub async fn discounts(txn: &DatabaseTransaction, tenant: TenantId) -> Result<Vec<DiscountRow>> {
    Ok(discount_code::Entity::find()
        .filter(discount_code::Column::TenantId.eq(tenant.0))
        .order_by_asc(discount_code::Column::Code)
        .all(txn)
        .await?)
}

pub async fn discount_by_code(txn: &DatabaseTransaction, tenant: TenantId, code: &str) -> Result<Option<DiscountRow>> {
    Ok(discount_code::Entity::find()
        .filter(discount_code::Column::TenantId.eq(tenant.0))
        .filter(discount_code::Column::Code.eq(code))
        .one(txn)
        .await?)
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_discount(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    code: &str,
    kind: &str,
    value: i64,
    min_subtotal: i64,
    usage_limit: Option<i64>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<()> {
    discount_code::Entity::insert(discount_code::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0),
        code: Set(code.to_owned()),
        kind: Set(kind.to_owned()),
        value: Set(value),
        min_subtotal: Set(min_subtotal),
        usage_limit: Set(usage_limit),
        used: Set(0),
        expires_at: Set(expires_at),
        active: Set(true),
        created_at: Set(now()),
    })
    .exec_without_returning(txn)
    .await
    .map_err(|e| StoreError::conflict_or_db(e, "that discount code"))?;
    Ok(())
}

pub async fn set_discount_active(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    code: &str,
    active: bool,
) -> Result<bool> {
    let res = discount_code::Entity::update_many()
        .col_expr(discount_code::Column::Active, Expr::value(active))
        .filter(discount_code::Column::TenantId.eq(tenant.0))
        .filter(discount_code::Column::Code.eq(code))
        .exec(txn)
        .await?;
    Ok(res.rows_affected > 0)
}

/// Counts one use of a code, unless its limit is reached (checked in the same
/// statement, so two last uses racing cannot both pass).
pub async fn use_discount(txn: &DatabaseTransaction, tenant: TenantId, code: &str) -> Result<bool> {
    let res = discount_code::Entity::update_many()
        .col_expr(discount_code::Column::Used, Expr::col(discount_code::Column::Used).add(1))
        .filter(discount_code::Column::TenantId.eq(tenant.0))
        .filter(discount_code::Column::Code.eq(code))
        .filter(
            Condition::any()
                .add(discount_code::Column::UsageLimit.is_null())
                .add(Expr::col(discount_code::Column::Used).lt(Expr::col(discount_code::Column::UsageLimit))),
        )
        .exec(txn)
        .await?;
    Ok(res.rows_affected == 1)
}

// ---- carts ---------------------------------------------------------------------------

pub async fn create_cart(txn: &DatabaseTransaction, tenant: TenantId, id: Uuid, customer: Option<Uuid>) -> Result<()> {
    cart::Entity::insert(cart::ActiveModel {
        id: Set(id),
        tenant_id: Set(tenant.0),
        customer_id: Set(customer),
        email: Set(String::new()),
        phone: Set(String::new()),
        address: Set(None),
        shipping_code: Set(String::new()),
        discount_code: Set(String::new()),
        created_at: Set(now()),
        updated_at: Set(now()),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

pub async fn cart(txn: &DatabaseTransaction, tenant: TenantId, id: Uuid) -> Result<Option<CartRow>> {
    Ok(cart::Entity::find()
        .filter(cart::Column::TenantId.eq(tenant.0))
        .filter(cart::Column::Id.eq(id))
        .one(txn)
        .await?)
}

/// The customer's most recent cart.
pub async fn customer_cart(txn: &DatabaseTransaction, tenant: TenantId, customer: Uuid) -> Result<Option<CartRow>> {
    Ok(cart::Entity::find()
        .filter(cart::Column::TenantId.eq(tenant.0))
        .filter(cart::Column::CustomerId.eq(customer))
        .order_by_desc(cart::Column::UpdatedAt)
        .one(txn)
        .await?)
}

pub async fn set_cart_customer(txn: &DatabaseTransaction, tenant: TenantId, id: Uuid, customer: Uuid) -> Result<()> {
    cart::Entity::update_many()
        .col_expr(cart::Column::CustomerId, Expr::value(customer))
        .col_expr(cart::Column::UpdatedAt, Expr::value(now()))
        .filter(cart::Column::TenantId.eq(tenant.0))
        .filter(cart::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Contact, address, shipping choice and discount code of a cart.
pub struct CartDetails<'a> {
    pub email: &'a str,
    pub phone: &'a str,
    pub address: Option<serde_json::Value>,
    pub shipping_code: &'a str,
    pub discount_code: &'a str,
}

/// Returns false when the cart is not the store's.
pub async fn set_cart_details(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    id: Uuid,
    d: &CartDetails<'_>,
) -> Result<bool> {
    let res = cart::Entity::update_many()
        .col_expr(cart::Column::Email, Expr::value(d.email.to_owned()))
        .col_expr(cart::Column::Phone, Expr::value(d.phone.to_owned()))
        .col_expr(cart::Column::Address, Expr::value(d.address.clone()))
        .col_expr(cart::Column::ShippingCode, Expr::value(d.shipping_code.to_owned()))
        .col_expr(cart::Column::DiscountCode, Expr::value(d.discount_code.to_owned()))
        .col_expr(cart::Column::UpdatedAt, Expr::value(now()))
        .filter(cart::Column::TenantId.eq(tenant.0))
        .filter(cart::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(res.rows_affected == 1)
}

pub async fn delete_cart(txn: &DatabaseTransaction, tenant: TenantId, id: Uuid) -> Result<()> {
    cart::Entity::delete_many()
        .filter(cart::Column::TenantId.eq(tenant.0))
        .filter(cart::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}

/// `(variant, quantity)` in the order they were added.
pub async fn cart_lines(txn: &DatabaseTransaction, tenant: TenantId, cart: Uuid) -> Result<Vec<(Uuid, i32)>> {
    Ok(cart_line::Entity::find()
        .select_only()
        .column(cart_line::Column::VariantId)
        .column(cart_line::Column::Quantity)
        .filter(cart_line::Column::TenantId.eq(tenant.0))
        .filter(cart_line::Column::CartId.eq(cart))
        .order_by_asc(cart_line::Column::CreatedAt)
        .order_by_asc(cart_line::Column::Id)
        .into_tuple()
        .all(txn)
        .await?)
}

/// Sets a line's quantity; 0 removes it.
pub async fn set_cart_line(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    cart: Uuid,
    variant: Uuid,
    quantity: i32,
) -> Result<()> {
    let existing = cart_line::Entity::find()
        .filter(cart_line::Column::TenantId.eq(tenant.0))
        .filter(cart_line::Column::CartId.eq(cart))
        .filter(cart_line::Column::VariantId.eq(variant))
        .one(txn)
        .await?;
    match (existing, quantity) {
        (Some(line), 0) => {
            cart_line::Entity::delete_by_id(line.id).exec(txn).await?;
        }
        (Some(line), q) => {
            cart_line::Entity::update_many()
                .col_expr(cart_line::Column::Quantity, Expr::value(q))
                .filter(cart_line::Column::Id.eq(line.id))
                .exec(txn)
                .await?;
        }
        (None, 0) => {}
        (None, q) => insert_cart_line(txn, tenant, cart, variant, q).await?,
    }
    cart::Entity::update_many()
        .col_expr(cart::Column::UpdatedAt, Expr::value(now()))
        .filter(cart::Column::TenantId.eq(tenant.0))
        .filter(cart::Column::Id.eq(cart))
        .exec(txn)
        .await?;
    Ok(())
}

/// Adds a line to a cart that does not have this variant yet (a cart made in the same
/// transaction, say); `set_cart_line` for the general case.
pub async fn insert_cart_line(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    cart: Uuid,
    variant: Uuid,
    quantity: i32,
) -> Result<()> {
    cart_line::Entity::insert(cart_line::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0),
        cart_id: Set(cart),
        variant_id: Set(variant),
        quantity: Set(quantity),
        created_at: Set(now()),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

// ---- stock -----------------------------------------------------------------------------

/// Takes `quantity` of a variant if that many are in stock, in one conditional
/// statement: concurrent checkouts of the last unit cannot both succeed (on
/// PostgreSQL the second waits on the row lock, then finds the condition false).
/// Returns the stock left, or `None` when there was not enough.
pub async fn take_stock(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    variant_id: Uuid,
    quantity: i32,
) -> Result<Option<i32>> {
    let stmt = Query::update()
        .table(variant::Entity)
        .value(variant::Column::Stock, Expr::col(variant::Column::Stock).sub(quantity))
        .and_where(Expr::col(variant::Column::TenantId).eq(tenant.0))
        .and_where(Expr::col(variant::Column::Id).eq(variant_id))
        .and_where(Expr::col(variant::Column::Stock).gte(quantity))
        .returning(Query::returning().columns([variant::Column::ProductId, variant::Column::Stock]))
        .to_owned();
    let Some(row) = txn.query_one(&stmt).await? else { return Ok(None) };
    let product_id: Uuid = row.try_get("", "product_id")?;
    let left: i32 = row.try_get("", "stock")?;
    product::Entity::update_many()
        .col_expr(product::Column::TotalStock, Expr::col(product::Column::TotalStock).sub(i64::from(quantity)))
        .filter(product::Column::TenantId.eq(tenant.0))
        .filter(product::Column::Id.eq(product_id))
        .exec(txn)
        .await?;
    Ok(Some(left))
}

/// Puts stock back (an order cancelled or expired).
pub async fn release_stock(txn: &DatabaseTransaction, tenant: TenantId, variant_id: Uuid, quantity: i32) -> Result<()> {
    let res = variant::Entity::update_many()
        .col_expr(variant::Column::Stock, Expr::col(variant::Column::Stock).add(quantity))
        .filter(variant::Column::TenantId.eq(tenant.0))
        .filter(variant::Column::Id.eq(variant_id))
        .exec(txn)
        .await?;
    if res.rows_affected == 1 {
        adjust_product_stock(txn, tenant, variant_id, i64::from(quantity)).await?;
    }
    Ok(())
}

async fn adjust_product_stock(txn: &DatabaseTransaction, tenant: TenantId, variant_id: Uuid, delta: i64) -> Result<()> {
    let product_id: Option<Uuid> = variant::Entity::find()
        .select_only()
        .column(variant::Column::ProductId)
        .filter(variant::Column::TenantId.eq(tenant.0))
        .filter(variant::Column::Id.eq(variant_id))
        .into_tuple()
        .one(txn)
        .await?;
    if let Some(pid) = product_id {
        product::Entity::update_many()
            .col_expr(product::Column::TotalStock, Expr::col(product::Column::TotalStock).add(delta))
            .filter(product::Column::TenantId.eq(tenant.0))
            .filter(product::Column::Id.eq(pid))
            .exec(txn)
            .await?;
    }
    Ok(())
}

// ---- orders ----------------------------------------------------------------------------

pub async fn insert_order(txn: &DatabaseTransaction, row: OrderRow, lines: Vec<LineRow>) -> Result<()> {
    order::Entity::insert(order::ActiveModel::from(row)).exec_without_returning(txn).await?;
    if !lines.is_empty() {
        order_line::Entity::insert_many(lines.into_iter().map(order_line::ActiveModel::from))
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

pub async fn order_by_id(txn: &DatabaseTransaction, tenant: TenantId, id: Uuid) -> Result<Option<OrderRow>> {
    Ok(order::Entity::find()
        .filter(order::Column::TenantId.eq(tenant.0))
        .filter(order::Column::Id.eq(id))
        .one(txn)
        .await?)
}

/// Several orders of one store by id, in one query per few hundred; ids not found are
/// left out.
pub async fn orders_by_ids(txn: &DatabaseTransaction, tenant: TenantId, ids: &[Uuid]) -> Result<Vec<OrderRow>> {
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        rows.extend(
            order::Entity::find()
                .filter(order::Column::TenantId.eq(tenant.0))
                .filter(order::Column::Id.is_in(chunk.to_vec()))
                .all(txn)
                .await?,
        );
    }
    Ok(rows)
}

/// Takes the order's row lock for the rest of the transaction (a no-op update), so that
/// a change read after it cannot be overtaken by a concurrent one (a provider's webhook
/// for the same payment, say). SQLite's single writer already gives this.
pub async fn lock_order(txn: &DatabaseTransaction, tenant: TenantId, id: Uuid) -> Result<()> {
    order::Entity::update_many()
        .col_expr(order::Column::Status, Expr::col(order::Column::Status))
        .filter(order::Column::TenantId.eq(tenant.0))
        .filter(order::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}

pub async fn order_by_number(txn: &DatabaseTransaction, tenant: TenantId, number: i64) -> Result<Option<OrderRow>> {
    Ok(order::Entity::find()
        .filter(order::Column::TenantId.eq(tenant.0))
        .filter(order::Column::Number.eq(number))
        .one(txn)
        .await?)
}

pub async fn order_by_cart(txn: &DatabaseTransaction, tenant: TenantId, cart: Uuid) -> Result<Option<OrderRow>> {
    Ok(order::Entity::find()
        .filter(order::Column::TenantId.eq(tenant.0))
        .filter(order::Column::CartId.eq(cart))
        .one(txn)
        .await?)
}

pub async fn order_by_token(txn: &DatabaseTransaction, tenant: TenantId, token: &str) -> Result<Option<OrderRow>> {
    Ok(order::Entity::find()
        .filter(order::Column::TenantId.eq(tenant.0))
        .filter(order::Column::AccessToken.eq(token))
        .one(txn)
        .await?)
}

/// Which orders a list shows.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub status: Option<String>,
    /// Any of these statuses (the APIs' `status:open`); ignored when empty.
    pub status_in: Vec<String>,
    pub payment_status: Option<String>,
    pub customer: Option<Uuid>,
    pub placed_from: Option<DateTime<Utc>>,
    pub placed_to: Option<DateTime<Utc>>,
    /// An order number or part of an email address.
    pub search: Option<String>,
    pub limit: u64,
    pub offset: u64,
}

/// Orders, newest first, and how many match in all.
pub async fn list_orders(txn: &DatabaseTransaction, tenant: TenantId, f: &OrderFilter) -> Result<(Vec<OrderRow>, u64)> {
    let mut q = order::Entity::find().filter(order::Column::TenantId.eq(tenant.0));
    if let Some(s) = &f.status {
        q = q.filter(order::Column::Status.eq(s.as_str()));
    }
    if !f.status_in.is_empty() {
        q = q.filter(order::Column::Status.is_in(f.status_in.clone()));
    }
    if let Some(s) = &f.payment_status {
        q = q.filter(order::Column::PaymentStatus.eq(s.as_str()));
    }
    if let Some(c) = f.customer {
        q = q.filter(order::Column::CustomerId.eq(c));
    }
    if let Some(from) = f.placed_from {
        q = q.filter(order::Column::PlacedAt.gte(from));
    }
    if let Some(to) = f.placed_to {
        q = q.filter(order::Column::PlacedAt.lt(to));
    }
    if let Some(search) = f.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let digits = search.trim_start_matches('#');
        let mut any = Condition::any().add(order::Column::Email.contains(search.to_lowercase()));
        if let Ok(n) = digits.parse::<i64>() {
            any = any.add(order::Column::Number.eq(n));
        }
        q = q.filter(any);
    }
    let total = q.clone().count(txn).await?;
    let rows = q
        .order_by_desc(order::Column::PlacedAt)
        .order_by_desc(order::Column::Number)
        .limit(Ord::max(f.limit, 1))
        .offset(f.offset)
        .all(txn)
        .await?;
    Ok((rows, total))
}

pub async fn order_lines(txn: &DatabaseTransaction, tenant: TenantId, orders: &[Uuid]) -> Result<Vec<LineRow>> {
    let mut lines = Vec::new();
    for chunk in orders.chunks(500) {
        lines.extend(
            order_line::Entity::find()
                .filter(order_line::Column::TenantId.eq(tenant.0))
                .filter(order_line::Column::OrderId.is_in(chunk.to_vec()))
                .order_by_asc(order_line::Column::Position)
                .all(txn)
                .await?,
        );
    }
    Ok(lines)
}

pub async fn set_line_fulfilled(txn: &DatabaseTransaction, tenant: TenantId, line: Uuid, fulfilled: i32) -> Result<()> {
    order_line::Entity::update_many()
        .col_expr(order_line::Column::Fulfilled, Expr::value(fulfilled))
        .filter(order_line::Column::TenantId.eq(tenant.0))
        .filter(order_line::Column::Id.eq(line))
        .exec(txn)
        .await?;
    Ok(())
}

/// Writes an order's state (and the fields that change with it), but only if it is
/// still in the state the caller read (`expected`): two staff members acting on the
/// same order at once cannot both apply a transition from the same state.
pub async fn update_order(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    row: &OrderRow,
    expected: (&str, &str, &str),
) -> Result<bool> {
    let res = order::Entity::update_many()
        .col_expr(order::Column::Status, Expr::value(row.status.clone()))
        .col_expr(order::Column::PaymentStatus, Expr::value(row.payment_status.clone()))
        .col_expr(order::Column::ReturnStatus, Expr::value(row.return_status.clone()))
        .col_expr(order::Column::Refunded, Expr::value(row.refunded))
        .col_expr(order::Column::Carrier, Expr::value(row.carrier.clone()))
        .col_expr(order::Column::TrackingNumber, Expr::value(row.tracking_number.clone()))
        .col_expr(order::Column::ExpiresAt, Expr::value(row.expires_at))
        .col_expr(order::Column::UpdatedAt, Expr::value(now()))
        .filter(order::Column::TenantId.eq(tenant.0))
        .filter(order::Column::Id.eq(row.id))
        .filter(order::Column::Status.eq(expected.0))
        .filter(order::Column::PaymentStatus.eq(expected.1))
        .filter(order::Column::ReturnStatus.eq(expected.2))
        .exec(txn)
        .await?;
    Ok(res.rows_affected == 1)
}

pub async fn add_event(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    order_id: Uuid,
    kind: &str,
    message: &str,
    actor: &str,
) -> Result<()> {
    order_event::Entity::insert(order_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0),
        order_id: Set(order_id),
        kind: Set(kind.to_owned()),
        message: Set(message.chars().take(1000).collect()),
        actor: Set(actor.chars().take(300).collect()),
        created_at: Set(now()),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

pub async fn events(txn: &DatabaseTransaction, tenant: TenantId, order_id: Uuid) -> Result<Vec<EventRow>> {
    Ok(order_event::Entity::find()
        .filter(order_event::Column::TenantId.eq(tenant.0))
        .filter(order_event::Column::OrderId.eq(order_id))
        .order_by_asc(order_event::Column::CreatedAt)
        .order_by_asc(order_event::Column::Id)
        .all(txn)
        .await?)
}

/// Unpaid orders past their expiry, across stores (platform scope): `(tenant, order)`.
pub async fn expired_orders(txn: &DatabaseTransaction, at: DateTime<Utc>, limit: u64) -> Result<Vec<(Uuid, Uuid)>> {
    Ok(order::Entity::find()
        .select_only()
        .column(order::Column::TenantId)
        .column(order::Column::Id)
        .filter(order::Column::Status.eq("pending_payment"))
        .filter(order::Column::ExpiresAt.lte(at))
        .order_by_asc(order::Column::ExpiresAt)
        .limit(limit)
        .into_tuple()
        .all(txn)
        .await?)
}

// ---- payments and webhooks -------------------------------------------------------------

/// Records a payment call. The idempotency key is unique per store: a second call
/// with the same key returns the first call's row instead of inserting.
pub async fn record_payment(txn: &DatabaseTransaction, row: PaymentRow) -> Result<PaymentRow> {
    let inserted = payment::Entity::insert(payment::ActiveModel::from(row.clone()))
        .on_conflict(
            OnConflict::columns([payment::Column::TenantId, payment::Column::IdempotencyKey]).do_nothing().to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    if inserted == 1 {
        return Ok(row);
    }
    payment_by_key(txn, TenantId(row.tenant_id), &row.idempotency_key)
        .await?
        .ok_or_else(|| StoreError::Corrupt { table: "payments", detail: "idempotency key vanished".into() })
}

pub async fn payment_by_key(txn: &DatabaseTransaction, tenant: TenantId, key: &str) -> Result<Option<PaymentRow>> {
    Ok(payment::Entity::find()
        .filter(payment::Column::TenantId.eq(tenant.0))
        .filter(payment::Column::IdempotencyKey.eq(key))
        .one(txn)
        .await?)
}

pub async fn payments_of(txn: &DatabaseTransaction, tenant: TenantId, order_id: Uuid) -> Result<Vec<PaymentRow>> {
    Ok(payment::Entity::find()
        .filter(payment::Column::TenantId.eq(tenant.0))
        .filter(payment::Column::OrderId.eq(order_id))
        .order_by_asc(payment::Column::CreatedAt)
        .order_by_asc(payment::Column::Id)
        .all(txn)
        .await?)
}

/// Remembers a provider event; false when it was seen before (a replay).
pub async fn first_sight_of_webhook(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    provider: &str,
    event_id: &str,
) -> Result<bool> {
    let res = payment_webhook::Entity::insert(payment_webhook::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0),
        provider: Set(provider.to_owned()),
        event_id: Set(event_id.to_owned()),
        created_at: Set(now()),
    })
    .on_conflict(
        OnConflict::columns([
            payment_webhook::Column::TenantId,
            payment_webhook::Column::Provider,
            payment_webhook::Column::EventId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(res == 1)
}

// ---- outbox and audit ----------------------------------------------------------------------

/// Writes an event for the bus, in the caller's transaction.
pub async fn outbox(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    topic: &str,
    payload: serde_json::Value,
) -> Result<Uuid> {
    let id = Uuid::now_v7();
    outbox_event::Entity::insert(outbox_event::ActiveModel {
        id: Set(id),
        tenant_id: Set(tenant.0),
        topic: Set(topic.to_owned()),
        payload: Set(payload),
        created_at: Set(now()),
        published_at: Set(None),
        dispatched_at: Set(None),
        version: Set(1),
        claimed_by: Set(String::new()),
        claimed_until: Set(None),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(id)
}

/// A store's outbox, oldest first.
pub async fn outbox_of(txn: &DatabaseTransaction, tenant: TenantId) -> Result<Vec<OutboxRow>> {
    Ok(outbox_event::Entity::find()
        .filter(outbox_event::Column::TenantId.eq(tenant.0))
        .order_by_asc(outbox_event::Column::Id)
        .all(txn)
        .await?)
}

pub async fn audit(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<()> {
    audit_entry::Entity::insert(audit_entry::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0),
        actor: Set(actor.chars().take(300).collect()),
        action: Set(action.to_owned()),
        target: Set(target.chars().take(300).collect()),
        detail: Set(detail.chars().take(2000).collect()),
        created_at: Set(now()),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

pub async fn audit_log(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    limit: u64,
) -> Result<Vec<crate::entities::audit_entry::Model>> {
    Ok(audit_entry::Entity::find()
        .filter(audit_entry::Column::TenantId.eq(tenant.0))
        .order_by_desc(audit_entry::Column::Id)
        .limit(limit)
        .all(txn)
        .await?)
}

// ---- customers' saved addresses ------------------------------------------------------------

pub async fn addresses(txn: &DatabaseTransaction, tenant: TenantId, customer: Uuid) -> Result<Vec<AddressRow>> {
    Ok(customer_address::Entity::find()
        .filter(customer_address::Column::TenantId.eq(tenant.0))
        .filter(customer_address::Column::CustomerId.eq(customer))
        .order_by_desc(customer_address::Column::IsDefault)
        .order_by_asc(customer_address::Column::CreatedAt)
        .all(txn)
        .await?)
}

/// Saves an address unless the customer has the same one already.
pub async fn save_address(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    customer: Uuid,
    address: serde_json::Value,
) -> Result<()> {
    let existing = addresses(txn, tenant, customer).await?;
    if existing.iter().any(|a| a.address == address) {
        return Ok(());
    }
    customer_address::Entity::insert(customer_address::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0),
        customer_id: Set(customer),
        address: Set(address),
        is_default: Set(existing.is_empty()),
        created_at: Set(now()),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

pub async fn delete_address(txn: &DatabaseTransaction, tenant: TenantId, customer: Uuid, id: Uuid) -> Result<bool> {
    let res = customer_address::Entity::delete_many()
        .filter(customer_address::Column::TenantId.eq(tenant.0))
        .filter(customer_address::Column::CustomerId.eq(customer))
        .filter(customer_address::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(res.rows_affected > 0)
}

/// Per customer: orders placed, and what they spent (paid orders, net of refunds).
pub async fn customer_totals(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    customers: &[Uuid],
) -> Result<Vec<(Uuid, i64, i64)>> {
    Ok(order::Entity::find()
        .select_only()
        .column(order::Column::CustomerId)
        .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "orders")
        .column_as(
            Expr::cust(
                "CAST(COALESCE(SUM(CASE WHEN payment_status IN ('paid', 'partially_refunded', 'refunded') \
                 THEN total - refunded ELSE 0 END), 0) AS BIGINT)",
            ),
            "spent",
        )
        .filter(order::Column::TenantId.eq(tenant.0))
        .filter(order::Column::CustomerId.is_in(customers.to_vec()))
        .group_by(order::Column::CustomerId)
        .into_tuple::<(Uuid, i64, i64)>()
        .all(txn)
        .await?)
}
