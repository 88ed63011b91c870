//! The Storefront API's customers, in Shopify's names and shapes: `customerCreate`,
//! `customerAccessTokenCreate/Delete`, `customerRecover`, `customer { orders }`, and
//! the `Order` that `cartComplete` returns. A customer is known by an access token
//! (for apps) or by the storefront's session cookie (same-origin requests only).

use super::ids::Kind;
use super::storefront::{Cursor, MoneyV2, ProductVariant, Url, money, window};
use super::{Store, error, service_error};
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use ecom_core::Realm;
use ecom_core::checkout::{Address, COUNTRIES};
use ecom_core::order::{OrderStatus, PaymentStatus};
use ecom_services::ServiceError;
use ecom_services::checkout::{OrderLineView, OrderView};
use ecom_store::accounts::Credential;

/// The customer behind an access token, if it is live and the password has not
/// changed since it was issued.
pub(super) async fn customer_for_token(ctx: &Context<'_>, token: &str) -> Result<Option<Credential>> {
    let store = ctx.data::<Store>()?;
    let Some(claims) = store.state.api_tokens.customer_for(store.tenant.id, token).await.map_err(service_error)? else {
        return Ok(None);
    };
    store.state.accounts.current(&claims).await.map_err(service_error)
}

/// The customer making the request: by `token` when given, else by session cookie.
pub(super) async fn current_customer(ctx: &Context<'_>, token: Option<&str>) -> Result<Option<Credential>> {
    if let Some(token) = token {
        return customer_for_token(ctx, token).await;
    }
    let store = ctx.data::<Store>()?;
    match &store.session {
        Some(claims) => store.state.accounts.current(claims).await.map_err(service_error),
        None => Ok(None),
    }
}

#[derive(Default)]
pub struct CustomerQuery;

#[Object]
impl CustomerQuery {
    /// The customer an access token (or, without one, the session) belongs to. An
    /// `UNAUTHENTICATED` error when there is none.
    async fn customer(&self, ctx: &Context<'_>, customer_access_token: Option<String>) -> Result<Option<Customer>> {
        match current_customer(ctx, customer_access_token.as_deref()).await? {
            Some(c) => Ok(Some(Customer(c))),
            None => Err(error("UNAUTHENTICATED", "sign in first: the customer access token is missing or not valid")),
        }
    }
}

/// A shopper with an account in this store.
pub struct Customer(Credential);

/// "Ada Lovelace" → ("Ada", "Lovelace").
fn split_name(name: &str) -> (String, String) {
    let name = name.trim();
    match name.split_once(' ') {
        Some((first, last)) => (first.to_owned(), last.trim().to_owned()),
        None => (name.to_owned(), String::new()),
    }
}

#[Object]
impl Customer {
    async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        let store = ctx.data::<Store>()?;
        Ok(store.gid(Kind::Customer, self.0.id.0))
    }

    async fn email(&self) -> &str {
        &self.0.email
    }

    async fn first_name(&self) -> Option<String> {
        Some(split_name(&self.0.name).0).filter(|n| !n.is_empty())
    }

    async fn last_name(&self) -> Option<String> {
        Some(split_name(&self.0.name).1).filter(|n| !n.is_empty())
    }

    /// The name, or the email when there is no name.
    async fn display_name(&self) -> &str {
        if self.0.name.trim().is_empty() { &self.0.email } else { &self.0.name }
    }

    /// The customer's orders, newest first.
    #[graphql(complexity = "1 + first.unwrap_or(20).clamp(0, 250) as usize * child_complexity")]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, Order>> {
        let store = ctx.data::<Store>()?;
        let (offset, limit) = window(first, after.as_deref())?;
        let checkout = &store.state.checkout;
        let filter =
            ecom_store::orders::OrderFilter { customer: Some(self.0.id.0), limit, offset, ..Default::default() };
        let (page, total) = checkout.orders(&store.tenant, &filter).await.map_err(service_error)?;
        let shown = offset.saturating_add(page.len() as u64);
        let mut conn = Connection::new(offset > 0 && total > 0, shown < total);
        // One read per order for lines, timeline and payments; a page is small.
        for (i, summary) in page.iter().enumerate() {
            if let Some(order) = checkout.order_by_id(&store.tenant, summary.id).await.map_err(service_error)? {
                conn.edges.push(Edge::new(Cursor(offset + i as u64), Order(order)));
            }
        }
        Ok(conn)
    }

    /// Saved addresses, the default first.
    async fn addresses(&self, ctx: &Context<'_>) -> Result<Vec<MailingAddress>> {
        let store = ctx.data::<Store>()?;
        let saved = store.state.checkout.addresses(&store.tenant, self.0.id).await.map_err(service_error)?;
        Ok(saved.into_iter().map(|(_, a, _)| MailingAddress(a)).collect())
    }
}

/// A postal address.
#[derive(Clone)]
pub struct MailingAddress(pub(super) Address);

#[Object]
impl MailingAddress {
    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn first_name(&self) -> Option<String> {
        Some(split_name(&self.0.name).0).filter(|n| !n.is_empty())
    }

    async fn last_name(&self) -> Option<String> {
        Some(split_name(&self.0.name).1).filter(|n| !n.is_empty())
    }

    async fn address1(&self) -> &str {
        &self.0.line1
    }

    async fn address2(&self) -> Option<&str> {
        Some(self.0.line2.as_str()).filter(|l| !l.is_empty())
    }

    async fn city(&self) -> &str {
        &self.0.city
    }

    /// State, province or county as entered (e.g. `NY`).
    async fn province(&self) -> Option<&str> {
        Some(self.0.region.as_str()).filter(|r| !r.is_empty())
    }

    async fn zip(&self) -> &str {
        &self.0.postal_code
    }

    /// The country's name.
    async fn country(&self) -> &str {
        COUNTRIES.iter().find(|(code, _, _)| *code == self.0.country).map_or(self.0.country.as_str(), |(_, n, _)| n)
    }

    /// ISO 3166-1 alpha-2, e.g. `US`.
    async fn country_code_v2(&self) -> &str {
        &self.0.country
    }

    /// The address on one line.
    async fn formatted(&self) -> String {
        self.0.one_line()
    }
}

/// An order the shopper placed.
pub struct Order(pub(super) OrderView);

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum OrderFinancialStatus {
    Pending,
    Authorized,
    Paid,
    PartiallyRefunded,
    Refunded,
    Voided,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum OrderFulfillmentStatus {
    Unfulfilled,
    PartiallyFulfilled,
    Fulfilled,
}

#[derive(SimpleObject)]
pub struct Fulfillment {
    tracking_company: Option<String>,
    tracking_info: Vec<FulfillmentTrackingInfo>,
}

#[derive(SimpleObject)]
pub struct FulfillmentTrackingInfo {
    number: String,
}

#[Object]
impl Order {
    async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        let store = ctx.data::<Store>()?;
        Ok(store.gid(Kind::Order, self.0.id))
    }

    /// `#1001`.
    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn order_number(&self) -> i64 {
        self.0.number
    }

    async fn email(&self) -> &str {
        &self.0.email
    }

    /// When it was placed, RFC 3339.
    async fn processed_at(&self) -> String {
        self.0.placed_at.to_rfc3339()
    }

    async fn financial_status(&self) -> Option<OrderFinancialStatus> {
        Some(match PaymentStatus::parse(self.0.payment_status)? {
            PaymentStatus::Pending => OrderFinancialStatus::Pending,
            PaymentStatus::Authorized => OrderFinancialStatus::Authorized,
            PaymentStatus::Paid => OrderFinancialStatus::Paid,
            PaymentStatus::PartiallyRefunded => OrderFinancialStatus::PartiallyRefunded,
            PaymentStatus::Refunded => OrderFinancialStatus::Refunded,
            PaymentStatus::Voided => OrderFinancialStatus::Voided,
        })
    }

    async fn fulfillment_status(&self) -> OrderFulfillmentStatus {
        match OrderStatus::parse(self.0.status) {
            Some(OrderStatus::PartiallyFulfilled) => OrderFulfillmentStatus::PartiallyFulfilled,
            Some(
                OrderStatus::Fulfilled | OrderStatus::Shipped | OrderStatus::OutForDelivery | OrderStatus::Delivered,
            ) => OrderFulfillmentStatus::Fulfilled,
            _ => OrderFulfillmentStatus::Unfulfilled,
        }
    }

    /// When it was cancelled (by the store, or for not being paid in time).
    async fn canceled_at(&self) -> Option<String> {
        self.0.events.iter().find(|e| e.kind == "cancelled" || e.kind == "expired").map(|e| e.at.to_rfc3339())
    }

    /// The order's page for the shopper (a secret link).
    async fn status_url(&self, ctx: &Context<'_>) -> Result<Url> {
        Ok(Url(format!("{}/orders/{}", ctx.data::<Store>()?.base_url(), self.0.token)))
    }

    async fn currency_code(&self) -> &str {
        &self.0.currency
    }

    async fn subtotal_price(&self, ctx: &Context<'_>) -> Result<MoneyV2> {
        Ok(money(ctx.data::<Store>()?, self.0.totals.raw.subtotal))
    }

    async fn total_discounts(&self, ctx: &Context<'_>) -> Result<MoneyV2> {
        Ok(money(ctx.data::<Store>()?, self.0.totals.raw.discount))
    }

    async fn total_shipping_price(&self, ctx: &Context<'_>) -> Result<MoneyV2> {
        Ok(money(ctx.data::<Store>()?, self.0.totals.raw.shipping))
    }

    async fn total_tax(&self, ctx: &Context<'_>) -> Result<MoneyV2> {
        Ok(money(ctx.data::<Store>()?, self.0.totals.raw.tax))
    }

    async fn total_price(&self, ctx: &Context<'_>) -> Result<MoneyV2> {
        Ok(money(ctx.data::<Store>()?, self.0.totals.raw.total))
    }

    async fn total_refunded(&self, ctx: &Context<'_>) -> Result<MoneyV2> {
        Ok(money(ctx.data::<Store>()?, self.0.refunded_minor))
    }

    async fn shipping_address(&self) -> MailingAddress {
        MailingAddress(self.0.address.clone())
    }

    #[graphql(complexity = "1 + first.unwrap_or(20).clamp(0, 250) as usize * child_complexity")]
    async fn line_items(&self, first: Option<i32>, after: Option<String>) -> Result<Connection<Cursor, OrderLineItem>> {
        super::storefront::slice_connection(&self.0.lines, first, after.as_deref(), |l| OrderLineItem(l.clone()))
    }

    /// Shipments with tracking.
    async fn successful_fulfillments(&self) -> Vec<Fulfillment> {
        if self.0.tracking_number.is_empty() && self.0.carrier.is_empty() {
            return Vec::new();
        }
        vec![Fulfillment {
            tracking_company: Some(self.0.carrier.clone()).filter(|c| !c.is_empty()),
            tracking_info: Some(self.0.tracking_number.clone())
                .filter(|n| !n.is_empty())
                .map(|number| FulfillmentTrackingInfo { number })
                .into_iter()
                .collect(),
        }]
    }
}

/// A line of an order, at the price paid.
pub struct OrderLineItem(OrderLineView);

#[Object]
impl OrderLineItem {
    async fn title(&self) -> &str {
        &self.0.title
    }

    async fn quantity(&self) -> i32 {
        self.0.quantity
    }

    /// The unit price times the quantity, as ordered.
    async fn original_total_price(&self, ctx: &Context<'_>) -> Result<MoneyV2> {
        let store = ctx.data::<Store>()?;
        let unit = self.0.unit_price_minor;
        Ok(money(store, unit.saturating_mul(i64::from(self.0.quantity))))
    }

    /// The variant as it is for sale now; `null` when it no longer is.
    async fn variant(&self, ctx: &Context<'_>) -> Result<Option<ProductVariant>> {
        let store = ctx.data::<Store>()?;
        let Some(id) = self.0.variant_id else { return Ok(None) };
        let product = store.state.catalog.active_product_of_variant(&store.tenant, id).await.map_err(service_error)?;
        Ok(product.and_then(|p| ProductVariant::of(p, id)))
    }
}

// ---- mutations -------------------------------------------------------------------------------

#[derive(SimpleObject, Clone)]
pub struct CustomerUserError {
    field: Option<Vec<String>>,
    message: String,
    code: Option<CustomerErrorCode>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum CustomerErrorCode {
    Invalid,
    /// The email belongs to an account already.
    Taken,
    /// Wrong email or password.
    UnidentifiedCustomer,
    /// Too many attempts: wait and try again.
    Throttled,
}

fn customer_error(e: ServiceError) -> Result<CustomerUserError> {
    let (field, message, code) = match e {
        ServiceError::Invalid(i) => (i.field.to_owned(), i.message, CustomerErrorCode::Invalid),
        ServiceError::Conflict(what) => {
            (what.to_owned(), format!("an account with this {what} exists already"), CustomerErrorCode::Taken)
        }
        ServiceError::Unauthorized(m) => ("email".to_owned(), m.to_owned(), CustomerErrorCode::UnidentifiedCustomer),
        ServiceError::RateLimited { retry_after_secs } => (
            "email".to_owned(),
            format!("too many attempts; try again in {retry_after_secs} s"),
            CustomerErrorCode::Throttled,
        ),
        other => return Err(service_error(other)),
    };
    Ok(CustomerUserError { field: Some(vec![field]), message, code: Some(code) })
}

#[derive(InputObject)]
pub struct CustomerCreateInput {
    email: String,
    password: String,
    first_name: Option<String>,
    last_name: Option<String>,
}

#[derive(InputObject)]
pub struct CustomerAccessTokenCreateInput {
    email: String,
    password: String,
}

#[derive(SimpleObject)]
pub struct CustomerAccessToken {
    access_token: String,
    /// RFC 3339.
    expires_at: String,
}

#[derive(SimpleObject)]
pub struct CustomerCreatePayload {
    customer: Option<Customer>,
    customer_user_errors: Vec<CustomerUserError>,
}

#[derive(SimpleObject)]
pub struct CustomerAccessTokenCreatePayload {
    customer_access_token: Option<CustomerAccessToken>,
    customer_user_errors: Vec<CustomerUserError>,
}

#[derive(SimpleObject)]
pub struct CustomerAccessTokenDeletePayload {
    deleted_access_token: Option<String>,
    user_errors: Vec<CustomerUserError>,
}

#[derive(SimpleObject)]
pub struct CustomerRecoverPayload {
    customer_user_errors: Vec<CustomerUserError>,
}

#[derive(Default)]
pub struct CustomerMutation;

#[Object]
impl CustomerMutation {
    /// Creates a customer account in this store (rate limited per address).
    async fn customer_create(&self, ctx: &Context<'_>, input: CustomerCreateInput) -> Result<CustomerCreatePayload> {
        let store = ctx.data::<Store>()?;
        let name = [input.first_name, input.last_name]
            .into_iter()
            .flatten()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let realm = Realm::Customer(store.tenant.id);
        let accounts = &store.state.accounts;
        match accounts.sign_up(realm, &store.ip, &input.email, &name, &input.password).await {
            Ok(who) => {
                let customer = accounts.current(&who).await.map_err(service_error)?.map(Customer);
                Ok(CustomerCreatePayload { customer, customer_user_errors: Vec::new() })
            }
            Err(e) => Ok(CustomerCreatePayload { customer: None, customer_user_errors: vec![customer_error(e)?] }),
        }
    }

    /// Signs a customer in: a token to send as `customerAccessToken`, valid for 30 days
    /// or until the password changes.
    async fn customer_access_token_create(
        &self,
        ctx: &Context<'_>,
        input: CustomerAccessTokenCreateInput,
    ) -> Result<CustomerAccessTokenCreatePayload> {
        let store = ctx.data::<Store>()?;
        let realm = Realm::Customer(store.tenant.id);
        let signed_in = match store.state.accounts.sign_in(realm, &store.ip, &input.email, &input.password).await {
            Ok(who) => who,
            Err(e) => {
                return Ok(CustomerAccessTokenCreatePayload {
                    customer_access_token: None,
                    customer_user_errors: vec![customer_error(e)?],
                });
            }
        };
        let (token, expires) = store.state.api_tokens.issue_customer_token(&signed_in).await.map_err(service_error)?;
        Ok(CustomerAccessTokenCreatePayload {
            customer_access_token: Some(CustomerAccessToken { access_token: token, expires_at: expires.to_rfc3339() }),
            customer_user_errors: Vec::new(),
        })
    }

    /// Signs out: the token stops working at once.
    async fn customer_access_token_delete(
        &self,
        ctx: &Context<'_>,
        customer_access_token: String,
    ) -> Result<CustomerAccessTokenDeletePayload> {
        let store = ctx.data::<Store>()?;
        let api_tokens = &store.state.api_tokens;
        if api_tokens.revoke_customer_token(store.tenant.id, &customer_access_token).await.map_err(service_error)? {
            return Ok(CustomerAccessTokenDeletePayload {
                deleted_access_token: Some(customer_access_token),
                user_errors: Vec::new(),
            });
        }
        Ok(CustomerAccessTokenDeletePayload {
            deleted_access_token: None,
            user_errors: vec![CustomerUserError {
                field: Some(vec!["customerAccessToken".into()]),
                message: "the customer access token is not valid".into(),
                code: Some(CustomerErrorCode::Invalid),
            }],
        })
    }

    /// Sends the password-reset message to the email, if it has an account here (the
    /// answer is the same either way, so it cannot be used to find who shops here).
    async fn customer_recover(&self, ctx: &Context<'_>, email: String) -> Result<CustomerRecoverPayload> {
        let store = ctx.data::<Store>()?;
        let realm = Realm::Customer(store.tenant.id);
        let link = format!("{}/account/reset", store.base_url());
        let outcome = store.state.accounts.request_reset(realm, &store.ip, &email, &link, &store.tenant.name).await;
        Ok(CustomerRecoverPayload {
            customer_user_errors: match outcome {
                Ok(()) => Vec::new(),
                Err(e) => vec![customer_error(e)?],
            },
        })
    }
}
