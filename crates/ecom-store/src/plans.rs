//! The platform's plans and which plan each store is on. Plans are platform rows (no
//! tenant), read in platform scope or inside a store's transaction.

use crate::entities::{plan, product, product_image, tenant};
use crate::{Db, Result, StoreError};
use ecom_core::TenantId;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

/// A plan as the platform defines it; `None` limits are unlimited.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    pub id: uuid::Uuid,
    pub code: String,
    pub name: String,
    /// Shown as written, e.g. "$29 a month".
    pub price: String,
    pub max_products: Option<u64>,
    pub max_staff: Option<u64>,
    pub api_per_minute: Option<u64>,
    pub max_storage_bytes: Option<u64>,
    /// New stores get this plan.
    pub is_default: bool,
}

/// A plan's fields, already checked by the service layer.
#[derive(Debug, Clone, Default)]
pub struct PlanFields {
    pub code: String,
    pub name: String,
    pub price: String,
    pub max_products: Option<u64>,
    pub max_staff: Option<u64>,
    pub api_per_minute: Option<u64>,
    pub max_storage_bytes: Option<u64>,
}

fn to_i64(v: Option<u64>) -> Option<i64> {
    v.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

fn to_u64(v: Option<i64>) -> Option<u64> {
    v.map(|n| u64::try_from(n).unwrap_or(0))
}

fn to_plan(m: plan::Model) -> Plan {
    Plan {
        id: m.id,
        code: m.code,
        name: m.name,
        price: m.price,
        max_products: to_u64(m.max_products),
        max_staff: to_u64(m.max_staff),
        api_per_minute: to_u64(m.api_per_minute),
        max_storage_bytes: to_u64(m.max_storage_bytes),
        is_default: m.is_default,
    }
}

/// Every plan, default first then by name, with how many stores are on each.
pub async fn list(db: &Db) -> Result<Vec<(Plan, u64)>> {
    #[derive(FromQueryResult)]
    struct Count {
        plan_id: Option<uuid::Uuid>,
        n: i64,
    }
    let txn = db.platform_txn().await?;
    let plans =
        plan::Entity::find().order_by_desc(plan::Column::IsDefault).order_by_asc(plan::Column::Name).all(&txn).await?;
    let counts = tenant::Entity::find()
        .select_only()
        .column(tenant::Column::PlanId)
        .column_as(tenant::Column::Id.count(), "n")
        .group_by(tenant::Column::PlanId)
        .into_model::<Count>()
        .all(&txn)
        .await?;
    txn.commit().await?;
    Ok(plans
        .into_iter()
        .map(|p| {
            let n = counts.iter().find(|c| c.plan_id == Some(p.id)).map_or(0, |c| u64::try_from(c.n).unwrap_or(0));
            (to_plan(p), n)
        })
        .collect())
}

pub async fn find_by_code(db: &Db, code: &str) -> Result<Option<Plan>> {
    let txn = db.platform_txn().await?;
    let row = plan::Entity::find().filter(plan::Column::Code.eq(code)).one(&txn).await?;
    txn.commit().await?;
    Ok(row.map(to_plan))
}

/// The plan new stores get (the seeded Starter unless the operator chose another).
pub async fn default_plan(conn: &impl ConnectionTrait) -> Result<Option<Plan>> {
    let row = plan::Entity::find()
        .order_by_desc(plan::Column::IsDefault)
        .order_by_asc(plan::Column::CreatedAt)
        .one(conn)
        .await?;
    Ok(row.map(to_plan))
}

/// Adds a plan; `Conflict` when its code is taken.
pub async fn create(db: &Db, f: &PlanFields) -> Result<uuid::Uuid> {
    let id = uuid::Uuid::now_v7();
    let txn = db.platform_txn().await?;
    plan::Entity::insert(plan::ActiveModel {
        id: Set(id),
        code: Set(f.code.clone()),
        name: Set(f.name.clone()),
        price: Set(f.price.clone()),
        max_products: Set(to_i64(f.max_products)),
        max_staff: Set(to_i64(f.max_staff)),
        api_per_minute: Set(to_i64(f.api_per_minute)),
        max_storage_bytes: Set(to_i64(f.max_storage_bytes)),
        is_default: Set(false),
        created_at: Set(chrono::Utc::now()),
    })
    .exec_without_returning(&txn)
    .await
    .map_err(|e| StoreError::conflict_or_db(e, "that plan code"))?;
    txn.commit().await?;
    Ok(id)
}

/// Changes a plan; `false` when there is no plan with this code.
pub async fn update(db: &Db, code: &str, f: &PlanFields) -> Result<bool> {
    let txn = db.platform_txn().await?;
    let res = plan::Entity::update_many()
        .col_expr(plan::Column::Name, Expr::value(f.name.clone()))
        .col_expr(plan::Column::Price, Expr::value(f.price.clone()))
        .col_expr(plan::Column::MaxProducts, Expr::value(to_i64(f.max_products)))
        .col_expr(plan::Column::MaxStaff, Expr::value(to_i64(f.max_staff)))
        .col_expr(plan::Column::ApiPerMinute, Expr::value(to_i64(f.api_per_minute)))
        .col_expr(plan::Column::MaxStorageBytes, Expr::value(to_i64(f.max_storage_bytes)))
        .filter(plan::Column::Code.eq(code))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(res.rows_affected == 1)
}

/// Makes a plan the one new stores get.
pub async fn set_default(db: &Db, code: &str) -> Result<bool> {
    let txn = db.platform_txn().await?;
    let Some(p) = plan::Entity::find().filter(plan::Column::Code.eq(code)).one(&txn).await? else {
        return Ok(false);
    };
    plan::Entity::update_many().col_expr(plan::Column::IsDefault, Expr::value(false)).exec(&txn).await?;
    plan::Entity::update_many()
        .col_expr(plan::Column::IsDefault, Expr::value(true))
        .filter(plan::Column::Id.eq(p.id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(true)
}

/// Why a plan was not deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    NotFound,
    /// Stores are on it (how many).
    InUse(u64),
    /// It is the default plan.
    IsDefault,
}

/// Deletes a plan no store is on; checked and deleted in one transaction.
pub async fn delete(db: &Db, code: &str) -> Result<DeleteOutcome> {
    let txn = db.platform_txn().await?;
    let Some(p) = plan::Entity::find().filter(plan::Column::Code.eq(code)).one(&txn).await? else {
        return Ok(DeleteOutcome::NotFound);
    };
    if p.is_default {
        return Ok(DeleteOutcome::IsDefault);
    }
    let stores = tenant::Entity::find().filter(tenant::Column::PlanId.eq(p.id)).count(&txn).await?;
    if stores > 0 {
        return Ok(DeleteOutcome::InUse(stores));
    }
    plan::Entity::delete_many().filter(plan::Column::Id.eq(p.id)).exec(&txn).await?;
    txn.commit().await?;
    Ok(DeleteOutcome::Deleted)
}

/// The plan a store is on (the default plan for a store without one). Works in a
/// store's transaction too: plans and stores are not tenant rows.
pub async fn of_tenant(conn: &impl ConnectionTrait, tenant: TenantId) -> Result<Option<Plan>> {
    use sea_orm::sea_query::Query;
    // One statement: the plan joined from the store's row.
    let ids = Query::select()
        .column(tenant::Column::PlanId)
        .from(tenant::Entity)
        .and_where(Expr::col(tenant::Column::Id).eq(tenant.0))
        .to_owned();
    if let Some(p) = plan::Entity::find().filter(plan::Column::Id.in_subquery(ids)).one(conn).await? {
        return Ok(Some(to_plan(p)));
    }
    default_plan(conn).await
}

/// [`of_tenant`] in a transaction of its own.
pub async fn plan_of(db: &Db, tenant: TenantId) -> Result<Option<Plan>> {
    let txn = db.platform_txn().await?;
    let p = of_tenant(&txn, tenant).await?;
    txn.commit().await?;
    Ok(p)
}

/// Puts a store on a plan; `false` when either does not exist.
pub async fn set_tenant_plan(db: &Db, tenant: TenantId, code: &str) -> Result<bool> {
    let txn = db.platform_txn().await?;
    let Some(p) = plan::Entity::find().filter(plan::Column::Code.eq(code)).one(&txn).await? else {
        return Ok(false);
    };
    let res = tenant::Entity::update_many()
        .col_expr(tenant::Column::PlanId, Expr::value(p.id))
        .filter(tenant::Column::Id.eq(tenant.0))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(res.rows_affected == 1)
}

/// What a store uses of what plans limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub products: u64,
    pub staff: u64,
    pub storage_bytes: u64,
}

/// Products (archived ones too), staff accounts and stored image bytes of a store.
pub async fn usage(conn: &impl ConnectionTrait, tenant: TenantId) -> Result<Usage> {
    let products = product::Entity::find().filter(product::Column::TenantId.eq(tenant.0)).count(conn).await?;
    let staff = staff_count(conn, tenant).await?;
    let storage_bytes = storage_bytes(conn, tenant).await?;
    Ok(Usage { products, staff, storage_bytes })
}

/// Staff accounts of a store.
pub async fn staff_count(conn: &impl ConnectionTrait, tenant: TenantId) -> Result<u64> {
    use sea_orm::sea_query::{Alias, Query};
    let mut q = Query::select();
    q.from(Alias::new("staff"))
        .expr_as(Expr::col(Alias::new("id")).count(), Alias::new("n"))
        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant.0));
    let n: i64 = match conn.query_one(&q).await? {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Bytes of the store's stored image originals.
pub async fn storage_bytes(conn: &impl ConnectionTrait, tenant: TenantId) -> Result<u64> {
    #[derive(FromQueryResult)]
    struct Sum {
        total: Option<i64>,
    }
    let row = product_image::Entity::find()
        .select_only()
        .column_as(Func::sum(Expr::col(product_image::Column::Bytes)).cast_as("BIGINT"), "total")
        .filter(product_image::Column::TenantId.eq(tenant.0))
        .into_model::<Sum>()
        .one(conn)
        .await?;
    Ok(row.and_then(|r| r.total).map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

/// Writes an operator action that concerns no single store.
pub async fn log_operator(db: &Db, actor: &str, action: &str, target: &str, detail: &str) -> Result<()> {
    use crate::entities::operator_log;
    let cut = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    let txn = db.platform_txn().await?;
    operator_log::Entity::insert(operator_log::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        actor: Set(cut(actor, 300)),
        action: Set(cut(action, 100)),
        target: Set(cut(target, 300)),
        detail: Set(cut(detail, 1000)),
        created_at: Set(chrono::Utc::now()),
    })
    .exec_without_returning(&txn)
    .await?;
    txn.commit().await?;
    Ok(())
}

/// The newest platform-wide operator actions.
pub async fn operator_log(db: &Db, limit: u64) -> Result<Vec<crate::entities::operator_log::Model>> {
    use crate::entities::operator_log;
    let txn = db.platform_txn().await?;
    let rows =
        operator_log::Entity::find().order_by_desc(operator_log::Column::CreatedAt).limit(limit).all(&txn).await?;
    txn.commit().await?;
    Ok(rows)
}

/// Makes the transactions that count something of a store and then add to it (a
/// product, an image, a staff invitation, checked against the plan) take turns, so
/// that two concurrent additions cannot both pass a check that only one fits. Call it
/// before counting; it holds until the transaction ends. PostgreSQL: a
/// transaction-scoped advisory lock on (store, `what`), so other stores and other
/// kinds of additions do not wait. SQLite: a no-op write to the store's row, which
/// takes the database's write lock at once (SQLite writes one at a time).
pub async fn lock_usage(txn: &sea_orm::DatabaseTransaction, store: TenantId, what: &str) -> Result<()> {
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        let key = format!("plan-usage:{}:{what}", store.0);
        txn.execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [key.into()],
        ))
        .await?;
    } else {
        tenant::Entity::update_many()
            .col_expr(tenant::Column::Name, Expr::col(tenant::Column::Name))
            .filter(tenant::Column::Id.eq(store.0))
            .exec(txn)
            .await?;
    }
    Ok(())
}
