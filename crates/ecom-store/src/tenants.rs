//! Stores and their domains. These are platform-level lookups (a request's host is
//! resolved before any tenant is known), so they run in platform scope.

use crate::entities::{tenant, tenant_domain};
use crate::{Db, Result, StoreError};
use ecom_core::{BrandColor, Branding, Currency, Locale, Slug, Tenant, TenantId, TenantStatus};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

/// What it takes to open a store.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub slug: Slug,
    pub name: String,
    pub currency: Currency,
    pub locale: Locale,
}

fn to_tenant(m: tenant::Model) -> Result<Tenant> {
    let corrupt = |detail: String| StoreError::Corrupt { table: "tenants", detail };
    Ok(Tenant {
        id: TenantId(m.id),
        slug: Slug::parse(&m.slug).map_err(|e| corrupt(e.to_string()))?,
        name: m.name,
        status: TenantStatus::parse(&m.status).ok_or_else(|| corrupt(format!("status {}", m.status)))?,
        currency: Currency::parse(&m.currency).map_err(|e| corrupt(e.to_string()))?,
        locale: Locale::parse(&m.locale).map_err(|e| corrupt(e.to_string()))?,
        brand: Branding {
            color: m.brand_color.as_deref().map(BrandColor::parse).transpose().map_err(|e| corrupt(e.to_string()))?,
            logo: m.logo,
        },
        primary_domain: m.primary_domain,
    })
}

/// Opens a store on the default plan.
pub async fn create(db: &Db, new: &NewTenant) -> Result<Tenant> {
    create_on_plan(db, new, None).await
}

/// Opens a store on the plan with this code, or on the default plan; `Corrupt` never,
/// `Conflict("that plan")` when the code names no plan.
pub async fn create_on_plan(db: &Db, new: &NewTenant, plan_code: Option<&str>) -> Result<Tenant> {
    use crate::entities::plan;
    let id = TenantId::new();
    let txn = db.platform_txn().await?;
    let plan_id = match plan_code {
        Some(code) => Some(
            plan::Entity::find()
                .filter(plan::Column::Code.eq(code))
                .one(&txn)
                .await?
                .ok_or(StoreError::Conflict("no such plan"))?
                .id,
        ),
        None => crate::plans::default_plan(&txn).await?.map(|p| p.id),
    };
    tenant::Entity::insert(tenant::ActiveModel {
        id: Set(id.0),
        slug: Set(new.slug.as_str().to_owned()),
        name: Set(new.name.clone()),
        status: Set(TenantStatus::Active.as_str().to_owned()),
        currency: Set(new.currency.code().to_owned()),
        locale: Set(new.locale.as_str().to_owned()),
        created_at: Set(chrono::Utc::now()),
        brand_color: Set(None),
        logo: Set(None),
        primary_domain: Set(None),
        plan_id: Set(plan_id),
    })
    .exec_without_returning(&txn)
    .await
    .map_err(|e| StoreError::conflict_or_db(e, "that store address"))?;
    txn.commit().await?;
    Ok(Tenant {
        id,
        slug: new.slug.clone(),
        name: new.name.clone(),
        status: TenantStatus::Active,
        currency: new.currency,
        locale: new.locale.clone(),
        brand: Branding::default(),
        primary_domain: None,
    })
}

pub async fn find_by_slug(db: &Db, slug: &str) -> Result<Option<Tenant>> {
    let txn = db.platform_txn().await?;
    let row = tenant::Entity::find().filter(tenant::Column::Slug.eq(slug)).one(&txn).await?;
    txn.commit().await?;
    row.map(to_tenant).transpose()
}

pub async fn find_by_id(db: &Db, id: TenantId) -> Result<Option<Tenant>> {
    let txn = db.platform_txn().await?;
    let row = tenant::Entity::find_by_id(id.0).one(&txn).await?;
    txn.commit().await?;
    row.map(to_tenant).transpose()
}

/// The store that owns a verified custom domain (already normalised: lower case, no
/// port). A domain still pending verification names no store: anyone can claim a
/// name, only its owner can prove it.
pub async fn find_by_domain(db: &Db, domain: &str) -> Result<Option<Tenant>> {
    let txn = db.platform_txn().await?;
    let Some(d) = tenant_domain::Entity::find()
        .filter(tenant_domain::Column::Domain.eq(domain))
        .filter(tenant_domain::Column::Status.eq(crate::domains::VERIFIED))
        .one(&txn)
        .await?
    else {
        txn.commit().await?;
        return Ok(None);
    };
    let row = tenant::Entity::find_by_id(d.tenant_id).one(&txn).await?;
    txn.commit().await?;
    row.map(to_tenant).transpose()
}

/// Adds a domain as already verified (operator tools and tests; merchants go through
/// [`crate::domains::add_pending`] and verification).
pub async fn add_domain(db: &Db, tenant: TenantId, domain: &str, primary: bool) -> Result<()> {
    let id = uuid::Uuid::now_v7();
    let now = chrono::Utc::now();
    let txn = db.tenant_txn(tenant).await?;
    tenant_domain::Entity::insert(tenant_domain::ActiveModel {
        id: Set(id),
        tenant_id: Set(tenant.0),
        domain: Set(domain.to_owned()),
        is_primary: Set(false),
        created_at: Set(now),
        status: Set(crate::domains::VERIFIED.to_owned()),
        token: Set(String::new()),
        verified_at: Set(Some(now)),
        last_checked_at: Set(None),
        next_check_at: Set(None),
        check_attempts: Set(0),
        last_error: Set(String::new()),
        claimed_by: Set(String::new()),
        claimed_until: Set(None),
    })
    .exec_without_returning(&txn)
    .await
    .map_err(|e| StoreError::conflict_or_db(e, "that domain"))?;
    txn.commit().await?;
    if primary {
        crate::domains::set_primary(db, tenant, Some(id)).await?;
    }
    Ok(())
}

/// The store's verified custom domains, primary first.
pub async fn domains(db: &Db, tenant: TenantId) -> Result<Vec<String>> {
    let txn = db.tenant_txn(tenant).await?;
    let rows = tenant_domain::Entity::find()
        .filter(tenant_domain::Column::TenantId.eq(tenant.0))
        .filter(tenant_domain::Column::Status.eq(crate::domains::VERIFIED))
        .order_by_desc(tenant_domain::Column::IsPrimary)
        .order_by_asc(tenant_domain::Column::Domain)
        .all(&txn)
        .await?;
    txn.commit().await?;
    Ok(rows.into_iter().map(|d| d.domain).collect())
}

pub async fn set_status(db: &Db, tenant: TenantId, status: TenantStatus) -> Result<bool> {
    let txn = db.platform_txn().await?;
    let res = tenant::Entity::update_many()
        .col_expr(tenant::Column::Status, Expr::value(status.as_str()))
        .filter(tenant::Column::Id.eq(tenant.0))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(res.rows_affected == 1)
}

/// Stores, newest first, for the super-admin panel.
pub async fn list(db: &Db, limit: u64, offset: u64) -> Result<Vec<Tenant>> {
    let txn = db.platform_txn().await?;
    let rows = tenant::Entity::find().order_by_desc(tenant::Column::Id).limit(limit).offset(offset).all(&txn).await?;
    txn.commit().await?;
    rows.into_iter().map(to_tenant).collect()
}

pub async fn count(db: &Db) -> Result<u64> {
    let txn = db.platform_txn().await?;
    let n = tenant::Entity::find().count(&txn).await?;
    txn.commit().await?;
    Ok(n)
}

/// Changes a store's name and branding.
pub async fn update_profile(db: &Db, tenant: TenantId, name: &str, brand: &Branding) -> Result<bool> {
    let txn = db.platform_txn().await?;
    let res = tenant::Entity::update_many()
        .col_expr(tenant::Column::Name, Expr::value(name.to_owned()))
        .col_expr(tenant::Column::BrandColor, Expr::value(brand.color.map(|c| c.hex())))
        .col_expr(tenant::Column::Logo, Expr::value(brand.logo.clone()))
        .filter(tenant::Column::Id.eq(tenant.0))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(res.rows_affected == 1)
}

/// A store as the super-admin list shows it.
#[derive(Debug, Clone)]
pub struct StoreRow {
    pub tenant: Tenant,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// `None` only for a row written outside the app.
    pub plan_id: Option<uuid::Uuid>,
}

/// What the super-admin's store list is filtered by.
#[derive(Debug, Clone, Default)]
pub struct StoreSearch {
    /// Part of the slug, the name or a custom domain, any case.
    pub text: Option<String>,
    pub status: Option<TenantStatus>,
    /// Stores on this plan.
    pub plan: Option<uuid::Uuid>,
    pub created_from: Option<chrono::DateTime<chrono::Utc>>,
    /// Created before this instant (the day after the last day asked for).
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
    pub limit: u64,
    pub offset: u64,
}

/// Stores matching a search, newest first, and how many match in all.
pub async fn search(db: &Db, s: &StoreSearch) -> Result<(Vec<StoreRow>, u64)> {
    use sea_orm::Condition;
    let mut cond = Condition::all();
    if let Some(text) = s.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let like = format!("%{}%", text.to_lowercase().replace(['%', '_', '\\'], ""));
        cond = cond.add(
            Condition::any()
                .add(Expr::col(tenant::Column::Slug).like(like.clone()))
                .add(Expr::expr(sea_orm::sea_query::Func::lower(Expr::col(tenant::Column::Name))).like(like.clone()))
                .add(
                    tenant::Column::Id.in_subquery(
                        sea_orm::sea_query::Query::select()
                            .column(tenant_domain::Column::TenantId)
                            .from(tenant_domain::Entity)
                            .and_where(Expr::col(tenant_domain::Column::Domain).like(like))
                            .to_owned(),
                    ),
                ),
        );
    }
    if let Some(plan) = s.plan {
        cond = cond.add(tenant::Column::PlanId.eq(plan));
    }
    if let Some(before) = s.created_before {
        cond = cond.add(tenant::Column::CreatedAt.lt(before));
    }
    if let Some(status) = s.status {
        cond = cond.add(tenant::Column::Status.eq(status.as_str()));
    }
    if let Some(from) = s.created_from {
        cond = cond.add(tenant::Column::CreatedAt.gte(from));
    }
    let txn = db.platform_txn().await?;
    let total = tenant::Entity::find().filter(cond.clone()).count(&txn).await?;
    let rows = tenant::Entity::find()
        .filter(cond)
        .order_by_desc(tenant::Column::CreatedAt)
        .order_by_desc(tenant::Column::Id)
        .limit(s.limit)
        .offset(s.offset)
        .all(&txn)
        .await?;
    txn.commit().await?;
    let rows = rows
        .into_iter()
        .map(|m| {
            let (created_at, plan_id) = (m.created_at, m.plan_id);
            Ok(StoreRow { tenant: to_tenant(m)?, created_at, plan_id })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((rows, total))
}

/// Orders placed since `since` and their total (minor units, in each store's
/// currency), per store; unpaid-and-expired and cancelled orders left out.
pub async fn sales_since(
    db: &Db,
    stores: &[TenantId],
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<(TenantId, i64, i64)>> {
    use crate::entities::order;
    use sea_orm::FromQueryResult;
    #[derive(FromQueryResult)]
    struct Row {
        tenant_id: uuid::Uuid,
        orders: i64,
        sales: Option<i64>,
    }
    if stores.is_empty() {
        return Ok(Vec::new());
    }
    let txn = db.platform_txn().await?;
    let rows = order::Entity::find()
        .select_only()
        .column(order::Column::TenantId)
        .column_as(order::Column::Id.count(), "orders")
        .column_as(sea_orm::sea_query::Func::sum(Expr::col(order::Column::Total)).cast_as("BIGINT"), "sales")
        .filter(order::Column::TenantId.is_in(stores.iter().map(|t| t.0)))
        .filter(order::Column::PlacedAt.gte(since))
        .filter(order::Column::Status.is_not_in(["expired", "cancelled"]))
        .group_by(order::Column::TenantId)
        .into_model::<Row>()
        .all(&txn)
        .await?;
    txn.commit().await?;
    Ok(rows.into_iter().map(|r| (TenantId(r.tenant_id), r.orders, r.sales.unwrap_or(0))).collect())
}

/// A store's row for the super-admin's store page.
pub async fn store_row(db: &Db, slug: &str) -> Result<Option<StoreRow>> {
    let txn = db.platform_txn().await?;
    let row = tenant::Entity::find().filter(tenant::Column::Slug.eq(slug)).one(&txn).await?;
    txn.commit().await?;
    row.map(|m| {
        let (created_at, plan_id) = (m.created_at, m.plan_id);
        Ok(StoreRow { tenant: to_tenant(m)?, created_at, plan_id })
    })
    .transpose()
}

/// When each order counted in [`sales_since`] was placed, and its total, for one
/// store: the day-by-day chart buckets them (the same code for both databases, where
/// date functions differ).
pub async fn order_totals_since(
    db: &Db,
    store: TenantId,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<(chrono::DateTime<chrono::Utc>, i64)>> {
    use crate::entities::order;
    use sea_orm::FromQueryResult;
    #[derive(FromQueryResult)]
    struct Row {
        placed_at: chrono::DateTime<chrono::Utc>,
        total: i64,
    }
    let txn = db.tenant_txn(store).await?;
    let rows = order::Entity::find()
        .select_only()
        .column(order::Column::PlacedAt)
        .column(order::Column::Total)
        .filter(order::Column::TenantId.eq(store.0))
        .filter(order::Column::PlacedAt.gte(since))
        .filter(order::Column::Status.is_not_in(["expired", "cancelled"]))
        .into_model::<Row>()
        .all(&txn)
        .await?;
    txn.commit().await?;
    Ok(rows.into_iter().map(|r| (r.placed_at, r.total)).collect())
}

/// Operator actions across stores (audit entries whose actor is an operator), newest
/// first.
pub async fn operator_audit(db: &Db, limit: u64) -> Result<Vec<(String, crate::entities::audit_entry::Model)>> {
    use crate::entities::audit_entry;
    let txn = db.platform_txn().await?;
    let rows = audit_entry::Entity::find()
        .filter(audit_entry::Column::Actor.starts_with("operator "))
        .order_by_desc(audit_entry::Column::CreatedAt)
        .limit(limit)
        .all(&txn)
        .await?;
    let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.tenant_id).collect();
    let names = tenant::Entity::find().filter(tenant::Column::Id.is_in(ids)).all(&txn).await?;
    txn.commit().await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let slug = names.iter().find(|t| t.id == r.tenant_id).map(|t| t.slug.clone()).unwrap_or_default();
            (slug, r)
        })
        .collect())
}
