//! `ecom-bench`: seeds stores and drives load at a running `ecom serve` from a second
//! process, over loopback. The scripts beside it run the scenarios and write reports.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use ecom_core::{Currency, Email, Locale, Money, Realm, Slug, StaffRole};
use ecom_store::{Db, DbOptions, accounts, tenants};
use rand::RngExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod notify;

#[derive(Parser)]
#[command(about = "ECOM load generator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create stores s0 … s{N-1}, each with an owner and a customer (password: bench-password).
    Seed {
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        stores: u32,
    },
    /// Create store "bench" with N products (Size × Color variants) in collections.
    SeedCatalog {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 10_000)]
        products: usize,
    },
    /// Product and collection page throughput and latency on one store: at a fixed
    /// rate, and at saturation. `--static-url` also saturates a static server (nginx)
    /// serving the same bytes, for comparison.
    Pages {
        #[arg(long)]
        base: String,
        #[arg(long, default_value = "bench.localhost")]
        host: String,
        #[arg(long, default_value_t = 10_000)]
        products: usize,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Requests per second for the fixed-rate runs.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        #[arg(long)]
        static_url: Option<String>,
    },
    /// Storefront GraphQL throughput and latency with the catalog cache warm:
    /// `product(handle:)` and `products(first: 20)` with variants and images.
    Graphql {
        #[arg(long)]
        base: String,
        #[arg(long, default_value = "bench.localhost")]
        host: String,
        #[arg(long, default_value_t = 10_000)]
        products: usize,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// Create store "outfitters" with N products in deep stock, a shipping method and a tax
    /// rate, ready for checkouts.
    SeedCheckout {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 20)]
        products: usize,
    },
    /// Complete checkouts over HTTP (add to cart → checkout page → place with a test
    /// card → paid order) from concurrent shoppers, then count the orders in the
    /// database: none lost, none duplicated.
    Checkout {
        #[arg(long)]
        base: String,
        #[arg(long, default_value = "outfitters.localhost")]
        host: String,
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// Bus throughput: writes N `product.updated` events straight into the outbox of
    /// store "outfitters" (seeded by seed-checkout) and times until the running server's
    /// activity consumer has applied them all (its receipts), i.e. outbox → relay
    /// (→ broker) → consumer.
    BusEvents {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 5_000)]
        events: u64,
        #[arg(long, default_value = "outfitters")]
        store: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
    },
    /// A fast SMTP sink for the notification benchmark: accepts and counts every
    /// message, writing "<messages> <bytes>" to the count file ten times a second.
    SmtpSink {
        #[arg(long, default_value = "127.0.0.1:2526")]
        listen: String,
        #[arg(long)]
        count_file: String,
    },
    /// A fast HTTP sink standing in for Twilio's Messages API (201 and a sid for every
    /// POST), counting like the SMTP sink.
    HttpSink {
        #[arg(long, default_value = "127.0.0.1:2527")]
        listen: String,
        #[arg(long)]
        count_file: String,
    },
    /// Notification throughput: writes N order events (copies of store "outfitters"'s
    /// real order.placed / order.paid events, one shopper email each) into the outbox
    /// and times until the SMTP sink has received N more messages: outbox → relay →
    /// notifications consumer → queue → dispatcher → SMTP.
    NotifyEvents {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 10_000)]
        notifications: u64,
        #[arg(long, default_value = "outfitters")]
        store: String,
        #[arg(long)]
        count_file: String,
        /// Also text the shopper: the copied orders are moved to a customer account
        /// with a verified phone that asked for SMS order updates, and the run waits
        /// for N messages at the HTTP sink writing this count file too.
        #[arg(long)]
        sms_count_file: Option<String>,
        #[arg(long, default_value_t = 3600)]
        timeout_secs: u64,
    },
    /// Measure tenant resolution + storefront, and customer login, across N stores.
    Tenancy {
        /// e.g. http://127.0.0.1:18090
        #[arg(long)]
        base: String,
        #[arg(long)]
        stores: u32,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
}

pub const PASSWORD: &str = "bench-password";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Seed { database_url, stores } => seed(&database_url, stores).await,
        Command::Tenancy { base, stores, secs, concurrency } => tenancy(&base, stores, secs, concurrency).await,
        Command::SeedCatalog { database_url, products } => {
            seed_catalog(&database_url, products, "bench", None).await.map(|_| ())
        }
        Command::SeedCheckout { database_url, products } => seed_checkout(&database_url, products).await,
        Command::Checkout { base, host, database_url, secs, concurrency } => {
            checkout(&base, &host, &database_url, secs, concurrency).await
        }
        Command::Graphql { base, host, products, secs, concurrency } => {
            graphql(&base, &host, products, secs, concurrency).await
        }
        Command::SmtpSink { listen, count_file } => notify::smtp_sink(&listen, &count_file),
        Command::HttpSink { listen, count_file } => notify::http_sink(&listen, &count_file),
        Command::NotifyEvents { database_url, notifications, store, count_file, sms_count_file, timeout_secs } => {
            let sinks = notify::Sinks { email: count_file, sms: sms_count_file };
            notify::notify_events(&database_url, &store, notifications, &sinks, timeout_secs).await
        }
        Command::BusEvents { database_url, events, store, timeout_secs } => {
            bus_events(&database_url, events, &store, timeout_secs).await
        }
        Command::Pages { base, host, products, secs, concurrency, rate, static_url } => {
            pages(&base, &host, products, secs, concurrency, rate, static_url.as_deref()).await
        }
    }
}

async fn seed(url: &str, stores: u32) -> anyhow::Result<()> {
    let db = Db::connect(&DbOptions { url: url.into(), max_connections: 4, acquire_timeout: Duration::from_secs(10) })
        .await?;
    db.migrate().await?;
    // One hash for every account: hashing 2 × N passwords would dominate the seeding.
    let hash = ecom_services::passwords::hash(PASSWORD.into()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    for i in 0..stores {
        let tenant = tenants::create_on_plan(
            &db,
            &tenants::NewTenant {
                slug: Slug::parse(&format!("s{i}"))?,
                name: format!("Bench Store {i}"),
                currency: Currency::parse("USD")?,
                locale: Locale::parse("en-US")?,
            },
            Some("unlimited"),
        )
        .await?;
        let txn = db.tenant_txn(tenant.id).await?;
        for (realm, email) in
            [(Realm::Staff(tenant.id), "owner@bench.test"), (Realm::Customer(tenant.id), "customer@bench.test")]
        {
            let email = Email::parse(email)?;
            accounts::insert(
                &txn,
                accounts::NewAccount {
                    realm,
                    email: &email,
                    name: "Bench",
                    password_hash: &hash,
                    role: StaffRole::Owner,
                },
            )
            .await?;
        }
        txn.commit().await?;
        if (i + 1) % 1000 == 0 || i + 1 == stores {
            eprintln!("seeded {}/{stores} stores ({:.1} s)", i + 1, started.elapsed().as_secs_f64());
        }
    }
    Ok(())
}

/// Latencies of one scenario.
struct Sample {
    name: &'static str,
    latencies: Vec<Duration>,
    errors: u64,
    elapsed: Duration,
}

impl Sample {
    fn pct(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let idx = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[idx].as_secs_f64() * 1000.0
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "scenario": self.name,
            "requests": self.latencies.len(),
            "errors": self.errors,
            "rps": self.latencies.len() as f64 / self.elapsed.as_secs_f64(),
            "p50_ms": self.pct(0.50),
            "p90_ms": self.pct(0.90),
            "p99_ms": self.pct(0.99),
        })
    }
}

/// One connection pool for every store: requests go to the server's address with the
/// store in the `Host` header, so the figures measure the server's per-request cost
/// and not a new TCP connection per store host.
fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).pool_max_idle_per_host(256).build()?)
}

async fn get_store_home(http: &reqwest::Client, base: &str, store: u32) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let resp = http.get(format!("{base}/")).header("host", format!("s{store}.localhost")).send().await?;
    if resp.status() != 200 {
        bail!("status {}", resp.status());
    }
    resp.bytes().await?;
    Ok(t.elapsed())
}

/// Runs `op` from `concurrency` tasks for `secs` seconds; each call returns its own
/// measured latency (so set-up requests can be left out).
async fn drive<F, Fut>(name: &'static str, secs: u64, concurrency: usize, op: F) -> Sample
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<Duration>> + Send,
{
    let op = Arc::new(op);
    drive_until(name, secs, concurrency, move |n| {
        let op = op.clone();
        async move { op(n).await.map(Some) }
    })
    .await
}

/// Like [`drive`], but stops early once `op` returns `Ok(None)` (work exhausted).
async fn drive_until<F, Fut>(name: &'static str, secs: u64, concurrency: usize, op: F) -> Sample
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<Option<Duration>>> + Send,
{
    let op = Arc::new(op);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..concurrency {
        let op = op.clone();
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut n = w as u64;
            while Instant::now() < deadline {
                match op(n).await {
                    Ok(Some(d)) => lat.push(d),
                    Ok(None) => break,
                    Err(_) => errors += 1,
                }
                n += concurrency as u64;
            }
            (lat, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for h in handles {
        if let Ok((l, e)) = h.await {
            latencies.extend(l);
            errors += e;
        }
    }
    latencies.sort_unstable();
    Sample { name, latencies, errors, elapsed: started.elapsed() }
}

fn csrf_of(body: &str) -> anyhow::Result<String> {
    let marker = "name=\"_csrf\" value=\"";
    let start = body.find(marker).context("no CSRF field")? + marker.len();
    Ok(body.get(start..start + 64).context("short CSRF token")?.to_owned())
}

async fn tenancy(base: &str, stores: u32, secs: u64, concurrency: usize) -> anyhow::Result<()> {
    let base = base.trim_end_matches('/').to_owned();
    let http = client()?;
    // First visit to each store: the node has not seen the host, so it is resolved from
    // the database (then cached).
    let cold = {
        let http = http.clone();
        let base = base.clone();
        let next = Arc::new(std::sync::atomic::AtomicU32::new(0));
        drive_until("storefront home, first visit of each store (cache miss)", secs, concurrency, move |_| {
            let http = http.clone();
            let base = base.clone();
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move {
                if i >= stores {
                    return Ok(None);
                }
                get_store_home(&http, &base, i).await.map(Some)
            }
        })
        .await
    };
    // Random stores, all seen before: host resolution from the node's cache + render.
    let warm = {
        let http = http.clone();
        let base = base.clone();
        drive("storefront home, random store (cached)", secs, concurrency, move |_| {
            let http = http.clone();
            let base = base.clone();
            let store = rand::rng().random_range(0..stores);
            async move { get_store_home(&http, &base, store).await }
        })
        .await
    };
    // Customer sign-in on a random store: the form (for the CSRF cookie and token, not
    // timed), then the timed POST.
    let login = {
        let http = http.clone();
        let base = base.clone();
        drive("customer sign-in, random store", secs, concurrency, move |_| {
            let http = http.clone();
            let base = base.clone();
            let host = format!("s{}.localhost", rand::rng().random_range(0..stores));
            async move {
                let form = http.get(format!("{base}/account/login")).header("host", &host).send().await?;
                let cookie = form
                    .headers()
                    .get_all("set-cookie")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find(|c| c.starts_with("ecom_csrf="))
                    .and_then(|c| c.split(';').next())
                    .context("no CSRF cookie")?
                    .to_owned();
                let token = csrf_of(&form.text().await?)?;
                let t = Instant::now();
                let resp = http
                    .post(format!("{base}/account/login"))
                    .header("host", &host)
                    .header("cookie", cookie)
                    .form(&[("email", "customer@bench.test"), ("password", PASSWORD), ("_csrf", token.as_str())])
                    .send()
                    .await?;
                if resp.status() != 303 {
                    bail!("status {}", resp.status());
                }
                Ok(t.elapsed())
            }
        })
        .await
    };
    let report = serde_json::json!({ "stores": stores, "concurrency": concurrency, "secs": secs, "results": [cold.json(), warm.json(), login.json()] });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Product titles like "Linen Shirt 0042": handles are predictable for the load.
fn bench_handle(i: usize) -> String {
    format!("bench-product-{i:05}")
}

/// Seeds a store with `products` products; `stock` overrides the varied stock levels.
async fn seed_catalog(
    url: &str,
    products: usize,
    slug: &str,
    stock: Option<i32>,
) -> anyhow::Result<(Db, ecom_core::Tenant)> {
    use ecom_core::catalog::{Handle, ProductDraft, ProductOption, ProductStatus, VariantDraft};
    let db = Db::connect(&DbOptions { url: url.into(), max_connections: 4, acquire_timeout: Duration::from_secs(10) })
        .await?;
    db.migrate().await?;
    let tenant = tenants::create_on_plan(
        &db,
        &tenants::NewTenant {
            slug: Slug::parse(slug)?,
            name: "Bench Store".into(),
            currency: Currency::parse("USD")?,
            locale: Locale::parse("en-US")?,
        },
        Some("unlimited"),
    )
    .await?;
    let catalog = ecom_services::Catalog::new(db.clone());
    let sizes = ["S", "M", "L"];
    let colors = ["Red", "Blue", "Green", "Black"];
    let kinds = ["Shirts", "Sweaters", "Trousers", "Jackets", "Hats"];
    let started = Instant::now();
    let drafts: Vec<ecom_services::catalog_csv::ImportedProduct> = (0..products)
        .map(|i| {
            let options = vec![
                ProductOption { name: "Size".into(), values: sizes.iter().map(|s| (*s).to_owned()).collect() },
                ProductOption { name: "Color".into(), values: colors.iter().map(|c| (*c).to_owned()).collect() },
            ];
            let variants = ecom_core::catalog::option_combinations(&options)
                .into_iter()
                .enumerate()
                .map(|(j, values)| VariantDraft {
                    sku: Some(format!("B{i:05}-{j:02}")),
                    option_values: values,
                    price: Money::new(1000 + (i as i64 * 37) % 20_000, Currency::parse("USD").unwrap_or_else(|_| unreachable!())),
                    compare_at: None,
                    weight_grams: Some(400),
                    barcode: None,
                    stock: stock.unwrap_or(((i + j) % 9) as i32),
                })
                .collect();
            let kind = kinds[i % kinds.len()];
            ecom_services::catalog_csv::ImportedProduct {
                draft: ProductDraft {
                    handle: Handle::parse(&bench_handle(i)).unwrap_or_else(|_| unreachable!()),
                    title: format!("Bench {kind} {i:05}"),
                    body_html: format!("<p>Product {i} of the benchmark catalog: a plausible description of a plausible {kind}, long enough to look like a real one.</p><ul><li>Cotton</li><li>Made in Portugal</li></ul>"),
                    status: ProductStatus::Active,
                    vendor: "Bench Co".into(),
                    product_type: kind.into(),
                    tags: vec![kind.to_lowercase(), format!("batch-{}", i % 10)],
                    attributes: [("material".to_owned(), serde_json::Value::String("cotton".into()))].into_iter().collect(),
                    options,
                    variants,
                },
                line: i + 2,
                images: Vec::new(),
            }
        })
        .collect();
    let last = std::sync::atomic::AtomicUsize::new(0);
    catalog
        .import_products(&tenant, drafts, &|done, total| {
            if done * 10 / total != last.load(std::sync::atomic::Ordering::Relaxed) {
                last.store(done * 10 / total, std::sync::atomic::Ordering::Relaxed);
                eprintln!("seeded {done}/{total} products ({:.1} s)", started.elapsed().as_secs_f64());
            }
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    catalog
        .create_collection(
            &tenant,
            "Shirts",
            "",
            Some(vec![ecom_core::catalog::CollectionRule::ProductType("Shirts".into())]),
            &[],
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!("seeded {products} products in {:.1} s", started.elapsed().as_secs_f64());
    Ok((db, tenant))
}

async fn seed_checkout(url: &str, products: usize) -> anyhow::Result<()> {
    use ecom_store::orders as repo;
    let (db, tenant) = seed_catalog(url, products, "outfitters", Some(10_000_000)).await?;
    let txn = db.tenant_txn(tenant.id).await?;
    repo::save_shipping_method(&txn, tenant.id, "standard", "Standard", 500, 0, Some(10_000), "", 0).await?;
    repo::save_tax_rate(&txn, tenant.id, "US", "IL", "Illinois", 625).await?;
    txn.commit().await?;
    Ok(())
}

/// One shopper's checkout: three requests. Returns the order page's address.
async fn one_checkout(http: &reqwest::Client, base: &str, host: &str, variant: &str) -> anyhow::Result<String> {
    let add = http
        .post(format!("{base}/cart/add"))
        .header("host", host)
        .form(&[("variant", variant), ("quantity", "1")])
        .send()
        .await?;
    if add.status() != 303 {
        bail!("add to cart: {}", add.status());
    }
    let page = http.get(format!("{base}/checkout")).header("host", host).send().await?;
    if page.status() != 200 {
        bail!("checkout page: {}", page.status());
    }
    let token = csrf_of(&page.text().await?)?;
    let placed = http
        .post(format!("{base}/checkout"))
        .header("host", host)
        .form(&[
            ("_csrf", token.as_str()),
            ("email", "bench@example.com"),
            ("name", "Bench Shopper"),
            ("line1", "1 Main St"),
            ("city", "Springfield"),
            ("region", "IL"),
            ("postal_code", "62701"),
            ("country", "US"),
            ("shipping", "standard"),
            ("provider", "test_card"),
            ("card_number", "4242424242424242"),
            ("action", "place"),
        ])
        .send()
        .await?;
    let to = placed.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if placed.status() != 303 || !to.starts_with("/orders/") || to.contains("declined") {
        bail!("place order: {} {to}", placed.status());
    }
    Ok(to)
}

async fn checkout(base: &str, host: &str, database_url: &str, secs: u64, concurrency: usize) -> anyhow::Result<()> {
    let base = base.trim_end_matches('/').to_owned();
    let db = Db::connect(&DbOptions {
        url: database_url.into(),
        max_connections: 2,
        acquire_timeout: Duration::from_secs(10),
    })
    .await?;
    let tenant = tenants::find_by_slug(&db, host.split('.').next().unwrap_or_default())
        .await?
        .context("no store for that host; run seed-checkout first")?;
    let catalog = ecom_services::Catalog::new(db.clone());
    let variants: Vec<String> = catalog
        .export_products(&tenant)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .iter()
        .flat_map(|(_, vs)| vs.iter().map(|v| v.id.to_string()))
        .collect();
    if variants.is_empty() {
        bail!("the store has no variants");
    }
    // Each shopper has its own cookies (cart, CSRF nonce).
    let shoppers: Vec<reqwest::Client> = (0..concurrency)
        .map(|_| reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build())
        .collect::<Result<_, _>>()?;
    let shoppers = Arc::new(shoppers);
    let placed = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let errors_seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let variants = Arc::new(variants);
    let sample = {
        let (base, host, placed, errors_seen) = (base.clone(), host.to_owned(), placed.clone(), errors_seen.clone());
        drive("checkout: cart → placed, paid order", secs, concurrency, move |n| {
            let http = shoppers[n as usize % shoppers.len()].clone();
            let variant = variants[(n as usize * 7919) % variants.len()].clone();
            let (base, host, placed, errors_seen) = (base.clone(), host.clone(), placed.clone(), errors_seen.clone());
            async move {
                let t = Instant::now();
                match one_checkout(&http, &base, &host, &variant).await {
                    Ok(order) => {
                        placed.lock().map_err(|_| anyhow::anyhow!("lock"))?.push(order);
                        Ok(t.elapsed())
                    }
                    Err(e) => {
                        if let Ok(mut seen) = errors_seen.lock()
                            && seen.len() < 5
                        {
                            seen.push(e.to_string());
                        }
                        Err(e)
                    }
                }
            }
        })
        .await
    };
    // Let the last payments' webhooks land, then count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let placed = placed.lock().map_err(|_| anyhow::anyhow!("lock"))?.clone();
    let distinct: std::collections::HashSet<&String> = placed.iter().collect();
    let txn = db.tenant_txn(tenant.id).await?;
    let filter = ecom_store::orders::OrderFilter { limit: u64::MAX >> 1, ..Default::default() };
    let (rows, total) = ecom_store::orders::list_orders(&txn, tenant.id, &filter).await?;
    let outbox = ecom_store::orders::outbox_of(&txn, tenant.id).await?;
    txn.commit().await?;
    let paid = rows.iter().filter(|r| r.payment_status == "paid").count();
    let mut numbers: Vec<i64> = rows.iter().map(|r| r.number).collect();
    numbers.sort_unstable();
    let contiguous = numbers.windows(2).all(|w| w[1] == w[0] + 1);
    let tokens: std::collections::HashSet<String> =
        rows.iter().map(|r| format!("/orders/{}", r.access_token)).collect();
    let confirmed_found = distinct.iter().filter(|t| tokens.contains(t.as_str())).count();
    let placed_events = outbox.iter().filter(|e| e.topic == "order.placed").count();
    let paid_events = outbox.iter().filter(|e| e.topic == "order.paid").count();
    let mut result = sample.json();
    result["confirmed_to_shoppers"] = placed.len().into();
    result["distinct_confirmations"] = distinct.len().into();
    result["orders_in_database"] = total.into();
    result["paid_in_database"] = paid.into();
    result["confirmations_found_in_database"] = confirmed_found.into();
    result["order_numbers_contiguous"] = contiguous.into();
    result["outbox_order_placed"] = placed_events.into();
    result["outbox_order_paid"] = paid_events.into();
    result["first_errors"] = serde_json::json!(*errors_seen.lock().map_err(|_| anyhow::anyhow!("lock"))?);
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

/// Sends requests at `rate` per second for `secs` (open loop: latency includes any
/// queueing), returning the latencies of those that succeeded.
async fn fixed_rate<F, Fut>(name: &'static str, secs: u64, rate: u64, op: F) -> Sample
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<Duration>> + Send + 'static,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut handles = Vec::new();
    for n in 0..secs * rate {
        tick.tick().await;
        let op = op.clone();
        handles.push(tokio::spawn(async move { op(n).await }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for h in handles {
        match h.await {
            Ok(Ok(d)) => latencies.push(d),
            _ => errors += 1,
        }
    }
    latencies.sort_unstable();
    Sample { name, latencies, errors, elapsed: started.elapsed() }
}

async fn get_ok(http: &reqwest::Client, url: String, host: Option<String>) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let mut req = http.get(url);
    if let Some(h) = host {
        req = req.header("host", h);
    }
    let resp = req.send().await?;
    if resp.status() != 200 {
        bail!("status {}", resp.status());
    }
    resp.bytes().await?;
    Ok(t.elapsed())
}

async fn pages(
    base: &str,
    host: &str,
    products: usize,
    secs: u64,
    concurrency: usize,
    rate: u64,
    static_url: Option<&str>,
) -> anyhow::Result<()> {
    let base = base.trim_end_matches('/').to_owned();
    let http = client()?;
    let product_url = {
        let base = base.clone();
        move |n: u64| format!("{base}/products/{}", bench_handle((n as usize * 7919) % products))
    };
    let collection_url = {
        let base = base.clone();
        move |n: u64| format!("{base}/collections/shirts?page={}", n % 20 + 1)
    };
    // Warm the node's cache for every product once, as a running store would be.
    {
        let (http, host, base) = (http.clone(), host.to_owned(), base.clone());
        let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
        drive_until("warm-up", 120, concurrency, move |_| {
            let (http, host, base) = (http.clone(), host.clone(), base.clone());
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move {
                if i >= products as u64 {
                    return Ok(None);
                }
                get_ok(&http, format!("{base}/products/{}", bench_handle(i as usize)), Some(host)).await.map(Some)
            }
        })
        .await;
    }
    let mut results = Vec::new();
    for (name, url_fn) in [
        ("product page", Arc::new(product_url) as Arc<dyn Fn(u64) -> String + Send + Sync>),
        ("collection page", Arc::new(collection_url)),
    ] {
        let (h1, host1, u1) = (http.clone(), host.to_owned(), url_fn.clone());
        let at_rate = fixed_rate(
            if name == "product page" { "product page at fixed rate" } else { "collection page at fixed rate" },
            secs,
            rate,
            move |n| {
                let (http, host, url) = (h1.clone(), host1.clone(), u1(n));
                async move { get_ok(&http, url, Some(host)).await }
            },
        )
        .await;
        let (h2, host2, u2) = (http.clone(), host.to_owned(), url_fn.clone());
        let saturated = drive(
            if name == "product page" { "product page at saturation" } else { "collection page at saturation" },
            secs,
            concurrency,
            move |n| {
                let (http, host, url) = (h2.clone(), host2.clone(), u2(n));
                async move { get_ok(&http, url, Some(host)).await }
            },
        )
        .await;
        results.push(at_rate.json());
        results.push(saturated.json());
    }
    // The one page nginx serves below, for a like-for-like ratio.
    {
        let (http, host, url) = (http.clone(), host.to_owned(), format!("{base}/products/{}", bench_handle(42)));
        let same = drive("product page, the same single page as nginx, at saturation", secs, concurrency, move |_| {
            let (http, host, url) = (http.clone(), host.clone(), url.clone());
            async move { get_ok(&http, url, Some(host)).await }
        })
        .await;
        results.push(same.json());
    }
    if let Some(url) = static_url {
        let (http, url) = (http.clone(), url.to_owned());
        let nginx = drive("same product page as a static file (nginx) at saturation", secs, concurrency, move |_| {
            let (http, url) = (http.clone(), url.clone());
            async move { get_ok(&http, url, None).await }
        })
        .await;
        results.push(nginx.json());
    }
    let report = serde_json::json!({ "products": products, "concurrency": concurrency, "rate": rate, "secs": secs, "results": results });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

const PRODUCT_QUERY: &str = "query Product($handle: String!) { product(handle: $handle) { id title handle \
    vendor availableForSale priceRange { minVariantPrice { amount currencyCode } } \
    variants(first: 20) { nodes { id title sku availableForSale price { amount } selectedOptions { name value } } } \
    images(first: 5) { nodes { url altText width height } } } }";

const PAGE_QUERY: &str = "query Page($after: String) { products(first: 20, after: $after) { \
    pageInfo { hasNextPage endCursor } nodes { id title handle \
    priceRange { minVariantPrice { amount currencyCode } } \
    variants(first: 20) { nodes { id title availableForSale price { amount } } } \
    images(first: 3) { nodes { url altText } } } } }";

/// Posts a GraphQL query; an answer with errors counts as a failure.
async fn graphql_ok(
    http: &reqwest::Client,
    url: &str,
    host: &str,
    query: &str,
    variables: serde_json::Value,
) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let body = serde_json::json!({ "query": query, "variables": variables });
    let resp = http.post(url).header("host", host).json(&body).send().await?;
    if resp.status() != 200 {
        bail!("status {}", resp.status());
    }
    let bytes = resp.bytes().await?;
    // Errors are reported at the start of the body, before data.
    if bytes.windows(9).any(|w| w == b"\"errors\":") {
        bail!("GraphQL errors: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)]));
    }
    Ok(t.elapsed())
}

async fn graphql(base: &str, host: &str, products: usize, secs: u64, concurrency: usize) -> anyhow::Result<()> {
    let url = format!("{}/graphql", base.trim_end_matches('/'));
    let http = client()?;
    // Page cursors: "pos:<n>" in base64url, as the API hands them out.
    let cursor = |pos: usize| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("pos:{pos}"))
    };
    let pages = products / 20;
    // Warm the node's cache: every product once, every page once.
    {
        let (http, host, url) = (http.clone(), host.to_owned(), url.clone());
        let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let warm = drive_until("warm-up", 300, concurrency, move |_| {
            let (http, host, url) = (http.clone(), host.clone(), url.clone());
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as usize;
            async move {
                if i < products {
                    let vars = serde_json::json!({ "handle": bench_handle(i) });
                    graphql_ok(&http, &url, &host, PRODUCT_QUERY, vars).await.map(Some)
                } else if i < products + pages {
                    let page = i - products;
                    let after = if page == 0 { serde_json::Value::Null } else { cursor(page * 20 - 1).into() };
                    graphql_ok(&http, &url, &host, PAGE_QUERY, serde_json::json!({ "after": after })).await.map(Some)
                } else {
                    Ok(None)
                }
            }
        })
        .await;
        if warm.errors > 0 {
            bail!("warm-up failed {} times", warm.errors);
        }
    }
    let mut results = Vec::new();
    {
        let (http, host, url) = (http.clone(), host.to_owned(), url.clone());
        let sample = drive("product(handle) at saturation", secs, concurrency, move |n| {
            let (http, host, url) = (http.clone(), host.clone(), url.clone());
            let vars = serde_json::json!({ "handle": bench_handle((n as usize * 7919) % products) });
            async move { graphql_ok(&http, &url, &host, PRODUCT_QUERY, vars).await }
        })
        .await;
        results.push(sample.json());
    }
    {
        let (http, host, url) = (http.clone(), host.to_owned(), url.clone());
        let sample = drive("products(first: 20) at saturation", secs, concurrency, move |n| {
            let (http, host, url) = (http.clone(), host.clone(), url.clone());
            let page = (n as usize * 31) % pages.max(1);
            let after = if page == 0 { serde_json::Value::Null } else { cursor(page * 20 - 1).into() };
            async move { graphql_ok(&http, &url, &host, PAGE_QUERY, serde_json::json!({ "after": after })).await }
        })
        .await;
        results.push(sample.json());
    }
    let report =
        serde_json::json!({ "products": products, "concurrency": concurrency, "secs": secs, "results": results });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// How many events the activity consumer has applied in a store.
async fn activity_receipts(db: &Db, tenant: ecom_core::TenantId) -> anyhow::Result<u64> {
    let txn = db.tenant_txn(tenant).await?;
    let n = ecom_store::bus::receipts(&txn, tenant, "activity").await?;
    txn.commit().await?;
    Ok(n)
}

async fn bus_events(url: &str, events: u64, store: &str, timeout_secs: u64) -> anyhow::Result<()> {
    let db = Db::connect(&DbOptions { url: url.into(), max_connections: 2, acquire_timeout: Duration::from_secs(30) })
        .await?;
    let tenant =
        tenants::find_by_slug(&db, store).await?.with_context(|| format!("no store {store}: seed it first"))?;
    let before = activity_receipts(&db, tenant.id).await?;
    let start = Instant::now();
    let mut written = 0;
    while written < events {
        let batch = (events - written).min(500);
        let txn = db.tenant_txn(tenant.id).await?;
        for i in 0..batch {
            let n = written + i;
            let payload =
                serde_json::json!({"product_id": uuid_from(n), "handle": format!("bench-{n}"), "title": "Bench"});
            ecom_store::orders::outbox(&txn, tenant.id, "product.updated", payload).await?;
        }
        txn.commit().await?;
        written += batch;
    }
    let inserted = start.elapsed();
    let deadline = Duration::from_secs(timeout_secs);
    loop {
        let done = activity_receipts(&db, tenant.id).await?.saturating_sub(before);
        if done >= events {
            break;
        }
        if start.elapsed() > deadline {
            bail!("only {done} of {events} events applied after {timeout_secs} s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = start.elapsed();
    let result = serde_json::json!({
        "events": events,
        "insert_secs": inserted.as_secs_f64(),
        "total_secs": total.as_secs_f64(),
        "events_per_sec": events as f64 / total.as_secs_f64(),
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

/// A stable, distinct id per bench event (the payload's product id is not looked up).
fn uuid_from(n: u64) -> String {
    format!("00000000-0000-7000-8000-{n:012x}")
}
