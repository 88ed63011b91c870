//! The notification centre and what shoppers agree to hear: order updates land in the
//! shopper's and the staff's inboxes and reach open server-sent event streams live (on
//! PostgreSQL also a stream on a second node sharing the database); marketing goes
//! only with consent and to a confirmed address, with RFC 8058 one-click unsubscribe
//! headers checked on a message a REAL SMTP server received (aiosmtpd,
//! `tools/smtp_sink.py`); an abandoned cart is reminded once; a back-in-stock request
//! is answered once. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::smtp::Sink;

use common::{Backend, Browser, Logged, PASSWORD, TestApp, store_with_stock};
use ecom_core::{AccountId, Realm, Tenant};
use ecom_services::checkout::{PaymentChoice, PlaceOutcome};
use ecom_store::Db;
use serde_json::Value;
use std::time::{Duration, Instant};

use common::SECRET;

fn fast(c: &mut ecom::config::Config) {
    c.bus_poll_ms = 10;
    c.bus_backoff_base_ms = 100;
    c.bus_backoff_max_ms = 1_000;
}

fn manual() -> PaymentChoice {
    PaymentChoice { provider: "manual".into(), token: String::new() }
}

async fn customer_id(app: &TestApp, tenant: &Tenant, email: &str) -> AccountId {
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let found =
        ecom_store::accounts::find_by_email(&txn, Realm::Customer(tenant.id), &ecom_core::Email::parse(email).unwrap())
            .await
            .unwrap()
            .unwrap();
    txn.commit().await.unwrap();
    found.id
}

async fn log(db: &Db) -> Vec<Logged> {
    common::notification_log(db, 500).await
}

/// An open `text/event-stream` response, read event by event.
struct Stream {
    resp: reqwest::Response,
    buf: String,
}

impl Stream {
    async fn open(browser: &Browser, host: &str, path: &str) -> Stream {
        let resp = browser.client.get(browser.url(host, path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Stream { resp, buf: String::new() }
    }

    /// The next event of type `kind` (others skipped), as (id, data).
    async fn next(&mut self, kind: &str) -> (Option<String>, Value) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = ("message".to_owned(), None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if event == kind {
                    return (id, serde_json::from_str(&data).unwrap());
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no {kind} event within 30 s (buffer: {:?})", self.buf);
            let chunk = tokio::time::timeout(left, self.resp.chunk()).await.expect("stream stalled").unwrap();
            let chunk = chunk.expect("the stream ended");
            self.buf.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
        }
    }
}

/// A second `ecom` node on the same database that serves HTTP only (no relay, no
/// dispatcher): whatever its streams hear was filed by the other node.
struct Node {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start(database_url: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let config = ecom::config::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            database_url: Some(ecom::config::Secret(database_url.to_owned())),
            secret_key: Some(ecom::config::Secret(SECRET.into())),
            bus_relay: false,
            webhook_sender: false,
            ..ecom::config::Config::default()
        };
        let app = ecom::Application::build(&config, false).await.unwrap();
        let addr = app.local_addr();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Node { addr, stop: Some(tx), task: Some(task), _dir: dir }
    }

    fn browser(&self) -> Browser {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .resolve("bell.localhost", self.addr)
            .build()
            .unwrap();
        Browser::new(client, self.addr.port())
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("the node stops although a stream is open")
                .unwrap()
                .unwrap();
        }
    }
}

async fn an_order_reaches_the_shoppers_and_the_staffs_inbox_live(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, fast).await else { return };
    let (tenant, variant) = store_with_stock(&app, "bell", 10).await;
    let pat = customer_id(&app, &tenant, "pat@example.com").await;

    let shopper = app.browser(&["bell.localhost"]);
    assert_eq!(shopper.login("bell.localhost", "/account", "pat@example.com", PASSWORD).await.status, 303);
    let owner = app.browser(&["bell.localhost"]);
    assert_eq!(owner.login("bell.localhost", "/merchant", "owner@bell.test", PASSWORD).await.status, 303);

    // Without a session the stream is not served.
    let anonymous = app.browser(&["bell.localhost"]).get("bell.localhost", "/account/inbox/stream").await;
    assert_eq!(anonymous.status, 303, "sent to sign in");

    let mut shopper_stream = Stream::open(&shopper, "bell.localhost", "/account/inbox/stream").await;
    let mut owner_stream = Stream::open(&owner, "bell.localhost", "/merchant/inbox/stream").await;
    assert_eq!(shopper_stream.next("unread").await.1["unread"], 0);
    assert_eq!(owner_stream.next("unread").await.1["unread"], 0);
    // On PostgreSQL a second node, which sends nothing itself, must hear it too.
    let node = if backend == Backend::Postgres { Some(Node::start(&app.database_url).await) } else { None };
    let mut remote = match &node {
        Some(n) => {
            let b = n.browser();
            assert_eq!(b.login("bell.localhost", "/merchant", "owner@bell.test", PASSWORD).await.status, 303);
            let mut s = Stream::open(&b, "bell.localhost", "/merchant/inbox/stream").await;
            assert_eq!(s.next("unread").await.1["unread"], 0);
            Some((b, s))
        }
        None => None,
    };

    let cart = app.checkout.add_to_cart(&tenant, None, Some(pat), variant, 1).await.unwrap();
    let details = ecom_services::checkout::CheckoutDetails {
        email: "pat@example.com".into(),
        phone: String::new(),
        address: common::address(),
        shipping_code: "standard".into(),
        discount_code: String::new(),
    };
    app.checkout.save_details(&tenant, cart, details).await.unwrap();
    let placed = app.checkout.place_order(&tenant, cart, Some(pat), &manual()).await.unwrap();
    let PlaceOutcome::Placed { number, .. } = placed else { panic!("not placed") };
    assert_eq!(number, 1001);

    let (id, item) = shopper_stream.next("item").await;
    assert!(item["title"].as_str().unwrap().contains("1001"), "{item}");
    assert_eq!(item["link"], "/account/orders/1001");
    assert_eq!(item["unread"], 1);
    assert_eq!(id.as_deref(), item["id"].as_str(), "the event id is the item's, for Last-Event-ID");
    assert_eq!(shopper_stream.next("unread").await.1["unread"], 1);
    let (_, staff_item) = owner_stream.next("item").await;
    assert!(staff_item["title"].as_str().unwrap().contains("1001"), "{staff_item}");
    assert_eq!(staff_item["link"], "/merchant/orders/1001");
    if let Some((_, s)) = remote.as_mut() {
        let (_, heard) = s.next("item").await;
        assert_eq!(heard["id"], staff_item["id"], "the other node's stream heard the same item");
    }

    // The pages: unread marked, links to the order, bell count in the header.
    let page = shopper.get("bell.localhost", "/account/inbox").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("inbox-item unread") && page.body.contains("href=\"/account/orders/1001\""));
    assert!(page.body.contains("class=\"bell has-unread\"") && page.body.contains("data-inbox-stream="), "the bell");
    assert!(page.body.contains("<span class=\"bell-count\" data-unread>1</span>"), "{}", page.body);
    let panel = owner.get("bell.localhost", "/merchant/inbox").await;
    assert!(panel.body.contains("href=\"/merchant/orders/1001\"") && panel.body.contains("New order"));
    // The shopper's mail went as before; another account's item cannot be marked read.
    assert!(log(&app.db).await.iter().any(|n| n.channel == "email" && n.recipient == "pat@example.com"));
    let foreign = staff_item["id"].as_str().unwrap();
    shopper.post("bell.localhost", &format!("/account/inbox/{foreign}/read"), &[("_csrf", &page.csrf())]).await;
    assert!(owner.get("bell.localhost", "/merchant/inbox").await.body.contains("inbox-item unread"));

    // Mark all read: the stream hears the new count; the page shows none unread.
    let done = shopper.post("bell.localhost", "/account/inbox/all/read", &[("_csrf", &page.csrf())]).await;
    assert_eq!(done.status, 303);
    assert_eq!(shopper_stream.next("unread").await.1["unread"], 0);
    assert!(!shopper.get("bell.localhost", "/account/inbox").await.body.contains("inbox-item unread"));
    // Without the CSRF token nothing changes.
    assert_eq!(owner.post("bell.localhost", "/merchant/inbox/all/read", &[]).await.status, 403);

    // The shopper turns in-app order updates off: the next update is email only.
    let prefs = shopper.get("bell.localhost", "/account/notifications").await;
    assert!(prefs.body.contains("Order updates by email always go out"));
    let saved = shopper
        .post("bell.localhost", "/account/notifications", &[("_csrf", &prefs.csrf()), ("pref", "news:email")])
        .await;
    assert_eq!(saved.status, 303);
    let bad = shopper
        .post("bell.localhost", "/account/notifications", &[("_csrf", &prefs.csrf()), ("pref", "news:pigeon")])
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("pref: unknown channel"), "{}", bad.body);
    let before = log(&app.db).await.iter().filter(|n| n.channel == "inapp").count();
    let order_id = {
        let txn = app.db.tenant_txn(tenant.id).await.unwrap();
        let order = ecom_store::orders::order_by_number(&txn, tenant.id, number).await.unwrap().unwrap();
        txn.commit().await.unwrap();
        order.id
    };
    let staff = ecom_services::checkout::Actor::Staff("owner@bell.test".into());
    app.checkout.command(&tenant, order_id, ecom_services::checkout::OrderCommand::MarkPaid, &staff).await.unwrap();
    let start = Instant::now();
    loop {
        let rows = log(&app.db).await;
        if rows.iter().any(|n| n.template == "order_paid" && n.channel == "email") {
            assert_eq!(rows.iter().filter(|n| n.channel == "inapp").count(), before, "no in-app item");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no payment email");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    drop(shopper_stream);
    drop(owner_stream);
    if let Some(node) = node {
        // Shutting down ends open streams instead of waiting for them.
        node.stop().await;
    }
    drop(remote);
    app.stop().await;
}
backends!(an_order_reaches_the_shoppers_and_the_staffs_inbox_live);

// ---- marketing: consent, one-click unsubscribe, abandoned carts ------------------------

fn text_part(m: &Value) -> String {
    m["parts"].as_array().unwrap().iter().find(|p| p["content_type"] == "text/plain").unwrap()["body"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The first `http://…` link in `text` that contains `needle`.
fn link_in(text: &str, needle: &str) -> String {
    text.split_whitespace()
        .find(|w| w.starts_with("http") && w.contains(needle))
        .unwrap_or_else(|| panic!("no {needle} link in {text}"))
        .to_owned()
}

async fn settled(app: &TestApp) {
    common::mail_settled(&app.db).await;
}

async fn marketing_needs_consent_and_unsubscribes_in_one_click(backend: Backend) {
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
    let (tenant, variant) = store_with_stock(&app, "bell", 10).await;
    let job = common::marketing_job(&app);
    let later = || chrono::Utc::now() + chrono::Duration::hours(5);

    // Pat (an account, no consent) leaves a cart: nothing is sent, ever.
    let pat = customer_id(&app, &tenant, "pat@example.com").await;
    app.checkout.add_to_cart(&tenant, None, Some(pat), variant, 1).await.unwrap();
    // A guest's cart that became an order is never reminded.
    let placed_cart = common::ready_cart(&app, &tenant, variant, 1).await;
    app.checkout.place_order(&tenant, placed_cart, None, &manual()).await.unwrap();
    assert_eq!(job.run_once(chrono::Utc::now()).await.unwrap().reminded, 0, "not idle yet");
    assert_eq!(job.run_once(later()).await.unwrap().reminded, 0, "no consent: nothing");

    // Sam signs up with the marketing box ticked: consent recorded, a confirmation link
    // sent; until it is used, marketing email waits.
    let sam = app.browser(&["bell.localhost"]);
    let signup = sam
        .submit(
            "bell.localhost",
            "/account/signup",
            "/account/signup",
            &[("name", "Sam"), ("email", "sam@example.com"), ("password", PASSWORD), ("marketing", "yes")],
        )
        .await;
    assert_eq!(signup.status, 303);
    let prefs = sam.get("bell.localhost", "/account/notifications").await;
    assert!(prefs.body.contains("(sign-up checkbox)"), "consent shown with how it was given");
    assert!(prefs.body.contains("is not confirmed yet"));
    let confirm = sink.wait_for_subject("Confirm your email").await;
    let verify = link_in(&text_part(&confirm), "/account/verify");
    let product = sam.get("bell.localhost", "/products/wool-hat").await;
    assert_eq!(product.status, 200);
    let added = sam
        .client
        .post(sam.url("bell.localhost", "/cart/add"))
        .form(&[("variant", variant.to_string()), ("quantity", "2".into())])
        .send()
        .await
        .unwrap();
    assert!(added.status().is_redirection(), "{}", added.status());
    // Unconfirmed: considered, nothing sent (the in-app item may go: it needs no address).
    let unverified_round = job.run_once(later()).await.unwrap();
    settled(&app).await;
    assert!(
        !log(&app.db).await.iter().any(|n| n.template == "abandoned_cart" && n.channel == "email"),
        "no marketing email to an unconfirmed address"
    );
    assert_eq!(unverified_round.reminded, 1, "the in-app reminder");

    // Sam confirms and leaves another cart (the first one is done with).
    let path = verify.split_once(&format!(":{}", app.addr.port())).unwrap().1;
    assert_eq!(sam.get("bell.localhost", path).await.location(), Some("/account/notifications?verified=1"));
    let sam_id = customer_id(&app, &tenant, "sam@example.com").await;
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let cart = ecom_store::orders::customer_cart(&txn, tenant.id, sam_id.0).await.unwrap().unwrap();
    ecom_store::orders::delete_cart(&txn, tenant.id, cart.id).await.unwrap();
    txn.commit().await.unwrap();
    app.checkout.add_to_cart(&tenant, None, Some(sam_id), variant, 3).await.unwrap();
    assert_eq!(job.run_once(later()).await.unwrap().reminded, 1);
    assert_eq!(job.run_once(later()).await.unwrap().reminded, 0, "once only");
    let reminder = sink.wait_for_subject("in your cart").await;
    assert_eq!(reminder["to"], "sam@example.com");
    let headers = &reminder["headers"];
    let list = headers["List-Unsubscribe"].as_str().unwrap();
    assert_eq!(headers["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click");
    let (https, mailto) = list.split_once(", ").unwrap();
    assert!(https.starts_with(&format!("<http://bell.localhost:{}/unsubscribe/", app.addr.port())), "{list}");
    assert!(mailto.starts_with("<mailto:no-reply@localhost?subject=unsubscribe"), "{list}");
    let text = text_part(&reminder);
    assert!(text.contains("3 × Wool Hat") && text.contains("/cart"), "{text}");
    assert!(
        !sink
            .messages()
            .iter()
            .any(|m| m["to"] == "pat@example.com" && m["subject"].as_str().unwrap().contains("cart"))
    );

    // One click, as a mail provider does it: a POST with no cookie and no CSRF token.
    let unsubscribe = https.trim_start_matches('<').trim_end_matches('>').to_owned();
    let bare = app.browser(&["bell.localhost"]);
    let forged = format!("{}x", unsubscribe);
    let refused = bare.client.post(&forged).body("List-Unsubscribe=One-Click").send().await.unwrap();
    assert_eq!(refused.status(), 404, "a tampered token does nothing");
    let clicked = bare
        .client
        .post(&unsubscribe)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(clicked.status(), 200);
    let prefs = sam.get("bell.localhost", "/account/notifications").await;
    assert!(prefs.body.contains("one-click unsubscribe (List-Unsubscribe-Post)"), "withdrawal recorded with how");
    assert!(!prefs.body.contains("name=\"marketing\" value=\"yes\" checked"));
    // The confirm page (GET) asks first; it never unsubscribes by itself.
    let page = bare.get("bell.localhost", path_of(&unsubscribe, app.addr.port())).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("sam@example.com"));

    // No consent now: the next cart gets nothing.
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let cart = ecom_store::orders::customer_cart(&txn, tenant.id, sam_id.0).await.unwrap().unwrap();
    ecom_store::orders::delete_cart(&txn, tenant.id, cart.id).await.unwrap();
    txn.commit().await.unwrap();
    app.checkout.add_to_cart(&tenant, None, Some(sam_id), variant, 1).await.unwrap();
    assert_eq!(job.run_once(later()).await.unwrap().reminded, 0);
    app.stop().await;
}
backends!(marketing_needs_consent_and_unsubscribes_in_one_click);

fn path_of(url: &str, port: u16) -> &str {
    url.split_once(&format!(":{port}")).unwrap().1
}

// ---- back in stock ---------------------------------------------------------------------

async fn back_in_stock_is_answered_once_per_request(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, fast).await else { return };
    let (tenant, variant) = store_with_stock(&app, "bell", 0).await;
    let job = common::marketing_job(&app);
    let guest = app.browser(&["bell.localhost"]);
    let page = guest.get("bell.localhost", "/products/wool-hat").await;
    assert!(page.body.contains("action=\"/back-in-stock\""), "a sold-out page offers it");
    let ask = |email: &'static str| {
        let guest = &guest;
        async move {
            guest
                .post(
                    "bell.localhost",
                    "/back-in-stock",
                    &[("variant", &variant.to_string()), ("email", email), ("product", "wool-hat")],
                )
                .await
        }
    };
    let bad = ask("not an address").await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("email"), "{}", bad.body);
    let asked = ask("gia@example.com").await;
    assert_eq!(asked.status, 200);
    assert!(asked.body.contains("Check your email"));
    assert!(ask("gia@example.com").await.body.contains("You are on the list"), "asked twice, filed once");
    settled(&app).await;
    let rows = log(&app.db).await;
    let confirm = rows.iter().find(|n| n.template == "back_in_stock_confirm").expect("confirmation queued");
    let link = link_in(&confirm.body.body_text, "/back-in-stock/");
    let path = path_of(&link, app.addr.port()).to_owned();

    // Unconfirmed: stock comes back, nothing is sent.
    app.catalog.adjust_stock(&tenant, &[(variant, 5)]).await.unwrap();
    assert_eq!(job.run_once(chrono::Utc::now()).await.unwrap().restocked, 0, "waits for the confirmation");
    app.catalog.adjust_stock(&tenant, &[(variant, -5)]).await.unwrap();

    let form = guest.get("bell.localhost", &path).await;
    assert!(form.body.contains("Yes, email me"));
    let confirmed = guest.post("bell.localhost", &path, &[("_csrf", &form.csrf())]).await;
    assert_eq!(confirmed.status, 200);
    assert!(confirmed.body.contains("Confirmed"));
    assert_eq!(job.run_once(chrono::Utc::now()).await.unwrap().restocked, 0, "still sold out");

    // 0 → 3 through the merchant API's path: one message, then the request is closed.
    app.catalog.adjust_stock(&tenant, &[(variant, 3)]).await.unwrap();
    assert_eq!(job.run_once(chrono::Utc::now()).await.unwrap().restocked, 1);
    assert_eq!(job.run_once(chrono::Utc::now()).await.unwrap().restocked, 0);
    app.catalog.adjust_stock(&tenant, &[(variant, -3)]).await.unwrap();
    app.catalog.adjust_stock(&tenant, &[(variant, 2)]).await.unwrap();
    assert_eq!(job.run_once(chrono::Utc::now()).await.unwrap().restocked, 0, "one message per request");
    settled(&app).await;
    let sent: Vec<_> = log(&app.db).await.into_iter().filter(|n| n.template == "back_in_stock").collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].recipient, "gia@example.com");
    assert!(sent[0].subject.contains("Wool Hat is back in stock"), "{}", sent[0].subject);
    let headers = ecom_store::notifications::headers_of(&sent[0].body);
    assert!(headers.iter().any(|(k, v)| k == "List-Unsubscribe-Post" && v == "List-Unsubscribe=One-Click"));

    // A new request after selling out again gets its own one message.
    app.catalog.adjust_stock(&tenant, &[(variant, -2)]).await.unwrap();
    let pat = app.browser(&["bell.localhost"]);
    pat.login("bell.localhost", "/account", "pat@example.com", PASSWORD).await;
    let asked = pat.post("bell.localhost", "/back-in-stock", &[("variant", &variant.to_string())]).await;
    assert!(asked.body.contains("We will email you"), "{}", asked.body);
    app.catalog.adjust_stock(&tenant, &[(variant, 1)]).await.unwrap();
    // Pat's address is not confirmed: the email waits (in-app would go if email were off).
    assert_eq!(job.run_once(chrono::Utc::now()).await.unwrap().restocked, 0);
    let pat_id = customer_id(&app, &tenant, "pat@example.com").await;
    let prefs = pat.get("bell.localhost", "/account/notifications").await;
    let saved = pat
        .post(
            "bell.localhost",
            "/account/notifications",
            &[("_csrf", &prefs.csrf()), ("pref", "back_in_stock:inapp"), ("pref", "order_updates:inapp")],
        )
        .await;
    assert_eq!(saved.status, 303);
    assert_eq!(job.run_once(chrono::Utc::now()).await.unwrap().restocked, 1, "in-app only, as chosen");
    settled(&app).await;
    let inbox = pat.get("bell.localhost", "/account/inbox").await;
    assert!(inbox.body.contains("Wool Hat is back in stock"), "{}", inbox.body);
    let _ = pat_id;
    app.stop().await;
}
backends!(back_in_stock_is_answered_once_per_request);

/// In-app items go out a batch at a time, one transaction per store: items for two
/// stores queued together each reach their own inbox, one addressed to no inbox fails
/// alone, and filing the batch again (an attempt whose outcome was lost) files nothing
/// twice.
async fn in_app_items_of_two_stores_are_filed_each_once_in_their_own_inbox(backend: Backend) {
    use ecom_store::inbox::Recipient;
    let Some(app) = TestApp::spawn_with(backend, fast).await else { return };
    let (a, b) = (app.store("north", "North").await, app.store("south", "South").await);
    let (pat, sam) = (Recipient::Customer(uuid::Uuid::now_v7()), Recipient::Customer(uuid::Uuid::now_v7()));
    let queued = [(&a, pat.address(), "North 1"), (&a, pat.address(), "North 2"), (&a, "robot:7".to_owned(), "Nobody")]
        .into_iter()
        .chain([(&b, sam.address(), "South 1"), (&a, pat.address(), "North 3"), (&b, sam.address(), "South 2")]);
    for (store, to, title) in queued {
        let txn = app.db.tenant_txn(store.id).await.unwrap();
        let item = ecom_store::notifications::NewNotification {
            tenant: Some(store.id),
            channel: ecom_notify::INAPP,
            recipient: &to,
            template: "test",
            subject: title,
            body_text: "Something happened.",
            link: "/account",
            ..Default::default()
        };
        ecom_store::notifications::enqueue(&txn, item).await.unwrap();
        txn.commit().await.unwrap();
    }
    let start = Instant::now();
    let rows = loop {
        let rows = log(&app.db).await;
        if rows.len() == 6 && rows.iter().all(|r| r.status != "pending") {
            break rows;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "not all filed: {rows:#?}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    };
    let nobody = rows.iter().find(|r| r.subject == "Nobody").unwrap();
    assert_eq!((nobody.status.as_str(), nobody.attempts), ("failed", 1), "{nobody:#?}");
    assert!(nobody.last_error.contains("is not an inbox"), "{nobody:#?}");
    let filed: Vec<&Logged> = rows.iter().filter(|r| r.subject != "Nobody").collect();
    assert!(filed.iter().all(|r| r.status == "sent" && r.provider_id.starts_with("inbox:")), "{filed:#?}");

    let titles = |store: &Tenant, who: Recipient| {
        let db = app.db.clone();
        let id = store.id;
        async move {
            let txn = db.tenant_txn(id).await.unwrap();
            let items = ecom_store::inbox::list(&txn, id, who, 50).await.unwrap();
            txn.commit().await.unwrap();
            let mut titles: Vec<String> = items.into_iter().map(|i| i.title).collect();
            titles.sort();
            titles
        }
    };
    assert_eq!(titles(&a, pat).await, ["North 1", "North 2", "North 3"]);
    assert_eq!(titles(&b, sam).await, ["South 1", "South 2"]);
    assert!(titles(&b, pat).await.is_empty(), "one store's items stay in it");

    let again: Vec<ecom_notify::Outgoing> = filed
        .iter()
        .map(|r| ecom_notify::Outgoing {
            id: r.id,
            tenant: r.tenant_id.map(ecom_core::TenantId),
            to: r.recipient.clone(),
            subject: r.subject.clone(),
            text: r.body.body_text.clone(),
            link: r.link.clone(),
            ..Default::default()
        })
        .collect();
    let channel = ecom_notify::InAppChannel::new(app.db.clone(), ecom_notify::InboxHub::new());
    let outcomes = ecom_notify::Channel::send_many(&channel, &again).await;
    assert!(outcomes.iter().all(|o| o.as_ref().is_ok_and(|id| id.starts_with("inbox:"))), "{outcomes:?}");
    assert_eq!(titles(&a, pat).await.len(), 3, "nothing filed twice");
    assert_eq!(titles(&b, sam).await.len(), 2, "nothing filed twice");
    app.stop().await;
}
backends!(in_app_items_of_two_stores_are_filed_each_once_in_their_own_inbox);
