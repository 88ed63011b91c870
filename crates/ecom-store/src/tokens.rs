//! One-time tokens sent to an account's email: password resets and invitations,
//! email verification, and sign-in links. Only a SHA-256 of the token is stored, so a
//! leaked table opens nothing; each token serves one [`Purpose`] only.

use crate::Result;
use crate::entities::password_reset as pr;
use chrono::{DateTime, Utc};
use ecom_core::{AccountId, Realm};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};

/// What a token is for; a token works only for its own purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Choose a new password (reset, or an invitation's first password).
    Password,
    /// Prove the account's email address is theirs.
    Verify,
    /// Sign in once, e.g. right after opening a store on the platform's host.
    SignIn,
    /// An operator opening a store's panel read-only; the account is the operator's
    /// (a platform admin), the tenant the store viewed.
    ViewAs,
}

impl Purpose {
    pub const fn as_str(self) -> &'static str {
        match self {
            Purpose::Password => "password",
            Purpose::Verify => "verify",
            Purpose::SignIn => "signin",
            Purpose::ViewAs => "viewas",
        }
    }
}

pub async fn insert(
    txn: &DatabaseTransaction,
    realm: Realm,
    account: AccountId,
    purpose: Purpose,
    token_hash: &str,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    pr::Entity::insert(pr::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        tenant_id: Set(realm.tenant().map(|t| t.0)),
        account_kind: Set(realm.kind().as_str().to_owned()),
        account_id: Set(account.0),
        purpose: Set(purpose.as_str().to_owned()),
        token_hash: Set(token_hash.to_owned()),
        expires_at: Set(expires_at),
        used_at: Set(None),
        created_at: Set(Utc::now()),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

fn in_realm(realm: Realm, purpose: Purpose) -> sea_orm::Condition {
    let cond = sea_orm::Condition::all()
        .add(pr::Column::AccountKind.eq(realm.kind().as_str()))
        .add(pr::Column::Purpose.eq(purpose.as_str()));
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
    purpose: Purpose,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<AccountId>> {
    let Some(row) = pr::Entity::find()
        .filter(in_realm(realm, purpose))
        .filter(pr::Column::TokenHash.eq(token_hash))
        .one(txn)
        .await?
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
pub async fn is_usable(
    txn: &DatabaseTransaction,
    realm: Realm,
    purpose: Purpose,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(pr::Entity::find()
        .filter(in_realm(realm, purpose))
        .filter(pr::Column::TokenHash.eq(token_hash))
        .filter(pr::Column::UsedAt.is_null())
        .filter(pr::Column::ExpiresAt.gt(now))
        .one(txn)
        .await?
        .is_some())
}

/// Voids every outstanding password and sign-in token of an account (after a reset or
/// a password change); verification links stay valid.
pub async fn void_all(txn: &DatabaseTransaction, realm: Realm, account: AccountId, now: DateTime<Utc>) -> Result<()> {
    pr::Entity::update_many()
        .col_expr(pr::Column::UsedAt, Expr::value(now))
        .filter(sea_orm::Condition::any().add(in_realm(realm, Purpose::Password)).add(in_realm(realm, Purpose::SignIn)))
        .filter(pr::Column::AccountId.eq(account.0))
        .filter(pr::Column::UsedAt.is_null())
        .exec(txn)
        .await?;
    Ok(())
}

/// Whether the account has used a verification link: its email is proven.
pub async fn verified(txn: &DatabaseTransaction, realm: Realm, account: AccountId) -> Result<bool> {
    Ok(pr::Entity::find()
        .filter(in_realm(realm, Purpose::Verify))
        .filter(pr::Column::AccountId.eq(account.0))
        .filter(pr::Column::UsedAt.is_not_null())
        .one(txn)
        .await?
        .is_some())
}
