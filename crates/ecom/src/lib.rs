//! The `ecom` binary's library half: configuration, wiring and the startup seam that
//! integration tests use (`Application::build` binds port 0 and reports the port).

mod channels;
pub mod config;
mod config_channels;
mod demo_images;
pub mod prune;
pub mod telemetry;

use anyhow::Context;
use config::{Config, Scheme};
use ecom_services::demo::DemoLogin;
use ecom_services::{Accounts, Catalog, Directory, Mailer, Outbound, RateLimits};
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
    /// Carts and orders, for tests; also runs the expiry of unpaid orders.
    pub checkout: ecom_services::Checkout,
    /// Draw the demo stores' product pictures once serving.
    demo: bool,
    limits: RateLimits,
    /// The in-process consumers the bus relay delivers outbox events to.
    consumers: Vec<std::sync::Arc<dyn ecom_bus::Consumer>>,
    relay_settings: ecom_bus::RelaySettings,
    run_relay: bool,
    /// Sends queued notifications; runs next to the relay.
    pub dispatcher: ecom_notify::Dispatcher,
    /// Webhooks out: subscriptions and the sender started with the server.
    pub webhooks: ecom_services::Webhooks,
    run_webhook_sender: bool,
    /// Wakes this node's inbox streams; on PostgreSQL fed by LISTEN from every node.
    pub inbox: ecom_notify::InboxHub,
    /// Abandoned-cart reminders and back-in-stock alerts (leased: one node at a time).
    pub marketing: ecom_notify::MarketingJob,
    /// Prunes old delivered/sent rows (one node at a time, by job lease).
    retention: ecom_services::retention::Retention,
    /// RabbitMQ mode (`ECOM_AMQP_URL`): the relay goes through the broker.
    amqp: Option<ecom_bus::AmqpSettings>,
    broker: ecom_bus::BrokerStatus,
    /// Custom domains; its background re-check runs with the server.
    pub domains: ecom_services::Domains,
    domain_check_every: Duration,
    /// This node's per-minute request series for the dashboard, and its bus sampler.
    traffic: ecom_web::Traffic,
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

/// Media storage as configured: an S3-compatible bucket, or `<data_dir>/media`.
pub fn open_media(config: &Config) -> anyhow::Result<ecom_media::Media> {
    match config.media_s3() {
        Some(s3) => ecom_media::Media::s3(s3),
        None => ecom_media::Media::local(&config.data_dir.join("media")),
    }
    .map_err(|e| anyhow::anyhow!("media storage: {e}"))
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
        if db.autovacuum_off().await? {
            tracing::warn!(
                "PostgreSQL's autovacuum is off: the outbox and notification queues slow down as their dead rows \
                 pile up; turn it on (autovacuum = on) or vacuum those tables on a schedule"
            );
        }
        let secret = secret_key(config)?;
        let limits = RateLimits::new(config.rate_limits);
        // One cache of the stores' notification templates: the consumer, account
        // emails and the panel that edits them share it.
        let store_templates = ecom_notify::StoreTemplates::new(db.clone());
        let accounts = Accounts::new(db.clone(), limits.clone(), Mailer::with_templates(store_templates.clone()));
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
        let media = open_media(config)?;
        tracing::info!(media = %media.describe(), "media storage");
        let media_handle = media.clone();
        let outbound = Outbound::new(config.allow_private_network).map_err(|e| anyhow::anyhow!(e))?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {} (ECOM_LISTEN)", config.listen))?;
        let checkout = ecom_services::Checkout::new(db.clone(), catalog.clone(), payments(config, &secret, &listener)?);
        let checkout_handle = checkout.clone();
        let webhooks = ecom_services::Webhooks::new(
            db.clone(),
            outbound.clone(),
            Mailer::default(),
            secret.as_bytes(),
            config.webhook_settings(),
        );
        let amqp = config.amqp_settings();
        let broker = ecom_bus::BrokerStatus::default();
        let vapid = channels::vapid(config, &db, &secret)?;
        let (phones, push) = channels::services(config, &db, &outbound, &vapid)?;
        let domains = domain_service(config, &db, &directory, &outbound, &listener)?;
        let traffic = ecom_web::Traffic::new();
        let inbox = ecom_notify::InboxHub::new();
        let state = ecom_web::AppState::new(
            ecom_web::Services {
                db: db.clone(),
                directory,
                accounts,
                catalog,
                checkout,
                media,
                outbound,
                webhooks: webhooks.clone(),
                templates: store_templates.clone(),
                phones,
                push,
                domains: domains.clone(),
                traffic: traffic.clone(),
                inbox: inbox.clone(),
            },
            secret.as_bytes(),
            ecom_web::install_metrics_recorder(),
            ecom_web::WebConfig {
                secure: config.public_scheme == Scheme::Https,
                public_scheme: match config.public_scheme {
                    Scheme::Http => "http".into(),
                    Scheme::Https => "https".into(),
                },
                api_limits: ecom_web::ApiLimits::new(config.api_client_points_per_sec, config.api_store_points_per_sec),
                graphiql: config.graphiql.unwrap_or(demo),
                broker: amqp.is_some().then(|| broker.clone()),
            },
        );
        let activity_db = db.clone();
        let channels = notification_channels(config, &db, &inbox, &vapid)?;
        for line in channels.describe() {
            tracing::info!(channel = %line, "notifications");
        }
        let dispatcher = ecom_notify::Dispatcher::new(db.clone(), channels, config.dispatch_settings());
        // Links in messages carry the port actually bound (tests listen on port 0).
        let mut linked = config.clone();
        linked.listen = listener.local_addr().unwrap_or(config.listen);
        let notifications =
            ecom_notify::Notifications::new(db.clone(), store_links(&linked)).with_templates(store_templates);
        let marketing = ecom_notify::MarketingJob::new(
            db.clone(),
            store_links(&linked),
            ecom_notify::LinkSigner::new(secret.as_bytes()),
            config.marketing_settings(),
        );
        let retention = ecom_services::retention::Retention::new(db.clone(), config.retention_settings());
        Ok(Self {
            listener,
            router: ecom_web::router(state),
            db,
            demo_logins,
            limits,
            catalog: catalog_handle,
            media: media_handle,
            checkout: checkout_handle,
            demo,
            consumers: vec![
                std::sync::Arc::new(ecom_bus::Activity::new(activity_db)),
                std::sync::Arc::new(notifications),
                webhooks.fanout(),
            ],
            relay_settings: config.relay_settings(),
            run_relay: config.bus_relay,
            dispatcher,
            webhooks,
            run_webhook_sender: config.webhook_sender,
            inbox,
            marketing,
            retention,
            amqp,
            broker,
            domains,
            domain_check_every: Duration::from_secs(config.domain_check_secs),
            traffic,
        })
    }

    /// Adds a consumer of bus events (before running). Every node must run the same
    /// consumers.
    pub fn add_consumer(&mut self, consumer: std::sync::Arc<dyn ecom_bus::Consumer>) {
        self.consumers.push(consumer);
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
        let checkout = self.checkout.clone();
        let expiry = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                match checkout.expire_due(chrono::Utc::now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(orders = n, "unpaid orders expired; stock released"),
                    Err(e) => tracing::warn!(error = %e, "expiring unpaid orders failed"),
                }
            }
        });
        // The bus: in RabbitMQ mode the relay publishes to the broker and the consumers
        // read their queues; else the embedded relay delivers to them in process.
        let relay = match (self.run_relay, self.amqp) {
            (false, _) => None,
            (true, Some(settings)) => {
                tracing::info!(prefix = %settings.prefix, "bus: RabbitMQ mode");
                Some(ecom_bus::AmqpBus::with_status(self.db.clone(), self.consumers, settings, self.broker).spawn())
            }
            (true, None) => Some(ecom_bus::Relay::new(self.db.clone(), self.consumers, self.relay_settings).spawn()),
        };
        // Notifications: sends what the requests and the consumers queued.
        let dispatcher = self.run_relay.then(|| self.dispatcher.clone().spawn());
        // Webhooks out: POSTs the deliveries the relay's webhook consumer writes.
        let sender = self.run_webhook_sender.then(|| self.webhooks.clone().spawn());
        let domain_checks = self.domains.clone().spawn(self.domain_check_every);
        let bus_sampler = self.traffic.clone().spawn_sampler(self.db.clone());
        let retention = self.retention.clone().spawn();
        // In-app: other nodes' items reach this node's streams; marketing messages.
        let listener = self.inbox.listen(&self.db);
        let marketing = self.run_relay.then(|| self.marketing.clone().spawn());
        let inbox = self.inbox.clone();
        let shutdown = async move {
            shutdown.await;
            // Open event streams end, so graceful shutdown does not wait for them.
            inbox.close();
        };
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        let result = axum::serve(self.listener, service).with_graceful_shutdown(shutdown).await;
        pruner.abort();
        for task in [listener, marketing].into_iter().flatten() {
            task.abort();
            let _ = task.await;
        }
        expiry.abort();
        domain_checks.abort();
        bus_sampler.abort();
        retention.abort();
        if let Some(sender) = sender {
            sender.abort();
            let _ = sender.await;
        }
        if let Some(relay) = relay {
            relay.abort();
            let _ = relay.await;
        }
        if let Some(dispatcher) = dispatcher {
            dispatcher.abort();
            let _ = dispatcher.await;
        }
        self.db.connection().clone().close().await.ok();
        result.context("HTTP server failed")
    }
}

/// The channels notifications go out on: email over SMTP when `ECOM_SMTP_URL` is set,
/// else into the dev mailbox; in-app into the inboxes, waking `inbox`.
pub fn notification_channels(
    config: &Config,
    db: &Db,
    inbox: &ecom_notify::InboxHub,
    vapid: &ecom_notify::Vapid,
) -> anyhow::Result<ecom_notify::Channels> {
    use std::sync::Arc;
    let email: Arc<dyn ecom_notify::Channel> = match config.smtp() {
        Some(settings) => Arc::new(ecom_notify::SmtpChannel::new(settings?).map_err(|e| anyhow::anyhow!(e))?),
        None => Arc::new(ecom_notify::MailboxChannel::new(db.clone())),
    };
    let inapp = Arc::new(ecom_notify::InAppChannel::new(db.clone(), inbox.clone()));
    channels::add(
        config,
        db,
        vapid,
        ecom_notify::Channels::default()
            .with(email, config.notify_email_per_sec)
            .with(inapp, config.notify_inapp_per_sec),
    )
}

/// Store addresses for links in messages: the primary domain when the store has one,
/// else its platform address as the CLI prints it.
fn store_links(config: &Config) -> ecom_notify::StoreLinks {
    let config = config.clone();
    ecom_notify::StoreLinks::new(move |tenant| match &tenant.primary_domain {
        Some(domain) => public_url(&config, domain),
        None => public_store_url(&config, tenant.slug.as_str()),
    })
}

/// Custom domains: verification through `ECOM_DNS_RESOLVER` (or the system's DNS);
/// the HTTP check asks the domain on the port it reaches this platform on.
fn domain_service(
    config: &Config,
    db: &Db,
    directory: &Directory,
    outbound: &Outbound,
    listener: &TcpListener,
) -> anyhow::Result<ecom_services::Domains> {
    let resolver = ecom_services::domains::HickoryResolver::new(config.dns_resolver_addr())
        .map_err(|e| anyhow::anyhow!("{e} (ECOM_DNS_RESOLVER)"))?;
    let port = match config.public_scheme {
        // Behind a TLS proxy the domain is asked over plain HTTP on port 80.
        Scheme::Https => 80,
        Scheme::Http => listener.local_addr().map_or(config.listen.port(), |a| a.port()),
    };
    Ok(ecom_services::Domains::new(
        db.clone(),
        directory.clone(),
        std::sync::Arc::new(resolver),
        outbound.clone(),
        ecom_services::domains::HttpCheck { port },
    ))
}

/// The payment providers: Stripe when `ECOM_STRIPE_SECRET_KEY` is set, manual
/// payment, and the test-card gateway, whose webhooks come back to this server's own
/// listener, signed with a key derived from the secret.
fn payments(
    config: &Config,
    secret: &str,
    listener: &TcpListener,
) -> anyhow::Result<ecom_services::payments::Payments> {
    use ecom_services::payments::{Manual, PaymentProvider, Payments, TestCard};
    use hmac::Mac;
    use std::sync::Arc;
    let webhook_secret = match <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(b"ecom test-card webhooks");
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => secret.as_bytes().to_vec(),
    };
    let mut addr = listener.local_addr().ok();
    if let Some(a) = addr.as_mut().filter(|a| a.ip().is_unspecified()) {
        a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let mut providers: Vec<Arc<dyn PaymentProvider>> = Vec::new();
    let mut live = false;
    if let Some((key, webhook, api_base)) = config.stripe() {
        let stripe = ecom_services::stripe::Stripe::new(&key, &webhook, &api_base).map_err(|e| anyhow::anyhow!(e))?;
        live = key.contains("_live_");
        tracing::info!(api_base = %api_base, live, "card payments through Stripe");
        providers.push(Arc::new(stripe));
    }
    // With a live Stripe key real money moves: the test-card gateway, which "pays" with
    // a published test number, is not offered next to it.
    if !live {
        providers.push(Arc::new(TestCard::new(webhook_secret, addr)));
    }
    providers.push(Arc::new(Manual));
    Ok(Payments::new(providers))
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
/// Who operator CLI commands are logged as.
const CLI_OPERATOR: &str = "operator (command line)";

/// The platform's services for one-off CLI commands: no rate limits (the operator
/// acts), mail through the configured mailer.
fn cli_directory(config: &Config, db: &Db) -> (Directory, Accounts) {
    let directory = Directory::new(db.clone(), &config.platform_domain, Duration::from_secs(1));
    (directory, Accounts::new(db.clone(), RateLimits::new(false), Mailer::default()))
}

/// `https://<slug>.<domain>`, with the listening port when served over plain HTTP on
/// another port than 80 (behind a TLS proxy the public port is taken to be 443).
fn public_store_url(config: &Config, slug: &str) -> String {
    public_url(config, &format!("{slug}.{}", config.platform_domain))
}

/// `https://<host>`, or `http://<host>[:port]` as [`public_store_url`] explains.
fn public_url(config: &Config, host: &str) -> String {
    let port = config.listen.port();
    match config.public_scheme {
        Scheme::Https => format!("https://{host}"),
        Scheme::Http if port == 80 => format!("http://{host}"),
        Scheme::Http => format!("http://{host}:{port}"),
    }
}

/// `ecom store create`.
pub async fn create_store_cli(config: &Config, new: &ecom_services::directory::NewStore) -> anyhow::Result<()> {
    let db = open_database(config).await?;
    let (directory, accounts) = cli_directory(config, &db);
    let url = public_store_url(config, new.slug.trim());
    let tenant =
        directory.create_store(&accounts, new, &format!("{url}/merchant/reset")).await.map_err(|e| match e {
            ecom_services::ServiceError::Invalid(i) => anyhow::anyhow!("{i}; no store was created"),
            other => anyhow::anyhow!("the store was not created: {other}"),
        })?;
    let owner = new.owner_email.trim();
    ecom_services::audit::record(
        &db,
        tenant.id,
        CLI_OPERATOR,
        "store.created",
        tenant.slug.as_str(),
        &format!("owner {owner}"),
    )
    .await
    .context("the store was created but its audit entry was not written")?;
    // Send the invitation now rather than leave it for a running server.
    let dispatcher = ecom_notify::Dispatcher::new(
        db.clone(),
        notification_channels(
            config,
            &db,
            &ecom_notify::InboxHub::new(),
            &channels::vapid(config, &db, &secret_key(config)?)?,
        )?,
        config.dispatch_settings(),
    );
    if let Err(e) = dispatcher.drain(3).await {
        tracing::warn!(error = %e, "sending queued email failed; a running server will retry it");
    }
    println!("created store {} ({}) at {url}/", tenant.slug, tenant.name);
    println!(
        "the owner {} was emailed a link to choose a password (without SMTP: the dev mailbox in /admin/mailbox)",
        new.owner_email.trim()
    );
    Ok(())
}

/// `ecom store list`.
pub async fn list_stores_cli(config: &Config) -> anyhow::Result<()> {
    let db = open_database(config).await?;
    let total = ecom_store::tenants::count(&db).await.context("cannot read stores")?;
    let plans = ecom_store::plans::list(&db).await.context("cannot read plans")?;
    println!("{:<24} {:<10} {:<9} {:<14} NAME", "SLUG", "STATUS", "CURRENCY", "PLAN");
    let mut offset = 0;
    while offset < total {
        let search = ecom_store::tenants::StoreSearch { limit: 500, offset, ..Default::default() };
        let (page, _) = ecom_store::tenants::search(&db, &search).await.context("cannot read stores")?;
        if page.is_empty() {
            break;
        }
        for r in &page {
            let t = &r.tenant;
            let plan = plans.iter().find(|(p, _)| Some(p.id) == r.plan_id).map_or("-", |(p, _)| p.code.as_str());
            println!(
                "{:<24} {:<10} {:<9} {:<14} {}",
                t.slug.as_str(),
                t.status.as_str(),
                t.currency.code(),
                plan,
                t.name
            );
        }
        offset += page.len() as u64;
    }
    println!("{total} store(s)");
    Ok(())
}

/// `ecom store suspend` / `ecom store resume`.
pub async fn set_store_status_cli(config: &Config, slug: &str, status: ecom_core::TenantStatus) -> anyhow::Result<()> {
    let db = open_database(config).await?;
    let (directory, _) = cli_directory(config, &db);
    let tenant = directory.set_status(slug, status).await.map_err(|e| match e {
        ecom_services::ServiceError::NotFound => {
            anyhow::anyhow!("there is no store with the slug \"{slug}\" (ecom store list shows them)")
        }
        other => anyhow::anyhow!("cannot change the store: {other}"),
    })?;
    let action = if status == ecom_core::TenantStatus::Suspended { "store.suspended" } else { "store.reopened" };
    ecom_services::audit::record(&db, tenant.id, CLI_OPERATOR, action, slug, "")
        .await
        .context("the store's status changed but its audit entry was not written")?;
    println!(
        "{} is now {} (running servers see it within ECOM_TENANT_CACHE_TTL_SECS = {} s)",
        tenant.slug.as_str(),
        tenant.status.as_str(),
        config.tenant_cache_ttl_secs
    );
    Ok(())
}

async fn store_by_slug(db: &Db, slug: &str) -> anyhow::Result<ecom_core::Tenant> {
    ecom_store::tenants::find_by_slug(db, slug).await.context("cannot read stores")?.ok_or_else(|| {
        anyhow::anyhow!("there is no store with the slug \"{slug}\" (see the super-admin panel for the list)")
    })
}

fn progress_bar(len: u64, unit: &str, message: String) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!("{{msg}} [{{bar:40}}] {{pos}}/{{len}} {unit} ({{eta}} left)"))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

/// `ecom import products`: reads a Shopify product CSV and imports it into a store,
/// all or nothing, with a progress bar on a terminal; then attaches the images the
/// file names (a second phase: one that fails is reported by line, the products stay).
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
    // Opened before the products are written: a storage misconfiguration stops the
    // import before it changes anything.
    let media = open_media(config)?;
    let outbound = Outbound::new(config.allow_private_network).map_err(|e| anyhow::anyhow!(e))?;
    let bar = progress_bar(products.len() as u64, "products", format!("importing into {slug}"));
    let catalog = Catalog::new(db.clone());
    let summary = catalog
        .import_products(&tenant, products, &|done, _| bar.set_position(done as u64))
        .await
        .map_err(|e| anyhow::anyhow!("import failed, nothing was imported: {e}"))?;
    bar.finish_and_clear();
    println!("imported into {slug}: {} created, {} updated", summary.created, summary.updated);
    if summary.pending_images.is_empty() {
        return Ok(());
    }
    let bar = progress_bar(0, "images", "fetching images".into());
    let report = catalog
        .attach_imported_images(&tenant, &media, &outbound, summary.pending_images, &|done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
        .await
        .map_err(|e| anyhow::anyhow!("attaching images failed (the products were imported): {e}"))?;
    bar.finish_and_clear();
    for problem in &report.problems {
        eprintln!("{}: {problem}", file.display());
    }
    if report.failed > report.problems.len() {
        eprintln!("{}: … and {} more images not added", file.display(), report.failed - report.problems.len());
    }
    println!(
        "images: {} added, {} with new alt text, {} already there, {} not added",
        report.added, report.updated, report.unchanged, report.failed
    );
    Ok(())
}

/// `ecom export products`: writes a store's products as a Shopify product CSV, image
/// URLs on the store's address on the platform domain.
pub async fn export_products_cli(config: &Config, slug: &str, out: Option<&Path>) -> anyhow::Result<()> {
    let db = open_database(config).await?;
    let tenant = store_by_slug(&db, slug).await?;
    let scheme = match config.public_scheme {
        Scheme::Http => "http",
        Scheme::Https => "https",
    };
    let directory =
        Directory::new(db.clone(), &config.platform_domain, Duration::from_secs(config.tenant_cache_ttl_secs));
    let store_url = directory.store_url(&tenant, scheme, "");
    let products = Catalog::new(db).export_catalog(&tenant).await.map_err(|e| anyhow::anyhow!("export failed: {e}"))?;
    let write = |out: &mut dyn std::io::Write| {
        ecom_services::catalog_csv::write_shopify_csv(out, &products, tenant.currency, &store_url)
    };
    match out {
        Some(path) => {
            let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            write(&mut std::io::BufWriter::new(file))?;
            eprintln!("exported {} products to {}", products.len(), path.display());
        }
        None => write(&mut std::io::stdout().lock())?,
    }
    Ok(())
}
