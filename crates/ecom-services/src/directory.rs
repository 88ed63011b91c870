//! Which site a request is for: the platform, a store, or nothing. Every request asks,
//! so answers are cached; the cost is the same with two stores or ten thousand.

use crate::Result;
use ecom_core::{Branding, HostTarget, Invalid, Tenant, resolve_host};
use ecom_store::{Db, tenants};
use moka::future::Cache;
use std::time::Duration;

/// The answer for one host.
#[derive(Debug, Clone)]
pub enum Site {
    Platform,
    Store(Box<Tenant>),
    /// A well-formed host that names no store.
    Unknown,
    /// A `Host` header that is not a host name.
    Invalid,
}

/// Resolves hosts against the platform domain and the stores' custom domains.
#[derive(Clone)]
pub struct Directory {
    db: Db,
    platform_domain: String,
    cache: Cache<String, Site>,
}

impl Directory {
    /// Answers are kept for `ttl`; a change made on this node (a store suspended, a
    /// domain added) clears the cache at once, other nodes see it within `ttl`.
    pub fn new(db: Db, platform_domain: &str, ttl: Duration) -> Self {
        Self {
            db,
            platform_domain: platform_domain.to_ascii_lowercase(),
            // Bounded, so a flood of made-up hosts cannot grow memory without limit.
            cache: Cache::builder().max_capacity(100_000).time_to_live(ttl).build(),
        }
    }

    pub fn platform_domain(&self) -> &str {
        &self.platform_domain
    }

    pub async fn resolve(&self, host_header: &str) -> Result<Site> {
        let target = resolve_host(host_header, &self.platform_domain);
        let key = match &target {
            HostTarget::Platform => return Ok(Site::Platform),
            HostTarget::Invalid => return Ok(Site::Invalid),
            HostTarget::StoreSlug(slug) => format!("s:{slug}"),
            HostTarget::CustomDomain(domain) => format!("d:{domain}"),
        };
        if let Some(site) = self.cache.get(&key).await {
            return Ok(site);
        }
        let tenant = match &target {
            HostTarget::StoreSlug(slug) => tenants::find_by_slug(&self.db, slug).await?,
            HostTarget::CustomDomain(domain) => tenants::find_by_domain(&self.db, domain).await?,
            HostTarget::Platform | HostTarget::Invalid => None,
        };
        let site = tenant.map_or(Site::Unknown, |t| Site::Store(Box::new(t)));
        self.cache.insert(key, site.clone()).await;
        Ok(site)
    }

    /// Renames a store and sets its branding; every node sees it within the cache TTL,
    /// this one at once.
    pub async fn update_profile(&self, tenant: &Tenant, name: &str, brand: &Branding) -> Result<()> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Invalid::new("store name", "must be 1 to 100 characters").into());
        }
        tenants::update_profile(&self.db, tenant.id, name, brand).await?;
        self.invalidate();
        Ok(())
    }

    /// Forgets every cached answer (after a store or domain changed).
    pub fn invalidate(&self) {
        self.cache.invalidate_all();
    }

    /// The address of a store's storefront on the platform domain.
    pub fn store_url(&self, tenant: &Tenant, scheme: &str, port_suffix: &str) -> String {
        format!("{scheme}://{}.{}{port_suffix}", tenant.slug, self.platform_domain)
    }
}
