//! Catalog and storefront stories, each run on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestApp, product};
use ecom_core::catalog::{CollectionRule, ProductStatus};

/// 30 products: 10 hats (red, tagged sale), 20 scarves (blue/green), prices 10.00–39.00.
async fn seed(app: &TestApp, slug: &str) -> ecom_core::Tenant {
    let tenant = app.store(slug, &format!("{slug} store")).await;
    for i in 0..30 {
        let (title, kind, tags, colors): (String, &str, Vec<&str>, Vec<&str>) = if i < 10 {
            (format!("Wool Hat {i:02}"), "Hats", vec!["sale"], vec!["Red"])
        } else {
            (format!("Silk Scarf {i:02}"), "Scarves", vec![], vec!["Blue", "Green"])
        };
        let draft = product(&title, kind, &tags, &colors, 1000 + i * 100, &tenant);
        app.catalog.create_product(&tenant, draft, None).await.unwrap();
    }
    let mut hidden = product("Secret Prototype", "Hats", &[], &["Red"], 500, &tenant);
    hidden.status = ProductStatus::Draft;
    app.catalog.create_product(&tenant, hidden, None).await.unwrap();
    app.catalog
        .create_collection(&tenant, "Sale", "<p>Cheap!</p>", Some(vec![CollectionRule::Tag("sale".into())]), &[])
        .await
        .unwrap();
    tenant
}

fn cards(body: &str) -> usize {
    body.matches("class=\"card-product\"").count()
}

async fn shoppers_browse_listings_with_paging_sorting_and_filters(app: TestApp) {
    seed(&app, "demo").await;
    let b = app.browser(&[]);
    let home = b.get("demo.localhost", "/").await;
    assert_eq!(home.status, 200);
    assert_eq!(cards(&home.body), 8, "the home page shows the newest products");

    let page1 = b.get("demo.localhost", "/products").await;
    assert_eq!(cards(&page1.body), 24);
    assert!(page1.body.contains("30 products"), "drafts are not counted");
    assert!(page1.body.contains("rel=\"next\""));
    let page2 = b.get("demo.localhost", "/products?page=2").await;
    assert_eq!(cards(&page2.body), 6);
    assert!(!page2.body.contains("Secret Prototype"));

    let cheap_first = b.get("demo.localhost", "/products?sort=price-asc").await;
    let first = cheap_first.body.find("Wool Hat 00").unwrap();
    let later = cheap_first.body.find("Wool Hat 05").unwrap();
    assert!(first < later, "sorted by price, low to high");
    let dear_first = b.get("demo.localhost", "/products?sort=price-desc").await;
    assert!(dear_first.body.find("Silk Scarf 29").unwrap() < dear_first.body.find("Silk Scarf 20").unwrap());

    let green = b.get("demo.localhost", "/products?option.Color=Green").await;
    assert!(green.body.contains("20 products"), "filter by option value");
    let red_or_green = b.get("demo.localhost", "/products?option.Color=Green&option.Color=Red").await;
    assert!(red_or_green.body.contains("30 products"), "values of one option combine with OR");
    let priced = b.get("demo.localhost", "/products?min=15&max=20.00").await;
    assert!(
        priced.body.contains("6 products"),
        "price range 15.00–20.00: {}",
        priced.body.matches("card-product").count()
    );
    let bad = b.get("demo.localhost", "/products?min=abc").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Min"));

    let search = b.get("demo.localhost", "/search?q=scarf").await;
    assert!(search.body.contains("20 products"));
    let by_option = b.get("demo.localhost", "/search?q=green").await;
    assert!(by_option.body.contains("20 products"), "search matches option values");
    let wildcard = b.get("demo.localhost", "/search?q=%25").await;
    assert!(wildcard.body.contains("0 products"), "% is matched literally");
    app.stop().await;
}
both!(shoppers_browse_listings_with_paging_sorting_and_filters);

async fn product_pages_pick_variants_and_describe_themselves(app: TestApp) {
    seed(&app, "demo").await;
    let b = app.browser(&[]);
    let page = b.get("demo.localhost", "/products/silk-scarf-12").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>Silk Scarf 12 · demo store</title>"));
    assert!(page.body.contains("application/ld+json") && page.body.contains("\"@type\":\"Product\""));
    assert!(page.body.contains("\"priceCurrency\":\"USD\""));
    assert!(page.body.contains("rel=\"canonical\""));
    assert!(!page.body.contains("<script>alert"), "descriptions are sanitised");
    // First variant in stock is chosen by default (S / Blue).
    assert!(page.body.contains("Size: <strong>S</strong>") && page.body.contains("Color: <strong>Blue</strong>"));
    let picked = b.get("demo.localhost", "/products/silk-scarf-12?Size=M&Color=Green").await;
    assert!(picked.body.contains("Size: <strong>M</strong>") && picked.body.contains("Color: <strong>Green</strong>"));
    assert!(picked.body.contains("In stock"));
    let sold_out = b.get("demo.localhost", "/products/silk-scarf-12?Size=M&Color=Blue").await;
    assert!(sold_out.body.contains("Sold out in this option"));
    assert!(sold_out.body.contains("$22.00"), "price formatted in the store currency");
    assert_eq!(b.get("demo.localhost", "/products/secret-prototype").await.status, 404, "drafts are not shown");
    assert_eq!(b.get("demo.localhost", "/products/nothing-here").await.status, 404);
    app.stop().await;
}
both!(product_pages_pick_variants_and_describe_themselves);

async fn collections_by_rule_and_by_hand(app: TestApp) {
    let tenant = seed(&app, "demo").await;
    let b = app.browser(&[]);
    let sale = b.get("demo.localhost", "/collections/sale").await;
    assert_eq!(sale.status, 200);
    assert!(sale.body.contains("10 products"));
    assert!(sale.body.contains("Cheap!"));
    // A manual collection of two products, created after the first reads: the
    // write clears the cache.
    let ids = {
        let txn = app.db.tenant_txn(tenant.id).await.unwrap();
        let (rows, _) = ecom_store::catalog::list_products(
            &txn,
            tenant.id,
            &ecom_store::catalog::Listing { limit: 2, search: Some("scarf 1".into()), ..Default::default() },
        )
        .await
        .unwrap();
        txn.commit().await.unwrap();
        rows.iter().map(|r| r.id).collect::<Vec<_>>()
    };
    app.catalog.create_collection(&tenant, "Gift ideas", "", None, &ids).await.unwrap();
    let gifts = b.get("demo.localhost", "/collections/gift-ideas").await;
    assert_eq!(gifts.status, 200);
    assert!(gifts.body.contains("2 products"));
    assert!(b.get("demo.localhost", "/collections").await.body.contains("Gift ideas"));
    assert_eq!(b.get("demo.localhost", "/collections/nope").await.status, 404);
    app.stop().await;
}
both!(collections_by_rule_and_by_hand);

async fn new_products_appear_at_once_after_a_write(app: TestApp) {
    let tenant = seed(&app, "demo").await;
    let b = app.browser(&[]);
    assert!(b.get("demo.localhost", "/products").await.body.contains("30 products"));
    let again = b.get("demo.localhost", "/products").await;
    assert_eq!(
        again.headers.get("x-cache").map(|v| v.to_str().unwrap()),
        Some("hit"),
        "anonymous pages come from the page cache"
    );
    assert_eq!(b.get("demo.localhost", "/products/linen-cap").await.status, 404);
    app.catalog.create_product(&tenant, product("Linen Cap", "Hats", &[], &["Red"], 999, &tenant), None).await.unwrap();
    let after = b.get("demo.localhost", "/products").await;
    assert!(after.body.contains("31 products"));
    assert!(after.headers.get("x-cache").is_none(), "a catalog write retires cached pages");
    assert_eq!(b.get("demo.localhost", "/products/linen-cap").await.status, 200);
    // A signed-in shopper sees their name, so never a cached page.
    assert_eq!(b.login("demo.localhost", "/account", "pat@example.com", common::PASSWORD).await.status, 303);
    let mine = b.get("demo.localhost", "/products").await;
    assert!(mine.headers.get("x-cache").is_none() && mine.body.contains("Pat"));
    // Same handle again: refused.
    let again =
        app.catalog.create_product(&tenant, product("Linen Cap", "Hats", &[], &["Red"], 999, &tenant), None).await;
    assert!(matches!(again, Err(ecom_services::ServiceError::Conflict(_))), "{again:?}");
    app.stop().await;
}
both!(new_products_appear_at_once_after_a_write);

async fn one_stores_catalog_is_invisible_to_another(app: TestApp) {
    let demo = seed(&app, "demo").await;
    let acme = app.store("acme", "Acme").await;
    let b = app.browser(&[]);
    assert_eq!(b.get("acme.localhost", "/products/silk-scarf-12").await.status, 404);
    assert!(b.get("acme.localhost", "/products").await.body.contains("0 products"));
    assert_eq!(b.get("acme.localhost", "/collections/sale").await.status, 404);
    let txn = app.db.tenant_txn(acme.id).await.unwrap();
    assert!(ecom_store::catalog::product_by_handle(&txn, acme.id, "silk-scarf-12").await.unwrap().is_none());
    // Even asking for demo's tenant inside acme's transaction finds nothing on PostgreSQL.
    let cross = ecom_store::catalog::product_by_handle(&txn, demo.id, "silk-scarf-12").await.unwrap();
    txn.commit().await.unwrap();
    if app.backend == common::Backend::Postgres {
        assert!(cross.is_none(), "row-level security hides demo's products in acme's transaction");
    }
    app.stop().await;
}
both!(one_stores_catalog_is_invisible_to_another);

async fn search_engines_get_a_sitemap_and_robots(app: TestApp) {
    seed(&app, "demo").await;
    let b = app.browser(&[]);
    let sitemap = b.get("demo.localhost", "/sitemap.xml").await;
    assert_eq!(sitemap.status, 200);
    assert!(sitemap.headers.get("content-type").unwrap().to_str().unwrap().contains("xml"));
    let decoded = sitemap.body.replace("&#x2f;", "/");
    assert!(decoded.contains("/products/silk-scarf-12</loc>"));
    assert!(decoded.contains("/collections/sale</loc>"));
    assert!(!decoded.contains("secret-prototype"));
    let robots = b.get("demo.localhost", "/robots.txt").await;
    assert!(robots.body.contains("Sitemap: http://demo.localhost:") && robots.body.contains("Disallow: /merchant"));
    for page in ["about", "contact", "shipping", "returns", "privacy", "terms"] {
        assert_eq!(b.get("demo.localhost", &format!("/pages/{page}")).await.status, 200, "{page}");
    }
    assert_eq!(b.get("demo.localhost", "/pages/nope").await.status, 404);
    // The installable-app pieces.
    let manifest: serde_json::Value =
        serde_json::from_str(&b.get("demo.localhost", "/manifest.webmanifest").await.body).unwrap();
    assert_eq!(manifest["name"], "demo store");
    assert_eq!(manifest["display"], "standalone");
    let icon = b.client.get(b.url("demo.localhost", "/icons/512.png")).send().await.unwrap();
    assert_eq!(icon.headers()["content-type"], "image/png");
    assert!(icon.bytes().await.unwrap().starts_with(b"\x89PNG"));
    assert!(b.get("demo.localhost", "/sw.js").await.body.contains("/offline"));
    assert!(b.get("demo.localhost", "/offline").await.body.contains("You are offline"));
    app.stop().await;
}
both!(search_engines_get_a_sitemap_and_robots);

async fn merchants_create_edit_and_archive_products_in_the_panel(app: TestApp) {
    app.store("demo", "Demo").await;
    app.store("acme", "Acme").await;
    let b = app.browser(&[]);
    assert_eq!(b.login("demo.localhost", "/merchant", "owner@demo.test", common::PASSWORD).await.status, 303);
    let form = b.get("demo.localhost", "/merchant/products/new").await;
    assert_eq!(form.status, 200);
    let csrf = form.csrf();
    let base = vec![
        ("_csrf", csrf.as_str()),
        ("title", "Canvas Apron"),
        ("status", "active"),
        ("vendor", "Demo"),
        ("product_type", "Aprons"),
        ("tags", "kitchen, gift"),
        ("attributes", "material: canvas"),
        ("body", "<p>Tough.</p><img src=x onerror=alert(1)>"),
        ("option1_name", "Size"),
        ("option1_values", "S, M"),
        ("option2_name", "Color"),
        ("option2_values", "Red"),
        ("default_price", "20"),
        ("default_stock", "3"),
    ];
    // Generating the variants shows them without saving anything.
    let mut fields = base.clone();
    fields.push(("action", "variants"));
    let generated = b.post("demo.localhost", "/merchant/products/new", &fields).await;
    assert_eq!(generated.status, 200);
    assert!(generated.body.contains("name=\"v1_price\"") && !generated.body.contains("name=\"v2_price\""));
    assert!(b.get("demo.localhost", "/merchant/products").await.body.contains("0 products"));

    // A bad price is refused with a message, and nothing is created.
    let mut bad = base.clone();
    bad.extend([("v0_o0", "S"), ("v0_o1", "Red"), ("v0_price", "12,3.4.5"), ("action", "save")]);
    let refused = b.post("demo.localhost", "/merchant/products/new", &bad).await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("variant 1 price"), "{}", refused.body);

    let mut good = base.clone();
    good.extend([
        ("v0_o0", "S"),
        ("v0_o1", "Red"),
        ("v0_price", "19.50"),
        ("v0_stock", "4"),
        ("v0_sku", "AP-S"),
        ("v1_o0", "M"),
        ("v1_o1", "Red"),
        ("v1_price", "21"),
        ("v1_stock", "0"),
        ("action", "save"),
    ]);
    let saved = b.post("demo.localhost", "/merchant/products/new", &good).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let edit_url = saved.location().unwrap().to_owned();
    let edit = b.get("demo.localhost", &edit_url).await;
    assert!(edit.body.contains("Saved.") && edit.body.contains("AP-S"), "{} {}", edit.status, edit.body);
    assert!(!edit.body.contains("onerror"), "the description is sanitised on save");

    let shop = b.get("demo.localhost", "/products/canvas-apron").await;
    assert_eq!(shop.status, 200);
    assert!(shop.body.contains("$19.50"));

    // Bulk price and stock edit.
    let inv = b.get("demo.localhost", "/merchant/inventory").await;
    let marker = "name=\"price_";
    let start = inv.body.find(marker).unwrap() + marker.len();
    let variant_id = inv.body[start..start + 36].to_owned();
    let csrf = inv.csrf();
    let price_key = format!("price_{variant_id}");
    let stock_key = format!("stock_{variant_id}");
    let done = b
        .post("demo.localhost", "/merchant/inventory", &[("_csrf", &csrf), (&price_key, "17.25"), (&stock_key, "9")])
        .await;
    assert_eq!(done.status, 303);
    assert!(
        b.get("demo.localhost", "/products/canvas-apron").await.body.contains("$17.25"),
        "storefront cache was cleared"
    );
    let negative = b
        .post("demo.localhost", "/merchant/inventory", &[("_csrf", &csrf), (&price_key, "-1"), (&stock_key, "9")])
        .await;
    assert_eq!(negative.status, 400);

    // Another store's merchant cannot see or change it.
    let other = app.browser(&[]);
    assert_eq!(other.login("acme.localhost", "/merchant", "owner@acme.test", common::PASSWORD).await.status, 303);
    let id = edit_url.trim_start_matches("/merchant/products/").split('?').next().unwrap().to_owned();
    assert_eq!(other.get("acme.localhost", &format!("/merchant/products/{id}")).await.status, 404);
    let acme_csrf = other.get("acme.localhost", "/merchant/products/new").await.csrf();
    let mut hijack = good.clone();
    hijack[0] = ("_csrf", acme_csrf.as_str());
    hijack[1] = ("title", "Hijacked");
    assert_eq!(other.post("acme.localhost", &format!("/merchant/products/{id}"), &hijack).await.status, 404);
    let other_inv = other
        .post(
            "acme.localhost",
            "/merchant/inventory",
            &[("_csrf", &acme_csrf), (&price_key, "0.01"), (&stock_key, "0")],
        )
        .await;
    assert_eq!(other_inv.status, 303);
    assert!(
        b.get("demo.localhost", "/products/canvas-apron").await.body.contains("$17.25"),
        "acme's bulk edit touched nothing"
    );

    // Archive: gone from the storefront, kept in the panel.
    let csrf = b.get("demo.localhost", &edit_url).await.csrf();
    assert_eq!(
        b.post(
            "demo.localhost",
            &format!("/merchant/products/{id}/status"),
            &[("_csrf", &csrf), ("status", "archived")]
        )
        .await
        .status,
        303
    );
    assert_eq!(b.get("demo.localhost", "/products/canvas-apron").await.status, 404);
    assert!(b.get("demo.localhost", "/merchant/products?status=archived").await.body.contains("Canvas Apron"));
    app.stop().await;
}
both!(merchants_create_edit_and_archive_products_in_the_panel);

async fn upload(b: &common::Browser, host: &str, csv: Vec<u8>) -> common::Page {
    let csrf = b.get(host, "/merchant/products/import").await.csrf();
    let form =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(csv).file_name("products.csv"));
    let resp = b
        .client
        .post(b.url(host, &format!("/merchant/products/import?_csrf={csrf}")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    common::to_page(resp).await
}

async fn csv_export_then_import_gives_the_same_catalog(app: TestApp) {
    seed(&app, "demo").await;
    app.store("acme", "Acme").await;
    let b = app.browser(&[]);
    assert_eq!(b.login("demo.localhost", "/merchant", "owner@demo.test", common::PASSWORD).await.status, 303);
    assert_eq!(b.login("acme.localhost", "/merchant", "owner@acme.test", common::PASSWORD).await.status, 303);
    let exported = b.client.get(b.url("demo.localhost", "/merchant/products/export")).send().await.unwrap();
    assert_eq!(exported.status(), 200);
    assert!(exported.headers()["content-disposition"].to_str().unwrap().contains("demo-products.csv"));
    let demo_csv = exported.bytes().await.unwrap().to_vec();
    assert!(String::from_utf8_lossy(&demo_csv).starts_with("Handle,Title,Body (HTML)"));

    // A file with problems imports nothing and names the lines.
    let mut broken = demo_csv.clone();
    broken.extend_from_slice(b"broken-one,,,,,,,,,,,,,,,,,,,,oops\n");
    let refused = upload(&b, "acme.localhost", broken).await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("Nothing was imported") && refused.body.contains("line "), "{}", refused.body);
    assert!(b.get("acme.localhost", "/merchant/products").await.body.contains("0 products"));

    let imported = upload(&b, "acme.localhost", demo_csv.clone()).await;
    assert_eq!(imported.status, 200);
    assert!(imported.body.contains("31 new products"), "{}", imported.body);
    let acme_csv = b
        .client
        .get(b.url("acme.localhost", "/merchant/products/export"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    assert_eq!(
        String::from_utf8(acme_csv).unwrap(),
        String::from_utf8(demo_csv.clone()).unwrap(),
        "export → import → export is stable"
    );
    // Importing again updates instead of duplicating.
    assert!(upload(&b, "acme.localhost", demo_csv).await.body.contains("31 updated"));
    assert!(b.get("acme.localhost", "/products/silk-scarf-12").await.status == 200);
    app.stop().await;
}
both!(csv_export_then_import_gives_the_same_catalog);

fn png_bytes(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 255) as u8, (y % 255) as u8, 120]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn upload_image(b: &common::Browser, host: &str, product: &str, bytes: Vec<u8>, alt: &str) -> common::Page {
    let csrf = b.get(host, &format!("/merchant/products/{product}")).await.csrf();
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(bytes).file_name("photo.png"))
        .text("alt", alt.to_owned());
    let resp = b
        .client
        .post(b.url(host, &format!("/merchant/products/{product}/images?_csrf={csrf}")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    common::to_page(resp).await
}

async fn product_images_are_checked_stored_and_served_with_long_cache_headers(app: TestApp) {
    let tenant = app.store("demo", "Demo").await;
    app.store("acme", "Acme").await;
    let id = app
        .catalog
        .create_product(&tenant, product("Wool Hat", "Hats", &[], &["Red"], 1500, &tenant), None)
        .await
        .unwrap();
    let b = app.browser(&[]);
    assert_eq!(b.login("demo.localhost", "/merchant", "owner@demo.test", common::PASSWORD).await.status, 303);

    let garbage = upload_image(&b, "demo.localhost", &id.to_string(), b"GIF89a not really".to_vec(), "x").await;
    assert_eq!(garbage.status, 400);
    assert!(garbage.body.contains("only JPEG, PNG and WebP"), "{}", garbage.body);

    let ok = upload_image(&b, "demo.localhost", &id.to_string(), png_bytes(900, 600), "A red wool hat").await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let page = b.get("demo.localhost", "/products/wool-hat").await;
    let marker = "/media/";
    let start = page.body.find(marker).expect("an image on the product page") + marker.len();
    let hash = page.body[start..start + 64].to_owned();
    assert!(page.body.contains("alt=\"A red wool hat\""));

    let original = b.client.get(b.url("demo.localhost", &format!("/media/{hash}.png"))).send().await.unwrap();
    assert_eq!(original.status(), 200);
    assert_eq!(original.headers()["cache-control"], "public, max-age=31536000, immutable");
    let etag = original.headers()["etag"].to_str().unwrap().to_owned();
    let again = b
        .client
        .get(b.url("demo.localhost", &format!("/media/{hash}.png")))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    // The 400 px thumbnail appears shortly (made in the background).
    let mut width = 0;
    for _ in 0..100 {
        let thumb = b.client.get(b.url("demo.localhost", &format!("/media/{hash}-400.jpg"))).send().await.unwrap();
        assert_eq!(thumb.status(), 200);
        if thumb.headers()["content-type"] == "image/jpeg" {
            width = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap().width();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    assert_eq!(width, 400);
    // Another store's host does not serve it.
    assert_eq!(b.get("acme.localhost", &format!("/media/{hash}.png")).await.status, 404);
    app.stop().await;
}
both!(product_images_are_checked_stored_and_served_with_long_cache_headers);

async fn merchants_edit_the_theme_with_checks_preview_and_publish(app: TestApp) {
    seed(&app, "demo").await;
    let b = app.browser(&[]);
    assert_eq!(b.login("demo.localhost", "/merchant", "owner@demo.test", common::PASSWORD).await.status, 303);
    let theme = b.get("demo.localhost", "/merchant/theme").await;
    assert!(theme.body.replace("&#x2f;", "/").contains("storefront/home.html"));
    let form = b.get("demo.localhost", "/merchant/theme/edit?name=storefront/home.html").await;
    assert!(form.body.contains("Staff picks"), "the built-in source is the starting point");
    let csrf = form.csrf();

    // A syntax error is refused with its line, and the live store is untouched.
    let broken = "{% extends \"layout/store.html\" %}\n{% block content %}\n{% for x in %}\n{% endblock %}";
    let refused = b
        .post(
            "demo.localhost",
            "/merchant/theme/edit",
            &[("_csrf", &csrf), ("name", "storefront/home.html"), ("source", broken), ("action", "save")],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("line 3"), "{}", refused.body);

    let custom =
        "{% extends \"layout/store.html\" %}{% block content %}<h1>Autumn sale at {{ store.name }}</h1>{% endblock %}";
    let saved = b
        .post(
            "demo.localhost",
            "/merchant/theme/edit",
            &[("_csrf", &csrf), ("name", "storefront/home.html"), ("source", custom), ("action", "save")],
        )
        .await;
    assert_eq!(saved.status, 200);
    assert!(!b.get("demo.localhost", "/").await.body.contains("Autumn sale"), "a draft is not live");
    assert!(
        b.get("demo.localhost", "/merchant/theme/preview").await.body.contains("Autumn sale at demo store"),
        "but shows in the preview"
    );
    assert_eq!(b.post("demo.localhost", "/merchant/theme/publish", &[("_csrf", &csrf)]).await.status, 303);
    assert!(b.get("demo.localhost", "/").await.body.contains("Autumn sale at demo store"), "published");

    // A template that compiles but fails while rendering never takes the page down.
    let failing =
        "{% extends \"layout/store.html\" %}{% block content %}{{ range(10) | no_such_filter }}{% endblock %}";
    let csrf = b.get("demo.localhost", "/merchant/theme").await.csrf();
    let r = b
        .post(
            "demo.localhost",
            "/merchant/theme/edit",
            &[("_csrf", &csrf), ("name", "storefront/home.html"), ("source", failing), ("action", "save")],
        )
        .await;
    if r.status == 200 {
        b.post("demo.localhost", "/merchant/theme/publish", &[("_csrf", &csrf)]).await;
        let home = b.get("demo.localhost", "/").await;
        assert_eq!(home.status, 200);
        assert!(
            home.body.contains("Just in") && !home.body.contains("no_such_filter"),
            "the built-in template served the page"
        );
    } else {
        assert_eq!(r.status, 422, "an unknown filter is caught when saving");
    }
    // Back to the built-in template.
    let reverted = b
        .post(
            "demo.localhost",
            "/merchant/theme/edit",
            &[("_csrf", &csrf), ("name", "storefront/home.html"), ("source", ""), ("action", "revert")],
        )
        .await;
    assert_eq!(reverted.status, 303);
    assert!(b.get("demo.localhost", "/").await.body.contains("Just in"));
    // Only the storefront's templates can be edited.
    assert_eq!(b.get("demo.localhost", "/merchant/theme/edit?name=merchant/home.html").await.status, 404);
    app.stop().await;
}
both!(merchants_edit_the_theme_with_checks_preview_and_publish);

async fn merchants_create_collections_and_categories(app: TestApp) {
    seed(&app, "demo").await;
    let b = app.browser(&[]);
    assert_eq!(b.login("demo.localhost", "/merchant", "owner@demo.test", common::PASSWORD).await.status, 303);
    let csrf = b.get("demo.localhost", "/merchant/collections").await.csrf();
    let rule = b
        .post(
            "demo.localhost",
            "/merchant/collections",
            &[("_csrf", &csrf), ("title", "Cheap hats"), ("kind", "price_at_most"), ("value", "15")],
        )
        .await;
    assert_eq!(rule.status, 200, "{}", rule.body);
    assert!(b.get("demo.localhost", "/collections/cheap-hats").await.body.contains("6 products"));
    let unknown = b
        .post(
            "demo.localhost",
            "/merchant/collections",
            &[("_csrf", &csrf), ("title", "Picks"), ("kind", "manual"), ("handles", "silk-scarf-12\nnope-123")],
        )
        .await;
    assert_eq!(unknown.status, 422);
    assert!(unknown.body.contains("nope-123"));
    let picks = b
        .post(
            "demo.localhost",
            "/merchant/collections",
            &[("_csrf", &csrf), ("title", "Picks"), ("kind", "manual"), ("handles", "silk-scarf-12, wool-hat-03")],
        )
        .await;
    assert_eq!(picks.status, 200);
    assert!(b.get("demo.localhost", "/collections/picks").await.body.contains("2 products"));
    let bad_price = b
        .post(
            "demo.localhost",
            "/merchant/collections",
            &[("_csrf", &csrf), ("title", "X"), ("kind", "price_at_most"), ("value", "cheap")],
        )
        .await;
    assert_eq!(bad_price.status, 422);
    let top = b.post("demo.localhost", "/merchant/categories", &[("_csrf", &csrf), ("name", "Winter")]).await;
    assert_eq!(top.status, 200);
    assert_eq!(b.get("demo.localhost", "/categories/winter").await.status, 200);
    let empty = b.post("demo.localhost", "/merchant/categories", &[("_csrf", &csrf), ("name", "")]).await;
    assert_eq!(empty.status, 422);
    app.stop().await;
}
both!(merchants_create_collections_and_categories);

async fn post_settings(b: &common::Browser, host: &str, form: reqwest::multipart::Form) -> common::Page {
    let csrf = b.get(host, "/merchant/settings").await.csrf();
    let resp =
        b.client.post(b.url(host, &format!("/merchant/settings?_csrf={csrf}"))).multipart(form).send().await.unwrap();
    common::to_page(resp).await
}

async fn merchants_brand_their_store_with_a_name_colour_and_logo(app: TestApp) {
    app.store("demo", "Demo").await;
    app.store("acme", "Acme").await;
    let b = app.browser(&[]);
    assert_eq!(b.login("demo.localhost", "/merchant", "owner@demo.test", common::PASSWORD).await.status, 303);

    // Bad input is refused and changes nothing.
    let bad =
        post_settings(&b, "demo.localhost", reqwest::multipart::Form::new().text("name", "Demo").text("color", "blue"))
            .await;
    assert_eq!(bad.status, 200);
    assert!(bad.body.contains("Colour: must be a hex colour"), "{}", bad.body);
    let bad_logo = reqwest::multipart::Form::new()
        .text("name", "Demo")
        .text("color", "#ffcc00")
        .part("logo", reqwest::multipart::Part::bytes(b"not an image".to_vec()).file_name("logo.png"));
    let bad_logo = post_settings(&b, "demo.localhost", bad_logo).await;
    assert!(bad_logo.body.contains("That logo was refused"), "{}", bad_logo.body);
    let empty_name = post_settings(&b, "demo.localhost", reqwest::multipart::Form::new().text("name", "  ")).await;
    assert!(empty_name.body.contains("Store name: must be 1 to 100 characters"), "{}", empty_name.body);
    assert!(b.get("demo.localhost", "/").await.body.contains("/brand.css?v=2f5bd3"), "default colour unchanged");

    // A yellow brand with a logo and a new name.
    let form = reqwest::multipart::Form::new()
        .text("name", "Demo Outfitters")
        .text("color", "#FFCC00")
        .part("logo", reqwest::multipart::Part::bytes(png_bytes(300, 80)).file_name("logo.png"));
    let saved = post_settings(&b, "demo.localhost", form).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let home = b.get("demo.localhost", "/").await;
    assert!(home.body.contains("Demo Outfitters"));
    assert!(home.body.contains("<meta name=\"theme-color\" content=\"#ffcc00\">"), "{}", home.body);
    assert!(home.body.contains("class=\"logo\" src=\"/media/"), "logo in the header");
    let css = b.get("demo.localhost", "/brand.css?v=ffcc00").await;
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");
    // Dark text on yellow, and links darkened until they read on white.
    assert!(css.body.contains("--brand: #ffcc00; --brand-ink: #11141c;"), "{}", css.body);
    let link = css.body.split("--brand-text: #").nth(1).unwrap();
    let rgb = ecom_core::BrandColor::parse(&link[..6]).unwrap();
    assert!(ecom_core::BrandColor::contrast(rgb.0, [255, 255, 255]) >= 4.5);
    let manifest: serde_json::Value =
        serde_json::from_str(&b.get("demo.localhost", "/manifest.webmanifest").await.body).unwrap();
    assert_eq!(manifest["theme_color"], "#ffcc00");
    assert_eq!(manifest["name"], "Demo Outfitters");
    let icon_path = manifest["icons"][0]["src"].as_str().unwrap().to_owned();
    let icon = b.client.get(b.url("demo.localhost", &icon_path)).send().await.unwrap().bytes().await.unwrap();
    let icon = image::load_from_memory(&icon).unwrap().to_rgb8();
    assert_eq!(icon.get_pixel(2, 2).0, [0xff, 0xcc, 0x00], "the icon is drawn in the brand colour");

    // The other store is untouched.
    let acme = b.get("acme.localhost", "/").await;
    assert!(acme.body.contains("/brand.css?v=2f5bd3") && !acme.body.contains("Demo Outfitters"));

    // Removing the logo brings the name back in the header.
    let remove = reqwest::multipart::Form::new()
        .text("name", "Demo Outfitters")
        .text("color", "#ffcc00")
        .text("remove_logo", "1");
    assert_eq!(post_settings(&b, "demo.localhost", remove).await.status, 303);
    assert!(!b.get("demo.localhost", "/").await.body.contains("class=\"logo\""));
    app.stop().await;
}
both!(merchants_brand_their_store_with_a_name_colour_and_logo);

/// Like `both!`, with the app's configuration adjusted by `$tweak`.
macro_rules! both_with {
    ($name:ident, $tweak:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) = crate::common::TestApp::spawn_with(crate::common::Backend::Sqlite, $tweak).await {
                    super::$name(app).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = crate::common::TestApp::spawn_with(crate::common::Backend::Postgres, $tweak).await {
                    super::$name(app).await;
                }
            }
        }
    };
}

/// The test app serves on 127.0.0.1, so fetching its images needs private targets allowed.
fn allow_private_network(config: &mut ecom::config::Config) {
    config.allow_private_network = true;
}

/// A page's text with minijinja's HTML escapes undone, to search for URLs and quotes.
fn unescaped(body: &str) -> String {
    body.replace("&#x2f;", "/").replace("&quot;", "\"").replace("&#x27;", "'").replace("&amp;", "&")
}

async fn export_csv(b: &common::Browser, host: &str) -> String {
    let resp = b.client.get(b.url(host, "/merchant/products/export")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

/// (alt, hash) of a product's images, in display order.
async fn images_of(app: &TestApp, tenant: &ecom_core::Tenant, handle: &str) -> Vec<(String, String)> {
    let id = app.catalog.ids_for_handles(tenant, &[handle.to_owned()]).await.unwrap()[0];
    app.catalog.images(tenant, id).await.unwrap().into_iter().map(|i| (i.alt, i.hash)).collect()
}

/// A demo store with two products: a hat with two images (front, back), a scarf with one.
async fn store_with_images(app: &TestApp, b: &common::Browser) -> ecom_core::Tenant {
    let tenant = app.store("demo", "Demo").await;
    let hat = app
        .catalog
        .create_product(&tenant, product("Wool Hat", "Hats", &[], &["Red"], 1500, &tenant), None)
        .await
        .unwrap();
    let scarf = app
        .catalog
        .create_product(&tenant, product("Silk Scarf", "Scarves", &[], &["Blue", "Green"], 2500, &tenant), None)
        .await
        .unwrap();
    assert_eq!(b.login("demo.localhost", "/merchant", "owner@demo.test", common::PASSWORD).await.status, 303);
    for (id, bytes, alt) in [
        (hat, png_bytes(120, 80), "Wool hat, front"),
        (hat, png_bytes(80, 120), "Wool hat, \"back\" view"),
        (scarf, png_bytes(100, 100), "Silk scarf"),
    ] {
        assert_eq!(upload_image(b, "demo.localhost", &id.to_string(), bytes, alt).await.status, 303);
    }
    tenant
}

async fn csv_images_travel_to_another_store_over_http(app: TestApp) {
    let b = app.browser(&[]);
    let demo = store_with_images(&app, &b).await;
    let acme = app.store("acme", "Acme").await;
    assert_eq!(b.login("acme.localhost", "/merchant", "owner@acme.test", common::PASSWORD).await.status, 303);

    let demo_csv = export_csv(&b, "demo.localhost").await;
    let base = format!("http://demo.localhost:{}/media/", app.addr.port());
    let hat = images_of(&app, &demo, "wool-hat").await;
    assert_eq!(hat.len(), 2);
    // The hat's first image on its first row, the second on an image-only row after
    // its variants, as Shopify writes them.
    let hat_rows: Vec<&str> = demo_csv.lines().filter(|l| l.starts_with("wool-hat,")).collect();
    assert_eq!(hat_rows.len(), 2 + 1, "two variants and one image row:\n{demo_csv}");
    assert!(hat_rows[0].contains(&format!("{base}{}.png,1,\"Wool hat, front\"", hat[0].1)), "{demo_csv}");
    assert!(!hat_rows[1].contains("/media/"), "the second variant row has no image");
    let image_row = format!("wool-hat,{}{base}{}.png,2,\"Wool hat, \"\"back\"\" view\"", ",".repeat(24), hat[1].1);
    // Handle (column 1) and Image Src, Position, Alt Text (26–28) of 35 columns: nothing else.
    assert_eq!(hat_rows[2], format!("{image_row}{}", ",".repeat(7)));

    // Into another store: its media does not hold these files, so they are fetched
    // from the first store's URLs.
    let imported = upload(&b, "acme.localhost", demo_csv.clone().into_bytes()).await;
    assert_eq!(imported.status, 200);
    assert!(imported.body.contains("2 new products"), "{}", imported.body);
    assert!(imported.body.contains("Images: 3 added."), "{}", imported.body);
    assert!(!imported.body.contains("could not be added"), "{}", imported.body);
    assert_eq!(images_of(&app, &acme, "wool-hat").await, hat, "same files, alt texts and order");
    assert_eq!(images_of(&app, &acme, "silk-scarf").await, images_of(&app, &demo, "silk-scarf").await);
    let served = b.client.get(b.url("acme.localhost", &format!("/media/{}.png", hat[1].1))).send().await.unwrap();
    assert_eq!(served.status(), 200, "stored in the second store's media");
    assert_eq!(served.bytes().await.unwrap().to_vec(), png_bytes(80, 120));
    let page = unescaped(&b.get("acme.localhost", "/products/wool-hat").await.body);
    let front = page.find("alt=\"Wool hat, front\"").expect("front image on the page");
    let back = page.find("alt=\"Wool hat, \"back\" view\"").expect("back image on the page");
    assert!(front < back, "in the file's order");

    let acme_csv = export_csv(&b, "acme.localhost").await;
    assert_eq!(acme_csv.replace("acme.localhost", "demo.localhost"), demo_csv, "export → import → export is stable");
    app.stop().await;
}
both_with!(csv_images_travel_to_another_store_over_http, super::allow_private_network);

async fn reimporting_into_the_same_store_does_not_duplicate_images(app: TestApp) {
    // Private targets refused (the default): the store's own images are found in its
    // media, never fetched.
    let b = app.browser(&[]);
    let demo = store_with_images(&app, &b).await;
    let before = images_of(&app, &demo, "wool-hat").await;
    let csv = export_csv(&b, "demo.localhost").await;

    let again = upload(&b, "demo.localhost", csv.clone().into_bytes()).await;
    assert_eq!(again.status, 200);
    assert!(again.body.contains("2 updated"), "{}", again.body);
    assert!(again.body.contains("Images: 0 added, 3 already there."), "{}", again.body);
    assert_eq!(images_of(&app, &demo, "wool-hat").await, before);
    assert_eq!(export_csv(&b, "demo.localhost").await, csv, "the same file again");

    // On any host (a CDN in front, a renamed store), with a new alt text: matched by the
    // file, and the alt text follows the file.
    let moved = csv
        .replace(&format!("http://demo.localhost:{}/media/", app.addr.port()), "https://cdn.example.com/media/")
        .replace("\"Wool hat, front\"", "Wool hat seen from the front");
    let updated = upload(&b, "demo.localhost", moved.into_bytes()).await;
    assert!(updated.body.contains("Images: 0 added, 1 with new alt text, 2 already there."), "{}", updated.body);
    let after = images_of(&app, &demo, "wool-hat").await;
    assert_eq!(after.len(), 2);
    assert_eq!(after[0], ("Wool hat seen from the front".to_owned(), before[0].1.clone()));
    assert_eq!(after[1], before[1]);
    app.stop().await;
}
both!(reimporting_into_the_same_store_does_not_duplicate_images);

async fn missing_and_non_image_urls_are_reported_by_line(app: TestApp) {
    let b = app.browser(&[]);
    let demo = store_with_images(&app, &b).await;
    let acme = app.store("acme", "Acme").await;
    assert_eq!(b.login("acme.localhost", "/merchant", "owner@acme.test", common::PASSWORD).await.status, 303);
    let host = format!("http://demo.localhost:{}", app.addr.port());
    let good = &images_of(&app, &demo, "silk-scarf").await[0].1;
    let missing = format!("{host}/media/{}.png", "0".repeat(64));
    let text = format!("{host}/robots.txt");
    let csv = format!(
        "Handle,Title,Variant Price,Image Src,Image Position,Image Alt Text\n\
         cap,Cap,5.00,{missing},1,A cap\n\
         cap,,,{text},2,Not a picture\n\
         mitt,Mitt,7.00,{host}/media/{good}.png,1,A mitt\n"
    );
    let page = upload(&b, "acme.localhost", csv.into_bytes()).await;
    assert_eq!(page.status, 200, "the products are imported: {}", page.body);
    let body = unescaped(&page.body);
    assert!(body.contains("2 new products") && body.contains("Images: 1 added, 2 not added."), "{body}");
    assert!(
        body.contains(&format!("line 2: image {missing} was not added: the server answered 404 Not Found")),
        "{body}"
    );
    assert!(
        body.contains(&format!("line 3: image {text} was not added: only JPEG, PNG and WebP images can be uploaded")),
        "{body}"
    );
    assert!(images_of(&app, &acme, "cap").await.is_empty());
    assert_eq!(images_of(&app, &acme, "mitt").await, vec![("A mitt".to_owned(), good.clone())]);
    assert!(b.get("acme.localhost", "/merchant/products").await.body.contains("2 products"));
    app.stop().await;
}
both_with!(missing_and_non_image_urls_are_reported_by_line, super::allow_private_network);

async fn loopback_image_urls_are_refused_without_allow_private_network(app: TestApp) {
    let b = app.browser(&[]);
    let demo = store_with_images(&app, &b).await;
    let acme = app.store("acme", "Acme").await;
    assert_eq!(b.login("acme.localhost", "/merchant", "owner@acme.test", common::PASSWORD).await.status, 303);
    let hash = &images_of(&app, &demo, "silk-scarf").await[0].1;
    let by_name = format!("http://demo.localhost:{}/media/{hash}.png", app.addr.port());
    let by_address = format!("http://127.0.0.1:{}/media/{hash}.png", app.addr.port());
    let metadata = "http://169.254.169.254/latest/meta-data/iam/security-credentials/";
    let csv = format!(
        "Handle,Title,Variant Price,Image Src\n\
         cap,Cap,5.00,{by_name}\n\
         cap,,,{by_address}\n\
         cap,,,{metadata}\n"
    );
    let page = upload(&b, "acme.localhost", csv.into_bytes()).await;
    assert_eq!(page.status, 200);
    let body = unescaped(&page.body);
    assert!(body.contains("1 new product,") && body.contains("3 not added"), "{body}");
    let public_only = "only addresses on the public internet can be fetched";
    for expected in [
        format!(
            "line 2: image {by_name} was not added: demo.localhost resolves to 127.0.0.1, a loopback address; {public_only}"
        ),
        format!("line 3: image {by_address} was not added: 127.0.0.1 is a loopback address; {public_only}"),
        format!("line 4: image {metadata} was not added: 169.254.169.254 is a link-local address; {public_only}"),
    ] {
        assert!(body.contains(&expected), "{expected}\n{body}");
    }
    assert!(images_of(&app, &acme, "cap").await.is_empty());
    app.stop().await;
}
both!(loopback_image_urls_are_refused_without_allow_private_network);
