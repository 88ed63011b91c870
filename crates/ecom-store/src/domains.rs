//! A store's custom domains and their verification (m0020). Host resolution reads
//! verified domains only (`tenants::find_by_domain`); this module writes them.

use crate::entities::{tenant, tenant_domain};
use crate::{Db, Result, StoreError};
use chrono::{DateTime, Utc};
use ecom_core::TenantId;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

/// A domain that routes to its store.
pub const VERIFIED: &str = "verified";
/// A domain waiting for its owner to publish the token.
pub const PENDING: &str = "pending";

/// One of a store's domains, as the panel shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DomainRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub domain: String,
    pub status: String,
    pub is_primary: bool,
    pub token: String,
    pub created_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub next_check_at: Option<DateTime<Utc>>,
    pub check_attempts: i32,
    pub last_error: String,
}

impl From<tenant_domain::Model> for DomainRow {
    fn from(m: tenant_domain::Model) -> Self {
        Self {
            id: m.id,
            tenant_id: m.tenant_id,
            domain: m.domain,
            status: m.status,
            is_primary: m.is_primary,
            token: m.token,
            created_at: m.created_at,
            verified_at: m.verified_at,
            last_checked_at: m.last_checked_at,
            next_check_at: m.next_check_at,
            check_attempts: m.check_attempts,
            last_error: m.last_error,
        }
    }
}

/// The store's domains, primary first, then by name.
pub async fn list(db: &Db, tenant: TenantId) -> Result<Vec<DomainRow>> {
    let txn = db.tenant_txn(tenant).await?;
    let rows = tenant_domain::Entity::find()
        .filter(tenant_domain::Column::TenantId.eq(tenant.0))
        .order_by_desc(tenant_domain::Column::IsPrimary)
        .order_by_asc(tenant_domain::Column::Domain)
        .all(&txn)
        .await?;
    txn.commit().await?;
    Ok(rows.into_iter().map(DomainRow::from).collect())
}

pub async fn get(db: &Db, tenant: TenantId, id: Uuid) -> Result<Option<DomainRow>> {
    let txn = db.tenant_txn(tenant).await?;
    let row =
        tenant_domain::Entity::find_by_id(id).filter(tenant_domain::Column::TenantId.eq(tenant.0)).one(&txn).await?;
    txn.commit().await?;
    Ok(row.map(DomainRow::from))
}

/// Which store holds `domain` (pending or verified), across stores.
pub async fn owner_of(db: &Db, domain: &str) -> Result<Option<TenantId>> {
    let txn = db.platform_txn().await?;
    let row = tenant_domain::Entity::find().filter(tenant_domain::Column::Domain.eq(domain)).one(&txn).await?;
    txn.commit().await?;
    Ok(row.map(|r| TenantId(r.tenant_id)))
}

/// The domain whose verification token is `token`, across stores: the HTTP check's
/// file is served before the domain routes.
pub async fn find_by_token(db: &Db, token: &str) -> Result<Option<DomainRow>> {
    if token.is_empty() {
        return Ok(None);
    }
    let txn = db.platform_txn().await?;
    let row = tenant_domain::Entity::find().filter(tenant_domain::Column::Token.eq(token)).one(&txn).await?;
    txn.commit().await?;
    Ok(row.map(DomainRow::from))
}

/// Adds a domain waiting for verification; the first check is due at `first_check`.
/// `Conflict` when any store (this one included) already has it.
pub async fn add_pending(
    db: &Db,
    tenant: TenantId,
    domain: &str,
    token: &str,
    first_check: DateTime<Utc>,
) -> Result<DomainRow> {
    let now = Utc::now();
    let model = tenant_domain::Model {
        id: Uuid::now_v7(),
        tenant_id: tenant.0,
        domain: domain.to_owned(),
        is_primary: false,
        created_at: now,
        status: PENDING.to_owned(),
        token: token.to_owned(),
        verified_at: None,
        last_checked_at: None,
        next_check_at: Some(first_check),
        check_attempts: 0,
        last_error: String::new(),
        claimed_by: String::new(),
        claimed_until: None,
    };
    let txn = db.tenant_txn(tenant).await?;
    tenant_domain::Entity::insert(tenant_domain::ActiveModel {
        id: Set(model.id),
        tenant_id: Set(model.tenant_id),
        domain: Set(model.domain.clone()),
        is_primary: Set(false),
        created_at: Set(now),
        status: Set(model.status.clone()),
        token: Set(model.token.clone()),
        verified_at: Set(None),
        last_checked_at: Set(None),
        next_check_at: Set(model.next_check_at),
        check_attempts: Set(0),
        last_error: Set(String::new()),
        claimed_by: Set(String::new()),
        claimed_until: Set(None),
    })
    .exec_without_returning(&txn)
    .await
    .map_err(|e| StoreError::conflict_or_db(e, "that domain"))?;
    txn.commit().await?;
    Ok(model.into())
}

/// Marks a pending domain verified; `false` when it was not pending (already verified
/// by another check, or removed).
pub async fn mark_verified(db: &Db, tenant: TenantId, id: Uuid) -> Result<bool> {
    let now = Utc::now();
    let txn = db.tenant_txn(tenant).await?;
    let res = tenant_domain::Entity::update_many()
        .col_expr(tenant_domain::Column::Status, Expr::value(VERIFIED))
        .col_expr(tenant_domain::Column::VerifiedAt, Expr::value(Some(now)))
        .col_expr(tenant_domain::Column::LastCheckedAt, Expr::value(Some(now)))
        .col_expr(tenant_domain::Column::NextCheckAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(tenant_domain::Column::LastError, Expr::value(""))
        .col_expr(tenant_domain::Column::ClaimedBy, Expr::value(""))
        .col_expr(tenant_domain::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(tenant_domain::Column::CheckAttempts, Expr::col(tenant_domain::Column::CheckAttempts).add(1))
        .filter(tenant_domain::Column::Id.eq(id))
        .filter(tenant_domain::Column::TenantId.eq(tenant.0))
        .filter(tenant_domain::Column::Status.eq(PENDING))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(res.rows_affected == 1)
}

/// Records a failed check of a pending domain: why, and when to look again (`None`:
/// the background re-check gives up; "Verify now" still works).
pub async fn record_failure(
    db: &Db,
    tenant: TenantId,
    id: Uuid,
    error: &str,
    next_check_at: Option<DateTime<Utc>>,
) -> Result<()> {
    let txn = db.tenant_txn(tenant).await?;
    tenant_domain::Entity::update_many()
        .col_expr(tenant_domain::Column::LastError, Expr::value(error.chars().take(500).collect::<String>()))
        .col_expr(tenant_domain::Column::LastCheckedAt, Expr::value(Some(Utc::now())))
        .col_expr(tenant_domain::Column::NextCheckAt, Expr::value(next_check_at))
        .col_expr(tenant_domain::Column::ClaimedBy, Expr::value(""))
        .col_expr(tenant_domain::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(tenant_domain::Column::CheckAttempts, Expr::col(tenant_domain::Column::CheckAttempts).add(1))
        .filter(tenant_domain::Column::Id.eq(id))
        .filter(tenant_domain::Column::TenantId.eq(tenant.0))
        .filter(tenant_domain::Column::Status.eq(PENDING))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// Leases up to `limit` pending domains whose re-check is due, for `node` until
/// `until`: a conditional update per row, so two nodes never check one domain at once
/// and a node that dies mid-check loses its lease.
pub async fn claim_due(
    db: &Db,
    node: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<DomainRow>> {
    let txn = db.platform_txn().await?;
    let due = tenant_domain::Entity::find()
        .filter(tenant_domain::Column::Status.eq(PENDING))
        .filter(tenant_domain::Column::NextCheckAt.lte(now))
        .filter(
            sea_orm::Condition::any()
                .add(tenant_domain::Column::ClaimedUntil.is_null())
                .add(tenant_domain::Column::ClaimedUntil.lt(now)),
        )
        .order_by_asc(tenant_domain::Column::NextCheckAt)
        .limit(limit)
        .all(&txn)
        .await?;
    let mut claimed = Vec::new();
    for row in due {
        let res = tenant_domain::Entity::update_many()
            .col_expr(tenant_domain::Column::ClaimedBy, Expr::value(node.to_owned()))
            .col_expr(tenant_domain::Column::ClaimedUntil, Expr::value(Some(until)))
            .filter(tenant_domain::Column::Id.eq(row.id))
            .filter(tenant_domain::Column::Status.eq(PENDING))
            .filter(
                sea_orm::Condition::any()
                    .add(tenant_domain::Column::ClaimedUntil.is_null())
                    .add(tenant_domain::Column::ClaimedUntil.lt(now)),
            )
            .exec(&txn)
            .await?;
        if res.rows_affected == 1 {
            claimed.push(DomainRow::from(row));
        }
    }
    txn.commit().await?;
    Ok(claimed)
}

/// Makes `domain` (a verified domain of the store) the primary one, or clears the
/// primary with `None`; copies it onto the store row. `false` when the domain is not
/// one of the store's verified domains.
pub async fn set_primary(db: &Db, tenant: TenantId, domain: Option<Uuid>) -> Result<bool> {
    let txn = db.tenant_txn(tenant).await?;
    let name = match domain {
        Some(id) => {
            let Some(row) = tenant_domain::Entity::find_by_id(id)
                .filter(tenant_domain::Column::TenantId.eq(tenant.0))
                .filter(tenant_domain::Column::Status.eq(VERIFIED))
                .one(&txn)
                .await?
            else {
                txn.commit().await?;
                return Ok(false);
            };
            Some(row.domain)
        }
        None => None,
    };
    tenant_domain::Entity::update_many()
        .col_expr(tenant_domain::Column::IsPrimary, Expr::value(false))
        .filter(tenant_domain::Column::TenantId.eq(tenant.0))
        .exec(&txn)
        .await?;
    if let Some(id) = domain {
        tenant_domain::Entity::update_many()
            .col_expr(tenant_domain::Column::IsPrimary, Expr::value(true))
            .filter(tenant_domain::Column::Id.eq(id))
            .filter(tenant_domain::Column::TenantId.eq(tenant.0))
            .exec(&txn)
            .await?;
    }
    tenant::Entity::update_many()
        .col_expr(tenant::Column::PrimaryDomain, Expr::value(name))
        .filter(tenant::Column::Id.eq(tenant.0))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(true)
}

/// Removes a domain; when it was the primary one, the store falls back to its
/// platform address. The removed row, or `None` when it was not the store's.
pub async fn remove(db: &Db, tenant: TenantId, id: Uuid) -> Result<Option<DomainRow>> {
    let txn = db.tenant_txn(tenant).await?;
    let Some(row) =
        tenant_domain::Entity::find_by_id(id).filter(tenant_domain::Column::TenantId.eq(tenant.0)).one(&txn).await?
    else {
        txn.commit().await?;
        return Ok(None);
    };
    tenant_domain::Entity::delete_many()
        .filter(tenant_domain::Column::Id.eq(id))
        .filter(tenant_domain::Column::TenantId.eq(tenant.0))
        .exec(&txn)
        .await?;
    if row.is_primary {
        tenant::Entity::update_many()
            .col_expr(tenant::Column::PrimaryDomain, Expr::value(Option::<String>::None))
            .filter(tenant::Column::Id.eq(tenant.0))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(Some(row.into()))
}
