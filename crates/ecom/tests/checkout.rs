//! Carts, checkout, payments and orders, against the real app on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestApp, address, ready_cart, store_with_stock};
use ecom_core::Tenant;
use ecom_services::checkout::{Actor, CheckoutDetails, OrderCommand, PaymentChoice, PlaceOutcome};

fn card(number: &str) -> PaymentChoice {
    PaymentChoice { provider: "test_card".into(), token: number.into() }
}

fn manual() -> PaymentChoice {
    PaymentChoice { provider: "manual".into(), token: String::new() }
}

/// The store's order events, oldest first.
async fn topics(app: &TestApp, tenant: &Tenant) -> Vec<String> {
    common::outbox_topics(app, tenant, "order.").await
}

async fn stock_of(app: &TestApp, tenant: &Tenant) -> i32 {
    app.catalog.invalidate(tenant.id);
    let view = app.catalog.product(tenant, "wool-hat").await.unwrap().unwrap();
    view.variants[0].stock
}

async fn the_last_unit_is_sold_exactly_once(app: TestApp) {
    let (tenant, variant) = store_with_stock(&app, "demo", 1).await;
    let mut carts = Vec::new();
    for _ in 0..24 {
        carts.push(ready_cart(&app, &tenant, variant, 1).await);
    }
    let tasks: Vec<_> = carts
        .into_iter()
        .map(|cart| {
            let (checkout, tenant) = (app.checkout.clone(), tenant.clone());
            tokio::spawn(async move { checkout.place_order(&tenant, cart, None, &manual()).await.unwrap() })
        })
        .collect();
    let mut placed = 0;
    let mut sold_out = 0;
    for t in tasks {
        match t.await.unwrap() {
            PlaceOutcome::Placed { .. } => placed += 1,
            PlaceOutcome::Refused(why) => {
                assert!(why.contains("sold out"), "{why}");
                sold_out += 1;
            }
        }
    }
    assert_eq!((placed, sold_out), (1, 23));
    assert_eq!(stock_of(&app, &tenant).await, 0);
    assert_eq!(topics(&app, &tenant).await, ["order.placed"], "one order, one event");
    // Selling the last unit told the integrations, once; the catalog and customer
    // events of the set-up are there too, each written with its change.
    assert_eq!(common::outbox_topics(&app, &tenant, "inventory.").await, ["inventory.low"]);
    assert_eq!(common::outbox_topics(&app, &tenant, "product.").await, ["product.created"]);
    assert_eq!(common::outbox_topics(&app, &tenant, "customer.").await, ["customer.created"]);
    app.stop().await;
}
both!(the_last_unit_is_sold_exactly_once);

async fn every_state_change_writes_one_outbox_event(app: TestApp) {
    let (tenant, variant) = store_with_stock(&app, "demo", 10).await;
    let cart = ready_cart(&app, &tenant, variant, 3).await;
    let PlaceOutcome::Placed { number, payment_error, .. } =
        app.checkout.place_order(&tenant, cart, None, &card("4242 4242 4242 4242")).await.unwrap()
    else {
        panic!("not placed")
    };
    assert_eq!(payment_error, None);
    assert_eq!(number, 1001);
    // Placing the same cart again (a double click) finds the same order.
    let again = app.checkout.place_order(&tenant, cart, None, &card("4242424242424242")).await.unwrap();
    assert!(matches!(again, PlaceOutcome::Placed { number: 1001, .. }));
    let order = app.checkout.order(&tenant, 1001).await.unwrap().unwrap();
    assert_eq!(order.status, "paid");
    // 3 × 25.00 + 5.00 shipping, plus 6.25 % Illinois tax on both.
    assert_eq!(order.totals.raw.total, 7500 + 500 + 500);
    let staff = Actor::Staff("owner@demo.test".into());
    let line = order.lines[0].id;
    app.checkout.command(&tenant, order.id, OrderCommand::Fulfil(vec![(line, 1)]), &staff).await.unwrap();
    app.checkout.command(&tenant, order.id, OrderCommand::Fulfil(vec![]), &staff).await.unwrap();
    let ship = OrderCommand::Ship { carrier: "UPS".into(), tracking: "1Z999".into() };
    app.checkout.command(&tenant, order.id, ship, &staff).await.unwrap();
    app.checkout.command(&tenant, order.id, OrderCommand::Deliver, &staff).await.unwrap();
    // A transition that is not allowed changes nothing.
    let err = app.checkout.command(&tenant, order.id, OrderCommand::Deliver, &staff).await.unwrap_err();
    assert!(err.to_string().contains("cannot be marked delivered"), "{err}");
    let refund = |amount| OrderCommand::Refund { amount, reason: "scratched".into() };
    app.checkout.command(&tenant, order.id, refund(1000), &staff).await.unwrap();
    let too_much = app.checkout.command(&tenant, order.id, refund(100_000), &staff).await.unwrap_err();
    assert!(too_much.to_string().contains("refund between"), "{too_much}");
    app.checkout.command(&tenant, order.id, refund(7500), &staff).await.unwrap();
    // The gateway's webhook for the capture arrives a moment later and changes nothing.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(
        topics(&app, &tenant).await,
        [
            "order.placed",
            "order.paid",
            "order.partially_fulfilled",
            "order.fulfilled",
            "order.shipped",
            "order.delivered",
            "order.partially_refunded",
            "order.refunded"
        ]
    );
    let order = app.checkout.order(&tenant, 1001).await.unwrap().unwrap();
    assert_eq!((order.status, order.payment_status), ("delivered", "refunded"));
    assert!(order.events.iter().any(|e| e.kind == "webhook"), "the webhook was received: {:?}", order.events);
    assert_eq!(order.tracking_number, "1Z999");
    app.stop().await;
}
both!(every_state_change_writes_one_outbox_event);

async fn declined_cards_keep_the_order_waiting_for_another_try(app: TestApp) {
    let (tenant, variant) = store_with_stock(&app, "demo", 10).await;
    let cart = ready_cart(&app, &tenant, variant, 1).await;
    let placed = app.checkout.place_order(&tenant, cart, None, &card("4000 0000 0000 0002")).await.unwrap();
    let PlaceOutcome::Placed { payment_error: Some(why), .. } = placed else { panic!("{placed:?}") };
    assert!(why.contains("declined"));
    let order = app.checkout.order(&tenant, 1001).await.unwrap().unwrap();
    assert_eq!((order.status, order.payment_status), ("pending_payment", "pending"));
    let funds = app.checkout.pay(&tenant, order.id, &card("4000000000009995"), true).await.unwrap();
    assert!(funds.is_some_and(|m| m.contains("insufficient funds")));
    assert_eq!(app.checkout.pay(&tenant, order.id, &card("4242424242424242"), true).await.unwrap(), None);
    let order = app.checkout.order(&tenant, 1001).await.unwrap().unwrap();
    assert_eq!(order.status, "paid");
    assert_eq!(order.payments.len(), 3, "three attempts, each recorded");
    // Paying a paid order does nothing.
    assert_eq!(app.checkout.pay(&tenant, order.id, &card("4242424242424242"), true).await.unwrap(), None);
    assert_eq!(app.checkout.order(&tenant, 1001).await.unwrap().unwrap().payments.len(), 3);
    app.stop().await;
}
both!(declined_cards_keep_the_order_waiting_for_another_try);

async fn unpaid_orders_expire_and_release_their_stock(app: TestApp) {
    let (tenant, variant) = store_with_stock(&app, "demo", 5).await;
    let cart = ready_cart(&app, &tenant, variant, 2).await;
    assert!(matches!(
        app.checkout.place_order(&tenant, cart, None, &manual()).await.unwrap(),
        PlaceOutcome::Placed { .. }
    ));
    assert_eq!(stock_of(&app, &tenant).await, 3);
    assert_eq!(app.checkout.expire_due(chrono::Utc::now()).await.unwrap(), 0, "not due yet");
    let later = chrono::Utc::now() + chrono::Duration::hours(2);
    assert_eq!(app.checkout.expire_due(later).await.unwrap(), 1);
    assert_eq!(app.checkout.expire_due(later).await.unwrap(), 0, "only once");
    assert_eq!(stock_of(&app, &tenant).await, 5);
    let order = app.checkout.order(&tenant, 1001).await.unwrap().unwrap();
    assert_eq!((order.status, order.payment_status), ("expired", "voided"));
    assert_eq!(topics(&app, &tenant).await, ["order.placed", "order.expired"]);
    app.stop().await;
}
both!(unpaid_orders_expire_and_release_their_stock);

fn webhook_secret() -> Vec<u8> {
    use hmac::Mac;
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(b"test-secret-key-that-is-long-enough-0123456789").unwrap();
    mac.update(b"ecom test-card webhooks");
    mac.finalize().into_bytes().to_vec()
}

async fn webhooks_are_verified_and_replays_change_nothing(app: TestApp) {
    let (tenant, variant) = store_with_stock(&app, "demo", 5).await;
    let staff = Actor::Staff("owner@demo.test".into());
    app.checkout.save_general_settings(&tenant, false, 60, false, "", &staff).await.unwrap();
    let cart = ready_cart(&app, &tenant, variant, 1).await;
    app.checkout.place_order(&tenant, cart, None, &card("4242424242424242")).await.unwrap();
    // The gateway's own webhook for the authorisation arrives a moment later; let it
    // land first so it cannot interleave with the events counted below.
    for _ in 0..50 {
        let events = app.checkout.order(&tenant, 1001).await.unwrap().unwrap().events;
        if events.iter().any(|e| e.kind == "webhook") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let order = app.checkout.order(&tenant, 1001).await.unwrap().unwrap();
    assert_eq!((order.status, order.payment_status), ("pending_payment", "authorized"));
    let event = ecom_services::payments::WebhookEvent {
        id: "evt_capture_1".into(),
        kind: "charge.captured".into(),
        reference: "ch_test_x".into(),
        amount: order.totals.raw.total,
        tenant_id: tenant.id.0,
        order_id: order.id,
    };
    let body = serde_json::to_vec(&event).unwrap();
    let client = reqwest::Client::new();
    let send = |signature: String| {
        client
            .post(format!("http://{}/webhooks/test-card", app.addr))
            .header("content-type", "application/json")
            .header("ecom-test-signature", signature)
            .body(body.clone())
            .send()
    };
    let now = chrono::Utc::now().timestamp();
    let bad = send(ecom_services::payments::sign_webhook(b"wrong secret", now, &body)).await.unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(app.checkout.order(&tenant, 1001).await.unwrap().unwrap().status, "pending_payment");
    let good = ecom_services::payments::sign_webhook(&webhook_secret(), now, &body);
    let first = send(good.clone()).await.unwrap();
    assert_eq!((first.status().as_u16(), first.text().await.unwrap()), (200, "ok".to_owned()));
    let order = app.checkout.order(&tenant, 1001).await.unwrap().unwrap();
    assert_eq!(order.status, "paid");
    let events = order.events.len();
    let replay = send(good).await.unwrap();
    assert_eq!(replay.text().await.unwrap(), "already processed");
    assert_eq!(app.checkout.order(&tenant, 1001).await.unwrap().unwrap().events.len(), events);
    let paid = topics(&app, &tenant).await.iter().filter(|t| *t == "order.paid").count();
    assert_eq!(paid, 1);
    app.stop().await;
}
both!(webhooks_are_verified_and_replays_change_nothing);

async fn shoppers_check_out_in_the_browser_and_cannot_set_prices(app: TestApp) {
    let (tenant, variant) = store_with_stock(&app, "demo", 3).await;
    store_with_stock(&app, "acme", 3).await;
    let b = app.browser(&[]);
    let host = "demo.localhost";
    // A price (or any other field) in the form is ignored: prices come from the catalog.
    let v = variant.to_string();
    let added = b.post(host, "/cart/add", &[("variant", &v), ("quantity", "2"), ("price", "0.01")]).await;
    assert_eq!(added.status, 303);
    let cart = b.get(host, "/cart").await;
    assert!(cart.body.contains("$50.00"), "2 × $25.00: {}", cart.body);
    // More than in stock is refused with a clear message.
    let too_many = b.post(host, "/cart/add", &[("variant", &v), ("quantity", "5")]).await;
    assert_eq!(too_many.status, 422);
    assert!(too_many.body.contains("only 3 of Wool Hat left"), "{}", too_many.body);
    let garbage = b.post(host, "/cart/add", &[("variant", "not-a-uuid")]).await;
    assert_eq!(garbage.status, 400);
    // A bad postal code is refused and nothing is placed.
    let fields = |postal: &'static str, action: &'static str| {
        vec![
            ("email", "pat@example.com"),
            ("name", "Pat Doe"),
            ("line1", "1 Main St"),
            ("city", "Springfield"),
            ("region", "IL"),
            ("postal_code", postal),
            ("country", "US"),
            ("shipping", "standard"),
            ("provider", "test_card"),
            ("card_number", "4242 4242 4242 4242"),
            ("action", action),
        ]
    };
    let bad = b.submit(host, "/checkout", "/checkout", &fields("ABC", "place")).await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("is not a postal code in United States"), "{}", bad.body);
    let placed = b.submit(host, "/checkout", "/checkout", &fields("62701", "place")).await;
    assert_eq!(placed.status, 303, "{}", placed.body);
    let confirmation = b.get(host, placed.location().unwrap()).await;
    assert!(confirmation.body.contains("Order #1001"));
    assert!(confirmation.body.contains("Paid"), "{}", confirmation.body);
    let order = app.checkout.order(&tenant, 1001).await.unwrap().unwrap();
    assert_eq!(order.totals.raw.subtotal, 5000);
    // The cart is empty after the order.
    assert!(b.get(host, "/cart").await.body.contains("Your cart is empty"));

    // The merchant sees it; another store's merchant does not, by number or by link.
    let m = app.browser(&[]);
    m.login(host, "/merchant", "owner@demo.test", common::PASSWORD).await;
    let list = m.get(host, "/merchant/orders").await;
    assert!(list.body.contains("#1001") && list.body.contains("pat@example.com"));
    let other = app.browser(&[]);
    other.login("acme.localhost", "/merchant", "owner@acme.test", common::PASSWORD).await;
    assert_eq!(other.get("acme.localhost", "/merchant/orders/1001").await.status, 404);
    assert_eq!(other.get("acme.localhost", placed.location().unwrap()).await.status, 404);
    let acme = ecom_store::tenants::find_by_slug(&app.db, "acme").await.unwrap().unwrap();
    assert!(app.checkout.order_by_id(&acme, order.id).await.unwrap().is_none());
    // The merchant ships it from the panel.
    let shipped = m
        .submit(
            host,
            "/merchant/orders/1001",
            "/merchant/orders/1001",
            &[("action", "ship"), ("carrier", "UPS"), ("tracking", "1Z1")],
        )
        .await;
    assert_eq!(shipped.status, 303, "{}", shipped.body);
    let refused = m.submit(host, "/merchant/orders/1001", "/merchant/orders/1001", &[("action", "ship")]).await;
    assert_eq!(refused.status, 422);
    assert!(b.get(host, placed.location().unwrap()).await.body.contains("UPS 1Z1"));
    // Panel changes land in the audit log with who made them.
    let product = app.catalog.product(&tenant, "wool-hat").await.unwrap().unwrap().id.clone();
    let archived = m
        .submit(
            host,
            &format!("/merchant/products/{product}"),
            &format!("/merchant/products/{product}/status"),
            &[("status", "archived")],
        )
        .await;
    assert_eq!(archived.status, 303);
    let audit = m.get(host, "/merchant/audit").await;
    assert!(audit.body.contains("order.update") && audit.body.contains("product.status"), "{}", audit.body);
    assert!(audit.body.contains("staff owner@demo.test"));
    assert!(!other.get("acme.localhost", "/merchant/audit").await.body.contains("product.status"));
    app.stop().await;
}
both!(shoppers_check_out_in_the_browser_and_cannot_set_prices);

async fn discount_codes_apply_within_their_limits(app: TestApp) {
    let (tenant, variant) = store_with_stock(&app, "demo", 10).await;
    let staff = Actor::Staff("owner@demo.test".into());
    app.checkout.create_discount(&tenant, "once10", "percent", "10", "30", "1", None, &staff).await.unwrap();
    let dup = app.checkout.create_discount(&tenant, "ONCE10", "fixed", "5", "", "", None, &staff).await;
    assert!(dup.is_err(), "codes are unique per store");
    let with_code = |cart| {
        let checkout = app.checkout.clone();
        let tenant = tenant.clone();
        async move {
            let d = CheckoutDetails {
                email: "pat@example.com".into(),
                phone: String::new(),
                address: address(),
                shipping_code: "standard".into(),
                discount_code: "once10".into(),
            };
            checkout.save_details(&tenant, cart, d).await.unwrap();
            checkout.cart(&tenant, Some(cart)).await.unwrap()
        }
    };
    let small = with_code(ready_cart(&app, &tenant, variant, 1).await).await;
    assert!(small.discount_problem.as_deref().is_some_and(|p| p.contains("at least $30.00")));
    let cart = ready_cart(&app, &tenant, variant, 2).await;
    let view = with_code(cart).await;
    assert_eq!(view.totals.raw.discount, 500);
    assert!(matches!(
        app.checkout.place_order(&tenant, cart, None, &manual()).await.unwrap(),
        PlaceOutcome::Placed { .. }
    ));
    let second = with_code(ready_cart(&app, &tenant, variant, 2).await).await;
    assert!(second.discount_problem.as_deref().is_some_and(|p| p.contains("used up")), "{:?}", second.discount_problem);
    app.stop().await;
}
both!(discount_codes_apply_within_their_limits);

async fn customers_keep_their_cart_orders_and_addresses(app: TestApp) {
    let (tenant, variant) = store_with_stock(&app, "demo", 10).await;
    store_with_stock(&app, "acme", 10).await;
    let host = "demo.localhost";
    let b = app.browser(&[]);
    let v = variant.to_string();
    // A guest cart joins the customer's cart at sign-in.
    assert_eq!(b.post(host, "/cart/add", &[("variant", &v), ("quantity", "2")]).await.status, 303);
    assert_eq!(b.login(host, "/account", "pat@example.com", common::PASSWORD).await.status, 303);
    let cart = b.get(host, "/cart").await;
    assert!(cart.body.contains("$50.00"), "the guest cart survived sign-in: {}", cart.body);
    // Profile: the name can change; an empty one is refused.
    assert_eq!(b.submit(host, "/account", "/account", &[("name", "Pat Q. Doe")]).await.status, 303);
    assert!(b.get(host, "/account").await.body.contains("value=\"Pat Q. Doe\""));
    assert_eq!(b.submit(host, "/account", "/account", &[("name", "  ")]).await.status, 422);
    let fields = [
        ("email", "pat@example.com"),
        ("name", "Pat Doe"),
        ("line1", "1 Main St"),
        ("city", "Springfield"),
        ("region", "IL"),
        ("postal_code", "62701"),
        ("country", "US"),
        ("shipping", "standard"),
        ("provider", "manual"),
        ("action", "place"),
    ];
    let placed = b.submit(host, "/checkout", "/checkout", &fields).await;
    assert_eq!(placed.status, 303, "{}", placed.body);
    let mine = b.get(host, "/account/orders").await;
    assert!(mine.body.contains("#1001") && mine.body.contains("Pat Doe, 1 Main St"), "order and saved address");
    let detail = b.get(host, "/account/orders/1001").await;
    assert!(detail.body.contains("Pending payment") && detail.body.contains("Order again"));
    // Order again: the same items at today's price.
    let staff = Actor::Staff("owner@demo.test".into());
    let change = ecom_store::catalog::VariantChange { variant, price: 3000, stock: 8 };
    app.catalog.update_variants(&tenant, &[change]).await.unwrap();
    let again = b.submit(host, "/account/orders/1001", "/account/orders/1001/again", &[]).await;
    assert_eq!(again.status, 303);
    assert!(b.get(host, "/cart").await.body.contains("$60.00"), "2 × today's $30.00");
    // Another customer's order number is not found.
    assert_eq!(b.get(host, "/account/orders/1002").await.status, 404);

    // The merchant sees the customer with their orders and lifetime value (paid only).
    let m = app.browser(&[]);
    m.login(host, "/merchant", "owner@demo.test", common::PASSWORD).await;
    let list = m.get(host, "/merchant/customers?q=pat").await;
    assert!(list.body.contains("pat@example.com") && list.body.contains("$0.00"), "{}", list.body);
    let order = app.checkout.order(&tenant, 1001).await.unwrap().unwrap();
    app.checkout.command(&tenant, order.id, OrderCommand::MarkPaid, &staff).await.unwrap();
    let list = m.get(host, "/merchant/customers").await;
    assert!(list.body.contains(&order.totals.total), "lifetime value {}: {}", order.totals.total, list.body);
    let customer = order.customer_id.expect("the order belongs to the customer");
    assert!(m.get(host, &format!("/merchant/customers/{customer}")).await.body.contains("#1001"));
    let other = app.browser(&[]);
    other.login("acme.localhost", "/merchant", "owner@acme.test", common::PASSWORD).await;
    assert_eq!(other.get("acme.localhost", &format!("/merchant/customers/{customer}")).await.status, 404);

    // Once shipped, the customer asks for a return; the merchant sees it.
    let early = b.submit(host, "/account/orders/1001", "/account/orders/1001/return", &[("reason", "too small")]).await;
    assert_eq!(early.status, 400, "not shipped yet");
    let ship = OrderCommand::Ship { carrier: "DHL".into(), tracking: "JD0001".into() };
    app.checkout.command(&tenant, order.id, ship, &staff).await.unwrap();
    assert!(b.get(host, "/account/orders/1001").await.body.contains("DHL JD0001"));
    let asked = b.submit(host, "/account/orders/1001", "/account/orders/1001/return", &[("reason", "too small")]).await;
    assert_eq!(asked.status, 303, "{}", asked.body);
    let order = app.checkout.order(&tenant, 1001).await.unwrap().unwrap();
    assert_eq!(order.return_status, "requested");
    assert!(
        order
            .events
            .iter()
            .any(|e| e.message == "Return requested: too small" && e.actor == "customer pat@example.com")
    );
    assert_eq!(topics(&app, &tenant).await.last().map(String::as_str), Some("order.return_requested"));
    app.stop().await;
}
both!(customers_keep_their_cart_orders_and_addresses);
