//! The batched embedded relay: two relays (two "nodes", each with its own connection
//! pool on PostgreSQL) draining one backlog of outbox events deliver each event to
//! each consumer exactly once, attempt no delivery twice, and publish every event.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestApp;
use ecom_bus::{Consumer, ConsumerError, Event, Relay, RelaySettings, Topic};
use ecom_store::Db;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Records which relay handed it which event; its effect is its receipt.
struct Tally {
    name: &'static str,
    db: Db,
    seen: Mutex<HashMap<uuid::Uuid, u32>>,
}

#[async_trait::async_trait]
impl Consumer for Tally {
    fn name(&self) -> &'static str {
        self.name
    }

    fn topics(&self) -> &[Topic] {
        &[Topic::ProductUpdated]
    }

    async fn handle(&self, event: &Event) -> Result<(), ConsumerError> {
        *self.seen.lock().unwrap().entry(event.id).or_default() += 1;
        let Some(txn) = self.begin_once(&self.db, event).await? else { return Ok(()) };
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        Ok(())
    }
}

async fn node_db(app: &TestApp) -> Db {
    match app.backend {
        common::Backend::Postgres => Db::connect(&ecom_store::DbOptions {
            url: app.database_url.clone(),
            max_connections: 6,
            acquire_timeout: Duration::from_secs(10),
        })
        .await
        .unwrap(),
        // One writer: the nodes share the app's single connection.
        common::Backend::Sqlite => app.db.clone(),
    }
}

async fn two_relays_drain_a_backlog_delivering_each_event_once(app: TestApp) {
    const N: usize = 1_000;
    let tenant = app.store("demo", "Demo").await;
    // The backlog, written before any relay runs (the app's own relay is off).
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    for n in 0..N {
        let payload = serde_json::json!({"product_id": uuid::Uuid::now_v7(), "handle": format!("p-{n}"), "title": "P"});
        ecom_store::orders::outbox(&txn, tenant.id, "product.updated", payload).await.unwrap();
    }
    txn.commit().await.unwrap();

    // Two nodes, each with its own instances of the same two consumers (as two
    // processes of one binary would have), small batches so they interleave a lot.
    let mut tallies = Vec::new();
    let mut relays = Vec::new();
    for _ in 0..2 {
        let db = node_db(&app).await;
        let a = Arc::new(Tally { name: "erp", db: db.clone(), seen: Mutex::default() });
        let b = Arc::new(Tally { name: "crm", db: db.clone(), seen: Mutex::default() });
        tallies.push((a.clone(), b.clone()));
        let settings = RelaySettings { poll: Duration::from_millis(5), batch: 50, ..RelaySettings::default() };
        relays.push(Relay::new(db, vec![a as Arc<dyn Consumer>, b], settings).spawn());
    }
    let start = Instant::now();
    loop {
        let txn = app.db.platform_txn().await.unwrap();
        let oldest = ecom_store::bus::oldest_unpublished(&txn).await.unwrap();
        txn.commit().await.unwrap();
        if oldest.is_none() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "the backlog did not drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for r in relays {
        r.abort();
    }

    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let events = ecom_store::orders::outbox_of(&txn, tenant.id).await.unwrap();
    let updated: Vec<_> = events.iter().filter(|e| e.topic == "product.updated").collect();
    assert_eq!(updated.len(), N);
    for consumer in ["erp", "crm"] {
        assert_eq!(ecom_store::bus::receipts(&txn, tenant.id, consumer).await.unwrap(), N as u64, "{consumer}");
    }
    for e in &updated {
        assert!(e.dispatched_at.is_some() && e.published_at.is_some(), "event {} published", e.id);
        // Each delivered at its first attempt, which leaves only the receipts (above).
        let deliveries = ecom_store::bus::deliveries_of(&txn, e.id).await.unwrap();
        assert!(deliveries.is_empty(), "{deliveries:?}");
    }
    txn.commit().await.unwrap();

    // Each consumer was handed each event once, by one node or the other — never by
    // both, never twice — and both nodes did some of the work.
    for pick in [0usize, 1] {
        let mut total: HashMap<uuid::Uuid, u32> = HashMap::new();
        let mut per_node = Vec::new();
        for (a, b) in &tallies {
            let seen = if pick == 0 { a.seen.lock().unwrap().clone() } else { b.seen.lock().unwrap().clone() };
            per_node.push(seen.len());
            for (id, n) in seen {
                *total.entry(id).or_default() += n;
            }
        }
        assert_eq!(total.len(), N);
        assert!(total.values().all(|&n| n == 1), "an event was handed to a consumer twice");
        if app.backend == common::Backend::Postgres {
            assert!(per_node.iter().all(|&n| n > 0), "both nodes delivered: {per_node:?}");
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_drain_a_backlog_delivering_each_event_once_sqlite() {
    if let Some(app) = TestApp::spawn_with(common::Backend::Sqlite, |c| c.bus_relay = false).await {
        two_relays_drain_a_backlog_delivering_each_event_once(app).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_drain_a_backlog_delivering_each_event_once_postgres() {
    if let Some(app) = TestApp::spawn_with(common::Backend::Postgres, |c| c.bus_relay = false).await {
        two_relays_drain_a_backlog_delivering_each_event_once(app).await;
    }
}
