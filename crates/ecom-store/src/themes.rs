//! A store's theme: its edited storefront templates, each as a draft and/or a
//! published version. Templates it has not edited come from the built-in theme.

use crate::Result;
use crate::entities::theme_template as tt;
use chrono::{DateTime, Utc};
use ecom_core::TenantId;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

pub const DRAFT: &str = "draft";
pub const PUBLISHED: &str = "published";

#[derive(Debug, Clone, serde::Serialize)]
pub struct ThemeTemplate {
    pub name: String,
    pub status: String,
    pub source: String,
    pub updated_at: DateTime<Utc>,
}

pub async fn list(txn: &DatabaseTransaction, tenant: TenantId) -> Result<Vec<ThemeTemplate>> {
    Ok(tt::Entity::find()
        .filter(tt::Column::TenantId.eq(tenant.0))
        .order_by_asc(tt::Column::Name)
        .all(txn)
        .await?
        .into_iter()
        .map(|m| ThemeTemplate { name: m.name, status: m.status, source: m.source, updated_at: m.updated_at })
        .collect())
}

async fn delete(txn: &DatabaseTransaction, tenant: TenantId, name: &str, status: &str) -> Result<()> {
    tt::Entity::delete_many()
        .filter(tt::Column::TenantId.eq(tenant.0))
        .filter(tt::Column::Name.eq(name))
        .filter(tt::Column::Status.eq(status))
        .exec(txn)
        .await?;
    Ok(())
}

/// Stores `source` as the draft of `name`, replacing an earlier draft.
pub async fn save_draft(txn: &DatabaseTransaction, tenant: TenantId, name: &str, source: &str) -> Result<()> {
    delete(txn, tenant, name, DRAFT).await?;
    tt::Entity::insert(tt::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0),
        name: Set(name.to_owned()),
        status: Set(DRAFT.to_owned()),
        source: Set(source.to_owned()),
        updated_at: Set(Utc::now()),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Makes every draft the published version. Returns how many templates changed.
pub async fn publish(txn: &DatabaseTransaction, tenant: TenantId) -> Result<usize> {
    let drafts: Vec<ThemeTemplate> = list(txn, tenant).await?.into_iter().filter(|t| t.status == DRAFT).collect();
    for d in &drafts {
        delete(txn, tenant, &d.name, PUBLISHED).await?;
    }
    tt::Entity::update_many()
        .col_expr(tt::Column::Status, sea_orm::sea_query::Expr::value(PUBLISHED))
        .filter(tt::Column::TenantId.eq(tenant.0))
        .filter(tt::Column::Status.eq(DRAFT))
        .exec(txn)
        .await?;
    Ok(drafts.len())
}

/// Drops the draft and the published version of `name`: back to the built-in template.
pub async fn revert(txn: &DatabaseTransaction, tenant: TenantId, name: &str) -> Result<()> {
    delete(txn, tenant, name, DRAFT).await?;
    delete(txn, tenant, name, PUBLISHED).await
}
