//! Demo data for `ecom serve --demo`: a platform admin and two stores with owners.

use crate::{Accounts, Catalog, Result};
use ecom_core::{Currency, Email, Locale, NewPassword, Realm, Slug, StaffRole};
use ecom_store::{Db, accounts, tenants};

/// A login printed for the person trying the platform.
#[derive(Debug, Clone)]
pub struct DemoLogin {
    pub what: String,
    /// Host-relative: `None` for the platform host, `Some(slug)` for a store.
    pub store: Option<String>,
    pub path: &'static str,
    pub email: String,
    pub password: String,
}

pub const ADMIN_EMAIL: &str = "admin@ecom.test";
pub const DEMO_PASSWORD: &str = "demo-password";

/// Seeds the demo data when the database has no platform admin yet. Returns the
/// logins either way, so they can be printed on every `--demo` start.
pub async fn seed(db: &Db, accounts_svc: &Accounts, catalog: &Catalog) -> Result<Vec<DemoLogin>> {
    let txn = db.platform_txn().await?;
    let admins = accounts::count(&txn, Realm::Admin).await?;
    txn.commit().await.map_err(ecom_store::StoreError::from)?;
    let password = NewPassword::parse(DEMO_PASSWORD)?;
    let stores =
        [("demo", "Demo Outfitters", "USD", "en-US", "#2f5bd3"), ("acme", "Acme Hardware", "EUR", "en-GB", "#c2410c")];
    if admins == 0 {
        accounts_svc
            .create(Realm::Admin, &Email::parse(ADMIN_EMAIL)?, "Platform Admin", &password, StaffRole::Owner)
            .await?;
        for (slug, name, currency, locale, color) in stores {
            // Demo stores show everything the platform does: no plan limits.
            let tenant = tenants::create_on_plan(
                db,
                &tenants::NewTenant {
                    slug: Slug::parse(slug)?,
                    name: name.to_owned(),
                    currency: Currency::parse(currency)?,
                    locale: Locale::parse(locale)?,
                },
                Some("unlimited"),
            )
            .await?;
            let brand = ecom_core::Branding { color: Some(ecom_core::BrandColor::parse(color)?), logo: None };
            tenants::update_profile(db, tenant.id, name, &brand).await?;
            let owner = Email::parse(&format!("owner@{slug}.test"))?;
            accounts_svc.create(Realm::Staff(tenant.id), &owner, "Store Owner", &password, StaffRole::Owner).await?;
            let shopper = Email::parse(&format!("shopper@{slug}.test"))?;
            accounts_svc
                .create(Realm::Customer(tenant.id), &shopper, "Sam Shopper", &password, StaffRole::Staff)
                .await?;
            crate::demo_catalog::seed(catalog, &tenant).await?;
            checkout_settings(db, &tenant, slug == "acme").await?;
        }
        tracing::info!("demo data created");
    }
    let mut logins = vec![DemoLogin {
        what: "Super-admin".into(),
        store: None,
        path: "/admin",
        email: ADMIN_EMAIL.into(),
        password: DEMO_PASSWORD.into(),
    }];
    for (slug, name, ..) in stores {
        logins.push(DemoLogin {
            what: format!("{name} merchant"),
            store: Some(slug.into()),
            path: "/merchant",
            email: format!("owner@{slug}.test"),
            password: DEMO_PASSWORD.into(),
        });
        logins.push(DemoLogin {
            what: format!("{name} customer"),
            store: Some(slug.into()),
            path: "/account",
            email: format!("shopper@{slug}.test"),
            password: DEMO_PASSWORD.into(),
        });
    }
    Ok(logins)
}

/// Shipping, taxes and a discount code, so the demo stores can take orders.
async fn checkout_settings(db: &Db, tenant: &ecom_core::Tenant, european: bool) -> Result<()> {
    use ecom_store::orders as repo;
    let txn = db.tenant_txn(tenant.id).await?;
    if european {
        repo::save_settings(&txn, tenant.id, true, 60, true, "IBAN DE02 1203 0000 0000 2020 51").await?;
        repo::save_shipping_method(&txn, tenant.id, "standard", "Standard (3–5 days)", 490, 0, Some(5000), "", 0)
            .await?;
        repo::save_shipping_method(
            &txn,
            tenant.id,
            "freight",
            "Heavy goods, by weight",
            900,
            150,
            None,
            "DE,AT,NL,BE,FR",
            1,
        )
        .await?;
        for (country, rate) in [("DE", 1900), ("AT", 2000), ("FR", 2000), ("NL", 2100), ("BE", 2100)] {
            repo::save_tax_rate(&txn, tenant.id, country, "", "VAT", rate).await?;
        }
    } else {
        repo::save_shipping_method(&txn, tenant.id, "standard", "Standard (3–5 days)", 595, 0, Some(7500), "", 0)
            .await?;
        repo::save_shipping_method(&txn, tenant.id, "express", "Express (1–2 days)", 1495, 0, None, "US,CA", 1).await?;
        repo::save_tax_rate(&txn, tenant.id, "US", "IL", "Illinois sales tax", 625).await?;
        repo::save_tax_rate(&txn, tenant.id, "US", "NY", "New York sales tax", 400).await?;
        repo::save_tax_rate(&txn, tenant.id, "CA", "", "GST", 500).await?;
    }
    repo::insert_discount(&txn, tenant.id, "WELCOME10", "percent", 1000, 0, None, None).await?;
    txn.commit().await.map_err(ecom_store::StoreError::from)?;
    Ok(())
}
