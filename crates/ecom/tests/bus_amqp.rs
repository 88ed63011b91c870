//! The bus in RabbitMQ mode (`ECOM_AMQP_URL`), against the real RabbitMQ at
//! 127.0.0.1:5672 and the real app on SQLite and PostgreSQL: every consumer's effect
//! exactly once, retries through the delay queues, dead letters through the
//! dead-letter exchange into the panels and back, two nodes without double-sending,
//! and a broker restart in the middle of relaying without losing or duplicating an
//! effect.
//!
//! Each test uses its own exchange and queue prefix, and deletes its topology at the
//! end. The tests run one at a time (nextest group `amqp`, .config/nextest.toml): one
//! of them restarts the broker.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::probe::Probe;

use common::{Backend, TestApp, ready_cart, store_with_stock};
use ecom_bus::{Activity, AmqpBus, AmqpSettings, Consumer, DeadLetters, Scope};
use ecom_core::Tenant;
use ecom_services::checkout::{PaymentChoice, PlaceOutcome};
use ecom_store::Db;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn manual() -> PaymentChoice {
    PaymentChoice { provider: "manual".into(), token: String::new() }
}

fn card() -> PaymentChoice {
    PaymentChoice { provider: "test_card".into(), token: "4242 4242 4242 4242".into() }
}

/// Whether RabbitMQ answers; in CI a missing broker fails the test instead of skipping.
async fn broker_available() -> bool {
    let ok = tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect("127.0.0.1:5672"))
        .await
        .is_ok_and(|r| r.is_ok());
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("RabbitMQ is not reachable at 127.0.0.1:5672, and CI=true: start it (rabbitmq-server -detached)");
        }
        eprintln!("SKIPPED: RabbitMQ is not reachable at 127.0.0.1:5672; this RabbitMQ-mode test did not run");
    }
    ok
}

/// The app in RabbitMQ mode under its own prefix, with a probe consumer next to the
/// activity one, and fast retries (60 ms, 120 ms; 3 attempts).
struct AmqpApp {
    app: TestApp,
    probe: Arc<Probe>,
    settings: AmqpSettings,
}

async fn amqp_app(backend: Backend, name: &'static str, fails: u32, always: bool) -> Option<AmqpApp> {
    if !broker_available().await {
        return None;
    }
    let prefix = format!("ecomtest-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let probe = std::sync::OnceLock::<Arc<Probe>>::new();
    let tweak = |c: &mut ecom::config::Config| {
        c.bus_poll_ms = 10;
        c.bus_backoff_base_ms = 60;
        c.bus_backoff_max_ms = 1_000;
        c.bus_max_attempts = 3;
        c.amqp_url = Some(ecom::config::Secret(AMQP_URL.into()));
        c.amqp_prefix = prefix.clone();
        c.amqp_prefetch = 16;
    };
    let mut config = ecom::config::Config::default();
    tweak(&mut config);
    let settings = config.amqp_settings().unwrap();
    let app = TestApp::spawn_with_consumers(backend, tweak, |db| {
        let p = Probe::new(name, db, fails, always);
        let _ = probe.set(p.clone());
        vec![p as Arc<dyn Consumer>]
    })
    .await?;
    let probe = probe.get()?.clone();
    let amqp = AmqpApp { app, probe, settings };
    amqp.wait_ready().await;
    Some(amqp)
}

impl AmqpApp {
    /// Waits for `/readyz` (the bus connected to the broker and declared its queues).
    async fn wait_ready(&self) {
        let start = Instant::now();
        loop {
            let r = reqwest::get(self.app.url("localhost", "/readyz")).await.unwrap();
            if r.status() == 200 {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "never ready: {}", r.text().await.unwrap());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        let consumers = [Activity::NAME, self.probe.name];
        self.app.stop().await;
        ecom_bus::amqp::delete_topology(&self.settings, &consumers).await.unwrap();
    }
}

async fn place(app: &TestApp, tenant: &Tenant, variant: uuid::Uuid, pay: &PaymentChoice) -> i64 {
    let cart = ready_cart(app, tenant, variant, 1).await;
    let PlaceOutcome::Placed { number, .. } = app.checkout.place_order(tenant, cart, None, pay).await.unwrap() else {
        panic!("not placed")
    };
    number
}

async fn receipts(db: &Db, tenant: &Tenant, consumer: &str) -> u64 {
    let txn = db.tenant_txn(tenant.id).await.unwrap();
    let n = ecom_store::bus::receipts(&txn, tenant.id, consumer).await.unwrap();
    txn.commit().await.unwrap();
    n
}

async fn outbox(db: &Db, tenant: &Tenant) -> Vec<ecom_store::bus::OutboxRow> {
    let txn = db.tenant_txn(tenant.id).await.unwrap();
    let rows = ecom_store::orders::outbox_of(&txn, tenant.id).await.unwrap();
    txn.commit().await.unwrap();
    rows
}

fn order_events(rows: &[ecom_store::bus::OutboxRow]) -> u64 {
    rows.iter().filter(|r| r.topic.starts_with("order.")).count() as u64
}

/// Waits until every outbox event was published to the broker and both consumers
/// applied every event they take (the probe: order events; activity: all).
async fn all_applied(a: &AmqpApp, tenant: &Tenant, limit: Duration) -> Vec<ecom_store::bus::OutboxRow> {
    let start = Instant::now();
    loop {
        let rows = outbox(&a.app.db, tenant).await;
        let published = rows.iter().all(|r| r.published_at.is_some());
        let probe = receipts(&a.app.db, tenant, a.probe.name).await;
        let activity = receipts(&a.app.db, tenant, Activity::NAME).await;
        if published && probe == order_events(&rows) && activity == rows.len() as u64 {
            return rows;
        }
        assert!(
            start.elapsed() < limit,
            "not all applied: {} events, published {published}, probe {probe}/{}, activity {activity}",
            rows.len(),
            order_events(&rows)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = reqwest::get(app.url("localhost", "/metrics")).await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn wait_for(what: &str, limit: Duration, mut cond: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ---- every order, every consumer, once -------------------------------------------------------

async fn orders_reach_every_consumer_once_through_the_broker(backend: Backend) {
    let Some(a) = amqp_app(backend, "counter", 0, false).await else { return };
    let (tenant, variant) = store_with_stock(&a.app, "demo", 100).await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (checkout, tenant) = (a.app.checkout.clone(), tenant.clone());
        let cart = ready_cart(&a.app, &tenant, variant, 1).await;
        let pay = if i % 2 == 0 { card() } else { manual() };
        tasks.push(tokio::spawn(async move { checkout.place_order(&tenant, cart, None, &pay).await.unwrap() }));
    }
    for t in tasks {
        assert!(matches!(t.await.unwrap(), PlaceOutcome::Placed { .. }));
    }
    // Let the test gateway's webhooks land (order.paid), then everything drain.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows = all_applied(&a, &tenant, Duration::from_secs(30)).await;
    assert_eq!(rows.iter().filter(|r| r.topic == "order.placed").count(), 12);
    assert!(rows.iter().any(|r| r.topic == "order.paid"), "card payments publish order.paid");
    for r in &rows {
        assert!(r.dispatched_at.is_some() && r.claimed_until.is_none(), "{r:?}");
    }
    // Exactly once: one call per order event (no redelivery without a failure), one
    // receipt each, and the activity counter counted each event once.
    assert_eq!(u64::from(a.probe.calls.load(Ordering::SeqCst)), order_events(&rows));
    assert_eq!(u64::from(a.probe.effects.load(Ordering::SeqCst)), order_events(&rows));
    let txn = a.app.db.tenant_txn(tenant.id).await.unwrap();
    let counted = ecom_store::bus::activity(&txn, tenant.id, "2000-01-01").await.unwrap();
    txn.commit().await.unwrap();
    let placed: i64 = counted.iter().filter(|(_, t, _)| t == "order.placed").map(|(_, _, n)| n).sum();
    assert_eq!(placed, 12);
    // Each event published once, and nothing left in the queues.
    assert_eq!(metric(&a.app, "ecom_bus_published_total").await as usize, rows.len());
    assert!(metric(&a.app, "ecom_bus_delivered_total").await >= rows.len() as f64);
    assert_eq!(metric(&a.app, "ecom_outbox_lag_seconds").await, 0.0);
    assert_eq!(metric(&a.app, "ecom_bus_broker_connected").await, 1.0);
    for consumer in [Activity::NAME, a.probe.name] {
        assert_eq!(ecom_bus::amqp::queue_depth(&a.settings, consumer, "").await.unwrap(), 0);
    }
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_reach_every_consumer_once_through_the_broker_sqlite() {
    orders_reach_every_consumer_once_through_the_broker(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_reach_every_consumer_once_through_the_broker_postgres() {
    orders_reach_every_consumer_once_through_the_broker(Backend::Postgres).await;
}

// ---- retries through the delay queues -------------------------------------------------------

async fn a_flaky_consumer_is_retried_through_the_delay_queues(backend: Backend) {
    let Some(a) = amqp_app(backend, "flaky", 2, false).await else { return };
    let (tenant, variant) = store_with_stock(&a.app, "demo", 10).await;
    place(&a.app, &tenant, variant, &manual()).await;
    all_applied(&a, &tenant, Duration::from_secs(20)).await;
    assert_eq!(a.probe.calls.load(Ordering::SeqCst), 3, "failed twice, then succeeded");
    assert_eq!(a.probe.effects.load(Ordering::SeqCst), 1);
    let at = a.probe.attempts_at.lock().unwrap().clone();
    // Delay level 1 holds a message 60 ms, level 2 120 ms (fixed queue TTLs).
    assert!(at[1] - at[0] >= Duration::from_millis(60), "{:?}", at[1] - at[0]);
    assert!(at[2] - at[1] >= Duration::from_millis(120), "{:?}", at[2] - at[1]);
    assert_eq!(metric(&a.app, "ecom_bus_retried_total").await, 2.0);
    // The other consumer of the same event was neither held back nor re-run.
    assert_eq!(receipts(&a.app.db, &tenant, Activity::NAME).await, outbox(&a.app.db, &tenant).await.len() as u64);
    for which in ["", "retry.1", "retry.2", "dead"] {
        assert_eq!(ecom_bus::amqp::queue_depth(&a.settings, "flaky", which).await.unwrap(), 0, "{which}");
    }
    let letters = DeadLetters::new(a.app.db.clone());
    assert_eq!(letters.list(Scope::Platform, 10).await.unwrap().1, 0);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_consumer_is_retried_through_the_delay_queues_sqlite() {
    a_flaky_consumer_is_retried_through_the_delay_queues(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_consumer_is_retried_through_the_delay_queues_postgres() {
    a_flaky_consumer_is_retried_through_the_delay_queues(Backend::Postgres).await;
}

// ---- dead letters -----------------------------------------------------------------------------

async fn a_failing_consumer_goes_to_the_dead_letter_queue_and_back_from_the_panel(backend: Backend) {
    let Some(a) = amqp_app(backend, "warehouse", 0, true).await else { return };
    let (demo, variant) = store_with_stock(&a.app, "demo", 10).await;
    let (acme, acme_variant) = store_with_stock(&a.app, "acme", 10).await;
    place(&a.app, &demo, variant, &manual()).await;
    place(&a.app, &demo, variant, &manual()).await;
    place(&a.app, &acme, acme_variant, &manual()).await;
    let letters = DeadLetters::new(a.app.db.clone());
    wait_for("three dead letters", Duration::from_secs(20), async || {
        letters.list(Scope::Platform, 50).await.unwrap().1 == 3
    })
    .await;
    assert_eq!(a.probe.calls.load(Ordering::SeqCst), 9, "3 events × 3 attempts");
    assert_eq!(a.probe.effects.load(Ordering::SeqCst), 0);
    assert_eq!(metric(&a.app, "ecom_bus_dead_lettered_total").await, 3.0);
    // Recorded from the dead-letter queue, which is then empty again.
    assert_eq!(ecom_bus::amqp::queue_depth(&a.settings, "warehouse", "dead").await.unwrap(), 0);
    let (mine, total) = letters.list(Scope::Store(demo.id), 50).await.unwrap();
    assert_eq!((mine.len(), total), (2, 2));
    let letter = &mine[0];
    assert_eq!((letter.consumer.as_str(), letter.topic.as_str(), letter.attempts), ("warehouse", "order.placed", 3));
    assert_eq!(letter.error, "warehouse unreachable");
    assert!(letter.payload["order_id"].is_string(), "{}", letter.payload);
    // The activity consumer of the same events was not affected.
    assert_eq!(receipts(&a.app.db, &demo, Activity::NAME).await, outbox(&a.app.db, &demo).await.len() as u64);

    // The super-admin panel lists them; Retry (with its CSRF token) once the consumer
    // is fixed hands the message back to the consumer's queue: applied, once.
    a.app.admin("root@ecom.test").await;
    let admin = a.app.browser(&[]);
    admin.login("localhost", "/admin", "root@ecom.test", common::PASSWORD).await;
    let page = admin.get("localhost", "/admin/dead-letters").await;
    assert_eq!(page.status, 200);
    let id = letter.id.to_string();
    for text in ["warehouse unreachable", "order.placed", "demo", "acme", id.as_str()] {
        assert!(page.body.contains(text), "{text} missing from the admin page");
    }
    a.probe.broken.store(false, Ordering::SeqCst);
    let retried =
        admin.submit("localhost", "/admin/dead-letters", &format!("/admin/dead-letters/{id}/retry"), &[]).await;
    assert_eq!(retried.status, 303);
    wait_for("the retried dead letter applied", Duration::from_secs(20), async || {
        receipts(&a.app.db, &demo, "warehouse").await == 1
    })
    .await;
    assert_eq!(a.probe.effects.load(Ordering::SeqCst), 1);
    // The delivery row says so too (written just after the effect's commit).
    wait_for("the retried delivery recorded", Duration::from_secs(10), async || {
        let txn = a.app.db.platform_txn().await.unwrap();
        let deliveries = ecom_store::bus::deliveries_of(&txn, letter.event_id).await.unwrap();
        txn.commit().await.unwrap();
        deliveries.iter().any(|d| d.consumer == "warehouse" && d.status == "delivered")
    })
    .await;
    let (left, total) = letters.list(Scope::Platform, 50).await.unwrap();
    assert_eq!((left.len(), total), (2, 2), "the other two stay");
    assert!(left.iter().all(|l| l.id != letter.id));
    // Nothing else was re-run: the fixed consumer got only the retried one.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(a.probe.calls.load(Ordering::SeqCst), 10);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_consumer_goes_to_the_dead_letter_queue_and_back_from_the_panel_sqlite() {
    a_failing_consumer_goes_to_the_dead_letter_queue_and_back_from_the_panel(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_consumer_goes_to_the_dead_letter_queue_and_back_from_the_panel_postgres() {
    a_failing_consumer_goes_to_the_dead_letter_queue_and_back_from_the_panel(Backend::Postgres).await;
}

// ---- two nodes ----------------------------------------------------------------------------------

async fn two_nodes_share_the_work_without_double_sending(backend: Backend) {
    let Some(a) = amqp_app(backend, "counter", 0, false).await else { return };
    // A second node: its own bus (and, on PostgreSQL, its own pool, like another
    // `ecom` process) on the same broker prefix and consumers.
    let db = match backend {
        Backend::Postgres => Db::connect(&ecom_store::DbOptions {
            url: a.app.database_url.clone(),
            max_connections: 4,
            acquire_timeout: Duration::from_secs(5),
        })
        .await
        .unwrap(),
        Backend::Sqlite => a.app.db.clone(),
    };
    let consumers: Vec<Arc<dyn Consumer>> = vec![Arc::new(Activity::new(db.clone())), a.probe.clone()];
    let second = AmqpBus::new(db, consumers, a.settings.clone());
    let second_status = second.status();
    let counter = second.clone();
    let node = second.spawn();
    wait_for("the second node connected", Duration::from_secs(20), async || second_status.connected()).await;

    let (tenant, variant) = store_with_stock(&a.app, "demo", 100).await;
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let (checkout, tenant) = (a.app.checkout.clone(), tenant.clone());
        let cart = ready_cart(&a.app, &tenant, variant, 1).await;
        tasks.push(tokio::spawn(async move { checkout.place_order(&tenant, cart, None, &manual()).await.unwrap() }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rows = all_applied(&a, &tenant, Duration::from_secs(30)).await;
    node.abort();
    assert_eq!(order_events(&rows), 30);
    // Each event was published once between the two nodes (the counter is the
    // process's, which both share here), and handled once.
    assert_eq!(metric(&a.app, "ecom_bus_published_total").await as usize, rows.len());
    assert!(counter.published() <= rows.len() as u64);
    assert_eq!(a.probe.calls.load(Ordering::SeqCst), 30, "no event was sent twice");
    assert_eq!(a.probe.effects.load(Ordering::SeqCst), 30);
    assert_eq!(receipts(&a.app.db, &tenant, Activity::NAME).await, rows.len() as u64);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_work_without_double_sending_sqlite() {
    two_nodes_share_the_work_without_double_sending(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_work_without_double_sending_postgres() {
    two_nodes_share_the_work_without_double_sending(Backend::Postgres).await;
}

// ---- backpressure --------------------------------------------------------------------------------

/// A consumer that takes no event until it is opened; then its effect is its receipt.
struct Gate {
    db: Db,
    open: tokio::sync::watch::Sender<bool>,
    effects: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl Consumer for Gate {
    fn name(&self) -> &'static str {
        "gate"
    }

    fn topics(&self) -> &[ecom_bus::Topic] {
        ecom_bus::Topic::ALL
    }

    async fn handle(&self, event: &ecom_bus::Event) -> Result<(), ecom_bus::ConsumerError> {
        let _ = self.open.subscribe().wait_for(|open| *open).await;
        let Some(txn) = self.begin_once(&self.db, event).await? else { return Ok(()) };
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        self.effects.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// While a consumer's queue holds four relay batches of waiting messages, the relay
/// publishes no more: the backlog waits in the outbox. Once the consumer takes its
/// messages, the rest follows, each event applied once.
async fn the_relay_holds_back_while_a_consumer_queue_is_deep(backend: Backend) {
    if !broker_available().await {
        return;
    }
    // The app for its database and store only: its own bus is off.
    let Some(app) = TestApp::spawn_with(backend, |c| c.bus_relay = false).await else { return };
    let (tenant, _) = store_with_stock(&app, "demo", 5).await;
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    for n in 0..150 {
        let payload = serde_json::json!({"product_id": uuid::Uuid::now_v7(), "handle": format!("p-{n}"), "title": "P"});
        ecom_store::orders::outbox(&txn, tenant.id, "product.updated", payload).await.unwrap();
    }
    txn.commit().await.unwrap();
    let events = outbox(&app.db, &tenant).await.len() as u64;

    let settings = AmqpSettings {
        url: AMQP_URL.into(),
        prefix: format!("ecomtest-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]),
        prefetch: 4,
        relay: ecom_bus::RelaySettings { batch: 8, poll: Duration::from_millis(10), ..Default::default() },
    };
    let gate = Arc::new(Gate {
        db: app.db.clone(),
        open: tokio::sync::watch::channel(false).0,
        effects: std::sync::atomic::AtomicU32::new(0),
    });
    let bus = AmqpBus::new(app.db.clone(), vec![gate.clone() as Arc<dyn Consumer>], settings.clone());
    let node = bus.clone().spawn();
    // Four batches of 8 wait, the consumer holds its prefetch of 4.
    wait_for("the consumer's queue to fill", Duration::from_secs(20), async || {
        ecom_bus::amqp::queue_depth(&settings, "gate", "").await.unwrap_or(0) >= 32
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let depth = ecom_bus::amqp::queue_depth(&settings, "gate", "").await.unwrap();
    assert!((32..=40).contains(&depth), "at most one batch past the limit waits in the broker: {depth}");
    assert!(bus.published() <= 44, "published {} of {events} while the consumer took none", bus.published());
    let unpublished = outbox(&app.db, &tenant).await.iter().filter(|r| r.published_at.is_none()).count() as u64;
    assert_eq!(unpublished, events - bus.published(), "the rest waits in the outbox");

    gate.open.send_replace(true);
    wait_for("every event applied", Duration::from_secs(30), async || {
        u64::from(gate.effects.load(Ordering::SeqCst)) == events && receipts(&app.db, &tenant, "gate").await == events
    })
    .await;
    wait_for("every event marked published", Duration::from_secs(10), async || {
        outbox(&app.db, &tenant).await.iter().all(|r| r.published_at.is_some())
    })
    .await;
    assert_eq!(bus.published(), events);
    node.abort();
    app.stop().await;
    ecom_bus::amqp::delete_topology(&settings, &["gate"]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_holds_back_while_a_consumer_queue_is_deep_sqlite() {
    the_relay_holds_back_while_a_consumer_queue_is_deep(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_holds_back_while_a_consumer_queue_is_deep_postgres() {
    the_relay_holds_back_while_a_consumer_queue_is_deep(Backend::Postgres).await;
}

// ---- broker restart -----------------------------------------------------------------------------

/// Starts the broker's application again when dropped, so that a failing test does
/// not leave RabbitMQ stopped for the next one.
struct BrokerBackUp;

impl Drop for BrokerBackUp {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl").arg("start_app").output();
    }
}

fn rabbitmqctl(arg: &str) {
    let out = std::process::Command::new("rabbitmqctl").arg(arg).output().expect("rabbitmqctl runs");
    assert!(out.status.success(), "rabbitmqctl {arg}: {}", String::from_utf8_lossy(&out.stderr));
}

async fn a_broker_restart_mid_relay_loses_and_duplicates_no_effect(backend: Backend) {
    let Some(a) = amqp_app(backend, "ledger", 0, false).await else { return };
    let (tenant, variant) = store_with_stock(&a.app, "demo", 200).await;
    // Orders keep coming while the broker goes away and comes back: placing an order
    // needs only the database.
    let placing = {
        let (checkout, tenant) = (a.app.checkout.clone(), tenant.clone());
        let mut carts = Vec::new();
        for _ in 0..40 {
            carts.push(ready_cart(&a.app, &tenant, variant, 1).await);
        }
        tokio::spawn(async move {
            for cart in carts {
                checkout.place_order(&tenant, cart, None, &manual()).await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    // Some are through before the restart.
    wait_for("the first orders applied", Duration::from_secs(20), async || {
        receipts(&a.app.db, &tenant, "ledger").await >= 5
    })
    .await;
    let guard = BrokerBackUp;
    rabbitmqctl("stop_app");
    // /readyz says so while the broker is away.
    wait_for("/readyz to report the broker", Duration::from_secs(10), async || {
        let r = reqwest::get(a.app.url("localhost", "/readyz")).await.unwrap();
        r.status() == 503 && r.text().await.unwrap().contains("message broker unreachable")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    rabbitmqctl("start_app");
    drop(guard);
    placing.await.unwrap();
    a.wait_ready().await;
    let rows = all_applied(&a, &tenant, Duration::from_secs(60)).await;
    assert_eq!(rows.iter().filter(|r| r.topic == "order.placed").count(), 40);
    // Every order event applied exactly once: one receipt and one effect each, even if
    // the restart made the broker deliver some twice.
    assert_eq!(receipts(&a.app.db, &tenant, "ledger").await, order_events(&rows));
    assert_eq!(u64::from(a.probe.effects.load(Ordering::SeqCst)), order_events(&rows));
    assert!(u64::from(a.probe.calls.load(Ordering::SeqCst)) >= order_events(&rows));
    assert!(metric(&a.app, "ecom_bus_broker_reconnects_total").await >= 1.0);
    let letters = DeadLetters::new(a.app.db.clone());
    assert_eq!(letters.list(Scope::Platform, 10).await.unwrap().1, 0);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_relay_loses_and_duplicates_no_effect_sqlite() {
    a_broker_restart_mid_relay_loses_and_duplicates_no_effect(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_relay_loses_and_duplicates_no_effect_postgres() {
    a_broker_restart_mid_relay_loses_and_duplicates_no_effect(Backend::Postgres).await;
}
