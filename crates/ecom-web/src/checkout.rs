//! Shopper pages where money moves: cart, checkout, the order page, the customer's
//! order history; and the payment provider's webhook.

use crate::auth::SignedIn;
use crate::error::{WebError, WebResult};
use crate::state::AppState;
use crate::storefront::Shop;
use crate::templates::ser;
use axum::Form;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::PrivateCookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use ecom_core::checkout::{Address, COUNTRIES};
use ecom_services::ServiceError;
use ecom_services::checkout::{Actor, CheckoutDetails, OrderCommand, PaymentChoice, PlaceOutcome};
use minijinja::context;
use serde::Deserialize;
use uuid::Uuid;

const CART_COOKIE: &str = "ecom_cart";

/// The cart id from the (encrypted) cart cookie.
pub fn cart_cookie(jar: &PrivateCookieJar) -> Option<Uuid> {
    jar.get(CART_COOKIE).and_then(|c| Uuid::parse_str(c.value()).ok())
}

pub fn remember_cart(state: &AppState, jar: PrivateCookieJar, cart: Uuid) -> PrivateCookieJar {
    jar.add(
        Cookie::build((CART_COOKIE, cart.to_string()))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(state.config.secure)
            .max_age(cookie::time::Duration::days(30))
            .build(),
    )
}

fn without_cart(jar: PrivateCookieJar) -> PrivateCookieJar {
    jar.remove(Cookie::build(CART_COOKIE).path("/"))
}

fn countries() -> Vec<minijinja::Value> {
    COUNTRIES.iter().map(|(code, name, _)| context! { code => *code, name => *name }).collect()
}

/// The cart a shopper has: a signed-in customer's saved cart, else the cookie's.
async fn current_cart(state: &AppState, shop: &Shop) -> WebResult<Option<Uuid>> {
    if let (Some(customer), None) = (shop.customer_id, shop.cart) {
        return Ok(state.checkout.merge_at_login(&shop.tenant, None, customer).await?);
    }
    Ok(shop.cart)
}

async fn cart_page(state: &AppState, shop: &Shop, error: Option<String>, status: StatusCode) -> WebResult<Response> {
    let cart_id = current_cart(state, shop).await?;
    let cart = state.checkout.cart(&shop.tenant, cart_id).await?;
    let mut resp = shop
        .page(state, "storefront/cart.html", "/cart", context! { cart => ser(&cart), error, page_title => "Your cart" })
        .await?;
    *resp.status_mut() = status;
    Ok(resp)
}

pub async fn cart(State(state): State<AppState>, shop: Shop) -> WebResult<Response> {
    cart_page(&state, &shop, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    variant: String,
    #[serde(default)]
    quantity: String,
}

fn parse_quantity(raw: &str) -> WebResult<u32> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(1);
    }
    raw.parse::<u32>().map_err(|_| WebError::BadRequest(format!("\"{raw}\" is not a quantity.")))
}

/// Adds a variant; the price is looked up, never taken from the form.
pub async fn add(
    State(state): State<AppState>,
    shop: Shop,
    jar: PrivateCookieJar,
    Form(f): Form<AddForm>,
) -> WebResult<Response> {
    let variant =
        Uuid::parse_str(f.variant.trim()).map_err(|_| WebError::BadRequest("Choose an option first.".into()))?;
    let quantity = parse_quantity(&f.quantity)?;
    let cart = current_cart(&state, &shop).await?;
    match state.checkout.add_to_cart(&shop.tenant, cart, shop.customer_id, variant, quantity).await {
        Ok(cart) => Ok((remember_cart(&state, jar, cart), Redirect::to("/cart")).into_response()),
        Err(ServiceError::Invalid(e)) => {
            cart_page(&state, &shop, Some(e.to_string()), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(ServiceError::NotFound) => {
            cart_page(&state, &shop, Some("That item is no longer sold.".into()), StatusCode::NOT_FOUND).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Changes a line's quantity (0 or `remove` takes it out).
pub async fn update(State(state): State<AppState>, shop: Shop, Form(f): Form<AddForm>) -> WebResult<Response> {
    let variant = Uuid::parse_str(f.variant.trim()).map_err(|_| WebError::BadRequest("Unknown cart line.".into()))?;
    let quantity = if f.quantity.trim().is_empty() { 0 } else { parse_quantity(&f.quantity)? };
    let Some(cart) = current_cart(&state, &shop).await? else { return Ok(Redirect::to("/cart").into_response()) };
    match state.checkout.set_quantity(&shop.tenant, cart, variant, quantity).await {
        Ok(()) => Ok(Redirect::to("/cart").into_response()),
        Err(ServiceError::Invalid(e)) => {
            cart_page(&state, &shop, Some(e.to_string()), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn checkout_page(
    state: &AppState,
    shop: &Shop,
    error: Option<String>,
    form: Option<&CheckoutForm>,
    status: StatusCode,
) -> WebResult<Response> {
    let cart_id = current_cart(state, shop).await?;
    let cart = state.checkout.cart(&shop.tenant, cart_id).await?;
    if cart.is_empty() {
        return Ok(Redirect::to("/cart").into_response());
    }
    let providers: Vec<_> =
        state.checkout.payments().all().map(|p| context! { code => p.code(), title => p.title() }).collect();
    let saved = match shop.customer_id {
        Some(c) => state.checkout.addresses(&shop.tenant, c).await?.into_iter().map(|(_, a, _)| a).collect(),
        None => Vec::new(),
    };
    // What the shopper typed wins over what was saved, so a refused form keeps it.
    let address = form.map(|f| f.address()).or_else(|| cart.address.clone()).or_else(|| saved.first().cloned());
    let email = form.map(|f| f.email.clone()).filter(|e| !e.is_empty()).unwrap_or_else(|| cart.email.clone());
    let mut resp = shop
        .page(
            state,
            "storefront/checkout.html",
            "/checkout",
            context! {
                cart => ser(&cart),
                address => ser(&address.unwrap_or_else(|| Address { country: "US".into(), ..Default::default() })),
                email,
                countries => countries(),
                providers,
                provider => form.map(|f| f.provider.clone()).unwrap_or_else(|| "test_card".into()),
                error,
                page_title => "Checkout",
            },
        )
        .await?;
    *resp.status_mut() = status;
    Ok(resp)
}

pub async fn checkout(State(state): State<AppState>, shop: Shop) -> WebResult<Response> {
    checkout_page(&state, &shop, None, None, StatusCode::OK).await
}

#[derive(Deserialize, Default)]
pub struct CheckoutForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
    #[serde(flatten)]
    address: AddressFields,
    #[serde(default)]
    shipping: String,
    #[serde(default)]
    discount: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    card_number: String,
    /// Stripe's PaymentMethod id (`pm_…`), from Stripe.js or a headless client.
    #[serde(default)]
    payment_method: String,
}

/// What the payment form sends as the provider's token: Stripe takes a PaymentMethod
/// id, the test-card gateway a card number.
fn payment_token(provider: &str, card_number: &str, payment_method: &str) -> String {
    if provider == "stripe" { payment_method.trim().to_owned() } else { card_number.to_owned() }
}

/// The address fields of the checkout and address forms.
#[derive(Deserialize, Default)]
pub struct AddressFields {
    #[serde(default)]
    name: String,
    #[serde(default)]
    line1: String,
    #[serde(default)]
    line2: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    postal_code: String,
    #[serde(default)]
    country: String,
}

impl AddressFields {
    fn address(&self) -> Address {
        Address {
            name: self.name.clone(),
            line1: self.line1.clone(),
            line2: self.line2.clone(),
            city: self.city.clone(),
            region: self.region.clone(),
            postal_code: self.postal_code.clone(),
            country: self.country.clone(),
        }
    }
}

impl CheckoutForm {
    fn address(&self) -> Address {
        self.address.address()
    }
}

/// Saves the form (`action=update` recalculates) or places the order (`action=place`).
pub async fn submit(
    State(state): State<AppState>,
    shop: Shop,
    jar: PrivateCookieJar,
    Form(f): Form<CheckoutForm>,
) -> WebResult<Response> {
    let Some(cart) = current_cart(&state, &shop).await? else { return Ok(Redirect::to("/cart").into_response()) };
    let details = CheckoutDetails {
        email: f.email.clone(),
        phone: f.phone.clone(),
        address: f.address(),
        shipping_code: f.shipping.clone(),
        discount_code: f.discount.clone(),
    };
    if f.action != "place" {
        return match state.checkout.save_details(&shop.tenant, cart, details).await {
            Ok(()) => Ok(Redirect::to("/checkout").into_response()),
            Err(ServiceError::Invalid(e)) => {
                checkout_page(&state, &shop, Some(e.to_string()), Some(&f), StatusCode::UNPROCESSABLE_ENTITY).await
            }
            Err(ServiceError::NotFound) => Ok(Redirect::to("/cart").into_response()),
            Err(e) => Err(e.into()),
        };
    }
    let choice = PaymentChoice {
        provider: f.provider.clone(),
        token: payment_token(&f.provider, &f.card_number, &f.payment_method),
    };
    // Details and order in one transaction.
    let placed = match state.checkout.save_and_place(&shop.tenant, cart, shop.customer_id, details, &choice).await {
        Ok(p) => p,
        Err(ServiceError::Invalid(e)) => {
            return checkout_page(&state, &shop, Some(e.to_string()), Some(&f), StatusCode::UNPROCESSABLE_ENTITY).await;
        }
        Err(e) => return Err(e.into()),
    };
    match placed {
        PlaceOutcome::Placed { token, payment_error, .. } => {
            let to = if payment_error.is_some() {
                format!("/orders/{token}?declined=1")
            } else {
                format!("/orders/{token}")
            };
            Ok((without_cart(jar), Redirect::to(&to)).into_response())
        }
        PlaceOutcome::Refused(why) => {
            checkout_page(&state, &shop, Some(why), Some(&f), StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

#[derive(Deserialize)]
pub struct OrderQuery {
    declined: Option<String>,
}

/// The order page behind its secret link: confirmation, status, tracking; and a
/// second chance to pay when the card was declined.
pub async fn order_page(
    State(state): State<AppState>,
    shop: Shop,
    Path(token): Path<String>,
    axum::extract::Query(q): axum::extract::Query<OrderQuery>,
) -> WebResult<Response> {
    let Some(order) = state.checkout.order_by_token(&shop.tenant, &token).await? else {
        return Err(WebError::not_found());
    };
    let declined = q.declined.is_some().then(|| {
        order.events.iter().rev().find(|e| e.kind == "payment_failed").map(|e| e.message.clone()).unwrap_or_default()
    });
    let providers: Vec<_> =
        state.checkout.payments().all().map(|p| context! { code => p.code(), title => p.title() }).collect();
    let path = format!("/orders/{token}");
    let title = format!("Order {}", order.name);
    shop.page(
        &state,
        "storefront/order.html",
        &path,
        context! { order => ser(&order), declined, providers, page_title => title, guest_link => true },
    )
    .await
}

#[derive(Deserialize)]
pub struct PayForm {
    #[serde(default)]
    provider: String,
    #[serde(default)]
    card_number: String,
    #[serde(default)]
    payment_method: String,
}

/// Pays an order that is waiting for payment (after a declined card).
pub async fn pay_again(
    State(state): State<AppState>,
    shop: Shop,
    Path(token): Path<String>,
    Form(f): Form<PayForm>,
) -> WebResult<Response> {
    let Some(order) = state.checkout.order_by_token(&shop.tenant, &token).await? else {
        return Err(WebError::not_found());
    };
    let settings = state.checkout.settings(&shop.tenant).await?;
    let paid_with = payment_token(&f.provider, &f.card_number, &f.payment_method);
    let choice = PaymentChoice { provider: f.provider, token: paid_with };
    let error = state.checkout.pay(&shop.tenant, order.id, &choice, settings.auto_capture).await?;
    let to = if error.is_some() { format!("/orders/{token}?declined=1") } else { format!("/orders/{token}") };
    Ok(Redirect::to(&to).into_response())
}

/// The customer's orders.
pub async fn my_orders(State(state): State<AppState>, page: SignedIn) -> WebResult<Response> {
    let tenant = page.store()?;
    let filter = ecom_store::orders::OrderFilter { customer: Some(page.me.id.0), limit: 100, ..Default::default() };
    let (orders, _) = state.checkout.orders(&tenant, &filter).await?;
    let addresses: Vec<_> = state
        .checkout
        .addresses(&tenant, page.me.id)
        .await?
        .into_iter()
        .map(|(id, a, default)| context! { id => id.to_string(), line => a.one_line(), default })
        .collect();
    Ok(page.page(
        "storefront/my_orders.html",
        context! { orders => ser(&orders), addresses, countries => countries(), page_title => "Your orders" },
    ))
}

/// One of the customer's orders, by number; another customer's number is not found.
pub async fn my_order(State(state): State<AppState>, page: SignedIn, Path(number): Path<i64>) -> WebResult<Response> {
    let tenant = page.store()?;
    let Some(order) = state.checkout.order(&tenant, number).await?.filter(|o| o.customer_id == Some(page.me.id.0))
    else {
        return Err(WebError::not_found());
    };
    let title = format!("Order {}", order.name);
    Ok(page.page("storefront/order.html", context! { order => ser(&order), page_title => title, account => true }))
}

/// Puts an earlier order's items back in the cart, at today's prices and stock.
pub async fn order_again(
    State(state): State<AppState>,
    page: SignedIn,
    jar: PrivateCookieJar,
    Path(number): Path<i64>,
) -> WebResult<Response> {
    let tenant = page.store()?;
    let cart = state.checkout.merge_at_login(&tenant, cart_cookie(&jar), page.me.id).await?;
    let (cart, _missing) = state.checkout.order_again(&tenant, page.me.id, number, cart).await?;
    Ok((remember_cart(&state, jar, cart), Redirect::to("/cart")).into_response())
}

#[derive(Deserialize)]
pub struct ReturnForm {
    #[serde(default)]
    reason: String,
}

/// The customer asks to send items back; the merchant sees it on the order.
pub async fn request_return(
    State(state): State<AppState>,
    page: SignedIn,
    Path(number): Path<i64>,
    Form(f): Form<ReturnForm>,
) -> WebResult<Response> {
    let tenant = page.store()?;
    let Some(order) = state.checkout.order(&tenant, number).await?.filter(|o| o.customer_id == Some(page.me.id.0))
    else {
        return Err(WebError::not_found());
    };
    let reason: String = f.reason.trim().chars().take(500).collect();
    let actor = Actor::Shopper(page.me.email.clone());
    match state.checkout.command(&tenant, order.id, OrderCommand::RequestReturn { reason }, &actor).await {
        Ok(()) => Ok(Redirect::to(&format!("/account/orders/{number}")).into_response()),
        Err(ServiceError::Invalid(e)) => Err(WebError::BadRequest(e.to_string())),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct AddressForm {
    #[serde(flatten)]
    address: AddressFields,
    #[serde(default)]
    delete: String,
}

/// Adds (or, with `delete=<id>`, removes) a saved address.
pub async fn save_address(
    State(state): State<AppState>,
    page: SignedIn,
    Form(f): Form<AddressForm>,
) -> WebResult<Response> {
    let tenant = page.store()?;
    if let Ok(id) = Uuid::parse_str(f.delete.trim()) {
        state.checkout.delete_address(&tenant, page.me.id, id).await?;
        return Ok(Redirect::to("/account/orders").into_response());
    }
    match state.checkout.save_address(&tenant, page.me.id, f.address.address()).await {
        Ok(()) => Ok(Redirect::to("/account/orders").into_response()),
        Err(ServiceError::Invalid(e)) => Err(WebError::BadRequest(e.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// The test-card gateway's webhook: signature checked, replays ignored.
pub async fn test_card_webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> WebResult<Response> {
    let Some(provider) = state.checkout.payments().get("test_card") else { return Err(WebError::not_found()) };
    let signature = headers.get("ecom-test-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let event = match provider.verify_webhook(signature, &body) {
        Some(Ok(event)) => event,
        Some(Err(why)) => {
            tracing::warn!(reason = %why, "test-card webhook refused");
            return Ok((StatusCode::BAD_REQUEST, "bad signature").into_response());
        }
        None => return Err(WebError::not_found()),
    };
    let fresh = state.checkout.apply_webhook("test_card", &event).await?;
    Ok((StatusCode::OK, if fresh { "ok" } else { "already processed" }).into_response())
}

/// The actor for a staff member's change.
pub fn staff_actor(page: &SignedIn) -> Actor {
    Actor::Staff(page.me.email.clone())
}

/// Stripe's webhook (`/webhooks/stripe`): the `Stripe-Signature` header checked with
/// the endpoint's signing secret, replays (the same event id) acknowledged and
/// ignored. 404 when Stripe is not configured; 400 on a bad signature (Stripe retries
/// those, and its dashboard shows them); correctly signed events that are not about an
/// ECOM payment are acknowledged so that Stripe does not retry them for days.
pub async fn stripe_webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> WebResult<Response> {
    let Some(provider) = state.checkout.payments().get("stripe") else { return Err(WebError::not_found()) };
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let event = match provider.verify_webhook(signature, &body) {
        Some(Ok(event)) => event,
        Some(Err(why)) if why.starts_with(ecom_services::stripe::NOT_ECOM_PAYMENT) => {
            tracing::info!(reason = %why, "Stripe webhook ignored");
            return Ok((StatusCode::OK, "ignored: not an ECOM payment").into_response());
        }
        Some(Err(why)) => {
            tracing::warn!(reason = %why, "Stripe webhook refused");
            return Ok((StatusCode::BAD_REQUEST, "bad signature or payload").into_response());
        }
        None => return Err(WebError::not_found()),
    };
    let fresh = state.checkout.apply_webhook("stripe", &event).await?;
    Ok((StatusCode::OK, if fresh { "ok" } else { "already processed" }).into_response())
}
