//! Bearer tokens for the GraphQL APIs: merchants' app tokens and customers' access
//! tokens. Only a SHA-256 of a token is stored, so a leaked table opens nothing.

use crate::Result;
use crate::entities::api_token;
use chrono::{DateTime, Utc};
use ecom_core::TenantId;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

pub use crate::entities::api_token::Model as TokenRow;

pub async fn insert(txn: &DatabaseTransaction, row: TokenRow) -> Result<()> {
    api_token::Entity::insert(api_token::ActiveModel::from(row)).exec_without_returning(txn).await?;
    Ok(())
}

/// The live token with this hash: not revoked, not expired.
pub async fn live_by_hash(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    kind: &str,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<TokenRow>> {
    Ok(api_token::Entity::find()
        .filter(api_token::Column::TenantId.eq(tenant.0))
        .filter(api_token::Column::TokenHash.eq(hash))
        .filter(api_token::Column::Kind.eq(kind))
        .filter(api_token::Column::RevokedAt.is_null())
        .filter(Condition::any().add(api_token::Column::ExpiresAt.is_null()).add(api_token::Column::ExpiresAt.gt(now)))
        .one(txn)
        .await?)
}

/// A store's tokens of one kind, newest first, revoked ones included.
pub async fn list(txn: &DatabaseTransaction, tenant: TenantId, kind: &str) -> Result<Vec<TokenRow>> {
    Ok(api_token::Entity::find()
        .filter(api_token::Column::TenantId.eq(tenant.0))
        .filter(api_token::Column::Kind.eq(kind))
        .order_by_desc(api_token::Column::CreatedAt)
        .all(txn)
        .await?)
}

/// Revokes a live token by id or by hash; false when there was none to revoke.
pub async fn revoke(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    kind: &str,
    which: TokenRef<'_>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut q = api_token::Entity::update_many()
        .col_expr(api_token::Column::RevokedAt, Expr::value(now))
        .filter(api_token::Column::TenantId.eq(tenant.0))
        .filter(api_token::Column::Kind.eq(kind))
        .filter(api_token::Column::RevokedAt.is_null());
    q = match which {
        TokenRef::Id(id) => q.filter(api_token::Column::Id.eq(id)),
        TokenRef::Hash(h) => q.filter(api_token::Column::TokenHash.eq(h)),
    };
    Ok(q.exec(txn).await?.rows_affected == 1)
}

/// Which token a call means.
#[derive(Debug, Clone, Copy)]
pub enum TokenRef<'a> {
    Id(Uuid),
    Hash(&'a str),
}

/// Records a use, at most once a minute per token (a write per request would make
/// every API read a write).
pub async fn touch(txn: &DatabaseTransaction, tenant: TenantId, id: Uuid, now: DateTime<Utc>) -> Result<()> {
    api_token::Entity::update_many()
        .col_expr(api_token::Column::LastUsedAt, Expr::value(now))
        .filter(api_token::Column::TenantId.eq(tenant.0))
        .filter(api_token::Column::Id.eq(id))
        .filter(
            Condition::any()
                .add(api_token::Column::LastUsedAt.is_null())
                .add(api_token::Column::LastUsedAt.lt(now - chrono::Duration::minutes(1))),
        )
        .exec(txn)
        .await?;
    Ok(())
}
