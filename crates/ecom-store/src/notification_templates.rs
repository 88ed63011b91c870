//! A store's own versions of its notification templates (`notification_templates`):
//! at most one per template name and channel. A message with no row here is written by
//! the built-in template.

use crate::Result;
use chrono::{DateTime, Utc};
use ecom_core::TenantId;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

pub use notification_template::Model as TemplateRow;

pub mod notification_template {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
    #[sea_orm(table_name = "notification_templates")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        /// The message, as the built-in templates name it (`order_placed`, …).
        pub name: String,
        /// `email`, `sms`, `push`, `inapp`, …
        pub channel: String,
        /// Email only; empty elsewhere.
        pub subject: String,
        pub body_text: String,
        /// Email only; empty for a text-only email or another channel.
        pub body_html: String,
        pub updated_by: String,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use notification_template as nt;

/// What a store saves for one template on one channel.
#[derive(Debug, Clone)]
pub struct SaveTemplate<'a> {
    pub name: &'a str,
    pub channel: &'a str,
    pub subject: &'a str,
    pub body_text: &'a str,
    pub body_html: &'a str,
    pub updated_by: &'a str,
}

/// Every override of the store, by channel then name.
pub async fn list(txn: &DatabaseTransaction, tenant: TenantId) -> Result<Vec<TemplateRow>> {
    Ok(nt::Entity::find()
        .filter(nt::Column::TenantId.eq(tenant.0))
        .order_by_asc(nt::Column::Channel)
        .order_by_asc(nt::Column::Name)
        .all(txn)
        .await?)
}

pub async fn get(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    channel: &str,
    name: &str,
) -> Result<Option<TemplateRow>> {
    Ok(nt::Entity::find()
        .filter(nt::Column::TenantId.eq(tenant.0))
        .filter(nt::Column::Channel.eq(channel))
        .filter(nt::Column::Name.eq(name))
        .one(txn)
        .await?)
}

/// Creates or replaces the store's version of `name` on `channel`.
pub async fn save(txn: &DatabaseTransaction, tenant: TenantId, t: &SaveTemplate<'_>) -> Result<DateTime<Utc>> {
    let now = Utc::now();
    nt::Entity::insert(nt::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0),
        name: Set(t.name.to_owned()),
        channel: Set(t.channel.to_owned()),
        subject: Set(t.subject.to_owned()),
        body_text: Set(t.body_text.to_owned()),
        body_html: Set(t.body_html.to_owned()),
        updated_by: Set(t.updated_by.to_owned()),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([nt::Column::TenantId, nt::Column::Name, nt::Column::Channel])
            .update_columns([
                nt::Column::Subject,
                nt::Column::BodyText,
                nt::Column::BodyHtml,
                nt::Column::UpdatedBy,
                nt::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(now)
}

/// Drops the store's version: the built-in template writes the message again. Returns
/// whether there was one.
pub async fn reset(txn: &DatabaseTransaction, tenant: TenantId, channel: &str, name: &str) -> Result<bool> {
    let r = nt::Entity::delete_many()
        .filter(nt::Column::TenantId.eq(tenant.0))
        .filter(nt::Column::Channel.eq(channel))
        .filter(nt::Column::Name.eq(name))
        .exec(txn)
        .await?;
    Ok(r.rows_affected > 0)
}
