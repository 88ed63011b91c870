//! The Storefront GraphQL API (`POST /graphql` on a store host), on SQLite and
//! PostgreSQL: paging, sorting, search, products, collections, tenant-safe ids,
//! errors and limits. Plus the committed schema file must match the code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestApp, product};
use ecom_core::catalog::CollectionRule;
use serde_json::{Value, json};

/// Five products in `slug`'s store: (title, price in cents, tags).
const PRODUCTS: [(&str, i64, &[&str]); 5] = [
    ("Alpha Tee", 3000, &["sale"]),
    ("Bravo Hat", 1000, &[]),
    ("Charlie Scarf", 2000, &["sale"]),
    ("Delta Sock", 500, &[]),
    ("Echo Mitten", 4000, &[]),
];

async fn seed(app: &TestApp, slug: &str) -> ecom_core::Tenant {
    let tenant = app.store(slug, &format!("{slug} store")).await;
    for (title, price, tags) in PRODUCTS {
        let draft = product(title, "Things", tags, &["Red", "Blue"], price, &tenant);
        app.catalog.create_product(&tenant, draft, None).await.unwrap();
    }
    app.catalog
        .create_collection(&tenant, "Sale", "<p>Cheap!</p>", Some(vec![CollectionRule::Tag("sale".into())]), &[])
        .await
        .unwrap();
    tenant
}

/// Posts a query; returns the HTTP status and the JSON body (or `Null`).
async fn gql(app: &TestApp, host: &str, query: &str, variables: Value) -> (u16, Value) {
    let client = reqwest::Client::builder().resolve(host, app.addr).build().unwrap();
    let resp = client
        .post(app.url(host, "/graphql"))
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

fn handles(connection: &Value) -> Vec<String> {
    connection["nodes"].as_array().unwrap().iter().map(|n| n["handle"].as_str().unwrap().to_owned()).collect()
}

fn codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errs| errs.iter().map(|e| e["extensions"]["code"].as_str().unwrap_or("").to_owned()).collect())
        .unwrap_or_default()
}

const PAGE: &str = "query($first: Int, $after: String, $query: String, $sortKey: ProductSortKeys, $reverse: Boolean) {
  products(first: $first, after: $after, query: $query, sortKey: $sortKey, reverse: $reverse) {
    edges { cursor node { handle } }
    nodes { handle title }
    pageInfo { hasNextPage endCursor }
  }
}";

async fn products_page_with_cursors_sort_and_search(app: TestApp) {
    seed(&app, "demo").await;
    let host = "demo.localhost";

    let shop = gql(&app, host, "{ shop { name currencyCode primaryDomain { url } } }", json!({})).await;
    assert_eq!(shop.0, 200);
    assert_eq!(shop.1["data"]["shop"]["name"], "demo store");
    assert_eq!(shop.1["data"]["shop"]["currencyCode"], "USD");
    assert_eq!(shop.1["data"]["shop"]["primaryDomain"]["url"], app.url(host, ""));

    // Paging: 2 + 2 + 1, each page after the previous page's end cursor.
    let mut seen = Vec::new();
    let mut after = Value::Null;
    for expected in [2, 2, 1] {
        let (status, body) = gql(&app, host, PAGE, json!({ "first": 2, "after": after })).await;
        assert_eq!(status, 200, "{body}");
        let conn = &body["data"]["products"];
        let page = handles(conn);
        assert_eq!(page.len(), expected, "{body}");
        assert_eq!(conn["edges"].as_array().unwrap().len(), expected);
        assert_eq!(conn["pageInfo"]["hasNextPage"], expected == 2, "{body}");
        assert_eq!(conn["pageInfo"]["endCursor"], conn["edges"][expected - 1]["cursor"]);
        after = conn["pageInfo"]["endCursor"].clone();
        seen.extend(page);
    }
    let mut all = seen.clone();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 5, "every product once: {seen:?}");

    // Sorting, both ways, and paging a reversed order.
    let (_, body) = gql(&app, host, PAGE, json!({ "first": 10, "sortKey": "PRICE" })).await;
    assert_eq!(
        handles(&body["data"]["products"]),
        ["delta-sock", "bravo-hat", "charlie-scarf", "alpha-tee", "echo-mitten"],
        "{body}"
    );
    let (_, body) = gql(&app, host, PAGE, json!({ "first": 10, "sortKey": "PRICE", "reverse": true })).await;
    assert_eq!(
        handles(&body["data"]["products"]),
        ["echo-mitten", "alpha-tee", "charlie-scarf", "bravo-hat", "delta-sock"]
    );
    let (_, body) = gql(&app, host, PAGE, json!({ "first": 2, "sortKey": "TITLE", "reverse": true })).await;
    let conn = &body["data"]["products"];
    assert_eq!(handles(conn), ["echo-mitten", "delta-sock"], "{body}");
    let (_, body) = gql(
        &app,
        host,
        PAGE,
        json!({ "first": 2, "sortKey": "TITLE", "reverse": true, "after": conn["pageInfo"]["endCursor"] }),
    )
    .await;
    assert_eq!(handles(&body["data"]["products"]), ["charlie-scarf", "bravo-hat"], "{body}");
    let (_, body) = gql(&app, host, PAGE, json!({ "first": 10, "sortKey": "TITLE" })).await;
    assert_eq!(handles(&body["data"]["products"])[0], "alpha-tee");

    // Text search.
    let (_, body) = gql(&app, host, PAGE, json!({ "first": 10, "query": "scarf" })).await;
    assert_eq!(handles(&body["data"]["products"]), ["charlie-scarf"], "{body}");
    let (_, body) = gql(&app, host, PAGE, json!({ "first": 10, "query": "no such thing" })).await;
    assert!(handles(&body["data"]["products"]).is_empty());
    assert_eq!(body["data"]["products"]["pageInfo"]["hasNextPage"], false);

    // Bad paging arguments are validation errors, not crashes.
    let (status, body) = gql(&app, host, PAGE, json!({ "first": 5000 })).await;
    assert_eq!(status, 200);
    assert_eq!(codes(&body), ["VALIDATION"], "{body}");
    let (_, body) = gql(&app, host, PAGE, json!({ "first": 2, "after": "not-a-cursor" })).await;
    assert_eq!(codes(&body), ["VALIDATION"], "{body}");

    // Collections.
    let (_, body) = gql(
        &app,
        host,
        r#"{ collections(first: 5) { nodes { handle title } }
             collection(handle: "sale") { title description products(first: 5, sortKey: PRICE) { nodes { handle } } } }"#,
        json!({}),
    )
    .await;
    assert_eq!(body["data"]["collections"]["nodes"][0]["handle"], "sale", "{body}");
    assert_eq!(body["data"]["collection"]["description"], "Cheap!");
    assert_eq!(handles(&body["data"]["collection"]["products"]), ["charlie-scarf", "alpha-tee"]);
    let (_, body) = gql(&app, host, r#"{ collection(handle: "nope") { title } }"#, json!({})).await;
    assert_eq!(body["data"]["collection"], Value::Null);
    assert_eq!(codes(&body), ["NOT_FOUND"]);
}
both!(products_page_with_cursors_sort_and_search);

const PRODUCT: &str = "query($handle: String, $id: ID) {
  product(handle: $handle, id: $id) {
    id title handle description descriptionHtml vendor productType tags
    options { name values }
    priceRange { minVariantPrice { amount currencyCode } maxVariantPrice { amount currencyCode } }
    variants(first: 10) { nodes { id title sku availableForSale quantityAvailable
      price { amount currencyCode } compareAtPrice { amount } selectedOptions { name value } } }
    images(first: 5) { nodes { url altText width height } }
    featuredImage { url }
  }
}";

async fn a_product_by_handle_and_by_id_with_variants_and_prices(app: TestApp) {
    seed(&app, "demo").await;
    let host = "demo.localhost";
    let (status, body) = gql(&app, host, PRODUCT, json!({ "handle": "alpha-tee" })).await;
    assert_eq!(status, 200);
    assert!(body["errors"].is_null(), "{body}");
    let p = &body["data"]["product"];
    assert_eq!(p["title"], "Alpha Tee");
    assert_eq!(p["description"], "All about the Alpha Tee.");
    assert!(!p["descriptionHtml"].as_str().unwrap().contains("script"), "sanitised HTML");
    assert_eq!(p["vendor"], "Testco");
    assert_eq!(p["productType"], "Things");
    assert_eq!(p["tags"], json!(["sale"]));
    assert_eq!(
        p["options"],
        json!([{ "name": "Size", "values": ["S", "M"] }, { "name": "Color", "values": ["Red", "Blue"] }])
    );
    assert_eq!(p["priceRange"]["minVariantPrice"], json!({ "amount": "30.00", "currencyCode": "USD" }));
    assert_eq!(p["priceRange"]["maxVariantPrice"]["amount"], "30.00");
    let variants = p["variants"]["nodes"].as_array().unwrap();
    assert_eq!(variants.len(), 4);
    let m_red = variants.iter().find(|v| v["title"] == "M / Red").unwrap();
    assert_eq!(m_red["availableForSale"], false);
    assert_eq!(m_red["quantityAvailable"], 0);
    assert_eq!(m_red["sku"], "alpha-tee-M-Red");
    assert_eq!(m_red["price"], json!({ "amount": "30.00", "currencyCode": "USD" }));
    assert_eq!(m_red["compareAtPrice"], Value::Null);
    assert_eq!(
        m_red["selectedOptions"],
        json!([{ "name": "Size", "value": "M" }, { "name": "Color", "value": "Red" }])
    );
    let s_blue = variants.iter().find(|v| v["title"] == "S / Blue").unwrap();
    assert_eq!(s_blue["quantityAvailable"], 5);
    assert_eq!(s_blue["availableForSale"], true);
    assert_eq!(p["images"]["nodes"], json!([]));
    assert_eq!(p["featuredImage"], Value::Null);

    // Ids are opaque (no raw uuid) and find the same product again.
    let id = p["id"].as_str().unwrap().to_owned();
    assert!(!id.contains("gid://") && id.len() > 60, "opaque: {id}");
    let (_, again) = gql(&app, host, PRODUCT, json!({ "id": id })).await;
    assert_eq!(again["data"]["product"]["handle"], "alpha-tee", "{again}");

    // Not found, and asking with neither or both arguments.
    let (_, body) = gql(&app, host, PRODUCT, json!({ "handle": "no-such-product" })).await;
    assert_eq!(body["data"]["product"], Value::Null);
    assert_eq!(codes(&body), ["NOT_FOUND"]);
    let (_, body) = gql(&app, host, PRODUCT, json!({})).await;
    assert_eq!(codes(&body), ["VALIDATION"], "{body}");
}
both!(a_product_by_handle_and_by_id_with_variants_and_prices);

async fn ids_are_tenant_safe_and_unforgeable(app: TestApp) {
    seed(&app, "demo").await;
    seed(&app, "acme").await;
    let id_on = |host: &'static str| {
        let app = &app;
        async move {
            let (_, body) = gql(app, host, PRODUCT, json!({ "handle": "alpha-tee" })).await;
            body["data"]["product"]["id"].as_str().unwrap().to_owned()
        }
    };
    let (demo_id, acme_id) = (id_on("demo.localhost").await, id_on("acme.localhost").await);
    assert_ne!(demo_id, acme_id);

    // Store A's id on store B: not found, though B has a product with the same handle.
    for (host, foreign) in [("acme.localhost", &demo_id), ("demo.localhost", &acme_id)] {
        let (status, body) = gql(&app, host, PRODUCT, json!({ "id": foreign })).await;
        assert_eq!(status, 200);
        assert_eq!(body["data"]["product"], Value::Null, "{body}");
        assert_eq!(codes(&body), ["NOT_FOUND"], "{body}");
    }

    // Garbage and forgeries: not found, never a crash.
    let (_, body) = gql(&app, "demo.localhost", PRODUCT, json!({ "handle": "bravo-hat" })).await;
    let real = body["data"]["product"]["id"].as_str().unwrap().to_owned();
    let mut tampered: Vec<u8> = real.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let forged = [
        String::new(),
        "garbage".into(),
        "gid://ecom/Product/00000000-0000-0000-0000-000000000000".into(),
        "!!!".into(),
        "A".repeat(10_000),
        String::from_utf8(tampered).unwrap(),
    ];
    for id in forged {
        let (status, body) = gql(&app, "demo.localhost", PRODUCT, json!({ "id": id })).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["product"], Value::Null, "{body}");
        assert_eq!(codes(&body), ["NOT_FOUND"], "{body}");
    }
}
both!(ids_are_tenant_safe_and_unforgeable);

async fn bad_queries_get_graphql_errors_and_limits_hold(app: TestApp) {
    seed(&app, "demo").await;
    let host = "demo.localhost";

    // A query that does not parse, and one that does not fit the schema.
    for bad in ["{ products { nodes { handle ", "{ products { nodes { price } } }", "{ nope }"] {
        let (status, body) = gql(&app, host, bad, json!({})).await;
        assert!(status == 200 || status == 400, "{status} {body}");
        assert!(body["data"].is_null(), "{body}");
        assert_eq!(codes(&body), ["GRAPHQL_VALIDATION_FAILED"], "{body}");
    }

    // Not JSON at all: a client error, not a 500.
    let client = reqwest::Client::builder().resolve(host, app.addr).build().unwrap();
    let resp = client
        .post(app.url(host, "/graphql"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);

    // Too deep.
    let deep = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
        "ofType {".repeat(15),
        "}".repeat(15)
    );
    let (status, body) = gql(&app, host, &deep, json!({})).await;
    assert_eq!(status, 200);
    assert!(body["data"].is_null(), "{body}");
    assert_eq!(codes(&body), ["MAX_DEPTH_EXCEEDED"], "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("15"), "{body}");

    // Too costly: 250 products × 250 variants.
    let (_, body) =
        gql(&app, host, "{ products(first: 250) { nodes { variants(first: 250) { nodes { id sku } } } } }", json!({}))
            .await;
    assert!(body["data"].is_null(), "{body}");
    assert_eq!(codes(&body), ["MAX_COMPLEXITY_EXCEEDED"], "{body}");

    // The usual tools' introspection query fits within the limits.
    let (_, body) = gql(
        &app,
        host,
        "{ __schema { types { name kind fields { name type { kind name ofType { kind name ofType { kind name
           ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } } } } }",
        json!({}),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");

    // A host that is no store.
    let (status, _) = gql(&app, "nope.localhost", "{ shop { name } }", json!({})).await;
    assert_eq!(status, 404);
}
both!(bad_queries_get_graphql_errors_and_limits_hold);

/// `schema/storefront.graphql` is generated from the code; this fails when they
/// differ. Regenerate with `UPDATE_SCHEMA=1 cargo nextest run -p ecom --test graphql`.
#[test]
fn committed_schema_matches_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema/storefront.graphql");
    let sdl = ecom_web::graphql::storefront_sdl();
    if std::env::var("UPDATE_SCHEMA").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &sdl).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == sdl,
        "schema/storefront.graphql is out of date with the code (or missing). Regenerate it with\n  \
         UPDATE_SCHEMA=1 cargo nextest run -p ecom --test graphql committed_schema_matches_the_code\n\
         and commit the result."
    );
}

/// `products(first: 50)` with variants, images and collections costs a fixed handful
/// of SQL statements, cold or warm, not one or more per product.
async fn a_page_of_products_takes_a_fixed_number_of_queries(backend: common::Backend) {
    // The bus relay polls the database in the background; this node runs none, so
    // the statement counter counts the requests alone.
    let Some(app) = TestApp::spawn_with(backend, |c| c.bus_relay = false).await else { return };
    let tenant = app.store("demo", "demo store").await;
    for i in 0..60 {
        let tags: &[&str] = if i % 2 == 0 { &["sale"] } else { &[] };
        let draft = product(&format!("Thing {i:02}"), "Things", tags, &["Red", "Blue"], 1000 + i, &tenant);
        let id = app.catalog.create_product(&tenant, draft, None).await.unwrap();
        app.catalog.add_image(&tenant, id, &format!("{:064x}", i), "png", (10, 10), "a thing", 100).await.unwrap();
    }
    let picked = app.catalog.ids_for_handles(&tenant, &["thing-01".into(), "thing-02".into()]).await.unwrap();
    app.catalog.create_collection(&tenant, "Picked", "", None, &picked).await.unwrap();
    app.catalog
        .create_collection(&tenant, "Sale", "", Some(vec![CollectionRule::Tag("sale".into())]), &[])
        .await
        .unwrap();
    let query = "{ products(first: 50, sortKey: TITLE) { nodes { handle
        variants(first: 5) { nodes { id price { amount } } }
        images(first: 3) { nodes { url } }
        collections(first: 5) { nodes { handle } } } } }";
    let mut counts = Vec::new();
    for _ in 0..2 {
        let before = app.db.statements();
        let (status, body) = gql(&app, "demo.localhost", query, json!({})).await;
        counts.push(app.db.statements() - before);
        assert_eq!(status, 200);
        let nodes = body["data"]["products"]["nodes"].as_array().unwrap_or_else(|| panic!("{body}"));
        assert_eq!(nodes.len(), 50, "{body}");
        assert_eq!(nodes[0]["variants"]["nodes"].as_array().unwrap().len(), 4, "two sizes, two colours");
        assert_eq!(nodes[0]["images"]["nodes"].as_array().unwrap().len(), 1);
        let collections = |n: usize| -> Vec<&str> {
            nodes[n]["collections"]["nodes"].as_array().unwrap().iter().map(|c| c["handle"].as_str().unwrap()).collect()
        };
        assert_eq!((nodes[0]["handle"].as_str(), collections(0)), (Some("thing-00"), vec!["sale"]));
        assert_eq!((nodes[1]["handle"].as_str(), collections(1)), (Some("thing-01"), vec!["picked"]));
        assert_eq!(collections(2), vec!["picked", "sale"]);
        assert_eq!(collections(3), Vec::<&str>::new());
    }
    // Cold: the host lookup, the listing window (rows, count), products, variants,
    // images, the collections, the hand-picked memberships; warm: the memberships only
    // (the rest is cached); cold also the store's plan, for its API requests a minute
    // (one transaction, then cached). Measured: cold 9–10, warm 1–2; the bounds leave
    // a little room for the expiry task, which shares the counter, far below the 50+
    // of a query per product.
    assert!(counts[0] <= 12, "cold page took {} statements", counts[0]);
    assert!(counts[1] <= 3, "warm page took {} statements", counts[1]);
    eprintln!("statements: cold {}, warm {}", counts[0], counts[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_products_takes_a_fixed_number_of_queries_sqlite() {
    a_page_of_products_takes_a_fixed_number_of_queries(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_products_takes_a_fixed_number_of_queries_postgres() {
    a_page_of_products_takes_a_fixed_number_of_queries(common::Backend::Postgres).await;
}

/// GraphiQL is served on GET when turned on (the test config leaves it off), and the
/// standard introspection query GraphiQL and Apollo send fits the limits.
async fn graphiql_and_introspection(app: TestApp) {
    seed(&app, "demo").await;
    let client = reqwest::Client::builder().resolve("demo.localhost", app.addr).build().unwrap();
    let page = client.get(app.url("demo.localhost", "/graphql")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 404, "off unless configured");
    assert!(page.text().await.unwrap().contains("ECOM_GRAPHIQL"));
    let introspection = include_str!("graphql/introspection.graphql");
    let (status, body) = gql(&app, "demo.localhost", introspection, json!({})).await;
    assert_eq!(status, 200);
    assert!(body["errors"].is_null(), "{body}");
    let types = body["data"]["__schema"]["types"].as_array().unwrap();
    assert!(types.iter().any(|t| t["name"] == "Cart"));
}
both!(graphiql_and_introspection);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_page_and_assets_when_on() {
    let app = TestApp::spawn_with(common::Backend::Sqlite, |c| c.graphiql = Some(true)).await.unwrap();
    seed(&app, "demo").await;
    let client = reqwest::Client::builder().resolve("demo.localhost", app.addr).build().unwrap();
    for path in ["/graphql", "/merchant/graphql"] {
        let page = client.get(app.url("demo.localhost", path)).send().await.unwrap();
        assert_eq!(page.status().as_u16(), 200, "{path}");
        let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        let html = page.text().await.unwrap();
        assert!(html.contains(&format!("data-endpoint=\"{path}\"")), "{html}");
        assert!(!html.contains("<script>"), "no inline script");
        let asset = html.split("src=\"").nth(3).and_then(|s| s.split('"').next()).unwrap().to_owned();
        let js = client.get(app.url("demo.localhost", &asset)).send().await.unwrap();
        assert_eq!(js.status().as_u16(), 200, "{asset}");
        assert!(js.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    }
}
