//! Product images on an S3-compatible object store: a real one listening at
//! 127.0.0.1:9000 (`.ci/run` starts moto there). Each test makes its own bucket, and
//! checks what landed in it with a second client of its own, not through the app.
//!
//! Without a server at that address the tests are skipped with a loud message, except
//! in CI (`CI=true`), where they fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, TestApp, product};
use ecom::config::{Config, Secret};
use ecom_core::TenantId;
use ecom_media::object_store::aws::{AmazonS3, AmazonS3Builder};
use ecom_media::object_store::path::Path as ObjectPath;
use ecom_media::object_store::signer::Signer;
use ecom_media::object_store::{ObjectStore, ObjectStoreExt};
use ecom_media::{Media, S3Settings};
use std::time::{Duration, Instant};

const ENDPOINT: &str = "http://127.0.0.1:9000";
const KEY_ID: &str = "ecom-test";
const SECRET: &str = "ecom-test-secret";
/// Nothing listens on port 1: connections are refused at once.
const DEAD_ENDPOINT: &str = "http://127.0.0.1:1";

/// Whether the S3 server answers; in CI a missing server fails the test.
async fn s3_available() -> bool {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().unwrap();
    let ok = client.get(ENDPOINT).send().await.is_ok();
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("no S3 server at {ENDPOINT}, and CI=true: .ci/run starts one (moto) instead of skipping");
        }
        eprintln!(
            "\n*** SKIPPED: no S3 server at 127.0.0.1:9000 (start one: python3 -m moto.server -H 127.0.0.1 -p 9000) ***\n"
        );
    }
    ok
}

/// A second client to the bucket, independent of the app's.
fn client(bucket: &str) -> AmazonS3 {
    AmazonS3Builder::new()
        .with_endpoint(ENDPOINT)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_region("us-east-1")
        .with_bucket_name(bucket)
        .with_access_key_id(KEY_ID)
        .with_secret_access_key(SECRET)
        .build()
        .unwrap()
}

/// Creates a bucket with a unique name (tests run in parallel), with a signed
/// `CreateBucket` request so that a server which checks signatures accepts it too.
/// `None` when there is no server (and not in CI).
async fn new_bucket() -> Option<String> {
    if !s3_available().await {
        return None;
    }
    let bucket = format!("ecom-test-{}", uuid::Uuid::now_v7().simple());
    let url = client(&bucket)
        .signed_url(reqwest::Method::PUT, &ObjectPath::from(""), Duration::from_secs(300))
        .await
        .unwrap();
    let resp = reqwest::Client::new().put(url.as_str()).header("content-length", "0").send().await.unwrap();
    let status = resp.status();
    assert!(status.is_success(), "creating bucket {bucket}: {status} {}", resp.text().await.unwrap_or_default());
    Some(bucket)
}

fn s3_config(config: &mut Config, endpoint: &str, bucket: &str, prefix: Option<&str>) {
    config.s3_bucket = Some(bucket.into());
    config.s3_endpoint = Some(endpoint.into());
    config.s3_access_key_id = Some(KEY_ID.into());
    config.s3_secret_access_key = Some(Secret(SECRET.into()));
    config.s3_allow_http = true;
    config.s3_prefix = prefix.map(str::to_owned);
    config.validate().unwrap();
}

fn settings(endpoint: &str, bucket: &str) -> S3Settings {
    S3Settings {
        bucket: bucket.into(),
        endpoint: Some(endpoint.into()),
        region: "us-east-1".into(),
        access_key_id: KEY_ID.into(),
        secret_access_key: SECRET.into(),
        allow_http: true,
        prefix: None,
    }
}

/// The names of the files directly under `dir` in the bucket.
async fn list(bucket: &str, dir: &str) -> Vec<String> {
    let listing = client(bucket).list_with_delimiter(Some(&ObjectPath::from(dir))).await.unwrap();
    let mut names: Vec<String> = listing.objects.iter().map(|o| o.location.to_string()).collect();
    names.sort();
    names
}

/// A PNG of `w`×`h` whose pixels depend on `seed`, so different seeds hash differently.
fn png_bytes(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 255) as u8, (y % 255) as u8, seed]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn upload_image(b: &common::Browser, host: &str, product: &str, bytes: Vec<u8>) -> common::Page {
    let csrf = b.get(host, &format!("/merchant/products/{product}")).await.csrf();
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(bytes).file_name("photo.png"))
        .text("alt", "A photo");
    let resp = b
        .client
        .post(b.url(host, &format!("/merchant/products/{product}/images?_csrf={csrf}")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    common::to_page(resp).await
}

/// A store with one product whose owner is signed in to the merchant panel; returns
/// the store and the product's id.
async fn store_with_product(app: &TestApp, b: &common::Browser, slug: &str) -> (ecom_core::Tenant, String) {
    let tenant = app.store(slug, slug).await;
    let id = app
        .catalog
        .create_product(&tenant, product("Wool Hat", "Hats", &[], &["Red"], 1500, &tenant), None)
        .await
        .unwrap();
    let host = format!("{slug}.localhost");
    assert_eq!(b.login(&host, "/merchant", &format!("owner@{slug}.test"), common::PASSWORD).await.status, 303);
    (tenant, id.to_string())
}

/// Uploads an image through the merchant panel and returns its content hash, read off
/// the storefront's product page.
async fn upload_and_hash(b: &common::Browser, slug: &str, product_id: &str, bytes: Vec<u8>) -> String {
    let host = format!("{slug}.localhost");
    let ok = upload_image(b, &host, product_id, bytes).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let page = b.get(&host, "/products/wool-hat").await;
    let marker = "/media/";
    let start = page.body.find(marker).expect("an image on the product page") + marker.len();
    page.body[start..start + 64].to_owned()
}

async fn wait_for_thumbnails(bucket: &str, dir: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let thumbs = list(bucket, dir).await;
        if thumbs.len() == ecom_media::THUMB_WIDTHS.len() || Instant::now() > deadline {
            return thumbs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_land_in_the_bucket_under_the_store_and_are_served_from_it() {
    let Some(bucket) = new_bucket().await else { return };
    let app =
        TestApp::spawn_with(Backend::Sqlite, |c| s3_config(c, ENDPOINT, &bucket, Some("shop-media"))).await.unwrap();
    let b = app.browser(&[]);
    let (tenant, product_id) = store_with_product(&app, &b, "demo").await;
    let bytes = png_bytes(900, 600, 7);
    let hash = upload_and_hash(&b, "demo", &product_id, bytes.clone()).await;

    // The original, under the prefix and the store's id, byte for byte.
    let dir = format!("shop-media/{tenant}/originals", tenant = tenant.id);
    assert_eq!(list(&bucket, &dir).await, vec![format!("{dir}/{hash}.png")]);
    let stored = client(&bucket).get(&ObjectPath::from(format!("{dir}/{hash}.png"))).await.unwrap();
    assert_eq!(stored.bytes().await.unwrap(), bytes.as_slice());
    assert!(list(&bucket, "").await.is_empty() && list(&bucket, "shop-media").await.is_empty(), "nothing elsewhere");

    // Thumbnails are made in the background, one per width.
    let thumbs_dir = format!("shop-media/{}/thumbs", tenant.id);
    let expected: Vec<String> = {
        let mut names: Vec<String> =
            ecom_media::THUMB_WIDTHS.iter().map(|w| format!("{thumbs_dir}/{hash}-{w}.jpg")).collect();
        names.sort();
        names
    };
    assert_eq!(wait_for_thumbnails(&bucket, &thumbs_dir).await, expected);

    // Served from the bucket on the store's host, cacheable for a year.
    let original = b.client.get(b.url("demo.localhost", &format!("/media/{hash}.png"))).send().await.unwrap();
    assert_eq!(original.status(), 200);
    assert_eq!(original.headers()["content-type"], "image/png");
    assert_eq!(original.headers()["cache-control"], "public, max-age=31536000, immutable");
    let etag = original.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{hash}.png\""));
    assert_eq!(original.bytes().await.unwrap(), bytes.as_slice());
    let again = b
        .client
        .get(b.url("demo.localhost", &format!("/media/{hash}.png")))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let thumb = b.client.get(b.url("demo.localhost", &format!("/media/{hash}-400.jpg"))).send().await.unwrap();
    assert_eq!(thumb.status(), 200);
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");
    assert_eq!(thumb.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap().width(), 400);

    // A key the bucket does not hold is a 404, not a server error.
    let missing = "0".repeat(64);
    assert_eq!(b.get("demo.localhost", &format!("/media/{missing}.png")).await.status, 404);
    assert_eq!(b.get("demo.localhost", &format!("/media/{missing}-400.jpg")).await.status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_store_cannot_fetch_another_stores_media() {
    let Some(bucket) = new_bucket().await else { return };
    let app = TestApp::spawn_with(Backend::Sqlite, |c| s3_config(c, ENDPOINT, &bucket, None)).await.unwrap();
    let b = app.browser(&[]);
    let (demo, demo_product) = store_with_product(&app, &b, "demo").await;
    let (acme, acme_product) = store_with_product(&app, &b, "acme").await;
    let demo_hash = upload_and_hash(&b, "demo", &demo_product, png_bytes(300, 200, 1)).await;
    let acme_hash = upload_and_hash(&b, "acme", &acme_product, png_bytes(300, 200, 2)).await;
    assert_ne!(demo_hash, acme_hash);
    assert_eq!(list(&bucket, &format!("{}/originals", demo.id)).await.len(), 1);
    assert_eq!(list(&bucket, &format!("{}/originals", acme.id)).await.len(), 1);
    wait_for_thumbnails(&bucket, &format!("{}/thumbs", demo.id)).await;
    wait_for_thumbnails(&bucket, &format!("{}/thumbs", acme.id)).await;

    for (host, own, other) in [("demo.localhost", &demo_hash, &acme_hash), ("acme.localhost", &acme_hash, &demo_hash)] {
        assert_eq!(b.get(host, &format!("/media/{own}.png")).await.status, 200, "{host} serves its own image");
        assert_eq!(b.get(host, &format!("/media/{own}-200.jpg")).await.status, 200);
        assert_eq!(b.get(host, &format!("/media/{other}.png")).await.status, 404, "{host} must not serve the other's");
        assert_eq!(b.get(host, &format!("/media/{other}-200.jpg")).await.status, 404);
    }
    // The same picture in both stores is kept once per store, under each store's id.
    let shared = png_bytes(120, 80, 3);
    upload_and_hash(&b, "demo", &demo_product, shared.clone()).await;
    upload_and_hash(&b, "acme", &acme_product, shared).await;
    let names = |tenant: TenantId, files: Vec<String>| -> Vec<String> {
        let dir = format!("{tenant}/originals/");
        files.iter().map(|f| f.strip_prefix(&dir).expect("under the store's id").to_owned()).collect()
    };
    let in_demo = names(demo.id, list(&bucket, &format!("{}/originals", demo.id)).await);
    let in_acme = names(acme.id, list(&bucket, &format!("{}/originals", acme.id)).await);
    assert_eq!((in_demo.len(), in_acme.len()), (2, 2));
    let common: Vec<_> = in_demo.iter().filter(|f| in_acme.contains(f)).collect();
    assert_eq!(common.len(), 1, "{in_demo:?} {in_acme:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_fails_the_upload_with_an_error_not_a_panic() {
    // Needs no S3 server: nothing listens at the endpoint.
    let app = TestApp::spawn_with(Backend::Sqlite, |c| s3_config(c, DEAD_ENDPOINT, "ecom-media", None)).await.unwrap();
    let b = app.browser(&[]);
    let (_, product_id) = store_with_product(&app, &b, "demo").await;
    let started = Instant::now();
    let failed = upload_image(&b, "demo.localhost", &product_id, png_bytes(300, 200, 4)).await;
    assert_eq!(failed.status, 500, "{}", failed.body);
    assert!(failed.body.contains("Something went wrong"), "{}", failed.body);
    assert!(started.elapsed() < Duration::from_secs(45), "gave up after {:?}", started.elapsed());
    // The app is still serving, and the product has no image.
    let page = b.get("demo.localhost", "/products/wool-hat").await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("/media/"));
    let panel = b.get("demo.localhost", &format!("/merchant/products/{product_id}")).await;
    assert_eq!(panel.status, 200);
    // The readiness probe says so, and why: a load balancer takes the node out.
    let ready = b.get("localhost", "/readyz").await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(ready.body.contains("media storage"), "{}", ready.body);

    // The error the operator sees (logged) says where media was going and why.
    let media = Media::s3(settings(DEAD_ENDPOINT, "ecom-media")).unwrap();
    let err = media.ingest(TenantId::new(), png_bytes(10, 10, 5).into()).await.unwrap_err().to_string();
    assert!(err.contains("S3 bucket ecom-media at http://127.0.0.1:1"), "{err}");
    assert!(media.check().await.is_err());
    // Serving from it fails as an error too (a 500), not as a missing file.
    assert!(media.get(TenantId::new(), &"0".repeat(64), "png", None).await.is_err());
    app.stop().await; // panics if the server task panicked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readiness_probe_and_settings_checks() {
    // Plain http must be allowed explicitly.
    let refused = Media::s3(S3Settings { allow_http: false, ..settings(ENDPOINT, "ecom-media") }).unwrap_err();
    assert!(refused.to_string().contains("http is not allowed"), "{refused}");
    // Building TLS clients (AWS itself, an https endpoint) works: one crypto provider.
    let aws = Media::s3(S3Settings { endpoint: None, allow_http: false, ..settings(ENDPOINT, "ecom-media") }).unwrap();
    assert!(aws.describe().contains("AWS us-east-1"));
    let tls = Media::s3(S3Settings { allow_http: false, ..settings("https://127.0.0.1:1", "ecom-media") }).unwrap();
    assert!(tls.check().await.is_err());
    // The local directory.
    let dir = tempfile::tempdir().unwrap();
    let local = Media::local(&dir.path().join("media")).unwrap();
    assert!(local.check().await.is_ok());
    std::fs::remove_dir_all(dir.path().join("media")).unwrap();
    assert!(local.check().await.is_err());

    let Some(bucket) = new_bucket().await else { return };
    let media = Media::s3(settings(ENDPOINT, &bucket)).unwrap();
    media.check().await.unwrap();
    let prefixed = Media::s3(S3Settings { prefix: Some("/a/b/".into()), ..settings(ENDPOINT, &bucket) }).unwrap();
    prefixed.check().await.unwrap();
    let tenant = TenantId::new();
    let stored = prefixed.ingest(tenant, png_bytes(20, 10, 6).into()).await.unwrap();
    assert_eq!(
        list(&bucket, &format!("a/b/{tenant}/originals")).await,
        vec![format!("a/b/{tenant}/originals/{}.png", stored.hash)]
    );
    assert!(prefixed.get(tenant, &stored.hash, "png", None).await.unwrap().is_some());
    assert!(media.get(tenant, &stored.hash, "png", None).await.unwrap().is_none(), "outside the prefix");
    // A bucket that does not exist, or wrong credentials on a server that checks them:
    // not ready.
    let missing = Media::s3(settings(ENDPOINT, &format!("{bucket}-missing"))).unwrap();
    let err = missing.check().await.unwrap_err().to_string();
    assert!(err.contains(&format!("{bucket}-missing")), "{err}");
    assert!(missing.ingest(tenant, png_bytes(10, 10, 8).into()).await.is_err());
}
