//! m0023: a message's rendered text, HTML and headers move from `notifications` to a
//! write-once table of their own, `notification_bodies`, one row per message under the
//! same id.
//!
//! A queued message is rewritten twice after it is written: when a dispatcher claims
//! it and when the provider accepts it. With the bodies in the row (~6 KB of HTML for
//! an order email) each of those rewrote the whole record, overflow pages included, on
//! SQLite, and a new row version on PostgreSQL; now they rewrite a few hundred bytes,
//! and the queue table a claim scans stays small. A body goes with its message
//! (foreign key, on delete cascade: retention and store deletion need no extra step).

use super::{enable_row_level_security, name, tenant_ref};
use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;

pub(super) struct M0023NotificationBodies;

impl MigrationName for M0023NotificationBodies {
    fn name(&self) -> &str {
        "m0023_notification_bodies"
    }
}

const MOVED: &[&str] = &["body_text", "body_html", "headers"];

#[async_trait::async_trait]
impl MigrationTrait for M0023NotificationBodies {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let (tenant_col, mut tenant_fk) = tenant_ref("notification_bodies", true);
        let mut message_fk = ForeignKey::create()
            .name("fk_notification_bodies_id")
            .from(name("notification_bodies"), name("id"))
            .to(name("notifications"), name("id"))
            .on_delete(ForeignKeyAction::Cascade)
            .to_owned();
        m.create_table(
            Table::create()
                .table(name("notification_bodies"))
                .if_not_exists()
                .col(ColumnDef::new(name("id")).uuid().not_null().primary_key())
                .col(tenant_col)
                .foreign_key(&mut tenant_fk)
                .foreign_key(&mut message_fk)
                .col(ColumnDef::new(name("body_text")).text().not_null().default(""))
                .col(ColumnDef::new(name("body_html")).text().not_null().default(""))
                // Extra mail headers as a JSON list of [name, value] pairs; empty for none.
                .col(ColumnDef::new(name("headers")).text().not_null().default(""))
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        let postgres = m.get_database_backend() == DbBackend::Postgres;
        if postgres {
            enable_row_level_security(m, super::NOTIFICATION_BODY_TABLES).await?;
            // The copy below reads and writes every store's rows.
            db.execute_unprepared("SELECT set_config('ecom.scope', 'platform', true)").await?;
        }
        db.execute_unprepared(
            "INSERT INTO notification_bodies (id, tenant_id, body_text, body_html, headers) \
             SELECT id, tenant_id, body_text, body_html, headers FROM notifications",
        )
        .await?;
        for col in MOVED {
            m.alter_table(Table::alter().table(name("notifications")).drop_column(name(col)).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the notification bodies migration cannot be reverted".into()))
    }
}
