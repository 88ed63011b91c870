//! Retention: the pruner deletes old delivered deliveries, receipts, delivered webhook
//! deliveries with their attempts, sent notifications, dev-mailbox messages and
//! idempotency keys older than 24 h — in batches — and keeps everything recent and
//! everything waiting, failed or dead-lettered; `ecom prune` does the same with
//! progress output. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Duration as Days, Utc};
use common::{TestApp, ready_cart, store_with_stock};
use ecom_bus::{Consumer, ConsumerError, Event, Topic};
use ecom_core::Tenant;
use ecom_services::checkout::{PaymentChoice, PlaceOutcome};
use ecom_services::retention::{Retention, RetentionSettings};
use ecom_store::bus::{delivery as bus_delivery, receipt};
use ecom_store::entities::dev_mail;
use ecom_store::idempotency::key;
use ecom_store::notifications::notification;
use ecom_store::webhooks::{attempt, delivery as hook_delivery};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A consumer that always fails: its deliveries end up dead-lettered.
struct Broken;

#[async_trait::async_trait]
impl Consumer for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }
    fn topics(&self) -> &[Topic] {
        &[Topic::OrderPlaced]
    }
    async fn handle(&self, _: &Event) -> Result<(), ConsumerError> {
        Err(ConsumerError::failed("the warehouse is down"))
    }
}

/// A consumer that fails each event's first attempt: its deliveries are done at the
/// second, so (unlike first-time successes, which leave only a receipt) they are kept
/// as `delivered` until retention.
#[derive(Default)]
struct SecondTime {
    seen: std::sync::Mutex<HashSet<Uuid>>,
}

#[async_trait::async_trait]
impl Consumer for SecondTime {
    fn name(&self) -> &'static str {
        "second-time"
    }
    fn topics(&self) -> &[Topic] {
        &[Topic::OrderPlaced]
    }
    async fn handle(&self, event: &Event) -> Result<(), ConsumerError> {
        if self.seen.lock().unwrap().insert(event.id) {
            return Err(ConsumerError::failed("busy; try again"));
        }
        Ok(())
    }
}

async fn place(app: &TestApp, tenant: &Tenant, variant: Uuid) {
    let cart = ready_cart(app, tenant, variant, 1).await;
    let pay = PaymentChoice { provider: "manual".into(), token: String::new() };
    let outcome = app.checkout.place_order(tenant, cart, None, &pay).await.unwrap();
    assert!(matches!(outcome, PlaceOutcome::Placed { .. }));
}

/// Waits until the outbox and the notification queue are both drained.
async fn settled(app: &TestApp) {
    let start = Instant::now();
    loop {
        let txn = app.db.platform_txn().await.unwrap();
        let oldest = ecom_store::bus::oldest_unpublished(&txn).await.unwrap();
        let pending = ecom_store::notifications::count_pending(&txn).await.unwrap();
        txn.commit().await.unwrap();
        if oldest.is_none() && pending == 0 {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the bus or the mail queue did not drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every id in a table, with its status where it has one.
#[derive(Debug, Default, Clone)]
struct Snapshot {
    deliveries: Vec<(Uuid, String)>,
    receipts: Vec<Uuid>,
    hooks: Vec<(Uuid, String)>,
    attempts: Vec<Uuid>,
    notifications: Vec<(Uuid, String)>,
    mailbox: Vec<Uuid>,
    keys: Vec<Uuid>,
    dead_letters: usize,
}

async fn snapshot(app: &TestApp) -> Snapshot {
    let txn = app.db.platform_txn().await.unwrap();
    let s = Snapshot {
        deliveries: bus_delivery::Entity::find()
            .all(&txn)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.id, r.status))
            .collect(),
        receipts: receipt::Entity::find().all(&txn).await.unwrap().into_iter().map(|r| r.id).collect(),
        hooks: hook_delivery::Entity::find().all(&txn).await.unwrap().into_iter().map(|r| (r.id, r.status)).collect(),
        attempts: attempt::Entity::find().all(&txn).await.unwrap().into_iter().map(|r| r.id).collect(),
        notifications: notification::Entity::find()
            .all(&txn)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.id, r.status))
            .collect(),
        mailbox: dev_mail::Entity::find().all(&txn).await.unwrap().into_iter().map(|r| r.id).collect(),
        keys: key::Entity::find().all(&txn).await.unwrap().into_iter().map(|r| r.id).collect(),
        dead_letters: ecom_store::bus::count_dead_letters(&txn, None).await.unwrap() as usize,
    };
    txn.commit().await.unwrap();
    s
}

/// Moves everything that exists now `days` into the past.
async fn age_everything(app: &TestApp, days: i64) {
    let then = Utc::now() - Days::days(days);
    let txn = app.db.platform_txn().await.unwrap();
    bus_delivery::Entity::update_many()
        .col_expr(bus_delivery::Column::DeliveredAt, Expr::value(then))
        .filter(bus_delivery::Column::DeliveredAt.is_not_null())
        .exec(&txn)
        .await
        .unwrap();
    bus_delivery::Entity::update_many()
        .col_expr(bus_delivery::Column::CreatedAt, Expr::value(then))
        .exec(&txn)
        .await
        .unwrap();
    receipt::Entity::update_many().col_expr(receipt::Column::CreatedAt, Expr::value(then)).exec(&txn).await.unwrap();
    hook_delivery::Entity::update_many()
        .col_expr(hook_delivery::Column::DeliveredAt, Expr::value(then))
        .filter(hook_delivery::Column::DeliveredAt.is_not_null())
        .exec(&txn)
        .await
        .unwrap();
    notification::Entity::update_many()
        .col_expr(notification::Column::SentAt, Expr::value(then))
        .filter(notification::Column::SentAt.is_not_null())
        .exec(&txn)
        .await
        .unwrap();
    notification::Entity::update_many()
        .col_expr(notification::Column::CreatedAt, Expr::value(then))
        .exec(&txn)
        .await
        .unwrap();
    dev_mail::Entity::update_many().col_expr(dev_mail::Column::CreatedAt, Expr::value(then)).exec(&txn).await.unwrap();
    key::Entity::update_many().col_expr(key::Column::CreatedAt, Expr::value(then)).exec(&txn).await.unwrap();
    txn.commit().await.unwrap();
}

/// A webhook subscription with one delivered delivery (two attempts) and one that
/// failed for good, recorded through the sender's own lease and record functions.
async fn webhook_rows(app: &TestApp, tenant: &Tenant) {
    use ecom_store::webhooks as hooks;
    let now = Utc::now();
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let sub = hooks::create_subscription(
        &txn,
        tenant.id,
        &hooks::NewSubscription {
            callback_url: "https://erp.example.com/hooks",
            topics: "order.placed",
            secret_sealed: "sealed",
            created_by: "test",
        },
        now,
    )
    .await
    .unwrap();
    for n in 0..2 {
        hooks::add_delivery(&txn, tenant.id, sub.id, Uuid::now_v7(), "order.placed", &format!("{{\"n\":{n}}}"), now)
            .await
            .unwrap();
    }
    txn.commit().await.unwrap();
    let txn = app.db.platform_txn().await.unwrap();
    let claimed = hooks::LEASE.claim(&txn, "test-sender", now, now + Days::minutes(1), 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let refused = hooks::NewAttempt { status_code: Some(500), error: "", latency_ms: 3, response_excerpt: "no" };
    let fine = hooks::NewAttempt { status_code: Some(200), error: "", latency_ms: 3, response_excerpt: "ok" };
    // The first: refused once, then accepted.
    assert!(hooks::record_attempt(&txn, &claimed[0], "test-sender", &refused, false, Some(now), now).await.unwrap());
    txn.commit().await.unwrap();
    let txn = app.db.platform_txn().await.unwrap();
    let again = hooks::LEASE.claim(&txn, "test-sender", now, now + Days::minutes(1), 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert!(hooks::record_attempt(&txn, &again[0], "test-sender", &fine, true, None, now).await.unwrap());
    // The second: given up.
    assert!(hooks::record_attempt(&txn, &claimed[1], "test-sender", &refused, false, None, now).await.unwrap());
    txn.commit().await.unwrap();
}

async fn an_idempotency_key(app: &TestApp, tenant: &Tenant, key: &str) {
    let now = Utc::now();
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let begun = ecom_store::idempotency::begin(&txn, tenant.id, "app", key, "fp", now, now - Days::minutes(1)).await;
    assert!(matches!(begun.unwrap(), ecom_store::idempotency::Begin::Run(_)));
    txn.commit().await.unwrap();
}

fn ids<T: Clone>(rows: &[(Uuid, T)]) -> HashSet<Uuid> {
    rows.iter().map(|(id, _)| *id).collect()
}

async fn old_done_rows_go_and_everything_else_stays(app: TestApp) {
    let (tenant, variant) = store_with_stock(&app, "demo", 20).await;
    place(&app, &tenant, variant).await;
    place(&app, &tenant, variant).await;
    settled(&app).await;
    // (After the orders' events went through: the webhooks consumer would fan those
    // out to the new subscription too.)
    webhook_rows(&app, &tenant).await;
    an_idempotency_key(&app, &tenant, "old-key").await;
    // A failed notification (its channel is not there), kept however old.
    let txn = app.db.platform_txn().await.unwrap();
    let failed = ecom_store::notifications::enqueue(
        &txn,
        ecom_store::notifications::NewNotification {
            tenant: Some(tenant.id),
            channel: "carrier-pigeon",
            recipient: "pat@example.com",
            template: "plain",
            event_id: None,
            subject: "Hi",
            body_text: "Hi",
            body_html: "",
            ..Default::default()
        },
    )
    .await
    .unwrap();
    notification::Entity::update_many()
        .col_expr(notification::Column::Status, Expr::value(ecom_store::notifications::FAILED))
        .filter(notification::Column::Id.eq(failed))
        .exec(&txn)
        .await
        .unwrap();
    txn.commit().await.unwrap();

    let old = snapshot(&app).await;
    assert!(old.deliveries.iter().any(|(_, s)| s == "delivered"), "{old:?}");
    assert!(old.deliveries.iter().any(|(_, s)| s == "dead"), "the broken consumer's deliveries are dead");
    assert!(old.dead_letters >= 2);
    assert!(!old.receipts.is_empty() && !old.mailbox.is_empty() && old.keys.len() == 1);
    assert!(old.notifications.iter().filter(|(_, s)| s == "sent").count() >= 2, "{old:?}");
    assert_eq!(old.attempts.len(), 3);
    age_everything(&app, 40).await;

    // Recent activity, which must stay.
    place(&app, &tenant, variant).await;
    an_idempotency_key(&app, &tenant, "new-key").await;
    settled(&app).await;
    let all = snapshot(&app).await;

    // Small batches, so every part takes several.
    let settings = RetentionSettings { days: 30, batch: 2, pause: Duration::ZERO, ..RetentionSettings::default() };
    let mut heard = Vec::new();
    let totals = Retention::new(app.db.clone(), settings)
        .run_once(|part, total, done| heard.push((part, total, done)))
        .await
        .unwrap();
    let after = snapshot(&app).await;

    // Gone: exactly the old rows that were done with.
    let old_ids = |rows: &[(Uuid, String)], done: &str| -> HashSet<Uuid> {
        rows.iter().filter(|(_, s)| s == done).map(|(id, _)| *id).collect()
    };
    let gone_deliveries = old_ids(&old.deliveries, "delivered");
    let gone_hooks = old_ids(&old.hooks, "delivered");
    let gone_notes = old_ids(&old.notifications, "sent");
    let expect_kept = |now: &[(Uuid, String)], gone: &HashSet<Uuid>| -> HashSet<Uuid> {
        ids(now).difference(gone).copied().collect()
    };
    assert_eq!(ids(&after.deliveries), expect_kept(&all.deliveries, &gone_deliveries));
    assert_eq!(ids(&after.hooks), expect_kept(&all.hooks, &gone_hooks));
    assert_eq!(ids(&after.notifications), expect_kept(&all.notifications, &gone_notes));
    let old_receipts: HashSet<Uuid> = old.receipts.iter().copied().collect();
    let kept_receipts: HashSet<Uuid> = after.receipts.iter().copied().collect();
    assert!(kept_receipts.is_disjoint(&old_receipts), "old receipts of delivered events go");
    assert_eq!(kept_receipts.len(), all.receipts.len() - old.receipts.len(), "recent receipts stay");
    assert!(after.mailbox.iter().all(|id| !old.mailbox.contains(id)));
    assert_eq!(after.mailbox.len(), all.mailbox.len() - old.mailbox.len());
    assert_eq!(after.keys.len(), 1, "the day-old key went, the new one stayed");
    assert!(!after.keys.contains(&old.keys[0]));
    assert_eq!(after.attempts.len(), 1, "the delivered hook's two attempts went with it; the failed one's stayed");

    // Kept however old: dead, failed, and the dead letters.
    assert!(after.deliveries.iter().filter(|(_, s)| s == "dead").count() >= 2);
    assert!(after.hooks.iter().any(|(_, s)| s == "failed"));
    assert!(after.notifications.iter().any(|(id, s)| *id == failed && s == "failed"));
    assert_eq!(after.dead_letters, all.dead_letters);
    // Recent rows are all there.
    assert!(after.deliveries.iter().filter(|(_, s)| s == "delivered").count() >= 1, "{after:?}");
    assert!(after.notifications.iter().any(|(_, s)| s == "sent"));

    // Reported per part, in batches of 2.
    let reported: u64 = totals.iter().map(|(_, n)| n).sum();
    let expected =
        gone_deliveries.len() + old.receipts.len() + gone_hooks.len() + gone_notes.len() + old.mailbox.len() + 1;
    assert_eq!(reported as usize, expected, "{totals:?}");
    assert!(heard.iter().any(|(_, total, done)| !done && *total == 2), "progress after a full batch: {heard:?}");

    // A second pass finds nothing; with 0 days only idempotency keys would go.
    let again = Retention::new(app.db.clone(), RetentionSettings { days: 0, ..RetentionSettings::default() })
        .run_once(|_, _, _| {})
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "days = 0 prunes idempotency keys only: {again:?}");
    assert_eq!(snapshot(&app).await.deliveries.len(), after.deliveries.len());
    app.stop().await;
}

async fn spawn(backend: common::Backend) -> Option<TestApp> {
    TestApp::spawn_with_consumers(
        backend,
        |c| {
            c.bus_poll_ms = 10;
            c.bus_backoff_base_ms = 10;
            c.bus_backoff_max_ms = 20;
            c.bus_max_attempts = 2;
            c.webhook_sender = false;
        },
        |_| vec![Arc::new(Broken) as Arc<dyn Consumer>, Arc::new(SecondTime::default())],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_done_rows_go_and_everything_else_stays_sqlite() {
    if let Some(app) = spawn(common::Backend::Sqlite).await {
        old_done_rows_go_and_everything_else_stays(app).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_done_rows_go_and_everything_else_stays_postgres() {
    if let Some(app) = spawn(common::Backend::Postgres).await {
        old_done_rows_go_and_everything_else_stays(app).await;
    }
}

async fn the_prune_command_reports_progress_and_refuses_while_a_node_prunes(app: TestApp) {
    let (tenant, variant) = store_with_stock(&app, "demo", 20).await;
    for _ in 0..3 {
        place(&app, &tenant, variant).await;
    }
    settled(&app).await;
    age_everything(&app, 40).await;
    let before = snapshot(&app).await;
    let delivered = before.deliveries.iter().filter(|(_, s)| s == "delivered").count();
    assert!(delivered >= 3);

    let prune = |args: &[&str]| {
        let mut cmd = common::ecom_command();
        cmd.env("ECOM_DATABASE_URL", &app.database_url).arg("prune").args(args);
        cmd.output().unwrap()
    };
    // Bad input: refused, nothing deleted.
    let out = prune(&["--days", "forever"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--days"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(snapshot(&app).await.deliveries.len(), before.deliveries.len());

    // Another node holds the job lease: refused with a clear message, nothing deleted.
    let now = Utc::now();
    let txn = app.db.platform_txn().await.unwrap();
    assert!(ecom_store::lease::take_job(&txn, "retention", "other-node", now, now + Days::minutes(5)).await.unwrap());
    txn.commit().await.unwrap();
    let out = prune(&[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another node is pruning"));
    assert_eq!(snapshot(&app).await.deliveries.len(), before.deliveries.len());
    let txn = app.db.platform_txn().await.unwrap();
    ecom_store::lease::release_job(&txn, "retention", "other-node").await.unwrap();
    txn.commit().await.unwrap();

    let out = prune(&["--days", "30"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("retention: 30 days"), "{stdout}");
    assert!(stdout.contains(&format!("{delivered:>10} delivered bus deliveries")), "{stdout}");
    assert!(stdout.contains("sent notifications") && stdout.contains("pruned "), "{stdout}");
    let after = snapshot(&app).await;
    assert!(after.deliveries.iter().all(|(_, s)| s != "delivered"));
    assert!(after.receipts.is_empty() && after.mailbox.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prune_command_reports_progress_and_refuses_while_a_node_prunes_sqlite() {
    if let Some(app) = spawn(common::Backend::Sqlite).await {
        the_prune_command_reports_progress_and_refuses_while_a_node_prunes(app).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prune_command_reports_progress_and_refuses_while_a_node_prunes_postgres() {
    if let Some(app) = spawn(common::Backend::Postgres).await {
        the_prune_command_reports_progress_and_refuses_while_a_node_prunes(app).await;
    }
}
