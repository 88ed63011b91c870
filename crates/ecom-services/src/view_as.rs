//! "View as merchant": an operator opens a store's merchant panel read-only.
//!
//! The panel lives on the store's host and cookies are per host, so the grant is a
//! one-time link made on the platform host (a token of purpose `viewas`, valid for
//! [`LINK_TTL_SECS`], stored hashed) that the store's host exchanges for a read-only
//! session of [`SESSION_TTL_SECS`]. Opening it is audited in the store's log with the
//! operator as the actor, which is also what the operator log lists.

use crate::{Result, ServiceError};
use chrono::Utc;
use ecom_core::{AccountId, Realm, TenantId};
use ecom_store::tokens::{self, Purpose};
use ecom_store::{Db, StoreError};
use sha2::{Digest, Sha256};

/// How long the one-time link works.
pub const LINK_TTL_SECS: i64 = 120;
/// How long a read-only view lasts once opened.
pub const SESSION_TTL_SECS: i64 = 30 * 60;

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Makes the one-time link token for `operator` (a platform admin) to view `store`.
pub async fn grant(db: &Db, store: TenantId, operator: AccountId) -> Result<String> {
    let token = hex::encode(rand::random::<[u8; 32]>());
    let txn = db.tenant_txn(store).await?;
    let expires = Utc::now() + chrono::Duration::seconds(LINK_TTL_SECS);
    tokens::insert(&txn, Realm::Staff(store), operator, Purpose::ViewAs, &hash(&token), expires).await?;
    txn.commit().await.map_err(StoreError::from)?;
    Ok(token)
}

/// Uses up a link token on the store's host: the operator's email, after writing the
/// audit entry. `Unauthorized` for an unknown, used or expired token.
pub async fn open(db: &Db, store: TenantId, token: &str) -> Result<String> {
    let refused = ServiceError::Unauthorized(
        "This view-as link has expired or was used already; open a new one from the super-admin panel.",
    );
    if token.len() != 64 {
        return Err(refused);
    }
    let txn = db.tenant_txn(store).await?;
    let operator = tokens::consume(&txn, Realm::Staff(store), Purpose::ViewAs, &hash(token), Utc::now()).await?;
    txn.commit().await.map_err(StoreError::from)?;
    let Some(operator) = operator else { return Err(refused) };
    let txn = db.platform_txn().await?;
    let admin = ecom_store::accounts::find_by_id(&txn, Realm::Admin, operator).await?;
    txn.commit().await.map_err(StoreError::from)?;
    let Some(admin) = admin else { return Err(refused) };
    crate::audit::record(
        db,
        store,
        &format!("operator {}", admin.email),
        "store.viewed_as_merchant",
        "merchant panel",
        &format!("read-only for up to {} minutes", SESSION_TTL_SECS / 60),
    )
    .await?;
    Ok(admin.email)
}
