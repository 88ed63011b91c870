//! One-time password-reset tokens. Only a SHA-256 of the token is stored, so a leaked
//! table cannot be used to reset anyone's password.

use crate::Result;
use crate::entities::password_reset as pr;
use chrono::{DateTime, Utc};
use ecom_core::{AccountId, Realm};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};

pub async fn insert(
    txn: &DatabaseTransaction,
    realm: Realm,
    account: AccountId,
    token_hash: &str,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    pr::Entity::insert(pr::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        tenant_id: Set(realm.tenant().map(|t| t.0)),
        account_kind: Set(realm.kind().as_str().to_owned()),
        account_id: Set(account.0),
        token_hash: Set(token_hash.to_owned()),
        expires_at: Set(expires_at),
        used_at: Set(None),
        created_at: Set(Utc::now()),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

fn in_realm(realm: Realm) -> sea_orm::Condition {
    let cond = sea_orm::Condition::all().add(pr::Column::AccountKind.eq(realm.kind().as_str()));
    match realm.tenant() {
        Some(t) => cond.add(pr::Column::TenantId.eq(t.0)),
        None => cond.add(pr::Column::TenantId.is_null()),
    }
}

/// Uses up a token: returns its account when the token exists in this realm, is unused
/// and unexpired, and marks it used in the same statement so it works once only.
pub async fn consume(
    txn: &DatabaseTransaction,
    realm: Realm,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<AccountId>> {
    let Some(row) =
        pr::Entity::find().filter(in_realm(realm)).filter(pr::Column::TokenHash.eq(token_hash)).one(txn).await?
    else {
        return Ok(None);
    };
    let res = pr::Entity::update_many()
        .col_expr(pr::Column::UsedAt, Expr::value(now))
        .filter(pr::Column::Id.eq(row.id))
        .filter(pr::Column::UsedAt.is_null())
        .filter(pr::Column::ExpiresAt.gt(now))
        .exec(txn)
        .await?;
    Ok((res.rows_affected == 1).then_some(AccountId(row.account_id)))
}

/// Whether a token would be accepted now, without using it (to show the reset form).
pub async fn is_usable(txn: &DatabaseTransaction, realm: Realm, token_hash: &str, now: DateTime<Utc>) -> Result<bool> {
    Ok(pr::Entity::find()
        .filter(in_realm(realm))
        .filter(pr::Column::TokenHash.eq(token_hash))
        .filter(pr::Column::UsedAt.is_null())
        .filter(pr::Column::ExpiresAt.gt(now))
        .one(txn)
        .await?
        .is_some())
}

/// Voids every outstanding token of an account (after a reset or a password change).
pub async fn void_all(txn: &DatabaseTransaction, realm: Realm, account: AccountId, now: DateTime<Utc>) -> Result<()> {
    pr::Entity::update_many()
        .col_expr(pr::Column::UsedAt, Expr::value(now))
        .filter(in_realm(realm))
        .filter(pr::Column::AccountId.eq(account.0))
        .filter(pr::Column::UsedAt.is_null())
        .exec(txn)
        .await?;
    Ok(())
}
