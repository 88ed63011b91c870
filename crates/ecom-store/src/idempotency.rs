//! Idempotency keys of mutating API requests (`idempotency_keys`): the first request
//! with a key records a fingerprint of itself and, once answered, the answer; a retry
//! with the same key gets that answer back instead of making the change again.

use crate::Result;
use chrono::{DateTime, Utc};
use ecom_core::TenantId;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};
use uuid::Uuid;

pub mod key {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub client: String,
        pub key: String,
        pub fingerprint: String,
        /// The answer's HTTP status; 0 while the first request still runs.
        pub status: i32,
        #[sea_orm(column_type = "Text")]
        pub response: String,
        pub created_at: DateTimeUtc,
        pub completed_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// What a request with a key should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The key is new (or its first request died long ago): run the request, then
    /// [`complete`] or [`forget`] the key by this id.
    Run(Uuid),
    /// The key was answered before: send this answer again.
    Replay { status: u16, response: String },
    /// The key came with a different request before.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

/// Claims `key` for `client`'s request with this `fingerprint`. A key whose first
/// request started before `stale_before` and never finished (its process died) is
/// taken over, so a crash does not lock the key for ever; the operations that use keys
/// are safe to run again.
pub async fn begin(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    client: &str,
    key: &str,
    fingerprint: &str,
    now: DateTime<Utc>,
    stale_before: DateTime<Utc>,
) -> Result<Begin> {
    let id = Uuid::now_v7();
    let row = key::ActiveModel {
        id: Set(id),
        tenant_id: Set(tenant.0),
        client: Set(client.to_owned()),
        key: Set(key.to_owned()),
        fingerprint: Set(fingerprint.to_owned()),
        status: Set(0),
        response: Set(String::new()),
        created_at: Set(now),
        completed_at: Set(None),
    };
    let inserted = key::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([key::Column::TenantId, key::Column::Client, key::Column::Key]).do_nothing().to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    if inserted == 1 {
        return Ok(Begin::Run(id));
    }
    let Some(existing) = key::Entity::find()
        .filter(key::Column::TenantId.eq(tenant.0))
        .filter(key::Column::Client.eq(client))
        .filter(key::Column::Key.eq(key))
        .one(txn)
        .await?
    else {
        // Forgotten between our insert and this read: the caller may simply retry.
        return Ok(Begin::InProgress);
    };
    if existing.fingerprint != fingerprint {
        return Ok(Begin::Mismatch);
    }
    if existing.status != 0 {
        let status = u16::try_from(existing.status).unwrap_or(500);
        return Ok(Begin::Replay { status, response: existing.response });
    }
    if existing.created_at >= stale_before {
        return Ok(Begin::InProgress);
    }
    // Take the abandoned key over, unless another request just did.
    let taken = key::Entity::update_many()
        .col_expr(key::Column::CreatedAt, Expr::value(now))
        .filter(key::Column::TenantId.eq(tenant.0))
        .filter(key::Column::Id.eq(existing.id))
        .filter(key::Column::Status.eq(0))
        .filter(key::Column::CreatedAt.eq(existing.created_at))
        .exec(txn)
        .await?;
    Ok(if taken.rows_affected == 1 { Begin::Run(existing.id) } else { Begin::InProgress })
}

/// Records the answer to the key's first request.
pub async fn complete(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    id: Uuid,
    status: u16,
    response: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    key::Entity::update_many()
        .col_expr(key::Column::Status, Expr::value(i32::from(status)))
        .col_expr(key::Column::Response, Expr::value(response))
        .col_expr(key::Column::CompletedAt, Expr::value(now))
        .filter(key::Column::TenantId.eq(tenant.0))
        .filter(key::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Drops a key whose request failed on our side, so that a retry runs it afresh.
pub async fn forget(txn: &DatabaseTransaction, tenant: TenantId, id: Uuid) -> Result<()> {
    key::Entity::delete_many()
        .filter(key::Column::TenantId.eq(tenant.0))
        .filter(key::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}
