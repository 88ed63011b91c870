//! The Storefront API's cart, checkout and customers through a generated GraphQL
//! client (`graphql_client`, checked at compile time against the committed
//! `schema/storefront.graphql`), on SQLite and PostgreSQL: browse → cart →
//! `cartComplete` → the customer's orders, idempotent payment attempts, bad input
//! refused with nothing changed, ids bound to their store, cookies only same-origin.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{PASSWORD, TestApp, store_with_stock};
use graphql_client::{GraphQLQuery, Response};
use serde_json::json;

// The schema's custom scalars, as the generated code names them.
type Decimal = String;
#[allow(clippy::upper_case_acronyms)]
type URL = String;

macro_rules! operations {
    ($($name:ident),+ $(,)?) => {$(
        #[derive(GraphQLQuery)]
        #[graphql(
            schema_path = "../../schema/storefront.graphql",
            query_path = "tests/graphql/storefront.graphql",
            response_derives = "Debug, Clone",
            variables_derives = "Debug, Clone"
        )]
        struct $name;
    )+};
}

operations!(
    Browse,
    CartCreate,
    CartLinesAdd,
    CartLinesUpdate,
    CartLinesRemove,
    CartDiscountCodesUpdate,
    CartBuyerIdentityUpdate,
    CartSelectedDeliveryOptionsUpdate,
    CartById,
    CartComplete,
    CustomerCreate,
    CustomerAccessTokenCreate,
    CustomerAccessTokenDelete,
    CustomerRecover,
    CustomerOrders,
);

/// A client for one store host.
struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    fn new(app: &TestApp, host: &str) -> Self {
        let http = reqwest::Client::builder().resolve(host, app.addr).build().unwrap();
        Self { http, url: app.url(host, "/graphql") }
    }

    /// Sends an operation; returns its data and the error codes.
    async fn send<Q: GraphQLQuery>(&self, variables: Q::Variables) -> (Option<Q::ResponseData>, Vec<String>) {
        let body = Q::build_query(variables);
        let resp = self.http.post(&self.url).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let r: Response<Q::ResponseData> = resp.json().await.unwrap();
        let codes = r
            .errors
            .unwrap_or_default()
            .iter()
            .map(|e| {
                e.extensions.as_ref().and_then(|x| x.get("code")).and_then(|c| c.as_str()).unwrap_or("").to_owned()
            })
            .collect();
        (r.data, codes)
    }

    async fn data<Q: GraphQLQuery>(&self, variables: Q::Variables) -> Q::ResponseData {
        let (data, codes) = self.send::<Q>(variables).await;
        assert!(codes.is_empty(), "errors: {codes:?}");
        data.unwrap()
    }
}

fn line(variant: &str, quantity: i64) -> cart_create::CartLineInput {
    cart_create::CartLineInput { merchandise_id: variant.to_owned(), quantity: Some(quantity) }
}

fn illinois() -> cart_buyer_identity_update::MailingAddressInput {
    cart_buyer_identity_update::MailingAddressInput {
        first_name: Some("Ada".into()),
        last_name: Some("Lovelace".into()),
        address1: Some("1 Main St".into()),
        address2: None,
        city: Some("Springfield".into()),
        province: Some("IL".into()),
        zip: Some("62701".into()),
        country: Some("United States".into()),
        company: None,
        phone: None,
    }
}

fn identity(
    address: Option<cart_buyer_identity_update::MailingAddressInput>,
) -> cart_buyer_identity_update::CartBuyerIdentityInput {
    cart_buyer_identity_update::CartBuyerIdentityInput {
        email: None,
        phone: None,
        customer_access_token: None,
        delivery_address_preferences: address
            .map(|a| vec![cart_buyer_identity_update::DeliveryAddressInput { delivery_address: Some(a) }]),
    }
}

fn card(number: &str, key: &str) -> cart_complete::CartPaymentInput {
    cart_complete::CartPaymentInput {
        provider: "test_card".into(),
        token: Some(number.into()),
        idempotency_key: key.into(),
    }
}

async fn browse_cart_checkout_and_customer_orders(app: TestApp) {
    let (tenant, _) = store_with_stock(&app, "demo", 5).await;
    let staff = ecom_services::checkout::Actor::Staff("owner@test".into());
    app.checkout.create_discount(&tenant, "save10", "percent", "10", "", "", None, &staff).await.unwrap();
    let api = Client::new(&app, "demo.localhost");

    // A shopper makes an account and signs in for a token.
    let made = api
        .data::<CustomerCreate>(customer_create::Variables {
            input: customer_create::CustomerCreateInput {
                email: "ada@example.com".into(),
                password: "correct horse battery".into(),
                first_name: Some("Ada".into()),
                last_name: Some("Lovelace".into()),
            },
        })
        .await
        .customer_create;
    assert!(made.customer_user_errors.is_empty(), "{:?}", made.customer_user_errors);
    let customer = made.customer.unwrap();
    assert_eq!((customer.first_name.as_deref(), customer.last_name.as_deref()), (Some("Ada"), Some("Lovelace")));
    let again = api
        .data::<CustomerCreate>(customer_create::Variables {
            input: customer_create::CustomerCreateInput {
                email: "ADA@example.com".into(),
                password: "another long password".into(),
                first_name: None,
                last_name: None,
            },
        })
        .await
        .customer_create;
    assert!(again.customer.is_none());
    assert!(matches!(again.customer_user_errors[0].code, Some(customer_create::CustomerErrorCode::TAKEN)));
    let wrong = api
        .data::<CustomerAccessTokenCreate>(customer_access_token_create::Variables {
            input: customer_access_token_create::CustomerAccessTokenCreateInput {
                email: "ada@example.com".into(),
                password: "not it".into(),
            },
        })
        .await
        .customer_access_token_create;
    assert!(wrong.customer_access_token.is_none());
    assert!(matches!(
        wrong.customer_user_errors[0].code,
        Some(customer_access_token_create::CustomerErrorCode::UNIDENTIFIED_CUSTOMER)
    ));
    let token = api
        .data::<CustomerAccessTokenCreate>(customer_access_token_create::Variables {
            input: customer_access_token_create::CustomerAccessTokenCreateInput {
                email: "ada@example.com".into(),
                password: "correct horse battery".into(),
            },
        })
        .await
        .customer_access_token_create
        .customer_access_token
        .unwrap()
        .access_token;
    assert!(token.starts_with("ecs_"));

    // Browse for the hat.
    let found = api.data::<Browse>(browse::Variables { query: Some("hat".into()) }).await.products.nodes;
    assert_eq!(found.len(), 1);
    let variant = found[0].variants.nodes[0].clone();
    assert_eq!((variant.quantity_available, variant.price.amount.as_str()), (5, "25.00"));

    // A cart with two hats, for the signed-in customer.
    let created = api
        .data::<CartCreate>(cart_create::Variables {
            input: Some(cart_create::CartInput {
                lines: Some(vec![line(&variant.id, 2)]),
                discount_codes: None,
                buyer_identity: Some(cart_create::CartBuyerIdentityInput {
                    email: Some("ada@example.com".into()),
                    phone: None,
                    customer_access_token: Some(token.clone()),
                    delivery_address_preferences: None,
                }),
            }),
        })
        .await
        .cart_create;
    assert!(created.user_errors.is_empty(), "{:?}", created.user_errors);
    let cart = created.cart.unwrap();
    assert_eq!(cart.total_quantity, 2);
    assert_eq!(cart.cost.subtotal_amount.amount, "50.00");
    assert_eq!(cart.buyer_identity.email.as_deref(), Some("ada@example.com"));
    assert_eq!(cart.buyer_identity.customer_id.as_deref(), Some(customer.id.as_str()));
    let cart_id = cart.id.clone();
    let line_id = cart.lines.nodes[0].id.clone();

    // Ten more than in stock: refused, the cart as it was.
    let too_many = api
        .data::<CartLinesAdd>(cart_lines_add::Variables {
            cart_id: cart_id.clone(),
            lines: vec![cart_lines_add::CartLineInput { merchandise_id: variant.id.clone(), quantity: Some(10) }],
        })
        .await
        .cart_lines_add;
    assert!(matches!(too_many.user_errors[0].code, Some(cart_lines_add::CartErrorCode::NOT_ENOUGH_IN_STOCK)));
    assert!(too_many.user_errors[0].message.contains("only 5"), "{:?}", too_many.user_errors);
    assert_eq!(too_many.cart.unwrap().total_quantity, 2);

    // Three hats.
    let updated = api
        .data::<CartLinesUpdate>(cart_lines_update::Variables {
            cart_id: cart_id.clone(),
            lines: vec![cart_lines_update::CartLineUpdateInput { id: line_id.clone(), quantity: Some(3) }],
        })
        .await
        .cart_lines_update;
    assert!(updated.user_errors.is_empty());
    assert_eq!(updated.cart.unwrap().cost.subtotal_amount.amount, "75.00");

    // A bad address is refused and changes nothing; a good one brings tax and delivery.
    let mut bad = illinois();
    bad.zip = Some("not a zip".into());
    let refused = api
        .data::<CartBuyerIdentityUpdate>(cart_buyer_identity_update::Variables {
            cart_id: cart_id.clone(),
            identity: identity(Some(bad)),
        })
        .await
        .cart_buyer_identity_update;
    assert_eq!(refused.user_errors.len(), 1);
    assert!(refused.cart.unwrap().buyer_identity.delivery_address_preferences.is_empty());
    let addressed = api
        .data::<CartBuyerIdentityUpdate>(cart_buyer_identity_update::Variables {
            cart_id: cart_id.clone(),
            identity: identity(Some(illinois())),
        })
        .await
        .cart_buyer_identity_update;
    assert!(addressed.user_errors.is_empty(), "{:?}", addressed.user_errors);
    let c = addressed.cart.unwrap();
    let address = &c.buyer_identity.delivery_address_preferences[0];
    assert_eq!((address.name.as_str(), address.country_code_v2.as_str()), ("Ada Lovelace", "US"));
    assert_eq!(c.buyer_identity.email.as_deref(), Some("ada@example.com"), "fields not given stay");
    assert_eq!(c.cost.total_tax_amount.map(|m| m.amount).as_deref(), Some("4.69"), "6.25 % of 75.00");
    let group = &c.delivery_groups.nodes[0];
    assert_eq!(group.delivery_options.len(), 1);
    assert_eq!(
        (group.delivery_options[0].handle.as_str(), group.delivery_options[0].estimated_cost.amount.as_str()),
        ("standard", "5.00")
    );
    assert!(group.selected_delivery_option.is_none());

    // Choosing a delivery option that is not offered names the ones that are.
    let choose = |handle: &str| cart_selected_delivery_options_update::Variables {
        cart_id: cart_id.clone(),
        options: vec![cart_selected_delivery_options_update::CartSelectedDeliveryOptionInput {
            delivery_group_id: group.id.clone(),
            delivery_option_handle: handle.into(),
        }],
    };
    let wrong =
        api.data::<CartSelectedDeliveryOptionsUpdate>(choose("teleport")).await.cart_selected_delivery_options_update;
    assert!(wrong.user_errors[0].message.contains("standard"), "{:?}", wrong.user_errors);
    let chosen =
        api.data::<CartSelectedDeliveryOptionsUpdate>(choose("standard")).await.cart_selected_delivery_options_update;
    let c = chosen.cart.unwrap();
    assert_eq!(
        c.delivery_groups.nodes[0].selected_delivery_option.as_ref().map(|o| o.handle.as_str()),
        Some("standard")
    );
    assert_eq!(c.cost.total_shipping_amount.map(|m| m.amount).as_deref(), Some("5.00"));

    // Discount codes: an unknown one is kept but not applicable; then a real one.
    let codes =
        |code: &str| cart_discount_codes_update::Variables { cart_id: cart_id.clone(), codes: Some(vec![code.into()]) };
    let unknown = api.data::<CartDiscountCodesUpdate>(codes("NOPE")).await.cart_discount_codes_update;
    let c = unknown.cart.unwrap();
    assert!(!c.discount_codes[0].applicable);
    assert!(c.warnings.iter().any(|w| w.contains("NOPE")), "{:?}", c.warnings);
    let known = api.data::<CartDiscountCodesUpdate>(codes("save10")).await.cart_discount_codes_update;
    let c = known.cart.unwrap();
    assert_eq!((c.discount_codes[0].code.as_str(), c.discount_codes[0].applicable), ("SAVE10", true));
    // 75.00 − 7.50 = 67.50, shipping 5.00, tax 6.25 % of both = 4.53.
    assert_eq!(c.cost.total_amount.amount, "77.03");

    // A declined card: the order exists, waits for payment, says why.
    let complete =
        |number: &str, key: &str| cart_complete::Variables { cart_id: cart_id.clone(), payment: card(number, key) };
    let declined = api.data::<CartComplete>(complete("4000000000000002", "attempt-1")).await.cart_complete;
    assert!(matches!(declined.user_errors[0].code, Some(cart_complete::CartErrorCode::PAYMENT_FAILED)));
    let order = declined.order.unwrap();
    assert!(matches!(order.financial_status, Some(cart_complete::OrderFinancialStatus::PENDING)));
    // The same attempt again (a retry after a timeout) keeps its outcome, even with
    // another card: no second charge.
    let retried = api.data::<CartComplete>(complete("4242424242424242", "attempt-1")).await.cart_complete;
    assert!(matches!(retried.user_errors[0].code, Some(cart_complete::CartErrorCode::PAYMENT_FAILED)));
    assert_eq!(retried.order.unwrap().order_number, order.order_number);
    // A new attempt pays the same order.
    let paid = api.data::<CartComplete>(complete("4242424242424242", "attempt-2")).await.cart_complete;
    assert!(paid.user_errors.is_empty(), "{:?}", paid.user_errors);
    let paid = paid.order.unwrap();
    assert_eq!((paid.order_number, paid.name.as_str()), (order.order_number, "#1001"));
    assert!(matches!(paid.financial_status, Some(cart_complete::OrderFinancialStatus::PAID)));
    assert_eq!(paid.total_price.amount, "77.03");
    assert_eq!((paid.total_tax.amount.as_str(), paid.total_shipping_price.amount.as_str()), ("4.53", "5.00"));
    assert!(paid.status_url.starts_with("http://demo.localhost:"));
    let again = api.data::<CartComplete>(complete("4242424242424242", "attempt-2")).await.cart_complete;
    assert!(again.user_errors.is_empty());
    let view = app.checkout.order(&tenant, paid.order_number).await.unwrap().unwrap();
    assert_eq!(view.payments.len(), 2, "one declined, one paid: {:?}", view.payments);
    assert!(view.customer_id.is_some(), "the order is the customer's");
    let stock = app.catalog.product(&tenant, "wool-hat").await.unwrap().unwrap().variants[0].stock;
    assert_eq!(stock, 2, "three of five taken once");

    // The customer's orders, by token.
    let mine = api.data::<CustomerOrders>(customer_orders::Variables { token: Some(token.clone()) }).await;
    let me = mine.customer.unwrap();
    assert_eq!(me.display_name, "Ada Lovelace");
    assert_eq!(me.orders.nodes.len(), 1);
    let o = &me.orders.nodes[0];
    assert_eq!((o.name.as_str(), o.line_items.nodes[0].quantity), ("#1001", 3));
    assert_eq!(o.line_items.nodes[0].original_total_price.amount, "75.00");
    assert_eq!(o.line_items.nodes[0].variant.as_ref().map(|v| v.id.as_str()), Some(variant.id.as_str()));
    assert!(matches!(o.fulfillment_status, customer_orders::OrderFulfillmentStatus::UNFULFILLED));

    // Signing out ends the token.
    let deleted =
        api.data::<CustomerAccessTokenDelete>(customer_access_token_delete::Variables { token: token.clone() }).await;
    assert_eq!(deleted.customer_access_token_delete.deleted_access_token.as_deref(), Some(token.as_str()));
    let (data, codes) = api.send::<CustomerOrders>(customer_orders::Variables { token: Some(token.clone()) }).await;
    assert_eq!(codes, ["UNAUTHENTICATED"]);
    assert!(data.is_none_or(|d| d.customer.is_none()));

    // Password reset: a message for a known email; the same answer for an unknown one.
    // Counted by kind: order emails for this test's orders are filed in the mailbox too,
    // as the bus delivers their events.
    let resets = |mails: &[ecom_store::mailbox::Mail]| mails.iter().filter(|m| m.subject.contains("password")).count();
    common::mail_settled(&app.db).await;
    let before = resets(&ecom_store::mailbox::list_all(&app.db, 50).await.unwrap());
    for email in ["ada@example.com", "nobody@example.com"] {
        let r = api.data::<CustomerRecover>(customer_recover::Variables { email: email.into() }).await;
        assert!(r.customer_recover.customer_user_errors.is_empty());
    }
    common::mail_settled(&app.db).await;
    let mails = ecom_store::mailbox::list_all(&app.db, 50).await.unwrap();
    assert_eq!(resets(&mails), before + 1);
    assert!(mails.iter().any(|m| m.to == "ada@example.com" && m.body_text.contains("/account/reset?token=")));
}
both!(browse_cart_checkout_and_customer_orders);

async fn carts_are_bound_to_their_store(app: TestApp) {
    let (_, _) = store_with_stock(&app, "demo", 5).await;
    let (_, _) = store_with_stock(&app, "acme", 5).await;
    let (demo, acme) = (Client::new(&app, "demo.localhost"), Client::new(&app, "acme.localhost"));
    let variant =
        demo.data::<Browse>(browse::Variables { query: None }).await.products.nodes[0].variants.nodes[0].id.clone();
    let cart = demo
        .data::<CartCreate>(cart_create::Variables {
            input: Some(cart_create::CartInput {
                lines: Some(vec![line(&variant, 1)]),
                discount_codes: None,
                buyer_identity: None,
            }),
        })
        .await
        .cart_create
        .cart
        .unwrap()
        .id;

    // Store A's cart is not found on store B, and cannot be changed there.
    assert!(acme.data::<CartById>(cart_by_id::Variables { id: cart.clone() }).await.cart.is_none());
    let foreign = acme
        .data::<CartLinesAdd>(cart_lines_add::Variables {
            cart_id: cart.clone(),
            lines: vec![cart_lines_add::CartLineInput { merchandise_id: variant.clone(), quantity: Some(1) }],
        })
        .await
        .cart_lines_add;
    assert!(foreign.cart.is_none());
    assert_eq!(foreign.user_errors[0].message, "there is no such cart");
    // Store A's variant cannot go into a cart on store B: nothing is made.
    let carts_before = count_carts(&app).await;
    let made = acme
        .data::<CartCreate>(cart_create::Variables {
            input: Some(cart_create::CartInput {
                lines: Some(vec![line(&variant, 1)]),
                discount_codes: None,
                buyer_identity: None,
            }),
        })
        .await
        .cart_create;
    assert!(made.cart.is_none());
    assert!(matches!(made.user_errors[0].code, Some(cart_create::CartErrorCode::INVALID_MERCHANDISE_LINE)));
    assert_eq!(count_carts(&app).await, carts_before);
    // On its own store the cart is as it was.
    let same = demo.data::<CartById>(cart_by_id::Variables { id: cart.clone() }).await.cart.unwrap();
    assert_eq!(same.total_quantity, 1);
    // Removing its line empties it; a line id from another cart is refused.
    let line = same.lines.nodes[0].id.clone();
    let wrong = demo
        .data::<CartLinesRemove>(cart_lines_remove::Variables { cart_id: cart.clone(), line_ids: vec![cart.clone()] })
        .await
        .cart_lines_remove;
    assert!(matches!(wrong.user_errors[0].code, Some(cart_lines_remove::CartErrorCode::INVALID_MERCHANDISE_LINE)));
    assert_eq!(wrong.cart.unwrap().total_quantity, 1);
    let removed = demo
        .data::<CartLinesRemove>(cart_lines_remove::Variables { cart_id: cart.clone(), line_ids: vec![line] })
        .await
        .cart_lines_remove;
    assert!(removed.user_errors.is_empty());
    assert_eq!(removed.cart.unwrap().total_quantity, 0);
    // Garbage ids are not found, not errors.
    assert!(demo.data::<CartById>(cart_by_id::Variables { id: "x".into() }).await.cart.is_none());
}
both!(carts_are_bound_to_their_store);

async fn count_carts(app: &TestApp) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let row = app
        .db
        .connection()
        .query_one_raw(Statement::from_string(
            app.db.connection().get_database_backend(),
            "SELECT COUNT(*) AS n FROM carts",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// The storefront's session cookie signs a shopper in to the API only on same-origin
/// JSON requests: a cross-site request is served as nobody.
async fn session_cookie_counts_only_same_origin(app: TestApp) {
    app.store("demo", "Demo").await;
    let browser = app.browser(&[]);
    let signed_in = browser.login("demo.localhost", "/account", "pat@example.com", PASSWORD).await;
    assert_eq!(signed_in.status, 303);
    let ask = |origin: Option<&str>, content_type: &str| {
        let mut req = browser
            .client
            .post(browser.url("demo.localhost", "/graphql"))
            .header("content-type", content_type)
            .body(json!({ "query": "{ customer { email } }" }).to_string());
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        async move { req.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let port = app.addr.port();
    let same = ask(Some(&format!("http://demo.localhost:{port}")), "application/json").await;
    assert_eq!(same["data"]["customer"]["email"], "pat@example.com", "{same}");
    let no_origin = ask(None, "application/json").await;
    assert_eq!(no_origin["data"]["customer"]["email"], "pat@example.com");
    let cross = ask(Some("https://evil.example"), "application/json").await;
    assert_eq!(cross["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{cross}");
    let form = ask(None, "text/plain").await;
    assert_eq!(form["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{form}");
}
both!(session_cookie_counts_only_same_origin);

/// Every answer reports its cost and the client's budget; a client over budget is
/// refused with THROTTLED before its query runs, and other stores are not affected.
async fn query_cost_is_reported_and_throttled(backend: common::Backend) {
    let Some(app) = TestApp::spawn_with(backend, |c| {
        c.api_client_points_per_sec = 5;
        c.api_store_points_per_sec = 5;
    })
    .await
    else {
        return;
    };
    store_with_stock(&app, "demo", 5).await;
    store_with_stock(&app, "acme", 5).await;
    let ask = |host: &'static str| {
        let client = reqwest::Client::builder().resolve(host, app.addr).build().unwrap();
        let url = app.url(host, "/graphql");
        async move {
            let body = json!({ "query": "{ products(first: 5) { nodes { title handle } } }" });
            client.post(url).json(&body).send().await.unwrap().json::<serde_json::Value>().await.unwrap()
        }
    };
    // A document of several operations is charged for the one it runs.
    let client = reqwest::Client::builder().resolve("demo.localhost", app.addr).build().unwrap();
    let doc = json!({
        "query": "query Small { shop { name } } query Big { products(first: 250) { nodes { title handle vendor } } }",
        "operationName": "Small",
    });
    let small = client.post(app.url("demo.localhost", "/graphql")).json(&doc).send().await.unwrap();
    let small = small.json::<serde_json::Value>().await.unwrap();
    assert_eq!(small["data"]["shop"]["name"], "demo");
    assert_eq!(small["extensions"]["cost"]["requestedQueryCost"], 2, "{small}");
    let first = ask("demo.localhost").await;
    let cost = &first["extensions"]["cost"];
    let requested = cost["requestedQueryCost"].as_i64().unwrap();
    assert!(requested >= 11, "5 nodes of 2 fields and the connection: {cost}");
    assert_eq!(cost["actualQueryCost"], requested);
    assert_eq!(cost["throttleStatus"]["maximumAvailable"], 50.0);
    assert_eq!(cost["throttleStatus"]["restoreRate"], 5.0);
    let left = cost["throttleStatus"]["currentlyAvailable"].as_f64().unwrap();
    assert!((48.0 - requested as f64 - left).abs() <= 1.0, "{cost}");
    // Spend the rest of the budget; the next one is refused without running.
    let mut throttled = None;
    for _ in 0..10 {
        let r = ask("demo.localhost").await;
        if r["errors"][0]["extensions"]["code"] == "THROTTLED" {
            throttled = Some(r);
            break;
        }
        assert_eq!(r["data"]["products"]["nodes"][0]["title"], "Wool Hat");
    }
    let throttled = throttled.expect("a 50-point budget runs out");
    assert!(throttled["data"].is_null(), "{throttled}");
    assert!(throttled["extensions"]["cost"]["actualQueryCost"].is_null());
    // Another store's budget is its own.
    let other = ask("acme.localhost").await;
    assert_eq!(other["data"]["products"]["nodes"][0]["title"], "Wool Hat", "{other}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_cost_is_reported_and_throttled_sqlite() {
    query_cost_is_reported_and_throttled(common::Backend::Sqlite).await;
}
