//! The merchant GraphQL API (`POST /merchant/graphql` on a store host), on SQLite and
//! PostgreSQL, through a generated client (`graphql_client`) whose queries are checked
//! at compile time against the committed `schema/merchant.graphql`: tokens made in
//! the panel, scopes, sessions, the product, stock and order flows, tenant-safe ids,
//! user errors and limits. Plus the committed schema file must match the code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Browser, PASSWORD, TestApp, ready_cart, store_with_stock};
use ecom_core::Tenant;
use ecom_core::scope::Scopes;
use ecom_services::checkout::{PaymentChoice, PlaceOutcome};
use graphql_client::{GraphQLQuery, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

// Custom scalars of the schema, as the generated client sees them.
type Decimal = String;
type DateTime = String;
#[expect(clippy::upper_case_acronyms, reason = "the schema's scalar name")]
type URL = String;
#[expect(clippy::upper_case_acronyms, reason = "the schema's scalar name")]
type HTML = String;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/merchant.graphql",
    query_path = "tests/graphql/merchant/shop.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct Shop;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/merchant.graphql",
    query_path = "tests/graphql/merchant/product_create.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct ProductCreate;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/merchant.graphql",
    query_path = "tests/graphql/merchant/product_update.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct ProductUpdate;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/merchant.graphql",
    query_path = "tests/graphql/merchant/product.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct Product;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/merchant.graphql",
    query_path = "tests/graphql/merchant/products.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct Products;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/merchant.graphql",
    query_path = "tests/graphql/merchant/inventory_adjust.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct InventoryAdjust;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/merchant.graphql",
    query_path = "tests/graphql/merchant/orders.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct Orders;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/merchant.graphql",
    query_path = "tests/graphql/merchant/order.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct Order;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/merchant.graphql",
    query_path = "tests/graphql/merchant/fulfillment_create.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct FulfillmentCreate;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/merchant.graphql",
    query_path = "tests/graphql/merchant/refund_create.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct RefundCreate;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/merchant.graphql",
    query_path = "tests/graphql/merchant/order_cancel.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone"
)]
pub struct OrderCancel;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/merchant.graphql",
    query_path = "tests/graphql/merchant/customers.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct Customers;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/merchant.graphql",
    query_path = "tests/graphql/merchant/deep.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct Deep;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/merchant.graphql",
    query_path = "tests/graphql/merchant/media_create.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct MediaCreate;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/merchant.graphql",
    query_path = "tests/graphql/merchant/order_capture.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct OrderCapture;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/merchant.graphql",
    query_path = "tests/graphql/merchant/product_variant.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct ProductVariant;

/// How a request authenticates.
#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    /// `Authorization: Bearer …`.
    Bearer(&'a str),
    /// `X-Ecom-Access-Token: …`.
    Header(&'a str),
}

/// A client for one store's merchant API.
struct Api {
    client: reqwest::Client,
    url: String,
}

impl Api {
    fn new(app: &TestApp, host: &str) -> Self {
        let client = reqwest::Client::builder().resolve(host, app.addr).build().unwrap();
        Self { client, url: app.url(host, "/merchant/graphql") }
    }

    /// Sends a generated query; returns the HTTP status and the typed response.
    async fn send<Q: GraphQLQuery>(&self, auth: Auth<'_>, vars: Q::Variables) -> (u16, Response<Q::ResponseData>)
    where
        Q::Variables: Serialize,
        Q::ResponseData: DeserializeOwned,
    {
        let mut req = self.client.post(&self.url).json(&Q::build_query(vars));
        req = match auth {
            Auth::None => req,
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::Header(t) => req.header("X-Ecom-Access-Token", t),
        };
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    /// `send` for a request that must succeed: the data.
    async fn ok<Q: GraphQLQuery>(&self, token: &str, vars: Q::Variables) -> Q::ResponseData
    where
        Q::Variables: Serialize,
        Q::ResponseData: DeserializeOwned,
    {
        let (status, resp) = self.send::<Q>(Auth::Bearer(token), vars).await;
        assert_eq!(status, 200);
        assert!(resp.errors.is_none(), "{:?}", resp.errors);
        // Every answer reports its cost against the token's budget.
        let cost = &resp.extensions.as_ref().expect("extensions")["cost"];
        assert!(cost["requestedQueryCost"].as_u64().unwrap() > 0, "{cost}");
        assert_eq!(cost["throttleStatus"]["maximumAvailable"], 10_000.0, "{cost}");
        resp.data.unwrap()
    }
}

/// The `extensions.code` and message of each error.
fn codes<T>(resp: &Response<T>) -> Vec<(String, String)> {
    resp.errors
        .iter()
        .flatten()
        .map(|e| {
            let code = e.extensions.as_ref().and_then(|x| x.get("code")).and_then(|c| c.as_str()).unwrap_or("");
            (code.to_owned(), e.message.clone())
        })
        .collect()
}

/// A token for the store, made by the service directly (the panel is tested once).
async fn token(app: &TestApp, tenant: &Tenant, name: &str, scopes: &str) -> String {
    let tokens = ecom_services::ApiTokens::new(app.db.clone());
    tokens.create_app_token(tenant.id, name, &Scopes::parse(scopes).unwrap(), "test").await.unwrap().1
}

fn card(number: &str) -> PaymentChoice {
    PaymentChoice { provider: "test_card".into(), token: number.into() }
}

fn variant_input(options: &[&str], price: &str, stock: i32) -> product_create::ProductVariantInput {
    product_create::ProductVariantInput {
        options: options.iter().map(|o| (*o).to_owned()).collect(),
        price: Some(price.into()),
        inventory_quantity: Some(stock.into()),
        ..Default::default()
    }
}

/// The token shown once on the API page after creating one.
fn shown_token(body: &str) -> String {
    let start = body.find("value=\"ecm_").expect("the page shows the new token") + "value=\"".len();
    body[start..start + 47].to_owned()
}

async fn signed_in_owner(app: &TestApp, host: &str, slug: &str) -> Browser {
    let browser = app.browser(&[]);
    let login = browser.login(host, "/merchant", &format!("owner@{slug}.test"), PASSWORD).await;
    assert_eq!(login.status, 303, "{}", login.body);
    browser
}

// ---- the product flow, with a token made in the panel ------------------------------------

async fn a_token_made_in_the_panel_runs_the_product_and_stock_flow(app: TestApp) {
    let tenant = app.store("demo", "Demo Store").await;
    let host = "demo.localhost";
    let browser = signed_in_owner(&app, host, "demo").await;

    // The owner creates a token on the API page (a CSRF-protected form).
    let page = browser.get(host, "/merchant/settings/api").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("No tokens yet"), "{}", page.body);
    assert!(page.body.contains("href=\"/merchant/settings/api\""), "the panel navigation links the page");
    let forged = browser.post(host, "/merchant/settings/api", &[("name", "Forged"), ("scope", "write_products")]).await;
    assert_eq!(forged.status, 403, "no CSRF token, no token");
    let created = browser
        .submit(
            host,
            "/merchant/settings/api",
            "/merchant/settings/api",
            &[("name", "Catalog sync"), ("scope", "write_products"), ("scope", "write_inventory")],
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.headers.get("cache-control").unwrap(), "no-store");
    let token = shown_token(&created.body);
    assert!(token.starts_with("ecm_"));
    let listed = browser.get(host, "/merchant/settings/api").await;
    assert!(listed.body.contains("Catalog sync"), "{}", listed.body);
    assert!(listed.body.contains("write_inventory") && listed.body.contains("by staff owner@demo.test"));
    assert!(!listed.body.contains(&token), "the token is shown only once");
    assert!(listed.body.contains("never"), "not used yet");
    // Bad input on the form: no scope chosen.
    let refused =
        browser.submit(host, "/merchant/settings/api", "/merchant/settings/api", &[("name", "Nothing")]).await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("choose at least one scope"), "{}", refused.body);

    let api = Api::new(&app, host);
    let shop = api.ok::<Shop>(&token, shop::Variables {}).await;
    assert_eq!(shop.shop.name, "Demo Store");
    assert_eq!(shop.shop.currency_code, "USD");

    // Create: a draft with Size S and M.
    let input = product_create::ProductInput {
        title: Some("Linen Shirt".into()),
        vendor: Some("Acme".into()),
        product_options: Some(vec!["Size".into()]),
        variants: Some(vec![variant_input(&["S"], "30.00", 2), variant_input(&["M"], "32.50", 0)]),
        ..Default::default()
    };
    let data = api.ok::<ProductCreate>(&token, product_create::Variables { input }).await;
    let payload = data.product_create;
    assert!(payload.user_errors.is_empty(), "{:?}", payload.user_errors);
    let product = payload.product.unwrap();
    assert_eq!(product.handle, "linen-shirt");
    assert_eq!(product.status, product_create::ProductStatus::DRAFT);
    assert_eq!(product.total_inventory, 2);
    assert_eq!(product.options[0].values, ["S", "M"]);
    let variants = &product.variants.nodes;
    assert_eq!(
        variants.iter().map(|v| (v.title.as_str(), v.price.as_str())).collect::<Vec<_>>(),
        [("S", "30.00"), ("M", "32.50")]
    );
    let (s_id, m_id) = (variants[0].id.clone(), variants[1].id.clone());
    assert_eq!(app.browser(&[]).get(host, "/products/linen-shirt").await.status, 404, "a draft is not for sale");

    // Update: new title, on sale, M repriced; ids and stock of kept variants stay.
    let input = product_update::ProductInput {
        id: Some(product.id.clone()),
        title: Some("Linen Shirt, Washed".into()),
        status: Some(product_update::ProductStatus::ACTIVE),
        description_html: Some("<p>Soft.</p><script>alert(1)</script>".into()),
        variants: Some(vec![
            product_update::ProductVariantInput { options: vec!["S".into()], ..Default::default() },
            product_update::ProductVariantInput {
                options: vec!["M".into()],
                price: Some("29.00".into()),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    let data = api.ok::<ProductUpdate>(&token, product_update::Variables { input }).await;
    let payload = data.product_update;
    assert!(payload.user_errors.is_empty(), "{:?}", payload.user_errors);
    let updated = payload.product.unwrap();
    assert_eq!(updated.title, "Linen Shirt, Washed");
    assert_eq!(updated.status, product_update::ProductStatus::ACTIVE);
    assert_eq!(updated.description_html, "<p>Soft.</p>", "sanitised like the panel");
    let v: Vec<_> =
        updated.variants.nodes.iter().map(|v| (v.id.clone(), v.price.clone(), v.inventory_quantity)).collect();
    assert_eq!(v, [(s_id.clone(), "30.00".into(), 2), (m_id.clone(), "29.00".into(), 0)]);
    let page = app.browser(&[]).get(host, "/products/linen-shirt").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Linen Shirt, Washed"));

    // Stock: +5 on M, atomically; then a removal larger than the stock changes nothing.
    let adjust = |changes: Vec<(String, i64)>| inventory_adjust::Variables {
        input: inventory_adjust::InventoryAdjustQuantitiesInput {
            reason: "received".into(),
            name: "available".into(),
            changes: changes
                .into_iter()
                .map(|(variant_id, delta)| inventory_adjust::InventoryChangeInput { variant_id, delta })
                .collect(),
        },
    };
    let data = api.ok::<InventoryAdjust>(&token, adjust(vec![(m_id.clone(), 5)])).await;
    let group = data.inventory_adjust_quantities.inventory_adjustment_group.unwrap();
    assert_eq!(group.changes[0].quantity_after_change, 5);
    assert_eq!(group.changes[0].delta, 5);
    let data = api.ok::<InventoryAdjust>(&token, adjust(vec![(s_id.clone(), -1), (m_id.clone(), -6)])).await;
    let payload = data.inventory_adjust_quantities;
    assert!(payload.inventory_adjustment_group.is_none());
    assert_eq!(payload.user_errors[0].code, "VALIDATION");
    assert!(payload.user_errors[0].message.contains("has 5 in stock"), "{:?}", payload.user_errors);
    let data = api.ok::<Product>(&token, product::Variables { id: product.id.clone() }).await;
    let now = data.product.unwrap();
    let stock: Vec<i64> = now.variants.nodes.iter().map(|v| v.inventory_quantity).collect();
    assert_eq!(stock, [2, 5], "the -1 on S was rolled back with the refused -6");
    assert_eq!(now.total_inventory, 7);
    let storefront = app.catalog.product(&tenant, "linen-shirt").await.unwrap().unwrap();
    assert_eq!(storefront.variants[1].stock, 5, "the storefront's cache was dropped");

    // Archive: gone from the storefront, still listed for the merchant.
    let input = product_update::ProductInput {
        id: Some(product.id.clone()),
        status: Some(product_update::ProductStatus::ARCHIVED),
        ..Default::default()
    };
    let data = api.ok::<ProductUpdate>(&token, product_update::Variables { input }).await;
    assert_eq!(data.product_update.product.unwrap().status, product_update::ProductStatus::ARCHIVED);
    assert_eq!(app.browser(&[]).get(host, "/products/linen-shirt").await.status, 404);
    let vars = products::Variables { query: Some("status:archived".into()), ..Default::default() };
    let data = api.ok::<Products>(&token, vars).await;
    assert_eq!(data.products.nodes.iter().map(|p| p.handle.as_str()).collect::<Vec<_>>(), ["linen-shirt"]);

    // Every change is in the audit log under the app's name; the page shows it was used.
    let log = browser.get(host, "/merchant/audit").await.body;
    for action in ["product.create", "product.update", "product.status", "inventory.adjust", "api_token.created"] {
        assert!(log.contains(action), "{action} audited");
    }
    assert!(log.contains("app Catalog sync"), "{log}");
    let listed = browser.get(host, "/merchant/settings/api").await;
    assert!(!listed.body.contains(">never<"), "last use recorded");

    // Revoked in the panel: the next request is refused.
    let id_start = listed.body.find("/merchant/settings/api/").unwrap() + "/merchant/settings/api/".len();
    let id = &listed.body[id_start..id_start + 36];
    let revoked =
        browser.submit(host, "/merchant/settings/api", &format!("/merchant/settings/api/{id}/revoke"), &[]).await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    let (status, resp) = api.send::<Shop>(Auth::Bearer(&token), shop::Variables {}).await;
    assert_eq!(status, 401);
    assert_eq!(codes(&resp)[0].0, "UNAUTHENTICATED");
    assert!(resp.data.is_none());
    assert!(browser.get(host, "/merchant/settings/api").await.body.contains("revoked"));
}
both!(a_token_made_in_the_panel_runs_the_product_and_stock_flow);

// ---- orders ------------------------------------------------------------------------------------

async fn an_order_from_checkout_is_listed_fulfilled_with_tracking_and_partly_refunded(app: TestApp) {
    let (tenant, variant) = store_with_stock(&app, "demo", 10).await;
    let cart = ready_cart(&app, &tenant, variant, 3).await;
    let PlaceOutcome::Placed { number, .. } =
        app.checkout.place_order(&tenant, cart, None, &card("4242 4242 4242 4242")).await.unwrap()
    else {
        panic!("not placed")
    };
    assert_eq!(number, 1001);
    let token = token(&app, &tenant, "Fulfilment app", "write_orders,read_customers").await;
    let api = Api::new(&app, "demo.localhost");

    let data = api.ok::<Orders>(&token, orders::Variables { first: Some(10), query: Some("status:open".into()) }).await;
    let listed = &data.orders.nodes;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "#1001");
    assert_eq!(listed[0].email, "pat@example.com");
    assert_eq!(listed[0].display_financial_status, orders::OrderDisplayFinancialStatus::PAID);
    assert_eq!(listed[0].display_fulfillment_status, orders::OrderDisplayFulfillmentStatus::UNFULFILLED);
    // 3 × 25.00 + 5.00 shipping + 6.25 % tax on both.
    assert_eq!(listed[0].total_price.amount, "85.00");
    assert_eq!(listed[0].total_price.currency_code, "USD");
    for (query, n) in [
        ("financial_status:paid", 1),
        ("financial_status:refunded", 0),
        ("status:cancelled", 0),
        ("1001", 1),
        ("nobody@x", 0),
    ] {
        let data = api.ok::<Orders>(&token, orders::Variables { first: Some(10), query: Some(query.into()) }).await;
        assert_eq!(data.orders.nodes.len(), n, "{query}");
    }
    let (_, bad) = api
        .send::<Orders>(Auth::Bearer(&token), orders::Variables { first: None, query: Some("colour:red".into()) })
        .await;
    assert_eq!(codes(&bad)[0].0, "VALIDATION");

    let order_id = listed[0].id.clone();
    let order = api.ok::<Order>(&token, order::Variables { id: order_id.clone() }).await.order.unwrap();
    assert_eq!(order.subtotal_price.amount, "75.00");
    assert_eq!(order.total_shipping_price.amount, "5.00");
    assert_eq!(order.total_tax.amount, "5.00");
    assert_eq!(order.payment_gateway_names, ["test_card"]);
    let address = order.shipping_address.unwrap();
    assert_eq!(
        (address.name.as_str(), address.city.as_str(), address.province_code.as_deref()),
        ("Pat Doe", "Springfield", Some("IL"))
    );
    assert_eq!(order.shipping_line.unwrap().title, "Standard");
    let line = &order.line_items.nodes[0];
    assert_eq!((line.title.as_str(), line.quantity, line.unfulfilled_quantity), ("Wool Hat", 3, 3));
    assert_eq!(line.original_unit_price.amount, "25.00");
    assert_eq!(order.events.nodes[0].action, "placed");

    // Fulfil one, then the rest with tracking (which ships it).
    let fulfil = |lines: Vec<(String, i64)>, tracking: Option<(&str, &str)>| fulfillment_create::Variables {
        fulfillment: fulfillment_create::FulfillmentInput {
            order_id: order_id.clone(),
            line_items: Some(
                lines
                    .into_iter()
                    .map(|(id, quantity)| fulfillment_create::FulfillmentLineItemInput { id, quantity })
                    .collect(),
            ),
            tracking_info: tracking
                .map(|(c, n)| fulfillment_create::FulfillmentTrackingInput { company: c.into(), number: n.into() }),
        },
    };
    let data = api.ok::<FulfillmentCreate>(&token, fulfil(vec![(line.id.clone(), 1)], None)).await;
    let payload = data.fulfillment_create;
    assert!(payload.user_errors.is_empty(), "{:?}", payload.user_errors);
    let now = payload.order.unwrap();
    assert_eq!(now.display_fulfillment_status, fulfillment_create::OrderDisplayFulfillmentStatus::PARTIALLY_FULFILLED);
    assert_eq!(now.line_items.nodes[0].unfulfilled_quantity, 2);
    // Too many, or tracking with something left: refused, nothing changes.
    let data = api.ok::<FulfillmentCreate>(&token, fulfil(vec![(line.id.clone(), 5)], None)).await;
    assert_eq!(data.fulfillment_create.user_errors[0].code, "VALIDATION");
    assert!(data.fulfillment_create.user_errors[0].message.contains("2 left to fulfil"));
    let data = api.ok::<FulfillmentCreate>(&token, fulfil(vec![(line.id.clone(), 1)], Some(("UPS", "1Z999")))).await;
    assert_eq!(data.fulfillment_create.user_errors[0].field.as_deref().unwrap(), ["fulfillment", "trackingInfo"]);
    let data = api.ok::<FulfillmentCreate>(&token, fulfil(vec![(line.id.clone(), 2)], Some(("UPS", "1Z999")))).await;
    let payload = data.fulfillment_create;
    assert!(payload.user_errors.is_empty(), "{:?}", payload.user_errors);
    let now = payload.order.unwrap();
    assert_eq!(now.status, "shipped");
    assert_eq!(now.display_fulfillment_status, fulfillment_create::OrderDisplayFulfillmentStatus::FULFILLED);
    let tracking = now.tracking_info.unwrap();
    assert_eq!((tracking.company.as_str(), tracking.number.as_str()), ("UPS", "1Z999"));

    // Refund part; too much is a user error and changes nothing.
    let refund = |amount: &str| refund_create::Variables {
        input: refund_create::RefundInput {
            order_id: order_id.clone(),
            amount: amount.into(),
            note: Some("scratched".into()),
        },
    };
    let data = api.ok::<RefundCreate>(&token, refund("10.00")).await;
    let payload = data.refund_create;
    assert!(payload.user_errors.is_empty(), "{:?}", payload.user_errors);
    assert_eq!(payload.refund.unwrap().amount.amount, "10.00");
    let now = payload.order.unwrap();
    assert_eq!(now.display_financial_status, refund_create::OrderDisplayFinancialStatus::PARTIALLY_REFUNDED);
    assert_eq!((now.total_refunded.amount.as_str(), now.total_refundable.amount.as_str()), ("10.00", "75.00"));
    for bad in ["500.00", "-1", "ten"] {
        let data = api.ok::<RefundCreate>(&token, refund(bad)).await;
        assert!(data.refund_create.refund.is_none(), "{bad}");
        assert_eq!(data.refund_create.user_errors[0].code, "VALIDATION", "{bad}");
    }
    let order = api.ok::<Order>(&token, order::Variables { id: order_id.clone() }).await.order.unwrap();
    assert_eq!(order.total_refunded.amount, "10.00", "the refused refunds changed nothing");
    let timeline: Vec<(&str, &str)> =
        order.events.nodes.iter().map(|e| (e.action.as_str(), e.author.as_str())).collect();
    assert!(timeline.contains(&("partially_fulfilled", "app Fulfilment app")), "{timeline:?}");
    assert!(timeline.contains(&("shipped", "app Fulfilment app")), "{timeline:?}");
    assert!(timeline.contains(&("partially_refunded", "app Fulfilment app")), "{timeline:?}");
    assert!(order.events.nodes.iter().any(|e| e.message == "Refunded $10.00: scratched"), "{:?}", order.events.nodes);

    // A shipped order cannot be cancelled.
    let vars = order_cancel::Variables {
        order_id: order_id.clone(),
        restock: true,
        reason: order_cancel::OrderCancelReason::CUSTOMER,
    };
    let data = api.ok::<OrderCancel>(&token, vars).await;
    assert!(
        data.order_cancel.user_errors[0].message.contains("cannot be cancelled"),
        "{:?}",
        data.order_cancel.user_errors
    );

    // A second order, cancelled with restock: the stock comes back.
    let cart = ready_cart(&app, &tenant, variant, 2).await;
    app.checkout.place_order(&tenant, cart, None, &card("4242424242424242")).await.unwrap();
    let data = api.ok::<Orders>(&token, orders::Variables { first: Some(1), query: Some("1002".into()) }).await;
    let second = data.orders.nodes[0].id.clone();
    let stock = async || {
        app.catalog
            .product_for_edit(&tenant, uuid_of_product(&app, &tenant, "wool-hat").await)
            .await
            .unwrap()
            .unwrap()
            .1[0]
            .stock
    };
    assert_eq!(stock().await, 5);
    let vars =
        order_cancel::Variables { order_id: second, restock: true, reason: order_cancel::OrderCancelReason::INVENTORY };
    let data = api.ok::<OrderCancel>(&token, vars).await;
    let cancelled = data.order_cancel.order.unwrap();
    assert_eq!(cancelled.status, "cancelled");
    assert!(cancelled.cancelled_at.is_some());
    assert_eq!(stock().await, 7);
    let log = ecom_services::audit::recent(&app.db, tenant.id, 50).await.unwrap();
    assert!(
        log.iter().any(|a| a.actor == "app Fulfilment app" && a.action == "order.cancel" && a.target == "order #1002")
    );
    assert!(
        log.iter().any(|a| a.actor == "app Fulfilment app" && a.action == "order.update" && a.target == "order #1001")
    );

    // Customers: Pat has no paid orders as a signed-in customer (these were guest orders).
    let data = api.ok::<Customers>(&token, customers::Variables { query: Some("pat@".into()) }).await;
    let pat = &data.customers.nodes[0];
    assert_eq!((pat.email.as_str(), pat.display_name.as_str(), pat.orders_count), ("pat@example.com", "Pat", 0));
    assert_eq!(pat.amount_spent.amount, "0.00");
}
both!(an_order_from_checkout_is_listed_fulfilled_with_tracking_and_partly_refunded);

// ---- who may call ---------------------------------------------------------------------------

async fn scopes_tokens_and_sessions_decide_who_may_do_what(app: TestApp) {
    let tenant = app.store("demo", "Demo Store").await;
    let host = "demo.localhost";
    let api = Api::new(&app, host);
    let reader = token(&app, &tenant, "Reader", "read_products").await;

    // Reading products is allowed, with either header.
    let (status, resp) = api.send::<Products>(Auth::Header(&reader), products::Variables::default()).await;
    assert_eq!(status, 200);
    assert!(resp.data.unwrap().products.nodes.is_empty());

    // Orders and product writes are not, and the error names the scope.
    let (status, resp) = api.send::<Orders>(Auth::Bearer(&reader), orders::Variables::default()).await;
    assert_eq!(status, 200);
    assert_eq!(codes(&resp), [("FORBIDDEN".to_owned(), "this needs the read_orders scope".to_owned())]);
    let input = product_create::ProductInput { title: Some("Nope".into()), ..Default::default() };
    let (_, resp) = api.send::<ProductCreate>(Auth::Bearer(&reader), product_create::Variables { input }).await;
    assert_eq!(codes(&resp), [("FORBIDDEN".to_owned(), "this needs the write_products scope".to_owned())]);
    let vars = customers::Variables::default();
    let (_, resp) = api.send::<Customers>(Auth::Bearer(&reader), vars).await;
    assert_eq!(codes(&resp)[0].1, "this needs the read_customers scope");
    // A customers reader without read_orders sees customers but not their orders.
    let crm = token(&app, &tenant, "CRM", "read_customers").await;
    let (_, resp) = api.send::<Customers>(Auth::Bearer(&crm), customers::Variables::default()).await;
    assert_eq!(codes(&resp)[0].1, "this needs the read_orders scope");
    let pat = &resp.data.unwrap().customers.nodes[0];
    assert_eq!((pat.email.as_str(), pat.orders.is_none()), ("pat@example.com", true));
    assert!(app.catalog.merchant_products(&tenant, None, None, 1).await.unwrap().0.is_empty(), "nothing created");

    // No credentials, a wrong token, another store's token: 401 UNAUTHENTICATED.
    let other = app.store("acme", "Acme").await;
    let acme_token = token(&app, &other, "Acme app", "read_products").await;
    let wrong = format!("ecm_{}", "A".repeat(43));
    for auth in [Auth::None, Auth::Bearer(&wrong), Auth::Bearer("nonsense"), Auth::Header(&acme_token)] {
        let (status, resp) = api.send::<Shop>(auth, shop::Variables {}).await;
        assert_eq!(status, 401);
        assert_eq!(codes(&resp)[0].0, "UNAUTHENTICATED");
        assert!(resp.data.is_none());
    }

    // A staff session works for JSON from the store's own pages, and nothing else.
    let browser = signed_in_owner(&app, host, "demo").await;
    let url = browser.url(host, "/merchant/graphql");
    let query = r#"{"query":"{ shop { name } }"}"#;
    let post = |content_type: &'static str, origin: Option<String>| {
        let mut req = browser.client.post(&url).header("content-type", content_type).body(query);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let ok = post("application/json", Some(browser.url(host, ""))).await.unwrap();
    assert_eq!(ok.status(), 200);
    let body: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(body["data"]["shop"]["name"], "Demo Store");
    assert_eq!(post("application/json", None).await.unwrap().status(), 200);
    for (content_type, origin) in [
        ("text/plain", None),
        ("application/x-www-form-urlencoded", None),
        ("application/json", Some("http://evil.example".to_owned())),
        ("application/json", Some("null".to_owned())),
    ] {
        let resp = post(content_type, origin.clone()).await.unwrap();
        assert_eq!(resp.status(), 403, "{content_type} {origin:?}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
        assert!(body.get("data").is_none());
    }
}
both!(scopes_tokens_and_sessions_decide_who_may_do_what);

// ---- ids, bad input, limits --------------------------------------------------------------

async fn ids_stay_in_their_store_and_bad_input_changes_nothing(app: TestApp) {
    let demo = app.store("demo", "Demo").await;
    let acme = app.store("acme", "Acme").await;
    let demo_token = token(&app, &demo, "Demo app", "write_products,write_inventory").await;
    let acme_token = token(&app, &acme, "Acme app", "write_products,write_inventory").await;
    let (demo_api, acme_api) = (Api::new(&app, "demo.localhost"), Api::new(&app, "acme.localhost"));
    let create = |title: &str, handle: Option<&str>, price: &str| product_create::Variables {
        input: product_create::ProductInput {
            title: Some(title.into()),
            handle: handle.map(str::to_owned),
            status: Some(product_create::ProductStatus::ACTIVE),
            variants: Some(vec![variant_input(&[], price, 3)]),
            ..Default::default()
        },
    };
    let data = demo_api.ok::<ProductCreate>(&demo_token, create("Demo Hat", None, "10.00")).await;
    let hat = data.product_create.product.unwrap();
    assert_eq!(hat.variants.nodes[0].title, "Default Title");

    // Demo's ids are not found on Acme: queries say NOT_FOUND, mutations a user error.
    let (status, resp) =
        acme_api.send::<Product>(Auth::Bearer(&acme_token), product::Variables { id: hat.id.clone() }).await;
    assert_eq!(status, 200);
    assert_eq!(codes(&resp)[0].0, "NOT_FOUND");
    assert_eq!(resp.data.and_then(|d| d.product), None);
    let input =
        product_update::ProductInput { id: Some(hat.id.clone()), title: Some("Stolen".into()), ..Default::default() };
    let data = acme_api.ok::<ProductUpdate>(&acme_token, product_update::Variables { input }).await;
    assert_eq!(data.product_update.user_errors[0].code, "NOT_FOUND");
    let vars = inventory_adjust::Variables {
        input: inventory_adjust::InventoryAdjustQuantitiesInput {
            reason: "theft".into(),
            name: "available".into(),
            changes: vec![inventory_adjust::InventoryChangeInput {
                variant_id: hat.variants.nodes[0].id.clone(),
                delta: -3,
            }],
        },
    };
    let data = acme_api.ok::<InventoryAdjust>(&acme_token, vars).await;
    assert_eq!(data.inventory_adjust_quantities.user_errors[0].code, "NOT_FOUND");
    let still = demo_api.ok::<Product>(&demo_token, product::Variables { id: hat.id.clone() }).await.product.unwrap();
    assert_eq!((still.title.as_str(), still.total_inventory), ("Demo Hat", 3), "nothing changed in Demo");
    let (_, resp) =
        demo_api.send::<Product>(Auth::Bearer(&demo_token), product::Variables { id: "garbage".into() }).await;
    assert_eq!(codes(&resp)[0].0, "NOT_FOUND");

    // Bad input: user errors naming the field, and nothing is created or changed.
    let data = demo_api.ok::<ProductCreate>(&demo_token, create("  ", Some("x-1"), "10.00")).await;
    let errors = &data.product_create.user_errors;
    assert_eq!(
        (errors[0].field.as_deref().unwrap(), errors[0].code.as_str()),
        (&["input".to_owned(), "title".to_owned()][..], "VALIDATION")
    );
    let data = demo_api.ok::<ProductCreate>(&demo_token, create("Cap", None, "ten dollars")).await;
    assert_eq!(data.product_create.user_errors[0].field.as_deref().unwrap(), ["input", "variants"]);
    let data = demo_api.ok::<ProductCreate>(&demo_token, create("Another Hat", Some("demo-hat"), "10.00")).await;
    assert_eq!(data.product_create.user_errors[0].code, "TAKEN");
    let input = product_update::ProductInput {
        id: Some(hat.id.clone()),
        handle: Some("Not A Handle!".into()),
        ..Default::default()
    };
    let data = demo_api.ok::<ProductUpdate>(&demo_token, product_update::Variables { input }).await;
    assert_eq!(data.product_update.user_errors[0].field.as_deref().unwrap(), ["input", "handle"]);
    let data = demo_api.ok::<Products>(&demo_token, products::Variables::default()).await;
    assert_eq!(data.products.nodes.iter().map(|p| p.handle.as_str()).collect::<Vec<_>>(), ["demo-hat"]);

    // An image URL on a private address is refused (the SSRF guard) and none is added.
    let vars = media_create::Variables {
        product_id: hat.id.clone(),
        media: vec![media_create::CreateMediaInput { original_source: "http://127.0.0.1:1/x.png".into(), alt: None }],
    };
    let data = demo_api.ok::<MediaCreate>(&demo_token, vars).await;
    let payload = data.product_create_media;
    assert!(payload.media.is_empty());
    assert_eq!(payload.user_errors[0].field.as_deref().unwrap(), ["media", "0", "originalSource"]);
    assert!(app.catalog.images(&demo, uuid_of_product(&app, &demo, "demo-hat").await).await.unwrap().is_empty());

    // Limits: too deep a query is refused before it runs.
    let (status, resp) = demo_api.send::<Deep>(Auth::Bearer(&demo_token), deep::Variables {}).await;
    assert_eq!(status, 200);
    assert_eq!(codes(&resp)[0].0, "MAX_DEPTH_EXCEEDED");
    assert!(codes(&resp)[0].1.contains("at most 15 levels"));
    assert!(resp.data.is_none());
}
both!(ids_stay_in_their_store_and_bad_input_changes_nothing);

async fn uuid_of_product(app: &TestApp, tenant: &Tenant, handle: &str) -> uuid::Uuid {
    let view = app.catalog.product(tenant, handle).await.unwrap().unwrap();
    uuid::Uuid::parse_str(&view.id).unwrap()
}

/// `schema/merchant.graphql` is generated from the code; this fails when they differ.
/// Regenerate with `UPDATE_SCHEMA=1 cargo nextest run -p ecom --test graphql_merchant`.
#[test]
fn committed_merchant_schema_matches_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema/merchant.graphql");
    let sdl = ecom_web::graphql::merchant_sdl();
    if std::env::var("UPDATE_SCHEMA").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &sdl).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == sdl,
        "schema/merchant.graphql is out of date with the code (or missing). Regenerate it with\n  \
         UPDATE_SCHEMA=1 cargo nextest run -p ecom --test graphql_merchant committed_merchant_schema_matches_the_code\n\
         and commit the result."
    );
}

// ---- capture, images --------------------------------------------------------------------

async fn an_authorised_payment_is_captured_once(app: TestApp) {
    let (tenant, variant) = store_with_stock(&app, "demo", 10).await;
    let staff = ecom_services::checkout::Actor::Staff("owner@demo.test".into());
    app.checkout.save_general_settings(&tenant, false, 60, false, "", &staff).await.unwrap();
    let cart = ready_cart(&app, &tenant, variant, 1).await;
    app.checkout.place_order(&tenant, cart, None, &card("4242424242424242")).await.unwrap();
    let token = token(&app, &tenant, "Payments", "write_orders").await;
    let api = Api::new(&app, "demo.localhost");
    let data = api
        .ok::<Orders>(&token, orders::Variables { first: Some(5), query: Some("financial_status:authorized".into()) })
        .await;
    assert_eq!(data.orders.nodes.len(), 1);
    let id = data.orders.nodes[0].id.clone();
    let capture = || order_capture::Variables { input: order_capture::OrderCaptureInput { id: id.clone() } };
    let data = api.ok::<OrderCapture>(&token, capture()).await;
    let payload = data.order_capture;
    assert!(payload.user_errors.is_empty(), "{:?}", payload.user_errors);
    let order = payload.order.unwrap();
    assert_eq!(order.display_financial_status, order_capture::OrderDisplayFinancialStatus::PAID);
    assert!(
        order.events.nodes.iter().any(|e| e.action == "paid" && e.author == "app Payments"),
        "{:?}",
        order.events.nodes
    );
    let data = api.ok::<OrderCapture>(&token, capture()).await;
    assert_eq!(data.order_capture.user_errors[0].code, "VALIDATION", "captured once only");
    assert!(data.order_capture.order.is_none());
}
both!(an_authorised_payment_is_captured_once);

/// Like `both!`, with private addresses allowed (the test image server is on loopback).
macro_rules! both_private {
    ($name:ident) => {
        mod $name {
            fn allow(config: &mut ecom::config::Config) {
                config.allow_private_network = true;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) = crate::common::TestApp::spawn_with(crate::common::Backend::Sqlite, allow).await {
                    super::$name(app).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = crate::common::TestApp::spawn_with(crate::common::Backend::Postgres, allow).await {
                    super::$name(app).await;
                }
            }
        }
    };
}

/// Serves a 40×30 PNG at `/a.png` (and 404 elsewhere); returns its base URL.
async fn image_server() -> String {
    let mut png = Vec::new();
    image::RgbImage::from_pixel(40, 30, image::Rgb([200, 30, 30]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let app = axum::Router::new().route(
        "/a.png",
        axum::routing::get(move || {
            let png = png.clone();
            async move { ([("content-type", "image/png")], png) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn images_are_added_from_urls_all_or_none(app: TestApp) {
    let tenant = app.store("demo", "Demo").await;
    let token = token(&app, &tenant, "Media app", "write_products").await;
    let api = Api::new(&app, "demo.localhost");
    let input = product_create::ProductInput {
        title: Some("Red Card".into()),
        variants: Some(vec![variant_input(&[], "2.00", 1)]),
        ..Default::default()
    };
    let product =
        api.ok::<ProductCreate>(&token, product_create::Variables { input }).await.product_create.product.unwrap();
    let base = image_server().await;
    let media = |sources: &[(&str, &str)]| media_create::Variables {
        product_id: product.id.clone(),
        media: sources
            .iter()
            .map(|(src, alt)| media_create::CreateMediaInput {
                original_source: format!("{base}{src}"),
                alt: Some((*alt).into()),
            })
            .collect(),
    };
    let data = api.ok::<MediaCreate>(&token, media(&[("/a.png", "Front"), ("/missing.png", "Back")])).await;
    let payload = data.product_create_media;
    assert!(payload.media.is_empty());
    assert_eq!(payload.user_errors[0].field.as_deref().unwrap(), ["media", "1", "originalSource"]);
    assert!(payload.user_errors[0].message.contains("404"), "{:?}", payload.user_errors);
    let id = app.catalog.ids_for_handles(&tenant, &["red-card".to_owned()]).await.unwrap()[0];
    assert!(app.catalog.images(&tenant, id).await.unwrap().is_empty(), "none of the two was added");

    let data = api.ok::<MediaCreate>(&token, media(&[("/a.png", "Front")])).await;
    let payload = data.product_create_media;
    assert!(payload.user_errors.is_empty(), "{:?}", payload.user_errors);
    assert_eq!(payload.media.len(), 1);
    assert_eq!(payload.media[0].alt_text.as_deref(), Some("Front"));
    let images = app.catalog.images(&tenant, id).await.unwrap();
    assert_eq!((images.len(), images[0].width, images[0].height), (1, 40, 30));
    let served = reqwest::Client::builder().resolve("demo.localhost", app.addr).build().unwrap();
    let resp = served.get(&payload.media[0].url).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", payload.media[0].url);
    let log = ecom_services::audit::recent(&app.db, tenant.id, 10).await.unwrap();
    assert!(log.iter().any(|a| a.actor == "app Media app" && a.action == "product.image.add"));

    // A variant by id, with its product.
    let variant = product.variants.nodes[0].id.clone();
    let v = api
        .ok::<ProductVariant>(&token, product_variant::Variables { id: variant.clone() })
        .await
        .product_variant
        .unwrap();
    assert_eq!(
        (v.id.as_str(), v.title.as_str(), v.price.as_str(), v.inventory_quantity),
        (variant.as_str(), "Default Title", "2.00", 1)
    );
    assert!(!v.available_for_sale, "a draft is not for sale");
    assert_eq!(v.product.handle, "red-card");
}
both_private!(images_are_added_from_urls_all_or_none);

/// A store the platform suspended: its storefront (pages and API) is closed, its panel
/// and merchant API can be read but not changed, and it all comes back on resume.
async fn a_suspended_store_is_closed_and_read_only(backend: common::Backend) {
    let Some(app) = TestApp::spawn_with(backend, |c| c.tenant_cache_ttl_secs = 1).await else { return };
    let (tenant, _) = store_with_stock(&app, "demo", 5).await;
    let token = token(&app, &tenant, "Sync", "write_products").await;
    let browser = signed_in_owner(&app, "demo.localhost", "demo").await;
    let client = reqwest::Client::builder().resolve("demo.localhost", app.addr).build().unwrap();
    let merchant = |query: &'static str| {
        let req = client.post(app.url("demo.localhost", "/merchant/graphql")).bearer_auth(&token);
        async move {
            req.json(&serde_json::json!({ "query": query }))
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    const READ: &str = "{ products(first: 5) { nodes { title } } }";
    const WRITE: &str =
        "mutation { productCreate(input: { title: \"Scarf\" }) { product { title } userErrors { message } } }";
    let set = |status| ecom_store::tenants::set_status(&app.db, tenant.id, status);

    set(ecom_core::TenantStatus::Suspended).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // the host cache's TTL
    let page = browser.get("demo.localhost", "/").await;
    assert_eq!(page.status, 503, "the storefront is closed");
    let api = client.post(app.url("demo.localhost", "/graphql")).json(&serde_json::json!({ "query": READ }));
    assert_eq!(api.send().await.unwrap().status().as_u16(), 503, "so is the Storefront API");
    assert_eq!(merchant(READ).await["data"]["products"]["nodes"][0]["title"], "Wool Hat", "reads still work");
    let refused = merchant(WRITE).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN", "{refused}");
    assert!(refused["errors"][0]["message"].as_str().unwrap().contains("suspended"), "{refused}");
    assert_eq!(browser.get("demo.localhost", "/merchant/products").await.status, 200, "the panel can be read");
    let save =
        browser.submit("demo.localhost", "/merchant/settings", "/merchant/settings", &[("name", "Renamed")]).await;
    assert_eq!(save.status, 403, "but not changed: {}", save.body);
    assert!(save.body.contains("suspended"));
    assert_eq!(app.catalog.product(&tenant, "scarf").await.unwrap().map(|p| p.title.clone()), None);

    set(ecom_core::TenantStatus::Active).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(browser.get("demo.localhost", "/").await.status, 200);
    let made = merchant(WRITE).await;
    assert_eq!(made["data"]["productCreate"]["product"]["title"], "Scarf", "{made}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_store_is_closed_and_read_only_sqlite() {
    a_suspended_store_is_closed_and_read_only(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_store_is_closed_and_read_only_postgres() {
    a_suspended_store_is_closed_and_read_only(common::Backend::Postgres).await;
}
