//! The notification queue and delivery log (`notifications`): one row per message to one
//! recipient on one channel, written in the transaction of the change it tells about,
//! then leased, sent and recorded by a dispatcher (`ecom_notify::Dispatcher`). What a
//! message says (text, HTML, headers) is in `notification_bodies` under the same id
//! ([`body`]), written once: the queue row stays small for the updates it gets.
//!
//! The dispatcher works across stores in [`crate::Db::platform_txn`]; a store's log page
//! reads its own rows in [`crate::Db::tenant_txn`]. Rows of platform mail have no
//! tenant and are visible in platform scope only.

use crate::Result;
use crate::lease::Lease;
use chrono::{DateTime, Utc};
use ecom_core::TenantId;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, DatabaseTransaction, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

pub use notification::Model as NotificationRow;

/// Waiting for its first or next attempt.
pub const PENDING: &str = "pending";
/// The channel's provider accepted it (`provider_id` says under which id).
pub const SENT: &str = "sent";
/// Attempts ran out, or the provider refused it for good; shown in the panels' logs
/// and counted in `ecom_notifications_failed` until retried.
pub const FAILED: &str = "failed";

pub mod notification {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
    #[sea_orm(table_name = "notifications")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Option<Uuid>,
        pub channel: String,
        pub recipient: String,
        pub template: String,
        pub event_id: Option<Uuid>,
        pub subject: String,
        pub status: String,
        pub attempts: i32,
        pub next_attempt_at: DateTimeUtc,
        pub claimed_by: String,
        pub claimed_until: Option<DateTimeUtc>,
        pub provider_id: String,
        #[sea_orm(column_type = "Text")]
        pub last_error: String,
        pub sent_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        /// Where an in-app item points (a path on the store's host); empty for none.
        pub link: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// What a message says, apart from its subject: written once with the message, under
/// its id, and never updated, so the queue row's status changes stay small. Deleted
/// with its message.
pub mod body {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
    #[sea_orm(table_name = "notification_bodies")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Option<Uuid>,
        #[sea_orm(column_type = "Text")]
        pub body_text: String,
        #[sea_orm(column_type = "Text")]
        pub body_html: String,
        /// Extra mail headers as a JSON list of `[name, value]` pairs; empty for none.
        #[sea_orm(column_type = "Text")]
        pub headers: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use body::Model as BodyRow;

use notification::{Column as C, Entity as N};

/// A message to queue, already rendered.
#[derive(Debug, Clone, Default)]
pub struct NewNotification<'a> {
    /// The store it is sent for; `None` for platform mail.
    pub tenant: Option<TenantId>,
    pub channel: &'a str,
    pub recipient: &'a str,
    /// Which template made it (`plain` for text given by the caller).
    pub template: &'a str,
    /// The bus event that caused it, if any.
    pub event_id: Option<Uuid>,
    pub subject: &'a str,
    pub body_text: &'a str,
    /// Empty for text-only messages.
    pub body_html: &'a str,
    /// Extra mail headers (`List-Unsubscribe` on marketing mail).
    pub headers: Vec<(String, String)>,
    /// Where an in-app item points.
    pub link: &'a str,
}

/// Queues a message, due at once; returns its id. Call it in the transaction of the
/// change that causes it, so the message exists exactly when the change was committed.
pub async fn enqueue(txn: &DatabaseTransaction, new: NewNotification<'_>) -> Result<Uuid> {
    let mut batch = Batch::default();
    let id = batch.push(new);
    batch.write(txn).await?;
    Ok(id)
}

/// Messages collected to be queued together: [`Batch::write`] inserts them in one
/// statement per few hundred, so a consumer that turns many events into many messages
/// does not pay a round trip for each.
#[derive(Debug, Default)]
pub struct Batch {
    rows: Vec<notification::ActiveModel>,
    bodies: Vec<body::ActiveModel>,
}

impl Batch {
    /// Adds a message, due at once; returns its id.
    pub fn push(&mut self, new: NewNotification<'_>) -> Uuid {
        let id = Uuid::now_v7();
        let now = Utc::now();
        self.rows.push(notification::ActiveModel {
            id: Set(id),
            tenant_id: Set(new.tenant.map(|t| t.0)),
            channel: Set(new.channel.to_owned()),
            recipient: Set(new.recipient.to_owned()),
            template: Set(new.template.to_owned()),
            event_id: Set(new.event_id),
            subject: Set(new.subject.to_owned()),
            status: Set(PENDING.into()),
            attempts: Set(0),
            next_attempt_at: Set(now),
            claimed_by: Set(String::new()),
            claimed_until: Set(None),
            provider_id: Set(String::new()),
            last_error: Set(String::new()),
            sent_at: Set(None),
            created_at: Set(now),
            link: Set(new.link.to_owned()),
        });
        self.bodies.push(body::ActiveModel {
            id: Set(id),
            tenant_id: Set(new.tenant.map(|t| t.0)),
            body_text: Set(new.body_text.to_owned()),
            body_html: Set(new.body_html.to_owned()),
            headers: Set(if new.headers.is_empty() {
                String::new()
            } else {
                serde_json::to_string(&new.headers).unwrap_or_default()
            }),
        });
        id
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Queues every message added, in the caller's transaction; returns how many.
    pub async fn write(self, txn: &DatabaseTransaction) -> Result<usize> {
        let n = self.rows.len();
        // Messages first: a body refers to its message.
        insert_chunked(txn, self.rows).await?;
        insert_chunked(txn, self.bodies).await?;
        Ok(n)
    }
}

/// Inserts rows 200 to a statement: with at most 18 columns a row, well under SQLite's
/// and PostgreSQL's bind-parameter limits.
async fn insert_chunked<A>(txn: &DatabaseTransaction, rows: Vec<A>) -> Result<()>
where
    A: ActiveModelTrait + Send,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        A::Entity::insert_many(rows.by_ref().take(200)).exec_without_returning(txn).await?;
    }
    Ok(())
}

/// The lease columns of `notifications`.
pub const LEASE: Lease<N> = Lease {
    id: C::Id,
    status: C::Status,
    pending: PENDING,
    next_attempt_at: C::NextAttemptAt,
    claimed_by: C::ClaimedBy,
    claimed_until: C::ClaimedUntil,
};

/// Leases up to `limit` due messages of one channel to dispatcher `me` until `until`
/// (a dispatcher's lane for that channel; see m0024 for the index it takes).
pub async fn claim(
    txn: &DatabaseTransaction,
    channel: &str,
    me: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<NotificationRow>> {
    LEASE.claim_where(txn, Condition::all().add(C::Channel.eq(channel)), me, now, until, limit).await
}

/// How many rows one `IN (…)` list or `CASE` carries.
const CHUNK: usize = 500;

/// The extra headers stored with a message.
pub fn headers_of(body: &BodyRow) -> Vec<(String, String)> {
    if body.headers.is_empty() { Vec::new() } else { serde_json::from_str(&body.headers).unwrap_or_default() }
}

/// The bodies of messages, by id (a message without one is left out).
pub async fn bodies(txn: &DatabaseTransaction, ids: &[Uuid]) -> Result<std::collections::HashMap<Uuid, BodyRow>> {
    let mut found = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let rows = body::Entity::find().filter(body::Column::Id.is_in(chunk.iter().copied())).all(txn).await?;
        found.extend(rows.into_iter().map(|b| (b.id, b)));
    }
    Ok(found)
}

/// Records that the provider accepted messages — `(id, provider id)` — by the
/// dispatcher holding their leases, in one update per few hundred; returns how many it
/// recorded (a message whose lease was lost is left to its new holder).
pub async fn sent(txn: &DatabaseTransaction, me: &str, done: &[(Uuid, String)], now: DateTime<Utc>) -> Result<u64> {
    let mut recorded = 0;
    for chunk in done.chunks(CHUNK) {
        let Some(((first, first_pid), rest)) = chunk.split_first() else { continue };
        let mut provider = Expr::case(C::Id.eq(*first), Expr::val(first_pid.as_str()));
        for (id, pid) in rest {
            provider = provider.case(C::Id.eq(*id), Expr::val(pid.as_str()));
        }
        let provider = provider.finally(Expr::col(C::ProviderId));
        let res = N::update_many()
            .col_expr(C::Status, Expr::value(SENT))
            .col_expr(C::ProviderId, Expr::Case(Box::new(provider)))
            .col_expr(C::SentAt, Expr::value(now))
            .col_expr(C::Attempts, Expr::col(C::Attempts).add(1))
            .col_expr(C::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .filter(LEASE.held(me, chunk.iter().map(|(id, _)| *id)))
            .exec(txn)
            .await?;
        recorded += res.rows_affected;
    }
    Ok(recorded)
}

/// Records a failed attempt: back in the queue at `retry_at`, or, with `None`,
/// [`FAILED`] for good.
pub async fn attempt_failed(
    txn: &DatabaseTransaction,
    id: Uuid,
    me: &str,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> Result<bool> {
    let mut q = N::update_many()
        .col_expr(C::Attempts, Expr::col(C::Attempts).add(1))
        .col_expr(C::LastError, Expr::value(error))
        .col_expr(C::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None));
    q = match retry_at {
        Some(at) => q.col_expr(C::NextAttemptAt, Expr::value(at)),
        None => q.col_expr(C::Status, Expr::value(FAILED)),
    };
    let res = q.filter(LEASE.held(me, [id])).exec(txn).await?;
    Ok(res.rows_affected == 1)
}

fn scoped(tenant: Option<TenantId>) -> Condition {
    match tenant {
        Some(t) => Condition::all().add(C::TenantId.eq(t.0)),
        None => Condition::all(),
    }
}

/// The log, newest first: one store's messages, or (with `None`, in a platform
/// transaction) every message, platform mail included; and how many there are.
pub async fn list(
    txn: &DatabaseTransaction,
    tenant: Option<TenantId>,
    limit: u64,
) -> Result<(Vec<NotificationRow>, u64)> {
    let rows =
        N::find().filter(scoped(tenant)).order_by_desc(C::CreatedAt).order_by_desc(C::Id).limit(limit).all(txn).await?;
    let total = N::find().filter(scoped(tenant)).count(txn).await?;
    Ok((rows, total))
}

/// Messages waiting to be sent (all stores' in a platform transaction): for tests and
/// one-off commands that wait for the queue to empty.
pub async fn count_pending(txn: &DatabaseTransaction) -> Result<u64> {
    Ok(N::find().filter(C::Status.eq(PENDING)).count(txn).await?)
}

/// Messages that failed for good (one store's, or with `None` all of them).
pub async fn count_failed(txn: &DatabaseTransaction, tenant: Option<TenantId>) -> Result<u64> {
    Ok(N::find().filter(scoped(tenant)).filter(C::Status.eq(FAILED)).count(txn).await?)
}

/// Puts a failed message back in the queue with its attempts reset. False when there is
/// no such failed message (in that store).
pub async fn retry(txn: &DatabaseTransaction, tenant: Option<TenantId>, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
    let res = N::update_many()
        .col_expr(C::Status, Expr::value(PENDING))
        .col_expr(C::Attempts, Expr::value(0))
        .col_expr(C::NextAttemptAt, Expr::value(now))
        .col_expr(C::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(scoped(tenant))
        .filter(C::Id.eq(id))
        .filter(C::Status.eq(FAILED))
        .exec(txn)
        .await?;
    Ok(res.rows_affected == 1)
}
