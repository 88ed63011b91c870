//! The application state handed to every handler.

use axum::extract::FromRef;
use axum_extra::extract::cookie::Key;
use ecom_services::{Accounts, Catalog, Checkout, Directory, Outbound};
use ecom_store::Db;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

/// Settings the web layer needs from the configuration.
use ecom_services::ratelimit::{BucketSize, CostBuckets};

#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Mark cookies `Secure` and send HSTS: on when the public URL is https.
    pub secure: bool,
    /// `http` or `https`, for links in emails.
    pub public_scheme: String,
    /// Query cost budgets of the GraphQL APIs.
    pub api_limits: ApiLimits,
    /// Serve GraphiQL on `GET` of the API endpoints.
    pub graphiql: bool,
    /// In RabbitMQ mode, the bus's connection to the broker, which `/readyz` reports.
    pub broker: Option<ecom_bus::BrokerStatus>,
}

/// Leaky-bucket sizes for GraphQL query cost.
#[derive(Debug, Clone, Copy)]
pub struct ApiLimits {
    /// Each Storefront API client (by address).
    pub storefront_client: BucketSize,
    /// Each merchant API token or staff member.
    pub merchant_client: BucketSize,
    /// Each store, all its clients together.
    pub store: BucketSize,
}

impl ApiLimits {
    /// Budgets from points per second, with bursts of ten seconds' worth. Merchant
    /// clients get 10,000 points refilling at 500 a second: Shopify's Admin API shape
    /// (a bucket of 20 seconds' worth), sized for this API's count, in which every
    /// field costs 1 where Shopify charges nothing for scalars.
    pub fn new(client_per_sec: u32, store_per_sec: u32) -> Self {
        let size =
            |per_sec: u32| BucketSize { capacity: f64::from(per_sec) * 10.0, restore_per_sec: f64::from(per_sec) };
        Self {
            storefront_client: size(client_per_sec),
            merchant_client: BucketSize { capacity: 10_000.0, restore_per_sec: 500.0 },
            store: size(store_per_sec),
        }
    }
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self::new(1_000, 10_000)
    }
}

/// Everything a handler may need, behind one `Arc`: axum clones the state for every
/// extractor of every request, and cloning the caches inside field by field was the
/// largest cost of serving a cached page (a profile showed ~45 % of CPU there).
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

impl std::ops::Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// The application's services and settings; reached through [`AppState`].
pub struct AppInner {
    /// The database pool.
    pub db: Db,
    /// Host to site resolution, cached.
    pub directory: Directory,
    /// Sign-up, sign-in and password use cases.
    pub accounts: Accounts,
    /// Products, collections and categories, with the per-node read cache.
    pub catalog: Catalog,
    /// Carts, checkout, orders and payments.
    pub checkout: Checkout,
    /// Merchants' app tokens and customers' access tokens for the GraphQL APIs.
    pub api_tokens: ecom_services::ApiTokens,
    /// Query cost buckets of the GraphQL APIs, per client and per store.
    pub api_buckets: CostBuckets,
    /// Plans: the operator's plan changes and each store's per-minute API window.
    pub plans: ecom_services::plans::Plans,
    /// Idempotency keys of the integration endpoints.
    pub idempotency: ecom_services::idempotency::Idempotency,
    /// Encrypts and authenticates session cookies; derived from the secret key.
    pub cookie_key: Key,
    /// Keys CSRF tokens; derived from the secret key, separately from `cookie_key`.
    pub csrf_key: Arc<[u8; 32]>,
    /// Keys GraphQL global ids; derived from the secret key.
    pub gid_key: Arc<[u8; 32]>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    pub config: Arc<WebConfig>,
    /// Uploaded images and their thumbnails.
    pub media: ecom_media::Media,
    /// HTTP to merchant-given addresses (image URLs in imports), private networks refused.
    pub outbound: Outbound,
    /// Webhook subscriptions and their delivery log.
    pub webhooks: ecom_services::Webhooks,
    /// Stores' notification templates (shared with the notification consumer, so a
    /// save clears its cache).
    pub templates: ecom_notify::StoreTemplates,
    /// Each store's theme, built from its edited templates.
    pub themes: crate::themes::ThemeCache,
    /// Rendered storefront pages for shoppers who are not signed in.
    pub pages: crate::storefront::PageCache,
    /// Customers' phone numbers and their verification codes.
    pub phones: ecom_services::channels::Phones,
    /// Web Push subscriptions and the VAPID public key.
    pub push: ecom_services::channels::PushSubscriptions,
    /// Custom domains and their verification.
    pub domains: ecom_services::Domains,
    /// This node's per-minute request counts and latencies for the platform dashboard.
    pub traffic: crate::dashboard::Traffic,
    /// Wakes the inbox streams of this node when an item is filed (on any node).
    pub inbox: ecom_notify::InboxHub,
    /// Signs and checks unsubscribe and confirmation links; derived from the secret key.
    pub signer: ecom_notify::LinkSigner,
}

/// The services the web layer is built on.
pub struct Services {
    pub db: Db,
    pub directory: Directory,
    pub accounts: Accounts,
    pub catalog: Catalog,
    pub checkout: Checkout,
    pub media: ecom_media::Media,
    pub outbound: Outbound,
    pub webhooks: ecom_services::Webhooks,
    pub templates: ecom_notify::StoreTemplates,
    pub phones: ecom_services::channels::Phones,
    pub push: ecom_services::channels::PushSubscriptions,
    pub domains: ecom_services::Domains,
    pub traffic: crate::dashboard::Traffic,
    /// The in-app channel's hub (the one the channel wakes).
    pub inbox: ecom_notify::InboxHub,
}

impl AppState {
    /// Derives the cookie and CSRF keys from the platform secret.
    pub fn new(services: Services, secret: &[u8], metrics: PrometheusHandle, config: WebConfig) -> Self {
        let Services {
            db,
            directory,
            accounts,
            catalog,
            checkout,
            media,
            outbound,
            webhooks,
            templates,
            phones,
            push,
            domains,
            traffic,
            inbox,
        } = services;
        use hmac::{Hmac, Mac};
        let derive = |label: &[u8]| -> [u8; 32] {
            let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret) else {
                unreachable!("HMAC accepts keys of any length")
            };
            mac.update(label);
            mac.finalize().into_bytes().into()
        };
        let mut cookie_material = [0u8; 64];
        cookie_material[..32].copy_from_slice(&derive(b"ecom cookie key 1"));
        cookie_material[32..].copy_from_slice(&derive(b"ecom cookie key 2"));
        Self(Arc::new(AppInner {
            api_tokens: ecom_services::ApiTokens::new(db.clone()),
            api_buckets: CostBuckets::new(),
            plans: ecom_services::plans::Plans::new(db.clone()),
            idempotency: ecom_services::idempotency::Idempotency::new(db.clone()),
            db,
            directory,
            accounts,
            catalog,
            checkout,
            media,
            outbound,
            webhooks,
            templates,
            phones,
            push,
            domains,
            traffic,
            cookie_key: Key::from(&cookie_material),
            csrf_key: Arc::new(derive(b"ecom csrf key")),
            gid_key: Arc::new(derive(b"ecom graphql id key")),
            metrics,
            config: Arc::new(config),
            pages: crate::storefront::new_page_cache(),
            themes: crate::themes::new_theme_cache(),
            inbox,
            signer: ecom_notify::LinkSigner::new(secret),
        }))
    }
}

impl FromRef<AppState> for Key {
    fn from_ref(state: &AppState) -> Self {
        state.cookie_key.clone()
    }
}
