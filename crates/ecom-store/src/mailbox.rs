//! The dev mailbox: where email goes while no mail transport is configured, so that
//! a newcomer can still read password-reset links in the admin panel.

use crate::entities::{dev_mail, tenant};
use crate::{Db, Result};
use chrono::{DateTime, Utc};
use ecom_core::TenantId;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

/// One stored message.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Mail {
    pub id: uuid::Uuid,
    /// The store it was sent for; `None` for platform mail.
    pub store: Option<String>,
    pub to: String,
    pub subject: String,
    pub body_text: String,
    pub created_at: DateTime<Utc>,
}

/// Files a message; returns its id.
pub async fn insert(
    txn: &DatabaseTransaction,
    tenant: Option<TenantId>,
    to: &str,
    subject: &str,
    body_text: &str,
) -> Result<uuid::Uuid> {
    let id = uuid::Uuid::now_v7();
    dev_mail::Entity::insert(dev_mail::ActiveModel {
        id: Set(id),
        tenant_id: Set(tenant.map(|t| t.0)),
        to_addr: Set(to.to_owned()),
        subject: Set(subject.to_owned()),
        body_text: Set(body_text.to_owned()),
        created_at: Set(Utc::now()),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(id)
}

/// The newest messages across the platform, for the super-admin panel.
pub async fn list_all(db: &Db, limit: u64) -> Result<Vec<Mail>> {
    let txn = db.platform_txn().await?;
    let rows = dev_mail::Entity::find().order_by_desc(dev_mail::Column::Id).limit(limit).all(&txn).await?;
    let mut tenant_ids: Vec<uuid::Uuid> = rows.iter().filter_map(|m| m.tenant_id).collect();
    tenant_ids.sort_unstable();
    tenant_ids.dedup();
    let slugs: std::collections::HashMap<uuid::Uuid, String> = tenant::Entity::find()
        .filter(tenant::Column::Id.is_in(tenant_ids))
        .all(&txn)
        .await?
        .into_iter()
        .map(|t| (t.id, t.slug))
        .collect();
    txn.commit().await?;
    Ok(rows
        .into_iter()
        .map(|m| Mail {
            id: m.id,
            store: m.tenant_id.and_then(|t| slugs.get(&t).cloned()),
            to: m.to_addr,
            subject: m.subject,
            body_text: m.body_text,
            created_at: m.created_at,
        })
        .collect())
}
