//! The Storefront API's cart, in Shopify's names and shapes: `cart`, `cartCreate`,
//! `cartLinesAdd/Update/Remove`, `cartDiscountCodesUpdate`, `cartBuyerIdentityUpdate`,
//! `cartSelectedDeliveryOptionsUpdate`, and `cartComplete`, which places the order and
//! charges it. Every mutation calls the same `Checkout` functions as the cart and
//! checkout pages; prices always come from the catalog, never from the client.

use super::ids::Kind;
use super::storefront::{Cursor, MoneyV2, ProductVariant, Url, money, slice_connection};
use super::storefront_customer::{MailingAddress, Order, current_customer, customer_for_token};
use super::{Store, service_error};
use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject, Union};
use ecom_core::AccountId;
use ecom_core::checkout::{Address, COUNTRIES};
use ecom_services::ServiceError;
use ecom_services::checkout::{CartLine as LineView, CartPatch, CartTarget, CartView, PaymentChoice, PlaceOutcome};
use uuid::Uuid;

/// Most lines one mutation may name.
const MAX_LINES_PER_CALL: usize = 100;

#[derive(Default)]
pub struct CartQuery;

#[Object]
impl CartQuery {
    /// A cart by id; `null` when there is none (another store's id included).
    async fn cart(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Cart>> {
        let store = ctx.data::<Store>()?;
        match store.ids.decode(store.tenant.id, Kind::Cart, &id) {
            Some(cart) => load(store, cart).await,
            None => Ok(None),
        }
    }
}

/// The cart as it stands, priced now; `None` when it is not the store's.
async fn load(store: &Store, cart: Uuid) -> Result<Option<Cart>> {
    let view = store.state.checkout.cart(&store.tenant, Some(cart)).await.map_err(service_error)?;
    Ok(view.id.is_some().then_some(Cart(view)))
}

/// A shopper's cart.
pub struct Cart(CartView);

impl Cart {
    fn uuid(&self) -> Uuid {
        self.0.id.unwrap_or_default()
    }
}

#[Object]
impl Cart {
    async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        let store = ctx.data::<Store>()?;
        Ok(store.gid(Kind::Cart, self.uuid()))
    }

    /// The store's checkout page for this cart (for a browser to finish in).
    async fn checkout_url(&self, ctx: &Context<'_>) -> Result<Url> {
        Ok(Url(format!("{}/checkout", ctx.data::<Store>()?.base_url())))
    }

    /// How many items, all lines together.
    async fn total_quantity(&self) -> i32 {
        i32::try_from(self.0.item_count).unwrap_or(i32::MAX)
    }

    #[graphql(complexity = "1 + first.unwrap_or(20).clamp(0, 250) as usize * child_complexity")]
    async fn lines(&self, first: Option<i32>, after: Option<String>) -> Result<Connection<Cursor, CartLine>> {
        slice_connection(&self.0.lines, first, after.as_deref(), |l| CartLine(l.clone()))
    }

    async fn cost(&self, ctx: &Context<'_>) -> Result<CartCost> {
        let store = ctx.data::<Store>()?;
        let t = &self.0.totals.raw;
        Ok(CartCost {
            subtotal_amount: money(store, t.subtotal),
            total_amount: money(store, t.total),
            total_tax_amount: (t.tax > 0).then(|| money(store, t.tax)),
            total_discount_amount: money(store, t.discount),
            total_shipping_amount: self.0.totals.has_shipping.then(|| money(store, t.shipping)),
            taxes_included: t.taxes_included,
        })
    }

    async fn buyer_identity(&self, ctx: &Context<'_>) -> Result<CartBuyerIdentity> {
        let store = ctx.data::<Store>()?;
        Ok(CartBuyerIdentity {
            email: Some(self.0.email.clone()).filter(|e| !e.is_empty()),
            phone: Some(self.0.phone.clone()).filter(|p| !p.is_empty()),
            customer_id: self.0.customer_id.map(|c| store.gid(Kind::Customer, c)),
            delivery_address_preferences: self.0.address.iter().cloned().map(MailingAddress).collect(),
        })
    }

    /// Where and how the cart ships: one group for the whole cart.
    #[graphql(complexity = "1 + first.unwrap_or(20).clamp(0, 250) as usize * child_complexity")]
    async fn delivery_groups(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, CartDeliveryGroup>> {
        let store = ctx.data::<Store>()?;
        let options: Vec<CartDeliveryOption> = self
            .0
            .shipping_options
            .iter()
            .map(|o| CartDeliveryOption {
                handle: o.code.clone(),
                code: o.code.clone(),
                title: o.title.clone(),
                estimated_cost: money(store, o.cost_minor),
                delivery_method_type: DeliveryMethodType::Shipping,
            })
            .collect();
        let selected = options.iter().find(|o| o.handle == self.0.shipping_code).cloned();
        let group = CartDeliveryGroup {
            id: store.gid(Kind::CartDeliveryGroup, self.uuid()),
            delivery_options: options,
            selected_delivery_option: selected,
            delivery_address: self.0.address.clone().map(MailingAddress),
        };
        // No lines, nothing to deliver.
        let groups = if self.0.lines.is_empty() { Vec::new() } else { vec![group] };
        slice_connection(&groups, first, after.as_deref(), Clone::clone)
    }

    async fn discount_codes(&self) -> Vec<CartDiscountCode> {
        if self.0.discount_code.is_empty() {
            return Vec::new();
        }
        vec![CartDiscountCode {
            code: self.0.discount_code.clone(),
            applicable: self.0.discount_problem.is_none() && self.0.totals.has_discount,
        }]
    }

    /// What stands between this cart and an order, in words for the shopper (sold
    /// out lines, a discount that does not apply…). Not in Shopify's API.
    async fn warnings(&self) -> Vec<String> {
        let mut all = self.0.problems.clone();
        all.extend(self.0.discount_problem.clone());
        all
    }
}

/// A cart's totals.
#[derive(SimpleObject)]
pub struct CartCost {
    subtotal_amount: MoneyV2,
    total_amount: MoneyV2,
    /// `null` when no tax applies (yet: taxes need the delivery address).
    total_tax_amount: Option<MoneyV2>,
    /// Not in Shopify's API (which has discount allocations).
    total_discount_amount: MoneyV2,
    /// `null` until a delivery option is chosen. Not in Shopify's API.
    total_shipping_amount: Option<MoneyV2>,
    /// Whether prices include tax. Not in Shopify's API.
    taxes_included: bool,
}

/// A line of the cart: one variant and how many.
pub struct CartLine(LineView);

#[Object]
impl CartLine {
    async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        let store = ctx.data::<Store>()?;
        Ok(store.gid(Kind::CartLine, self.0.variant_id))
    }

    async fn quantity(&self) -> i32 {
        i32::try_from(self.0.quantity).unwrap_or(i32::MAX)
    }

    /// What is bought; `null` when the product is no longer sold.
    async fn merchandise(&self, ctx: &Context<'_>) -> Result<Option<Merchandise>> {
        let store = ctx.data::<Store>()?;
        let product =
            store.state.catalog.product(&store.tenant, &self.0.product_handle).await.map_err(service_error)?;
        Ok(product.and_then(|p| ProductVariant::of(p, self.0.variant_id)).map(Merchandise::ProductVariant))
    }

    async fn cost(&self, ctx: &Context<'_>) -> Result<CartLineCost> {
        let store = ctx.data::<Store>()?;
        let total = self.0.unit_price_minor.saturating_mul(i64::from(self.0.quantity));
        Ok(CartLineCost {
            amount_per_quantity: money(store, self.0.unit_price_minor),
            subtotal_amount: money(store, total),
            total_amount: money(store, total),
        })
    }

    /// Why this line cannot be bought as it is ("Only 2 left"). Not in Shopify's API.
    async fn warning(&self) -> Option<&str> {
        self.0.problem.as_deref()
    }
}

/// What a cart line buys.
#[derive(Union)]
pub enum Merchandise {
    ProductVariant(ProductVariant),
}

#[derive(SimpleObject)]
pub struct CartLineCost {
    amount_per_quantity: MoneyV2,
    subtotal_amount: MoneyV2,
    total_amount: MoneyV2,
}

/// Who is buying.
#[derive(SimpleObject)]
pub struct CartBuyerIdentity {
    email: Option<String>,
    phone: Option<String>,
    /// The signed-in customer the cart belongs to (Shopify gives the customer here;
    /// read it with `customer(customerAccessToken:)`).
    customer_id: Option<ID>,
    delivery_address_preferences: Vec<MailingAddress>,
}

#[derive(SimpleObject, Clone)]
pub struct CartDeliveryGroup {
    id: ID,
    delivery_address: Option<MailingAddress>,
    delivery_options: Vec<CartDeliveryOption>,
    selected_delivery_option: Option<CartDeliveryOption>,
}

#[derive(SimpleObject, Clone)]
pub struct CartDeliveryOption {
    /// What `cartSelectedDeliveryOptionsUpdate` takes.
    handle: String,
    code: String,
    title: String,
    estimated_cost: MoneyV2,
    delivery_method_type: DeliveryMethodType,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMethodType {
    Shipping,
}

#[derive(SimpleObject)]
pub struct CartDiscountCode {
    code: String,
    /// Whether the code takes money off this cart as it is.
    applicable: bool,
}

/// Why a cart mutation did not do what was asked; nothing was changed.
#[derive(SimpleObject, Clone)]
pub struct CartUserError {
    /// The input field at fault, as a path.
    field: Option<Vec<String>>,
    message: String,
    code: Option<CartErrorCode>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum CartErrorCode {
    /// The input does not pass the checks (address, email, quantity…).
    Invalid,
    /// A merchandise id or line id that is not this store's or not in the cart.
    InvalidMerchandiseLine,
    /// More than is in stock.
    NotEnoughInStock,
    /// The cart cannot be placed as it is (no address, no delivery option…).
    CartNotReady,
    /// The order was placed but the payment did not go through; pay again with a new
    /// idempotency key.
    PaymentFailed,
    /// The customer access token is not valid.
    InvalidCustomerAccessToken,
}

fn user_error(field: &str, message: impl Into<String>, code: CartErrorCode) -> CartUserError {
    CartUserError { field: Some(vec![field.to_owned()]), message: message.into(), code: Some(code) }
}

/// A service refusal as a user error; other failures stay GraphQL errors.
fn refusal(e: ServiceError) -> Result<CartUserError> {
    match e {
        ServiceError::Invalid(i) => {
            let code = if i.message.contains(" left") || i.message.contains("sold out") {
                CartErrorCode::NotEnoughInStock
            } else {
                CartErrorCode::Invalid
            };
            Ok(user_error(i.field, i.message, code))
        }
        ServiceError::NotFound => Ok(user_error(
            "merchandiseId",
            "there is no such product variant for sale in this store",
            CartErrorCode::InvalidMerchandiseLine,
        )),
        other => Err(service_error(other)),
    }
}

macro_rules! cart_payload {
    ($($(#[$doc:meta])* $name:ident),+ $(,)?) => {$(
        $(#[$doc])*
        #[derive(SimpleObject)]
        pub struct $name {
            /// The cart after the change; `null` when the cart does not exist.
            cart: Option<Cart>,
            user_errors: Vec<CartUserError>,
        }

        impl From<(Option<Cart>, Vec<CartUserError>)> for $name {
            fn from((cart, user_errors): (Option<Cart>, Vec<CartUserError>)) -> Self {
                Self { cart, user_errors }
            }
        }
    )+};
}

cart_payload!(
    CartCreatePayload,
    CartLinesAddPayload,
    CartLinesUpdatePayload,
    CartLinesRemovePayload,
    CartDiscountCodesUpdatePayload,
    CartBuyerIdentityUpdatePayload,
    CartSelectedDeliveryOptionsUpdatePayload,
);

/// The cart after a change, or the cart as it was with the reason the change was
/// refused.
async fn after(
    store: &Store,
    cart: Uuid,
    outcome: Result<(), ServiceError>,
) -> Result<(Option<Cart>, Vec<CartUserError>)> {
    match outcome {
        Ok(()) => Ok((load(store, cart).await?, Vec::new())),
        Err(ServiceError::NotFound) if load(store, cart).await?.is_none() => Ok((None, vec![no_cart()])),
        Err(e) => {
            let why = refusal(e)?;
            Ok((load(store, cart).await?, vec![why]))
        }
    }
}

fn no_cart() -> CartUserError {
    user_error("cartId", "there is no such cart", CartErrorCode::Invalid)
}

/// The cart an id names, or the user error saying there is none.
fn decode_cart(store: &Store, id: &ID) -> std::result::Result<Uuid, CartUserError> {
    store.ids.decode(store.tenant.id, Kind::Cart, id).ok_or_else(no_cart)
}

#[derive(InputObject)]
pub struct CartLineInput {
    /// A `ProductVariant` id.
    merchandise_id: ID,
    /// 1 when not given.
    quantity: Option<i32>,
}

#[derive(InputObject)]
pub struct CartLineUpdateInput {
    /// A `CartLine` id.
    id: ID,
    /// 0 removes the line.
    quantity: Option<i32>,
}

#[derive(InputObject)]
pub struct CartInput {
    lines: Option<Vec<CartLineInput>>,
    discount_codes: Option<Vec<String>>,
    buyer_identity: Option<CartBuyerIdentityInput>,
}

#[derive(InputObject)]
pub struct CartBuyerIdentityInput {
    email: Option<String>,
    phone: Option<String>,
    /// Attaches the cart to this customer.
    customer_access_token: Option<String>,
    /// The first is the delivery address.
    delivery_address_preferences: Option<Vec<DeliveryAddressInput>>,
}

#[derive(InputObject)]
pub struct DeliveryAddressInput {
    delivery_address: Option<MailingAddressInput>,
}

/// An address as Shopify's Storefront API takes it.
#[derive(InputObject, Default)]
pub struct MailingAddressInput {
    first_name: Option<String>,
    last_name: Option<String>,
    address1: Option<String>,
    address2: Option<String>,
    city: Option<String>,
    /// State, province or county (e.g. `NY`).
    province: Option<String>,
    zip: Option<String>,
    /// A country code (`US`) or name (`United States`).
    country: Option<String>,
    company: Option<String>,
    phone: Option<String>,
}

impl MailingAddressInput {
    /// Our address; the country given by name becomes its code.
    pub(super) fn into_address(self) -> Address {
        let country = self.country.unwrap_or_default();
        let code = COUNTRIES
            .iter()
            .find(|(code, name, _)| {
                code.eq_ignore_ascii_case(country.trim()) || name.eq_ignore_ascii_case(country.trim())
            })
            .map_or_else(|| country.trim().to_ascii_uppercase(), |(code, _, _)| (*code).to_owned());
        let name = [self.first_name, self.last_name].into_iter().flatten().map(|s| s.trim().to_owned());
        Address {
            name: name.filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" "),
            line1: self.address1.unwrap_or_default(),
            line2: [self.company, self.address2]
                .into_iter()
                .flatten()
                .filter(|s| !s.trim().is_empty())
                .collect::<Vec<_>>()
                .join(", "),
            city: self.city.unwrap_or_default(),
            region: self.province.unwrap_or_default(),
            postal_code: self.zip.unwrap_or_default(),
            country: code,
        }
    }
}

#[derive(InputObject)]
pub struct CartSelectedDeliveryOptionInput {
    delivery_group_id: ID,
    delivery_option_handle: String,
}

/// How `cartComplete` pays.
#[derive(InputObject)]
pub struct CartPaymentInput {
    /// `test_card`, `stripe` or `manual`, as the store offers.
    provider: String,
    /// The test card number, or the provider's payment method token (`pm_…`).
    token: Option<String>,
    /// A key the client makes per payment attempt: sending the same key again (after a
    /// timeout) returns the same outcome and never charges twice.
    idempotency_key: String,
}

#[derive(SimpleObject)]
pub struct CartCompletePayload {
    /// The order, when placed (also when its payment failed: then `userErrors` says
    /// why and a new attempt with a new idempotency key pays it).
    order: Option<Order>,
    user_errors: Vec<CartUserError>,
}

/// Variant ids and quantities from line inputs, or the user error for the first bad one.
fn decode_lines(store: &Store, lines: &[CartLineInput]) -> std::result::Result<Vec<(Uuid, u32)>, CartUserError> {
    if lines.len() > MAX_LINES_PER_CALL {
        return Err(user_error("lines", format!("at most {MAX_LINES_PER_CALL} lines at once"), CartErrorCode::Invalid));
    }
    lines
        .iter()
        .map(|l| {
            let variant =
                store.ids.decode(store.tenant.id, Kind::ProductVariant, &l.merchandise_id).ok_or_else(|| {
                    user_error(
                        "merchandiseId",
                        "there is no such product variant in this store",
                        CartErrorCode::InvalidMerchandiseLine,
                    )
                })?;
            let quantity = u32::try_from(l.quantity.unwrap_or(1))
                .ok()
                .filter(|q| *q > 0)
                .ok_or_else(|| user_error("quantity", "must be at least 1", CartErrorCode::Invalid))?;
            Ok((variant, quantity))
        })
        .collect()
}

/// The change a buyer identity asks for, or the user error saying why not.
async fn identity_patch(
    ctx: &Context<'_>,
    input: CartBuyerIdentityInput,
) -> Result<std::result::Result<CartPatch, CartUserError>> {
    let mut patch = CartPatch { email: input.email, phone: input.phone, ..CartPatch::default() };
    if let Some(prefs) = input.delivery_address_preferences {
        patch.address = Some(prefs.into_iter().find_map(|p| p.delivery_address).map(MailingAddressInput::into_address));
    }
    if let Some(token) = input.customer_access_token {
        match customer_for_token(ctx, &token).await? {
            Some(c) => patch.customer = Some(c.id),
            None => {
                return Ok(Err(user_error(
                    "customerAccessToken",
                    "the customer access token is not valid",
                    CartErrorCode::InvalidCustomerAccessToken,
                )));
            }
        }
    }
    Ok(match patch.check() {
        Ok(()) => Ok(patch),
        Err(e) => Err(refusal(e)?),
    })
}

fn one_code(codes: Vec<String>) -> std::result::Result<String, CartUserError> {
    let codes: Vec<String> = codes.into_iter().filter(|c| !c.trim().is_empty()).collect();
    match codes.as_slice() {
        [] => Ok(String::new()),
        [one] => Ok(one.clone()),
        _ => Err(user_error("discountCodes", "a cart takes one discount code", CartErrorCode::Invalid)),
    }
}

#[derive(Default)]
pub struct CartMutation;

#[Object]
impl CartMutation {
    /// Makes a cart, with lines, a discount code and the buyer as given. Nothing is
    /// made when any of it is refused.
    async fn cart_create(&self, ctx: &Context<'_>, input: Option<CartInput>) -> Result<CartCreatePayload> {
        let store = ctx.data::<Store>()?;
        let input = input.unwrap_or(CartInput { lines: None, discount_codes: None, buyer_identity: None });
        let lines = match decode_lines(store, input.lines.as_deref().unwrap_or_default()) {
            Ok(l) => l,
            Err(e) => return Ok((None, vec![e]).into()),
        };
        let mut patch = match input.buyer_identity {
            Some(identity) => match identity_patch(ctx, identity).await? {
                Ok(p) => p,
                Err(e) => return Ok((None, vec![e]).into()),
            },
            None => CartPatch::default(),
        };
        if let Some(codes) = input.discount_codes {
            match one_code(codes) {
                Ok(code) => patch.discount_code = Some(code),
                Err(e) => return Ok((None, vec![e]).into()),
            }
        }
        let customer = match patch.customer {
            Some(c) => Some(c),
            None => current_customer(ctx, None).await?.map(|c| c.id),
        };
        let checkout = &store.state.checkout;
        let made = if lines.is_empty() {
            checkout.create_cart(&store.tenant, customer).await
        } else {
            checkout.add_lines(&store.tenant, CartTarget::OrNew(None, customer), &lines).await
        };
        let cart = match made {
            Ok(cart) => cart,
            Err(e) => return Ok((None, vec![refusal(e)?]).into()),
        };
        Ok(after(store, cart, checkout.update_cart(&store.tenant, cart, patch).await).await?.into())
    }

    /// Adds lines (to a line of the same variant, quantities add up), all or none.
    async fn cart_lines_add(
        &self,
        ctx: &Context<'_>,
        cart_id: ID,
        lines: Vec<CartLineInput>,
    ) -> Result<CartLinesAddPayload> {
        let store = ctx.data::<Store>()?;
        let (cart, lines) = match (decode_cart(store, &cart_id), decode_lines(store, &lines)) {
            (Ok(c), Ok(l)) => (c, l),
            (Err(e), _) | (_, Err(e)) => return Ok((None, vec![e]).into()),
        };
        let outcome =
            store.state.checkout.add_lines(&store.tenant, CartTarget::Existing(cart), &lines).await.map(|_| ());
        Ok(after(store, cart, outcome).await?.into())
    }

    /// Sets lines' quantities (0 removes a line), all or none.
    async fn cart_lines_update(
        &self,
        ctx: &Context<'_>,
        cart_id: ID,
        lines: Vec<CartLineUpdateInput>,
    ) -> Result<CartLinesUpdatePayload> {
        let store = ctx.data::<Store>()?;
        let cart = match decode_cart(store, &cart_id) {
            Ok(c) => c,
            Err(e) => return Ok((None, vec![e]).into()),
        };
        let Some(current) = load(store, cart).await? else { return Ok((None, vec![no_cart()]).into()) };
        let ids: Vec<&ID> = lines.iter().map(|l| &l.id).collect();
        let variants = match lines_of(store, &current, &ids) {
            Ok(v) => v,
            Err(e) => return Ok((Some(current), vec![e]).into()),
        };
        let mut changes = Vec::new();
        for (l, variant) in lines.iter().zip(variants) {
            let Some(quantity) = l.quantity.and_then(|q| u32::try_from(q).ok()) else {
                let e = user_error("quantity", "give a quantity of 0 or more", CartErrorCode::Invalid);
                return Ok((Some(current), vec![e]).into());
            };
            changes.push((variant, quantity));
        }
        let outcome = store.state.checkout.set_quantities(&store.tenant, cart, &changes).await;
        Ok(after(store, cart, outcome).await?.into())
    }

    /// Removes lines.
    async fn cart_lines_remove(
        &self,
        ctx: &Context<'_>,
        cart_id: ID,
        line_ids: Vec<ID>,
    ) -> Result<CartLinesRemovePayload> {
        let store = ctx.data::<Store>()?;
        let cart = match decode_cart(store, &cart_id) {
            Ok(c) => c,
            Err(e) => return Ok((None, vec![e]).into()),
        };
        let Some(current) = load(store, cart).await? else { return Ok((None, vec![no_cart()]).into()) };
        let changes = match lines_of(store, &current, &line_ids.iter().collect::<Vec<_>>()) {
            Ok(v) => v.into_iter().map(|v| (v, 0)).collect::<Vec<_>>(),
            Err(e) => return Ok((Some(current), vec![e]).into()),
        };
        let outcome = store.state.checkout.set_quantities(&store.tenant, cart, &changes).await;
        Ok(after(store, cart, outcome).await?.into())
    }

    /// Sets the cart's discount code (one at most; an empty list removes it). A code
    /// that does not apply is kept and shown with `applicable: false`, as in Shopify.
    async fn cart_discount_codes_update(
        &self,
        ctx: &Context<'_>,
        cart_id: ID,
        discount_codes: Option<Vec<String>>,
    ) -> Result<CartDiscountCodesUpdatePayload> {
        let store = ctx.data::<Store>()?;
        let cart = match decode_cart(store, &cart_id) {
            Ok(c) => c,
            Err(e) => return Ok((None, vec![e]).into()),
        };
        let code = match one_code(discount_codes.unwrap_or_default()) {
            Ok(code) => code,
            Err(e) => return Ok((load(store, cart).await?, vec![e]).into()),
        };
        let patch = CartPatch { discount_code: Some(code), ..CartPatch::default() };
        let outcome = store.state.checkout.update_cart(&store.tenant, cart, patch).await;
        Ok(after(store, cart, outcome).await?.into())
    }

    /// Sets who buys: email, phone, the delivery address, and the customer (by access
    /// token). Fields not given stay as they are.
    async fn cart_buyer_identity_update(
        &self,
        ctx: &Context<'_>,
        cart_id: ID,
        buyer_identity: CartBuyerIdentityInput,
    ) -> Result<CartBuyerIdentityUpdatePayload> {
        let store = ctx.data::<Store>()?;
        let cart = match decode_cart(store, &cart_id) {
            Ok(c) => c,
            Err(e) => return Ok((None, vec![e]).into()),
        };
        let patch = match identity_patch(ctx, buyer_identity).await? {
            Ok(p) => p,
            Err(e) => return Ok((load(store, cart).await?, vec![e]).into()),
        };
        let outcome = store.state.checkout.update_cart(&store.tenant, cart, patch).await;
        Ok(after(store, cart, outcome).await?.into())
    }

    /// Chooses the delivery option (by `handle`) of the cart's delivery group.
    async fn cart_selected_delivery_options_update(
        &self,
        ctx: &Context<'_>,
        cart_id: ID,
        selected_delivery_options: Vec<CartSelectedDeliveryOptionInput>,
    ) -> Result<CartSelectedDeliveryOptionsUpdatePayload> {
        let store = ctx.data::<Store>()?;
        let cart = match decode_cart(store, &cart_id) {
            Ok(c) => c,
            Err(e) => return Ok((None, vec![e]).into()),
        };
        let Some(current) = load(store, cart).await? else { return Ok((None, vec![no_cart()]).into()) };
        let [choice] = selected_delivery_options.as_slice() else {
            let e = user_error(
                "selectedDeliveryOptions",
                "a cart has one delivery group: choose one option",
                CartErrorCode::Invalid,
            );
            return Ok((Some(current), vec![e]).into());
        };
        if store.ids.decode(store.tenant.id, Kind::CartDeliveryGroup, &choice.delivery_group_id) != Some(cart) {
            let e =
                user_error("deliveryGroupId", "there is no such delivery group in this cart", CartErrorCode::Invalid);
            return Ok((Some(current), vec![e]).into());
        }
        if !current.0.shipping_options.iter().any(|o| o.code == choice.delivery_option_handle) {
            let offered: Vec<&str> = current.0.shipping_options.iter().map(|o| o.code.as_str()).collect();
            let message = if offered.is_empty() {
                "nothing ships to this cart's address".to_owned()
            } else {
                format!("choose one of: {}", offered.join(", "))
            };
            return Ok(
                (Some(current), vec![user_error("deliveryOptionHandle", message, CartErrorCode::Invalid)]).into()
            );
        }
        let patch = CartPatch { shipping_code: Some(choice.delivery_option_handle.clone()), ..CartPatch::default() };
        let outcome = store.state.checkout.update_cart(&store.tenant, cart, patch).await;
        Ok(after(store, cart, outcome).await?.into())
    }

    /// Places the cart as an order and pays for it. Placing a cart twice gives the
    /// same order; the idempotency key makes each payment attempt safe to retry.
    async fn cart_complete(
        &self,
        ctx: &Context<'_>,
        cart_id: ID,
        payment: CartPaymentInput,
    ) -> Result<CartCompletePayload> {
        let store = ctx.data::<Store>()?;
        let refused = |e: CartUserError| CartCompletePayload { order: None, user_errors: vec![e] };
        let cart = match decode_cart(store, &cart_id) {
            Ok(c) => c,
            Err(e) => return Ok(refused(e)),
        };
        let customer: Option<AccountId> = current_customer(ctx, None).await?.map(|c| c.id);
        let choice = PaymentChoice { provider: payment.provider, token: payment.token.unwrap_or_default() };
        let checkout = &store.state.checkout;
        let outcome = match checkout.complete(&store.tenant, cart, customer, &choice, &payment.idempotency_key).await {
            Ok(o) => o,
            Err(ServiceError::Invalid(i)) => {
                return Ok(refused(user_error("payment", i.to_string(), CartErrorCode::Invalid)));
            }
            Err(e) => return Err(service_error(e)),
        };
        match outcome {
            PlaceOutcome::Refused(why) => Ok(refused(user_error("cartId", why, CartErrorCode::CartNotReady))),
            PlaceOutcome::Placed { number, payment_error, .. } => {
                let order = checkout.order(&store.tenant, number).await.map_err(service_error)?.map(Order);
                let user_errors = payment_error
                    .map(|why| user_error("payment", why, CartErrorCode::PaymentFailed))
                    .into_iter()
                    .collect();
                Ok(CartCompletePayload { order, user_errors })
            }
        }
    }
}

fn bad_line() -> CartUserError {
    user_error("lines", "there is no such line in this cart", CartErrorCode::InvalidMerchandiseLine)
}

/// The variants of line ids, each checked to be a line of this cart.
fn lines_of(store: &Store, cart: &Cart, ids: &[&ID]) -> std::result::Result<Vec<Uuid>, CartUserError> {
    ids.iter()
        .map(|id| {
            store
                .ids
                .decode(store.tenant.id, Kind::CartLine, id)
                .filter(|v| cart.0.lines.iter().any(|l| l.variant_id == *v))
                .ok_or_else(bad_line)
        })
        .collect()
}
