//! Staff: invitations by email, accepting them, roles (owner, admin, staff) and
//! per-area permissions checked on every panel page and action and in the merchant
//! API; removing members ends their sessions; the last owner stays. SQLite and
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Browser, PASSWORD, Page, TestApp};
use ecom_core::{Realm, Tenant};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use std::time::{Duration, Instant};

const HOST: &str = "acme.localhost";
const OWNER: &str = "owner@acme.test";
const NEW_PASSWORD: &str = "a long new password";

/// The newest dev-mailbox message to `to` whose subject has `subject`, waiting for it.
async fn mail_to(app: &TestApp, to: &str, subject: &str) -> String {
    let start = Instant::now();
    loop {
        let mails = ecom_store::mailbox::list_all(&app.db, 100).await.unwrap();
        if let Some(m) = mails.iter().find(|m| m.to == to && m.subject.contains(subject)) {
            return m.body_text.clone();
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no mail to {to} about {subject}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The path and query of the accept link in an invitation email.
fn accept_path(body: &str) -> String {
    let start = body.find("http://").expect("a link");
    let link = body[start..].split_whitespace().next().unwrap();
    let path = link.split_once(HOST).unwrap().1.split_once('/').unwrap().1;
    assert!(path.starts_with("merchant/invite?token="), "{link}");
    format!("/{path}")
}

async fn owner(app: &TestApp) -> (Tenant, Browser) {
    let tenant = app.store("acme", "Acme").await;
    let b = app.browser(&[]);
    assert_eq!(b.login(HOST, "/merchant", OWNER, PASSWORD).await.status, 303);
    (tenant, b)
}

async fn invite(b: &Browser, email: &str, role: &str, areas: &[&str]) -> Page {
    let mut fields = vec![("email", email), ("role", role)];
    fields.extend(areas.iter().map(|a| ("area", *a)));
    b.submit(HOST, "/merchant/settings/staff/invite", "/merchant/settings/staff/invite", &fields).await
}

/// Invites `email` and accepts as a new person: returns their signed-in browser.
async fn join(app: &TestApp, owner: &Browser, email: &str, role: &str, areas: &[&str]) -> Browser {
    let sent = invite(owner, email, role, areas).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let path = accept_path(&mail_to(app, email, "Join the Acme team").await);
    let b = app.browser(&[]);
    let form = b.get(HOST, &path).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let token = path.split_once("token=").unwrap().1;
    let accepted = b
        .submit(
            HOST,
            &path,
            "/merchant/invite",
            &[("token", token), ("name", "New Person"), ("password", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(accepted.status, 303, "{}", accepted.body);
    assert_eq!(accepted.location(), Some("/merchant?joined=1"));
    b
}

async fn pending_invites(app: &TestApp, tenant: &Tenant) -> usize {
    app.accounts.team(tenant.id).await.unwrap().invitations.len()
}

async fn audit_actions(app: &TestApp, tenant: &Tenant) -> Vec<(String, String, String)> {
    ecom_services::audit::recent(&app.db, tenant.id, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.actor, a.action, a.target))
        .collect()
}

async fn an_invited_person_accepts_and_signs_in(app: TestApp) {
    let (tenant, owner) = owner(&app).await;
    let team = owner.get(HOST, "/merchant/settings/staff").await;
    assert_eq!(team.status, 200);
    assert!(team.body.contains(OWNER) && team.body.contains("No pending invitations"));
    let form = owner.get(HOST, "/merchant/settings/staff/invite").await;
    assert!(form.body.contains("name=\"area\" value=\"orders\"") && form.body.contains("value=\"owner\""));

    let sent = invite(&owner, " Ann@Example.com ", "staff", &["orders", "customers"]).await;
    assert_eq!((sent.status, sent.location()), (303, Some("/merchant/settings/staff?done=invited")));
    let listed = owner.get(HOST, "/merchant/settings/staff?done=invited").await;
    assert!(listed.body.contains("Invitation sent.") && listed.body.contains("ann@example.com"), "{}", listed.body);
    common::mail_settled(&app.db).await;
    let mail = mail_to(&app, "ann@example.com", "Join the Acme team").await;
    assert!(mail.contains("Orders, Customers") && mail.contains("7 days"), "{mail}");
    let path = accept_path(&mail);
    let token = path.split_once("token=").unwrap().1.to_owned();

    // The accept page, then a bad password first: nothing is made.
    let b = app.browser(&[]);
    let page = b.get(HOST, &path).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("ann@example.com") && page.body.contains("Choose a password"));
    let short =
        b.submit(HOST, &path, "/merchant/invite", &[("token", &token), ("name", "Ann"), ("password", "short")]).await;
    assert_eq!(short.status, 422);
    assert!(short.body.contains("at least 10 characters"), "{}", short.body);
    assert_eq!(pending_invites(&app, &tenant).await, 1);

    let ok = b
        .submit(HOST, &path, "/merchant/invite", &[("token", &token), ("name", "Ann"), ("password", NEW_PASSWORD)])
        .await;
    assert_eq!((ok.status, ok.location()), (303, Some("/merchant?joined=1")));
    let home = b.get(HOST, "/merchant?joined=1").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Welcome to the team, Ann"), "{}", home.body);
    assert_eq!(pending_invites(&app, &tenant).await, 0);
    assert_eq!(ecom_services::staff::seats_used(&app.db, tenant.id).await.unwrap(), 2);

    // The link works once.
    let again = app.browser(&[]);
    assert_eq!(again.get(HOST, &path).await.status, 410);
    let reused = again
        .submit(
            HOST,
            "/merchant/login",
            "/merchant/invite",
            &[("token", &token), ("name", "X"), ("password", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(reused.status, 410, "{}", reused.body);
    assert!(reused.body.contains("expired, was revoked or was already used"));

    // She signs in with the password she chose.
    let later = app.browser(&[]);
    let signed = later.login(HOST, "/merchant", "ann@example.com", NEW_PASSWORD).await;
    assert_eq!(signed.status, 303);
    assert_eq!(later.get(HOST, "/merchant/orders").await.status, 200);

    let log = audit_actions(&app, &tenant).await;
    assert!(log.contains(&(format!("staff {OWNER}"), "staff.invite".into(), "ann@example.com".into())), "{log:?}");
    assert!(
        log.contains(&("staff ann@example.com".into(), "staff.accept".into(), "ann@example.com".into())),
        "{log:?}"
    );
    app.stop().await;
}
both!(an_invited_person_accepts_and_signs_in);

/// Moves every invitation of the store into the past.
async fn expire_invitations(app: &TestApp, tenant: &Tenant) {
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let stmt = Query::update()
        .table(Alias::new("staff_invitations"))
        .value(Alias::new("expires_at"), chrono::Utc::now() - chrono::Duration::hours(1))
        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant.id.0))
        .to_owned();
    txn.execute(&stmt).await.unwrap();
    txn.commit().await.unwrap();
}

async fn expired_revoked_and_resent_links_are_refused(app: TestApp) {
    let (tenant, owner) = owner(&app).await;
    assert_eq!(invite(&owner, "bob@example.com", "admin", &[]).await.status, 303);
    let first = accept_path(&mail_to(&app, "bob@example.com", "Join").await);
    expire_invitations(&app, &tenant).await;
    let b = app.browser(&[]);
    let gone = b.get(HOST, &first).await;
    assert_eq!(gone.status, 410);
    assert!(gone.body.contains("cannot be used"));
    let token = first.split_once("token=").unwrap().1;
    let refused = b
        .submit(
            HOST,
            "/merchant/login",
            "/merchant/invite",
            &[("token", token), ("name", "Bob"), ("password", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(refused.status, 410);
    assert!(b.login(HOST, "/merchant", "bob@example.com", NEW_PASSWORD).await.status != 303, "no account was made");

    // An expired invitation is no longer pending: the person can be invited again;
    // resending gives a new link and the old one stays dead; revoking kills it.
    assert_eq!(pending_invites(&app, &tenant).await, 0);
    assert_eq!(invite(&owner, "bob@example.com", "staff", &["catalog"]).await.status, 303);
    let team = app.accounts.team(tenant.id).await.unwrap();
    let id = team.invitations[0].id;
    common::mail_settled(&app.db).await;
    let second = accept_path(&mail_to(&app, "bob@example.com", "Join").await);
    let resent = owner
        .submit(HOST, "/merchant/settings/staff", &format!("/merchant/settings/staff/invites/{id}/resend"), &[])
        .await;
    assert_eq!(resent.status, 303);
    common::mail_settled(&app.db).await;
    let mails = ecom_store::mailbox::list_all(&app.db, 100).await.unwrap();
    let links: Vec<String> =
        mails.iter().filter(|m| m.to == "bob@example.com").map(|m| accept_path(&m.body_text)).collect();
    assert_eq!(links.len(), 3, "two invitations and one resend");
    let third = links.iter().find(|l| **l != first && **l != second).unwrap().clone();
    assert_eq!(b.get(HOST, &second).await.status, 410, "the resent invitation's old link");
    assert_eq!(b.get(HOST, &third).await.status, 200);
    let revoked = owner
        .submit(HOST, "/merchant/settings/staff", &format!("/merchant/settings/staff/invites/{id}/revoke"), &[])
        .await;
    assert_eq!(revoked.status, 303);
    assert_eq!(b.get(HOST, &third).await.status, 410);
    let log = audit_actions(&app, &tenant).await;
    for action in ["staff.invite", "staff.invite.resend", "staff.invite.revoke"] {
        assert!(log.iter().any(|(actor, a, _)| a == action && actor == &format!("staff {OWNER}")), "{action}: {log:?}");
    }
    app.stop().await;
}
both!(expired_revoked_and_resent_links_are_refused);

async fn bad_invitations_change_nothing(app: TestApp) {
    let (tenant, owner) = owner(&app).await;
    let cases: [(&str, &str, &[&str], &str); 5] = [
        ("not-an-email", "staff", &["orders"], "Email: enter an email address"),
        ("cy@example.com", "staff", &[], "at least one area"),
        ("cy@example.com", "boss", &["orders"], "Role: choose a role"),
        ("cy@example.com", "staff", &["everything"], "unknown area"),
        (OWNER, "admin", &[], "already a member"),
    ];
    for (email, role, areas, message) in cases {
        let page = invite(&owner, email, role, areas).await;
        assert_eq!(page.status, 422, "{email} {role} {areas:?}");
        assert!(page.body.contains(message), "{message}: {}", page.body);
    }
    assert_eq!(pending_invites(&app, &tenant).await, 0);
    assert_eq!(invite(&owner, "cy@example.com", "staff", &["orders"]).await.status, 303);
    let dup = invite(&owner, "CY@example.com", "staff", &["orders"]).await;
    assert_eq!(dup.status, 422);
    assert!(dup.body.contains("has been invited already"));
    assert_eq!(pending_invites(&app, &tenant).await, 1);

    // The plan counts members and pending invitations alike: Starter allows 3 staff
    // accounts (the owner, Cy's invitation and one more).
    assert_eq!(invite(&owner, "dee@example.com", "staff", &["orders"]).await.status, 303);
    let over = invite(&owner, "eve@example.com", "staff", &["orders"]).await;
    assert_eq!(over.status, 403);
    assert!(over.body.contains("allows 3 staff accounts"), "{}", over.body);
    assert_eq!(pending_invites(&app, &tenant).await, 2);
    assert!(ecom_store::plans::set_tenant_plan(&app.db, tenant.id, "unlimited").await.unwrap());

    // Invitations are rate limited per store.
    let mut limited = None;
    for n in 0..25 {
        let page = invite(&owner, &format!("p{n}@example.com"), "staff", &["orders"]).await;
        if page.status == 429 {
            limited = Some((n, page));
            break;
        }
        assert_eq!(page.status, 303);
    }
    let (n, page) = limited.expect("the invite limit applies");
    assert!(page.body.contains("Too many invitations"), "{}", page.body);
    assert_eq!(pending_invites(&app, &tenant).await, 2 + n);
    app.stop().await;
}
both!(bad_invitations_change_nothing);

async fn count_products(app: &TestApp, tenant: &Tenant) -> u64 {
    app.catalog.merchant_products(tenant, None, None, 1).await.unwrap().1
}

async fn staff_reach_only_their_areas(app: TestApp) {
    let (tenant, owner) = owner(&app).await;
    assert!(ecom_store::plans::set_tenant_plan(&app.db, tenant.id, "unlimited").await.unwrap());
    let orders_only = join(&app, &owner, "dora@example.com", "staff", &["orders"]).await;

    // Pages of the member's area open; others are 403 naming the missing area.
    for path in ["/merchant", "/merchant/orders", "/merchant/password"] {
        assert_eq!(orders_only.get(HOST, path).await.status, 200, "{path}");
    }
    let forbidden = [
        ("/merchant/products", "Catalog"),
        ("/merchant/products/new", "Catalog"),
        ("/merchant/inventory", "Catalog"),
        ("/merchant/collections", "Catalog"),
        ("/merchant/products/export", "Catalog"),
        ("/merchant/customers", "Customers"),
        ("/merchant/settings", "Settings"),
        ("/merchant/settings/api", "Settings"),
        ("/merchant/settings/webhooks", "Settings"),
        ("/merchant/settings/checkout", "Settings"),
        ("/merchant/theme", "Settings"),
        ("/merchant/audit", "Analytics"),
        ("/merchant/notifications", "Analytics"),
        ("/merchant/dead-letters", "Analytics"),
    ];
    for (path, area) in forbidden {
        let page = orders_only.get(HOST, path).await;
        assert_eq!(page.status, 403, "{path}");
        let message = format!("You need the {area} permission to do this — ask an owner.");
        assert!(page.body.contains(&message), "{path}: {}", page.body);
        assert!(page.body.contains("href=\"/merchant/orders\""), "the 403 page keeps the panel navigation");
    }
    let team = orders_only.get(HOST, "/merchant/settings/staff").await;
    assert_eq!(team.status, 403);
    assert!(team.body.contains("owner or an admin to manage the team"));

    // The navigation shows only the member's areas.
    let home = orders_only.get(HOST, "/merchant").await;
    assert!(home.body.contains("href=\"/merchant/orders\""));
    for hidden in [
        "/merchant/products",
        "/merchant/customers",
        "/merchant/settings/api",
        "/merchant/audit",
        "/merchant/settings/staff",
        // The getting-started checklist names the steps but links none it forbids.
        "/merchant/products/new",
        "/merchant/settings/checkout",
        "/merchant/theme",
    ] {
        assert!(!home.body.contains(&format!("href=\"{hidden}\"")), "{hidden} shown");
    }
    assert!(home.body.contains("Add a product") && home.body.contains("Needs the Catalog permission — ask an owner."));

    // Forbidden actions change nothing.
    let before = count_products(&app, &tenant).await;
    let csrf = orders_only.get(HOST, "/merchant").await.csrf();
    let made = orders_only
        .post(HOST, "/merchant/products/new", &[("_csrf", &csrf), ("title", "Sneaky"), ("status", "active")])
        .await;
    assert_eq!(made.status, 403);
    assert_eq!(count_products(&app, &tenant).await, before);
    let token = orders_only
        .post(HOST, "/merchant/settings/api", &[("_csrf", &csrf), ("name", "mine"), ("scope", "write_orders")])
        .await;
    assert_eq!(token.status, 403);
    let tokens = ecom_services::ApiTokens::new(app.db.clone()).app_tokens(tenant.id).await.unwrap();
    assert!(tokens.is_empty());
    let invited = orders_only
        .post(
            HOST,
            "/merchant/settings/staff/invite",
            &[("_csrf", &csrf), ("email", "x@example.com"), ("role", "owner")],
        )
        .await;
    assert_eq!(invited.status, 403);
    assert_eq!(pending_invites(&app, &tenant).await, 0);

    // An admin has every area and the team, but cannot make owners or admins.
    let admin = join(&app, &owner, "eve@example.com", "admin", &[]).await;
    for path in [
        "/merchant/products",
        "/merchant/customers",
        "/merchant/settings/api",
        "/merchant/audit",
        "/merchant/settings/staff",
    ] {
        assert_eq!(admin.get(HOST, path).await.status, 200, "{path}");
    }
    let home = admin.get(HOST, "/merchant").await;
    assert!(
        home.body.contains("href=\"/merchant/products\"") && home.body.contains("href=\"/merchant/settings/staff\"")
    );
    let promote = invite(&admin, "fay@example.com", "owner", &[]).await;
    assert_eq!(promote.status, 403);
    assert!(promote.body.contains("Only an owner can"), "{}", promote.body);
    assert_eq!(pending_invites(&app, &tenant).await, 0);
    assert_eq!(invite(&admin, "fay@example.com", "staff", &["catalog"]).await.status, 303);

    // The owner gives Dora the catalog too: it opens at her next request.
    let dora = app
        .accounts
        .team(tenant.id)
        .await
        .unwrap()
        .members
        .into_iter()
        .find(|m| m.email == "dora@example.com")
        .unwrap();
    let path = format!("/merchant/settings/staff/{}", dora.id.0);
    let changed = owner.submit(HOST, &path, &path, &[("role", "staff"), ("area", "orders"), ("area", "catalog")]).await;
    assert_eq!(changed.status, 303);
    assert_eq!(orders_only.get(HOST, "/merchant/products").await.status, 200);
    let none = owner.submit(HOST, &path, &path, &[("role", "staff")]).await;
    assert_eq!(none.status, 422);
    assert!(none.body.contains("at least one area"));
    assert_eq!(orders_only.get(HOST, "/merchant/products").await.status, 200, "a refused change changes nothing");
    app.stop().await;
}
both!(staff_reach_only_their_areas);

async fn graphql(b: &Browser, query: &str) -> serde_json::Value {
    let resp = b
        .client
        .post(b.url(HOST, "/merchant/graphql"))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "query": query }).to_string())
        .send()
        .await
        .unwrap();
    resp.json().await.unwrap()
}

async fn the_merchant_api_checks_a_staff_sessions_areas(app: TestApp) {
    let (_tenant, owner) = owner(&app).await;
    let clerk = join(&app, &owner, "gus@example.com", "staff", &["orders"]).await;
    let orders = graphql(&clerk, "{ orders(first: 5) { nodes { id } } }").await;
    assert!(orders.get("errors").is_none(), "{orders}");
    let products = graphql(&clerk, "{ products(first: 5) { nodes { id } } }").await;
    let err = &products["errors"][0];
    assert_eq!(err["extensions"]["code"], "FORBIDDEN", "{products}");
    assert!(err["message"].as_str().unwrap().contains("Catalog permission"), "{products}");
    let customers = graphql(&clerk, "{ customers(first: 5) { nodes { id } } }").await;
    assert!(customers["errors"][0]["message"].as_str().unwrap().contains("Customers permission"), "{customers}");
    // The owner's session has everything.
    assert!(graphql(&owner, "{ products(first: 5) { nodes { id } } }").await.get("errors").is_none());
    app.stop().await;
}
both!(the_merchant_api_checks_a_staff_sessions_areas);

async fn removed_members_are_signed_out_and_the_last_owner_stays(app: TestApp) {
    let (tenant, owner) = owner(&app).await;
    let me = app.accounts.team(tenant.id).await.unwrap().members[0].id;
    let remove_self = format!("/merchant/settings/staff/{}/remove", me.0);
    let refused = owner.submit(HOST, "/merchant/settings/staff", &remove_self, &[]).await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("at least one owner"), "{}", refused.body);
    let demote = format!("/merchant/settings/staff/{}", me.0);
    let refused = owner.submit(HOST, "/merchant/settings/staff", &demote, &[("role", "admin")]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(app.accounts.member(tenant.id, me).await.unwrap().role, Some(ecom_core::StaffRole::Owner));

    let helper = join(&app, &owner, "hal@example.com", "staff", &["catalog"]).await;
    assert_eq!(helper.get(HOST, "/merchant/products").await.status, 200);
    let hal =
        app.accounts.team(tenant.id).await.unwrap().members.into_iter().find(|m| m.email == "hal@example.com").unwrap();
    let removed = owner
        .submit(HOST, "/merchant/settings/staff", &format!("/merchant/settings/staff/{}/remove", hal.id.0), &[])
        .await;
    assert_eq!(removed.status, 303);
    let after = helper.get(HOST, "/merchant/products").await;
    assert_eq!(after.status, 303, "the removed member's session ends at once");
    assert!(after.location().unwrap().starts_with("/merchant/login"));
    assert!(
        app.accounts
            .current(&ecom_services::accounts::SignedIn { realm: Realm::Staff(tenant.id), id: hal.id, auth_version: 1 })
            .await
            .unwrap()
            .is_none()
    );

    // Handing over: the new owner can now remove the old one, who became an admin.
    let heir = join(&app, &owner, "ivy@example.com", "admin", &[]).await;
    let ivy =
        app.accounts.team(tenant.id).await.unwrap().members.into_iter().find(|m| m.email == "ivy@example.com").unwrap();
    let moved = owner
        .submit(HOST, "/merchant/settings/staff", &format!("/merchant/settings/staff/{}/transfer", ivy.id.0), &[])
        .await;
    assert_eq!(moved.status, 303);
    assert_eq!(app.accounts.member(tenant.id, ivy.id).await.unwrap().role, Some(ecom_core::StaffRole::Owner));
    assert_eq!(app.accounts.member(tenant.id, me).await.unwrap().role, Some(ecom_core::StaffRole::Admin));
    let old_owner_removes_heir = owner
        .submit(HOST, "/merchant/settings/staff", &format!("/merchant/settings/staff/{}/remove", ivy.id.0), &[])
        .await;
    assert_eq!(old_owner_removes_heir.status, 403, "an admin cannot remove an owner");
    let gone = heir.submit(HOST, "/merchant/settings/staff", &remove_self, &[]).await;
    assert_eq!(gone.status, 303);
    assert_eq!(owner.get(HOST, "/merchant").await.status, 303);
    let log = audit_actions(&app, &tenant).await;
    assert!(log.contains(&(format!("staff {OWNER}"), "staff.remove".into(), "hal@example.com".into())), "{log:?}");
    assert!(log.contains(&(format!("staff {OWNER}"), "staff.transfer".into(), "ivy@example.com".into())), "{log:?}");
    assert!(log.contains(&("staff ivy@example.com".into(), "staff.remove".into(), OWNER.into())), "{log:?}");
    app.stop().await;
}
both!(removed_members_are_signed_out_and_the_last_owner_stays);

async fn a_customer_of_the_store_joins_with_their_password(app: TestApp) {
    let (tenant, owner) = owner(&app).await;
    // pat@example.com is the store's customer (made by the harness).
    assert_eq!(invite(&owner, "pat@example.com", "staff", &["customers"]).await.status, 303);
    let path = accept_path(&mail_to(&app, "pat@example.com", "Join").await);
    let token = path.split_once("token=").unwrap().1.to_owned();
    let b = app.browser(&[]);
    let page = b.get(HOST, &path).await;
    assert!(page.body.contains("You already have an account"), "{}", page.body);
    let wrong = b.submit(HOST, &path, "/merchant/invite", &[("token", &token), ("password", "not the password")]).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(app.accounts.team(tenant.id).await.unwrap().members.len(), 1);
    let ok = b.submit(HOST, &path, "/merchant/invite", &[("token", &token), ("password", PASSWORD)]).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(b.get(HOST, "/merchant/customers").await.status, 200);
    let later = app.browser(&[]);
    assert_eq!(later.login(HOST, "/merchant", "pat@example.com", PASSWORD).await.status, 303);
    app.stop().await;
}
both!(a_customer_of_the_store_joins_with_their_password);
