//! Plans and the super-admin's stores: plans defined and audited, limits enforced on
//! every path (panel, merchant API, CSV import, image uploads, API requests a minute,
//! staff), the store list's filters and 30-day figures, the store page, and the
//! read-only "view as merchant".

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{PASSWORD, TestApp};
use ecom_core::Tenant;
use ecom_core::scope::Scopes;
use ecom_services::plans::Limit;

const ADMIN: &str = "root@platform.test";

/// Signs the operator in on the platform host.
async fn operator(app: &TestApp, extra_hosts: &[&str]) -> common::Browser {
    app.admin(ADMIN).await;
    let b = app.browser(extra_hosts);
    assert_eq!(b.login("localhost", "/admin", ADMIN, PASSWORD).await.status, 303);
    b
}

/// A plan made through the admin panel.
async fn make_plan(b: &common::Browser, code: &str, products: &str, staff: &str, api: &str, storage_mb: &str) {
    let made = b
        .submit(
            "localhost",
            "/admin/plans",
            "/admin/plans",
            &[
                ("code", code),
                ("name", &code[..1].to_uppercase().chars().chain(code[1..].chars()).collect::<String>()),
                ("price", "$9 a month"),
                ("max_products", products),
                ("max_staff", staff),
                ("api_per_minute", api),
                ("max_storage_mb", storage_mb),
            ],
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.body);
}

async fn put_on_plan(b: &common::Browser, slug: &str, plan: &str) {
    let changed = b
        .submit("localhost", &format!("/admin/stores/{slug}"), &format!("/admin/stores/{slug}/plan"), &[("plan", plan)])
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
}

async fn plan_codes(app: &TestApp) -> Vec<String> {
    ecom_store::plans::list(&app.db).await.unwrap().into_iter().map(|(p, _)| p.code).collect()
}

async fn operators_define_plans_and_change_a_stores_plan(app: TestApp) {
    let b = operator(&app, &["shoes.localhost"]).await;
    let page = b.get("localhost", "/admin/plans").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Starter") && page.body.contains("Unlimited") && page.body.contains("default"));
    // New stores get the default plan, Starter.
    let shoes = app.store("shoes", "Shoe Shed").await;
    assert_eq!(ecom_store::plans::plan_of(&app.db, shoes.id).await.unwrap().unwrap().code, "starter");

    make_plan(&b, "tiny", "2", "1", "3", "0.001").await;
    let tiny = ecom_store::plans::find_by_code(&app.db, "tiny").await.unwrap().unwrap();
    assert_eq!(
        (tiny.name.as_str(), tiny.max_products, tiny.max_staff, tiny.api_per_minute, tiny.max_storage_bytes),
        ("Tiny", Some(2), Some(1), Some(3), Some(1000))
    );
    // Bad input names the field and changes nothing.
    let before = plan_codes(&app).await;
    for (fields, expect) in [
        (vec![("code", "big"), ("name", "Big"), ("max_products", "lots")], "products"),
        (vec![("code", "has space"), ("name", "X")], "code"),
        (vec![("code", "tiny"), ("name", "Again")], "exists already"),
        (vec![("code", "big"), ("name", "Big"), ("max_storage_mb", "-1")], "storage"),
    ] {
        let refused = b.submit("localhost", "/admin/plans", "/admin/plans", &fields).await;
        assert_eq!(refused.status, 422, "{fields:?}");
        assert!(refused.body.contains(expect), "{expect}: {}", refused.body);
    }
    assert_eq!(plan_codes(&app).await, before);

    // Edit: blank is unlimited.
    let edited = b
        .submit(
            "localhost",
            "/admin/plans/tiny",
            "/admin/plans/tiny",
            &[
                ("name", "Tiny"),
                ("max_products", "5"),
                ("max_staff", ""),
                ("api_per_minute", "3"),
                ("max_storage_mb", ""),
            ],
        )
        .await;
    assert_eq!(edited.status, 303, "{}", edited.body);
    let tiny = ecom_store::plans::find_by_code(&app.db, "tiny").await.unwrap().unwrap();
    assert_eq!((tiny.max_products, tiny.max_staff, tiny.max_storage_bytes), (Some(5), None, None));

    // A store's plan changes from its page; audited in its log and the operator log.
    put_on_plan(&b, "shoes", "tiny").await;
    assert_eq!(ecom_store::plans::plan_of(&app.db, shoes.id).await.unwrap().unwrap().code, "tiny");
    let store_log = ecom_services::audit::recent(&app.db, shoes.id, 10).await.unwrap();
    let entry = store_log.iter().find(|a| a.action == "store.plan_changed").expect("audited in the store's log");
    assert_eq!((entry.actor.as_str(), entry.detail.as_str()), ("operator root@platform.test", "from starter to tiny"));
    let unknown = b.submit("localhost", "/admin/stores/shoes", "/admin/stores/shoes/plan", &[("plan", "gold")]).await;
    assert_eq!(unknown.status, 422);
    assert!(unknown.body.contains("there is no plan"), "{}", unknown.body);

    // A plan in use is not deleted; an unused one is.
    let refused = b.submit("localhost", "/admin/plans", "/admin/plans/tiny/delete", &[]).await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("1 store is on this plan"), "{}", refused.body);
    assert!(plan_codes(&app).await.contains(&"tiny".to_owned()));
    make_plan(&b, "spare", "", "", "", "").await;
    assert_eq!(b.submit("localhost", "/admin/plans", "/admin/plans/spare/delete", &[]).await.status, 303);
    assert!(!plan_codes(&app).await.contains(&"spare".to_owned()));
    // The default plan cannot be deleted either.
    assert_eq!(b.submit("localhost", "/admin/plans", "/admin/plans/starter/delete", &[]).await.status, 422);

    let log = b.get("localhost", "/admin/audit").await.body;
    for action in ["plan.created", "plan.updated", "plan.deleted", "store.plan_changed"] {
        assert!(log.contains(action), "{action} in the operator log: {log}");
    }
    assert!(log.contains("Tiny: products 2, staff 1, API requests a minute 3, storage 1 KB"), "{log}");
    app.stop().await;
}
both!(operators_define_plans_and_change_a_stores_plan);

fn png_noise(w: u32, h: u32) -> Vec<u8> {
    // Noise does not compress, so the file's size follows its pixels.
    let mut seed = 0x2545_f491_u32;
    let img = image::RgbImage::from_fn(w, h, |_, _| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let [a, b, c, _] = seed.to_le_bytes();
        image::Rgb([a, b, c])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn upload_image(b: &common::Browser, host: &str, product: uuid::Uuid, bytes: Vec<u8>) -> common::Page {
    let csrf = b.get(host, &format!("/merchant/products/{product}")).await.csrf();
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(bytes).file_name("photo.png"))
        .text("alt", "a photo");
    let resp = b
        .client
        .post(b.url(host, &format!("/merchant/products/{product}/images?_csrf={csrf}")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    common::to_page(resp).await
}

async fn import_csv(b: &common::Browser, host: &str, csv: &str) -> common::Page {
    let csrf = b.get(host, "/merchant/products/import").await.csrf();
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("products.csv"));
    let resp = b
        .client
        .post(b.url(host, &format!("/merchant/products/import?_csrf={csrf}")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    common::to_page(resp).await
}

async fn product_count(app: &TestApp, tenant: &Tenant) -> u64 {
    app.catalog.merchant_products(tenant, None, None, 1).await.unwrap().1
}

async fn titles(app: &TestApp, tenant: &Tenant) -> Vec<String> {
    let (rows, _) = app.catalog.merchant_products(tenant, None, None, 1).await.unwrap();
    let mut titles: Vec<String> = rows.into_iter().map(|(p, _)| p.title).collect();
    titles.sort();
    titles
}

async fn token(app: &TestApp, tenant: &Tenant, scopes: &str) -> String {
    let tokens = ecom_services::ApiTokens::new(app.db.clone());
    tokens.create_app_token(tenant.id, "app", &Scopes::parse(scopes).unwrap(), "test").await.unwrap().1
}

async fn plan_limits_are_enforced_on_every_path(app: TestApp) {
    let b = operator(&app, &["shoes.localhost"]).await;
    let shoes = app.store("shoes", "Shoe Shed").await;
    make_plan(&b, "tiny", "2", "1", "", "0.001").await;
    put_on_plan(&b, "shoes", "tiny").await;
    assert_eq!(b.login("shoes.localhost", "/merchant", "owner@shoes.test", PASSWORD).await.status, 303);
    let hat = app
        .catalog
        .create_product(&shoes, common::product("Wool Hat", "Hats", &[], &["Red"], 2500, &shoes), None)
        .await
        .unwrap();
    app.catalog
        .create_product(&shoes, common::product("Silk Scarf", "Scarves", &[], &["Blue"], 1500, &shoes), None)
        .await
        .unwrap();
    let message = "Your Tiny plan allows 2 products; ask about a bigger plan.";

    // The panel: a form error, nothing created.
    let form = b.get("shoes.localhost", "/merchant/products/new").await;
    let csrf = form.csrf();
    let refused = b
        .post(
            "shoes.localhost",
            "/merchant/products/new",
            &[
                ("_csrf", &csrf),
                ("title", "Canvas Apron"),
                ("status", "active"),
                ("v0_price", "12.00"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains(message) && refused.body.contains("Canvas Apron"), "{}", refused.body);
    assert_eq!(product_count(&app, &shoes).await, 2);

    // The merchant API: a GraphQL error with code PLAN_LIMIT naming the limit.
    let token = token(&app, &shoes, "write_products").await;
    let api: serde_json::Value = b
        .client
        .post(b.url("shoes.localhost", "/merchant/graphql"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "query": "mutation { productCreate(input: { title: \"Scarf Two\" }) { product { title } userErrors { message } } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(api["errors"][0]["extensions"]["code"], "PLAN_LIMIT", "{api}");
    assert_eq!(api["errors"][0]["extensions"]["limit"], "products", "{api}");
    assert_eq!(api["errors"][0]["message"], message, "{api}");
    assert_eq!(product_count(&app, &shoes).await, 2);

    // CSV import: all or none, refused before anything is written (the row for the
    // existing hat would have renamed it).
    let csv = "Handle,Title,Variant Price\nwool-hat,Renamed Hat,30.00\nnew-cap,New Cap,12.00\n";
    let refused = import_csv(&b, "shoes.localhost", csv).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("adds 1 new product") && refused.body.contains(message), "{}", refused.body);
    assert_eq!(product_count(&app, &shoes).await, 2);
    assert_eq!(titles(&app, &shoes).await, ["Silk Scarf", "Wool Hat"], "nothing changed");
    // Updating existing products only is within the plan.
    let updated = import_csv(&b, "shoes.localhost", "Handle,Title,Variant Price\nwool-hat,Renamed Hat,30.00\n").await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(titles(&app, &shoes).await, ["Renamed Hat", "Silk Scarf"]);

    // Storage: 1 KB; an upload that does not fit is refused before it is stored.
    let big = png_noise(40, 40);
    assert!(big.len() > 1000);
    let refused = upload_image(&b, "shoes.localhost", hat, big.clone()).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("Your Tiny plan allows 1 KB of images; ask about a bigger plan."),
        "{}",
        refused.body
    );
    assert!(app.catalog.images(&shoes, hat).await.unwrap().is_empty());
    // With room, the upload is counted by its size.
    let edit = b
        .submit(
            "localhost",
            "/admin/plans/tiny",
            "/admin/plans/tiny",
            &[("name", "Tiny"), ("max_products", "2"), ("max_staff", "1"), ("max_storage_mb", "1")],
        )
        .await;
    assert_eq!(edit.status, 303);
    assert_eq!(upload_image(&b, "shoes.localhost", hat, big.clone()).await.status, 303);
    let usage = ecom_services::plans::Plans::new(app.db.clone()).usage(shoes.id).await.unwrap();
    assert_eq!(usage.storage_bytes, big.len() as u64);
    assert_eq!((usage.products, usage.staff), (2, 1));

    // Staff: the check the invitation flow calls.
    let err = ecom_services::plans::ensure_within(&app.db, shoes.id, Limit::Staff, usage.staff + 1).await.unwrap_err();
    assert_eq!(err.to_string(), "Your Tiny plan allows 1 staff account; ask about a bigger plan.");
    assert!(ecom_services::plans::ensure_within(&app.db, shoes.id, Limit::Staff, 1).await.is_ok());

    // Lowering a plan below what the store has is allowed; it blocks new additions and
    // the store's page says so.
    put_on_plan(&b, "shoes", "starter").await;
    let edit = b
        .submit("localhost", "/admin/plans/tiny", "/admin/plans/tiny", &[("name", "Tiny"), ("max_products", "1")])
        .await;
    assert_eq!(edit.status, 303);
    put_on_plan(&b, "shoes", "tiny").await;
    let page = b.get("localhost", "/admin/stores/shoes").await.body;
    assert!(page.contains("Over its plan: the plan allows 1 product"), "{page}");
    let err = app
        .catalog
        .create_product(&shoes, common::product("Linen Cap", "Caps", &[], &["Red"], 900, &shoes), None)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "Your Tiny plan allows 1 product; ask about a bigger plan.");
    assert_eq!(product_count(&app, &shoes).await, 2, "nothing was removed");
    app.stop().await;
}
both!(plan_limits_are_enforced_on_every_path);

async fn api_requests_a_minute_are_limited_per_store(app: TestApp) {
    let b = operator(&app, &["shoes.localhost", "hats.localhost"]).await;
    let shoes = app.store("shoes", "Shoe Shed").await;
    app.store("hats", "Hat Hut").await;
    make_plan(&b, "tiny", "", "", "4", "").await;
    put_on_plan(&b, "shoes", "tiny").await;
    // Not across a minute's turn, where the window starts again.
    let second = chrono::Utc::now().timestamp() % 60;
    if second > 50 {
        tokio::time::sleep(std::time::Duration::from_secs((61 - second) as u64)).await;
    }
    let client = b.client.clone();
    let storefront = |host: &'static str| {
        client.post(b.url(host, "/graphql")).json(&serde_json::json!({ "query": "{ shop { name } }" })).send()
    };
    for _ in 0..2 {
        assert_eq!(storefront("shoes.localhost").await.unwrap().status(), 200);
    }
    // The merchant API counts against the same allowance.
    let token = token(&app, &shoes, "read_products").await;
    for _ in 0..2 {
        let r = client
            .post(b.url("shoes.localhost", "/merchant/graphql"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "query": "{ products(first: 1) { nodes { title } } }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    for over in [
        storefront("shoes.localhost").await.unwrap(),
        client
            .post(b.url("shoes.localhost", "/merchant/graphql"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "query": "{ products(first: 1) { nodes { title } } }" }))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(over.status(), 429);
        let wait: u64 = over.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        let body: serde_json::Value = over.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "THROTTLED", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["limit"], "apiRequestsPerMinute");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.starts_with("Your Tiny plan allows 4 API requests a minute; try again in "), "{message}");
    }
    // Another store (Starter, 600 a minute) is not affected.
    assert_eq!(storefront("hats.localhost").await.unwrap().status(), 200);
    app.stop().await;
}
both!(api_requests_a_minute_are_limited_per_store);

/// Places an order of `quantity` hats in `tenant`; returns its number and total.
async fn order(app: &TestApp, tenant: &Tenant, variant: uuid::Uuid, quantity: u32) -> (i64, i64) {
    let cart = common::ready_cart(app, tenant, variant, quantity).await;
    let choice =
        ecom_services::checkout::PaymentChoice { provider: "test_card".into(), token: "4242424242424242".into() };
    let ecom_services::checkout::PlaceOutcome::Placed { number, .. } =
        app.checkout.place_order(tenant, cart, None, &choice).await.unwrap()
    else {
        panic!("the order was refused")
    };
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let row: (i64,) = sea_orm_total(&txn, tenant, number).await;
    txn.commit().await.unwrap();
    (number, row.0)
}

async fn sea_orm_total(txn: &ecom_store::DatabaseTransaction, tenant: &Tenant, number: i64) -> (i64,) {
    use ecom_store::entities::order;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let o = order::Entity::find()
        .filter(order::Column::TenantId.eq(tenant.id.0))
        .filter(order::Column::Number.eq(number))
        .one(txn)
        .await
        .unwrap()
        .unwrap();
    (o.total,)
}

async fn set_placed_at(app: &TestApp, tenant: &Tenant, number: i64, at: chrono::DateTime<chrono::Utc>) {
    use ecom_store::entities::order;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    order::Entity::update_many()
        .col_expr(order::Column::PlacedAt, Expr::value(at))
        .filter(order::Column::TenantId.eq(tenant.id.0))
        .filter(order::Column::Number.eq(number))
        .exec(&txn)
        .await
        .unwrap();
    txn.commit().await.unwrap();
}

async fn the_store_list_filters_and_shows_thirty_day_figures(app: TestApp) {
    use ecom_store::entities::tenant;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let b = operator(&app, &[]).await;
    let (shoes, variant) = common::store_with_stock(&app, "shoes", 50).await;
    let hats = app.store("hats", "Hat Hut").await;
    let caps = app.store("caps", "Cap Corner").await;
    ecom_store::tenants::add_domain(&app.db, caps.id, "www.capcorner.test", true).await.unwrap();
    ecom_store::plans::set_tenant_plan(&app.db, hats.id, "unlimited").await.unwrap();
    // Hats opened in January.
    let january = chrono::NaiveDate::from_ymd_opt(2026, 1, 15).unwrap().and_hms_opt(12, 0, 0).unwrap().and_utc();
    let txn = app.db.platform_txn().await.unwrap();
    tenant::Entity::update_many()
        .col_expr(tenant::Column::CreatedAt, Expr::value(january))
        .filter(tenant::Column::Id.eq(hats.id.0))
        .exec(&txn)
        .await
        .unwrap();
    txn.commit().await.unwrap();

    // Three orders: two today, one 40 days ago (outside the window).
    let (_, first) = order(&app, &shoes, variant, 1).await;
    let (_, second) = order(&app, &shoes, variant, 3).await;
    let (old, _) = order(&app, &shoes, variant, 2).await;
    set_placed_at(&app, &shoes, old, chrono::Utc::now() - chrono::Duration::days(40)).await;
    let sales = ecom_core::Money::new(first + second, shoes.currency).display();

    let all = b.get("localhost", "/admin/stores").await;
    assert!(all.body.contains("3 stores"), "{}", all.body);
    let row = b.get("localhost", "/admin/stores?q=shoes").await.body;
    assert!(row.contains(">2</td>") && row.contains(&format!(">{sales}</td>")), "2 orders, {sales}: {row}");
    assert!(row.contains("selected>Starter<"), "the plan is shown: {row}");

    let list = |query: &'static str| {
        let b = &b;
        async move { b.get("localhost", &format!("/admin/stores?{query}")).await }
    };
    let shows = |page: &common::Page, slugs: &[&str]| {
        for slug in ["shoes", "hats", "caps"] {
            let shown = page.body.contains(&format!("href=\"/admin/stores/{slug}\""));
            assert_eq!(shown, slugs.contains(&slug), "{slug} in {slugs:?}: {}", page.body);
        }
    };
    shows(&list("plan=unlimited").await, &["hats"]);
    shows(&list("plan=starter").await, &["shoes", "caps"]);
    shows(&list("q=capcorner").await, &["caps"]);
    shows(&list("created_to=2026-01-31").await, &["hats"]);
    shows(&list("created_from=2026-02-01").await, &["shoes", "caps"]);
    shows(&list("created_from=2026-01-01&created_to=2026-01-15").await, &["hats"]);
    shows(&list("status=active&plan=starter&q=sho").await, &["shoes"]);
    assert_eq!(list("created_to=someday").await.status, 400);
    let bad_plan = list("plan=gold").await;
    assert_eq!(bad_plan.status, 400);
    assert!(bad_plan.body.contains("no plan"), "{}", bad_plan.body);

    // The store's page: the same figures and a bar per day, today's with both orders.
    let page = b.get("localhost", "/admin/stores/shoes").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&format!("<span class=\"n\">{sales}</span>")), "{}", page.body);
    assert!(page.body.contains("<span class=\"n\">2</span><span class=\"label\">orders, 30 days"), "{}", page.body);
    assert_eq!(page.body.matches("<rect class=\"bar\"").count(), 30);
    let today = chrono::Utc::now().format("%b %-d").to_string();
    assert!(page.body.contains(&format!("<title>{today}: 2 orders, {sales}</title>")), "{}", page.body);
    assert!(page.body.contains("View as merchant"));
    assert_eq!(b.get("localhost", "/admin/stores/nope").await.status, 404);
    app.stop().await;
}
both!(the_store_list_filters_and_shows_thirty_day_figures);

async fn operators_view_a_store_as_its_merchant_read_only(app: TestApp) {
    let b = operator(&app, &["shoes.localhost"]).await;
    let shoes = app.store("shoes", "Shoe Shed").await;
    let grant = b.submit("localhost", "/admin/stores/shoes", "/admin/stores/shoes/view-as", &[]).await;
    assert_eq!(grant.status, 200);
    // A link to follow (a form post may not be redirected to another host under the CSP).
    let marker = "<a class=\"button\" href=\"";
    let start = grant.body.find(marker).expect("a link to the store's host") + marker.len();
    let link =
        grant.body[start..start + grant.body[start..].find('"').unwrap()].replace("&#x2f;", "/").replace("&amp;", "&");
    assert!(grant.body.contains("read only"));
    let prefix = format!("http://shoes.localhost:{}/merchant/view-as?token=", app.addr.port());
    assert!(link.starts_with(&prefix), "{link}");
    let path = link.trim_start_matches(&format!("http://shoes.localhost:{}", app.addr.port())).to_owned();

    let opened = b.get("shoes.localhost", &path).await;
    assert_eq!((opened.status, opened.location()), (303, Some("/merchant")));
    for page in ["/merchant", "/merchant/products", "/merchant/orders", "/merchant/settings", "/merchant/audit"] {
        let p = b.get("shoes.localhost", page).await;
        assert_eq!(p.status, 200, "{page}: {}", p.body);
        assert!(p.body.contains("Viewing as operator — read only."), "{page}");
    }
    // Every change is refused, and nothing changes.
    let save = b.submit("shoes.localhost", "/merchant/settings", "/merchant/settings", &[("name", "Renamed")]).await;
    assert_eq!(save.status, 403);
    assert!(save.body.contains("read only"), "{}", save.body);
    let csrf = b.get("shoes.localhost", "/merchant/products/new").await.csrf();
    let create = b
        .post(
            "shoes.localhost",
            "/merchant/products/new",
            &[("_csrf", &csrf), ("title", "Sneaky"), ("status", "active"), ("v0_price", "1.00"), ("action", "save")],
        )
        .await;
    assert_eq!(create.status, 403);
    assert_eq!(product_count(&app, &shoes).await, 0);
    assert_eq!(ecom_store::tenants::find_by_slug(&app.db, "shoes").await.unwrap().unwrap().name, "Shoe Shed");
    // Not the merchant API.
    let api = b
        .client
        .post(b.url("shoes.localhost", "/merchant/graphql"))
        .json(&serde_json::json!({ "query": "{ products(first: 1) { nodes { title } } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);

    // Audited in the store's log and the operator log.
    let store_log = ecom_services::audit::recent(&app.db, shoes.id, 10).await.unwrap();
    let entry = store_log.iter().find(|a| a.action == "store.viewed_as_merchant").expect("in the store's log");
    assert_eq!(entry.actor, "operator root@platform.test");
    assert!(b.get("localhost", "/admin/audit").await.body.contains("store.viewed_as_merchant"));

    // The link works once.
    let again = b.get("shoes.localhost", &path).await;
    assert_eq!(again.status, 403);
    assert!(again.body.contains("expired or was used"), "{}", again.body);
    // Signing out ends the view.
    let out = b.submit("shoes.localhost", "/merchant", "/merchant/logout", &[]).await;
    assert_eq!(out.status, 303);
    assert_eq!(b.get("shoes.localhost", "/merchant/products").await.status, 303, "back to the sign-in page");

    // An expired link is refused.
    let admin = {
        let txn = app.db.platform_txn().await.unwrap();
        let a = ecom_store::accounts::find_by_email(
            &txn,
            ecom_core::Realm::Admin,
            &ecom_core::Email::parse(ADMIN).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
        txn.commit().await.unwrap();
        a.id
    };
    let token = ecom_services::view_as::grant(&app.db, shoes.id, admin).await.unwrap();
    {
        use ecom_store::entities::password_reset;
        use sea_orm::sea_query::Expr;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let txn = app.db.tenant_txn(shoes.id).await.unwrap();
        password_reset::Entity::update_many()
            .col_expr(password_reset::Column::ExpiresAt, Expr::value(chrono::Utc::now() - chrono::Duration::seconds(1)))
            .filter(password_reset::Column::Purpose.eq("viewas"))
            .filter(password_reset::Column::UsedAt.is_null())
            .exec(&txn)
            .await
            .unwrap();
        txn.commit().await.unwrap();
    }
    let expired = b.get("shoes.localhost", &format!("/merchant/view-as?token={token}")).await;
    assert_eq!(expired.status, 403);
    assert_eq!(b.get("shoes.localhost", "/merchant").await.status, 303, "no view was opened");
    // A merchant's own host cannot be handed a link for another store.
    let other = app.store("hats", "Hat Hut").await;
    let token = ecom_services::view_as::grant(&app.db, other.id, admin).await.unwrap();
    assert_eq!(b.get("shoes.localhost", &format!("/merchant/view-as?token={token}")).await.status, 403);
    app.stop().await;
}
both!(operators_view_a_store_as_its_merchant_read_only);

/// `ecom store create --plan` and `ecom store list` with the plan.
async fn the_cli_opens_stores_on_a_plan(app: TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        common::ecom_command()
            .current_dir(dir.path())
            .env("ECOM_DATA_DIR", "data")
            .env("ECOM_DATABASE_URL", &app.database_url)
            .env("ECOM_SECRET_KEY", "test-secret-key-that-is-long-enough-0123456789")
            .args(args)
            .output()
            .unwrap()
    };
    let text = |out: &std::process::Output| {
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };
    let out = run(&[
        "store",
        "create",
        "--slug",
        "big",
        "--name",
        "Big",
        "--owner-email",
        "o@big.test",
        "--plan",
        "unlimited",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["store", "create", "--slug", "small", "--name", "Small", "--owner-email", "o@small.test"]);
    assert!(out.status.success(), "{}", text(&out));
    let out =
        run(&["store", "create", "--slug", "odd", "--name", "Odd", "--owner-email", "o@odd.test", "--plan", "gold"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("there is no plan \"gold\" (plans: starter, unlimited)"), "{}", text(&out));
    assert!(ecom_store::tenants::find_by_slug(&app.db, "odd").await.unwrap().is_none());
    let list = text(&run(&["store", "list"]));
    let line = |slug: &str| list.lines().find(|l| l.starts_with(slug)).unwrap_or_default().to_owned();
    assert!(line("big ").contains("unlimited") && line("small ").contains("starter"), "{list}");
    app.stop().await;
}
both!(the_cli_opens_stores_on_a_plan);

/// Additions counted against a plan take turns: ten products created at once on a
/// plan with room for three leave exactly three, and the other seven are refused with
/// the plan's message.
async fn concurrent_additions_cannot_overshoot_a_limit(app: TestApp) {
    let b = operator(&app, &[]).await;
    let shoes = app.store("shoes", "Shoe Shed").await;
    make_plan(&b, "tiny", "3", "", "", "").await;
    put_on_plan(&b, "shoes", "tiny").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let (catalog, shoes) = (app.catalog.clone(), shoes.clone());
        tasks.spawn(async move {
            let draft = common::product(&format!("Hat {i}"), "Hats", &[], &["Red"], 2500, &shoes);
            catalog.create_product(&shoes, draft, None).await
        });
    }
    let (mut made, mut refused) = (0, Vec::new());
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(_) => made += 1,
            Err(e) => refused.push(e.to_string()),
        }
    }
    assert_eq!(made, 3, "{refused:?}");
    assert_eq!(refused.len(), 7);
    assert!(refused.iter().all(|e| e.contains("Your Tiny plan allows 3 products")), "{refused:?}");
    assert_eq!(product_count(&app, &shoes).await, 3);
    app.stop().await;
}
both!(concurrent_additions_cannot_overshoot_a_limit);
