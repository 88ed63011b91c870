//! A new store's getting-started checklist, worked out from what the store has.

use crate::Result;
use ecom_core::Tenant;
use ecom_core::staff::{Access, Permission};
use ecom_store::{Db, StoreError};
use serde::Serialize;

/// One step of the checklist.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub key: &'static str,
    pub title: &'static str,
    pub hint: &'static str,
    /// Where the merchant does it.
    pub href: &'static str,
    pub done: bool,
    /// Whether this member may do it (staff without the step's area see it, unlinked,
    /// with who to ask).
    pub allowed: bool,
    /// The area it needs ("Catalog"), for the hint to staff who lack it.
    pub area: Option<&'static str>,
}

/// The steps in order, and how many are done.
#[derive(Debug, Clone, Serialize)]
pub struct Checklist {
    pub steps: Vec<Step>,
    pub done: usize,
    pub total: usize,
}

/// The checklist of `tenant`, for a staff member whose email is `verified` or not
/// and who has `access` (`None`: everything, as for the operator's view).
pub async fn checklist(db: &Db, tenant: &Tenant, verified: bool, access: Option<Access>) -> Result<Checklist> {
    let txn = db.tenant_txn(tenant.id).await?;
    let products = ecom_store::catalog::count_products(&txn, tenant.id).await?;
    let shipping = ecom_store::orders::shipping_methods(&txn, tenant.id).await?;
    let settings = ecom_store::orders::settings(&txn, tenant.id).await?;
    let templates = ecom_store::themes::list(&txn, tenant.id).await?;
    txn.commit().await.map_err(StoreError::from)?;
    let branded = tenant.brand.color.is_some() || tenant.brand.logo.is_some();
    let drafts = templates.iter().any(|t| t.status == ecom_store::themes::DRAFT);
    let customised = branded || !templates.is_empty();
    let step = |key, title, hint, href, done| {
        let area = match key {
            "verify" => None,
            "product" => Some(Permission::Catalog),
            _ => Some(Permission::Settings),
        };
        let allowed = area.is_none_or(|a| access.is_none_or(|x| x.allows(a)));
        Step { key, title, hint, href, done, allowed, area: area.map(Permission::label) }
    };
    let steps = vec![
        step("verify", "Confirm your email", "Open the link we emailed you.", "/merchant", verified),
        step("product", "Add a product", "With a photo, a price and stock.", "/merchant/products/new", products > 0),
        step(
            "shipping",
            "Set up shipping",
            "Rates shoppers choose at checkout.",
            "/merchant/settings/checkout",
            !shipping.is_empty(),
        ),
        step(
            "payments",
            "Set how you get paid",
            "Bank transfer instructions shown to shoppers who pay that way.",
            "/merchant/settings/checkout",
            !settings.manual_instructions.trim().is_empty(),
        ),
        step(
            "theme",
            "Customise your theme",
            "Your colour and logo, or the templates.",
            "/merchant/settings",
            customised,
        ),
        step(
            "publish",
            "Publish your changes",
            "Theme drafts go live when you publish them.",
            "/merchant/theme",
            customised && !drafts,
        ),
    ];
    let done = steps.iter().filter(|s| s.done).count();
    Ok(Checklist { total: steps.len(), done, steps })
}
