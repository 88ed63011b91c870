//! The embedded bus: outbox relay, retries with backoff, dead letters, idempotent
//! consumers, concurrent relays and metrics, against the real app on SQLite and
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::probe::Probe;

use common::{TestApp, ready_cart, store_with_stock};
use ecom_bus::{Activity, Consumer, ConsumerError, DeadLetters, Event, Relay, RelaySettings, Scope, Topic};
use ecom_core::Tenant;
use ecom_services::checkout::{Actor, OrderCommand, PaymentChoice, PlaceOutcome};
use ecom_store::Db;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

fn card() -> PaymentChoice {
    PaymentChoice { provider: "test_card".into(), token: "4242 4242 4242 4242".into() }
}

fn manual() -> PaymentChoice {
    PaymentChoice { provider: "manual".into(), token: String::new() }
}

/// Fast retries for tests.
fn fast(c: &mut ecom::config::Config) {
    c.bus_poll_ms = 10;
    c.bus_backoff_base_ms = 60;
    c.bus_backoff_max_ms = 1_000;
    c.bus_max_attempts = 3;
}

async fn place(app: &TestApp, tenant: &Tenant, variant: uuid::Uuid, pay: &PaymentChoice) -> i64 {
    let cart = ready_cart(app, tenant, variant, 1).await;
    let PlaceOutcome::Placed { number, .. } = app.checkout.place_order(tenant, cart, None, pay).await.unwrap() else {
        panic!("not placed")
    };
    number
}

/// Waits until every outbox event is published (delivered or dead-lettered everywhere).
/// The app with one probe consumer (besides the activity one), fast bus timings.
async fn with_probe(
    backend: common::Backend,
    name: &'static str,
    fails: u32,
    always: bool,
) -> Option<(TestApp, Arc<Probe>)> {
    let probe = std::sync::OnceLock::<Arc<Probe>>::new();
    let app = TestApp::spawn_with_consumers(backend, fast, |db| {
        let p = Probe::new(name, db, fails, always);
        let _ = probe.set(p.clone());
        vec![p as Arc<dyn Consumer>]
    })
    .await?;
    Some((app, probe.get()?.clone()))
}

async fn settled(db: &Db) {
    let start = Instant::now();
    loop {
        let txn = db.platform_txn().await.unwrap();
        let oldest = ecom_store::bus::oldest_unpublished(&txn).await.unwrap();
        txn.commit().await.unwrap();
        if oldest.is_none() {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the outbox did not drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn receipts(db: &Db, tenant: &Tenant, consumer: &str) -> u64 {
    let txn = db.tenant_txn(tenant.id).await.unwrap();
    let n = ecom_store::bus::receipts(&txn, tenant.id, consumer).await.unwrap();
    txn.commit().await.unwrap();
    n
}

async fn activity(db: &Db, tenant: &Tenant, topic: &str) -> i64 {
    let txn = db.tenant_txn(tenant.id).await.unwrap();
    let rows = ecom_store::bus::activity(&txn, tenant.id, "2000-01-01").await.unwrap();
    txn.commit().await.unwrap();
    rows.into_iter().filter(|(_, t, _)| t == topic).map(|(_, _, n)| n).sum()
}

async fn outbox(db: &Db, tenant: &Tenant) -> Vec<ecom_store::bus::OutboxRow> {
    let txn = db.tenant_txn(tenant.id).await.unwrap();
    let rows = ecom_store::orders::outbox_of(&txn, tenant.id).await.unwrap();
    txn.commit().await.unwrap();
    rows
}

async fn every_placed_order_is_delivered_exactly_once(app: TestApp) {
    let (tenant, variant) = store_with_stock(&app, "demo", 100).await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (app_checkout, tenant) = (app.checkout.clone(), tenant.clone());
        let cart = ready_cart(&app, &tenant, variant, 1).await;
        let pay = if i % 2 == 0 { card() } else { manual() };
        tasks.push(tokio::spawn(async move {
            app_checkout.place_order(&tenant, cart, None, &pay).await.unwrap_or_else(|e| panic!("checkout {i}: {e:?}"))
        }));
    }
    for t in tasks {
        assert!(matches!(t.await.unwrap(), PlaceOutcome::Placed { .. }));
    }
    let order = app.checkout.order(&tenant, 1001).await.unwrap().unwrap();
    let staff = Actor::Staff("owner@demo.test".into());
    app.checkout.command(&tenant, order.id, OrderCommand::Cancel { restock: true }, &staff).await.ok();
    // Let the test gateway's webhooks land, then the relay drain.
    tokio::time::sleep(Duration::from_millis(300)).await;
    settled(&app.db).await;

    let events = outbox(&app.db, &tenant).await;
    for e in &events {
        let topic = Topic::parse(&e.topic).expect("every topic checkout writes is in the catalogue");
        let envelope = Event::from_outbox(e).unwrap();
        assert_eq!((envelope.topic, envelope.version, envelope.tenant_id), (topic, 1, tenant.id.0));
        if Topic::ORDERS.contains(&topic) {
            envelope.order().unwrap();
        }
        assert!(e.published_at.is_some() && e.dispatched_at.is_some());
    }
    let placed = events.iter().filter(|e| e.topic == "order.placed").count();
    assert_eq!(placed, 12);
    assert!(events.iter().any(|e| e.topic == "order.paid"), "card payments publish order.paid");
    // The activity consumer counted each event exactly once.
    assert_eq!(activity(&app.db, &tenant, "order.placed").await, 12);
    assert_eq!(receipts(&app.db, &tenant, Activity::NAME).await, events.len() as u64);
    // A redelivery (say, after a crash between the effect and the delivery record)
    // changes nothing.
    let again = Activity::new(app.db.clone());
    again.handle(&Event::from_outbox(&events[0]).unwrap()).await.unwrap();
    assert_eq!(activity(&app.db, &tenant, "order.placed").await, 12);
    app.stop().await;
}
both!(every_placed_order_is_delivered_exactly_once);

async fn a_flaky_consumer_is_retried_with_backoff_and_applies_once(backend: common::Backend) {
    let Some((app, probe)) = with_probe(backend, "flaky", 2, false).await else { return };
    let (tenant, variant) = store_with_stock(&app, "demo", 10).await;
    place(&app, &tenant, variant, &manual()).await;
    settled(&app.db).await;
    assert_eq!(probe.calls.load(Ordering::SeqCst), 3, "failed twice, then succeeded");
    assert_eq!(probe.effects.load(Ordering::SeqCst), 1);
    assert_eq!(receipts(&app.db, &tenant, "flaky").await, 1);
    let at = probe.attempts_at.lock().unwrap().clone();
    // Backoff: about 60 ms, then about 120 ms (each minus up to half).
    assert!(at[1] - at[0] >= Duration::from_millis(30), "{:?}", at[1] - at[0]);
    assert!(at[2] - at[1] >= Duration::from_millis(60), "{:?}", at[2] - at[1]);
    let events = outbox(&app.db, &tenant).await;
    let placed = events.iter().find(|e| e.topic == "order.placed").unwrap();
    let txn = app.db.platform_txn().await.unwrap();
    let deliveries = ecom_store::bus::deliveries_of(&txn, placed.id).await.unwrap();
    txn.commit().await.unwrap();
    let flaky = deliveries.iter().find(|d| d.consumer == "flaky").unwrap();
    assert_eq!((flaky.status.as_str(), flaky.attempts), ("delivered", 3));
    assert_eq!(flaky.last_error, "temporarily unavailable");
    // Done at the first attempt: nothing left but the receipt (not held back nor re-run).
    assert!(deliveries.iter().all(|d| d.consumer != Activity::NAME), "{deliveries:?}");
    assert_eq!(receipts(&app.db, &tenant, Activity::NAME).await, events.len() as u64, "each event applied once");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_consumer_is_retried_with_backoff_and_applies_once_sqlite() {
    a_flaky_consumer_is_retried_with_backoff_and_applies_once(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_consumer_is_retried_with_backoff_and_applies_once_postgres() {
    a_flaky_consumer_is_retried_with_backoff_and_applies_once(common::Backend::Postgres).await;
}

async fn a_failing_consumer_is_dead_lettered_and_retried_from_there(backend: common::Backend) {
    let Some((app, probe)) = with_probe(backend, "warehouse", 0, true).await else { return };
    let (tenant, variant) = store_with_stock(&app, "demo", 10).await;
    let (other, other_variant) = store_with_stock(&app, "acme", 10).await;
    place(&app, &tenant, variant, &manual()).await;
    place(&app, &tenant, variant, &manual()).await;
    place(&app, &other, other_variant, &manual()).await;
    settled(&app.db).await;

    assert_eq!(probe.calls.load(Ordering::SeqCst), 9, "3 events × 3 attempts");
    assert_eq!(probe.effects.load(Ordering::SeqCst), 0);
    // The other consumer of the same events was not affected.
    assert_eq!(activity(&app.db, &tenant, "order.placed").await, 2);
    assert_eq!(activity(&app.db, &other, "order.placed").await, 1);

    let letters = DeadLetters::new(app.db.clone());
    let (all, total) = letters.list(Scope::Platform, 50).await.unwrap();
    assert_eq!((all.len(), total), (3, 3));
    let (mine, total) = letters.list(Scope::Store(tenant.id), 50).await.unwrap();
    assert_eq!((mine.len(), total), (2, 2));
    let letter = &mine[0];
    assert_eq!((letter.consumer.as_str(), letter.topic.as_str(), letter.attempts), ("warehouse", "order.placed", 3));
    assert_eq!(letter.error, "warehouse unreachable");
    assert!(letter.payload["order_id"].is_string(), "{}", letter.payload);

    // /metrics shows the bus.
    let metrics = reqwest::get(app.url("localhost", "/metrics")).await.unwrap().text().await.unwrap();
    for name in [
        "ecom_outbox_lag_seconds",
        "ecom_bus_dead_letters",
        "ecom_bus_delivered_total",
        "ecom_bus_retried_total",
        "ecom_bus_dead_lettered_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }

    // A store cannot retry or discard another store's dead letters.
    let theirs = &all.iter().find(|l| l.tenant_id == other.id.0).unwrap().id;
    assert!(!letters.retry(Scope::Store(tenant.id), *theirs).await.unwrap());
    assert!(!letters.discard(Scope::Store(tenant.id), *theirs).await.unwrap());

    // Fixed: a retry from the dead letters delivers it, once.
    probe.broken.store(false, Ordering::SeqCst);
    assert!(letters.retry(Scope::Store(tenant.id), letter.id).await.unwrap());
    assert!(!letters.retry(Scope::Store(tenant.id), letter.id).await.unwrap(), "gone from the dead letters");
    settled(&app.db).await;
    assert_eq!(probe.effects.load(Ordering::SeqCst), 1);
    assert_eq!(receipts(&app.db, &tenant, "warehouse").await, 1);
    // Discarded: gone, and never delivered.
    assert!(letters.discard(Scope::Platform, *theirs).await.unwrap());
    let (left, total) = letters.list(Scope::Platform, 50).await.unwrap();
    assert_eq!((left.len(), total), (1, 1));
    assert_eq!(left[0].id, mine[1].id);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(probe.effects.load(Ordering::SeqCst), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_consumer_is_dead_lettered_and_retried_from_there_sqlite() {
    a_failing_consumer_is_dead_lettered_and_retried_from_there(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_consumer_is_dead_lettered_and_retried_from_there_postgres() {
    a_failing_consumer_is_dead_lettered_and_retried_from_there(common::Backend::Postgres).await;
}

async fn concurrent_relays_deliver_each_event_once(backend: common::Backend) {
    let Some((app, probe)) = with_probe(backend, "counter", 0, false).await else { return };
    // Two more relays running the same consumers as the app's own relay: on
    // PostgreSQL each on its own connection pool, like another `ecom` process; SQLite
    // has one writer, so they share the app's.
    let mut relays = Vec::new();
    for _ in 0..2 {
        let db = match backend {
            common::Backend::Postgres => Db::connect(&ecom_store::DbOptions {
                url: app.database_url.clone(),
                max_connections: 4,
                acquire_timeout: Duration::from_secs(5),
            })
            .await
            .unwrap(),
            common::Backend::Sqlite => app.db.clone(),
        };
        let consumers: Vec<Arc<dyn Consumer>> = vec![Arc::new(Activity::new(db.clone())), probe.clone()];
        let settings = RelaySettings { poll: Duration::from_millis(5), batch: 8, ..RelaySettings::default() };
        relays.push(Relay::new(db, consumers, settings).spawn());
    }
    let (tenant, variant) = store_with_stock(&app, "demo", 100).await;
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let (checkout, tenant) = (app.checkout.clone(), tenant.clone());
        let cart = ready_cart(&app, &tenant, variant, 1).await;
        tasks.push(tokio::spawn(async move { checkout.place_order(&tenant, cart, None, &manual()).await.unwrap() }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    settled(&app.db).await;
    for r in relays {
        r.abort();
    }
    assert_eq!(receipts(&app.db, &tenant, "counter").await, 30);
    assert_eq!(probe.effects.load(Ordering::SeqCst), 30);
    assert_eq!(probe.calls.load(Ordering::SeqCst), 30, "no delivery was attempted twice");
    // The activity consumer takes every event: the orders and the set-up's product
    // and customer events.
    let all = outbox(&app.db, &tenant).await.len();
    assert_eq!(receipts(&app.db, &tenant, Activity::NAME).await, all as u64);
    assert_eq!(activity(&app.db, &tenant, "order.placed").await, 30);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_relays_deliver_each_event_once_sqlite() {
    concurrent_relays_deliver_each_event_once(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_relays_deliver_each_event_once_postgres() {
    concurrent_relays_deliver_each_event_once(common::Backend::Postgres).await;
}

async fn the_panels_list_retry_and_discard_dead_letters(backend: common::Backend) {
    let Some((app, probe)) = with_probe(backend, "warehouse", 0, true).await else { return };
    let (demo, variant) = store_with_stock(&app, "demo", 10).await;
    let (acme, acme_variant) = store_with_stock(&app, "acme", 10).await;
    place(&app, &demo, variant, &manual()).await;
    place(&app, &acme, acme_variant, &manual()).await;
    settled(&app.db).await;
    let letters = DeadLetters::new(app.db.clone());
    let (mine, _) = letters.list(Scope::Store(demo.id), 10).await.unwrap();
    let (theirs, _) = letters.list(Scope::Store(acme.id), 10).await.unwrap();
    let (mine, theirs) = (mine[0].id.to_string(), theirs[0].id.to_string());

    app.admin("root@ecom.test").await;
    let admin = app.browser(&[]);
    assert_eq!(admin.get("localhost", "/admin/dead-letters").await.status, 303, "signed-in admins only");
    admin.login("localhost", "/admin", "root@ecom.test", common::PASSWORD).await;
    let page = admin.get("localhost", "/admin/dead-letters").await;
    assert_eq!(page.status, 200);
    for text in ["warehouse unreachable", "order.placed", "demo", "acme", &mine, &theirs, "order_id"] {
        assert!(page.body.contains(text), "{text} missing from the admin page");
    }

    let merchant = app.browser(&[]);
    merchant.login("demo.localhost", "/merchant", "owner@demo.test", common::PASSWORD).await;
    let page = merchant.get("demo.localhost", "/merchant/dead-letters").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&mine) && !page.body.contains(&theirs), "a store sees its own dead letters only");
    assert!(page.body.contains("order.placed") && page.body.contains("warehouse unreachable"));
    // Without the CSRF token: refused.
    let refused = merchant.post("demo.localhost", &format!("/merchant/dead-letters/{mine}/retry"), &[]).await;
    assert_eq!(refused.status, 403);
    // Another store's dead letter: not found in this store.
    let other = merchant
        .submit("demo.localhost", "/merchant/dead-letters", &format!("/merchant/dead-letters/{theirs}/discard"), &[])
        .await;
    assert_eq!(other.status, 400);
    // Retry from the merchant panel once the consumer is fixed: delivered.
    probe.broken.store(false, Ordering::SeqCst);
    let retried = merchant
        .submit("demo.localhost", "/merchant/dead-letters", &format!("/merchant/dead-letters/{mine}/retry"), &[])
        .await;
    assert_eq!((retried.status, retried.location()), (303, Some("/merchant/dead-letters")));
    settled(&app.db).await;
    assert_eq!(receipts(&app.db, &demo, "warehouse").await, 1);
    // Discard from the admin panel.
    let discarded =
        admin.submit("localhost", "/admin/dead-letters", &format!("/admin/dead-letters/{theirs}/discard"), &[]).await;
    assert_eq!(discarded.status, 303);
    let page = admin.get("localhost", "/admin/dead-letters").await;
    assert!(page.body.contains("No dead letters"), "{}", page.body);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panels_list_retry_and_discard_dead_letters_sqlite() {
    the_panels_list_retry_and_discard_dead_letters(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panels_list_retry_and_discard_dead_letters_postgres() {
    the_panels_list_retry_and_discard_dead_letters(common::Backend::Postgres).await;
}

/// Applies its effect, then (the first time) hangs before returning, like a process
/// killed between the consumer's commit and the relay's record of the delivery.
struct CommitsThenHangs {
    db: Db,
    calls: AtomicU32,
}

#[async_trait::async_trait]
impl Consumer for CommitsThenHangs {
    fn name(&self) -> &'static str {
        "ledger"
    }

    fn topics(&self) -> &[Topic] {
        &[Topic::OrderPlaced]
    }

    async fn handle(&self, event: &Event) -> Result<(), ConsumerError> {
        let first = self.calls.fetch_add(1, Ordering::SeqCst) == 0;
        if let Some(txn) = self.begin_once(&self.db, event).await? {
            let day = event.occurred_at.format("%Y-%m-%d").to_string();
            ecom_store::bus::add_activity(&txn, event.tenant(), &day, "ledger", 1).await?;
            txn.commit().await.map_err(ecom_store::StoreError::from)?;
        }
        if first {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Ok(())
    }
}

async fn a_relay_that_dies_mid_delivery_is_taken_over_without_a_second_effect(app: TestApp) {
    // The app's own relay is off (ECOM_BUS_RELAY=false, below); two relays with a short
    // lease play two nodes.
    let consumer = Arc::new(CommitsThenHangs { db: app.db.clone(), calls: AtomicU32::new(0) });
    let settings =
        RelaySettings { poll: Duration::from_millis(10), lease: Duration::from_millis(300), ..Default::default() };
    let (tenant, variant) = store_with_stock(&app, "demo", 10).await;
    place(&app, &tenant, variant, &manual()).await;
    let first = Relay::new(app.db.clone(), vec![consumer.clone()], settings.clone()).spawn();
    let start = Instant::now();
    while consumer.calls.load(Ordering::SeqCst) == 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "never delivered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    first.abort(); // Dies after the effect committed, before recording the delivery.
    let _ = first.await;
    assert_eq!(activity(&app.db, &tenant, "ledger").await, 1);
    let second = Relay::new(app.db.clone(), vec![consumer.clone()], settings).spawn();
    settled(&app.db).await;
    second.abort();
    assert_eq!(consumer.calls.load(Ordering::SeqCst), 2, "redelivered once the lease ran out");
    assert_eq!(activity(&app.db, &tenant, "ledger").await, 1, "the receipt kept the effect single");
    assert_eq!(receipts(&app.db, &tenant, "ledger").await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_dies_mid_delivery_is_taken_over_without_a_second_effect_sqlite() {
    if let Some(app) = TestApp::spawn_with(common::Backend::Sqlite, |c| c.bus_relay = false).await {
        a_relay_that_dies_mid_delivery_is_taken_over_without_a_second_effect(app).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_dies_mid_delivery_is_taken_over_without_a_second_effect_postgres() {
    if let Some(app) = TestApp::spawn_with(common::Backend::Postgres, |c| c.bus_relay = false).await {
        a_relay_that_dies_mid_delivery_is_taken_over_without_a_second_effect(app).await;
    }
}

/// Counts what it is handed; fails while `fails` > 0.
struct Tally {
    name: &'static str,
    seen: AtomicU32,
    fails: AtomicU32,
}

impl Tally {
    fn new(name: &'static str, fails: u32) -> Arc<Self> {
        Arc::new(Self { name, seen: AtomicU32::new(0), fails: AtomicU32::new(fails) })
    }
}

#[async_trait::async_trait]
impl Consumer for Tally {
    fn name(&self) -> &'static str {
        self.name
    }
    fn topics(&self) -> &[Topic] {
        &[Topic::InventoryLow]
    }
    async fn handle(&self, _event: &Event) -> Result<(), ConsumerError> {
        if self.fails.load(Ordering::SeqCst) > 0 {
            self.fails.fetch_sub(1, Ordering::SeqCst);
            return Err(ConsumerError::failed("not yet"));
        }
        self.seen.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Rows in `bus_deliveries`, whatever their status.
async fn deliveries(db: &Db) -> i64 {
    use sea_orm::ConnectionTrait;
    let txn = db.platform_txn().await.unwrap();
    let row = txn
        .query_one_raw(sea_orm::Statement::from_string(
            txn.get_database_backend(),
            "SELECT COUNT(*) AS n FROM bus_deliveries",
        ))
        .await
        .unwrap()
        .unwrap();
    txn.commit().await.unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// A delivery row is written only for what did not succeed at once: 120 events to
/// three consumers that always succeed leave `bus_deliveries` empty after every
/// round, yet each consumer saw each event once and every event is published; a
/// fourth consumer that fails an event's first attempt gets a row for that event
/// alone, retried from there.
async fn first_time_successes_write_no_delivery_rows(backend: common::Backend) {
    const EVENTS: usize = 120;
    let Some(app) = TestApp::spawn_with(backend, |c| c.bus_relay = false).await else { return };
    let tenant = app.store("demo", "Demo").await;
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    for _ in 0..EVENTS {
        ecom_store::orders::outbox(&txn, tenant.id, "inventory.low", serde_json::json!({})).await.unwrap();
    }
    txn.commit().await.unwrap();
    let tallies: Vec<Arc<Tally>> = ["t0", "t1", "t2"].into_iter().map(|name| Tally::new(name, 0)).collect();
    let settings = RelaySettings { batch: 8, ..RelaySettings::default() };
    let consumers = tallies.iter().map(|t| t.clone() as Arc<dyn Consumer>).collect();
    let relay = Relay::new(app.db.clone(), consumers, settings.clone());
    let mut rounds = 0;
    loop {
        let round = relay.run_once().await.unwrap();
        if round == ecom_bus::Round::default() {
            break;
        }
        rounds += 1;
        assert_eq!(deliveries(&app.db).await, 0, "round {rounds}: a delivery row was written");
        assert!(rounds < 100, "the outbox did not drain");
    }
    for t in &tallies {
        assert_eq!(t.seen.load(Ordering::SeqCst), EVENTS as u32, "{} saw each event once", t.name);
    }
    let txn = app.db.platform_txn().await.unwrap();
    assert_eq!(ecom_store::bus::oldest_unpublished(&txn).await.unwrap(), None, "every event published");
    txn.commit().await.unwrap();

    // One more event, and a consumer that fails its first attempt.
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let event = ecom_store::orders::outbox(&txn, tenant.id, "inventory.low", serde_json::json!({})).await.unwrap();
    txn.commit().await.unwrap();
    let flaky = Tally::new("flaky", 1);
    let mut consumers: Vec<Arc<dyn Consumer>> = tallies.iter().map(|t| t.clone() as Arc<dyn Consumer>).collect();
    consumers.push(flaky.clone());
    let settings =
        RelaySettings { backoff_base: Duration::from_millis(20), backoff_max: Duration::from_millis(40), ..settings };
    let relay = Relay::new(app.db.clone(), consumers, settings);
    let first = relay.run_once().await.unwrap();
    assert_eq!((first.dispatched, first.delivered, first.retried), (1, 3, 1));
    let txn = app.db.platform_txn().await.unwrap();
    let rows = ecom_store::bus::deliveries_of(&txn, event).await.unwrap();
    let row = ecom_store::bus::event(&txn, event).await.unwrap().unwrap();
    txn.commit().await.unwrap();
    assert_eq!(rows.len(), 1, "only the failed delivery has a row: {rows:?}");
    assert_eq!((rows[0].consumer.as_str(), rows[0].status.as_str(), rows[0].attempts), ("flaky", "pending", 1));
    assert!(rows[0].claimed_until.is_none(), "its lease is given back");
    assert!(row.dispatched_at.is_some() && row.published_at.is_none(), "fanned out, not published yet");
    let start = Instant::now();
    while flaky.seen.load(Ordering::SeqCst) == 0 {
        relay.run_once().await.unwrap();
        assert!(start.elapsed() < Duration::from_secs(10), "the retry never came");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    settled(&app.db).await;
    let txn = app.db.platform_txn().await.unwrap();
    let rows = ecom_store::bus::deliveries_of(&txn, event).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!((rows[0].status.as_str(), rows[0].attempts), ("delivered", 2), "kept with its attempts");
    for t in &tallies {
        assert_eq!(t.seen.load(Ordering::SeqCst), EVENTS as u32 + 1, "{} saw the new event once", t.name);
    }
    app.stop().await;
}
backends!(first_time_successes_write_no_delivery_rows);

/// The relay's cursor: a pick of new events starts after the last event leased, and
/// from the beginning again once a pick comes back short, so an event whose
/// transaction committed after later ones (its time is older) is still taken — one
/// round later than in time order, not never.
async fn an_event_committed_late_is_still_taken(backend: common::Backend) {
    let Some(app) = TestApp::spawn_with(backend, |c| c.bus_relay = false).await else { return };
    let tenant = app.store("demo", "Demo").await;
    let write = |created_at: Option<chrono::DateTime<chrono::Utc>>| {
        let (db, tenant) = (app.db.clone(), tenant.id);
        async move {
            use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
            let txn = db.tenant_txn(tenant).await.unwrap();
            let id = ecom_store::orders::outbox(&txn, tenant, "inventory.low", serde_json::json!({})).await.unwrap();
            if let Some(at) = created_at {
                ecom_store::entities::outbox_event::Entity::update_many()
                    .col_expr(ecom_store::entities::outbox_event::Column::CreatedAt, Expr::value(at))
                    .filter(ecom_store::entities::outbox_event::Column::Id.eq(id))
                    .exec(&txn)
                    .await
                    .unwrap();
            }
            txn.commit().await.unwrap();
            id
        }
    };
    let tally = Tally::new("t0", 0);
    let settings = RelaySettings { batch: 8, ..RelaySettings::default() };
    let relay = Relay::new(app.db.clone(), vec![tally.clone() as Arc<dyn Consumer>], settings);
    // The store's own events first.
    while relay.run_once().await.unwrap().dispatched > 0 {}
    for _ in 0..20 {
        write(None).await;
    }
    assert_eq!(relay.run_once().await.unwrap().dispatched, 8);
    let late = write(Some(chrono::Utc::now() - chrono::Duration::hours(1))).await;
    let published = |id| {
        let db = app.db.clone();
        async move {
            let txn = db.platform_txn().await.unwrap();
            let row = ecom_store::bus::event(&txn, id).await.unwrap().unwrap();
            txn.commit().await.unwrap();
            row.published_at.is_some()
        }
    };
    assert_eq!(relay.run_once().await.unwrap().dispatched, 8, "the next 8 after the cursor");
    assert!(!published(late).await, "the cursor is past the late event's time");
    assert_eq!(relay.run_once().await.unwrap().dispatched, 4, "the last 4: a short pick");
    assert_eq!(relay.run_once().await.unwrap().dispatched, 1, "from the beginning again: the late one");
    assert!(published(late).await);
    assert_eq!(tally.seen.load(Ordering::SeqCst), 21);
    app.stop().await;
}
backends!(an_event_committed_late_is_still_taken);
