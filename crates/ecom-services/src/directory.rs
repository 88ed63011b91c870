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

/// What opening a store takes.
#[derive(Debug, Clone)]
pub struct NewStore {
    pub slug: String,
    pub name: String,
    pub owner_email: String,
    /// ISO 4217, e.g. `USD`.
    pub currency: String,
    /// A language tag, e.g. `en-US`.
    pub locale: String,
    /// The plan's code; `None` for the default plan.
    pub plan: Option<String>,
}

/// A merchant opening a store on the platform's sign-up page (the form's fields).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct MerchantSignup {
    pub name: String,
    pub email: String,
    pub password: String,
    pub store_name: String,
    pub slug: String,
    pub currency: String,
    pub locale: String,
}

/// A store opened by sign-up: its owner and a one-time link token that signs them in
/// on the store's own host.
#[derive(Debug, Clone)]
pub struct SignedUp {
    pub tenant: Tenant,
    pub owner: ecom_core::AccountId,
    pub sign_in_token: String,
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

    /// Opens a store with an owner: checks everything first (slug free and allowed,
    /// name, email, currency, locale), creates the store, then the owner's account with
    /// no usable password and emails the owner a link to choose one. `link_base` is
    /// the reset page on the store's host, e.g. `https://shoes.example.com/merchant/reset`.
    pub async fn create_store(&self, accounts: &crate::Accounts, new: &NewStore, link_base: &str) -> Result<Tenant> {
        let slug = ecom_core::Slug::parse(&new.slug)?;
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Invalid::new("store name", "must be 1 to 100 characters").into());
        }
        let email = ecom_core::Email::parse(&new.owner_email)?;
        let currency = ecom_core::Currency::parse(&new.currency)?;
        let locale = ecom_core::Locale::parse(&new.locale)?;
        if tenants::find_by_slug(&self.db, slug.as_str()).await?.is_some() {
            return Err(
                Invalid::new("slug", format!("\"{slug}\" is taken by another store", slug = slug.as_str())).into()
            );
        }
        let plan = new.plan.as_deref().map(str::trim).filter(|p| !p.is_empty());
        if let Some(code) = plan
            && ecom_store::plans::find_by_code(&self.db, code).await?.is_none()
        {
            let known: Vec<String> =
                ecom_store::plans::list(&self.db).await?.into_iter().map(|(p, _)| p.code).collect();
            return Err(
                Invalid::new("plan", format!("there is no plan \"{code}\" (plans: {})", known.join(", "))).into()
            );
        }
        let tenant = tenants::create_on_plan(
            &self.db,
            &tenants::NewTenant { slug, name: name.to_owned(), currency, locale },
            plan,
        )
        .await?;
        // Nobody knows this password: the owner sets one through the emailed link.
        let unusable = hex::encode(rand::random::<[u8; 32]>());
        let password = ecom_core::NewPassword::parse(&unusable)?;
        let realm = ecom_core::Realm::Staff(tenant.id);
        accounts.create(realm, &email, "", &password, ecom_core::StaffRole::Owner).await?;
        accounts.invite(realm, email.as_str(), link_base, &tenant.name).await?;
        self.invalidate();
        Ok(tenant)
    }

    /// Why `slug` cannot be a new store's address (format, reserved, offensive or
    /// taken), or `None` when it is free.
    pub async fn slug_problem(&self, slug: &str) -> Result<Option<String>> {
        let slug = match ecom_core::Slug::parse_for_signup(slug) {
            Ok(s) => s,
            Err(e) => return Ok(Some(e.message)),
        };
        Ok(tenants::find_by_slug(&self.db, slug.as_str())
            .await?
            .map(|_| format!("{slug}.{} is taken; try another", self.platform_domain)))
    }

    /// Self-service sign-up: checks everything before creating anything, opens the
    /// store, creates its owner with the chosen password, and emails a link to confirm
    /// the address. `verify_link` gives the confirmation page's URL on the new store.
    pub async fn sign_up(
        &self,
        accounts: &crate::Accounts,
        ip: &str,
        form: &MerchantSignup,
        verify_link: impl FnOnce(&Tenant) -> String,
    ) -> Result<SignedUp> {
        accounts
            .limits()
            .check(crate::Limit::SignupPerIp, ip)
            .map_err(|retry_after_secs| crate::ServiceError::RateLimited { retry_after_secs })?;
        let name = form.name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(Invalid::new("name", "enter your name (at most 200 characters)").into());
        }
        let email = ecom_core::Email::parse(&form.email)?;
        let password = ecom_core::NewPassword::parse(&form.password)?;
        let store_name = form.store_name.trim();
        if store_name.is_empty() || store_name.chars().count() > 100 {
            return Err(Invalid::new("store name", "must be 1 to 100 characters").into());
        }
        let slug = ecom_core::Slug::parse_for_signup(&form.slug)?;
        let currency = ecom_core::Currency::parse(&form.currency)?;
        let locale = ecom_core::Locale::parse(&form.locale)?;
        if let Some(problem) = self.slug_problem(slug.as_str()).await? {
            return Err(Invalid::new("slug", problem).into());
        }
        // A store taken between the check and here is refused by the unique slug.
        let tenant =
            tenants::create(&self.db, &tenants::NewTenant { slug, name: store_name.to_owned(), currency, locale })
                .await?;
        let realm = ecom_core::Realm::Staff(tenant.id);
        let owner = accounts.create(realm, &email, name, &password, ecom_core::StaffRole::Owner).await?;
        accounts.send_verification(realm, owner, &verify_link(&tenant), &tenant.name).await?;
        let sign_in_token = accounts.sign_in_token(realm, owner).await?;
        self.invalidate();
        tracing::info!(tenant.id = %tenant.id, slug = %tenant.slug, "store opened by sign-up");
        Ok(SignedUp { tenant, owner, sign_in_token })
    }

    /// Suspends or reopens a store; `NotFound` for an unknown slug.
    pub async fn set_status(&self, slug: &str, status: ecom_core::TenantStatus) -> Result<Tenant> {
        let tenant = tenants::find_by_slug(&self.db, slug).await?.ok_or(crate::ServiceError::NotFound)?;
        tenants::set_status(&self.db, tenant.id, status).await?;
        self.invalidate();
        Ok(Tenant { status, ..tenant })
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
