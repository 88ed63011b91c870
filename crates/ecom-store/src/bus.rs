//! The integration bus's tables: per-consumer deliveries of outbox events, dead letters,
//! consumers' receipts (processed-event records) and the activity counters.
//!
//! The relay works across stores in [`crate::Db::platform_txn`] (row-level security lets
//! it through because it declares platform scope); a store's own pages and consumers
//! use [`crate::Db::tenant_txn`]. Every function takes the transaction.

use crate::Result;
use crate::entities::outbox_event;
use crate::lease::Lease;
use chrono::{DateTime, Utc};
use ecom_core::TenantId;
use sea_orm::sea_query::{Expr, ExprTrait, LockType, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend,
    EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

pub use crate::entities::outbox_event::Model as OutboxRow;
pub use dead_letter::Model as DeadLetterRow;
pub use delivery::Model as DeliveryRow;

/// A delivery waiting for (another) attempt.
pub const PENDING: &str = "pending";
/// The consumer applied the event.
pub const DELIVERED: &str = "delivered";
/// Attempts ran out; a dead letter holds it until retried or discarded.
pub const DEAD: &str = "dead";

pub mod delivery {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "bus_deliveries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub event_id: Uuid,
        pub consumer: String,
        pub topic: String,
        pub status: String,
        pub attempts: i32,
        pub next_attempt_at: DateTimeUtc,
        pub claimed_by: String,
        pub claimed_until: Option<DateTimeUtc>,
        #[sea_orm(column_type = "Text")]
        pub last_error: String,
        pub delivered_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod dead_letter {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "bus_dead_letters")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub delivery_id: Uuid,
        pub event_id: Uuid,
        pub consumer: String,
        pub topic: String,
        #[sea_orm(column_type = "Text")]
        pub error: String,
        pub attempts: i32,
        #[sea_orm(column_type = "JsonBinary")]
        pub payload: Json,
        pub dead_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod receipt {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "consumer_receipts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub consumer: String,
        pub event_id: Uuid,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod activity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "store_activity")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub day: String,
        pub topic: String,
        pub count: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

// ---- fan-out -------------------------------------------------------------------------------

/// How many rows one multi-row insert or `IN (…)` list carries: far below the bind
/// limits of both backends (SQLite 32,766, PostgreSQL 65,535).
const CHUNK: usize = 500;

/// Writes deliveries the relay attempted (or meant to attempt) straight from a leased
/// event without a row — those that did not succeed at the first attempt — held by
/// their relay (`claimed_by`, `claimed_until` as given), so that its outcome is then
/// recorded on them like on any claimed delivery. A pair that already has a
/// delivery (the event's lease ran out and another relay wrote one) keeps it.
pub async fn add_held_deliveries(txn: &DatabaseTransaction, rows: &[&DeliveryRow]) -> Result<()> {
    for chunk in rows.chunks(CHUNK) {
        // Every column as the relay made it (`reset_all`: written, not left unchanged).
        let models = chunk.iter().map(|row| (*row).clone().into_active_model().reset_all());
        delivery::Entity::insert_many(models)
            .on_conflict(
                OnConflict::columns([delivery::Column::EventId, delivery::Column::Consumer]).do_nothing().to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Sets `published_at` on those of `event_ids` that have no delivery pending any more
/// (each was delivered or dead-lettered, or no consumer wanted the event); returns how
/// many it set. Take the events' locks first ([`lock_events`]) when deliveries of the
/// same event may finish in concurrent transactions.
pub async fn publish_done(txn: &DatabaseTransaction, event_ids: &[Uuid], now: DateTime<Utc>) -> Result<u64> {
    let mut published = 0;
    for chunk in event_ids.chunks(CHUNK) {
        let pending = Query::select()
            .expr(Expr::val(1))
            .from(delivery::Entity)
            .and_where(
                Expr::col((delivery::Entity, delivery::Column::EventId))
                    .equals((outbox_event::Entity, outbox_event::Column::Id)),
            )
            .and_where(Expr::col((delivery::Entity, delivery::Column::Status)).eq(PENDING))
            .to_owned();
        let res = outbox_event::Entity::update_many()
            .col_expr(outbox_event::Column::PublishedAt, Expr::value(now))
            .filter(outbox_event::Column::Id.is_in(chunk.iter().copied()))
            .filter(outbox_event::Column::PublishedAt.is_null())
            .filter(Expr::exists(pending).not())
            .exec(txn)
            .await?;
        published += res.rows_affected;
    }
    Ok(published)
}

/// [`publish_done`] for one event. True when it set `published_at`.
pub async fn publish_if_done(txn: &DatabaseTransaction, event_id: Uuid, now: DateTime<Utc>) -> Result<bool> {
    Ok(publish_done(txn, &[event_id], now).await? == 1)
}

/// Takes the events' row locks for the rest of the transaction, in id order (so two
/// relays never wait on each other in a circle), so that two relays finishing the last
/// deliveries of one event take turns: the second one's [`publish_done`] then sees the
/// first one's delivery done. Without it, each would see the other's delivery still
/// pending and neither would publish. (SQLite has one lock for the whole database:
/// a no-op update of one of the events makes the transaction a writer from here on,
/// and writers take turns.)
pub async fn lock_events(txn: &DatabaseTransaction, event_ids: &[Uuid]) -> Result<()> {
    let mut ids = event_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if txn.get_database_backend() != DbBackend::Postgres {
        if let Some(first) = ids.first() {
            outbox_event::Entity::update_many()
                .col_expr(outbox_event::Column::PublishedAt, Expr::col(outbox_event::Column::PublishedAt))
                .filter(outbox_event::Column::Id.eq(*first))
                .exec(txn)
                .await?;
        }
        return Ok(());
    }
    for chunk in ids.chunks(CHUNK) {
        outbox_event::Entity::find()
            .select_only()
            .column(outbox_event::Column::Id)
            .filter(outbox_event::Column::Id.is_in(chunk.iter().copied()))
            .order_by_asc(outbox_event::Column::Id)
            .lock(LockType::Update)
            .into_tuple::<Uuid>()
            .all(txn)
            .await?;
    }
    Ok(())
}

/// [`lock_events`] for one event.
pub async fn lock_event(txn: &DatabaseTransaction, event_id: Uuid) -> Result<()> {
    lock_events(txn, &[event_id]).await
}

/// When the oldest event not yet published was written (for the outbox lag).
pub async fn oldest_unpublished(txn: &DatabaseTransaction) -> Result<Option<DateTime<Utc>>> {
    Ok(outbox_event::Entity::find()
        .select_only()
        .column(outbox_event::Column::CreatedAt)
        .filter(outbox_event::Column::PublishedAt.is_null())
        .order_by_asc(outbox_event::Column::CreatedAt)
        .limit(1)
        .into_tuple::<DateTime<Utc>>()
        .one(txn)
        .await?)
}

pub async fn event(txn: &DatabaseTransaction, event_id: Uuid) -> Result<Option<OutboxRow>> {
    Ok(outbox_event::Entity::find_by_id(event_id).one(txn).await?)
}

/// Several events by id, in no particular order (missing ones are left out).
pub async fn events(txn: &DatabaseTransaction, event_ids: &[Uuid]) -> Result<Vec<OutboxRow>> {
    let mut rows = Vec::with_capacity(event_ids.len());
    for chunk in event_ids.chunks(CHUNK) {
        rows.extend(
            outbox_event::Entity::find().filter(outbox_event::Column::Id.is_in(chunk.iter().copied())).all(txn).await?,
        );
    }
    Ok(rows)
}

// ---- deliveries ----------------------------------------------------------------------------

/// The lease columns of `bus_deliveries`.
pub const LEASE: Lease<delivery::Entity> = Lease {
    id: delivery::Column::Id,
    status: delivery::Column::Status,
    pending: PENDING,
    next_attempt_at: delivery::Column::NextAttemptAt,
    claimed_by: delivery::Column::ClaimedBy,
    claimed_until: delivery::Column::ClaimedUntil,
};

/// Leases up to `limit` due deliveries to `consumers` to relay `me` until `until`,
/// soonest due first (see [`Lease::claim_where`]).
pub async fn claim_due(
    txn: &DatabaseTransaction,
    consumers: &[&str],
    me: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<DeliveryRow>> {
    let only = Condition::all().add(delivery::Column::Consumer.is_in(consumers.iter().copied()));
    LEASE.claim_where(txn, only, me, now, until, limit).await
}

/// Records successful attempts by the relay holding their leases; returns how many
/// it recorded (a delivery whose lease was lost is left to its new holder).
///
/// A delivery done at its first attempt is deleted: the consumer's receipt already
/// says the event was applied, and keeping it would grow the queue table and its
/// indexes by three rows an event until retention came by. One that needed retries is
/// kept as [`DELIVERED`], with its attempts and last error, until retention.
pub async fn delivered(txn: &DatabaseTransaction, ids: &[Uuid], me: &str, now: DateTime<Utc>) -> Result<u64> {
    let mut done = 0;
    for chunk in ids.chunks(CHUNK) {
        let res = delivery::Entity::delete_many()
            .filter(LEASE.held(me, chunk.iter().copied()))
            .filter(delivery::Column::Attempts.eq(0))
            .exec(txn)
            .await?;
        done += res.rows_affected;
        let res = delivery::Entity::update_many()
            .col_expr(delivery::Column::Status, Expr::value(DELIVERED))
            .col_expr(delivery::Column::DeliveredAt, Expr::value(now))
            .col_expr(delivery::Column::Attempts, Expr::col(delivery::Column::Attempts).add(1))
            .col_expr(delivery::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .filter(LEASE.held(me, chunk.iter().copied()))
            .exec(txn)
            .await?;
        done += res.rows_affected;
    }
    Ok(done)
}

/// Records a failed attempt and when to try again.
pub async fn failed(
    txn: &DatabaseTransaction,
    id: Uuid,
    me: &str,
    error: &str,
    next_attempt_at: DateTime<Utc>,
) -> Result<bool> {
    let res = delivery::Entity::update_many()
        .col_expr(delivery::Column::Attempts, Expr::col(delivery::Column::Attempts).add(1))
        .col_expr(delivery::Column::LastError, Expr::value(error))
        .col_expr(delivery::Column::NextAttemptAt, Expr::value(next_attempt_at))
        .col_expr(delivery::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(LEASE.held(me, [id]))
        .exec(txn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Moves a delivery whose attempts ran out to the dead letters.
pub async fn dead(
    txn: &DatabaseTransaction,
    row: &DeliveryRow,
    me: &str,
    error: &str,
    payload: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<bool> {
    let res = delivery::Entity::update_many()
        .col_expr(delivery::Column::Status, Expr::value(DEAD))
        .col_expr(delivery::Column::Attempts, Expr::col(delivery::Column::Attempts).add(1))
        .col_expr(delivery::Column::LastError, Expr::value(error))
        .col_expr(delivery::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(LEASE.held(me, [row.id]))
        .exec(txn)
        .await?;
    if res.rows_affected != 1 {
        return Ok(false);
    }
    dead_letter::Entity::insert(dead_letter::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(row.tenant_id),
        delivery_id: Set(row.id),
        event_id: Set(row.event_id),
        consumer: Set(row.consumer.clone()),
        topic: Set(row.topic.clone()),
        error: Set(error.to_owned()),
        attempts: Set(row.attempts + 1),
        payload: Set(payload),
        dead_at: Set(now),
    })
    .on_conflict(OnConflict::column(dead_letter::Column::DeliveryId).do_nothing().to_owned())
    .exec_without_returning(txn)
    .await?;
    Ok(true)
}

/// The deliveries of one event (tests, diagnostics).
pub async fn deliveries_of(txn: &DatabaseTransaction, event_id: Uuid) -> Result<Vec<DeliveryRow>> {
    Ok(delivery::Entity::find()
        .filter(delivery::Column::EventId.eq(event_id))
        .order_by_asc(delivery::Column::Consumer)
        .all(txn)
        .await?)
}

// ---- dead letters --------------------------------------------------------------------------

/// Dead letters, newest first: one store's, or (with `None`, in a platform
/// transaction) every store's.
pub async fn dead_letters(
    txn: &DatabaseTransaction,
    tenant: Option<TenantId>,
    limit: u64,
) -> Result<Vec<DeadLetterRow>> {
    let mut q = dead_letter::Entity::find();
    if let Some(t) = tenant {
        q = q.filter(dead_letter::Column::TenantId.eq(t.0));
    }
    Ok(q.order_by_desc(dead_letter::Column::DeadAt)
        .order_by_desc(dead_letter::Column::Id)
        .limit(limit)
        .all(txn)
        .await?)
}

pub async fn count_dead_letters(txn: &DatabaseTransaction, tenant: Option<TenantId>) -> Result<u64> {
    let mut q = dead_letter::Entity::find();
    if let Some(t) = tenant {
        q = q.filter(dead_letter::Column::TenantId.eq(t.0));
    }
    Ok(q.count(txn).await?)
}

fn dead_letter_filter(tenant: Option<TenantId>, id: Uuid) -> Condition {
    let mut c = Condition::all().add(dead_letter::Column::Id.eq(id));
    if let Some(t) = tenant {
        c = c.add(dead_letter::Column::TenantId.eq(t.0));
    }
    c
}

/// Puts a dead letter's delivery back in the queue with its attempts reset, and the
/// event back among the unpublished. False when there is no such dead letter (in that
/// store).
pub async fn requeue(
    txn: &DatabaseTransaction,
    tenant: Option<TenantId>,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool> {
    let Some(letter) = dead_letter::Entity::find().filter(dead_letter_filter(tenant, id)).one(txn).await? else {
        return Ok(false);
    };
    let gone = dead_letter::Entity::delete_many().filter(dead_letter_filter(tenant, id)).exec(txn).await?;
    if gone.rows_affected != 1 {
        return Ok(false);
    }
    delivery::Entity::update_many()
        .col_expr(delivery::Column::Status, Expr::value(PENDING))
        .col_expr(delivery::Column::Attempts, Expr::value(0))
        .col_expr(delivery::Column::NextAttemptAt, Expr::value(now))
        .col_expr(delivery::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(delivery::Column::Id.eq(letter.delivery_id))
        .filter(delivery::Column::TenantId.eq(letter.tenant_id))
        .exec(txn)
        .await?;
    outbox_event::Entity::update_many()
        .col_expr(outbox_event::Column::PublishedAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(outbox_event::Column::Id.eq(letter.event_id))
        .filter(outbox_event::Column::TenantId.eq(letter.tenant_id))
        .exec(txn)
        .await?;
    Ok(true)
}

/// Drops a dead letter for good (its delivery stays `dead`). False when there is no
/// such dead letter (in that store).
pub async fn discard(txn: &DatabaseTransaction, tenant: Option<TenantId>, id: Uuid) -> Result<bool> {
    let gone = dead_letter::Entity::delete_many().filter(dead_letter_filter(tenant, id)).exec(txn).await?;
    Ok(gone.rows_affected == 1)
}

// ---- consumers -----------------------------------------------------------------------------

/// Records that `consumer` applied `event_id`; false when it had already (a
/// redelivery). Call it in the transaction of the consumer's effect.
pub async fn first_receipt(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    consumer: &str,
    event_id: Uuid,
) -> Result<bool> {
    Ok(first_receipts(txn, tenant, consumer, &[event_id]).await?.contains(&event_id))
}

/// [`first_receipt`] for many events of one store, in one statement per few hundred:
/// the events among `events` this consumer had not applied, whose receipts are now in
/// the transaction.
pub async fn first_receipts(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    consumer: &str,
    events: &[Uuid],
) -> Result<std::collections::HashSet<Uuid>> {
    let now = Utc::now();
    let mut fresh = std::collections::HashSet::with_capacity(events.len());
    for chunk in events.chunks(CHUNK) {
        let mut insert = Query::insert();
        insert.into_table(receipt::Entity).columns([
            receipt::Column::Id,
            receipt::Column::TenantId,
            receipt::Column::Consumer,
            receipt::Column::EventId,
            receipt::Column::CreatedAt,
        ]);
        for &event in chunk {
            insert.values_panic([Uuid::now_v7().into(), tenant.0.into(), consumer.into(), event.into(), now.into()]);
        }
        insert
            .on_conflict(
                OnConflict::columns([receipt::Column::Consumer, receipt::Column::EventId]).do_nothing().to_owned(),
            )
            .returning_col(receipt::Column::EventId);
        for row in txn.query_all(&insert).await? {
            fresh.insert(row.try_get::<Uuid>("", "event_id")?);
        }
    }
    Ok(fresh)
}

/// How many events `consumer` has applied in one store.
pub async fn receipts(txn: &DatabaseTransaction, tenant: TenantId, consumer: &str) -> Result<u64> {
    Ok(receipt::Entity::find()
        .filter(receipt::Column::TenantId.eq(tenant.0))
        .filter(receipt::Column::Consumer.eq(consumer))
        .count(txn)
        .await?)
}

/// Adds `n` to a store's count of `topic` events on `day` (`YYYY-MM-DD`).
pub async fn add_activity(txn: &DatabaseTransaction, tenant: TenantId, day: &str, topic: &str, n: i64) -> Result<()> {
    activity::Entity::insert(activity::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0),
        day: Set(day.to_owned()),
        topic: Set(topic.to_owned()),
        count: Set(n),
    })
    .on_conflict(
        OnConflict::columns([activity::Column::TenantId, activity::Column::Day, activity::Column::Topic])
            .value(activity::Column::Count, Expr::col((activity::Entity, activity::Column::Count)).add(n))
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// A store's activity counters from `since_day` on: (day, topic, count), oldest first.
pub async fn activity(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    since_day: &str,
) -> Result<Vec<(String, String, i64)>> {
    Ok(activity::Entity::find()
        .select_only()
        .columns([activity::Column::Day, activity::Column::Topic, activity::Column::Count])
        .filter(activity::Column::TenantId.eq(tenant.0))
        .filter(activity::Column::Day.gte(since_day))
        .order_by_asc(activity::Column::Day)
        .order_by_asc(activity::Column::Topic)
        .into_tuple()
        .all(txn)
        .await?)
}

// ---- leased events --------------------------------------------------------------------------
//
// Both relays lease a batch of new events (`claimed_by`, `claimed_until` on the outbox
// row), hand them on, and then mark them fanned out: the embedded one to its consumers,
// writing a delivery only for what did not succeed at once; the RabbitMQ one to the
// broker, marking them after the confirm.

/// Outbox rows nobody holds a lease on.
fn unleased(now: DateTime<Utc>) -> Condition {
    Condition::any().add(outbox_event::Column::ClaimedUntil.is_null()).add(outbox_event::Column::ClaimedUntil.lt(now))
}

/// Leases up to `limit` events not yet fanned out (to the in-process consumers, or
/// published to the broker in RabbitMQ mode), oldest first, to
/// `token` until `until`, and returns those it got. The lease is a conditional update:
/// on PostgreSQL a concurrent claimer waits for the row locks and re-checks the
/// condition, so each event goes to one relay. With `after`, only events after that
/// (time, id) are taken (see the relays' cursor).
pub async fn claim_unpublished(
    txn: &DatabaseTransaction,
    token: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: u64,
    after: Option<(DateTime<Utc>, Uuid)>,
) -> Result<Vec<OutboxRow>> {
    let mut pick = outbox_event::Entity::find()
        .select_only()
        .column(outbox_event::Column::Id)
        .filter(outbox_event::Column::DispatchedAt.is_null())
        .filter(unleased(now));
    if let Some((at, id)) = after {
        // `>=` on the time gives the index scan its start; the id breaks ties.
        pick = pick
            .filter(outbox_event::Column::CreatedAt.gte(at))
            .filter(Condition::any().add(outbox_event::Column::CreatedAt.gt(at)).add(outbox_event::Column::Id.gt(id)));
    }
    let ids: Vec<Uuid> = pick
        .order_by_asc(outbox_event::Column::CreatedAt)
        .order_by_asc(outbox_event::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(txn)
        .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    outbox_event::Entity::update_many()
        .col_expr(outbox_event::Column::ClaimedBy, Expr::value(token))
        .col_expr(outbox_event::Column::ClaimedUntil, Expr::value(until))
        .filter(outbox_event::Column::Id.is_in(ids.clone()))
        .filter(outbox_event::Column::DispatchedAt.is_null())
        .filter(unleased(now))
        .exec(txn)
        .await?;
    Ok(outbox_event::Entity::find()
        .filter(outbox_event::Column::Id.is_in(ids))
        .filter(outbox_event::Column::ClaimedBy.eq(token))
        .filter(outbox_event::Column::DispatchedAt.is_null())
        .order_by_asc(outbox_event::Column::CreatedAt)
        .order_by_asc(outbox_event::Column::Id)
        .all(txn)
        .await?)
}

/// Marks events the broker confirmed as published (by the holder of their lease).
pub async fn mark_published(txn: &DatabaseTransaction, token: &str, ids: &[Uuid], now: DateTime<Utc>) -> Result<u64> {
    finish_leased(txn, token, ids, now, true).await
}

/// Marks leased events fanned out but not published: some of their deliveries are
/// still to succeed ([`publish_done`] publishes them once they have).
pub async fn mark_dispatched(txn: &DatabaseTransaction, token: &str, ids: &[Uuid], now: DateTime<Utc>) -> Result<u64> {
    finish_leased(txn, token, ids, now, false).await
}

async fn finish_leased(
    txn: &DatabaseTransaction,
    token: &str,
    ids: &[Uuid],
    now: DateTime<Utc>,
    published: bool,
) -> Result<u64> {
    let mut done = 0;
    for chunk in ids.chunks(CHUNK) {
        let mut update = outbox_event::Entity::update_many()
            .col_expr(outbox_event::Column::DispatchedAt, Expr::value(now))
            .col_expr(outbox_event::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None));
        if published {
            update = update.col_expr(outbox_event::Column::PublishedAt, Expr::value(now));
        }
        let res = update
            .filter(outbox_event::Column::Id.is_in(chunk.iter().copied()))
            .filter(outbox_event::Column::ClaimedBy.eq(token))
            .filter(outbox_event::Column::DispatchedAt.is_null())
            .exec(txn)
            .await?;
        done += res.rows_affected;
    }
    Ok(done)
}

/// Gives back the leases `token` holds on these events (their publish failed), so that
/// the next round, of this relay or another, takes them at once. By id: no index
/// leads with `claimed_by`, and a search by it walks every event not yet fanned out.
pub async fn release_unpublished(txn: &DatabaseTransaction, token: &str, ids: &[Uuid]) -> Result<()> {
    for chunk in ids.chunks(CHUNK) {
        outbox_event::Entity::update_many()
            .col_expr(outbox_event::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .filter(outbox_event::Column::Id.is_in(chunk.iter().copied()))
            .filter(outbox_event::Column::ClaimedBy.eq(token))
            .filter(outbox_event::Column::DispatchedAt.is_null())
            .exec(txn)
            .await?;
    }
    Ok(())
}

// ---- RabbitMQ mode -------------------------------------------------------------------------
//
// The relay publishes outbox events to the broker instead of fanning them out here; the
// broker's queues hold the per-consumer state. `bus_deliveries` rows then exist only for
// what the panels need: a dead-lettered delivery, and one retried from the panel.

/// RabbitMQ mode: a delivery retried from the panel that the relay has handed back to
/// the consumer's queue; the consumer marks it delivered, or dead again.
pub const QUEUED: &str = "queued";

/// The delivery of an event to a consumer whose attempts ran out in the broker, with
/// its last error: created, or updated when it was retried from the panel before. The
/// dead letter itself is written when the message reaches the dead-letter queue
/// ([`amqp_dead_letter`]).
#[allow(clippy::too_many_arguments)]
pub async fn amqp_failed_for_good(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    event_id: Uuid,
    consumer: &str,
    topic: &str,
    attempts: i32,
    error: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    delivery::Entity::insert(delivery::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0),
        event_id: Set(event_id),
        consumer: Set(consumer.to_owned()),
        topic: Set(topic.to_owned()),
        status: Set(DEAD.into()),
        attempts: Set(attempts),
        next_attempt_at: Set(now),
        claimed_by: Set(String::new()),
        claimed_until: Set(None),
        last_error: Set(error.to_owned()),
        delivered_at: Set(None),
        created_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([delivery::Column::EventId, delivery::Column::Consumer])
            .update_columns([
                delivery::Column::Status,
                delivery::Column::Attempts,
                delivery::Column::LastError,
                delivery::Column::ClaimedUntil,
            ])
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Records a message that reached a consumer's dead-letter queue as a dead letter (once),
/// from its delivery row; a message the broker dead-lettered by itself (no row yet)
/// gets one with `fallback_error`. True when a new dead letter was written.
#[allow(clippy::too_many_arguments)]
pub async fn amqp_dead_letter(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    event_id: Uuid,
    consumer: &str,
    topic: &str,
    fallback_error: &str,
    payload: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<bool> {
    let find = || {
        delivery::Entity::find()
            .filter(delivery::Column::TenantId.eq(tenant.0))
            .filter(delivery::Column::EventId.eq(event_id))
            .filter(delivery::Column::Consumer.eq(consumer))
    };
    let row = match find().one(txn).await? {
        Some(row) if row.status == DEAD => row,
        // Delivered after all (a stale copy) or handed back and not yet failed: no
        // dead letter.
        Some(_) => return Ok(false),
        None => {
            amqp_failed_for_good(txn, tenant, event_id, consumer, topic, 0, fallback_error, now).await?;
            let Some(row) = find().one(txn).await? else { return Ok(false) };
            row
        }
    };
    let res = dead_letter::Entity::insert(dead_letter::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(row.tenant_id),
        delivery_id: Set(row.id),
        event_id: Set(row.event_id),
        consumer: Set(row.consumer.clone()),
        topic: Set(row.topic.clone()),
        error: Set(row.last_error.clone()),
        attempts: Set(row.attempts),
        payload: Set(payload),
        dead_at: Set(now),
    })
    .on_conflict(OnConflict::column(dead_letter::Column::DeliveryId).do_nothing().to_owned())
    .exec_without_returning(txn)
    .await?;
    Ok(res == 1)
}

/// A delivery the relay handed back to the broker (after a retry from the panel).
pub async fn mark_queued(txn: &DatabaseTransaction, id: Uuid, me: &str) -> Result<bool> {
    let res = delivery::Entity::update_many()
        .col_expr(delivery::Column::Status, Expr::value(QUEUED))
        .col_expr(delivery::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(LEASE.held(me, [id]))
        .exec(txn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// A consumer applied an event that was retried from the panel: its delivery row, if
/// it has one, says so.
pub async fn amqp_delivered(
    txn: &DatabaseTransaction,
    event_id: Uuid,
    consumer: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    delivery::Entity::update_many()
        .col_expr(delivery::Column::Status, Expr::value(DELIVERED))
        .col_expr(delivery::Column::DeliveredAt, Expr::value(now))
        .col_expr(delivery::Column::Attempts, Expr::col(delivery::Column::Attempts).add(1))
        .filter(delivery::Column::EventId.eq(event_id))
        .filter(delivery::Column::Consumer.eq(consumer))
        .filter(delivery::Column::Status.is_in([QUEUED, PENDING]))
        .exec(txn)
        .await?;
    Ok(())
}
