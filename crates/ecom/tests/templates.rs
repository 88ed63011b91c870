//! Stores' notification templates and the delivery-stage and return triggers, end to
//! end on SQLite and PostgreSQL, with mail delivered to a REAL SMTP server on loopback
//! (aiosmtpd, `tools/smtp_sink.py`): a store's wording changes the email sent, the
//! editor's preview renders it with an order, bad templates are refused with the line
//! and nothing saved, a test send reaches the staff member, reset brings the default
//! back; out for delivery, delivered and a recorded return each email the shopper once
//! (however often the event is delivered), and a restocked return puts stock back once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::smtp::Sink;

use common::{Browser, TestApp, store_with_stock};
use ecom_bus::{Consumer, Event};
use ecom_core::Tenant;
use ecom_services::checkout::{Actor, OrderCommand, PaymentChoice, PlaceOutcome};
use serde_json::Value;
use std::time::Duration;

fn fast(c: &mut ecom::config::Config) {
    c.bus_poll_ms = 10;
    c.bus_backoff_base_ms = 100;
    c.bus_backoff_max_ms = 1_000;
}

fn staff() -> Actor {
    Actor::Staff("owner@demo.test".into())
}

/// Places an order of `quantity` paid by hand, and marks it paid and shipped.
async fn shipped_order(app: &TestApp, tenant: &Tenant, variant: uuid::Uuid, quantity: u32) -> i64 {
    let cart = common::ready_cart(app, tenant, variant, quantity).await;
    let manual = PaymentChoice { provider: "manual".into(), token: String::new() };
    let PlaceOutcome::Placed { number, .. } = app.checkout.place_order(tenant, cart, None, &manual).await.unwrap()
    else {
        panic!("not placed")
    };
    let id = app.checkout.order(tenant, number).await.unwrap().unwrap().id;
    app.checkout.command(tenant, id, OrderCommand::MarkPaid, &staff()).await.unwrap();
    let ship = OrderCommand::Ship { carrier: "UPS".into(), tracking: "1Z999AA10123456784".into() };
    app.checkout.command(tenant, id, ship, &staff()).await.unwrap();
    number
}

fn with_subject<'a>(messages: &'a [Value], needle: &str) -> Vec<&'a Value> {
    messages.iter().filter(|m| m["subject"].as_str().unwrap_or_default().contains(needle)).collect()
}

fn part<'a>(message: &'a Value, content_type: &str) -> Option<&'a str> {
    message["parts"].as_array().unwrap().iter().find(|p| p["content_type"] == content_type)?["body"].as_str()
}

async fn overrides(app: &TestApp, tenant: &Tenant) -> usize {
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let rows = ecom_store::notification_templates::list(&txn, tenant.id).await.unwrap();
    txn.commit().await.unwrap();
    rows.len()
}

const EDITOR: &str = "/merchant/settings/notifications/email/order_shipped";

/// Posts the editor's form with `action` and these parts.
async fn editor_post(b: &Browser, action: &str, subject: &str, text: &str, html: &str) -> common::Page {
    b.submit(
        "demo.localhost",
        EDITOR,
        EDITOR,
        &[("action", action), ("subject", subject), ("text", text), ("html", html)],
    )
    .await
}

async fn preview(b: &Browser, subject: &str, text: &str, html: &str) -> (u16, Value) {
    let token = b.get("demo.localhost", EDITOR).await.csrf();
    let fields = [("subject", subject), ("text", text), ("html", html), ("_csrf", token.as_str())];
    let page = b.post("demo.localhost", &format!("{EDITOR}/preview"), &fields).await;
    (page.status, serde_json::from_str(&page.body).unwrap_or_else(|_| panic!("not JSON: {}", page.body)))
}

const SUBJECT: &str = "Parcel #{{ order.number }} left {{ store.name }}";
const TEXT: &str = "Hello!\n\n{{ order.carrier }} has it: {{ order.tracking_number }}.\n{{ order.url }}";
const HTML: &str =
    "{% extends \"email/layout.html\" %}{% block content %}<h1>On its way, {{ order.total }}</h1>{% endblock %}";

async fn a_store_rewords_an_email_previews_it_tests_it_and_resets_it(backend: common::Backend) {
    let Some(sink) = Sink::start(0) else { return };
    let url = sink.url();
    let Some(app) = TestApp::spawn_with(backend, |c| {
        fast(c);
        c.smtp_url = Some(ecom::config::Secret(url));
    })
    .await
    else {
        return;
    };
    let (tenant, variant) = store_with_stock(&app, "demo", 20).await;
    let b = app.browser(&[]);
    b.login("demo.localhost", "/merchant", "owner@demo.test", common::PASSWORD).await;

    let list = b.get("demo.localhost", "/merchant/settings/notifications").await;
    assert_eq!(list.status, 200);
    for label in ["Order shipped", "Out for delivery", "Order delivered", "Return received", "SMS"] {
        assert!(list.body.contains(label), "{label}");
    }
    assert!(!list.body.contains("customised</span>"), "all default at first");
    let editor = b.get("demo.localhost", EDITOR).await;
    assert_eq!(editor.status, 200);
    assert!(editor.body.contains("is on its way"), "the editor starts from the built-in wording");
    assert!(editor.body.contains("sandbox=\"\"") && editor.body.contains("srcdoc=\""), "sandboxed preview");
    assert!(!editor.body.contains("<script>"), "no inline script");

    // The live preview, before the store has any order: a made-up one.
    let (status, p) = preview(&b, SUBJECT, TEXT, HTML).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["subject"], "Parcel #1001 left demo");
    assert!(p["text"].as_str().unwrap().contains("UPS has it: 1Z999AA10123456784."), "{p}");
    assert!(p["html"].as_str().unwrap().contains("<h1>On its way, $"), "{p}");
    assert!(p["real_order"].is_null());
    let (status, p) = preview(&b, SUBJECT, "{{ order.nope }}", "").await;
    assert_eq!(status, 422);
    assert_eq!(p["error"]["part"], "text");

    // Bad templates are refused with the part and line; nothing is saved.
    let bad = editor_post(&b, "save", SUBJECT, TEXT, "<p>Hi</p>\n<p>{% if order.number %}</p>").await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("HTML version, line 2"), "{}", bad.body);
    let unknown = editor_post(&b, "save", SUBJECT, "Hi\n{{ order.tracking_url }}", "").await;
    assert_eq!(unknown.status, 422);
    assert!(unknown.body.contains("Text version, line 2"), "{}", unknown.body);
    assert!(unknown.body.contains("{{ order.tracking_url }}"), "what was typed is kept in the form");
    assert_eq!(overrides(&app, &tenant).await, 0, "nothing saved");

    let saved = editor_post(&b, "save", SUBJECT, TEXT, "").await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(overrides(&app, &tenant).await, 1);
    let list = b.get("demo.localhost", "/merchant/settings/notifications").await;
    assert_eq!(list.body.matches("customised</span>").count(), 1);

    // The next shipped email is the store's wording, text only as saved.
    let number = shipped_order(&app, &tenant, variant, 1).await;
    let mails = sink.wait_for(4).await; // placed, new order, paid, shipped
    let shipped = with_subject(&mails, "Parcel #");
    assert_eq!(shipped.len(), 1, "{mails:#?}");
    assert_eq!(shipped[0]["subject"], format!("Parcel #{number} left demo"));
    assert_eq!(shipped[0]["envelope_to"], "pat@example.com");
    let text = part(shipped[0], "text/plain").unwrap();
    assert!(text.contains("UPS has it: 1Z999AA10123456784.") && text.contains("/orders/"), "{text}");
    assert!(part(shipped[0], "text/html").is_none(), "no HTML version saved");
    assert_eq!(with_subject(&mails, "confirmed").len(), 1, "other messages keep the default");

    // The preview now uses that real order.
    let (_, p) = preview(&b, SUBJECT, TEXT, HTML).await;
    assert_eq!(p["real_order"], number);

    // A test send goes through the queue to the staff member, HTML and all.
    let test = editor_post(&b, "test", SUBJECT, TEXT, HTML).await;
    assert_eq!(test.status, 200, "{}", test.body);
    assert!(test.body.contains("on its way to owner@demo.test"));
    let mails = sink.wait_for(5).await;
    let tests = with_subject(&mails, "[Test]");
    assert_eq!(tests.len(), 1);
    assert_eq!(tests[0]["envelope_to"], "owner@demo.test");
    assert_eq!(tests[0]["subject"], format!("[Test] Parcel #{number} left demo"));
    assert!(part(tests[0], "text/html").unwrap().contains("<h1>On its way, $"));

    // Reset: back to the built-in wording for the next order.
    let reset = editor_post(&b, "reset", "", "", "").await;
    assert_eq!(reset.status, 303);
    assert_eq!(overrides(&app, &tenant).await, 0);
    let second = shipped_order(&app, &tenant, variant, 1).await;
    let mails = sink.wait_for(9).await;
    assert_eq!(with_subject(&mails, &format!("Order #{second} is on its way — demo")).len(), 1, "{mails:#?}");
    assert_eq!(with_subject(&mails, "Parcel #").len(), 2, "the first shipped email and the test only");
    app.stop().await;
}
backends!(a_store_rewords_an_email_previews_it_tests_it_and_resets_it);

async fn api_post(app: &TestApp, token: &str, key: &str, path: &str, body: &str) -> (u16, Value) {
    let client = reqwest::Client::builder().resolve("demo.localhost", app.addr).build().unwrap();
    let resp = client
        .post(app.url("demo.localhost", path))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// The variant's stock as the database holds it (the catalog's read cache may lag).
async fn stock(app: &TestApp, tenant: &Tenant, variant: uuid::Uuid) -> i32 {
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let rows = ecom_store::catalog::variants_by_ids(&txn, tenant.id, &[variant]).await.unwrap();
    txn.commit().await.unwrap();
    rows[0].variant.stock
}

async fn delivery_stages_and_a_return_each_email_the_shopper_once(backend: common::Backend) {
    let Some(sink) = Sink::start(0) else { return };
    let url = sink.url();
    let Some(app) = TestApp::spawn_with(backend, |c| {
        fast(c);
        c.smtp_url = Some(ecom::config::Secret(url));
    })
    .await
    else {
        return;
    };
    let (tenant, variant) = store_with_stock(&app, "demo", 10).await;
    let number = shipped_order(&app, &tenant, variant, 2).await;
    assert_eq!(stock(&app, &tenant, variant).await, 8);
    sink.wait_for(4).await;
    let b = app.browser(&[]);
    b.login("demo.localhost", "/merchant", "owner@demo.test", common::PASSWORD).await;
    let order_page = format!("/merchant/orders/{number}");
    let page = b.get("demo.localhost", &order_page).await;
    assert!(page.body.contains("Mark out for delivery") && page.body.contains("Record a return"));

    // Out for delivery from the panel.
    let r = b.submit("demo.localhost", &order_page, &order_page, &[("action", "out_for_delivery")]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    // Delivered as a carrier reports it through the integrations API; a late
    // out-for-delivery report and a repeated delivered one change nothing.
    let token = ecom_services::ApiTokens::new(app.db.clone())
        .create_app_token(tenant.id, "carrier", &ecom_core::scope::Scopes::parse("write_orders").unwrap(), "test")
        .await
        .unwrap()
        .1;
    let path = format!("/api/v1/orders/{number}/tracking");
    let report = |status: &str| {
        format!(r#"{{"carrier": "UPS", "tracking_number": "1Z999AA10123456784", "status": "{status}"}}"#)
    };
    let (status, bad) = api_post(&app, &token, "k0", &path, &report("teleported")).await;
    assert_eq!(status, 422, "{bad}");
    assert_eq!(bad["error"]["field"], "status");
    let (status, body) = api_post(&app, &token, "k1", &path, &report("delivered")).await;
    assert_eq!((status, body["order"]["status"].as_str()), (200, Some("delivered")), "{body}");
    for (key, s) in [("k2", "delivered"), ("k3", "out_for_delivery"), ("k4", "in_transit")] {
        let (status, body) = api_post(&app, &token, key, &path, &report(s)).await;
        assert_eq!((status, body["order"]["status"].as_str()), (200, Some("delivered")), "{s}: {body}");
    }

    // A return of both hats, back into stock.
    let line = app.checkout.order(&tenant, number).await.unwrap().unwrap().lines[0].id.to_string();
    let field = format!("return:{line}");
    let too_many = b
        .submit(
            "demo.localhost",
            &order_page,
            &order_page,
            &[("action", "receive_return"), (&field, "3"), ("restock", "1")],
        )
        .await;
    assert_eq!(too_many.status, 422);
    assert!(too_many.body.contains("at most 2 can come back"), "{}", too_many.body);
    let r = b
        .submit(
            "demo.localhost",
            &order_page,
            &order_page,
            &[("action", "receive_return"), (&field, "2"), ("restock", "1")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(stock(&app, &tenant, variant).await, 10, "both back in stock");
    let again = b
        .submit(
            "demo.localhost",
            &order_page,
            &order_page,
            &[("action", "receive_return"), (&field, "2"), ("restock", "1")],
        )
        .await;
    assert_eq!(again.status, 422);
    assert!(again.body.contains("already recorded"), "{}", again.body);
    assert_eq!(stock(&app, &tenant, variant).await, 10, "restocked once");

    let view = app.checkout.order(&tenant, number).await.unwrap().unwrap();
    let timeline: Vec<&str> = view.events.iter().map(|e| e.message.as_str()).collect();
    for entry in ["Out for delivery.", "Delivered.", "Return received: 2 × Wool Hat; back in stock."] {
        assert_eq!(timeline.iter().filter(|m| **m == entry).count(), 1, "{entry}: {timeline:?}");
    }
    assert_eq!(common::outbox_topics(&app, &tenant, "order.out_for_delivery").await.len(), 1);
    assert_eq!(common::outbox_topics(&app, &tenant, "order.delivered").await.len(), 1);
    assert_eq!(common::outbox_topics(&app, &tenant, "order.return_received").await.len(), 1);

    let mails = sink.wait_for(7).await;
    let ofd = with_subject(&mails, &format!("Order #{number} is out for delivery"));
    let delivered = with_subject(&mails, &format!("Order #{number} was delivered"));
    let returned = with_subject(&mails, &format!("We received your return for order #{number}"));
    assert_eq!((ofd.len(), delivered.len(), returned.len()), (1, 1, 1), "{mails:#?}");
    assert!(ofd.iter().chain(&delivered).chain(&returned).all(|m| m["envelope_to"] == "pat@example.com"));
    assert!(part(returned[0], "text/plain").unwrap().contains("2 × Wool Hat"));
    assert!(part(returned[0], "text/html").unwrap().contains("× 2"));
    assert!(part(ofd[0], "text/html").unwrap().contains("1Z999AA10123456784"));

    // The same three events delivered again (a redelivery after a crash): no new mail.
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let outbox = ecom_store::orders::outbox_of(&txn, tenant.id).await.unwrap();
    txn.commit().await.unwrap();
    let links = ecom_notify::StoreLinks::new(|t| format!("http://{}.localhost", t.slug.as_str()));
    let consumer = ecom_notify::Notifications::new(app.db.clone(), links);
    for row in outbox
        .iter()
        .filter(|e| ["order.out_for_delivery", "order.delivered", "order.return_received"].contains(&e.topic.as_str()))
    {
        for _ in 0..2 {
            consumer.handle(&Event::from_outbox(row).unwrap()).await.unwrap();
        }
    }
    common::mail_settled(&app.db).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.received(), 7, "one email per event, however often delivered");
    app.stop().await;
}
backends!(delivery_stages_and_a_return_each_email_the_shopper_once);
