//! Merchant self-service sign-up on the platform host: the live address check, clear
//! refusals that create nothing, the store live at once, the owner landed in the panel
//! by a one-time link, email confirmation and the getting-started checklist; on SQLite
//! and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Browser, Page, TestApp};
use std::time::{Duration, Instant};

const PASSWORD: &str = "a long enough password";

fn fields<'a>(slug: &'a str, email: &'a str, password: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("store_name", "Acme Shoes"),
        ("slug", slug),
        ("currency", "EUR"),
        ("locale", "de-DE"),
        ("name", "Ada Merchant"),
        ("email", email),
        ("password", password),
    ]
}

async fn sign_up(b: &Browser, f: &[(&str, &str)]) -> Page {
    b.submit("localhost", "/signup", "/signup", f).await
}

async fn store_count(app: &TestApp) -> u64 {
    ecom_store::tenants::count(&app.db).await.unwrap()
}

/// The newest dev-mailbox message to `to` whose subject has `subject`, waiting for it.
async fn mail_to(app: &TestApp, to: &str, subject: &str) -> String {
    let start = Instant::now();
    loop {
        let mails = ecom_store::mailbox::list_all(&app.db, 50).await.unwrap();
        if let Some(m) = mails.iter().find(|m| m.to == to && m.subject.contains(subject)) {
            return m.body_text.clone();
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no mail to {to} about {subject}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn link_in(body: &str, path: &str) -> String {
    let start = body.find("http://").expect("a link");
    let link = body[start..].split_whitespace().next().unwrap();
    assert!(link.contains(path), "{link}");
    link.to_owned()
}

/// The "Go to your store's panel" link of the signed-up page.
fn panel_link(page: &Page) -> String {
    let marker = "id=\"to-panel\" href=\"";
    let start = page.body.find(marker).expect("a link to the panel") + marker.len();
    let end = page.body[start..].find('"').unwrap();
    page.body[start..start + end].replace("&#x2f;", "/").replace("&amp;", "&").replace("&#x3d;", "=")
}

/// The path and query of an absolute link on `host`.
fn path_of(link: &str, host: &str) -> String {
    let rest = link.split_once(host).unwrap().1;
    rest.split_once('/').map(|(_, p)| format!("/{p}")).unwrap()
}

async fn a_merchant_opens_a_store_by_themselves(app: TestApp) {
    app.store("taken", "Taken Store").await;
    let host = "acme-shoes.localhost";
    let b = app.browser(&[host]);

    // The form, on the platform host only.
    let form = b.get("localhost", "/signup").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("Open your store") && form.body.contains(".localhost"));
    assert_eq!(b.get(host, "/signup").await.status, 404);

    // The live check.
    let check = |slug: &str| {
        let b = &b;
        let slug = slug.to_owned();
        async move {
            let p = b.get("localhost", &format!("/signup/slug?slug={slug}")).await;
            assert_eq!(p.status, 200);
            serde_json::from_str::<serde_json::Value>(&p.body).unwrap()
        }
    };
    let free = check("acme-shoes").await;
    assert_eq!(free["available"], true, "{free}");
    assert!(free["message"].as_str().unwrap().contains("acme-shoes.localhost is available"));
    for (slug, why) in [
        ("taken", "taken"),
        ("admin", "reserved"),
        ("big-shit-store", "not allowed"),
        ("a", "2 to 40"),
        ("no_way", "letters a-z"),
    ] {
        let a = check(slug).await;
        assert_eq!(a["available"], false, "{slug}: {a}");
        assert!(a["message"].as_str().unwrap().contains(why), "{slug}: {a}");
    }

    // Refusals: a clear message, the form kept, nothing created.
    let before = store_count(&app).await;
    for (slug, email, password, why) in [
        ("admin", "ada@example.com", PASSWORD, "reserved"),
        ("taken", "ada@example.com", PASSWORD, "taken"),
        ("acme-shoes", "not-an-email", PASSWORD, "email"),
        ("acme-shoes", "ada@example.com", "short", "10"),
    ] {
        let p = sign_up(&b, &fields(slug, email, password)).await;
        assert_eq!(p.status, 422, "{slug}/{email}: {}", p.body);
        assert!(p.body.contains(why), "{why}: {}", p.body);
        assert!(p.body.contains("value=\"Acme Shoes\""), "the form keeps what was typed");
    }
    assert_eq!(store_count(&app).await, before, "a refused sign-up created a store");

    // The sign-up: a page with a one-time link into the new store's panel.
    let done = sign_up(&b, &fields("acme-shoes", "ada@example.com", PASSWORD)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Acme Shoes is open"));
    let welcome = panel_link(&done);
    assert!(
        welcome.starts_with(&format!("http://{host}:")) && welcome.contains("/merchant/welcome?token="),
        "{welcome}"
    );
    let landed = b.get(host, &path_of(&welcome, host)).await;
    assert_eq!(landed.location(), Some("/merchant?welcome=1"));
    let panel = b.get(host, "/merchant?welcome=1").await;
    assert_eq!(panel.status, 200, "{}", panel.body);
    assert!(panel.body.contains("Welcome!") && panel.body.contains("Acme Shoes"));
    assert!(panel.body.contains("0 of 6 done"), "{}", panel.body);
    assert!(panel.body.contains("id=\"step-verify\"") && panel.body.contains("Send the link again"));
    // The link works once.
    let again = b.client.get(&welcome).send().await.unwrap();
    assert_eq!(again.status(), 401);

    // The store is live, in the chosen currency and language.
    let tenant = ecom_store::tenants::find_by_slug(&app.db, "acme-shoes").await.unwrap().unwrap();
    assert_eq!((tenant.currency.code(), tenant.locale.as_str()), ("EUR", "de-DE"));
    assert_eq!(b.get(host, "/").await.status, 200);

    // Confirming the email.
    let body = mail_to(&app, "ada@example.com", "Confirm your email").await;
    let verify = link_in(&body, "/merchant/verify?token=");
    let ok = b.get(host, &path_of(&verify, host)).await;
    assert_eq!(ok.status, 200);
    assert!(ok.body.contains("Email confirmed"));
    let reused = b.get(host, &path_of(&verify, host)).await;
    assert_eq!(reused.status, 400);
    let panel = b.get(host, "/merchant").await;
    assert!(panel.body.contains("1 of 6 done"), "{}", panel.body);
    assert!(!panel.body.contains("Send the link again"));

    // The checklist follows the store: a product and shipping.
    let mut draft = common::product("Trail Runner", "Shoes", &[], &["Blue"], 8900, &tenant);
    draft.variants.truncate(1);
    app.catalog.create_product(&tenant, draft, None).await.unwrap();
    let staff = ecom_services::checkout::Actor::Staff("ada@example.com".into());
    app.checkout.save_shipping(&tenant, "standard", "Standard", "4.90", "", "", "", &staff).await.unwrap();
    let panel = b.get(host, "/merchant").await;
    assert!(panel.body.contains("3 of 6 done"), "{}", panel.body);

    // The address is now taken for the next merchant.
    let taken = check("acme-shoes").await;
    assert_eq!(taken["available"], false, "{taken}");
    assert!(taken["message"].as_str().unwrap().contains("taken"));
    // Sign-ups are rate limited per address: this is the sixth attempt from here.
    let p = sign_up(&b, &fields("acme-boots", "bob@example.com", PASSWORD)).await;
    assert_eq!(p.status, 429);
    assert!(p.headers.get("retry-after").is_some());
    assert!(ecom_store::tenants::find_by_slug(&app.db, "acme-boots").await.unwrap().is_none());
}
both!(a_merchant_opens_a_store_by_themselves);

async fn a_new_owner_can_ask_for_another_confirmation_link(app: TestApp) {
    let host = "fresh.localhost";
    let b = app.browser(&[host]);
    let done = sign_up(&b, &fields("fresh", "ada@example.com", PASSWORD)).await;
    assert_eq!(done.status, 200);
    b.get(host, &path_of(&panel_link(&done), host)).await;
    let sent = b.submit(host, "/merchant", "/merchant/verify/resend", &[]).await;
    assert_eq!(sent.location(), Some("/merchant?sent=1"));
    let start = Instant::now();
    loop {
        let mails = ecom_store::mailbox::list_all(&app.db, 50).await.unwrap();
        if mails.iter().filter(|m| m.subject.contains("Confirm your email")).count() == 2 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the second link was not sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Resending is a staff action: anonymous posts go to sign-in.
    let anon = app.browser(&[host]);
    let p = anon.submit(host, "/merchant/login", "/merchant/verify/resend", &[]).await;
    assert!(p.location().is_some_and(|l| l.contains("/merchant/login")), "{:?} {}", p.location(), p.status);
}
both!(a_new_owner_can_ask_for_another_confirmation_link);
