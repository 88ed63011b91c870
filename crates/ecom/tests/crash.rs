//! Proof of no loss: `ecom serve` is killed with SIGKILL in the middle of a burst of
//! checkouts over the Storefront API, then started again. Every order a shopper was told
//! about is there, every event reached the bus consumers exactly once, and each order
//! produced exactly one webhook delivery record, delivered to a receiver on loopback —
//! on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, fresh_database, spawn_server};
use ecom_core::scope::Scopes;
use ecom_store::{Db, DbOptions};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const SECRET: &str = "test-secret-key-that-is-long-enough-0123456789";

/// A webhook receiver on loopback: records the order number of every `order.placed`
/// delivery it is sent, with its webhook id.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<std::sync::Mutex<Vec<(String, i64)>>>,
}

impl Receiver {
    async fn start() -> (Self, std::net::SocketAddr) {
        let me = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let r = me.clone();
        let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let r = r.clone();
            async move {
                let header =
                    |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                if header("x-ecom-topic") == "order.placed" {
                    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
                    let number = v["data"]["number"].as_i64().unwrap_or(-1);
                    r.got.lock().unwrap().push((header("x-ecom-webhook-id"), number));
                }
                axum::http::StatusCode::OK
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (me, addr)
    }
}
const HOST: &str = "demo.localhost";

struct Shopper {
    client: reqwest::Client,
    url: String,
}

impl Shopper {
    fn new(addr: &str) -> Self {
        let sock: std::net::SocketAddr = addr.parse().unwrap();
        let client = reqwest::Client::builder().resolve(HOST, sock).timeout(Duration::from_secs(10)).build().unwrap();
        Self { client, url: format!("http://{HOST}:{}/graphql", sock.port()) }
    }

    async fn gql(&self, query: &str, variables: Value) -> Result<Value, String> {
        let resp = self
            .client
            .post(&self.url)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let v: Value = resp.json().await.map_err(|e| e.to_string())?;
        if v.get("errors").is_some() {
            return Err(v["errors"].to_string());
        }
        Ok(v["data"].clone())
    }

    /// One checkout: cart with a line and an address, delivery chosen, paid by test
    /// card. `Ok(number)` once the API said the order was placed.
    async fn checkout(&self, variant: &str, n: usize) -> Result<i64, String> {
        let created = self
            .gql(
                "mutation($input: CartInput) { cartCreate(input: $input) { cart { id deliveryGroups(first: 1) { nodes { id deliveryOptions { handle } } } } userErrors { message } } }",
                json!({ "input": {
                    "lines": [{ "merchandiseId": variant, "quantity": 1 }],
                    "buyerIdentity": {
                        "email": format!("shopper{n}@example.com"),
                        "deliveryAddressPreferences": [{ "deliveryAddress": {
                            "firstName": "Pat", "lastName": "Doe", "address1": "1 Main St", "city": "Springfield",
                            "province": "IL", "zip": "62701", "country": "US"
                        }}]
                    }
                }}),
            )
            .await?;
        let cart = &created["cartCreate"]["cart"];
        let id = cart["id"].as_str().ok_or_else(|| format!("no cart: {created}"))?;
        let group = &cart["deliveryGroups"]["nodes"][0];
        self.gql(
            "mutation($id: ID!, $o: [CartSelectedDeliveryOptionInput!]!) { cartSelectedDeliveryOptionsUpdate(cartId: $id, selectedDeliveryOptions: $o) { userErrors { message } } }",
            json!({ "id": id, "o": [{ "deliveryGroupId": group["id"], "deliveryOptionHandle": group["deliveryOptions"][0]["handle"] }] }),
        )
        .await?;
        // A client does what a refusal that says "try again" asks: the same call with the
        // same idempotency key (which never charges twice).
        let mut tries = 0;
        loop {
            let done = self
                .gql(
                    "mutation($id: ID!, $p: CartPaymentInput!) { cartComplete(cartId: $id, payment: $p) { order { orderNumber } userErrors { message } } }",
                    json!({ "id": id, "p": { "provider": "test_card", "token": "4242 4242 4242 4242", "idempotencyKey": format!("pay-{n}") } }),
                )
                .await?;
            if let Some(number) = done["cartComplete"]["order"]["orderNumber"].as_i64() {
                return Ok(number);
            }
            tries += 1;
            if tries >= 3 || !done.to_string().contains("try again") {
                return Err(format!("not placed: {done}"));
            }
            eprintln!("cartComplete asked to try again ({done}); retrying with the same key");
        }
    }
}

/// A server process, killed when dropped, so a failing test leaves none behind.
struct Server(std::process::Child);

impl Server {
    /// SIGKILL: no shutdown, no flush, connections cut.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn open_db(url: &str) -> Db {
    Db::connect(&DbOptions { url: url.to_owned(), max_connections: 2, acquire_timeout: Duration::from_secs(10) })
        .await
        .unwrap()
}

/// Waits until the relay has published every outbox event.
async fn drained(db: &Db) {
    let start = Instant::now();
    loop {
        let txn = db.platform_txn().await.unwrap();
        let oldest = ecom_store::bus::oldest_unpublished(&txn).await.unwrap();
        txn.commit().await.unwrap();
        if oldest.is_none() {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "the outbox did not drain after the restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_killed_server_loses_no_order_and_applies_each_event_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = fresh_database(backend, dir.path()).await else { return };
    let env = [
        ("ECOM_DATABASE_URL", url.as_str()),
        ("ECOM_SECRET_KEY", SECRET),
        ("ECOM_RATE_LIMITS", "false"),
        ("ECOM_API_CLIENT_POINTS_PER_SEC", "1000000"),
        ("ECOM_API_STORE_POINTS_PER_SEC", "1000000"),
        ("ECOM_BUS_POLL_MS", "20"),
        // The killed relay's claimed deliveries wait for their lease to run out
        // before the restarted one takes them.
        ("ECOM_BUS_LEASE_SECS", "8"),
        // The webhook receiver is on loopback.
        ("ECOM_ALLOW_PRIVATE_NETWORK", "true"),
        ("ECOM_WEBHOOK_BACKOFF_BASE_MS", "100"),
        ("ECOM_WEBHOOK_BACKOFF_MAX_MS", "1000"),
    ];
    let (child, addr, _log) = spawn_server(dir.path(), &["--demo"], &env);
    let mut server = Server(child);
    let db = open_db(&url).await;
    let tenant = ecom_store::tenants::find_by_slug(&db, "demo").await.unwrap().unwrap();

    // A variant with plenty of stock, set through the integrations API.
    let shopper = Shopper::new(&addr);
    let products = shopper
        .gql("{ products(first: 5) { nodes { variants(first: 1) { nodes { id sku } } } } }", json!({}))
        .await
        .unwrap();
    let variant = products["products"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["variants"]["nodes"][0])
        .find(|v| v["sku"].as_str().is_some_and(|s| !s.is_empty()))
        .cloned()
        .expect("a demo variant with a SKU");
    let tokens = ecom_services::ApiTokens::new(db.clone());
    let scopes = Scopes::parse("write_inventory,write_webhooks").unwrap();
    // The server is still writing its demo data; SQLite has one writer at a time.
    let mut token = None;
    for _ in 0..100 {
        match tokens.create_app_token(tenant.id, "warehouse", &scopes, "test").await {
            Ok((_, t)) => {
                token = Some(t);
                break;
            }
            Err(e) if e.to_string().contains("locked") => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("{e}"),
        }
    }
    let token = token.expect("a token, once the database was free");
    let resp = shopper
        .client
        .post(format!("http://{HOST}:{}/api/v1/inventory/levels", addr.rsplit(':').next().unwrap()))
        .bearer_auth(&token)
        .header("Idempotency-Key", "stock-up")
        .json(&json!({ "levels": [{ "sku": variant["sku"], "available": 100000 }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let variant_id = variant["id"].as_str().unwrap().to_owned();

    // The shipping system subscribes to new orders through the merchant API.
    let (receiver, receiver_addr) = Receiver::start().await;
    let created: Value = shopper
        .client
        .post(format!("http://{HOST}:{}/merchant/graphql", addr.rsplit(':').next().unwrap()))
        .bearer_auth(&token)
        .json(&json!({
            "query": "mutation($s: WebhookSubscriptionInput!) { webhookSubscriptionCreate(webhookSubscription: $s) { webhookSubscription { id } userErrors { message } } }",
            "variables": { "s": { "callbackUrl": format!("http://{receiver_addr}/orders"), "topics": ["order.placed"] } },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(created["data"]["webhookSubscriptionCreate"]["webhookSubscription"]["id"].is_string(), "{created}");

    // A burst of checkouts from 6 shoppers at once; the server is killed mid-burst.
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<i64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut shoppers = Vec::new();
    for s in 0..6 {
        let (addr, variant_id, acknowledged, stop) =
            (addr.clone(), variant_id.clone(), acknowledged.clone(), stop.clone());
        shoppers.push(tokio::spawn(async move {
            let shopper = Shopper::new(&addr);
            let mut n = s * 10_000;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                match shopper.checkout(&variant_id, n).await {
                    Ok(number) => acknowledged.lock().unwrap().push(number),
                    Err(_) if stop.load(Ordering::Relaxed) => break,
                    Err(e) => panic!("checkout failed before the kill: {e}"),
                }
            }
        }));
    }
    let start = Instant::now();
    while acknowledged.lock().unwrap().len() < 20 {
        assert!(start.elapsed() < Duration::from_secs(60), "the burst is too slow");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    server.kill();
    for s in shoppers {
        s.await.unwrap();
    }
    let acknowledged: BTreeSet<i64> = acknowledged.lock().unwrap().iter().copied().collect();

    // Start again and let the relay catch up.
    let (child, _addr, _log) = spawn_server(dir.path(), &[], &env);
    let mut server = Server(child);
    drained(&db).await;

    // …and the webhook sender has delivered every delivery.
    let start = Instant::now();
    let deliveries = loop {
        let txn = db.tenant_txn(tenant.id).await.unwrap();
        let all = ecom_store::webhooks::all_deliveries(&txn, tenant.id).await.unwrap();
        txn.commit().await.unwrap();
        if all.iter().all(|d| d.status == ecom_store::webhooks::DELIVERED) {
            break all;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "webhook deliveries still pending after the restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let txn = db.tenant_txn(tenant.id).await.unwrap();
    let filter = ecom_store::orders::OrderFilter { limit: 100_000, ..Default::default() };
    let (orders, _) = ecom_store::orders::list_orders(&txn, tenant.id, &filter).await.unwrap();
    let outbox = ecom_store::orders::outbox_of(&txn, tenant.id).await.unwrap();
    let receipts = ecom_store::bus::receipts(&txn, tenant.id, ecom_bus::Activity::NAME).await.unwrap();
    let activity = ecom_store::bus::activity(&txn, tenant.id, "2000-01-01").await.unwrap();
    txn.commit().await.unwrap();
    server.kill();

    // No acknowledged order is lost.
    let stored: BTreeSet<i64> = orders.iter().map(|o| o.number).collect();
    let missing: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(missing.is_empty(), "orders the shoppers were told about are gone: {missing:?}");
    // Every stored order has exactly one order.placed event.
    let mut placed: HashMap<i64, usize> = HashMap::new();
    for e in outbox.iter().filter(|e| e.topic == "order.placed") {
        *placed.entry(e.payload["number"].as_i64().unwrap()).or_default() += 1;
    }
    for number in &stored {
        assert_eq!(placed.get(number), Some(&1), "order #{number} has {:?} order.placed events", placed.get(number));
    }
    // Every event reached the consumer exactly once: one receipt each, and its counters
    // add up to the events.
    assert_eq!(receipts as usize, outbox.len(), "receipts vs events");
    let counted: i64 = activity.iter().map(|(_, _, n)| n).sum();
    assert_eq!(counted as usize, outbox.len(), "activity counts vs events");
    let placed_counted: i64 = activity.iter().filter(|(_, t, _)| t == "order.placed").map(|(_, _, n)| n).sum();
    assert_eq!(placed_counted as usize, stored.len());
    // One webhook delivery record per order, delivered; the receiver saw every order
    // (a delivery cut by the kill may arrive twice, under the same webhook id).
    let placed_deliveries: Vec<_> = deliveries.iter().filter(|d| d.topic == "order.placed").collect();
    assert_eq!(placed_deliveries.len(), stored.len(), "webhook delivery records vs orders");
    let got = receiver.got.lock().unwrap().clone();
    let seen: BTreeSet<i64> = got.iter().map(|(_, n)| *n).collect();
    assert_eq!(seen, stored, "orders the receiver heard of");
    let ids: BTreeSet<&str> = got.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), stored.len(), "one webhook id per order");
    eprintln!(
        "{backend:?}: {} orders acknowledged before the kill, {} stored, {} events, each applied once; \
         {} webhook deliveries received for {} orders",
        acknowledged.len(),
        stored.len(),
        outbox.len(),
        got.len(),
        stored.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_server_loses_no_order_and_applies_each_event_once_sqlite() {
    a_killed_server_loses_no_order_and_applies_each_event_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_server_loses_no_order_and_applies_each_event_once_postgres() {
    a_killed_server_loses_no_order_and_applies_each_event_once(Backend::Postgres).await;
}
