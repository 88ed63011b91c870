//! What the SMS, WhatsApp and Web Push channels keep (m0015): push subscriptions of
//! customers and staff, customers' phone numbers with their one-time verification
//! codes, and platform-level keys (the generated VAPID key pair).

use crate::Result;
use chrono::{DateTime, Utc};
use ecom_core::TenantId;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

pub use phone_code::Model as PhoneCodeRow;
pub use push_subscription::Model as PushSubscriptionRow;

/// Push subscription owners: a store's customer or one of its staff.
pub const OWNER_CUSTOMER: &str = "customer";
pub const OWNER_STAFF: &str = "staff";

pub mod push_subscription {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "push_subscriptions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        /// [`super::OWNER_CUSTOMER`] or [`super::OWNER_STAFF`].
        pub owner_kind: String,
        pub account_id: Uuid,
        pub endpoint: String,
        /// The browser's P-256 public key, base64url.
        pub p256dh: String,
        /// The 16-byte authentication secret, base64url.
        pub auth: String,
        pub created_at: DateTimeUtc,
        pub last_used_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod phone_code {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "phone_codes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub customer_id: Uuid,
        pub phone: String,
        pub code_hash: String,
        pub attempts: i32,
        pub expires_at: DateTimeUtc,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The phone columns of `customers` (the rest of the row is [`crate::accounts`]'s).
pub mod customer_phone {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "customers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub phone: Option<String>,
        pub phone_verified_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod platform_key {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "platform_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub value: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

// ---- push subscriptions ----

/// A subscription to save.
#[derive(Debug, Clone)]
pub struct NewPushSubscription<'a> {
    pub owner_kind: &'a str,
    pub account_id: Uuid,
    pub endpoint: &'a str,
    pub p256dh: &'a str,
    pub auth: &'a str,
}

/// Saves a subscription; the same endpoint saved again (a re-subscribe, or another
/// account signing in on that browser) replaces the earlier row's owner and keys.
pub async fn save_push_subscription(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    new: &NewPushSubscription<'_>,
) -> Result<()> {
    use push_subscription::Column as C;
    push_subscription::Entity::insert(push_subscription::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0),
        owner_kind: Set(new.owner_kind.to_owned()),
        account_id: Set(new.account_id),
        endpoint: Set(new.endpoint.to_owned()),
        p256dh: Set(new.p256dh.to_owned()),
        auth: Set(new.auth.to_owned()),
        created_at: Set(Utc::now()),
        last_used_at: Set(None),
    })
    .on_conflict(
        OnConflict::columns([C::TenantId, C::Endpoint])
            .update_columns([C::OwnerKind, C::AccountId, C::P256dh, C::Auth])
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Removes an account's subscription by endpoint; false when it had none there.
pub async fn delete_push_subscription(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    owner_kind: &str,
    account_id: Uuid,
    endpoint: &str,
) -> Result<bool> {
    use push_subscription::Column as C;
    let res = push_subscription::Entity::delete_many()
        .filter(C::TenantId.eq(tenant.0))
        .filter(C::OwnerKind.eq(owner_kind))
        .filter(C::AccountId.eq(account_id))
        .filter(C::Endpoint.eq(endpoint))
        .exec(txn)
        .await?;
    Ok(res.rows_affected > 0)
}

/// The subscriptions of some accounts of one kind (one query for all of them).
pub async fn push_subscriptions_of(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    owner_kind: &str,
    accounts: &[Uuid],
) -> Result<Vec<PushSubscriptionRow>> {
    use push_subscription::Column as C;
    if accounts.is_empty() {
        return Ok(Vec::new());
    }
    Ok(push_subscription::Entity::find()
        .filter(C::TenantId.eq(tenant.0))
        .filter(C::OwnerKind.eq(owner_kind))
        .filter(C::AccountId.is_in(accounts.iter().copied()))
        .order_by_asc(C::Id)
        .all(txn)
        .await?)
}

/// Every staff subscription of a store.
pub async fn staff_push_subscriptions(txn: &DatabaseTransaction, tenant: TenantId) -> Result<Vec<PushSubscriptionRow>> {
    use push_subscription::Column as C;
    Ok(push_subscription::Entity::find()
        .filter(C::TenantId.eq(tenant.0))
        .filter(C::OwnerKind.eq(OWNER_STAFF))
        .order_by_asc(C::Id)
        .all(txn)
        .await?)
}

/// One subscription by id, in any store (the dispatcher, in platform scope).
pub async fn push_subscription_by_id(txn: &DatabaseTransaction, id: Uuid) -> Result<Option<PushSubscriptionRow>> {
    Ok(push_subscription::Entity::find_by_id(id).one(txn).await?)
}

/// The push service said the subscription is gone (404/410): forget it.
pub async fn remove_push_subscription(txn: &DatabaseTransaction, id: Uuid) -> Result<bool> {
    Ok(push_subscription::Entity::delete_by_id(id).exec(txn).await?.rows_affected > 0)
}

pub async fn touch_push_subscription(txn: &DatabaseTransaction, id: Uuid, at: DateTime<Utc>) -> Result<()> {
    push_subscription::Entity::update_many()
        .col_expr(push_subscription::Column::LastUsedAt, Expr::value(at))
        .filter(push_subscription::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}

// ---- phones ----

/// A customer's phone number and when it was verified.
pub async fn customer_phone(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    customer: Uuid,
) -> Result<Option<(Option<String>, Option<DateTime<Utc>>)>> {
    use customer_phone::Column as C;
    Ok(customer_phone::Entity::find()
        .filter(C::TenantId.eq(tenant.0))
        .filter(C::Id.eq(customer))
        .one(txn)
        .await?
        .map(|r| (r.phone, r.phone_verified_at)))
}

/// Sets a customer's phone (`verified_at` None: not verified yet).
pub async fn set_customer_phone(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    customer: Uuid,
    phone: Option<&str>,
    verified_at: Option<DateTime<Utc>>,
) -> Result<bool> {
    use customer_phone::Column as C;
    let res = customer_phone::Entity::update_many()
        .col_expr(C::Phone, Expr::value(phone.map(str::to_owned)))
        .col_expr(C::PhoneVerifiedAt, Expr::value(verified_at))
        .filter(C::TenantId.eq(tenant.0))
        .filter(C::Id.eq(customer))
        .exec(txn)
        .await?;
    Ok(res.rows_affected > 0)
}

/// A customer's verified phone number, if they have one: the only number SMS and
/// WhatsApp messages may go to.
pub async fn verified_phone(txn: &DatabaseTransaction, tenant: TenantId, customer: Uuid) -> Result<Option<String>> {
    Ok(match customer_phone(txn, tenant, customer).await? {
        Some((Some(phone), Some(_))) => Some(phone),
        _ => None,
    })
}

/// Stores a new code, replacing the customer's earlier ones.
pub async fn replace_phone_code(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    customer: Uuid,
    phone: &str,
    code_hash: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<Uuid> {
    use phone_code::Column as C;
    phone_code::Entity::delete_many()
        .filter(C::TenantId.eq(tenant.0))
        .filter(C::CustomerId.eq(customer))
        .exec(txn)
        .await?;
    let id = Uuid::now_v7();
    phone_code::Entity::insert(phone_code::ActiveModel {
        id: Set(id),
        tenant_id: Set(tenant.0),
        customer_id: Set(customer),
        phone: Set(phone.to_owned()),
        code_hash: Set(code_hash.to_owned()),
        attempts: Set(0),
        expires_at: Set(expires_at),
        created_at: Set(now),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(id)
}

/// The customer's current code, if any.
pub async fn current_phone_code(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    customer: Uuid,
) -> Result<Option<PhoneCodeRow>> {
    use phone_code::Column as C;
    Ok(phone_code::Entity::find()
        .filter(C::TenantId.eq(tenant.0))
        .filter(C::CustomerId.eq(customer))
        .order_by_desc(C::CreatedAt)
        .one(txn)
        .await?)
}

/// Verification codes texted to `phone` for a store since `since` (the queue keeps
/// them after the code itself is gone), for the resend limit.
pub async fn phone_codes_sent_since(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    phone: &str,
    template: &str,
    since: DateTime<Utc>,
) -> Result<u64> {
    use crate::notifications::notification::Column as N;
    Ok(crate::notifications::notification::Entity::find()
        .filter(N::TenantId.eq(tenant.0))
        .filter(N::Template.eq(template))
        .filter(N::Recipient.eq(phone))
        .filter(N::CreatedAt.gte(since))
        .count(txn)
        .await?)
}

/// Counts a wrong try; returns the tries made so far.
pub async fn count_phone_code_attempt(txn: &DatabaseTransaction, tenant: TenantId, id: Uuid) -> Result<i32> {
    use phone_code::Column as C;
    phone_code::Entity::update_many()
        .col_expr(C::Attempts, Expr::col(C::Attempts).add(1))
        .filter(C::TenantId.eq(tenant.0))
        .filter(C::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(phone_code::Entity::find_by_id(id).select_only().column(C::Attempts).into_tuple().one(txn).await?.unwrap_or(0))
}

pub async fn delete_phone_codes(txn: &DatabaseTransaction, tenant: TenantId, customer: Uuid) -> Result<()> {
    use phone_code::Column as C;
    phone_code::Entity::delete_many()
        .filter(C::TenantId.eq(tenant.0))
        .filter(C::CustomerId.eq(customer))
        .exec(txn)
        .await?;
    Ok(())
}

// ---- platform keys ----

/// A platform key by name.
pub async fn platform_key(txn: &DatabaseTransaction, name: &str) -> Result<Option<String>> {
    Ok(platform_key::Entity::find_by_id(name.to_owned()).one(txn).await?.map(|r| r.value))
}

/// Overwrites the key kept under `name` (re-sealing a stored key).
pub async fn replace_platform_key(txn: &DatabaseTransaction, name: &str, value: &str) -> Result<()> {
    platform_key::Entity::update_many()
        .col_expr(platform_key::Column::Value, Expr::value(value))
        .filter(platform_key::Column::Name.eq(name))
        .exec(txn)
        .await?;
    Ok(())
}

/// Stores `value` under `name` unless a key is there already (another node was
/// first), and returns the key that is kept.
pub async fn platform_key_or_insert(txn: &DatabaseTransaction, name: &str, value: &str) -> Result<String> {
    platform_key::Entity::insert(platform_key::ActiveModel {
        name: Set(name.to_owned()),
        value: Set(value.to_owned()),
        created_at: Set(Utc::now()),
    })
    .on_conflict(OnConflict::column(platform_key::Column::Name).do_nothing().to_owned())
    .exec_without_returning(txn)
    .await?;
    Ok(platform_key(txn, name).await?.unwrap_or_else(|| value.to_owned()))
}
