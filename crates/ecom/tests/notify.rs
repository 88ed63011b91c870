//! Notifications: order events become emails, queued with the event's receipt, sent by
//! the dispatcher to a REAL SMTP server on loopback (aiosmtpd, `tools/smtp_sink.py`),
//! retried with backoff when the server says "later", marked failed and shown in the
//! panels when it never takes them; without SMTP they land in the dev mailbox. On
//! SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::smtp::Sink;

use common::{Logged, TestApp, store_with_stock};
use ecom_bus::{Consumer, Event};
use ecom_core::Tenant;
use ecom_services::checkout::{Actor, OrderCommand, PaymentChoice, PlaceOutcome};
use ecom_store::Db;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

/// `name_sqlite` and `name_postgres` for `async fn name(backend: Backend)`.
/// Fast polling and retries.
fn fast(c: &mut ecom::config::Config) {
    c.bus_poll_ms = 10;
    c.bus_backoff_base_ms = 100;
    c.bus_backoff_max_ms = 1_000;
}

fn manual() -> PaymentChoice {
    PaymentChoice { provider: "manual".into(), token: String::new() }
}

async fn place(app: &TestApp, tenant: &Tenant, variant: uuid::Uuid) -> i64 {
    let cart = common::ready_cart(app, tenant, variant, 2).await;
    let PlaceOutcome::Placed { number, .. } = app.checkout.place_order(tenant, cart, None, &manual()).await.unwrap()
    else {
        panic!("not placed")
    };
    number
}

/// The email rows of the log (order events also file in-app items; `tests/inbox.rs`).
async fn log(db: &Db) -> Vec<Logged> {
    common::notification_log(db, 500).await.into_iter().filter(|n| n.channel == "email").collect()
}

/// Waits until `done` holds for the log.
async fn log_until(db: &Db, what: &str, done: impl Fn(&[Logged]) -> bool) -> Vec<Logged> {
    let start = Instant::now();
    loop {
        let rows = log(db).await;
        if done(&rows) {
            return rows;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}: {rows:#?}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

async fn order_total(app: &TestApp, tenant: &Tenant, number: i64) -> String {
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let order = ecom_store::orders::order_by_number(&txn, tenant.id, number).await.unwrap().unwrap();
    txn.commit().await.unwrap();
    ecom_core::Money::new(order.total, tenant.currency).display()
}

fn part<'a>(message: &'a Value, content_type: &str) -> &'a str {
    message["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["content_type"] == content_type)
        .unwrap_or_else(|| panic!("no {content_type} part in {message:#}"))["body"]
        .as_str()
        .unwrap()
}

async fn an_order_confirmation_arrives_over_smtp_as_text_and_html(backend: common::Backend) {
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
    let number = place(&app, &tenant, variant).await;
    let total = order_total(&app, &tenant, number).await;

    let messages = sink.wait_for(2).await;
    let to_shopper = messages.iter().find(|m| m["envelope_to"] == "pat@example.com").expect("a confirmation");
    assert_eq!(to_shopper["from"], "demo <no-reply@localhost>", "the store's name, the platform's address");
    assert_eq!(to_shopper["to"], "pat@example.com");
    assert_eq!(to_shopper["subject"], format!("Order #{number} confirmed — demo"));
    assert_eq!(to_shopper["content_type"], "multipart/alternative");
    let (text, html) = (part(to_shopper, "text/plain"), part(to_shopper, "text/html"));
    for body in [text, html] {
        assert!(body.contains(&format!("#{number}")), "order number in {body}");
        assert!(body.contains(&total), "total {total} in {body}");
        assert!(body.contains("Wool Hat"), "the line in {body}");
        assert!(body.contains("/orders/"), "a link to the order page in {body}");
    }
    assert!(text.contains("2 × Wool Hat") && !text.contains("<td"), "{text}");
    assert!(html.contains("<table") && html.contains("#2f5bd3"), "branded HTML: {html}");

    let to_owner = messages.iter().find(|m| m["envelope_to"] == "owner@demo.test").expect("a new-order email");
    assert_eq!(to_owner["subject"], format!("New order #{number}: {total}"));
    assert!(part(to_owner, "text/plain").contains(&format!("/merchant/orders/{number}")));
    assert!(part(to_owner, "text/html").contains("pat@example.com"));

    // The log: sent once each, with the server's id for the message.
    let rows = log_until(&app.db, "both sent", |r| r.len() == 2 && r.iter().all(|n| n.status == "sent")).await;
    for row in &rows {
        assert_eq!((row.channel.as_str(), row.attempts), ("email", 1));
        assert!(row.provider_id.contains("queued as sink-"), "{}", row.provider_id);
        assert_eq!(row.tenant_id, Some(tenant.id.0));
    }
    let mut templates: Vec<&str> = rows.iter().map(|r| r.template.as_str()).collect();
    templates.sort_unstable();
    assert_eq!(templates, ["new_order", "order_placed"]);
    assert!(ecom_store::mailbox::list_all(&app.db, 10).await.unwrap().is_empty(), "with SMTP, no dev mailbox");

    // Later steps of the order reach the shopper too: shipped, with tracking.
    let staff = Actor::Staff("owner@demo.test".into());
    let order = {
        let txn = app.db.tenant_txn(tenant.id).await.unwrap();
        let o = ecom_store::orders::order_by_number(&txn, tenant.id, number).await.unwrap().unwrap();
        txn.commit().await.unwrap();
        o
    };
    app.checkout.command(&tenant, order.id, OrderCommand::MarkPaid, &staff).await.unwrap();
    app.checkout
        .command(&tenant, order.id, OrderCommand::Ship { carrier: "UPS".into(), tracking: "1Z999AA1".into() }, &staff)
        .await
        .unwrap();
    let messages = sink.wait_for(4).await;
    let subjects: Vec<&str> = messages.iter().map(|m| m["subject"].as_str().unwrap()).collect();
    assert!(subjects.contains(&format!("Payment received for order #{number} — demo").as_str()), "{subjects:?}");
    let shipped = messages
        .iter()
        .find(|m| m["subject"] == format!("Order #{number} is on its way — demo"))
        .unwrap_or_else(|| panic!("no shipping email in {subjects:?}"));
    assert!(part(shipped, "text/plain").contains("1Z999AA1") && part(shipped, "text/html").contains("UPS"));
    app.stop().await;
}
backends!(an_order_confirmation_arrives_over_smtp_as_text_and_html);

async fn a_redelivered_order_event_queues_each_email_once(backend: common::Backend) {
    // No SMTP configured: email goes to the dev mailbox.
    let Some(app) = TestApp::spawn_with(backend, fast).await else { return };
    let (tenant, variant) = store_with_stock(&app, "demo", 10).await;
    let number = place(&app, &tenant, variant).await;
    let rows = log_until(&app.db, "both filed", |r| r.len() == 2 && r.iter().all(|n| n.status == "sent")).await;
    assert!(rows.iter().all(|r| r.provider_id.starts_with("mailbox:")), "{rows:#?}");
    let mails = ecom_store::mailbox::list_all(&app.db, 10).await.unwrap();
    assert_eq!(mails.len(), 2);
    let confirmation = mails.iter().find(|m| m.to == "pat@example.com").unwrap();
    assert_eq!(confirmation.subject, format!("Order #{number} confirmed — demo"));
    assert!(confirmation.body_text.contains(&order_total(&app, &tenant, number).await));

    // The same order.placed event once more (a redelivery after a crash): nothing new.
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let outbox = ecom_store::orders::outbox_of(&txn, tenant.id).await.unwrap();
    txn.commit().await.unwrap();
    let placed = outbox.iter().find(|e| e.topic == "order.placed").unwrap();
    let links = ecom_notify::StoreLinks::new(|t| format!("http://{}.localhost", t.slug.as_str()));
    let consumer = ecom_notify::Notifications::new(app.db.clone(), links);
    for _ in 0..2 {
        consumer.handle(&Event::from_outbox(placed).unwrap()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(log(&app.db).await.len(), 2, "one confirmation and one new-order email, however often delivered");
    assert_eq!(ecom_store::mailbox::list_all(&app.db, 10).await.unwrap().len(), 2);
    app.stop().await;
}
backends!(a_redelivered_order_event_queues_each_email_once);

async fn a_batch_of_events_from_two_stores_queues_each_message_once_and_a_bad_event_fails_alone(
    backend: common::Backend,
) {
    let Some(app) = TestApp::spawn_with(backend, fast).await else { return };
    let (demo, hat) = store_with_stock(&app, "demo", 10).await;
    let (other, other_hat) = store_with_stock(&app, "other", 10).await;
    for _ in 0..3 {
        place(&app, &demo, hat).await;
    }
    place(&app, &other, other_hat).await;
    // Each order: the shopper's confirmation and the owner's new-order email.
    log_until(&app.db, "the live relay's emails", |r| r.len() == 8).await;

    // The same orders' events under new ids (new events, as far as receipts go), in one
    // batch across both stores, with a malformed one of the demo store among them.
    let mut events = Vec::new();
    for tenant in [&demo, &other] {
        let txn = app.db.tenant_txn(tenant.id).await.unwrap();
        let outbox = ecom_store::orders::outbox_of(&txn, tenant.id).await.unwrap();
        txn.commit().await.unwrap();
        for row in outbox.iter().filter(|e| e.topic == "order.placed") {
            let mut event = Event::from_outbox(row).unwrap();
            event.id = uuid::Uuid::now_v7();
            events.push(event);
        }
    }
    assert_eq!(events.len(), 4);
    let mut bad = events[0].clone();
    bad.id = uuid::Uuid::now_v7();
    bad.data = serde_json::json!({ "order": "not an order" });
    events.insert(1, bad);
    let links = ecom_notify::StoreLinks::new(|t| format!("http://{}.localhost", t.slug.as_str()));
    let consumer = ecom_notify::Notifications::new(app.db.clone(), links);
    assert!(consumer.batches());
    let results = consumer.handle_batch(&events).await;
    assert_eq!(results.len(), 5);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.is_err(), i == 1, "event {i}: {r:?}");
    }
    let rows = log_until(&app.db, "the batch's emails", |r| r.len() == 16).await;
    for (i, event) in events.iter().enumerate() {
        let of_event: Vec<_> = rows.iter().filter(|n| n.event_id == Some(event.id)).collect();
        if i == 1 {
            assert!(of_event.is_empty(), "the bad event queued {of_event:#?}");
            continue;
        }
        // Each store's mail is its own.
        let tenant = if event.tenant_id == demo.id.0 { &demo } else { &other };
        let mut recipients: Vec<&str> = of_event.iter().map(|n| n.recipient.as_str()).collect();
        recipients.sort_unstable();
        let owner = format!("owner@{}.test", tenant.slug.as_str());
        assert_eq!(recipients, [owner.as_str(), "pat@example.com"], "event {i}: {of_event:#?}");
        assert!(of_event.iter().all(|n| n.tenant_id == Some(tenant.id.0)), "{of_event:#?}");
    }

    // Delivered again (at least once means maybe twice): nothing new is queued.
    let again = consumer.handle_batch(&events).await;
    assert!(again.iter().enumerate().all(|(i, r)| r.is_err() == (i == 1)), "{again:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(log(&app.db).await.len(), 16);
    app.stop().await;
}
backends!(a_batch_of_events_from_two_stores_queues_each_message_once_and_a_bad_event_fails_alone);

async fn a_server_that_says_later_is_retried_with_backoff_until_it_takes_the_mail(backend: common::Backend) {
    // 451 to the first three transactions.
    let Some(sink) = Sink::start(3) else { return };
    let url = sink.url();
    let Some(app) = TestApp::spawn_with(backend, |c| {
        fast(c);
        c.smtp_url = Some(ecom::config::Secret(url));
        c.notify_max_attempts = 6;
    })
    .await
    else {
        return;
    };
    let (tenant, variant) = store_with_stock(&app, "demo", 10).await;
    let started = Instant::now();
    place(&app, &tenant, variant).await;
    let rows = log_until(&app.db, "both sent", |r| r.len() == 2 && r.iter().all(|n| n.status == "sent")).await;
    let attempts: i32 = rows.iter().map(|r| r.attempts).sum();
    assert_eq!(attempts, 5, "three refusals, then one success each: {rows:#?}");
    assert!(rows.iter().any(|r| r.last_error.contains("451")), "the refusal is kept: {rows:#?}");
    // At least one message waited out two backoffs (≥ 50 ms + ≥ 100 ms, jittered).
    assert!(started.elapsed() >= Duration::from_millis(150), "{:?}", started.elapsed());
    assert_eq!(sink.messages().len(), 2, "each delivered once");
    app.stop().await;
}
backends!(a_server_that_says_later_is_retried_with_backoff_until_it_takes_the_mail);

async fn mail_to_a_dead_server_is_marked_failed_shown_and_retried_from_the_panels(backend: common::Backend) {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let Some(app) = TestApp::spawn_with(backend, |c| {
        fast(c);
        c.smtp_url = Some(ecom::config::Secret(format!("smtp://127.0.0.1:{port}")));
        c.notify_max_attempts = 2;
    })
    .await
    else {
        return;
    };
    let (demo, variant) = store_with_stock(&app, "demo", 10).await;
    let (acme, acme_variant) = store_with_stock(&app, "acme", 10).await;
    place(&app, &demo, variant).await;
    place(&app, &acme, acme_variant).await;
    let rows = log_until(&app.db, "all failed", |r| r.len() == 4 && r.iter().all(|n| n.status == "failed")).await;
    assert!(rows.iter().all(|r| r.attempts == 2 && r.last_error.contains("SMTP")), "{rows:#?}");
    let mine = rows.iter().find(|r| r.tenant_id == Some(demo.id.0) && r.template == "order_placed").unwrap();
    let theirs = rows.iter().find(|r| r.tenant_id == Some(acme.id.0)).unwrap();
    let (mine, theirs) = (mine.id.to_string(), theirs.id.to_string());

    // The admin sees every store's failures.
    app.admin("root@ecom.test").await;
    let admin = app.browser(&[]);
    assert_eq!(admin.get("localhost", "/admin/notifications").await.status, 303, "signed-in admins only");
    admin.login("localhost", "/admin", "root@ecom.test", common::PASSWORD).await;
    let page = admin.get("localhost", "/admin/notifications").await;
    assert_eq!(page.status, 200);
    for text in ["failed", "order_placed", "new_order", "pat@example.com", "demo", "acme", &mine, &theirs] {
        assert!(page.body.contains(text), "{text} missing from the admin log");
    }
    assert!(page.body.contains("Connection refused") || page.body.contains("SMTP"), "the error is shown");

    // A merchant sees their own only, and retries one.
    let merchant = app.browser(&[]);
    merchant.login("demo.localhost", "/merchant", "owner@demo.test", common::PASSWORD).await;
    let page = merchant.get("demo.localhost", "/merchant/notifications").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&mine) && !page.body.contains(&theirs), "a store sees its own messages only");
    let refused = merchant.post("demo.localhost", &format!("/merchant/notifications/{mine}/retry"), &[]).await;
    assert_eq!(refused.status, 403, "no CSRF token");
    let other = merchant
        .submit("demo.localhost", "/merchant/notifications", &format!("/merchant/notifications/{theirs}/retry"), &[])
        .await;
    assert_eq!(other.status, 400, "another store's message");
    let retried = merchant
        .submit("demo.localhost", "/merchant/notifications", &format!("/merchant/notifications/{mine}/retry"), &[])
        .await;
    assert_eq!((retried.status, retried.location()), (303, Some("/merchant/notifications")));
    // Retried: back to pending with its attempts reset, then failed again (still no server).
    let id = uuid::Uuid::parse_str(&mine).unwrap();
    log_until(&app.db, "retried", |r| r.iter().any(|n| n.id == id && n.status == "failed" && n.attempts == 2)).await;
    let audit = merchant.get("demo.localhost", "/merchant/audit").await;
    assert!(audit.body.contains("notification.retry"), "the retry is in the audit log");
    let metrics = reqwest::get(app.url("localhost", "/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("ecom_notifications_failed"), "{metrics}");
    app.stop().await;
}
backends!(mail_to_a_dead_server_is_marked_failed_shown_and_retried_from_the_panels);

/// Password-reset mail goes through the same queue (over SMTP when configured), in the
/// store's branding and, once the store rewords it in the panel, in its words.
async fn account_mail_goes_through_the_queue_to_smtp(backend: common::Backend) {
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
    app.store("demo", "Demo Outfitters").await;
    let b = app.browser(&[]);
    let sent = b.submit("demo.localhost", "/account/forgot", "/account/forgot", &[("email", "pat@example.com")]).await;
    assert_eq!(sent.status, 200);
    let messages = sink.wait_for(1).await;
    assert_eq!(messages[0]["subject"], "Reset your Demo Outfitters password");
    assert_eq!(messages[0]["content_type"], "multipart/alternative");
    let text = messages[0]["parts"][0]["body"].as_str().unwrap();
    let html = messages[0]["parts"][1]["body"].as_str().unwrap();
    assert!(text.contains("/account/reset?token=") && text.contains("within 60 minutes"), "{text}");
    assert!(html.contains("Choose a new password") && html.contains("/account/reset?token="), "{html}");
    let rows = log_until(&app.db, "sent", |r| r.len() == 1 && r[0].status == "sent").await;
    assert_eq!(rows[0].template, "password_reset");

    // The owner rewords it in the panel; the next reset email says so.
    let owner = app.browser(&[]);
    owner.login("demo.localhost", "/merchant", "owner@demo.test", common::PASSWORD).await;
    let editor = "/merchant/settings/notifications/email/password_reset";
    let page = owner.get("demo.localhost", editor).await;
    assert_eq!(page.status, 200);
    let saved = owner
        .submit(
            "demo.localhost",
            editor,
            editor,
            &[
                ("action", "save"),
                ("subject", "New password for {{ store.name }}"),
                ("text", "Hi {{ account.name }}, here you go: {{ link }} ({{ valid_for }})"),
                ("html", ""),
            ],
        )
        .await;
    assert!(saved.status == 303, "{} {}", saved.status, saved.body);
    // Account emails are email only: no SMS version to edit.
    assert_eq!(owner.get("demo.localhost", "/merchant/settings/notifications/sms/password_reset").await.status, 404);
    let sent = b.submit("demo.localhost", "/account/forgot", "/account/forgot", &[("email", "pat@example.com")]).await;
    assert_eq!(sent.status, 200);
    let messages = sink.wait_for(2).await;
    assert_eq!(messages[1]["subject"], "New password for Demo Outfitters");
    let text = messages[1]["parts"][0]["body"].as_str().unwrap_or_else(|| messages[1]["body"].as_str().unwrap());
    assert!(text.starts_with("Hi Pat, here you go: http://demo.localhost") && text.contains("(60 minutes)"), "{text}");
    app.stop().await;
}
backends!(account_mail_goes_through_the_queue_to_smtp);

#[test]
fn a_bad_smtp_url_stops_start_up_naming_the_key_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["smtp://ann:hunter2@mail.example.com:99999", "imap://ann:hunter2@mail.example.com"] {
        let out = Command::new(env!("CARGO_BIN_EXE_ecom"))
            .arg("config")
            .current_dir(dir.path())
            .env("ECOM_SMTP_URL", bad)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad} accepted");
        assert!(stderr.contains("ECOM_SMTP_URL"), "{stderr}");
        assert!(!stderr.contains("hunter2") && !String::from_utf8_lossy(&out.stdout).contains("hunter2"));
    }
    let ok = Command::new(env!("CARGO_BIN_EXE_ecom"))
        .arg("config")
        .current_dir(dir.path())
        .env("ECOM_SMTP_URL", "smtp://ann:hunter2@mail.example.com:587?tls=starttls")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(stdout.contains("smtp_url") && !stdout.contains("hunter2"), "hidden by ecom config: {stdout}");
}

/// A channel that takes batches and panics on its first one.
struct PanicsOnce {
    calls: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl ecom_notify::Channel for PanicsOnce {
    fn kind(&self) -> &'static str {
        "panics-once"
    }

    fn describe(&self) -> String {
        "a test channel".into()
    }

    async fn send(&self, m: &ecom_notify::Outgoing) -> Result<String, ecom_notify::SendError> {
        Ok(format!("ok:{}", m.id))
    }

    fn batches(&self) -> bool {
        true
    }

    async fn send_many(&self, messages: &[ecom_notify::Outgoing]) -> Vec<Result<String, ecom_notify::SendError>> {
        if self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            panic!("a bug in a channel");
        }
        messages.iter().map(|m| Ok(format!("ok:{}", m.id))).collect()
    }
}

/// A lane whose task panics is started again, and the message it held goes out once
/// its lease has run out.
async fn a_lane_that_panics_is_started_again(backend: common::Backend) {
    let Some(app) = TestApp::spawn_with(backend, fast).await else { return };
    let tenant = app.store("demo", "Demo").await;
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let row = ecom_store::notifications::NewNotification {
        tenant: Some(tenant.id),
        channel: "panics-once",
        recipient: "anyone",
        template: "test",
        subject: "Hello",
        body_text: "Hello.",
        ..Default::default()
    };
    let id = ecom_store::notifications::enqueue(&txn, row).await.unwrap();
    txn.commit().await.unwrap();
    let channel = std::sync::Arc::new(PanicsOnce { calls: Default::default() });
    let settings = ecom_notify::DispatchSettings {
        poll: Duration::from_millis(10),
        lease: Duration::from_secs(4),
        ..ecom_notify::DispatchSettings::default()
    };
    let dispatcher = ecom_notify::Dispatcher::new(
        app.db.clone(),
        ecom_notify::Channels::default().with(channel.clone(), 100),
        settings,
    )
    .spawn();
    let start = Instant::now();
    let sent = loop {
        let rows = common::notification_log(&app.db, 50).await;
        if let Some(r) = rows.into_iter().find(|r| r.id == id && r.status == "sent") {
            break r;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the message was never sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(sent.provider_id, format!("ok:{id}"));
    assert_eq!(channel.calls.load(std::sync::atomic::Ordering::SeqCst), 2, "the panic, then the send");
    assert!(start.elapsed() >= Duration::from_secs(3), "taken again only after the lease: {:?}", start.elapsed());
    dispatcher.abort();
    app.stop().await;
}
backends!(a_lane_that_panics_is_started_again);
