//! The store's audit log: who changed what in the merchant panel, and when. Order and
//! settings changes write their entry in the same transaction as the change; panel
//! actions on the catalog, theme and store settings write it right after theirs.

use crate::Result;
use ecom_core::TenantId;
use ecom_store::orders as repo;
use ecom_store::{Db, StoreError};

/// Writes one entry.
pub async fn record(db: &Db, tenant: TenantId, actor: &str, action: &str, target: &str, detail: &str) -> Result<()> {
    let txn = db.tenant_txn(tenant).await?;
    repo::audit(&txn, tenant, actor, action, target, detail).await?;
    txn.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// The newest entries first.
pub async fn recent(db: &Db, tenant: TenantId, limit: u64) -> Result<Vec<ecom_store::entities::audit_entry::Model>> {
    let txn = db.tenant_txn(tenant).await?;
    let rows = repo::audit_log(&txn, tenant, limit).await?;
    txn.commit().await.map_err(StoreError::from)?;
    Ok(rows)
}
