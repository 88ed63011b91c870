//! The in-app inbox (`inbox_items`): messages to one customer or staff account of a
//! store, filed by the in-app channel and listed, counted and marked read by the
//! account and panel pages. Every function works in a [`crate::Db::tenant_txn`].

use crate::Result;
use chrono::{DateTime, Utc};
use ecom_core::TenantId;
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

pub use item::Model as InboxItem;

/// Whose inbox: a store's customer or one of its staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recipient {
    Customer(Uuid),
    Staff(Uuid),
}

impl Recipient {
    pub fn kind(self) -> &'static str {
        match self {
            Recipient::Customer(_) => "customer",
            Recipient::Staff(_) => "staff",
        }
    }

    pub fn id(self) -> Uuid {
        match self {
            Recipient::Customer(id) | Recipient::Staff(id) => id,
        }
    }

    /// The form a notification row's `recipient` takes: `customer:<uuid>` / `staff:<uuid>`.
    pub fn address(self) -> String {
        format!("{}:{}", self.kind(), self.id())
    }

    pub fn parse(address: &str) -> Option<Self> {
        let (kind, id) = address.split_once(':')?;
        let id = Uuid::parse_str(id).ok()?;
        match kind {
            "customer" => Some(Recipient::Customer(id)),
            "staff" => Some(Recipient::Staff(id)),
            _ => None,
        }
    }
}

pub mod item {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
    #[sea_orm(table_name = "inbox_items")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub recipient_kind: String,
        pub recipient_id: Uuid,
        pub notification_id: Option<Uuid>,
        pub title: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub link: String,
        pub read_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use item::{Column as C, Entity as I};

/// An item to file.
#[derive(Debug, Clone)]
pub struct NewItem<'a> {
    pub recipient: Recipient,
    /// The queue row it is sent for; the same row is filed once only.
    pub notification_id: Option<Uuid>,
    pub title: &'a str,
    pub body: &'a str,
    pub link: &'a str,
}

/// Items filed per statement (ten values each, under SQLite's and PostgreSQL's
/// parameter limits).
const INSERT_CHUNK: usize = 100;

/// Files items in one statement per hundred; for each, in order, its id, or `None`
/// when its notification was filed already (an attempt whose outcome was lost).
pub async fn insert_many(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    new: &[NewItem<'_>],
) -> Result<Vec<Option<Uuid>>> {
    let now = Utc::now();
    let ids: Vec<Uuid> = new.iter().map(|_| Uuid::now_v7()).collect();
    let mut filed = std::collections::HashSet::with_capacity(new.len());
    for (items, ids) in new.chunks(INSERT_CHUNK).zip(ids.chunks(INSERT_CHUNK)) {
        let mut insert = Query::insert();
        insert.into_table(I).columns([
            C::Id,
            C::TenantId,
            C::RecipientKind,
            C::RecipientId,
            C::NotificationId,
            C::Title,
            C::Body,
            C::Link,
            C::ReadAt,
            C::CreatedAt,
        ]);
        for (item, id) in items.iter().zip(ids) {
            let title: String = item.title.chars().take(500).collect();
            let link: String = item.link.chars().take(1000).collect();
            insert.values_panic([
                (*id).into(),
                tenant.0.into(),
                item.recipient.kind().into(),
                item.recipient.id().into(),
                item.notification_id.into(),
                title.into(),
                item.body.into(),
                link.into(),
                Option::<DateTime<Utc>>::None.into(),
                now.into(),
            ]);
        }
        insert.on_conflict(OnConflict::column(C::NotificationId).do_nothing().to_owned()).returning_col(C::Id);
        for row in txn.query_all(&insert).await? {
            filed.insert(row.try_get::<Uuid>("", "id")?);
        }
    }
    Ok(ids.into_iter().map(|id| filed.contains(&id).then_some(id)).collect())
}

fn mine(tenant: TenantId, who: Recipient) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(C::TenantId.eq(tenant.0))
        .add(C::RecipientKind.eq(who.kind()))
        .add(C::RecipientId.eq(who.id()))
}

/// The newest items of an inbox, newest first.
pub async fn list(txn: &DatabaseTransaction, tenant: TenantId, who: Recipient, limit: u64) -> Result<Vec<InboxItem>> {
    Ok(I::find()
        .filter(mine(tenant, who))
        .order_by_desc(C::CreatedAt)
        .order_by_desc(C::Id)
        .limit(limit)
        .all(txn)
        .await?)
}

/// Items filed after `after` (ids are time-ordered), oldest first: what a live
/// listener has not seen yet.
pub async fn since(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    who: Recipient,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<InboxItem>> {
    let mut q = I::find().filter(mine(tenant, who));
    if let Some(after) = after {
        q = q.filter(C::Id.gt(after));
    }
    Ok(q.order_by_asc(C::Id).limit(limit).all(txn).await?)
}

/// The newest item's id, where a new listener starts.
pub async fn newest(txn: &DatabaseTransaction, tenant: TenantId, who: Recipient) -> Result<Option<Uuid>> {
    Ok(I::find()
        .select_only()
        .column(C::Id)
        .filter(mine(tenant, who))
        .order_by_desc(C::Id)
        .into_tuple()
        .one(txn)
        .await?)
}

pub async fn unread(txn: &DatabaseTransaction, tenant: TenantId, who: Recipient) -> Result<u64> {
    Ok(I::find().filter(mine(tenant, who)).filter(C::ReadAt.is_null()).count(txn).await?)
}

/// Marks one item (`Some`) or every item (`None`) of the inbox read; returns how many
/// changed. An id of another inbox changes nothing.
pub async fn mark_read(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    who: Recipient,
    id: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut q =
        I::update_many().col_expr(C::ReadAt, Expr::value(now)).filter(mine(tenant, who)).filter(C::ReadAt.is_null());
    if let Some(id) = id {
        q = q.filter(C::Id.eq(id));
    }
    Ok(q.exec(txn).await?.rows_affected)
}
