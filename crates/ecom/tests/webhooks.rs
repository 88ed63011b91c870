//! Webhooks out, against the real app on SQLite and PostgreSQL and a real HTTP
//! receiver on 127.0.0.1 that checks every signature: one signed delivery per
//! subscription and event, retries with backoff and a logged attempt each, manual
//! redelivery from the panel, subscriptions disabled after failing for the window
//! (owner emailed), private targets refused, stores kept apart, and the GraphQL API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use common::{Backend, PASSWORD, TestApp, ready_cart, store_with_stock};
use ecom_core::Tenant;
use ecom_services::checkout::{PaymentChoice, PlaceOutcome};
use ecom_services::webhooks::signature;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `on_both!(story)`: runs `async fn story(backend: Backend)` on SQLite and PostgreSQL
/// (each story boots its own app with its own settings).
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await;
            }
        }
    };
}

/// What the receiver saw of one request.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    topic: String,
    store: String,
    body: serde_json::Value,
    /// The signature verified with the receiver's secret.
    verified: bool,
    at: Instant,
}

/// A webhook receiver on 127.0.0.1:0: answers with the queued statuses, then with
/// `default`; verifies signatures once told the secret.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
    plan: Arc<Mutex<VecDeque<u16>>>,
    default: Arc<Mutex<u16>>,
    secret: Arc<Mutex<String>>,
}

impl Receiver {
    async fn start(plan: &[u16], default: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Receiver {
            addr: listener.local_addr().unwrap(),
            got: Arc::default(),
            plan: Arc::new(Mutex::new(plan.iter().copied().collect())),
            default: Arc::new(Mutex::new(default)),
            secret: Arc::default(),
        };
        let me = r.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let me = me.clone();
            async move { me.receive(&headers, &body) }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    fn receive(&self, headers: &HeaderMap, body: &[u8]) -> (StatusCode, String) {
        let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let raw = String::from_utf8_lossy(body).into_owned();
        let ts: i64 = h("x-ecom-timestamp").parse().unwrap_or(0);
        let secret = self.secret.lock().unwrap().clone();
        // What a receiver does: recompute the signature over the raw body with the
        // header's timestamp, compare, and refuse stale timestamps.
        let fresh = (chrono::Utc::now().timestamp() - ts).abs() < 300;
        let verified = !secret.is_empty() && fresh && h("x-ecom-signature") == signature(&secret, ts, &raw);
        self.got.lock().unwrap().push(Received {
            id: h("x-ecom-webhook-id"),
            topic: h("x-ecom-topic"),
            store: h("x-ecom-store"),
            body: serde_json::from_str(&raw).unwrap_or_default(),
            verified,
            at: Instant::now(),
        });
        let status = self.plan.lock().unwrap().pop_front().unwrap_or(*self.default.lock().unwrap());
        (StatusCode::from_u16(status).unwrap(), if status < 300 { "thanks".into() } else { format!("boom {status}") })
    }

    fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    /// The URL as an HTML page shows it (minijinja escapes `/`).
    fn url_html(&self) -> String {
        self.url().replace('/', "&#x2f;")
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// Fast bus and webhook timings, private targets allowed (the receiver is local).
fn fast(c: &mut ecom::config::Config) {
    c.allow_private_network = true;
    c.bus_poll_ms = 10;
    c.bus_backoff_base_ms = 50;
    c.bus_backoff_max_ms = 500;
    c.webhook_backoff_base_ms = 100;
    c.webhook_backoff_max_ms = 400;
    c.webhook_timeout_secs = 5;
}

async fn place(app: &TestApp, tenant: &Tenant, variant: uuid::Uuid, card: bool) -> i64 {
    let cart = ready_cart(app, tenant, variant, 1).await;
    let pay = if card {
        PaymentChoice { provider: "test_card".into(), token: "4242 4242 4242 4242".into() }
    } else {
        PaymentChoice { provider: "manual".into(), token: String::new() }
    };
    let PlaceOutcome::Placed { number, .. } = app.checkout.place_order(tenant, cart, None, &pay).await.unwrap() else {
        panic!("not placed")
    };
    number
}

/// Waits for `cond`, at most `secs`.
async fn until(secs: u64, what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < Duration::from_secs(secs), "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn deliveries(app: &TestApp, tenant: &Tenant) -> Vec<ecom_store::webhooks::DeliveryRow> {
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let rows = ecom_store::webhooks::all_deliveries(&txn, tenant.id).await.unwrap();
    txn.commit().await.unwrap();
    rows
}

async fn outbox(app: &TestApp, tenant: &Tenant) -> Vec<ecom_store::bus::OutboxRow> {
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let rows = ecom_store::orders::outbox_of(&txn, tenant.id).await.unwrap();
    txn.commit().await.unwrap();
    rows
}

async fn subscribe(app: &TestApp, tenant: &Tenant, receiver: &Receiver, topics: &[&str]) -> uuid::Uuid {
    let (sub, secret) = app.webhooks.create(tenant.id, &receiver.url(), topics, "staff owner@test").await.unwrap();
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{secret}");
    *receiver.secret.lock().unwrap() = secret;
    sub.id
}

async fn each_event_reaches_each_subscription_once_signed(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, fast).await else { return };
    let (demo, demo_variant) = store_with_stock(&app, "demo", 20).await;
    let (acme, acme_variant) = store_with_stock(&app, "acme", 20).await;
    let (a, b, other) =
        (Receiver::start(&[], 200).await, Receiver::start(&[], 200).await, Receiver::start(&[], 200).await);
    let sub_a = subscribe(&app, &demo, &a, &["order.placed", "order.paid"]).await;
    let sub_b = subscribe(&app, &demo, &b, &["order.placed"]).await;
    let all: Vec<&str> = ecom_bus::Topic::ALL.iter().map(|t| t.as_str()).collect();
    let sub_other = subscribe(&app, &acme, &other, &all).await;
    // Events from before a subscription (the product the fixture made) are not sent.
    let acme_before = outbox(&app, &acme).await.len();
    assert!(acme_before > 0);

    let n1 = place(&app, &demo, demo_variant, true).await;
    let n2 = place(&app, &demo, demo_variant, false).await;
    place(&app, &acme, acme_variant, false).await;

    let events = outbox(&app, &demo).await;
    let wanted_a: Vec<&ecom_store::bus::OutboxRow> =
        events.iter().filter(|e| e.topic == "order.placed" || e.topic == "order.paid").collect();
    assert!(events.iter().any(|e| e.topic == "order.paid"), "a card order publishes order.paid");
    let placed: Vec<&ecom_store::bus::OutboxRow> = events.iter().filter(|e| e.topic == "order.placed").collect();
    assert_eq!(placed.len(), 2);
    let acme_events: Vec<ecom_store::bus::OutboxRow> = outbox(&app, &acme).await.split_off(acme_before);
    let start = Instant::now();
    while !(a.got().len() >= wanted_a.len() && b.got().len() >= 2 && other.got().len() >= acme_events.len()) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out: a {}/{}, b {}/2, other {}/{}; deliveries {:?}",
            a.got().len(),
            wanted_a.len(),
            b.got().len(),
            other.got().len(),
            acme_events.len(),
            deliveries(&app, &demo).await
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Let any duplicate show up.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let got_a = a.got();
    assert_eq!(got_a.len(), wanted_a.len(), "{got_a:?}");
    assert!(got_a.iter().all(|r| r.verified), "every signature verifies with the subscription's secret");
    let mut ids: Vec<&str> = got_a.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    let mut expected: Vec<String> = wanted_a.iter().map(|e| e.id.to_string()).collect();
    expected.sort_unstable();
    assert_eq!(ids, expected, "one request per event, the header carrying the event id");
    for r in &got_a {
        let event = events.iter().find(|e| e.id.to_string() == r.id).unwrap();
        assert_eq!(r.body["id"], r.id);
        assert_eq!(r.body["topic"], event.topic.as_str());
        assert_eq!(r.topic, event.topic);
        assert_eq!((r.body["store"].as_str(), r.store.as_str()), (Some("demo"), "demo"));
        assert_eq!(r.body["version"], 1);
        assert!(r.body["occurred_at"].as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()));
        assert_eq!(r.body["data"], event.payload);
    }
    let numbers: Vec<i64> =
        got_a.iter().filter(|r| r.topic == "order.placed").filter_map(|r| r.body["data"]["number"].as_i64()).collect();
    assert!(numbers.contains(&n1) && numbers.contains(&n2), "{numbers:?}");

    let got_b = b.got();
    assert_eq!(got_b.len(), 2);
    assert!(got_b.iter().all(|r| r.verified && r.topic == "order.placed"));
    // b's secret is not a's: a's signature check would fail on b's deliveries.
    assert_ne!(*a.secret.lock().unwrap(), *b.secret.lock().unwrap());

    // The other store's subscription saw its own events only.
    let got_other = other.got();
    assert_eq!(got_other.len(), acme_events.len());
    assert!(got_other.iter().all(|r| r.store == "acme" && r.verified));
    let demo_ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
    assert!(got_other.iter().all(|r| !demo_ids.contains(&r.id)));

    // One delivery record per subscription and event, all delivered at the first try.
    let rows = deliveries(&app, &demo).await;
    assert_eq!(rows.len(), wanted_a.len() + 2);
    assert!(rows.iter().all(|d| d.status == "delivered" && d.attempts == 1 && d.last_status_code == Some(200)));
    assert_eq!(rows.iter().filter(|d| d.subscription_id == sub_a).count(), wanted_a.len());
    assert_eq!(rows.iter().filter(|d| d.subscription_id == sub_b).count(), 2);
    assert!(deliveries(&app, &acme).await.iter().all(|d| d.subscription_id == sub_other));
    // The other store cannot read or touch this store's subscription.
    assert!(app.webhooks.get(acme.id, sub_a).await.unwrap().is_none());
    assert!(app.webhooks.delete(acme.id, sub_a, "staff owner@acme.test").await.is_err());
    assert!(app.webhooks.get(demo.id, sub_a).await.unwrap().is_some());

    let metrics = reqwest::get(app.url("localhost", "/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("ecom_webhook_deliveries_total{outcome=\"delivered\"}"), "{metrics}");
    app.stop().await;
}
on_both!(each_event_reaches_each_subscription_once_signed);

async fn a_failing_receiver_is_retried_logged_and_redelivered_from_the_panel(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, fast).await else { return };
    let (demo, variant) = store_with_stock(&app, "demo", 20).await;
    let hook = Receiver::start(&[500, 500], 200).await;
    let sub = subscribe(&app, &demo, &hook, &["order.placed"]).await;
    place(&app, &demo, variant, false).await;
    until(30, "delivered after two failures", async || hook.got().len() >= 3).await;
    let got = hook.got();
    assert!(got.iter().all(|r| r.verified));
    assert!(got.iter().all(|r| r.id == got[0].id), "retries carry the same event id");
    // Backoff: about 100 ms, then about 200 ms (each minus up to half).
    assert!(got[1].at - got[0].at >= Duration::from_millis(50), "{:?}", got[1].at - got[0].at);
    assert!(got[2].at - got[1].at >= Duration::from_millis(100), "{:?}", got[2].at - got[1].at);

    let mut log = Vec::new();
    until(10, "the log shows the delivery", async || {
        log = app.webhooks.deliveries(demo.id, sub, 50).await.unwrap();
        log.len() == 1 && log[0].status == "delivered"
    })
    .await;
    let d = &log[0];
    assert_eq!(d.attempts, 3);
    let codes: Vec<Option<i32>> = d.log.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, [Some(500), Some(500), Some(200)]);
    assert_eq!(d.log[0].response_excerpt, "boom 500");
    assert_eq!(d.log[2].response_excerpt, "thanks");
    assert!(d.log.iter().all(|a| a.latency_ms >= 0 && a.latency_ms < 5_000));
    let s = app.webhooks.get(demo.id, sub).await.unwrap().unwrap();
    assert!(s.failing_since.is_none(), "a success resets the failure clock");
    assert!(s.last_result.starts_with("200 in "), "{}", s.last_result);

    // The owner redelivers it from the panel.
    let browser = app.browser(&[]);
    let login = browser.login("demo.localhost", "/merchant", "owner@demo.test", PASSWORD).await;
    assert_eq!(login.status, 303, "{}", login.body);
    let list = browser.get("demo.localhost", "/merchant/settings/webhooks").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains(&hook.url_html()) && list.body.contains("200 in "), "{}", list.body);
    let page_path = format!("/merchant/settings/webhooks/{sub}");
    let page = browser.get("demo.localhost", &page_path).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("boom 500") && page.body.contains("Redeliver"), "{}", page.body);
    let action = format!("{page_path}/deliveries/{}/redeliver", d.id);
    // Without the CSRF token the form is refused and nothing is sent.
    let forged = browser.post("demo.localhost", &action, &[]).await;
    assert_eq!(forged.status, 403);
    let done = browser.submit("demo.localhost", &page_path, &action, &[]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    until(10, "the redelivery", async || hook.got().len() >= 4).await;
    assert_eq!(hook.got()[3].id, got[0].id);
    until(10, "the redelivery is logged", async || {
        let log = app.webhooks.deliveries(demo.id, sub, 50).await.unwrap();
        log[0].attempts == 4 && log[0].status == "delivered"
    })
    .await;
    let audit = ecom_services::audit::recent(&app.db, demo.id, 20).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "webhook.redelivered" && a.actor == "staff owner@demo.test"));
    assert!(audit.iter().any(|a| a.action == "webhook.created"));
    app.stop().await;
}
on_both!(a_failing_receiver_is_retried_logged_and_redelivered_from_the_panel);

async fn a_receiver_failing_past_the_window_is_disabled_and_the_owner_emailed(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |c| {
        fast(c);
        c.webhook_disable_after_secs = 1;
        c.webhook_backoff_max_ms = 200;
    })
    .await
    else {
        return;
    };
    let (demo, variant) = store_with_stock(&app, "demo", 20).await;
    let hook = Receiver::start(&[], 503).await;
    let sub = subscribe(&app, &demo, &hook, &["order.placed"]).await;
    place(&app, &demo, variant, false).await;
    until(30, "the subscription is disabled", async || {
        !app.webhooks.get(demo.id, sub).await.unwrap().unwrap().is_active()
    })
    .await;
    let s = app.webhooks.get(demo.id, sub).await.unwrap().unwrap();
    assert!(s.disabled_reason.contains("turned off automatically"), "{}", s.disabled_reason);
    assert!(s.disabled_reason.contains("503"), "{}", s.disabled_reason);
    let tries = hook.got().len();
    assert!(tries >= 2, "{tries}");
    // No attempt after that: the pending delivery was stopped.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(hook.got().len(), tries);
    let rows = deliveries(&app, &demo).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "failed");
    // A new event creates no delivery for a disabled subscription.
    place(&app, &demo, variant, false).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(deliveries(&app, &demo).await.len(), 1);

    // The owner was told, once.
    let mail = ecom_store::mailbox::list_all(&app.db, 50).await.unwrap();
    let told: Vec<_> = mail.iter().filter(|m| m.subject == "A webhook subscription was turned off").collect();
    assert_eq!(told.len(), 1, "{mail:?}");
    assert_eq!(told[0].to, "owner@demo.test");
    assert!(told[0].body_text.contains(&hook.url()));

    // The panel says why; turning it back on is audited and restarts the clock.
    let browser = app.browser(&[]);
    browser.login("demo.localhost", "/merchant", "owner@demo.test", PASSWORD).await;
    let list = browser.get("demo.localhost", "/merchant/settings/webhooks").await;
    assert!(list.body.contains("turned off automatically"), "{}", list.body);
    let toggled = browser
        .submit(
            "demo.localhost",
            "/merchant/settings/webhooks",
            &format!("/merchant/settings/webhooks/{sub}/status"),
            &[("active", "true")],
        )
        .await;
    assert_eq!(toggled.status, 303, "{}", toggled.body);
    let s = app.webhooks.get(demo.id, sub).await.unwrap().unwrap();
    assert!(s.is_active() && s.failing_since.is_none() && s.disabled_reason.is_empty());
    let audit = ecom_services::audit::recent(&app.db, demo.id, 20).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "webhook.disabled" && a.actor == "platform"));
    assert!(audit.iter().any(|a| a.action == "webhook.enabled"));
    app.stop().await;
}
on_both!(a_receiver_failing_past_the_window_is_disabled_and_the_owner_emailed);

async fn private_targets_are_refused_when_saved_and_when_sent(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |c| {
        fast(c);
        c.allow_private_network = false;
    })
    .await
    else {
        return;
    };
    let (demo, variant) = store_with_stock(&app, "demo", 20).await;
    let hook = Receiver::start(&[], 200).await;
    let port = hook.addr.port();
    for (url, says) in [
        (format!("https://127.0.0.1:{port}/hooks"), "127.0.0.1 is a loopback address"),
        (format!("https://hooks.localhost:{port}/x"), "hooks.localhost resolves to 127.0.0.1, a loopback address"),
        ("https://10.0.0.7/x".to_owned(), "private address"),
        ("https://169.254.169.254/latest/meta-data/".to_owned(), "link-local"),
        ("https://[::1]/x".to_owned(), "loopback"),
        ("http://example.com/hooks".to_owned(), "use an https:// URL"),
        ("ftp://example.com/hooks".to_owned(), "use an https:// URL"),
        ("https://user:pw@example.com/hooks".to_owned(), "leave user names and passwords out"),
        ("not a url".to_owned(), "not a valid URL"),
        (String::new(), "give the URL"),
    ] {
        let e = app.webhooks.create(demo.id, &url, &["order.placed"], "staff owner@demo.test").await;
        let msg = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains(says), "{url}: {msg:?}");
    }
    let e = app.webhooks.create(demo.id, "https://example.com/x", &["order.teleported"], "x").await;
    assert!(e.err().map(|e| e.to_string()).unwrap_or_default().contains("unknown topic"));
    assert!(app.webhooks.list(demo.id, None, 50).await.unwrap().is_empty(), "nothing was saved");

    // The panel refuses it with the same words and saves nothing.
    let browser = app.browser(&[]);
    browser.login("demo.localhost", "/merchant", "owner@demo.test", PASSWORD).await;
    let refused = browser
        .submit(
            "demo.localhost",
            "/merchant/settings/webhooks",
            "/merchant/settings/webhooks",
            &[("callback_url", &format!("https://127.0.0.1:{port}/hooks")), ("topic", "order.placed")],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("loopback"), "{}", refused.body);

    // A name that pointed elsewhere when saved and resolves to loopback now (DNS
    // rebinding): saved here through a service that allows private networks, with
    // the same platform secret, then sent by the app, which refuses it as it connects.
    let lax = ecom_services::Webhooks::new(
        app.db.clone(),
        ecom_services::Outbound::new(true).unwrap(),
        ecom_services::Mailer::default(),
        b"test-secret-key-that-is-long-enough-0123456789",
        ecom_services::webhooks::WebhookSettings::default(),
    );
    let (sub, _) =
        lax.create(demo.id, &format!("https://hooks.localhost:{port}/x"), &["order.placed"], "test").await.unwrap();
    place(&app, &demo, variant, false).await;
    let mut log = Vec::new();
    until(30, "a refused attempt is logged", async || {
        log = app.webhooks.deliveries(demo.id, sub.id, 50).await.unwrap();
        log.first().is_some_and(|d| !d.log.is_empty())
    })
    .await;
    let attempt = &log[0].log[0];
    assert_eq!(attempt.status_code, None);
    assert!(attempt.error.contains("loopback"), "{}", attempt.error);
    assert!(hook.got().is_empty(), "nothing reached the receiver");
    app.stop().await;
}
on_both!(private_targets_are_refused_when_saved_and_when_sent);

async fn the_panel_creates_shows_the_secret_once_and_deletes(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, fast).await else { return };
    let (demo, _) = store_with_stock(&app, "demo", 20).await;
    let hook = Receiver::start(&[], 200).await;
    let browser = app.browser(&[]);
    browser.login("demo.localhost", "/merchant", "owner@demo.test", PASSWORD).await;
    let created = browser
        .submit(
            "demo.localhost",
            "/merchant/settings/webhooks",
            "/merchant/settings/webhooks",
            &[("callback_url", &hook.url()), ("topic", "order.placed"), ("topic", "order.paid")],
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    let start = created.body.find("whsec_").expect("the secret is shown");
    let secret = &created.body[start..start + 54];
    let subs = app.webhooks.list(demo.id, None, 50).await.unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].topics, ["order.placed", "order.paid"]);
    // Shown once: the list and the subscription's page do not show it again.
    let list = browser.get("demo.localhost", "/merchant/settings/webhooks").await;
    assert!(!list.body.contains(secret) && list.body.contains(&hook.url_html()));
    let page = browser.get("demo.localhost", &format!("/merchant/settings/webhooks/{}", subs[0].id)).await;
    assert!(!page.body.contains(secret) && !page.body.contains("whsec_"));
    // Another store's staff cannot see it.
    let (_acme, _) = store_with_stock(&app, "acme", 5).await;
    let other = app.browser(&[]);
    other.login("acme.localhost", "/merchant", "owner@acme.test", PASSWORD).await;
    let peek = other.get("acme.localhost", &format!("/merchant/settings/webhooks/{}", subs[0].id)).await;
    assert_eq!(peek.status, 404);
    let deleted = browser
        .submit(
            "demo.localhost",
            "/merchant/settings/webhooks",
            &format!("/merchant/settings/webhooks/{}/delete", subs[0].id),
            &[],
        )
        .await;
    assert_eq!(deleted.status, 303);
    assert!(app.webhooks.list(demo.id, None, 50).await.unwrap().is_empty());
    let audit = ecom_services::audit::recent(&app.db, demo.id, 20).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "webhook.deleted"));
    assert!(audit.iter().all(|a| !a.detail.contains("whsec_")), "the secret is not in the audit log");
    app.stop().await;
}
on_both!(the_panel_creates_shows_the_secret_once_and_deletes);

// ---- the merchant GraphQL API ------------------------------------------------------------

type DateTime = String;

#[derive(graphql_client::GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/merchant.graphql",
    query_path = "tests/graphql/merchant/webhook_subscriptions.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct WebhookSubscriptions;

#[derive(graphql_client::GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/merchant.graphql",
    query_path = "tests/graphql/merchant/webhook_subscription_create.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct WebhookSubscriptionCreate;

#[derive(graphql_client::GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/merchant.graphql",
    query_path = "tests/graphql/merchant/webhook_subscription_update.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct WebhookSubscriptionUpdate;

#[derive(graphql_client::GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/merchant.graphql",
    query_path = "tests/graphql/merchant/webhook_subscription_delete.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct WebhookSubscriptionDelete;

/// Sends a generated operation to a store's merchant API with a bearer token.
async fn gql<Q: graphql_client::GraphQLQuery>(
    app: &TestApp,
    host: &str,
    token: &str,
    vars: Q::Variables,
) -> graphql_client::Response<Q::ResponseData>
where
    Q::Variables: serde::Serialize,
    Q::ResponseData: serde::de::DeserializeOwned,
{
    let client = reqwest::Client::builder().resolve(host, app.addr).build().unwrap();
    let resp = client
        .post(app.url(host, "/merchant/graphql"))
        .bearer_auth(token)
        .json(&Q::build_query(vars))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.unwrap()
}

fn error_codes<T>(resp: &graphql_client::Response<T>) -> Vec<(String, String)> {
    resp.errors
        .iter()
        .flatten()
        .map(|e| {
            let code = e.extensions.as_ref().and_then(|x| x.get("code")).and_then(|c| c.as_str()).unwrap_or("");
            (code.to_owned(), e.message.clone())
        })
        .collect()
}

async fn app_token(app: &TestApp, tenant: &Tenant, name: &str, scopes: &str) -> String {
    let tokens = ecom_services::ApiTokens::new(app.db.clone());
    let scopes = ecom_core::scope::Scopes::parse(scopes).unwrap();
    tokens.create_app_token(tenant.id, name, &scopes, "test").await.unwrap().1
}

async fn the_merchant_api_creates_lists_updates_and_deletes_with_scopes(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, fast).await else { return };
    let (demo, variant) = store_with_stock(&app, "demo", 20).await;
    let (acme, _) = store_with_stock(&app, "acme", 5).await;
    let writer = app_token(&app, &demo, "hooks", "write_webhooks").await;
    let reader = app_token(&app, &demo, "viewer", "read_webhooks").await;
    let orders_only = app_token(&app, &demo, "orders", "read_orders").await;
    let intruder = app_token(&app, &acme, "acme hooks", "write_webhooks").await;
    let hook = Receiver::start(&[], 200).await;
    let host = "demo.localhost";
    let input = |url: &str, topics: &[&str]| webhook_subscription_create::Variables {
        webhook_subscription: webhook_subscription_create::WebhookSubscriptionInput {
            callback_url: url.into(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        },
    };

    // Scopes: reading is not writing, and orders are not webhooks.
    let resp = gql::<WebhookSubscriptionCreate>(&app, host, &reader, input(&hook.url(), &["order.placed"])).await;
    assert_eq!(error_codes(&resp)[0].0, "FORBIDDEN");
    assert!(error_codes(&resp)[0].1.contains("write_webhooks"), "{:?}", error_codes(&resp));
    let resp = gql::<WebhookSubscriptions>(&app, host, &orders_only, Default::default()).await;
    assert_eq!(error_codes(&resp)[0].0, "FORBIDDEN");

    // Bad input: user errors naming the field, nothing saved.
    let resp = gql::<WebhookSubscriptionCreate>(&app, host, &writer, input("ftp://x.test/", &["order.placed"])).await;
    let errors = resp.data.unwrap().webhook_subscription_create.user_errors;
    assert_eq!(errors[0].field.as_deref(), Some(&["webhookSubscription".to_owned(), "callbackUrl".to_owned()][..]));
    assert_eq!(errors[0].code, "VALIDATION");
    let resp = gql::<WebhookSubscriptionCreate>(&app, host, &writer, input(&hook.url(), &["order.teleported"])).await;
    let errors = resp.data.unwrap().webhook_subscription_create.user_errors;
    assert_eq!(errors[0].field.as_deref(), Some(&["webhookSubscription".to_owned(), "topics".to_owned()][..]));
    assert!(app.webhooks.list(demo.id, None, 50).await.unwrap().is_empty());

    let resp = gql::<WebhookSubscriptionCreate>(&app, host, &writer, input(&hook.url(), &["order.placed"])).await;
    assert!(resp.errors.is_none(), "{:?}", resp.errors);
    let created = resp.data.unwrap().webhook_subscription_create;
    assert!(created.user_errors.is_empty(), "{:?}", created.user_errors);
    let secret = created.secret.unwrap();
    assert!(secret.starts_with("whsec_"));
    let sub = created.webhook_subscription.unwrap();
    assert_eq!(
        (sub.callback_url.as_str(), sub.topics.as_slice()),
        (hook.url().as_str(), &["order.placed".to_owned()][..])
    );
    assert_eq!(sub.status, webhook_subscription_create::WebhookSubscriptionStatus::ACTIVE);

    // The secret the API answered signs the deliveries.
    *hook.secret.lock().unwrap() = secret;
    place(&app, &demo, variant, false).await;
    until(30, "a delivery", async || !hook.got().is_empty()).await;
    assert!(hook.got()[0].verified);

    let list = gql::<WebhookSubscriptions>(&app, host, &reader, Default::default()).await.data.unwrap();
    let nodes = list.webhook_subscriptions.nodes;
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].id, sub.id);

    // Another store's token sees nothing and changes nothing.
    let theirs = gql::<WebhookSubscriptions>(&app, "acme.localhost", &intruder, Default::default()).await;
    assert!(theirs.data.unwrap().webhook_subscriptions.nodes.is_empty());
    let vars = webhook_subscription_delete::Variables { id: sub.id.clone() };
    let resp = gql::<WebhookSubscriptionDelete>(&app, "acme.localhost", &intruder, vars).await;
    let payload = resp.data.unwrap().webhook_subscription_delete;
    assert_eq!(payload.user_errors[0].code, "NOT_FOUND");
    assert!(payload.deleted_webhook_subscription_id.is_none());

    // Off, then on again with other topics.
    let vars = webhook_subscription_update::Variables {
        id: sub.id.clone(),
        webhook_subscription: webhook_subscription_update::WebhookSubscriptionUpdateInput {
            active: Some(false),
            ..Default::default()
        },
    };
    let off = gql::<WebhookSubscriptionUpdate>(&app, host, &writer, vars).await.data.unwrap();
    let off = off.webhook_subscription_update.webhook_subscription.unwrap();
    assert_eq!(off.status, webhook_subscription_update::WebhookSubscriptionStatus::DISABLED);
    assert!(off.disabled_reason.unwrap_or_default().contains("app hooks"));
    let vars = webhook_subscription_update::Variables {
        id: sub.id.clone(),
        webhook_subscription: webhook_subscription_update::WebhookSubscriptionUpdateInput {
            active: Some(true),
            topics: Some(vec!["order.paid".into(), "order.cancelled".into()]),
            callback_url: None,
        },
    };
    let on = gql::<WebhookSubscriptionUpdate>(&app, host, &writer, vars).await.data.unwrap();
    let on = on.webhook_subscription_update.webhook_subscription.unwrap();
    assert_eq!(on.status, webhook_subscription_update::WebhookSubscriptionStatus::ACTIVE);
    assert_eq!(on.topics, ["order.paid", "order.cancelled"]);

    let vars = webhook_subscription_delete::Variables { id: sub.id.clone() };
    let gone = gql::<WebhookSubscriptionDelete>(&app, host, &writer, vars).await.data.unwrap();
    assert_eq!(gone.webhook_subscription_delete.deleted_webhook_subscription_id.as_deref(), Some(sub.id.as_str()));
    assert!(app.webhooks.list(demo.id, None, 50).await.unwrap().is_empty());
    let audit = ecom_services::audit::recent(&app.db, demo.id, 30).await.unwrap();
    for action in ["webhook.created", "webhook.disabled", "webhook.enabled", "webhook.updated", "webhook.deleted"] {
        assert!(audit.iter().any(|a| a.action == action && a.actor == "app hooks"), "{action}: {audit:?}");
    }
    app.stop().await;
}
on_both!(the_merchant_api_creates_lists_updates_and_deletes_with_scopes);
