//! What customers want to hear and through what: notification preferences per kind and
//! channel, marketing consent per address, back-in-stock requests, abandoned-cart
//! reminders (the job's lease is `lease::take_job`).

use crate::Result;
use chrono::{DateTime, Utc};
use ecom_core::TenantId;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

pub mod preference {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "notification_preferences")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub customer_id: Uuid,
        pub kind: String,
        pub channel: String,
        pub enabled: bool,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod consent {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
    #[sea_orm(table_name = "marketing_consents")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub email: String,
        pub granted_at: Option<DateTimeUtc>,
        pub granted_via: String,
        pub withdrawn_at: Option<DateTimeUtc>,
        pub withdrawn_via: String,
        pub updated_at: DateTimeUtc,
    }

    impl Model {
        /// Consent stands: given and not withdrawn since.
        pub fn given(&self) -> bool {
            match (self.granted_at, self.withdrawn_at) {
                (Some(g), Some(w)) => g > w,
                (Some(_), None) => true,
                _ => false,
            }
        }
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod restock {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "back_in_stock_requests")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub variant_id: Uuid,
        pub customer_id: Option<Uuid>,
        pub email: String,
        pub confirmed_at: Option<DateTimeUtc>,
        pub notified_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The columns of `carts` the reminder job reads (the table has more).
pub mod cart_reminder {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "carts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub customer_id: Option<Uuid>,
        pub email: String,
        pub updated_at: DateTimeUtc,
        pub reminded_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use consent::Model as Consent;
pub use restock::Model as RestockRequest;

// ---- preferences ---------------------------------------------------------------------

/// A customer's explicit choices: `(kind, channel, enabled)`.
pub async fn preferences(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    customer: Uuid,
) -> Result<Vec<(String, String, bool)>> {
    use preference::{Column as P, Entity};
    Ok(Entity::find()
        .select_only()
        .column(P::Kind)
        .column(P::Channel)
        .column(P::Enabled)
        .filter(P::TenantId.eq(tenant.0))
        .filter(P::CustomerId.eq(customer))
        .into_tuple()
        .all(txn)
        .await?)
}

/// Saves a customer's choices (insert or update per kind and channel).
pub async fn set_preferences(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    customer: Uuid,
    choices: &[(&str, &str, bool)],
) -> Result<()> {
    use preference::{ActiveModel, Column as P, Entity};
    let now = Utc::now();
    for (kind, channel, enabled) in choices {
        Entity::insert(ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant.0),
            customer_id: Set(customer),
            kind: Set((*kind).to_owned()),
            channel: Set((*channel).to_owned()),
            enabled: Set(*enabled),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([P::TenantId, P::CustomerId, P::Kind, P::Channel])
                .update_columns([P::Enabled, P::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    }
    Ok(())
}

// ---- consent -------------------------------------------------------------------------

fn normalise(email: &str) -> String {
    email.trim().to_ascii_lowercase()
}

pub async fn consent(txn: &DatabaseTransaction, tenant: TenantId, email: &str) -> Result<Option<Consent>> {
    use consent::{Column as K, Entity};
    Ok(Entity::find().filter(K::TenantId.eq(tenant.0)).filter(K::Email.eq(normalise(email))).one(txn).await?)
}

/// Records consent given (`true`) or withdrawn (`false`) now, and how (`via`: the
/// sign-up checkbox, the account page, the unsubscribe link…). Giving it again when it
/// stands, or withdrawing it when there is none, changes nothing.
pub async fn record_consent(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    email: &str,
    given: bool,
    via: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    use consent::{ActiveModel, Column as K, Entity};
    let existing = consent(txn, tenant, email).await?;
    match existing {
        Some(c) if c.given() == given => Ok(()),
        None if !given => Ok(()),
        Some(c) => {
            let mut q = Entity::update_many().col_expr(K::UpdatedAt, Expr::value(now)).filter(K::Id.eq(c.id));
            q = if given {
                q.col_expr(K::GrantedAt, Expr::value(now)).col_expr(K::GrantedVia, Expr::value(via))
            } else {
                q.col_expr(K::WithdrawnAt, Expr::value(now)).col_expr(K::WithdrawnVia, Expr::value(via))
            };
            q.exec(txn).await?;
            Ok(())
        }
        None => {
            Entity::insert(ActiveModel {
                id: Set(Uuid::now_v7()),
                tenant_id: Set(tenant.0),
                email: Set(normalise(email)),
                granted_at: Set(Some(now)),
                granted_via: Set(via.to_owned()),
                withdrawn_at: Set(None),
                withdrawn_via: Set(String::new()),
                updated_at: Set(now),
            })
            .exec_without_returning(txn)
            .await?;
            Ok(())
        }
    }
}

// ---- back in stock -------------------------------------------------------------------

/// A variant as a back-in-stock message names it.
#[derive(Debug, Clone)]
pub struct VariantInfo {
    pub product_title: String,
    pub handle: String,
    /// The variant's options joined ("Red / M"); empty for a single-variant product.
    pub variant_title: String,
    pub stock: i32,
    pub product_status: String,
}

/// The variant of the store with its product, if there is one.
pub async fn variant_info(txn: &DatabaseTransaction, tenant: TenantId, variant: Uuid) -> Result<Option<VariantInfo>> {
    use crate::entities::{product, variant as v};
    let Some(row) =
        v::Entity::find().filter(v::Column::TenantId.eq(tenant.0)).filter(v::Column::Id.eq(variant)).one(txn).await?
    else {
        return Ok(None);
    };
    let Some(p) = product::Entity::find()
        .filter(product::Column::TenantId.eq(tenant.0))
        .filter(product::Column::Id.eq(row.product_id))
        .one(txn)
        .await?
    else {
        return Ok(None);
    };
    let options: Vec<String> = [row.option1, row.option2, row.option3].into_iter().flatten().collect();
    let variant_title = if options.iter().all(|o| o == "Default Title") { String::new() } else { options.join(" / ") };
    Ok(Some(VariantInfo {
        product_title: p.title,
        handle: p.handle,
        variant_title,
        stock: row.stock,
        product_status: p.status,
    }))
}

pub async fn restock_request(txn: &DatabaseTransaction, tenant: TenantId, id: Uuid) -> Result<Option<RestockRequest>> {
    use restock::{Column as R, Entity};
    Ok(Entity::find().filter(R::TenantId.eq(tenant.0)).filter(R::Id.eq(id)).one(txn).await?)
}

/// Confirms a request (its address is proven by the link it was sent); false when it
/// was confirmed or closed already.
pub async fn confirm_restock(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool> {
    use restock::{Column as R, Entity};
    let res = Entity::update_many()
        .col_expr(R::ConfirmedAt, Expr::value(now))
        .filter(R::TenantId.eq(tenant.0))
        .filter(R::Id.eq(id))
        .filter(R::ConfirmedAt.is_null())
        .filter(R::NotifiedAt.is_null())
        .exec(txn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Files a request unless the address has one open for the variant already; returns
/// the new request's id, or `None` when one was open.
pub async fn request_restock(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    variant: Uuid,
    customer: Option<Uuid>,
    email: &str,
    confirmed: bool,
) -> Result<Option<Uuid>> {
    use restock::{ActiveModel, Column as R, Entity};
    let email = normalise(email);
    let open = Entity::find()
        .filter(R::TenantId.eq(tenant.0))
        .filter(R::VariantId.eq(variant))
        .filter(R::Email.eq(email.clone()))
        .filter(R::NotifiedAt.is_null())
        .one(txn)
        .await?;
    if open.is_some() {
        return Ok(None);
    }
    let now = Utc::now();
    let id = Uuid::now_v7();
    Entity::insert(ActiveModel {
        id: Set(id),
        tenant_id: Set(tenant.0),
        variant_id: Set(variant),
        customer_id: Set(customer),
        email: Set(email),
        confirmed_at: Set(confirmed.then_some(now)),
        notified_at: Set(None),
        created_at: Set(now),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(Some(id))
}

/// Open requests whose variant has stock again (all stores; platform transaction),
/// oldest first.
pub async fn restocked(txn: &DatabaseTransaction, limit: u64) -> Result<Vec<RestockRequest>> {
    use crate::entities::variant;
    use restock::{Column as R, Entity};
    let in_stock = Query::select()
        .column(variant::Column::Id)
        .from(variant::Entity)
        .and_where(Expr::col(variant::Column::Stock).gt(0))
        .to_owned();
    Ok(Entity::find()
        .filter(R::NotifiedAt.is_null())
        .filter(R::VariantId.in_subquery(in_stock))
        .order_by_asc(R::CreatedAt)
        .limit(limit)
        .all(txn)
        .await?)
}

/// Closes a request; false when another node closed it first.
pub async fn close_restock(txn: &DatabaseTransaction, tenant: TenantId, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
    use restock::{Column as R, Entity};
    let res = Entity::update_many()
        .col_expr(R::NotifiedAt, Expr::value(now))
        .filter(R::TenantId.eq(tenant.0))
        .filter(R::Id.eq(id))
        .filter(R::NotifiedAt.is_null())
        .exec(txn)
        .await?;
    Ok(res.rows_affected == 1)
}

// ---- abandoned carts -----------------------------------------------------------------

/// Carts (all stores; platform transaction) idle since before `idle_before`, with an
/// email or a customer, at least one line, no reminder yet, and no order made from them.
pub async fn abandoned_carts(
    txn: &DatabaseTransaction,
    idle_before: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<cart_reminder::Model>> {
    use crate::entities::{cart_line, order};
    use cart_reminder::{Column as K, Entity};
    let with_lines = Query::select().column(cart_line::Column::CartId).from(cart_line::Entity).to_owned();
    let ordered = Query::select().column(order::Column::CartId).from(order::Entity).to_owned();
    Ok(Entity::find()
        .filter(K::RemindedAt.is_null())
        .filter(K::UpdatedAt.lt(idle_before))
        .filter(Condition::any().add(K::Email.ne("")).add(K::CustomerId.is_not_null()))
        .filter(K::Id.in_subquery(with_lines))
        .filter(K::Id.not_in_subquery(ordered))
        .order_by_asc(K::UpdatedAt)
        .limit(limit)
        .all(txn)
        .await?)
}

/// Marks a cart reminded (or considered and skipped); false when another node did
/// first, or the cart is gone.
pub async fn mark_reminded(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    cart: Uuid,
    now: DateTime<Utc>,
) -> Result<bool> {
    use cart_reminder::{Column as K, Entity};
    let res = Entity::update_many()
        .col_expr(K::RemindedAt, Expr::value(now))
        .filter(K::TenantId.eq(tenant.0))
        .filter(K::Id.eq(cart))
        .filter(K::RemindedAt.is_null())
        .exec(txn)
        .await?;
    Ok(res.rows_affected == 1)
}
