//! `ecom`: the multi-tenant commerce platform in one binary.

use anyhow::Context;
use clap::{Parser, Subcommand};
use ecom::config::Config;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ecom",
    version,
    about = "ECOM: a multi-tenant e-commerce platform in one binary",
    long_about = "ECOM: a multi-tenant e-commerce platform in one binary.\n\n\
        With no configuration it runs on embedded parts (SQLite in ./ecom-data). Settings come from \
        an optional ecom.toml and ECOM_* environment variables; see the README's configuration reference."
)]
struct Cli {
    /// Configuration file (keys as in the README); read when it exists.
    #[arg(long, global = true, env = "ECOM_CONFIG", default_value = "ecom.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP (storefronts, merchant and admin panels, APIs) and run background
    /// work in this process. Runs pending migrations first.
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080; env ECOM_LISTEN].
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Data directory for the SQLite database and local files [default: ./ecom-data; env ECOM_DATA_DIR].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Seed demo stores and logins into an empty database, and print them.
        #[arg(long)]
        demo: bool,
    },
    /// Bring the database schema up to date, then exit.
    Migrate {
        /// Data directory for the SQLite database [default: ./ecom-data; env ECOM_DATA_DIR].
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Print the effective configuration (secrets hidden) and exit.
    Config,
    /// Import data into a store.
    #[command(subcommand)]
    Import(ImportWhat),
    /// Export data from a store.
    #[command(subcommand)]
    Export(ExportWhat),
    /// Open, list, suspend and resume stores (for operators and automation).
    #[command(subcommand)]
    Store(StoreCommand),
    /// Delete what is done and old now (delivered deliveries, receipts, sent
    /// notifications, dev mailbox, idempotency keys older than 24 h), in batches, with
    /// progress; `ecom serve` does the same hourly. Nothing undelivered, failed or
    /// dead-lettered is touched.
    Prune {
        /// Days to keep, instead of ECOM_RETENTION_DAYS (0 keeps all but idempotency keys).
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=36_500))]
        days: Option<u32>,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Open a store with an owner, who is emailed a link to choose a password.
    Create {
        /// The store's address: <slug>.<platform domain>.
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        owner_email: String,
        /// ISO 4217 currency code.
        #[arg(long, default_value = "USD")]
        currency: String,
        /// Language tag for the storefront.
        #[arg(long, default_value = "en-US")]
        locale: String,
        /// The plan's code (see /admin/plans); the default plan when left out.
        #[arg(long)]
        plan: Option<String>,
    },
    /// List the stores.
    List,
    /// Close a store: its storefront shows a closed page and its APIs refuse.
    Suspend { slug: String },
    /// Reopen a suspended store.
    Resume { slug: String },
}

#[derive(Subcommand)]
enum ImportWhat {
    /// Products from a Shopify product CSV. Every row is checked first; a file with
    /// errors imports nothing and lists them by line. Existing handles are updated.
    Products {
        /// The store's slug, e.g. demo.
        #[arg(long)]
        store: String,
        /// The CSV file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum ExportWhat {
    /// Products as a Shopify product CSV (archived ones included).
    Products {
        /// The store's slug, e.g. demo.
        #[arg(long)]
        store: String,
        /// Where to write; standard output when left out.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let explicit_config = std::env::var_os("ECOM_CONFIG").is_some()
        || std::env::args().any(|a| a == "--config" || a.starts_with("--config="));
    let mut config = match Config::load(&cli.config, explicit_config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ecom: {e}");
            return ExitCode::from(2);
        }
    };
    match &cli.command {
        Command::Serve { listen, data_dir, .. } => {
            if let Some(l) = listen {
                config.listen = *l;
            }
            if let Some(d) = data_dir {
                config.data_dir.clone_from(d);
            }
        }
        Command::Migrate { data_dir } => {
            if let Some(d) = data_dir {
                config.data_dir.clone_from(d);
            }
        }
        Command::Config | Command::Import(_) | Command::Export(_) | Command::Store(_) | Command::Prune { .. } => {}
    }
    ecom::telemetry::init(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ecom: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ecom: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve { demo, .. } => serve(config, demo).await,
        Command::Migrate { .. } => {
            ecom::open_database(&config).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::Config => {
            println!("{config:#?}");
            Ok(())
        }
        Command::Import(ImportWhat::Products { store, file }) => {
            ecom::import_products_cli(&config, &store, &file).await
        }
        Command::Export(ExportWhat::Products { store, output }) => {
            ecom::export_products_cli(&config, &store, output.as_deref()).await
        }
        Command::Store(StoreCommand::Create { slug, name, owner_email, currency, locale, plan }) => {
            let new = ecom_services::directory::NewStore { slug, name, owner_email, currency, locale, plan };
            ecom::create_store_cli(&config, &new).await
        }
        Command::Store(StoreCommand::List) => ecom::list_stores_cli(&config).await,
        Command::Prune { days } => ecom::prune::prune_cli(&config, days).await,
        Command::Store(StoreCommand::Suspend { slug }) => {
            ecom::set_store_status_cli(&config, &slug, ecom_core::TenantStatus::Suspended).await
        }
        Command::Store(StoreCommand::Resume { slug }) => {
            ecom::set_store_status_cli(&config, &slug, ecom_core::TenantStatus::Active).await
        }
    }
}

async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let app = ecom::Application::build(&config, demo).await?;
    let addr = app.local_addr();
    let port = if addr.port() == 80 { String::new() } else { format!(":{}", addr.port()) };
    let scheme = match config.public_scheme {
        ecom::config::Scheme::Http => "http",
        ecom::config::Scheme::Https => "https",
    };
    let domain = &config.platform_domain;
    tracing::info!(%addr, ready_ms = started.elapsed().as_millis() as u64, "ready");
    if demo {
        println!("\nECOM is running with demo data on {addr}.\n");
        println!("  Super-admin panel   {scheme}://{domain}{port}/admin");
        for login in &app.demo_logins {
            if let Some(slug) = &login.store {
                if login.path == "/merchant" {
                    println!("  Storefront          {scheme}://{slug}.{domain}{port}/");
                }
                println!("  {:<19} {scheme}://{slug}.{domain}{port}{}", short(&login.what), login.path);
            }
        }
        println!("\n  Logins (password for all: {}):", app.demo_logins.first().map_or("", |l| l.password.as_str()));
        for login in &app.demo_logins {
            println!("    {:<28} {}", login.what, login.email);
        }
        println!(
            "\n  Browsers resolve *.localhost to 127.0.0.1; with curl: curl -H 'Host: demo.{domain}' http://{addr}/\n"
        );
    }
    app.run_until_stopped(ecom::shutdown_signal()).await.context("server stopped with an error")
}

fn short(what: &str) -> &str {
    if what.ends_with("merchant") {
        "Merchant panel"
    } else if what.ends_with("customer") {
        "Customer account"
    } else {
        what
    }
}
