//! End-to-end stories of the platform foundation, each run on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{PASSWORD, TestApp};
use ecom_core::{Email, Realm, TenantStatus};
use ecom_store::{accounts, tenants};

async fn operations_endpoints_answer_and_metrics_count_requests(app: TestApp) {
    let b = app.browser(&[]);
    // Any host, even one naming no store.
    assert_eq!(b.get("nope.localhost", "/healthz").await.status, 200);
    assert_eq!(b.get("localhost", "/readyz").await.status, 200);
    app.store("demo", "Demo Outfitters").await;
    let home = b.get("demo.localhost", "/").await;
    assert_eq!(home.status, 200);
    assert!(home.headers.get("x-request-id").is_some(), "every response carries a request id");
    let metrics = b.get("localhost", "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.lines().any(|l| l.starts_with("http_requests_total{")
            && l.contains("route=\"/\"")
            && l.contains("status=\"200\"")),
        "the storefront request is counted: {}",
        metrics.body
    );
    assert!(metrics.body.contains("http_request_duration_seconds_bucket"));
    assert!(metrics.body.contains("db_pool_connections{state=\"idle\"}"));
    app.stop().await;
}
both!(operations_endpoints_answer_and_metrics_count_requests);

async fn hosts_resolve_to_stores_custom_domains_or_a_clear_404(app: TestApp) {
    let demo = app.store("demo", "Demo Outfitters").await;
    // Not primary: a primary domain would send the platform address's pages there.
    tenants::add_domain(&app.db, demo.id, "shop.demo-outfitters.test", false).await.unwrap();
    let b = app.browser(&["shop.demo-outfitters.test"]);

    let home = b.get("demo.localhost", "/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Demo Outfitters"));
    assert!(home.headers.get("content-security-policy").unwrap().to_str().unwrap().contains("frame-ancestors 'none'"));

    let custom = b.get("shop.demo-outfitters.test", "/").await;
    assert_eq!(custom.status, 200);
    assert!(custom.body.contains("Demo Outfitters"));

    let unknown = b.get("nope.localhost", "/").await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("There is no store at this address"));

    let platform = b.get("localhost", "/").await;
    assert_eq!(platform.status, 200);
    assert!(platform.body.contains("ECOM"));

    // Panels only live on their own hosts.
    assert_eq!(b.get("demo.localhost", "/admin/login").await.status, 404);
    assert_eq!(b.get("localhost", "/merchant/login").await.status, 404);
    assert_eq!(b.get("demo.localhost", "/no-such-page").await.status, 404);
    app.stop().await;
}
both!(hosts_resolve_to_stores_custom_domains_or_a_clear_404);

async fn a_suspended_store_shows_a_closed_page(app: TestApp) {
    let demo = app.store("demo", "Demo Outfitters").await;
    assert!(tenants::set_status(&app.db, demo.id, TenantStatus::Suspended).await.unwrap());
    // A fresh app instance has no cached answer; the TTL covers running nodes.
    let b = app.browser(&[]);
    let home = b.get("demo.localhost", "/").await;
    assert_eq!(home.status, 503);
    assert!(home.body.contains("Demo Outfitters is closed"));
    assert_eq!(b.get("demo.localhost", "/account/login").await.status, 503);
    // The merchant can still sign in and sees why.
    assert_eq!(b.login("demo.localhost", "/merchant", "owner@demo.test", PASSWORD).await.status, 303);
    let panel = b.get("demo.localhost", "/merchant").await;
    assert_eq!(panel.status, 200);
    assert!(panel.body.contains("This store is suspended"));
    app.stop().await;
}
both!(a_suspended_store_shows_a_closed_page);

async fn customers_sign_up_sign_in_and_sign_out(app: TestApp) {
    app.store("demo", "Demo Outfitters").await;
    let b = app.browser(&[]);
    let signup = b
        .submit(
            "demo.localhost",
            "/account/signup",
            "/account/signup",
            &[("name", "Ann"), ("email", "Ann@Example.com"), ("password", "a good long password")],
        )
        .await;
    assert_eq!(signup.status, 303, "{}", signup.body);
    let account = b.get("demo.localhost", "/account").await;
    assert_eq!(account.status, 200);
    assert!(account.body.contains("ann@example.com"));

    // The same email again is refused with a clear message.
    let other = app.browser(&[]);
    let again = other
        .submit(
            "demo.localhost",
            "/account/signup",
            "/account/signup",
            &[("email", "ann@example.com"), ("password", "another long password")],
        )
        .await;
    assert_eq!(again.status, 409);
    assert!(again.body.contains("already taken"));
    let weak = other
        .submit(
            "demo.localhost",
            "/account/signup",
            "/account/signup",
            &[("email", "bob@example.com"), ("password", "short")],
        )
        .await;
    assert_eq!(weak.status, 422);
    assert!(weak.body.contains("at least 10 characters"));

    let token = b.get("demo.localhost", "/account").await.csrf();
    let out = b.post("demo.localhost", "/account/logout", &[("_csrf", &token)]).await;
    assert_eq!(out.status, 303);
    let after = b.get("demo.localhost", "/account").await;
    assert_eq!(after.status, 303);
    assert!(after.location().unwrap().starts_with("/account/login"));

    let wrong = b.login("demo.localhost", "/account", "ann@example.com", "not the password").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("do not match"));
    let unknown = b.login("demo.localhost", "/account", "nobody@example.com", "not the password").await;
    assert_eq!(unknown.status, 401);
    assert_eq!(unknown.body.contains("do not match"), wrong.body.contains("do not match"));
    let ok = b.login("demo.localhost", "/account", "ann@example.com", "a good long password").await;
    assert_eq!(ok.status, 303);
    assert_eq!(b.get("demo.localhost", "/account").await.status, 200);
    app.stop().await;
}
both!(customers_sign_up_sign_in_and_sign_out);

async fn the_same_email_in_two_stores_is_two_unrelated_customers(app: TestApp) {
    app.store("demo", "Demo Outfitters").await;
    app.store("acme", "Acme Hardware").await; // both have pat@example.com
    let b = app.browser(&[]);
    let signup = b
        .submit(
            "acme.localhost",
            "/account/signup",
            "/account/signup",
            &[("email", "zoe@example.com"), ("password", "zoe's acme password")],
        )
        .await;
    assert_eq!(signup.status, 303);
    // Zoe has no account at demo; her acme password does not open one there.
    assert_eq!(b.login("demo.localhost", "/account", "zoe@example.com", "zoe's acme password").await.status, 401);
    let demo_signup = b
        .submit(
            "demo.localhost",
            "/account/signup",
            "/account/signup",
            &[("email", "zoe@example.com"), ("password", "zoe's demo password")],
        )
        .await;
    assert_eq!(demo_signup.status, 303, "the same email signs up separately at another store");
    app.stop().await;
}
both!(the_same_email_in_two_stores_is_two_unrelated_customers);

async fn a_session_from_one_store_is_anonymous_on_another(app: TestApp) {
    app.store("demo", "Demo Outfitters").await;
    app.store("acme", "Acme Hardware").await;
    let b = app.browser(&[]);
    let login = b.login("demo.localhost", "/account", "pat@example.com", PASSWORD).await;
    assert_eq!(login.status, 303);
    let cookie = login
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("ecom_customer="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    // Carry the cookie by hand to the other store's host (a browser would not).
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve("acme.localhost", app.addr)
        .build()
        .unwrap();
    let resp = raw.get(app.url("acme.localhost", "/account")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(resp.status(), 303, "store B treats store A's session as anonymous");
    let home =
        raw.get(app.url("acme.localhost", "/")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("Sign in"));
    // And on its own store it is a session.
    let raw_demo = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve("demo.localhost", app.addr)
        .build()
        .unwrap();
    let own = raw_demo.get(app.url("demo.localhost", "/account")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(own.status(), 200);

    // A merchant session does not open another store's panel either.
    assert_eq!(b.login("demo.localhost", "/merchant", "owner@demo.test", PASSWORD).await.status, 303);
    assert_eq!(b.get("demo.localhost", "/merchant").await.status, 200);
    let staff_cookie = b.client.get(app.url("demo.localhost", "/merchant")).send().await.unwrap();
    assert_eq!(staff_cookie.status(), 200);
    assert_eq!(b.login("acme.localhost", "/merchant", "owner@demo.test", PASSWORD).await.status, 401);
    app.stop().await;
}
both!(a_session_from_one_store_is_anonymous_on_another);

async fn merchants_and_admins_sign_in_to_their_panels(app: TestApp) {
    app.store("demo", "Demo Outfitters").await;
    app.admin("root@ecom.test").await;
    let b = app.browser(&[]);
    let panel = b.get("demo.localhost", "/merchant").await;
    assert_eq!(panel.status, 303);
    assert_eq!(panel.location(), Some("/merchant/login?next=%2Fmerchant"));
    assert_eq!(b.login("demo.localhost", "/merchant", "owner@demo.test", PASSWORD).await.status, 303);
    let panel = b.get("demo.localhost", "/merchant").await;
    assert!(panel.body.contains("Demo Outfitters") && panel.body.contains("owner@demo.test"));

    assert_eq!(b.get("localhost", "/admin").await.status, 303);
    // A store's owner is not a platform admin.
    assert_eq!(b.login("localhost", "/admin", "owner@demo.test", PASSWORD).await.status, 401);
    let login = b.login("localhost", "/admin", "root@ecom.test", PASSWORD).await;
    assert_eq!(login.status, 303);
    let admin = b.get("localhost", "/admin").await;
    assert_eq!(admin.status, 200);
    assert!(admin.body.contains("Demo Outfitters"));
    let token = admin.csrf();
    assert_eq!(b.post("localhost", "/admin/logout", &[("_csrf", &token)]).await.status, 303);
    assert_eq!(b.get("localhost", "/admin").await.status, 303);
    app.stop().await;
}
both!(merchants_and_admins_sign_in_to_their_panels);

async fn changing_the_password_signs_out_other_devices(app: TestApp) {
    app.store("demo", "Demo Outfitters").await;
    let phone = app.browser(&[]);
    let laptop = app.browser(&[]);
    assert_eq!(phone.login("demo.localhost", "/account", "pat@example.com", PASSWORD).await.status, 303);
    assert_eq!(laptop.login("demo.localhost", "/account", "pat@example.com", PASSWORD).await.status, 303);
    let wrong = laptop
        .submit(
            "demo.localhost",
            "/account/password",
            "/account/password",
            &[("current", "wrong password"), ("new", "a brand new password")],
        )
        .await;
    assert_eq!(wrong.status, 401);
    let changed = laptop
        .submit(
            "demo.localhost",
            "/account/password",
            "/account/password",
            &[("current", PASSWORD), ("new", "a brand new password")],
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert!(changed.body.contains("Your password was changed"));
    assert_eq!(laptop.get("demo.localhost", "/account").await.status, 200, "this device stays signed in");
    assert_eq!(phone.get("demo.localhost", "/account").await.status, 303, "the other device is signed out");
    assert_eq!(phone.login("demo.localhost", "/account", "pat@example.com", PASSWORD).await.status, 401);
    assert_eq!(phone.login("demo.localhost", "/account", "pat@example.com", "a brand new password").await.status, 303);
    app.stop().await;
}
both!(changing_the_password_signs_out_other_devices);

async fn a_password_reset_link_is_emailed_and_works_once(app: TestApp) {
    app.store("demo", "Demo Outfitters").await;
    app.admin("root@ecom.test").await;
    let b = app.browser(&[]);
    let sent = b.submit("demo.localhost", "/account/forgot", "/account/forgot", &[("email", "pat@example.com")]).await;
    assert_eq!(sent.status, 200);
    assert!(sent.body.contains("If an account exists"));
    // An unknown email gets the same answer and no mail.
    let unknown =
        b.submit("demo.localhost", "/account/forgot", "/account/forgot", &[("email", "ghost@example.com")]).await;
    assert!(unknown.body.contains("If an account exists"));

    // The admin reads the dev mailbox (once the dispatcher has filed the mail).
    common::mail_settled(&app.db).await;
    assert_eq!(b.login("localhost", "/admin", "root@ecom.test", PASSWORD).await.status, 303);
    let mut mailbox = b.get("localhost", "/admin/mailbox").await;
    mailbox.body = mailbox.body.replace("&#x2f;", "/");
    assert!(mailbox.body.contains("Reset your Demo Outfitters password"));
    assert!(!mailbox.body.contains("ghost@example.com"));
    let marker = "/account/reset?token=";
    let start = mailbox.body.find(marker).expect("reset link in the mail") + marker.len();
    let token = &mailbox.body[start..start + 64];

    let form = b.get("demo.localhost", &format!("/account/reset?token={token}")).await;
    assert_eq!(form.status, 200);
    let done = b
        .submit(
            "demo.localhost",
            &format!("/account/reset?token={token}"),
            "/account/reset",
            &[("token", token), ("password", "reset password 123")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(b.get("demo.localhost", "/account").await.status, 200, "signed in after the reset");
    // The link works once.
    assert_eq!(b.get("demo.localhost", &format!("/account/reset?token={token}")).await.status, 410);
    let csrf = b.get("demo.localhost", "/account/forgot").await.csrf();
    let replay = b
        .post(
            "demo.localhost",
            "/account/reset",
            &[("token", token), ("password", "another password 1"), ("_csrf", &csrf)],
        )
        .await;
    assert_eq!(replay.status, 410);
    let fresh = app.browser(&[]);
    assert_eq!(fresh.login("demo.localhost", "/account", "pat@example.com", "reset password 123").await.status, 303);
    // A token for one store is nothing at another.
    app.store("acme", "Acme Hardware").await;
    assert_eq!(fresh.get("acme.localhost", &format!("/account/reset?token={token}")).await.status, 410);
    app.stop().await;
}
both!(a_password_reset_link_is_emailed_and_works_once);

async fn forms_without_a_valid_csrf_token_are_refused(app: TestApp) {
    app.store("demo", "Demo Outfitters").await;
    let b = app.browser(&[]);
    let _ = b.get("demo.localhost", "/account/login").await; // gets the CSRF cookie
    let no_token =
        b.post("demo.localhost", "/account/login", &[("email", "pat@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(no_token.status, 403);
    let bad_token = b
        .post(
            "demo.localhost",
            "/account/login",
            &[("email", "pat@example.com"), ("password", PASSWORD), ("_csrf", &"0".repeat(64))],
        )
        .await;
    assert_eq!(bad_token.status, 403);
    // A token minted for another host does not work here.
    let acme_token = b.get("acme.localhost", "/healthz").await; // no form; fetch demo's form on another client instead
    assert_eq!(acme_token.status, 200);
    // A cross-site form post is refused even with a valid token.
    let token = b.get("demo.localhost", "/account/login").await.csrf();
    let cross = b
        .client
        .post(app.url("demo.localhost", "/account/login"))
        .header("origin", "http://evil.example")
        .form(&[("email", "pat@example.com"), ("password", PASSWORD), ("_csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    // And the genuine form works.
    assert_eq!(b.login("demo.localhost", "/account", "pat@example.com", PASSWORD).await.status, 303);
    app.stop().await;
}
both!(forms_without_a_valid_csrf_token_are_refused);

async fn sign_in_is_rate_limited_per_account_with_a_clear_wait(app: TestApp) {
    app.store("demo", "Demo Outfitters").await;
    let b = app.browser(&[]);
    for _ in 0..5 {
        assert_eq!(b.login("demo.localhost", "/account", "pat@example.com", "wrong password!").await.status, 401);
    }
    let limited = b.login("demo.localhost", "/account", "pat@example.com", PASSWORD).await;
    assert_eq!(limited.status, 429);
    assert!(limited.body.contains("Try again in"), "{}", limited.body);
    let retry: u64 = limited.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    // Another account from the same address is not locked out by this one.
    app.accounts
        .create(
            Realm::Customer(tenants::find_by_slug(&app.db, "demo").await.unwrap().unwrap().id),
            &Email::parse("sam@example.com").unwrap(),
            "Sam",
            &ecom_core::NewPassword::parse(PASSWORD).unwrap(),
            ecom_core::StaffRole::Staff,
        )
        .await
        .unwrap();
    assert_eq!(b.login("demo.localhost", "/account", "sam@example.com", PASSWORD).await.status, 303);
    // Password reset requests are limited too.
    for _ in 0..3 {
        assert_eq!(
            b.submit("demo.localhost", "/account/forgot", "/account/forgot", &[("email", "sam@example.com")])
                .await
                .status,
            200
        );
    }
    assert_eq!(
        b.submit("demo.localhost", "/account/forgot", "/account/forgot", &[("email", "sam@example.com")]).await.status,
        429
    );
    app.stop().await;
}
both!(sign_in_is_rate_limited_per_account_with_a_clear_wait);

async fn repositories_never_return_another_tenants_rows(app: TestApp) {
    let demo = app.store("demo", "Demo Outfitters").await;
    let acme = app.store("acme", "Acme Hardware").await;
    let pat = Email::parse("pat@example.com").unwrap();
    let demo_txn = app.db.tenant_txn(demo.id).await.unwrap();
    let demo_pat = accounts::find_by_email(&demo_txn, Realm::Customer(demo.id), &pat).await.unwrap().unwrap();
    let demo_staff = accounts::list_staff(&demo_txn, demo.id).await.unwrap();
    demo_txn.commit().await.unwrap();
    assert_eq!(demo_staff.len(), 1);
    assert_eq!(demo_staff[0].email, "owner@demo.test");

    // Looking up demo's customer by id in acme's realm finds nothing.
    let acme_txn = app.db.tenant_txn(acme.id).await.unwrap();
    assert!(accounts::find_by_id(&acme_txn, Realm::Customer(acme.id), demo_pat.id).await.unwrap().is_none());
    let acme_pat = accounts::find_by_email(&acme_txn, Realm::Customer(acme.id), &pat).await.unwrap().unwrap();
    assert_ne!(acme_pat.id, demo_pat.id);
    // Even a query for demo's tenant inside acme's transaction sees nothing on
    // PostgreSQL: row-level security follows the transaction's tenant, not the filter.
    let cross = accounts::find_by_id(&acme_txn, Realm::Customer(demo.id), demo_pat.id).await.unwrap();
    if app.backend == common::Backend::Postgres {
        assert!(cross.is_none(), "RLS hides demo's rows inside acme's transaction");
    }
    let staff = accounts::list_staff(&acme_txn, acme.id).await.unwrap();
    acme_txn.commit().await.unwrap();
    assert_eq!(staff.iter().map(|s| s.email.as_str()).collect::<Vec<_>>(), ["owner@acme.test"]);
    app.stop().await;
}
both!(repositories_never_return_another_tenants_rows);

/// PostgreSQL only: the database itself refuses to show tenant rows to a query that
/// did not set a tenant, even a hand-written one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rows_are_invisible_without_tenant_context() {
    let Some(app) = TestApp::spawn(common::Backend::Postgres).await else {
        return;
    };
    let demo = app.store("demo", "Demo Outfitters").await;
    app.store("acme", "Acme Hardware").await;
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE ecom_app").execute(&mut *tx).await.unwrap();
    for table in ecom_store::TENANT_TABLES {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table} shows rows without a tenant");
    }
    sqlx::query("SELECT set_config('ecom.tenant_id', $1, true)")
        .bind(demo.id.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM customers").fetch_one(&mut *tx).await.unwrap();
    assert_eq!(n, 1, "only demo's customer");
    // Writing a row for another tenant is refused too.
    let other = uuid::Uuid::now_v7();
    let insert = sqlx::query("INSERT INTO dev_mailbox (id, tenant_id, to_addr, subject, body_text, created_at) VALUES ($1, $2, 'x@y.z', 's', 'b', now())")
        .bind(other)
        .bind(uuid::Uuid::now_v7())
        .execute(&mut *tx)
        .await;
    assert!(insert.is_err(), "RLS WITH CHECK refuses rows for another tenant");
    tx.rollback().await.unwrap();
    pool.close().await;
    app.stop().await;
}

/// The super-admin's store list: search and status filter, 30-day orders and sales,
/// suspend and reopen (audited in the store's log and the operator log).
async fn operators_find_and_suspend_stores_in_the_admin_panel(app: TestApp) {
    let (shoes, variant) = common::store_with_stock(&app, "shoes", 10).await;
    app.store("hats", "Hat Hut").await;
    let cart = common::ready_cart(&app, &shoes, variant, 2).await;
    let choice =
        ecom_services::checkout::PaymentChoice { provider: "test_card".into(), token: "4242424242424242".into() };
    app.checkout.place_order(&shoes, cart, None, &choice).await.unwrap();
    app.admin("root@platform.test").await;
    let b = app.browser(&["shoes.localhost"]);
    assert_eq!(b.login("localhost", "/admin", "root@platform.test", PASSWORD).await.status, 303);

    let all = b.get("localhost", "/admin/stores").await;
    assert_eq!(all.status, 200);
    assert!(all.body.contains("2 stores"), "{}", all.body);
    let found = b.get("localhost", "/admin/stores?q=HAT").await;
    assert!(found.body.contains("Hat Hut") && !found.body.contains(">shoes<"), "{}", found.body);
    let shoes_row = b.get("localhost", "/admin/stores?q=shoes").await;
    // 2 × 25.00 + 5.00 shipping + 6.25 % tax on both = 58.44.
    assert!(shoes_row.body.contains(">1</td>") && shoes_row.body.contains("$58.44"), "{}", shoes_row.body);
    assert_eq!(b.get("localhost", "/admin/stores?status=bogus").await.status, 400);

    let suspend = b
        .submit(
            "localhost",
            "/admin/stores?q=shoes",
            "/admin/stores/shoes/status",
            &[("status", "suspended"), ("reason", "unpaid invoice")],
        )
        .await;
    assert_eq!(suspend.status, 303, "{}", suspend.body);
    let suspended = b.get("localhost", "/admin/stores?status=suspended").await;
    assert!(suspended.body.contains(">shoes<") && !suspended.body.contains("Hat Hut"), "{}", suspended.body);
    let log = b.get("localhost", "/admin/audit").await;
    assert!(
        log.body.contains("store.suspended")
            && log.body.contains("unpaid invoice")
            && log.body.contains("operator root@platform.test"),
        "{}",
        log.body
    );
    let store_log = ecom_services::audit::recent(&app.db, shoes.id, 10).await.unwrap();
    assert!(store_log.iter().any(|a| a.action == "store.suspended"), "the merchant sees it too");
    assert_eq!(b.get("shoes.localhost", "/").await.status, 503, "the storefront is closed");
    let missing = b.submit("localhost", "/admin/stores", "/admin/stores/nope/status", &[("status", "active")]).await;
    assert_eq!(missing.status, 404);
    let reopen = b.submit("localhost", "/admin/stores", "/admin/stores/shoes/status", &[("status", "active")]).await;
    assert_eq!(reopen.status, 303);
    assert_eq!(b.get("shoes.localhost", "/").await.status, 200);
}
both!(operators_find_and_suspend_stores_in_the_admin_panel);
