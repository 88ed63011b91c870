//! The `ecom` binary's library half: configuration, wiring and the startup seam that
//! integration tests use (`Application::build` binds port 0 and reports the port).

pub mod config;
mod demo_images;
pub mod telemetry;

use anyhow::Context;
use config::{Config, Scheme};
use ecom_services::demo::DemoLogin;
use ecom_services::{Accounts, Catalog, Directory, Mailer, RateLimits};
use ecom_store::{Db, DbOptions};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;

/// A built, bound, not yet running application.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    /// The database, for tests that look behind the HTTP surface.
    pub db: Db,
    /// Demo logins when started with demo data.
    pub demo_logins: Vec<DemoLogin>,
    /// The app's catalog service (shares its cache), for tests and tools.
    pub catalog: Catalog,
    media: ecom_media::Media,
    /// Draw the demo stores' product pictures once serving.
    demo: bool,
    limits: RateLimits,
}

/// Opens the database from the configuration and brings its schema up to date.
pub async fn open_database(config: &Config) -> anyhow::Result<Db> {
    if !config.is_postgres() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create the data directory {}", config.data_dir.display()))?;
    }
    let max = config.database_max_connections.unwrap_or(if config.is_postgres() { 10 } else { 1 });
    let db = Db::connect(&DbOptions {
        url: config.database_url(),
        max_connections: max,
        acquire_timeout: Duration::from_secs(config.database_timeout_secs),
    })
    .await
    // The URL may hold a password: name the setting, not its value.
    .context("cannot connect to the database (check ECOM_DATABASE_URL)")?;
    db.migrate().await.context("database migration failed")?;
    Ok(db)
}

/// The secret key from the configuration, or the one kept in the data directory
/// (created on first start).
pub fn secret_key(config: &Config) -> anyhow::Result<String> {
    if let Some(secret) = &config.secret_key {
        return Ok(secret.0.clone());
    }
    let path = config.data_dir.join("secret.key");
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => return Ok(s.trim().to_owned()),
        Ok(_) => anyhow::bail!("{} is shorter than 32 characters; delete it to generate a new one", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data directory {}", config.data_dir.display()))?;
    let secret = hex::encode(rand::random::<[u8; 32]>());
    write_private(&path, &secret).with_context(|| format!("cannot write {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a new secret key; set ECOM_SECRET_KEY to the same value on every node");
    Ok(secret)
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(contents.as_bytes())
}

impl Application {
    /// Wires everything and binds the listener; `demo` seeds demo data into an empty
    /// database.
    pub async fn build(config: &Config, demo: bool) -> anyhow::Result<Self> {
        let db = open_database(config).await?;
        let secret = secret_key(config)?;
        let limits = RateLimits::new(config.rate_limits);
        let accounts = Accounts::new(db.clone(), limits.clone(), Mailer);
        let catalog = Catalog::new(db.clone());
        let catalog_handle = catalog.clone();
        let demo_logins = if demo {
            ecom_services::demo::seed(&db, &accounts, &catalog)
                .await
                .map_err(|e| anyhow::anyhow!("seeding demo data failed: {e}"))?
        } else {
            Vec::new()
        };
        let directory =
            Directory::new(db.clone(), &config.platform_domain, Duration::from_secs(config.tenant_cache_ttl_secs));
        let media = ecom_media::Media::local(&config.data_dir.join("media"))
            .map_err(|e| anyhow::anyhow!("media storage: {e}"))?;
        let media_handle = media.clone();
        let state = ecom_web::AppState::new(
            ecom_web::Services { db: db.clone(), directory, accounts, catalog, media },
            secret.as_bytes(),
            ecom_web::install_metrics_recorder(),
            ecom_web::WebConfig {
                secure: config.public_scheme == Scheme::Https,
                public_scheme: match config.public_scheme {
                    Scheme::Http => "http".into(),
                    Scheme::Https => "https".into(),
                },
            },
        );
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {} (ECOM_LISTEN)", config.listen))?;
        Ok(Self {
            listener,
            router: ecom_web::router(state),
            db,
            demo_logins,
            limits,
            catalog: catalog_handle,
            media: media_handle,
            demo,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets in-flight
    /// requests finish.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let limits = self.limits.clone();
        let pruner = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                limits.prune();
            }
        });
        if self.demo {
            let (db, catalog, media) = (self.db.clone(), self.catalog.clone(), self.media.clone());
            tokio::spawn(async move {
                for slug in ["demo", "acme"] {
                    let Ok(Some(tenant)) = ecom_store::tenants::find_by_slug(&db, slug).await else { continue };
                    match demo_images::add(&catalog, &media, &tenant).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(store = slug, images = n, "demo product pictures drawn"),
                        Err(e) => tracing::warn!(store = slug, error = %e, "demo product pictures failed"),
                    }
                }
            });
        }
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        let result = axum::serve(self.listener, service).with_graceful_shutdown(shutdown).await;
        pruner.abort();
        self.db.connection().clone().close().await.ok();
        result.context("HTTP server failed")
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Finds a store by slug for an operator command, with a clear error when missing.
async fn store_by_slug(db: &Db, slug: &str) -> anyhow::Result<ecom_core::Tenant> {
    ecom_store::tenants::find_by_slug(db, slug).await.context("cannot read stores")?.ok_or_else(|| {
        anyhow::anyhow!("there is no store with the slug \"{slug}\" (see the super-admin panel for the list)")
    })
}

/// `ecom import products`: reads a Shopify product CSV and imports it into a store,
/// all or nothing, with a progress bar on a terminal.
pub async fn import_products_cli(config: &Config, slug: &str, file: &Path) -> anyhow::Result<()> {
    let db = open_database(config).await?;
    let tenant = store_by_slug(&db, slug).await?;
    let input = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let products = match ecom_services::catalog_csv::parse_shopify_csv(std::io::BufReader::new(input), tenant.currency)
    {
        Ok(p) => p,
        Err(errors) => {
            for e in &errors {
                eprintln!("{}: {e}", file.display());
            }
            anyhow::bail!("{} problem(s) in {}; nothing was imported", errors.len(), file.display());
        }
    };
    let bar = indicatif::ProgressBar::new(products.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} products ({eta} left)")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(format!("importing into {slug}"));
    let catalog = Catalog::new(db.clone());
    let summary = catalog
        .import_products(&tenant, products, &|done, _| bar.set_position(done as u64))
        .await
        .map_err(|e| anyhow::anyhow!("import failed, nothing was imported: {e}"))?;
    bar.finish_and_clear();
    println!("imported into {slug}: {} created, {} updated", summary.created, summary.updated);
    Ok(())
}

/// `ecom export products`: writes a store's products as a Shopify product CSV.
pub async fn export_products_cli(config: &Config, slug: &str, out: Option<&Path>) -> anyhow::Result<()> {
    let db = open_database(config).await?;
    let tenant = store_by_slug(&db, slug).await?;
    let products =
        Catalog::new(db).export_products(&tenant).await.map_err(|e| anyhow::anyhow!("export failed: {e}"))?;
    match out {
        Some(path) => {
            let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            ecom_services::catalog_csv::write_shopify_csv(std::io::BufWriter::new(file), &products, tenant.currency)?;
            eprintln!("exported {} products to {}", products.len(), path.display());
        }
        None => ecom_services::catalog_csv::write_shopify_csv(std::io::stdout().lock(), &products, tenant.currency)?,
    }
    Ok(())
}
