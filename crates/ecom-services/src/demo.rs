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
            let tenant = tenants::create(
                db,
                &tenants::NewTenant {
                    slug: Slug::parse(slug)?,
                    name: name.to_owned(),
                    currency: Currency::parse(currency)?,
                    locale: Locale::parse(locale)?,
                },
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
