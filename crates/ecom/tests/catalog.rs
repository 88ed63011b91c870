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
    assert_eq!(b.get("demo.localhost", "/products/linen-cap").await.status, 404);
    app.catalog.create_product(&tenant, product("Linen Cap", "Hats", &[], &["Red"], 999, &tenant), None).await.unwrap();
    assert!(b.get("demo.localhost", "/products").await.body.contains("31 products"));
    assert_eq!(b.get("demo.localhost", "/products/linen-cap").await.status, 200);
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
    app.stop().await;
}
both!(search_engines_get_a_sitemap_and_robots);
