//! Plans: what each store may have (products, staff accounts, API requests a minute,
//! image storage), defined by the operator, and the checks every path that adds one of
//! those calls. A refusal names the plan, the limit and the way up:
//! "Your Starter plan allows 100 products; ask about a bigger plan."
//!
//! Lowering a store's plan below what it uses is allowed: nothing is taken away, but
//! new additions are refused until the store is under the limit again.

use crate::{Result, ServiceError};
use ecom_core::{Invalid, TenantId};
use ecom_store::plans::{self as repo, Plan, PlanFields};
use ecom_store::{Db, StoreError};
use moka::future::Cache;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// One of the things a plan limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Limit {
    Products,
    /// Staff accounts, the owner included.
    Staff,
    ApiRequestsPerMinute,
    /// Bytes of stored product image originals.
    Storage,
}

impl Limit {
    /// The name API clients see in `extensions.limit`.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Products => "products",
            Self::Staff => "staffAccounts",
            Self::ApiRequestsPerMinute => "apiRequestsPerMinute",
            Self::Storage => "storageBytes",
        }
    }

    /// The plan's allowance, `None` for unlimited.
    pub fn of(self, plan: &Plan) -> Option<u64> {
        match self {
            Self::Products => plan.max_products,
            Self::Staff => plan.max_staff,
            Self::ApiRequestsPerMinute => plan.api_per_minute,
            Self::Storage => plan.max_storage_bytes,
        }
    }

    /// "100 products", "3 staff accounts", "500 MB of images".
    pub fn describe(self, n: u64) -> String {
        let s = |one: &str, many: &str| if n == 1 { format!("1 {one}") } else { format!("{n} {many}") };
        match self {
            Self::Products => s("product", "products"),
            Self::Staff => s("staff account", "staff accounts"),
            Self::ApiRequestsPerMinute => s("API request a minute", "API requests a minute"),
            Self::Storage => format!("{} of images", format_bytes(n)),
        }
    }
}

/// Bytes in decimal units, as storage is sold: "500 MB", "1.5 GB", "800 KB".
pub fn format_bytes(n: u64) -> String {
    let units = [(1_000_000_000_000u64, "TB"), (1_000_000_000, "GB"), (1_000_000, "MB"), (1_000, "KB")];
    for (size, unit) in units {
        if n >= size {
            let tenths = n.saturating_mul(10) / size;
            return if tenths.is_multiple_of(10) {
                format!("{} {unit}", tenths / 10)
            } else {
                format!("{}.{} {unit}", tenths / 10, tenths % 10)
            };
        }
    }
    format!("{n} bytes")
}

/// The refusal for a store on `plan` that would go over `limit`.
pub fn refusal(plan: &Plan, limit: Limit, allowed: u64) -> ServiceError {
    ServiceError::PlanLimit {
        limit,
        message: format!("Your {} plan allows {}; ask about a bigger plan.", plan.name, limit.describe(allowed)),
    }
}

/// Refuses when the store would have more than its plan allows of `limit` once it
/// has `count` (the number after the addition: current + new). Call it before
/// writing; for staff invitations: `ensure_within(db, store, Limit::Staff, staff + 1)`.
pub async fn ensure_within(db: &Db, store: TenantId, limit: Limit, count: u64) -> Result<()> {
    let txn = db.platform_txn().await?;
    let plan = repo::of_tenant(&txn, store).await?;
    txn.commit().await.map_err(StoreError::from)?;
    check(plan.as_ref(), limit, count)
}

/// Takes the store's turn for additions counted against `limit`, until the
/// transaction ends: call it before counting, so that two concurrent additions
/// cannot both fit under the limit (`ecom_store::plans::lock_usage`).
pub async fn take_turn(txn: &ecom_store::DatabaseTransaction, store: TenantId, limit: Limit) -> Result<()> {
    Ok(repo::lock_usage(txn, store, limit.code()).await?)
}

/// [`ensure_within`] inside a transaction the caller is about to write in (after
/// [`take_turn`] and counting).
pub async fn ensure_within_txn(
    txn: &ecom_store::DatabaseTransaction,
    store: TenantId,
    limit: Limit,
    count: u64,
) -> Result<()> {
    let plan = repo::of_tenant(txn, store).await?;
    check(plan.as_ref(), limit, count)
}

fn check(plan: Option<&Plan>, limit: Limit, count: u64) -> Result<()> {
    match plan {
        Some(plan) => match limit.of(plan) {
            Some(allowed) if count > allowed => Err(refusal(plan, limit, allowed)),
            _ => Ok(()),
        },
        None => Ok(()),
    }
}

/// A plan form as typed: limits blank for unlimited; storage in MB (decimals allowed).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct PlanForm {
    pub code: String,
    pub name: String,
    pub price: String,
    pub max_products: String,
    pub max_staff: String,
    pub api_per_minute: String,
    pub max_storage_mb: String,
}

impl PlanForm {
    /// The form of an existing plan, for editing.
    pub fn of(plan: &Plan) -> Self {
        let n = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
        Self {
            code: plan.code.clone(),
            name: plan.name.clone(),
            price: plan.price.clone(),
            max_products: n(plan.max_products),
            max_staff: n(plan.max_staff),
            api_per_minute: n(plan.api_per_minute),
            max_storage_mb: plan.max_storage_bytes.map(mb_text).unwrap_or_default(),
        }
    }

    /// Checks every field; the first problem names its field.
    pub fn parse(&self) -> Result<PlanFields, Invalid> {
        let code = self.code.trim().to_ascii_lowercase();
        if code.is_empty()
            || code.len() > 40
            || !code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || code.starts_with('-')
        {
            return Err(Invalid::new("code", "use 1 to 40 letters, digits and dashes, e.g. growth or pro-2026"));
        }
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(Invalid::new("name", "enter a name of 1 to 100 characters"));
        }
        let price = self.price.trim();
        if price.chars().count() > 100 || price.chars().any(char::is_control) {
            return Err(Invalid::new("price", "use at most 100 characters, e.g. $29 a month"));
        }
        Ok(PlanFields {
            code,
            name: name.to_owned(),
            price: price.to_owned(),
            max_products: whole("products", &self.max_products)?,
            max_staff: whole("staff accounts", &self.max_staff)?,
            api_per_minute: whole("API requests a minute", &self.api_per_minute)?,
            max_storage_bytes: megabytes("storage", &self.max_storage_mb)?,
        })
    }
}

/// Blank for unlimited, else a whole number from 0 to a billion.
fn whole(field: &'static str, text: &str) -> Result<Option<u64>, Invalid> {
    let t = text.trim().replace([',', '_', ' '], "");
    if t.is_empty() {
        return Ok(None);
    }
    match t.parse::<u64>() {
        Ok(n) if n <= 1_000_000_000 => Ok(Some(n)),
        _ => Err(Invalid::new(field, "enter a whole number (0 to 1,000,000,000), or leave it blank for unlimited")),
    }
}

/// Megabytes (1 MB = 1,000,000 bytes), up to six decimals, at most a petabyte.
fn megabytes(field: &'static str, text: &str) -> Result<Option<u64>, Invalid> {
    let t = text.trim().replace([',', '_', ' '], "");
    if t.is_empty() {
        return Ok(None);
    }
    let bad = || Invalid::new(field, "enter megabytes, e.g. 500 or 0.5, or leave it blank for unlimited");
    let (int, frac) = t.split_once('.').unwrap_or((&t, ""));
    if int.is_empty() && frac.is_empty()
        || frac.len() > 6
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: u64 = if int.is_empty() { 0 } else { int.parse().map_err(|_| bad())? };
    if whole > 1_000_000_000 {
        return Err(bad());
    }
    let frac: u64 = if frac.is_empty() { 0 } else { format!("{frac:0<6}").parse().map_err(|_| bad())? };
    Ok(Some(whole * 1_000_000 + frac))
}

fn mb_text(bytes: u64) -> String {
    let (whole, frac) = (bytes / 1_000_000, bytes % 1_000_000);
    if frac == 0 { whole.to_string() } else { format!("{whole}.{}", format!("{frac:06}").trim_end_matches('0')) }
}

/// A request over the store's per-minute API allowance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverApiLimit {
    pub retry_after_secs: u64,
    pub message: String,
}

/// The plans service: the operator's changes (audited) and the per-store per-minute
/// API window. The window counts on this node (as the other rate limits do), so with
/// N nodes a store gets up to N times its allowance.
#[derive(Clone)]
pub struct Plans {
    db: Db,
    /// A store's plan, for the API window: read on every API request.
    cache: Cache<TenantId, Option<Arc<Plan>>>,
    /// (store) → (minute since the epoch, requests in it).
    windows: Arc<Mutex<HashMap<TenantId, (u64, u64)>>>,
}

impl Plans {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            cache: Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(30)).build(),
            windows: Arc::default(),
        }
    }

    /// Every plan with how many stores are on it.
    pub async fn list(&self) -> Result<Vec<(Plan, u64)>> {
        Ok(repo::list(&self.db).await?)
    }

    pub async fn find(&self, code: &str) -> Result<Option<Plan>> {
        Ok(repo::find_by_code(&self.db, code).await?)
    }

    /// The plan a store is on.
    pub async fn of_store(&self, store: TenantId) -> Result<Option<Plan>> {
        Ok(repo::plan_of(&self.db, store).await?)
    }

    /// What a store uses of what plans limit.
    pub async fn usage(&self, store: TenantId) -> Result<repo::Usage> {
        let txn = self.db.tenant_txn(store).await?;
        let usage = repo::usage(&txn, store).await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(usage)
    }

    /// Adds a plan from the form, logged as `actor`'s.
    pub async fn create(&self, actor: &str, form: &PlanForm) -> Result<Plan> {
        let fields = form.parse()?;
        repo::create(&self.db, &fields).await.map_err(|e| match e {
            StoreError::Conflict(_) => ServiceError::Invalid(Invalid::new(
                "code",
                format!("a plan with the code \"{}\" exists already", fields.code),
            )),
            other => other.into(),
        })?;
        repo::log_operator(&self.db, actor, "plan.created", &fields.code, &summary(&fields)).await?;
        self.find(&fields.code).await?.ok_or(ServiceError::NotFound)
    }

    /// Changes a plan (not its code); every store on it gets the new limits.
    pub async fn update(&self, actor: &str, code: &str, form: &PlanForm) -> Result<()> {
        let fields = PlanForm { code: code.to_owned(), ..form.clone() }.parse()?;
        if !repo::update(&self.db, code, &fields).await? {
            return Err(ServiceError::NotFound);
        }
        self.cache.invalidate_all();
        repo::log_operator(&self.db, actor, "plan.updated", code, &summary(&fields)).await?;
        Ok(())
    }

    /// Makes a plan the one new stores get.
    pub async fn make_default(&self, actor: &str, code: &str) -> Result<()> {
        if !repo::set_default(&self.db, code).await? {
            return Err(ServiceError::NotFound);
        }
        repo::log_operator(&self.db, actor, "plan.default", code, "new stores get this plan").await?;
        Ok(())
    }

    /// Deletes a plan no store is on.
    pub async fn delete(&self, actor: &str, code: &str) -> Result<()> {
        match repo::delete(&self.db, code).await? {
            repo::DeleteOutcome::Deleted => {}
            repo::DeleteOutcome::NotFound => return Err(ServiceError::NotFound),
            repo::DeleteOutcome::InUse(n) => {
                return Err(Invalid::new(
                    "plan",
                    format!(
                        "{n} store{} on this plan; move {} to another plan first",
                        if n == 1 { " is" } else { "s are" },
                        if n == 1 { "it" } else { "them" }
                    ),
                )
                .into());
            }
            repo::DeleteOutcome::IsDefault => {
                return Err(
                    Invalid::new("plan", "new stores get this plan; make another plan the default first").into()
                );
            }
        }
        repo::log_operator(&self.db, actor, "plan.deleted", code, "").await?;
        Ok(())
    }

    /// Puts a store on a plan, in the store's audit log (which the operator log shows).
    /// Returns the plan it was on and the new one.
    pub async fn change_store_plan(&self, actor: &str, store: TenantId, code: &str) -> Result<(Option<Plan>, Plan)> {
        let new = self.find(code).await?.ok_or_else(|| Invalid::new("plan", format!("there is no plan \"{code}\"")))?;
        let old = repo::plan_of(&self.db, store).await?;
        if !repo::set_tenant_plan(&self.db, store, code).await? {
            return Err(ServiceError::NotFound);
        }
        self.cache.invalidate(&store).await;
        let from = old.as_ref().map_or("none", |p| p.code.as_str());
        crate::audit::record(&self.db, store, actor, "store.plan_changed", code, &format!("from {from} to {code}"))
            .await?;
        Ok((old, new))
    }

    async fn cached_plan(&self, store: TenantId) -> Result<Option<Arc<Plan>>> {
        if let Some(p) = self.cache.get(&store).await {
            return Ok(p);
        }
        let p = repo::plan_of(&self.db, store).await?.map(Arc::new);
        self.cache.insert(store, p.clone()).await;
        Ok(p)
    }

    /// Counts one API request of a store against its plan's per-minute allowance (a
    /// window per calendar minute); refused with the wait until the next minute.
    pub async fn take_api_request(&self, store: TenantId) -> Result<Result<(), OverApiLimit>> {
        let Some(plan) = self.cached_plan(store).await? else { return Ok(Ok(())) };
        let Some(allowed) = plan.api_per_minute else { return Ok(Ok(())) };
        let now = chrono::Utc::now().timestamp().max(0).cast_unsigned();
        let minute = now / 60;
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() > 100_000 {
            windows.retain(|_, (m, _)| *m == minute);
        }
        let entry = windows.entry(store).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        if entry.1 >= allowed {
            let retry_after_secs = (60 - now % 60).max(1);
            return Ok(Err(OverApiLimit {
                retry_after_secs,
                message: format!(
                    "Your {} plan allows {}; try again in {retry_after_secs} s, or ask about a bigger plan.",
                    plan.name,
                    Limit::ApiRequestsPerMinute.describe(allowed)
                ),
            }));
        }
        entry.1 += 1;
        Ok(Ok(()))
    }
}

fn summary(f: &PlanFields) -> String {
    let n = |v: Option<u64>| v.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    format!(
        "{}: products {}, staff {}, API requests a minute {}, storage {}",
        f.name,
        n(f.max_products),
        n(f.max_staff),
        n(f.api_per_minute),
        f.max_storage_bytes.map_or_else(|| "unlimited".to_owned(), format_bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_forms_are_checked_field_by_field() {
        let ok = PlanForm {
            code: "Growth".into(),
            name: "Growth".into(),
            price: "$29 a month".into(),
            max_products: "1,000".into(),
            max_staff: "".into(),
            api_per_minute: "600".into(),
            max_storage_mb: "0.5".into(),
        };
        let f = ok.parse().unwrap();
        assert_eq!(f.code, "growth");
        assert_eq!((f.max_products, f.max_staff, f.max_storage_bytes), (Some(1000), None, Some(500_000)));
        let bad = PlanForm { max_staff: "three".into(), ..ok.clone() };
        assert_eq!(bad.parse().unwrap_err().field, "staff accounts");
        let bad = PlanForm { max_storage_mb: "1.2345678".into(), ..ok.clone() };
        assert_eq!(bad.parse().unwrap_err().field, "storage");
        let bad = PlanForm { code: "no spaces".into(), ..ok };
        assert_eq!(bad.parse().unwrap_err().field, "code");
        assert_eq!(mb_text(500_000), "0.5");
        assert_eq!(format_bytes(500_000_000), "500 MB");
        assert_eq!(format_bytes(1_500_000_000), "1.5 GB");
    }
}
