//! The test harness: boots the real app on a random port against a fresh database,
//! SQLite or PostgreSQL, and drives it over HTTP like a browser would.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod probe;
pub mod smtp;

use ecom::Application;
use ecom::config::{Config, Secret};
use ecom_core::{Currency, Email, Locale, NewPassword, Realm, Slug, StaffRole, Tenant};
use ecom_services::{Accounts, Catalog, Mailer, RateLimits};
use ecom_store::{Db, tenants};
use std::net::SocketAddr;
use tokio::sync::oneshot;

pub const PASSWORD: &str = "correct horse battery";
/// The apps' `ECOM_SECRET_KEY`.
pub const SECRET: &str = "test-secret-key-that-is-long-enough-0123456789";
pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test body against both backends: `both!(name)` expands to `name::sqlite`
/// and `name::postgres`.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) = $crate::common::TestApp::spawn($crate::common::Backend::Sqlite).await {
                    super::$name(app).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $crate::common::TestApp::spawn($crate::common::Backend::Postgres).await {
                    super::$name(app).await;
                }
            }
        }
    };
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub db: Db,
    pub backend: Backend,
    pub accounts: Accounts,
    /// The running app's catalog service: writes through it invalidate its cache.
    pub catalog: Catalog,
    pub checkout: ecom_services::Checkout,
    /// The running app's webhook service (subscriptions, delivery log).
    pub webhooks: ecom_services::Webhooks,
    pub database_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// A connection to PostgreSQL's admin database, or `None` (outside CI) when there is no
/// PostgreSQL here. In CI a missing PostgreSQL fails the test instead of skipping it, and
/// a slow or momentarily full server (a loaded machine, every connection slot taken by
/// parallel tests) is retried for up to 30 s before the test fails with the server's own
/// error.
async fn postgres_admin() -> Option<sqlx::PgConnection> {
    use sqlx::Connection;
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let error = loop {
        let error =
            match tokio::time::timeout(std::time::Duration::from_secs(5), sqlx::PgConnection::connect(PG_ADMIN_URL))
                .await
            {
                Ok(Ok(conn)) => return Some(conn),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "no answer within 5 s".to_owned(),
            };
        if !ci || std::time::Instant::now() >= deadline {
            break error;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    if ci {
        panic!(
            "PostgreSQL is not reachable at {PG_ADMIN_URL} ({error}) after 30 s, and CI=true: start it (see DESIGN.md) instead of skipping"
        );
    }
    eprintln!("SKIPPED: PostgreSQL is not reachable at {PG_ADMIN_URL} ({error}); this test ran on SQLite only");
    None
}

/// The URL of a new, empty database: a SQLite file in `dir`, or a PostgreSQL database
/// of its own (`None` when PostgreSQL is not there, outside CI).
pub async fn fresh_database(backend: Backend, dir: &std::path::Path) -> Option<String> {
    Some(match backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.join("ecom.db").display()),
        Backend::Postgres => {
            use sqlx::Connection;
            let mut admin = postgres_admin().await?;
            let name = format!("ecom_test_{}", uuid::Uuid::now_v7().simple());
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
            admin.close().await.unwrap();
            format!("postgres://postgres@127.0.0.1:5432/{name}?sslmode=disable")
        }
    })
}

/// The `ecom` binary, with none of this environment's `ECOM_*` settings.
pub fn ecom_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ecom"));
    for (key, _) in std::env::vars() {
        if key.starts_with("ECOM_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Starts `ecom serve` with JSON logs on a free port in `dir` (data in `dir/data`);
/// returns the child, its address and the rest of its log.
pub fn spawn_server(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, String, std::io::BufReader<std::process::ChildStderr>) {
    let (child, addr, stderr, _before) = spawn_server_logged(dir, args, env);
    (child, addr, stderr)
}

/// [`spawn_server`], also returning the log lines it wrote before it was ready.
pub fn spawn_server_logged(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, String, std::io::BufReader<std::process::ChildStderr>, Vec<serde_json::Value>) {
    use std::io::BufRead;
    let mut cmd = ecom_command();
    cmd.current_dir(dir)
        .env("ECOM_LOG_FORMAT", "json")
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", "data"])
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.stderr(std::process::Stdio::piped()).stdout(std::process::Stdio::null()).spawn().unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let mut before = Vec::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        let v: serde_json::Value =
            serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["fields"]["message"] == "ready" {
            let addr = v["fields"]["addr"].as_str().unwrap().to_owned();
            return (child, addr, stderr, before);
        }
        before.push(v);
        line.clear();
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server never said it was ready");
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Boots the app with a fresh database; `tweak` adjusts the configuration.
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<Self> {
        Self::spawn_with_consumers(backend, tweak, |_| Vec::new()).await
    }

    /// Boots the app with extra bus consumers (made with the app's database) next to
    /// the built-in ones.
    pub async fn spawn_with_consumers(
        backend: Backend,
        tweak: impl FnOnce(&mut Config),
        consumers: impl FnOnce(&Db) -> Vec<std::sync::Arc<dyn ecom_bus::Consumer>>,
    ) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let database_url = fresh_database(backend, dir.path()).await?;
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            database_url: Some(Secret(database_url.clone())),
            secret_key: Some(Secret(SECRET.into())),
            ..Config::default()
        };
        tweak(&mut config);
        let mut app = Application::build(&config, false).await.expect("app builds");
        for c in consumers(&app.db) {
            app.add_consumer(c);
        }
        let addr = app.local_addr();
        let db = app.db.clone();
        let catalog = app.catalog.clone();
        let checkout = app.checkout.clone();
        let webhooks = app.webhooks.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        let accounts = Accounts::new(db.clone(), RateLimits::new(false), Mailer::default());
        Some(Self {
            addr,
            db,
            backend,
            accounts,
            catalog,
            checkout,
            webhooks,
            database_url,
            shutdown: Some(tx),
            server: Some(server),
            _dir: dir,
        })
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    /// A browser: keeps cookies per host, does not follow redirects, and resolves the
    /// test hosts (`*.localhost` and the custom domains given) to the app.
    pub fn browser(&self, extra_hosts: &[&str]) -> Browser {
        let mut builder = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none());
        for host in ["localhost", "demo.localhost", "acme.localhost", "nope.localhost"].iter().chain(extra_hosts) {
            builder = builder.resolve(host, self.addr);
        }
        Browser { client: builder.build().unwrap(), port: self.addr.port() }
    }

    pub fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.addr.port())
    }

    /// Creates a store with an owner and a customer, all with [`PASSWORD`].
    pub async fn store(&self, slug: &str, name: &str) -> Tenant {
        let tenant = tenants::create(
            &self.db,
            &tenants::NewTenant {
                slug: Slug::parse(slug).unwrap(),
                name: name.into(),
                currency: Currency::parse("USD").unwrap(),
                locale: Locale::parse("en-US").unwrap(),
            },
        )
        .await
        .unwrap();
        let pw = NewPassword::parse(PASSWORD).unwrap();
        self.accounts
            .create(
                Realm::Staff(tenant.id),
                &Email::parse(&format!("owner@{slug}.test")).unwrap(),
                "Owner",
                &pw,
                StaffRole::Owner,
            )
            .await
            .unwrap();
        self.accounts
            .create(Realm::Customer(tenant.id), &Email::parse("pat@example.com").unwrap(), "Pat", &pw, StaffRole::Staff)
            .await
            .unwrap();
        tenant
    }

    pub async fn admin(&self, email: &str) {
        let pw = NewPassword::parse(PASSWORD).unwrap();
        self.accounts
            .create(Realm::Admin, &Email::parse(email).unwrap(), "Admin", &pw, StaffRole::Owner)
            .await
            .unwrap();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub struct Browser {
    pub client: reqwest::Client,
    port: u16,
}

pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }

    /// The CSRF token of the first form on the page.
    pub fn csrf(&self) -> String {
        let marker = "name=\"_csrf\" value=\"";
        let start = self.body.find(marker).expect("page has a CSRF field") + marker.len();
        self.body[start..start + 64].to_owned()
    }
}

impl Browser {
    /// A browser for another node's address (tests with several nodes).
    pub fn new(client: reqwest::Client, port: u16) -> Self {
        Self { client, port }
    }

    pub fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port)
    }

    pub async fn get(&self, host: &str, path: &str) -> Page {
        let resp = self.client.get(self.url(host, path)).send().await.unwrap();
        to_page(resp).await
    }

    /// Posts a form with the given fields plus the CSRF token from `form_path`.
    pub async fn submit(&self, host: &str, form_path: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.get(host, form_path).await.csrf();
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("_csrf", &token));
        self.post(host, action, &all).await
    }

    pub async fn post(&self, host: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let resp = self.client.post(self.url(host, action)).form(fields).send().await.unwrap();
        to_page(resp).await
    }

    pub async fn login(&self, host: &str, area: &str, email: &str, password: &str) -> Page {
        self.submit(
            host,
            &format!("{area}/login"),
            &format!("{area}/login"),
            &[("email", email), ("password", password)],
        )
        .await
    }
}

pub async fn to_page(resp: reqwest::Response) -> Page {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.unwrap();
    Page { status, headers, body }
}

/// A product draft with Size × Color variants priced from `price` (minor units).
pub fn product(
    title: &str,
    kind: &str,
    tags: &[&str],
    colors: &[&str],
    price: i64,
    tenant: &Tenant,
) -> ecom_core::catalog::ProductDraft {
    use ecom_core::catalog::{Handle, ProductDraft, ProductOption, ProductStatus, VariantDraft};
    let sizes = ["S", "M"];
    let mut variants = Vec::new();
    for s in sizes {
        for c in colors {
            variants.push(VariantDraft {
                sku: Some(format!("{}-{s}-{c}", Handle::from_title(title).unwrap().as_str())),
                option_values: vec![s.into(), (*c).into()],
                price: ecom_core::Money::new(price, tenant.currency),
                compare_at: None,
                weight_grams: None,
                barcode: None,
                stock: if s == "M" && *c == colors[0] { 0 } else { 5 },
            });
        }
    }
    ProductDraft {
        handle: Handle::from_title(title).unwrap(),
        title: title.into(),
        body_html: format!("<p>All about the {title}.</p><script>alert(1)</script>"),
        status: ProductStatus::Active,
        vendor: "Testco".into(),
        product_type: kind.into(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        attributes: [("material".to_owned(), serde_json::Value::String("wool".into()))].into_iter().collect(),
        options: vec![
            ProductOption { name: "Size".into(), values: sizes.iter().map(|s| (*s).to_owned()).collect() },
            ProductOption { name: "Color".into(), values: colors.iter().map(|c| (*c).to_owned()).collect() },
        ],
        variants,
    }
}

// ---- checkout fixtures (checkout and Stripe tests) ----

/// A store with one product whose first variant has `stock` units, a shipping method
/// and a tax rate. Returns the store and the variant.
pub async fn store_with_stock(app: &TestApp, slug: &str, stock: i32) -> (Tenant, uuid::Uuid) {
    let tenant = app.store(slug, slug).await;
    let mut draft = product("Wool Hat", "Hats", &[], &["Red"], 2500, &tenant);
    draft.variants[0].stock = stock;
    draft.variants[0].weight_grams = Some(300);
    app.catalog.create_product(&tenant, draft, None).await.unwrap();
    let staff = ecom_services::checkout::Actor::Staff("owner@test".into());
    app.checkout.save_shipping(&tenant, "standard", "Standard", "5.00", "", "100", "", &staff).await.unwrap();
    app.checkout.save_tax(&tenant, "US", "IL", "Illinois", "6.25", &staff).await.unwrap();
    let view = app.catalog.product(&tenant, "wool-hat").await.unwrap().unwrap();
    (tenant, uuid::Uuid::parse_str(&view.variants[0].id).unwrap())
}

pub fn address() -> ecom_core::checkout::Address {
    ecom_core::checkout::Address {
        name: "Pat Doe".into(),
        line1: "1 Main St".into(),
        city: "Springfield".into(),
        region: "IL".into(),
        postal_code: "62701".into(),
        country: "US".into(),
        ..Default::default()
    }
}

/// A cart ready to place: `quantity` of `variant`, contact, address and shipping set.
pub async fn ready_cart(app: &TestApp, tenant: &Tenant, variant: uuid::Uuid, quantity: u32) -> uuid::Uuid {
    let cart = app.checkout.add_to_cart(tenant, None, None, variant, quantity).await.unwrap();
    let details = ecom_services::checkout::CheckoutDetails {
        email: "pat@example.com".into(),
        phone: String::new(),
        address: address(),
        shipping_code: "standard".into(),
        discount_code: String::new(),
    };
    app.checkout.save_details(tenant, cart, details).await.unwrap();
    cart
}

/// The topics of a store's outbox events starting with `prefix` (`order.`, …), oldest
/// first.
pub async fn outbox_topics(app: &TestApp, tenant: &Tenant, prefix: &str) -> Vec<String> {
    let txn = app.db.tenant_txn(tenant.id).await.unwrap();
    let rows = ecom_store::orders::outbox_of(&txn, tenant.id).await.unwrap();
    txn.commit().await.unwrap();
    rows.into_iter().map(|r| r.topic).filter(|t| t.starts_with(prefix)).collect()
}

/// Waits until the notification queue is empty (every queued email sent, or failed):
/// mail is sent by the dispatcher after the request that queued it has answered.
pub async fn mail_settled(db: &Db) {
    let start = std::time::Instant::now();
    loop {
        let txn = db.platform_txn().await.unwrap();
        let pending = ecom_store::notifications::count_pending(&txn).await.unwrap();
        txn.commit().await.unwrap();
        if pending == 0 {
            return;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "{pending} email(s) still queued");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `backends!(scenario)` runs `async fn scenario(backend: Backend)` as two tests,
/// `scenario::sqlite` and `scenario::postgres`.
#[macro_export]
macro_rules! backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await;
            }
        }
    };
}

/// A message in the notification log, with what it said.
#[derive(Debug, Clone)]
pub struct Logged {
    pub row: ecom_store::notifications::NotificationRow,
    pub body: ecom_store::notifications::BodyRow,
}

impl std::ops::Deref for Logged {
    type Target = ecom_store::notifications::NotificationRow;

    fn deref(&self) -> &Self::Target {
        &self.row
    }
}

/// The notification log (every store's and the platform's), newest first, at most
/// `limit` messages, each with its body.
pub async fn notification_log(db: &Db, limit: u64) -> Vec<Logged> {
    let txn = db.platform_txn().await.unwrap();
    let (rows, _) = ecom_store::notifications::list(&txn, None, limit).await.unwrap();
    let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id).collect();
    let mut bodies = ecom_store::notifications::bodies(&txn, &ids).await.unwrap();
    txn.commit().await.unwrap();
    rows.into_iter()
        .map(|row| {
            let body = bodies.remove(&row.id).unwrap_or_else(|| panic!("message {} has no body", row.id));
            Logged { row, body }
        })
        .collect()
}

/// The marketing job (abandoned carts, back in stock) on this app's database, with its
/// links and signatures, run by the tests with `run_once` at a time of their choosing.
pub fn marketing_job(app: &TestApp) -> ecom_notify::MarketingJob {
    let port = app.addr.port();
    ecom_notify::MarketingJob::new(
        app.db.clone(),
        ecom_notify::StoreLinks::new(move |t| format!("http://{}.localhost:{port}", t.slug.as_str())),
        ecom_notify::LinkSigner::new(SECRET.as_bytes()),
        ecom_notify::MarketingSettings { mailto: "no-reply@localhost".into(), ..Default::default() },
    )
}
