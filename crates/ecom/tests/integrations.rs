//! Integrations in: outside systems set stock levels and report tracking over
//! `/api/v1/…` with an app token and an idempotency key, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestApp, outbox_topics, ready_cart, store_with_stock};
use ecom_core::Tenant;
use ecom_core::scope::Scopes;
use ecom_services::checkout::{PaymentChoice, PlaceOutcome};
use serde_json::{Value, json};

struct Api {
    client: reqwest::Client,
    base: String,
}

struct Answer {
    status: u16,
    replayed: bool,
    body: Value,
}

impl Api {
    fn new(app: &TestApp, host: &str) -> Self {
        let client = reqwest::Client::builder().resolve(host, app.addr).build().unwrap();
        Self { client, base: app.url(host, "") }
    }

    async fn post(&self, path: &str, token: Option<&str>, key: Option<&str>, body: &str) -> Answer {
        let mut req = self.client.post(format!("{}{path}", self.base)).header("content-type", "application/json");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        let resp = req.body(body.to_owned()).send().await.unwrap();
        let status = resp.status().as_u16();
        let replayed = resp.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        Answer { status, replayed, body }
    }
}

fn code(a: &Answer) -> &str {
    a.body["error"]["code"].as_str().unwrap_or_default()
}

fn message(a: &Answer) -> &str {
    a.body["error"]["message"].as_str().unwrap_or_default()
}

async fn token(app: &TestApp, tenant: &Tenant, scopes: &str) -> String {
    let tokens = ecom_services::ApiTokens::new(app.db.clone());
    tokens.create_app_token(tenant.id, "warehouse", &Scopes::parse(scopes).unwrap(), "test").await.unwrap().1
}

/// Stock of the store's `wool-hat` variants by SKU, as the storefront sees it.
async fn stock(app: &TestApp, tenant: &Tenant) -> Vec<(String, i32)> {
    let view = app.catalog.product(tenant, "wool-hat").await.unwrap().unwrap();
    let mut s: Vec<(String, i32)> =
        view.variants.iter().map(|v| (v.sku.clone().unwrap_or_default(), v.stock)).collect();
    s.sort();
    s
}

async fn audit_count(app: &TestApp, tenant: &Tenant, action: &str) -> usize {
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let log = ecom_store::orders::audit_log(&txn, tenant.id, 500).await.unwrap();
    txn.commit().await.unwrap();
    log.iter().filter(|e| e.action == action).count()
}

const LEVELS: &str = "/api/v1/inventory/levels";

async fn stock_levels_are_set_all_or_none_once_per_key(app: TestApp) {
    let (tenant, _) = store_with_stock(&app, "acme", 10).await;
    let api = Api::new(&app, "acme.localhost");
    let good = token(&app, &tenant, "write_inventory").await;
    let reader = token(&app, &tenant, "read_products").await;
    let before = stock(&app, &tenant).await;
    let body = r#"{"levels": [{"sku": "wool-hat-S-Red", "available": 3}, {"sku": "wool-hat-M-Red", "available": 7}]}"#;

    // Refusals, each with a clear error and nothing changed.
    let a = api.post(LEVELS, None, Some("k0"), body).await;
    assert_eq!((a.status, code(&a)), (401, "UNAUTHENTICATED"));
    let a = api.post(LEVELS, Some("ecm_not-a-real-token"), Some("k0"), body).await;
    assert_eq!((a.status, code(&a)), (401, "UNAUTHENTICATED"));
    let a = api.post(LEVELS, Some(&reader), Some("k0"), body).await;
    assert_eq!((a.status, code(&a)), (403, "FORBIDDEN"));
    assert!(message(&a).contains("write_inventory"), "{}", message(&a));
    let a = api.post(LEVELS, Some(&good), None, body).await;
    assert_eq!((a.status, code(&a)), (400, "IDEMPOTENCY_KEY_REQUIRED"));
    let a = api.post(LEVELS, Some(&good), Some("has space"), body).await;
    assert_eq!((a.status, code(&a)), (422, "INVALID"));
    let a = api.post(LEVELS, Some(&good), Some("k1"), "{\"levels\": [").await;
    assert_eq!((a.status, code(&a)), (400, "BAD_REQUEST"));
    let a = api.post(LEVELS, Some(&good), Some("k2"), r#"{"levels": [{"sku": "wool-hat-S-Red", "qty": 1}]}"#).await;
    assert_eq!((a.status, code(&a)), (400, "BAD_REQUEST"));
    let unknown = r#"{"levels": [{"sku": "wool-hat-S-Red", "available": 1}, {"sku": "NOPE-1", "available": 2}]}"#;
    let a = api.post(LEVELS, Some(&good), Some("k3"), unknown).await;
    assert_eq!((a.status, code(&a)), (422, "INVALID"));
    assert!(message(&a).contains("NOPE-1"), "{}", message(&a));
    assert_eq!(a.body["error"]["field"], "sku");
    let negative = r#"{"levels": [{"sku": "wool-hat-S-Red", "available": -1}]}"#;
    let a = api.post(LEVELS, Some(&good), Some("k4"), negative).await;
    assert_eq!((a.status, code(&a)), (422, "INVALID"));
    let twice = r#"{"levels": [{"sku": "wool-hat-S-Red", "available": 1}, {"sku": "wool-hat-S-Red", "available": 2}]}"#;
    let a = api.post(LEVELS, Some(&good), Some("k5"), twice).await;
    assert_eq!((a.status, code(&a)), (422, "INVALID"));
    assert_eq!(stock(&app, &tenant).await, before, "a refused request changed stock");

    // The change, once.
    let a = api.post(LEVELS, Some(&good), Some("sync-1"), body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(!a.replayed);
    assert_eq!(
        a.body["levels"],
        json!([{"sku": "wool-hat-S-Red", "available": 3, "previous": 10}, {"sku": "wool-hat-M-Red", "available": 7, "previous": 0}])
    );
    let after = stock(&app, &tenant).await;
    assert!(
        after.contains(&("wool-hat-S-Red".into(), 3)) && after.contains(&("wool-hat-M-Red".into(), 7)),
        "{after:?}"
    );
    // 10 → 3 crosses the low-stock line.
    assert_eq!(outbox_topics(&app, &tenant, "inventory.").await, ["inventory.low"]);
    assert_eq!(audit_count(&app, &tenant, "inventory.set").await, 1);

    // A retry, formatted differently: the same answer, no second change.
    let reformatted =
        r#"{ "levels":[ {"available":3,"sku":"wool-hat-S-Red"}, {"available":7, "sku":"wool-hat-M-Red"} ] }"#;
    let b = api.post(LEVELS, Some(&good), Some("sync-1"), reformatted).await;
    assert_eq!((b.status, b.replayed), (200, true));
    assert_eq!(b.body, a.body);
    assert_eq!(audit_count(&app, &tenant, "inventory.set").await, 1);
    assert_eq!(outbox_topics(&app, &tenant, "inventory.").await.len(), 1);
    // The same key for another change is refused.
    let other = r#"{"levels": [{"sku": "wool-hat-S-Red", "available": 50}]}"#;
    let c = api.post(LEVELS, Some(&good), Some("sync-1"), other).await;
    assert_eq!((c.status, code(&c)), (422, "IDEMPOTENCY_KEY_REUSED"));
    assert_eq!(stock(&app, &tenant).await, after);
    // A refused request keeps its answer under its key too.
    let d = api.post(LEVELS, Some(&good), Some("k3"), unknown).await;
    assert_eq!((d.status, d.replayed), (422, true));

    // Many retries at once with a new key: one change; each answer is the change's or
    // "still in progress".
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (client, base, good, other) = (api.client.clone(), api.base.clone(), good.clone(), other.to_owned());
            tokio::spawn(async move {
                let api = Api { client, base };
                api.post(LEVELS, Some(&good), Some("sync-2"), &other).await
            })
        })
        .collect();
    let mut ran = 0;
    for t in tasks {
        let a = t.await.unwrap();
        match a.status {
            200 if !a.replayed => ran += 1,
            200 => assert_eq!(a.body["levels"][0]["available"], 50),
            409 => assert_eq!(code(&a), "IDEMPOTENCY_KEY_IN_USE"),
            s => panic!("unexpected {s}: {}", a.body),
        }
    }
    assert_eq!(ran, 1, "the change ran {ran} times");
    assert_eq!(audit_count(&app, &tenant, "inventory.set").await, 2);

    // Another store's token does not open this store.
    let (other_store, _) = store_with_stock(&app, "demo", 1).await;
    let foreign = token(&app, &other_store, "write_inventory").await;
    let a = api.post(LEVELS, Some(&foreign), Some("x1"), other).await;
    assert_eq!((a.status, code(&a)), (401, "UNAUTHENTICATED"));
}
both!(stock_levels_are_set_all_or_none_once_per_key);

async fn tracking_ships_the_order_once(app: TestApp) {
    let (tenant, variant) = store_with_stock(&app, "acme", 10).await;
    let api = Api::new(&app, "acme.localhost");
    let good = token(&app, &tenant, "write_orders").await;
    let inventory_only = token(&app, &tenant, "write_inventory").await;
    let cart = ready_cart(&app, &tenant, variant, 1).await;
    let pay = PaymentChoice { provider: "test_card".into(), token: "4242 4242 4242 4242".into() };
    let PlaceOutcome::Placed { number, .. } = app.checkout.place_order(&tenant, cart, None, &pay).await.unwrap() else {
        panic!("not placed")
    };
    let path = format!("/api/v1/orders/{number}/tracking");
    let body = r#"{"carrier": "UPS", "tracking_number": "1Z999AA10123456784"}"#;

    let a = api.post(&path, Some(&inventory_only), Some("t0"), body).await;
    assert_eq!((a.status, code(&a)), (403, "FORBIDDEN"));
    assert!(message(&a).contains("write_orders"));
    let a = api.post("/api/v1/orders/99999/tracking", Some(&good), Some("t0"), body).await;
    assert_eq!((a.status, code(&a)), (404, "NOT_FOUND"));
    let a = api.post(&path, Some(&good), Some("t1"), r#"{"carrier": "UPS", "tracking_number": " "}"#).await;
    assert_eq!((a.status, code(&a)), (422, "INVALID"));

    let a = api.post(&path, Some(&good), Some("t2"), body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["order"]["number"], number);
    assert_eq!(a.body["order"]["status"], "shipped");
    assert_eq!(a.body["order"]["carrier"], "UPS");
    let order = app.checkout.order(&tenant, number).await.unwrap().unwrap();
    assert_eq!(order.tracking_number, "1Z999AA10123456784");
    // The same report under the same key is replayed; under a new key it changes nothing.
    let b = api.post(&path, Some(&good), Some("t2"), body).await;
    assert_eq!((b.status, b.replayed), (200, true));
    let c = api.post(&format!("/api/v1/orders/%23{number}/tracking"), Some(&good), Some("t3"), body).await;
    assert_eq!((c.status, c.replayed), (200, false), "{}", c.body);
    assert_eq!(outbox_topics(&app, &tenant, "order.shipped").await.len(), 1);
    let events = app.checkout.order(&tenant, number).await.unwrap().unwrap().events;
    assert_eq!(events.iter().filter(|e| e.message.contains("1Z999AA10123456784")).count(), 1, "{events:?}");
}
both!(tracking_ships_the_order_once);
