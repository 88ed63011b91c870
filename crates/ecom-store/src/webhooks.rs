//! Webhooks out: merchants' subscriptions, one delivery per subscription and event,
//! and the log of every attempt.
//!
//! A store's pages and the fan-out consumer work in [`crate::Db::tenant_txn`]; the
//! sender finds due deliveries across stores in [`crate::Db::platform_txn`] and
//! leases each one by a conditional update (like the bus relay), so several nodes can
//! send at once without sending one delivery twice at the same time.

use crate::Result;
use crate::lease::Lease;
use chrono::{DateTime, Utc};
use ecom_core::TenantId;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

pub use attempt::Model as AttemptRow;
pub use delivery::Model as DeliveryRow;
pub use subscription::Model as SubscriptionRow;

/// A subscription that receives deliveries.
pub const ACTIVE: &str = "active";
/// A subscription turned off, by the merchant or after failing for too long.
pub const DISABLED: &str = "disabled";

/// A delivery waiting for (another) attempt.
pub const PENDING: &str = "pending";
/// The receiver answered 2xx.
pub const DELIVERED: &str = "delivered";
/// Attempts ran out or the subscription was disabled; a merchant may redeliver it.
pub const FAILED: &str = "failed";

pub mod subscription {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_subscriptions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub callback_url: String,
        /// Topic names, comma-separated.
        pub topics: String,
        /// The signing secret, sealed (see `ecom_services::webhooks`).
        pub secret_sealed: String,
        pub status: String,
        pub failing_since: Option<DateTimeUtc>,
        pub disabled_reason: String,
        pub last_attempt_at: Option<DateTimeUtc>,
        pub last_result: String,
        pub created_by: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod delivery {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_deliveries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub subscription_id: Uuid,
        pub event_id: Uuid,
        pub topic: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub status: String,
        pub attempts: i32,
        pub next_attempt_at: DateTimeUtc,
        pub claimed_by: String,
        pub claimed_until: Option<DateTimeUtc>,
        pub last_status_code: Option<i32>,
        #[sea_orm(column_type = "Text")]
        pub last_error: String,
        pub delivered_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod attempt {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_attempts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub delivery_id: Uuid,
        pub at: DateTimeUtc,
        pub status_code: Option<i32>,
        #[sea_orm(column_type = "Text")]
        pub error: String,
        pub latency_ms: i32,
        #[sea_orm(column_type = "Text")]
        pub response_excerpt: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

// ---- subscriptions -------------------------------------------------------------------------

/// What a new subscription is made of (already checked by the service).
pub struct NewSubscription<'a> {
    pub callback_url: &'a str,
    pub topics: &'a str,
    pub secret_sealed: &'a str,
    pub created_by: &'a str,
}

pub async fn create_subscription(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    new: &NewSubscription<'_>,
    now: DateTime<Utc>,
) -> Result<SubscriptionRow> {
    let row = SubscriptionRow {
        id: Uuid::now_v7(),
        tenant_id: tenant.0,
        callback_url: new.callback_url.to_owned(),
        topics: new.topics.to_owned(),
        secret_sealed: new.secret_sealed.to_owned(),
        status: ACTIVE.into(),
        failing_since: None,
        disabled_reason: String::new(),
        last_attempt_at: None,
        last_result: String::new(),
        created_by: new.created_by.to_owned(),
        created_at: now,
    };
    subscription::Entity::insert(subscription::ActiveModel::from(row.clone())).exec_without_returning(txn).await?;
    Ok(row)
}

/// A store's subscriptions, oldest first, after `after` (a subscription id) when
/// given, at most `limit`.
pub async fn subscriptions(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<SubscriptionRow>> {
    let mut q = subscription::Entity::find().filter(subscription::Column::TenantId.eq(tenant.0));
    if let Some(after) = after {
        q = q.filter(subscription::Column::Id.gt(after));
    }
    Ok(q.order_by_asc(subscription::Column::Id).limit(limit).all(txn).await?)
}

pub async fn count_subscriptions(txn: &DatabaseTransaction, tenant: TenantId) -> Result<u64> {
    Ok(subscription::Entity::find().filter(subscription::Column::TenantId.eq(tenant.0)).count(txn).await?)
}

pub async fn subscription(txn: &DatabaseTransaction, tenant: TenantId, id: Uuid) -> Result<Option<SubscriptionRow>> {
    Ok(subscription::Entity::find()
        .filter(subscription::Column::TenantId.eq(tenant.0))
        .filter(subscription::Column::Id.eq(id))
        .one(txn)
        .await?)
}

/// The store's active subscriptions (the fan-out filters them by topic).
pub async fn active_subscriptions(txn: &DatabaseTransaction, tenant: TenantId) -> Result<Vec<SubscriptionRow>> {
    Ok(subscription::Entity::find()
        .filter(subscription::Column::TenantId.eq(tenant.0))
        .filter(subscription::Column::Status.eq(ACTIVE))
        .all(txn)
        .await?)
}

/// Changes the URL and/or topics.
pub async fn update_subscription(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    id: Uuid,
    callback_url: Option<&str>,
    topics: Option<&str>,
) -> Result<bool> {
    let mut q = subscription::Entity::update_many();
    if let Some(url) = callback_url {
        q = q.col_expr(subscription::Column::CallbackUrl, Expr::value(url));
    }
    if let Some(topics) = topics {
        q = q.col_expr(subscription::Column::Topics, Expr::value(topics));
    }
    let res =
        q.filter(subscription::Column::TenantId.eq(tenant.0)).filter(subscription::Column::Id.eq(id)).exec(txn).await?;
    Ok(res.rows_affected == 1)
}

/// Turns a subscription on (its failure clock starts again) or off with a reason.
pub async fn set_status(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    id: Uuid,
    active: bool,
    reason: &str,
) -> Result<bool> {
    let res = subscription::Entity::update_many()
        .col_expr(subscription::Column::Status, Expr::value(if active { ACTIVE } else { DISABLED }))
        .col_expr(subscription::Column::DisabledReason, Expr::value(if active { "" } else { reason }))
        .col_expr(subscription::Column::FailingSince, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(subscription::Column::TenantId.eq(tenant.0))
        .filter(subscription::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Deletes a subscription with its deliveries and their attempts.
pub async fn delete_subscription(txn: &DatabaseTransaction, tenant: TenantId, id: Uuid) -> Result<bool> {
    let deliveries = delivery::Entity::find()
        .select_only()
        .column(delivery::Column::Id)
        .filter(delivery::Column::TenantId.eq(tenant.0))
        .filter(delivery::Column::SubscriptionId.eq(id))
        .into_tuple::<Uuid>()
        .all(txn)
        .await?;
    for chunk in deliveries.chunks(500) {
        attempt::Entity::delete_many()
            .filter(attempt::Column::TenantId.eq(tenant.0))
            .filter(attempt::Column::DeliveryId.is_in(chunk.to_vec()))
            .exec(txn)
            .await?;
    }
    delivery::Entity::delete_many()
        .filter(delivery::Column::TenantId.eq(tenant.0))
        .filter(delivery::Column::SubscriptionId.eq(id))
        .exec(txn)
        .await?;
    let res = subscription::Entity::delete_many()
        .filter(subscription::Column::TenantId.eq(tenant.0))
        .filter(subscription::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Notes the result of the latest attempt on the subscription, and starts (failure) or
/// stops (success) its failure clock.
pub async fn note_result(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    id: Uuid,
    ok: bool,
    result: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let base = || {
        subscription::Entity::update_many()
            .col_expr(subscription::Column::LastAttemptAt, Expr::value(now))
            .col_expr(subscription::Column::LastResult, Expr::value(result))
            .filter(subscription::Column::TenantId.eq(tenant.0))
            .filter(subscription::Column::Id.eq(id))
    };
    if ok {
        base()
            .col_expr(subscription::Column::FailingSince, Expr::value(Option::<DateTime<Utc>>::None))
            .exec(txn)
            .await?;
    } else {
        base().exec(txn).await?;
        // Only the first failure of a run sets the clock.
        subscription::Entity::update_many()
            .col_expr(subscription::Column::FailingSince, Expr::value(now))
            .filter(subscription::Column::TenantId.eq(tenant.0))
            .filter(subscription::Column::Id.eq(id))
            .filter(subscription::Column::FailingSince.is_null())
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// Disables an active subscription that has been failing since `cutoff` or earlier,
/// and stops its pending deliveries. True only for the call that disabled it (so
/// the owner is told once).
pub async fn disable_if_failing_since(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    id: Uuid,
    cutoff: DateTime<Utc>,
    reason: &str,
) -> Result<bool> {
    let res = subscription::Entity::update_many()
        .col_expr(subscription::Column::Status, Expr::value(DISABLED))
        .col_expr(subscription::Column::DisabledReason, Expr::value(reason))
        .filter(subscription::Column::TenantId.eq(tenant.0))
        .filter(subscription::Column::Id.eq(id))
        .filter(subscription::Column::Status.eq(ACTIVE))
        .filter(subscription::Column::FailingSince.lte(cutoff))
        .exec(txn)
        .await?;
    if res.rows_affected != 1 {
        return Ok(false);
    }
    stop_pending(txn, tenant, id, reason).await?;
    Ok(true)
}

/// Marks the subscription's pending deliveries failed (it was disabled).
pub async fn stop_pending(txn: &DatabaseTransaction, tenant: TenantId, id: Uuid, reason: &str) -> Result<u64> {
    let res = delivery::Entity::update_many()
        .col_expr(delivery::Column::Status, Expr::value(FAILED))
        .col_expr(delivery::Column::LastError, Expr::value(reason))
        .col_expr(delivery::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(delivery::Column::TenantId.eq(tenant.0))
        .filter(delivery::Column::SubscriptionId.eq(id))
        .filter(delivery::Column::Status.eq(PENDING))
        .exec(txn)
        .await?;
    Ok(res.rows_affected)
}

// ---- deliveries ----------------------------------------------------------------------------

/// Creates the pending delivery of an event to a subscription, once: a second call
/// for the same pair changes nothing.
pub async fn add_delivery(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    subscription_id: Uuid,
    event_id: Uuid,
    topic: &str,
    body: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    delivery::Entity::insert(delivery::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0),
        subscription_id: Set(subscription_id),
        event_id: Set(event_id),
        topic: Set(topic.to_owned()),
        body: Set(body.to_owned()),
        status: Set(PENDING.into()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        claimed_by: Set(String::new()),
        claimed_until: Set(None),
        last_status_code: Set(None),
        last_error: Set(String::new()),
        delivered_at: Set(None),
        created_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([delivery::Column::SubscriptionId, delivery::Column::EventId]).do_nothing().to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// The lease columns of `webhook_deliveries`.
pub const LEASE: Lease<delivery::Entity> = Lease {
    id: delivery::Column::Id,
    status: delivery::Column::Status,
    pending: PENDING,
    next_attempt_at: delivery::Column::NextAttemptAt,
    claimed_by: delivery::Column::ClaimedBy,
    claimed_until: delivery::Column::ClaimedUntil,
};

/// One attempt, for the log.
pub struct NewAttempt<'a> {
    pub status_code: Option<i32>,
    pub error: &'a str,
    pub latency_ms: i32,
    pub response_excerpt: &'a str,
}

/// Logs an attempt and records its outcome on the delivery, if `me` still holds the
/// lease: `next` is when to try again after a failure (`None`: give up, or done when
/// `ok`). False when the lease was lost (nothing is written then).
#[allow(clippy::too_many_arguments)]
pub async fn record_attempt(
    txn: &DatabaseTransaction,
    row: &DeliveryRow,
    me: &str,
    attempt: &NewAttempt<'_>,
    ok: bool,
    next: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let status = if ok {
        DELIVERED
    } else if next.is_some() {
        PENDING
    } else {
        FAILED
    };
    let mut q = delivery::Entity::update_many()
        .col_expr(delivery::Column::Status, Expr::value(status))
        .col_expr(delivery::Column::Attempts, Expr::col(delivery::Column::Attempts).add(1))
        .col_expr(delivery::Column::LastStatusCode, Expr::value(attempt.status_code))
        .col_expr(delivery::Column::LastError, Expr::value(attempt.error))
        .col_expr(delivery::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None));
    if ok {
        q = q.col_expr(delivery::Column::DeliveredAt, Expr::value(now));
    }
    if let Some(next) = next {
        q = q.col_expr(delivery::Column::NextAttemptAt, Expr::value(next));
    }
    let res = q.filter(delivery::Column::TenantId.eq(row.tenant_id)).filter(LEASE.held(me, [row.id])).exec(txn).await?;
    if res.rows_affected != 1 {
        return Ok(false);
    }
    attempt::Entity::insert(attempt::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(row.tenant_id),
        delivery_id: Set(row.id),
        at: Set(now),
        status_code: Set(attempt.status_code),
        error: Set(attempt.error.to_owned()),
        latency_ms: Set(attempt.latency_ms),
        response_excerpt: Set(attempt.response_excerpt.to_owned()),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(true)
}

/// A subscription's deliveries, newest first.
pub async fn deliveries(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    subscription_id: Uuid,
    limit: u64,
) -> Result<Vec<DeliveryRow>> {
    Ok(delivery::Entity::find()
        .filter(delivery::Column::TenantId.eq(tenant.0))
        .filter(delivery::Column::SubscriptionId.eq(subscription_id))
        .order_by_desc(delivery::Column::CreatedAt)
        .order_by_desc(delivery::Column::Id)
        .limit(limit)
        .all(txn)
        .await?)
}

/// The attempts of some deliveries, oldest first.
pub async fn attempts(txn: &DatabaseTransaction, tenant: TenantId, delivery_ids: &[Uuid]) -> Result<Vec<AttemptRow>> {
    Ok(attempt::Entity::find()
        .filter(attempt::Column::TenantId.eq(tenant.0))
        .filter(attempt::Column::DeliveryId.is_in(delivery_ids.to_vec()))
        .order_by_asc(attempt::Column::At)
        .order_by_asc(attempt::Column::Id)
        .all(txn)
        .await?)
}

/// Puts a delivery of the store back in the queue for an attempt now (its attempt
/// count goes on). False when there is no such delivery in the store, or it is being
/// attempted right now.
pub async fn redeliver(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    subscription_id: Uuid,
    delivery_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool> {
    let res = delivery::Entity::update_many()
        .col_expr(delivery::Column::Status, Expr::value(PENDING))
        .col_expr(delivery::Column::NextAttemptAt, Expr::value(now))
        .col_expr(delivery::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(delivery::Column::TenantId.eq(tenant.0))
        .filter(delivery::Column::SubscriptionId.eq(subscription_id))
        .filter(delivery::Column::Id.eq(delivery_id))
        .filter(LEASE.free(now))
        .exec(txn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Every delivery of a store (tests, diagnostics).
pub async fn all_deliveries(txn: &DatabaseTransaction, tenant: TenantId) -> Result<Vec<DeliveryRow>> {
    Ok(delivery::Entity::find()
        .filter(delivery::Column::TenantId.eq(tenant.0))
        .order_by_asc(delivery::Column::CreatedAt)
        .order_by_asc(delivery::Column::Id)
        .all(txn)
        .await?)
}

/// The store's slug and name, read in the caller's transaction (the fan-out holds one,
/// and on SQLite there is only one connection).
pub async fn store_names(txn: &DatabaseTransaction, tenant: TenantId) -> Result<Option<(String, String)>> {
    use crate::entities::tenant;
    Ok(tenant::Entity::find_by_id(tenant.0).one(txn).await?.map(|t| (t.slug, t.name)))
}

/// Whether the store has this delivery on this subscription.
pub async fn delivery_exists(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    subscription_id: Uuid,
    delivery_id: Uuid,
) -> Result<bool> {
    Ok(delivery::Entity::find()
        .filter(delivery::Column::TenantId.eq(tenant.0))
        .filter(delivery::Column::SubscriptionId.eq(subscription_id))
        .filter(delivery::Column::Id.eq(delivery_id))
        .count(txn)
        .await?
        == 1)
}
